//! The flow designer (流程设计器) on the 流程定义 page: the flow as an ordered chain of steps,
//! one plain form per flow (no JavaScript needed). Every submit rebuilds the model from the
//! form, applies the button's operation, writes the YAML and runs the same checks as
//! `labshare workflows check`; problems are shown beside the step they concern. The YAML is
//! what gets published; the raw YAML tab opens the designer's YAML and the other way round.

#[allow(unused_imports)]
use super::*;

use std::collections::BTreeMap;

use crate::workflow::{
    def::{
        Assignees, AtDeadline, EffectModel, FlowModel, Mode, StepModel, TaskModel, TransitionModel,
    },
    designer::{self, SimpleGuard},
};

/// Actions that lead somewhere (the others stay in the step).
const LEADING: [&str; 4] = ["approve", "reject", "return", "withdraw"];

/// The form, as (name, value) pairs (checkbox groups repeat their name).
struct Fields(Vec<(String, String)>);

impl Fields {
    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .unwrap_or("")
    }
    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect()
    }
    fn opt(&self, name: &str) -> Option<String> {
        Some(self.get(name).to_string()).filter(|v| !v.is_empty())
    }
}

/// What a step keeps that the form does not edit: its effects, decision hooks, the
/// `require` of its transitions and transitions of other actions.
#[derive(Serialize, Deserialize, Default)]
struct Hidden {
    /// The step's name when the form was drawn: a renamed step's references follow it.
    #[serde(default)]
    orig: String,
    #[serde(default)]
    effects: Vec<EffectModel>,
    #[serde(default)]
    on_decision: Vec<EffectModel>,
    #[serde(default)]
    require: BTreeMap<String, (Option<String>, Option<String>)>,
    #[serde(default)]
    extra_on: Vec<(String, TransitionModel)>,
}

#[derive(Serialize, Deserialize, Default)]
struct FlowHidden {
    #[serde(default)]
    comment: Vec<String>,
    #[serde(default)]
    key: String,
    #[serde(default)]
    subject: String,
}

fn step_from_form(f: &Fields, i: usize) -> StepModel {
    let p = |k: &str| format!("s{i}.{k}");
    let hidden: Hidden = serde_json::from_str(f.get(&p("hidden"))).unwrap_or_default();
    let name = f.get(&p("name")).to_string();
    let terminal = f.get(&p("kind")) == "terminal";
    let task = (!terminal).then(|| {
        let assignees = match f.get(&p("who")) {
            "role" => Assignees::Role(f.get(&p("who_role")).into()),
            "unit_role" => Assignees::UnitRole(f.get(&p("who_unit_role")).into()),
            "user" => Assignees::User(f.get(&p("who_user")).into()),
            "applicant" => Assignees::Applicant(true),
            "expr" => Assignees::Expr(f.get(&p("who_expr")).into()),
            _ => Assignees::Permission(f.get(&p("who_permission")).into()),
        };
        let n = f.get(&p("mode_n"));
        let mode = match f.get(&p("mode")) {
            "all" => Mode::All,
            "sequential" => Mode::Sequential,
            "min" => Mode::MinApprovals(n.parse().unwrap_or(0)),
            "ratio" => Mode::Ratio(n.parse().unwrap_or(0.0)),
            _ => Mode::Any,
        };
        let actions: Vec<String> = def::ACTIONS
            .iter()
            .map(|(a, _)| a.to_string())
            .filter(|a| f.all(&p("act")).contains(a))
            .collect();
        let mut on = Vec::new();
        for a in actions.iter().filter(|a| LEADING.contains(&a.as_str())) {
            let to = f.get(&p(&format!("to.{a}"))).to_string();
            let g = |k: &str| format!("s{i}.g.{a}.{k}");
            let guard = match f.get(&g("mode")) {
                "builder" if !f.get(&g("field")).is_empty() => Some(
                    SimpleGuard {
                        field: f.get(&g("field")).into(),
                        op: f.get(&g("op")).into(),
                        value: f.get(&g("val")).into(),
                    }
                    .expr(),
                ),
                "expr" => f.opt(&g("expr")),
                _ => None,
            };
            let message = guard.as_ref().and_then(|_| f.opt(&g("msg")));
            let (require, require_message) = hidden.require.get(a).cloned().unwrap_or_default();
            on.push((
                a.clone(),
                TransitionModel {
                    to,
                    guard,
                    message,
                    require,
                    require_message,
                },
            ));
        }
        on.extend(hidden.extra_on.iter().cloned());
        let deadline = match (f.get(&p("dl_n")).parse::<i64>(), f.get(&p("dl_unit"))) {
            (Ok(n), unit) if !unit.is_empty() => Some(format!("{n} {unit}")),
            _ => None,
        };
        let at_deadline = match f.get(&p("at")) {
            "remind" => Some(AtDeadline::Remind(true)),
            "escalate" => Some(AtDeadline::Escalate(f.get(&p("at_role")).into())),
            "action" => Some(AtDeadline::Action(f.get(&p("at_action")).into())),
            _ => None,
        };
        TaskModel {
            assignees,
            mode,
            actions,
            on,
            deadline,
            at_deadline,
            cc: f.all(&p("cc")),
            on_decision: hidden.on_decision.clone(),
            anonymous: f.get(&p("anon")) == "1",
            distinct_from: f.all(&p("distinct")),
        }
    });
    StepModel {
        name,
        title: f.opt(&p("title")),
        terminal,
        effects: hidden.effects,
        task,
    }
}

fn model_from_form(f: &Fields) -> FlowModel {
    let hidden: FlowHidden = serde_json::from_str(f.get("flow_hidden")).unwrap_or_default();
    let n: usize = f.get("n").parse().unwrap_or(0).min(100);
    let mut model = FlowModel {
        comment: hidden.comment,
        key: hidden.key,
        subject: hidden.subject,
        title: f.get("title").to_string(),
        initial: f.get("initial").to_string(),
        guard: f.opt("fguard"),
        guard_message: f.opt("fguard_message"),
        steps: (0..n).map(|i| step_from_form(f, i)).collect(),
    };
    // Renamed steps: what led to the old name leads to the new one.
    for i in 0..n {
        let hidden: Hidden =
            serde_json::from_str(f.get(&format!("s{i}.hidden"))).unwrap_or_default();
        let new = model.steps[i].name.clone();
        if hidden.orig.is_empty() || hidden.orig == new || new.is_empty() {
            continue;
        }
        if model.initial == hidden.orig {
            model.initial = new.clone();
        }
        for s in &mut model.steps {
            if let Some(t) = s.task.as_mut() {
                for (_, tr) in t.on.iter_mut() {
                    if tr.to == hidden.orig {
                        tr.to = new.clone();
                    }
                }
                for d in t.distinct_from.iter_mut() {
                    if *d == hidden.orig {
                        *d = new.clone();
                    }
                }
            }
        }
    }
    model
}

/// One step as the form shows it.
fn step_view(s: &StepModel, i: usize, problems: Vec<String>) -> Value {
    let mut hidden = Hidden {
        orig: s.name.clone(),
        effects: s.effects.clone(),
        ..Default::default()
    };
    let mut v = json!({"i": i, "name": s.name, "title": s.title, "terminal": s.terminal, "problems": problems,
        "effects": s.effects.iter().map(|e| if e.with.is_empty() { e.hook.clone() } else { format!("{}（{}）", e.hook, e.with.iter().map(|(k, v)| format!("{k}={}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))).collect::<Vec<_>>().join("，")) }).collect::<Vec<_>>()});
    if let Some(t) = &s.task {
        hidden.on_decision = t.on_decision.clone();
        let (who, who_value) = match &t.assignees {
            Assignees::Role(r) => ("role", r.clone()),
            Assignees::Permission(p) => ("permission", p.clone()),
            Assignees::UnitRole(r) => ("unit_role", r.clone()),
            Assignees::User(u) => ("user", u.clone()),
            Assignees::Applicant(_) => ("applicant", String::new()),
            Assignees::Expr(e) => ("expr", e.clone()),
        };
        let (mode, mode_n) = match &t.mode {
            Mode::Any => ("any", String::new()),
            Mode::All => ("all", String::new()),
            Mode::Sequential => ("sequential", String::new()),
            Mode::MinApprovals(n) => ("min", n.to_string()),
            Mode::Ratio(r) => ("ratio", r.to_string()),
        };
        let mut to = serde_json::Map::new();
        let mut guards = serde_json::Map::new();
        for (a, tr) in &t.on {
            if !LEADING.contains(&a.as_str()) || !t.actions.contains(a) {
                hidden.extra_on.push((a.clone(), tr.clone()));
                continue;
            }
            to.insert(a.clone(), json!(tr.to));
            if tr.require.is_some() || tr.require_message.is_some() {
                hidden
                    .require
                    .insert(a.clone(), (tr.require.clone(), tr.require_message.clone()));
            }
            let g = match tr.guard.as_deref() {
                None => json!({"mode": "none"}),
                Some(expr) => match SimpleGuard::parse(expr) {
                    Some(sg) => {
                        json!({"mode": "builder", "field": sg.field, "op": sg.op, "val": sg.value, "expr": expr, "msg": tr.message})
                    }
                    None => json!({"mode": "expr", "expr": expr, "msg": tr.message}),
                },
            };
            guards.insert(a.clone(), g);
        }
        let (dl_n, dl_unit) = t
            .deadline
            .as_deref()
            .and_then(|d| d.split_once(' '))
            .map(|(n, u)| (n.to_string(), normalise_unit(u)))
            .unwrap_or_default();
        let (at, at_value) = match &t.at_deadline {
            None => ("none", String::new()),
            Some(AtDeadline::Remind(_)) => ("remind", String::new()),
            Some(AtDeadline::Escalate(r)) => ("escalate", r.clone()),
            Some(AtDeadline::Action(a)) => ("action", a.clone()),
        };
        v["task"] = json!({"who": who, "who_value": who_value, "mode": mode, "mode_n": mode_n, "actions": t.actions,
            "to": to, "guards": guards, "dl_n": dl_n, "dl_unit": dl_unit, "at": at, "at_value": at_value,
            "cc": t.cc, "anonymous": t.anonymous, "distinct": t.distinct_from,
            "requires": t.on.iter().filter_map(|(a, tr)| tr.require_message.as_ref().or(tr.require.as_ref()).map(|r| format!("{}：{r}", def::action_label(a)))).collect::<Vec<_>>()});
    }
    v["hidden"] = json!(serde_json::to_string(&hidden).unwrap_or_default());
    v
}

fn normalise_unit(u: &str) -> String {
    match u.trim() {
        "working day" | "working days" | "个工作日" | "工作日" => "working days",
        "day" | "days" | "天" => "days",
        "hour" | "hours" | "小时" => "hours",
        _ => "",
    }
    .to_string()
}

/// Check the model's YAML; problems by step (index) and for the flow as a whole.
async fn check(
    state: &AppState,
    model: &FlowModel,
) -> Result<(String, Vec<def::Problem>, Vec<Vec<String>>, Vec<String>)> {
    let (yaml, ranges) = model.to_yaml_with_lines();
    let roles = workflow::known_roles(&state.db).await?;
    let problems = def::parse(
        &format!("{}.yaml", model.key),
        &yaml,
        &roles,
        state.engine.definitions.catalog(),
    )
    .err()
    .unwrap_or_default();
    let mut by_step = vec![Vec::new(); model.steps.len()];
    let mut general = Vec::new();
    for p in &problems {
        match ranges
            .iter()
            .position(|(a, b)| p.line >= *a && p.line <= *b)
        {
            Some(i) => by_step[i].push(p.message.clone()),
            None => general.push(p.message.clone()),
        }
    }
    Ok((yaml, problems, by_step, general))
}

async fn render(
    state: &AppState,
    model: &FlowModel,
    status: StatusCode,
    checked: bool,
) -> Result<Response> {
    let d = state
        .engine
        .definitions
        .get(&model.key)
        .ok_or(AppError::NotFound)?;
    let (yaml, problems, by_step, general) = check(state, model).await?;
    let choices = designer::choices(&state.db).await?;
    let steps: Vec<Value> = model
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| step_view(s, i, by_step[i].clone()))
        .collect();
    let targets: Vec<(String, String)> = model
        .steps
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                s.title.clone().unwrap_or_else(|| s.name.clone()),
            )
        })
        .collect();
    let fields = workflow::subject_fields(&model.subject);
    let flow_hidden = serde_json::to_string(&FlowHidden {
        comment: model.comment.clone(),
        key: model.key.clone(),
        subject: model.subject.clone(),
    })
    .unwrap_or_default();
    let status = if problems.is_empty() {
        status
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let diff = line_diff(&d.source, &yaml);
    Ok(Page::new(
        "console/workflow_designer.html",
        crate::ctx! { def => crate::ctx!{ key => d.key, title => d.title, version => d.version },
        flow => model, steps => steps, targets => targets, choices => choices, fields => fields,
        actions => def::ACTIONS, leading => LEADING, ops => designer::GUARD_OPS,
        flow_hidden => flow_hidden, problems => problems, general => general, checked => checked,
        changed => diff.iter().any(|(c, _)| *c != ' '), yaml => yaml },
    )
    .with_status(status)
    .into_response())
}

pub(super) async fn designer_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(key): PagePath<String>,
) -> PageResult {
    user.require(Permission::WorkflowEdit)?;
    let d = state
        .engine
        .definitions
        .get(&key)
        .ok_or(AppError::NotFound)?;
    let model = FlowModel::from_yaml(&d.file, &d.source)
        .map_err(|p| AppError::unprocessable("invalid_workflow", p.to_string()))?;
    Ok(render(&state, &model, StatusCode::OK, false).await?)
}

/// A designer submit: `op` is `check`, `publish`, `yaml` (open in the YAML tab),
/// `from_yaml` (open the YAML tab's text here), `add:I`, `remove:I`, `up:I`, `down:I`.
pub(super) async fn designer_submit(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(key): PagePath<String>,
    CsrfForm(form): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    user.require(Permission::WorkflowEdit)?;
    let d = state
        .engine
        .definitions
        .get(&key)
        .ok_or(AppError::NotFound)?;
    let f = Fields(form);
    let op = f.get("op").to_string();
    if op == "from_yaml" {
        let source = f.get("source").replace("\r\n", "\n");
        let (_, versions) = definitions::workflow_context(&state, &key).await?;
        return match FlowModel::from_yaml(&d.file, &source) {
            Ok(model) if model.key == key => {
                Ok(render(&state, &model, StatusCode::OK, true).await?)
            }
            Ok(_) => Ok(definitions::editor(
                &d,
                versions,
                source,
                vec![def::Problem {
                    file: d.file.clone(),
                    line: 1,
                    message: format!("流程标识必须是 `{key}`"),
                }],
                true,
            )),
            Err(p) => Ok(definitions::editor(&d, versions, source, vec![p], true)),
        };
    }
    let mut model = model_from_form(&f);
    if model.key != key {
        return Err(AppError::BadRequest("表单与流程不一致，请刷新页面后重试".into()).into());
    }
    let index = |prefix: &str| {
        op.strip_prefix(prefix)
            .and_then(|i| i.parse::<usize>().ok())
            .filter(|i| *i < model.steps.len())
    };
    if let Some(i) = index("add:") {
        designer::add_after(&mut model, i);
    } else if let Some(i) = index("remove:") {
        designer::remove(&mut model, i);
    } else if let Some(i) = index("up:") {
        designer::move_step(&mut model, i, true);
    } else if let Some(i) = index("down:") {
        designer::move_step(&mut model, i, false);
    } else if op == "add_end" {
        let name = designer::free_name(&model, "end");
        model.steps.push(StepModel {
            name,
            title: Some("新结束状态".into()),
            terminal: true,
            effects: vec![],
            task: None,
        });
    }
    if op == "yaml" {
        let (_, versions) = definitions::workflow_context(&state, &key).await?;
        let (yaml, problems, _, _) = check(&state, &model).await?;
        return Ok(definitions::editor(&d, versions, yaml, problems, true));
    }
    if op == "publish" {
        let (yaml, problems, _, _) = check(&state, &model).await?;
        if problems.is_empty() {
            return match state
                .engine
                .definitions
                .publish(&state.db, &key, &yaml, state.now())
                .await
            {
                Ok(v) => Ok(redirect_with_flash(
                    &format!("/console/workflows/{key}/designer"),
                    &format!(
                        "已发布版本 {v}，新发起的流程将使用新版本；进行中的流程仍按原版本办理"
                    ),
                )),
                Err(ReloadError::Invalid(_)) => {
                    Ok(render(&state, &model, StatusCode::UNPROCESSABLE_ENTITY, true).await?)
                }
                Err(ReloadError::Failed(e)) => Err(e.into()),
            };
        }
    }
    Ok(render(&state, &model, StatusCode::OK, true).await?)
}
