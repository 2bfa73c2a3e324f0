//! `labshare workflows bench`: persisted transitions per second. Each decision is a full
//! transaction (CAS on task and instance, effects, new tasks, audit append, events).

use std::time::Instant;

use futures::{StreamExt, TryStreamExt, stream};

use serde_json::json;

use super::Engine;
use crate::error::Result;

pub struct BenchReport {
    pub instances: usize,
    pub starts_per_sec: f64,
    pub transitions_per_sec: f64,
}

/// Start `n` `service_record_report` (信息上报) instances and approve each, `concurrency` at a
/// time. That flow's subject has no status table, so the benchmark needs no subject rows.
pub async fn run(engine: &Engine, n: usize, concurrency: usize) -> Result<BenchReport> {
    let username = format!("bench_{}", engine.now());
    let uid = crate::auth::create_user(
        engine.db(),
        crate::auth::NewUser {
            username: username.clone(),
            password: "Bench-Passw0rd".into(),
            display_name: "压测审核人".into(),
            email: None,
            phone: None,
        },
        &["platform_admin"],
        engine.now(),
    )
    .await?;
    // The benchmark reviewer is the only resource reviewer during the run.
    let others: Vec<(i64,)> = sqlx::query_as(
        "SELECT DISTINCT ur.user_id FROM user_roles ur JOIN role_permissions rp ON rp.role_id = ur.role_id WHERE rp.permission = 'resource.review' AND ur.user_id <> $1",
    )
    .bind(uid)
    .fetch_all(&engine.db().pool)
    .await?;
    if !others.is_empty() {
        tracing::warn!(
            count = others.len(),
            "other resource reviewers also receive tasks during the benchmark"
        );
    }
    // The applicant is someone else: nobody reviews their own submission.
    let applicant = crate::auth::create_user(
        engine.db(),
        crate::auth::NewUser {
            username: format!("{username}_applicant"),
            password: "Bench-Passw0rd".into(),
            display_name: "压测申请人".into(),
            email: None,
            phone: None,
        },
        &[],
        engine.now(),
    )
    .await?;
    let user = crate::auth::load_user(engine.db(), uid)
        .await?
        .ok_or(crate::error::AppError::NotFound)?;
    let base: i64 = engine.now() * 1000;
    let t0 = Instant::now();
    // `concurrency` decisions are in flight all the time, as requests reach a server: each
    // one that finishes lets the next begin (batches would wait for their slowest member).
    let in_flight = concurrency.max(1);
    let started: Vec<i64> = stream::iter(0..n)
        .map(|i| {
            engine.start(
                "service_record_report",
                "service_record",
                base + i as i64,
                applicant,
                json!({}),
            )
        })
        .buffer_unordered(in_flight)
        .map_ok(|o| o.instance_id)
        .try_collect()
        .await?;
    let start_secs = t0.elapsed().as_secs_f64();
    let mut task_ids = Vec::with_capacity(n);
    for inst in &started {
        let (id,): (i64,) = sqlx::query_as("SELECT id FROM workflow_tasks WHERE instance_id = $1 AND assignee_id = $2 AND status = 'open'")
            .bind(inst)
            .bind(uid)
            .fetch_one(&engine.db().pool)
            .await?;
        task_ids.push(id);
    }
    let t1 = Instant::now();
    stream::iter(&task_ids)
        .map(|t| {
            engine.act(
                Some(&user),
                *t,
                super::Decision {
                    action: "approve".into(),
                    comment: "压测".into(),
                    data: json!({}),
                },
            )
        })
        .buffer_unordered(in_flight)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    let act_secs = t1.elapsed().as_secs_f64();
    Ok(BenchReport {
        instances: n,
        starts_per_sec: n as f64 / start_secs,
        transitions_per_sec: n as f64 / act_secs,
    })
}
