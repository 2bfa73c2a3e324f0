//! Console pages of definitions (流程定义): list, reload, the raw YAML editor with checks
//! and diff, dry runs, and the definition's diagram.

#[allow(unused_imports)]
use super::*;

pub(super) async fn workflows_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
) -> PageResult {
    user.require(Permission::WorkflowEdit)?;
    let defs: Vec<Value> = state
        .engine.definitions
        .list()
        .iter()
        .map(|d| json!({"key": d.key, "title": d.title, "version": d.version, "subject": d.subject, "states": d.states.len()}))
        .collect();
    Ok(Page::new(
        "console/workflows.html",
        crate::ctx! { defs => defs, problems => Vec::<def::Problem>::new() },
    )
    .into_response())
}

pub(super) async fn reload_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    CsrfForm(_): CsrfForm<Value>,
) -> PageResult {
    user.require(Permission::WorkflowEdit)?;
    match state
        .engine
        .definitions
        .reload(&state.db, state.now())
        .await
    {
        Ok(loaded) => Ok(redirect_with_flash(
            "/console/workflows",
            &format!("已重新加载 {} 个流程定义", loaded.len()),
        )),
        Err(ReloadError::Invalid(problems)) => {
            let defs: Vec<Value> = state.engine.definitions.list().iter().map(|d| json!({"key": d.key, "title": d.title, "version": d.version, "subject": d.subject, "states": d.states.len()})).collect();
            Ok(Page::new(
                "console/workflows.html",
                crate::ctx! { defs => defs, problems => problems },
            )
            .with_status(StatusCode::UNPROCESSABLE_ENTITY)
            .into_response())
        }
        Err(ReloadError::Failed(e)) => Err(e.into()),
    }
}

/// A line diff (LCS) of two texts: (`+`/`-`/` `, line).
pub fn line_diff(old: &str, new: &str) -> Vec<(char, String)> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push((' ', a[i].to_string()));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(('+', b[j].to_string()));
            j += 1;
        } else {
            out.push(('-', a[i].to_string()));
            i += 1;
        }
    }
    out
}

pub(super) async fn workflow_context(
    state: &AppState,
    key: &str,
) -> Result<(std::sync::Arc<def::Definition>, Vec<Value>)> {
    let d = state
        .engine
        .definitions
        .get(key)
        .ok_or(AppError::NotFound)?;
    let versions = workflow::versions(&state.db, key)
        .await?
        .into_iter()
        .map(|(v, at, _)| json!({"version": v, "at": crate::clock::display(at)}))
        .collect();
    Ok((d, versions))
}

pub(super) async fn workflow_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(key): PagePath<String>,
) -> PageResult {
    user.require(Permission::WorkflowEdit)?;
    let (d, versions) = workflow_context(&state, &key).await?;
    Ok(Page::new(
        "console/workflow.html",
        crate::ctx! { def => crate::ctx!{ key => d.key, title => d.title, version => d.version }, source => d.source, versions => versions,
                   problems => Vec::<def::Problem>::new(), diff => Vec::<(char, String)>::new(), checked => false },
    )
    .into_response())
}

#[derive(Deserialize)]
pub(super) struct SimForm {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    script: String,
}

/// Dry run from the console: nothing is written.
pub(super) async fn workflow_simulate(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(key): PagePath<String>,
    CsrfForm(form): CsrfForm<SimForm>,
) -> PageResult {
    user.require(Permission::WorkflowEdit)?;
    let (d, versions) = workflow_context(&state, &key).await?;
    let subject_text = if form.subject.trim().is_empty() {
        "{}".to_string()
    } else {
        form.subject.clone()
    };
    let mut sim_path = String::new();
    let (report, sim_error) = match serde_json::from_str::<Value>(&subject_text) {
        Ok(subject) => {
            let lines: Vec<String> = form.script.lines().map(|l| l.trim().to_string()).collect();
            let steps = workflow::simulate::run(&d, &subject, &lines);
            sim_path = steps
                .iter()
                .map(|s| s.state.clone())
                .collect::<Vec<_>>()
                .join(",");
            (workflow::simulate::render(&steps), None)
        }
        Err(e) => (String::new(), Some(format!("样例数据不是合法的 JSON：{e}"))),
    };
    let status = if sim_error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(Page::new(
        "console/workflow.html",
        crate::ctx! { def => crate::ctx!{ key => d.key, title => d.title, version => d.version }, source => d.source, versions => versions,
                   problems => Vec::<def::Problem>::new(), diff => Vec::<(char, String)>::new(), checked => false,
                   sim => crate::ctx!{ subject => form.subject, script => form.script, report => report, error => sim_error, path => sim_path } },
    )
    .with_status(status)
    .into_response())
}

#[derive(Deserialize)]
pub(super) struct SaveForm {
    #[serde(default)]
    source: String,
    /// `validate` shows problems and the diff; `publish` also records and loads it.
    #[serde(default)]
    intent: String,
}

pub(super) async fn workflow_save(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(key): PagePath<String>,
    CsrfForm(form): CsrfForm<SaveForm>,
) -> PageResult {
    user.require(Permission::WorkflowEdit)?;
    let (d, versions) = workflow_context(&state, &key).await?;
    let source = form.source.replace("\r\n", "\n");
    let roles = workflow::known_roles(&state.db).await?;
    let problems = match def::parse(
        &format!("{key}.yaml"),
        &source,
        &roles,
        state.engine.definitions.catalog(),
    ) {
        Ok(_) => vec![],
        Err(p) => p,
    };
    if problems.is_empty() && form.intent == "publish" {
        return match state
            .engine
            .definitions
            .publish(&state.db, &key, &source, state.now())
            .await
        {
            Ok(v) => Ok(redirect_with_flash(
                &format!("/console/workflows/{key}"),
                &format!("已发布版本 {v}，新发起的流程将使用新版本"),
            )),
            Err(ReloadError::Invalid(problems)) => Ok(editor(&d, versions, source, problems, true)),
            Err(ReloadError::Failed(e)) => Err(e.into()),
        };
    }
    Ok(editor(&d, versions, source, problems, true))
}

pub(super) fn editor(
    d: &def::Definition,
    versions: Vec<Value>,
    source: String,
    problems: Vec<def::Problem>,
    checked: bool,
) -> Response {
    let diff = line_diff(&d.source, &source);
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Page::new(
        "console/workflow.html",
        crate::ctx! { def => crate::ctx!{ key => d.key, title => d.title, version => d.version }, source => source, versions => versions,
                   problems => problems, diff => diff, checked => checked },
    )
    .with_status(status)
    .into_response()
}

#[derive(Deserialize, Default)]
pub(super) struct SvgQuery {
    /// States of a dry run, comma-separated, drawn as the path taken.
    #[serde(default)]
    path: String,
}

pub(super) async fn workflow_svg(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(key): PagePath<String>,
    PageQuery(q): PageQuery<SvgQuery>,
) -> PageResult {
    let _ = user;
    let d = state
        .engine
        .definitions
        .get(&key)
        .ok_or(AppError::NotFound)?;
    let path: Vec<String> = q
        .path
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .take(200)
        .map(str::to_string)
        .collect();
    Ok(super::tasks::svg_response(diagram::svg_with_path(
        &d, None, &path,
    )))
}
