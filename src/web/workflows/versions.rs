//! Versions of a definition (版本): diff any two, roll back, which running instances are on
//! which version, and moving running instances to another version.

#[allow(unused_imports)]
use super::*;

#[derive(Deserialize, Default)]
pub(super) struct DiffQuery {
    #[serde(default)]
    a: Option<String>,
    #[serde(default)]
    b: Option<String>,
}

pub(super) async fn versions_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(key): PagePath<String>,
    PageQuery(q): PageQuery<DiffQuery>,
) -> PageResult {
    user.require(Permission::WorkflowEdit)?;
    let d = state
        .engine
        .definitions
        .get(&key)
        .ok_or(AppError::NotFound)?;
    let rows = workflow::version_rows(&state.db, &key).await?;
    let pick = |s: &Option<String>, default: i64| {
        s.as_deref()
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|v| rows.iter().any(|r| r.version == *v))
            .unwrap_or(default)
    };
    let newest = rows.first().map(|r| r.version).unwrap_or(d.version);
    let older = rows.get(1).map(|r| r.version).unwrap_or(newest);
    let (a, b) = (pick(&q.a, older), pick(&q.b, newest));
    let diff = line_diff(
        &workflow::version_source(&state.db, &key, a)
            .await
            .unwrap_or_default(),
        &workflow::version_source(&state.db, &key, b)
            .await
            .unwrap_or_default(),
    );
    let versions: Vec<Value> = rows
        .iter()
        .map(|r| json!({"version": r.version, "at": workflow::chinese_datetime(r.created_at), "running": r.running,
            "instances": r.instances.iter().map(|(id, s)| json!({"id": id, "state": s})).collect::<Vec<_>>()}))
        .collect();
    Ok(Page::new(
        "console/workflow_versions.html",
        crate::ctx! { def => crate::ctx!{ key => d.key, title => d.title, version => d.version },
        versions => versions, a => a, b => b, diff => diff,
        changed => diff.iter().any(|(c, _)| *c != ' ') },
    )
    .into_response())
}

#[derive(Deserialize)]
pub(super) struct RollbackForm {
    #[serde(default)]
    version: String,
}

pub(super) async fn rollback(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(key): PagePath<String>,
    CsrfForm(form): CsrfForm<RollbackForm>,
) -> PageResult {
    user.require(Permission::WorkflowEdit)?;
    let to = format!("/console/workflows/{key}/versions");
    let Ok(version) = form.version.trim().parse::<i64>() else {
        return Ok(redirect_with_flash(&to, "请选择要回滚到的版本"));
    };
    match state.engine.rollback(&key, version).await {
        Ok(v) => Ok(redirect_with_flash(
            &to,
            &format!("已回滚：版本 {v} 使用版本 {version} 的内容，新发起的流程将使用它"),
        )),
        Err(ReloadError::Invalid(p)) => Ok(redirect_with_flash(
            &to,
            &format!(
                "版本 {version} 的内容不能通过当前的校验，未回滚：{}",
                p.first().map(|p| p.message.clone()).unwrap_or_default()
            ),
        )),
        Err(ReloadError::Failed(AppError::NotFound)) => {
            Ok(redirect_with_flash(&to, "没有这个版本"))
        }
        Err(ReloadError::Failed(e)) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub(super) struct MigrateForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

pub(super) async fn migrate(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(key): PagePath<String>,
    CsrfForm(form): CsrfForm<MigrateForm>,
) -> PageResult {
    user.require(Permission::WorkflowEdit)?;
    let back = format!("/console/workflows/{key}/versions");
    let (Ok(from), Ok(to)) = (
        form.from.trim().parse::<i64>(),
        form.to.trim().parse::<i64>(),
    ) else {
        return Ok(redirect_with_flash(&back, "请选择迁移的原版本和目标版本"));
    };
    if from == to {
        return Ok(redirect_with_flash(&back, "原版本与目标版本相同，无需迁移"));
    }
    let out = match state.engine.migrate_instances(&user, &key, from, to).await {
        Ok(out) => out,
        Err(AppError::NotFound) => return Ok(redirect_with_flash(&back, "没有这个版本")),
        Err(e) => return Err(e.into()),
    };
    let mut msg = format!(
        "已将 {} 个进行中的流程从版本 {from} 迁移到版本 {to}",
        out.moved.len()
    );
    if !out.skipped.is_empty() {
        let why: Vec<String> = out
            .skipped
            .iter()
            .take(10)
            .map(|(id, w)| format!("#{id}：{w}"))
            .collect();
        msg.push_str(&format!(
            "；{} 个未迁移（{}）",
            out.skipped.len(),
            why.join("；")
        ));
    }
    Ok(redirect_with_flash(&back, &msg))
}
