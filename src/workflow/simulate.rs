//! Dry runs (试运行): walk a definition with sample subject data and a script of decisions,
//! reporting the path, who would be assigned and which effects would fire — in memory only,
//! no record is touched.

use serde::Serialize;
use serde_json::{Value, json};

use super::def::{Assignees, Definition, Mode, action_label};

#[derive(Debug, Serialize)]
pub struct SimStep {
    pub state: String,
    pub title: String,
    pub assignees: String,
    pub effects: Vec<String>,
    pub action: Option<String>,
    pub note: Option<String>,
}

fn describe(a: &Assignees, mode: &Mode) -> String {
    let who = match a {
        Assignees::Role(r) => format!("角色 {r} 的全部用户"),
        Assignees::Permission(p) => format!("拥有权限 {p} 的用户"),
        Assignees::UnitRole(r) => format!("本单位的 {r}"),
        Assignees::User(u) => format!("用户 {u}"),
        Assignees::Applicant(_) => "申请人".to_string(),
        Assignees::Expr(e) => format!("表达式 {e}"),
    };
    let how = match mode {
        Mode::Any => "或签".to_string(),
        Mode::All => "会签".to_string(),
        Mode::Sequential => "依次审批".to_string(),
        Mode::MinApprovals(n) => format!("至少 {n} 人同意"),
        Mode::Ratio(r) => format!("至少 {:.0}% 同意", r * 100.0),
    };
    let recusal = if matches!(a, Assignees::Applicant(_) | Assignees::UnitRole(_)) {
        ""
    } else {
        "，本单位成员回避"
    };
    format!("{who}（{how}{recusal}）")
}

/// Parse one script line: `approve score=90 grade=good`.
pub fn parse_line(line: &str) -> (String, Value) {
    let mut parts = line.split_whitespace();
    let action = parts.next().unwrap_or("").to_string();
    let mut form = serde_json::Map::new();
    for kv in parts {
        if let Some((k, v)) = kv.split_once('=') {
            let val = v
                .parse::<f64>()
                .map(|n| json!(n))
                .unwrap_or_else(|_| json!(v));
            form.insert(k.to_string(), val);
        }
    }
    (action, Value::Object(form))
}

/// Walk `d` from its initial state. Each script line is the step's outcome (for a
/// countersign or quorum step, `approve` means the step's condition was met).
pub fn run(d: &Definition, subject: &Value, script: &[String]) -> Vec<SimStep> {
    let mut out = Vec::new();
    let mut state = d.initial.clone();
    let mut prev: Option<String> = None;
    if let Some(g) = &d.guard {
        let ctx = json!({"subject": subject, "data": {}, "form": {}, "scores": super::score_summary(&[])});
        if !super::eval(g.guard.as_deref().unwrap_or("true"), &ctx)
            .map(|v| v.is_true())
            .unwrap_or(false)
        {
            out.push(SimStep {
                state: String::new(),
                title: "发起".into(),
                assignees: String::new(),
                effects: vec![],
                action: None,
                note: Some(format!(
                    "发起被拒绝：{}",
                    g.message.clone().unwrap_or_default()
                )),
            });
            return out;
        }
    }
    let mut lines = script.iter().filter(|l| !l.trim().is_empty());
    for _ in 0..100 {
        let Some(st) = d.state(&state) else { break };
        let effects = st
            .effects
            .iter()
            .map(|e| {
                format!(
                    "{}({})",
                    e.hook,
                    serde_json::to_string(&e.with).unwrap_or_default()
                )
            })
            .collect();
        let mut step = SimStep {
            state: state.clone(),
            title: st.title.clone(),
            assignees: st
                .task
                .as_ref()
                .map(|t| describe(&t.assignees, &t.mode))
                .unwrap_or_default(),
            effects,
            action: None,
            note: None,
        };
        let Some(task) = &st.task else {
            step.note = Some("终止状态，流程结束".into());
            out.push(step);
            break;
        };
        let Some(line) = lines.next() else {
            step.note = Some("脚本结束，流程停在此环节".into());
            out.push(step);
            break;
        };
        let (action, form) = parse_line(line);
        step.action = Some(format!("{}（{action}）", action_label(&action)));
        if !task.actions.contains(&action) {
            step.note = Some(format!("此环节不允许 `{action}`，脚本停止"));
            out.push(step);
            break;
        }
        let scores: Vec<f64> = form
            .get("score")
            .and_then(Value::as_f64)
            .into_iter()
            .collect();
        let ctx = json!({"subject": subject, "data": {}, "form": form, "scores": super::score_summary(&scores)});
        let next = match task.on.get(&action) {
            Some(tr) => {
                let ok = tr
                    .guard
                    .as_deref()
                    .map(|g| super::eval(g, &ctx).map(|v| v.is_true()).unwrap_or(false))
                    .unwrap_or(true);
                if !ok {
                    step.note = Some(format!(
                        "条件不满足：{}",
                        tr.message.clone().unwrap_or_default()
                    ));
                    out.push(step);
                    continue;
                }
                Some(tr.to.clone())
            }
            None if action == "return" => prev.clone(),
            None => None,
        };
        out.push(step);
        if let Some(n) = next {
            prev = Some(state.clone());
            state = n;
        }
    }
    out
}

/// Plain-text report of a dry run.
pub fn render(steps: &[SimStep]) -> String {
    let mut s = String::new();
    for (i, st) in steps.iter().enumerate() {
        s.push_str(&format!("{}. {} [{}]\n", i + 1, st.title, st.state));
        for e in &st.effects {
            s.push_str(&format!("   效果：{e}（试运行，不写入）\n"));
        }
        if !st.assignees.is_empty() {
            s.push_str(&format!("   处理人：{}\n", st.assignees));
        }
        if let Some(a) = &st.action {
            s.push_str(&format!("   操作：{a}\n"));
        }
        if let Some(n) = &st.note {
            s.push_str(&format!("   说明：{n}\n"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for the units module's declaration: the engine's tests name no domain module.
    const UNIT: &[super::super::Subject] = &[super::super::Subject {
        kind: "unit",
        table: "units",
        status_column: "certification_status",
        unit: super::super::UnitOf::Itself,
        has_joined_on: true,
        searchable: false,
        label: |_, _| Box::pin(async { Ok(None) }),
    }];

    fn unit_cert() -> Definition {
        let src = include_str!("../../workflows/unit_certification.yaml");
        super::super::def::parse(
            "unit_certification.yaml",
            src,
            &super::super::def::builtin_roles(),
            &super::super::Catalog::engine().subjects(UNIT),
        )
        .unwrap()
    }

    #[test]
    fn a_dry_run_follows_returns_and_guards() {
        let d = unit_cert();
        let subject = json!({"dishonest": 0, "abnormal_operation": 0});
        let script: Vec<String> = ["return", "approve", "approve"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let steps = run(&d, &subject, &script);
        let path: Vec<_> = steps.iter().map(|s| s.state.as_str()).collect();
        assert_eq!(path, ["review", "revise", "review", "certified"]);
        assert!(steps[3].effects[0].contains("certified"));
    }

    #[test]
    fn a_dry_run_of_a_dishonest_unit_stops_at_the_start() {
        let steps = run(
            &unit_cert(),
            &json!({"dishonest": 1}),
            &["approve".to_string()],
        );
        assert!(steps[0].note.as_deref().unwrap().contains("失信"));
    }
}
