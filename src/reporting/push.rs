//! The upstream push (上报推送): approved batches go to `LABSHARE_UPSTREAM_URL` as the contract
//! says. Each push is claimed first (`approved` → `pushing` with a claim that expires), so two
//! pushers never send the same batch at once and a pusher that died mid-push is taken over;
//! the same `Idempotency-Key` is sent on every attempt, and after a 200 the batch is `pushed`
//! and never sent again. 5xx, timeouts and refused connections are retried with backoff.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    app::App,
    clock::Clock,
    config::Upstream,
    error::Result,
    store::{Db, WriteQuery},
};

/// Attempts before a batch is `failed` (the system admin may push it again).
pub const MAX_ATTEMPTS: i64 = 12;
/// How long a claim holds: longer than a request may take.
const CLAIM_SECS: i64 = 120;
const TIMEOUT: Duration = Duration::from_secs(30);

/// Run the pusher in the background while the process lives (`serve` only).
pub fn spawn(app: App) {
    let Some(upstream) = app.config.upstream.clone() else {
        return;
    };
    tokio::spawn(async move {
        let client = match client() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "upstream push disabled: no HTTP client");
                return;
            }
        };
        loop {
            if let Err(e) = push_due(&app.db, &app.clock, &upstream, &client).await {
                e.log();
            }
            tokio::time::sleep(Duration::from_millis(upstream.poll_ms)).await;
        }
    });
}

pub fn client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder().timeout(TIMEOUT).build()
}

/// The delay before attempt `attempts + 1`: the base doubled per failed attempt, at most 1 h.
pub fn backoff_secs(base_ms: u64, attempts: i64) -> i64 {
    let factor = 1u64 << attempts.clamp(1, 20).saturating_sub(1);
    let ms = base_ms.saturating_mul(factor).min(3_600_000);
    (ms / 1000) as i64
}

/// Push every due batch once; returns how many were sent (successfully or not).
pub async fn push_due(
    db: &Db,
    clock: &Clock,
    upstream: &Upstream,
    client: &reqwest::Client,
) -> Result<usize> {
    let now = clock.now_ts();
    let due: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM report_batches WHERE (status = 'approved' AND next_attempt_at IS NOT NULL \
         AND next_attempt_at <= $1) OR (status = 'pushing' AND claimed_until < $1) ORDER BY id LIMIT 20",
    )
    .bind(now)
    .fetch_all(&db.pool)
    .await?;
    let mut sent = 0;
    for id in due {
        // Claim before acting: only one pusher wins the row.
        let claimed = sqlx::query(
            "UPDATE report_batches SET status = 'pushing', claimed_until = $1, attempts = attempts + 1, \
             updated_at = $2 WHERE id = $3 AND ((status = 'approved' AND next_attempt_at <= $2) \
             OR (status = 'pushing' AND claimed_until < $2))",
        )
        .bind(now + CLAIM_SECS)
        .bind(now)
        .bind(id)
        .write(db)
        .await?
        .rows_affected();
        if claimed == 1 {
            push_one(db, clock, upstream, client, id).await?;
            sent += 1;
        }
    }
    Ok(sent)
}

enum Outcome {
    Answered(Value),
    Retry(String),
    Fail(String),
}

async fn push_one(
    db: &Db,
    clock: &Clock,
    upstream: &Upstream,
    client: &reqwest::Client,
    id: i64,
) -> Result<()> {
    let batch = super::get(db, id).await?;
    let path = if batch.kind == "instruments" {
        "instruments"
    } else {
        "service-records"
    };
    let body = json!({
        "insCode": batch.credit_code,
        "records": batch.items.iter().map(|i| Value::Object(i.national.clone())).collect::<Vec<_>>(),
    });
    let res = client
        .post(format!("{}/{path}", upstream.url))
        .header("Idempotency-Key", format!("labshare-report-{id}"))
        .bearer_auth(&upstream.token)
        .json(&body)
        .send()
        .await;
    let outcome = match res {
        Ok(r) if r.status().is_success() => match r.json::<Value>().await {
            Ok(v) => Outcome::Answered(v),
            Err(e) => Outcome::Retry(format!("上级平台应答无法解析：{e}")),
        },
        Ok(r) if r.status().is_server_error() => {
            Outcome::Retry(format!("上级平台返回 {}", r.status().as_u16()))
        }
        Ok(r) => {
            let status = r.status().as_u16();
            let text: String = r
                .text()
                .await
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect();
            Outcome::Fail(format!("上级平台拒绝（HTTP {status}）：{text}"))
        }
        Err(e) if e.is_timeout() => Outcome::Retry("连接上级平台超时".into()),
        Err(e) => Outcome::Retry(format!("无法连接上级平台：{e}")),
    };
    let now = clock.now_ts();
    match outcome {
        Outcome::Answered(v) => record_answer(db, &batch, &v, now).await,
        Outcome::Retry(msg) if batch.attempts < MAX_ATTEMPTS => {
            tracing::warn!(batch = id, attempts = batch.attempts, error = %msg, "upstream push will be retried");
            sqlx::query(
                "UPDATE report_batches SET status = 'approved', claimed_until = NULL, next_attempt_at = $1, \
                 last_error = $2, updated_at = $3 WHERE id = $4 AND status = 'pushing'",
            )
            .bind(now + backoff_secs(upstream.backoff_ms, batch.attempts))
            .bind(&msg)
            .bind(now)
            .bind(id)
            .write(db)
            .await?;
            Ok(())
        }
        Outcome::Retry(msg) | Outcome::Fail(msg) => {
            tracing::warn!(batch = id, error = %msg, "upstream push failed");
            sqlx::query(
                "UPDATE report_batches SET status = 'failed', claimed_until = NULL, next_attempt_at = NULL, \
                 last_error = $1, updated_at = $2 WHERE id = $3 AND status = 'pushing'",
            )
            .bind(&msg)
            .bind(now)
            .bind(id)
            .write(db)
            .await?;
            Ok(())
        }
    }
}

fn id_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Put the upstream's per-record answer on the items and mark the batch pushed, together.
async fn record_answer(db: &Db, batch: &super::Batch, answer: &Value, now: i64) -> Result<()> {
    // Service records are identified upstream by `recordInnerId`, instruments by `innerId`.
    let key = if batch.kind == "instruments" {
        "innerId"
    } else {
        "recordInnerId"
    };
    let of_item = |i: &super::Item| i.national.get(key).map(id_text).unwrap_or_default();
    let mut tx = db.begin_write().await?;
    for i in &batch.items {
        let me = of_item(i);
        let accepted = answer["accepted"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| id_text(x) == me));
        let rejected = answer["rejected"].as_array().and_then(|a| {
            a.iter()
                .find(|r| id_text(&r["innerId"]) == me || id_text(&r[key]) == me)
        });
        let (status, reason) = match (accepted, rejected) {
            (_, Some(r)) => (
                "rejected",
                r["reason"]
                    .as_str()
                    .unwrap_or("上级平台未说明原因")
                    .to_string(),
            ),
            (true, None) => ("accepted", String::new()),
            (false, None) => continue,
        };
        sqlx::query(
            "UPDATE report_items SET upstream_status = $1, upstream_reason = $2 WHERE batch_id = $3 AND record_id = $4",
        )
        .bind(status)
        .bind(reason)
        .bind(batch.id)
        .bind(i.record_id)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "UPDATE report_batches SET status = 'pushed', pushed_at = $1, claimed_until = NULL, next_attempt_at = NULL, \
         last_error = '', updated_at = $1 WHERE id = $2 AND status = 'pushing'",
    )
    .bind(now)
    .bind(batch.id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Push a failed batch again (system admin): it becomes due at once with a fresh count.
pub async fn retry(db: &Db, id: i64, now: i64) -> Result<()> {
    let n = sqlx::query(
        "UPDATE report_batches SET status = 'approved', attempts = 0, next_attempt_at = $1, updated_at = $1 \
         WHERE id = $2 AND status = 'failed'",
    )
    .bind(now)
    .bind(id)
    .write(db)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(crate::error::AppError::conflict(
            "not_failed",
            "只有推送失败的批次可以重新推送",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_per_attempt_up_to_an_hour() {
        assert_eq!(backoff_secs(30_000, 1), 30);
        assert_eq!(backoff_secs(30_000, 2), 60);
        assert_eq!(backoff_secs(30_000, 3), 120);
        assert_eq!(backoff_secs(30_000, 12), 3600);
    }
}
