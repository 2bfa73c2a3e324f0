//! Report batches as a workflow subject (review and push queue hooks) and the quarter-end
//! reminders.

#[allow(unused_imports)]
use super::*;

// ---- as a workflow subject ---------------------------------------------------------------

/// Report batches under the platform's review (信息上报审核).
pub const WORKFLOW_SUBJECTS: &[crate::workflow::hooks::Subject] =
    &[crate::workflow::hooks::Subject {
        kind: "report_batch",
        table: "report_batches",
        status_column: "status",
        unit: crate::workflow::hooks::UnitOf::Column("unit_id"),
        has_joined_on: false,
        searchable: false,
        label: workflow_label,
    }];

pub(super) fn workflow_label(
    conn: &mut crate::store::Conn,
    id: i64,
) -> futures::future::BoxFuture<'_, Result<Option<String>>> {
    Box::pin(crate::workflow::hooks::label_by(
        conn,
        "SELECT u.name || ' ' || b.period || CASE b.kind WHEN 'instruments' THEN ' 仪器信息上报' \
         ELSE ' 服务记录上报' END FROM report_batches b JOIN units u ON u.id = b.unit_id WHERE b.id = $1",
        id,
    ))
}

/// `queue_upstream_push`: on approval the batch becomes due for the upstream push in the
/// deciding transaction (the batch row is its own outbox entry).
pub const WORKFLOW_HOOKS: &[crate::workflow::hooks::Hook] = &[crate::workflow::hooks::Hook {
    name: "queue_upstream_push",
    check: check_queue,
    run: run_queue,
}];

pub(super) fn check_queue(
    subject_type: &str,
    _subject: Option<&crate::workflow::hooks::Subject>,
    with: &BTreeMap<String, Value>,
) -> std::result::Result<(), String> {
    if subject_type != "report_batch" {
        return Err("queue_upstream_push 只能用于 report_batch 流程".into());
    }
    if !with.is_empty() {
        return Err("queue_upstream_push 不需要参数".into());
    }
    Ok(())
}

pub(super) fn run_queue<'a, 'c>(
    ctx: &'a mut crate::workflow::hooks::HookCtx<'c>,
) -> futures::future::BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        if ctx.dry_run {
            return Ok(());
        }
        sqlx::query(
            "UPDATE report_batches SET next_attempt_at = $1, attempts = 0, last_error = '' WHERE id = $2",
        )
        .bind(ctx.now)
        .bind(ctx.subject_id)
        .execute(&mut *ctx.conn)
        .await?;
        Ok(())
    })
}

// ---- quarter-end reminders ----------------------------------------------------------------

/// Remind the managers of every certified managing unit of what it still owes this quarter
/// (instruments due or overdue, the quarter's service records); one notification per manager,
/// in one transaction. The `report-reminders` job runs it once per quarter.
pub async fn remind_owed(app: &crate::app::App, today: NaiveDate) -> Result<String> {
    let units: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, name FROM units WHERE kind = 'managing' AND certification_status = 'certified' ORDER BY id",
    )
    .fetch_all(&app.db.pool)
    .await?;
    let now = app.now();
    let mut owing = Vec::new();
    for (id, name) in units {
        let o = owed(&app.db, id, today).await?;
        if !o.instruments.is_empty() || o.service_records > 0 {
            owing.push((id, name, o));
        }
    }
    let mut tx = app.db.begin_write().await?;
    let mut sent = 0;
    for (id, name, o) in &owing {
        let overdue = o.instruments.iter().filter(|i| i.overdue).count();
        let managers: Vec<(i64,)> = sqlx::query_as(
            "SELECT user_id FROM unit_members WHERE unit_id = $1 AND role = 'manager' ORDER BY user_id",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        for (user_id,) in managers {
            crate::notify::notify(
                &mut tx,
                &app.mailer,
                &app.config.public_url,
                user_id,
                &crate::notify::Notice {
                    kind: if overdue > 0 { "overdue" } else { "due_soon" },
                    title: format!("{name}：{} 季度信息上报提醒", o.period),
                    body: format!(
                        "本单位尚有 {} 台（套）50 万元及以上仪器未上报（其中 {overdue} 台已超过入网后 30 个工作日），{} 季度服务记录 {} 条未上报。请在信息上报中生成批次并提交。",
                        o.instruments.len(),
                        o.period,
                        o.service_records
                    ),
                    link: "/console/reports".into(),
                },
                None,
                now,
            )
            .await?;
            sent += 1;
        }
    }
    tx.commit().await?;
    Ok(format!(
        "{} 个单位有待上报信息，已提醒 {sent} 位管理员",
        owing.len()
    ))
}
