//! The designer's operations on a `FlowModel` (add a step after another and rewire the
//! chain, remove a step, move a step up or down the chain), the guard builder, and the lists
//! an administrator chooses from (roles, permissions, users).

#[allow(unused_imports)]
use super::*;

use def::{FlowModel, StepModel, TaskModel, TransitionModel};

/// What the administrator picks approvers from.
#[derive(Clone, Debug, Serialize)]
pub struct Choices {
    /// (key, name) of built-in and custom roles.
    pub roles: Vec<(String, String)>,
    /// (key, label) of permissions.
    pub permissions: Vec<(String, String)>,
    /// (username, display name) of active users.
    pub users: Vec<(String, String)>,
}

pub async fn choices(db: &Db) -> Result<Choices> {
    let mut roles: Vec<(String, String)> = crate::auth::BUILTIN_ROLES
        .iter()
        .map(|r| (r.key.to_string(), r.name.to_string()))
        .collect();
    let custom: Vec<(String, String)> = sqlx::query_as("SELECT key, name FROM roles ORDER BY id")
        .fetch_all(&db.pool)
        .await?;
    for (k, n) in custom {
        if !roles.iter().any(|(rk, _)| *rk == k) {
            roles.push((k, n));
        }
    }
    let permissions = crate::auth::Permission::ALL
        .iter()
        .map(|p| (p.key().to_string(), p.label().to_string()))
        .collect();
    let users: Vec<(String, String)> = sqlx::query_as(
        "SELECT username, display_name FROM users WHERE is_active = 1 ORDER BY username LIMIT 500",
    )
    .fetch_all(&db.pool)
    .await?;
    Ok(Choices {
        roles,
        permissions,
        users,
    })
}

/// A state name not used yet, from `base` (`recheck`, `recheck_2`, …).
pub fn free_name(model: &FlowModel, base: &str) -> String {
    let mut name = base.to_string();
    let mut n = 2;
    while model.step(&name).is_some() {
        name = format!("{base}_{n}");
        n += 1;
    }
    name
}

fn target(step: &StepModel, action: &str) -> Option<String> {
    step.task
        .as_ref()
        .and_then(|t| t.on.iter().find(|(a, _)| a == action))
        .map(|(_, tr)| tr.to.clone())
}

fn set_target(task: &mut TaskModel, action: &str, to: &str) {
    if let Some((_, tr)) = task.on.iter_mut().find(|(a, _)| a == action) {
        tr.to = to.to_string();
    }
}

/// Add a review step after step `index`: the step's 同意 now leads to the new step, whose
/// 同意 leads where the step's did, 退回 back to the step and 驳回 where the step's did.
pub fn add_after(model: &mut FlowModel, index: usize) -> String {
    let name = free_name(model, "step");
    let prev = model.steps.get(index).cloned();
    let approve_to = prev
        .as_ref()
        .and_then(|p| target(p, "approve"))
        .or_else(|| {
            model
                .steps
                .iter()
                .find(|s| s.terminal)
                .map(|s| s.name.clone())
        })
        .unwrap_or_default();
    let mut on = vec![(
        "approve".to_string(),
        TransitionModel {
            to: approve_to,
            ..Default::default()
        },
    )];
    let mut actions = vec!["approve".to_string()];
    if let Some(reject) = prev.as_ref().and_then(|p| target(p, "reject")) {
        actions.push("reject".into());
        on.push((
            "reject".into(),
            TransitionModel {
                to: reject,
                ..Default::default()
            },
        ));
    }
    if let Some(p) = prev.as_ref().filter(|p| p.task.is_some()) {
        actions.push("return".into());
        on.push((
            "return".into(),
            TransitionModel {
                to: p.name.clone(),
                ..Default::default()
            },
        ));
    }
    actions.extend(["transfer".to_string(), "comment".to_string()]);
    let template = prev.as_ref().and_then(|p| p.task.clone());
    let task = TaskModel {
        assignees: template
            .as_ref()
            .map(|t| t.assignees.clone())
            .unwrap_or(def::Assignees::Role("platform_admin".into())),
        mode: def::Mode::Any,
        actions,
        on,
        deadline: template.as_ref().and_then(|t| t.deadline.clone()),
        at_deadline: Some(def::AtDeadline::Remind(true)),
        cc: vec![],
        on_decision: vec![],
        anonymous: false,
        distinct_from: vec![],
    };
    let step = StepModel {
        name: name.clone(),
        title: Some("新步骤".into()),
        terminal: false,
        effects: vec![],
        task: Some(task),
    };
    let at = (index + 1).min(model.steps.len());
    if let Some(p) = model.steps.get_mut(index)
        && let Some(t) = p.task.as_mut()
    {
        set_target(t, "approve", &name);
    }
    model.steps.insert(at, step);
    name
}

/// Remove step `index`; what led to it now leads where its 同意 led (or stays, for the
/// checks to point out).
pub fn remove(model: &mut FlowModel, index: usize) {
    if index >= model.steps.len() {
        return;
    }
    let gone = model.steps.remove(index);
    let Some(next) = target(&gone, "approve") else {
        return;
    };
    if model.initial == gone.name {
        model.initial = next.clone();
    }
    for s in &mut model.steps {
        if let Some(t) = s.task.as_mut() {
            for (_, tr) in t.on.iter_mut() {
                if tr.to == gone.name {
                    tr.to = next.clone();
                }
            }
            t.distinct_from.retain(|d| *d != gone.name);
        }
    }
}

/// Move step `index` one place down the chain (`up = false`) or up. When the two steps are
/// linked by 同意 (a → b), the chain is rewired so b comes first: what led to a leads to b,
/// b's 同意 leads to a, and a's 同意 leads where b's did.
pub fn move_step(model: &mut FlowModel, index: usize, up: bool) {
    let (i, j) = if up {
        if index == 0 || index >= model.steps.len() {
            return;
        }
        (index - 1, index)
    } else {
        if index + 1 >= model.steps.len() {
            return;
        }
        (index, index + 1)
    };
    let a = model.steps[i].name.clone();
    let b = model.steps[j].name.clone();
    if target(&model.steps[i], "approve").as_deref() == Some(b.as_str()) {
        let after_b = target(&model.steps[j], "approve").unwrap_or_default();
        for s in model.steps.iter_mut() {
            if s.name == a || s.name == b {
                continue;
            }
            if let Some(t) = s.task.as_mut() {
                for (action, tr) in t.on.iter_mut() {
                    if action == "approve" && tr.to == a {
                        tr.to = b.clone();
                    }
                }
            }
        }
        if let Some(t) = model.steps[j].task.as_mut() {
            set_target(t, "approve", &a);
        }
        if let Some(t) = model.steps[i].task.as_mut() {
            set_target(t, "approve", &after_b);
        }
        if model.initial == a {
            model.initial = b.clone();
        }
    }
    model.steps.swap(i, j);
}

/// The comparison operators of the guard builder.
pub const GUARD_OPS: [(&str, &str); 6] = [
    ("==", "等于"),
    ("!=", "不等于"),
    (">=", "大于或等于"),
    ("<=", "小于或等于"),
    (">", "大于"),
    ("<", "小于"),
];

/// A guard the builder writes: `subject.<field> <op> <value>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SimpleGuard {
    pub field: String,
    pub op: String,
    pub value: String,
}

impl SimpleGuard {
    /// Read a guard the builder could have written; anything else stays a free expression.
    pub fn parse(expr: &str) -> Option<SimpleGuard> {
        let rest = expr.trim().strip_prefix("subject.")?;
        let (field, rest) = rest.split_once(' ')?;
        if !field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        let (op, value) = rest.trim().split_once(' ')?;
        if !GUARD_OPS.iter().any(|(o, _)| *o == op) {
            return None;
        }
        let value = value.trim();
        let value = if let Some(s) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            if s.contains('"') || s.contains('\\') {
                return None;
            }
            s.to_string()
        } else if value.parse::<f64>().is_ok() {
            value.to_string()
        } else {
            return None;
        };
        Some(SimpleGuard {
            field: field.into(),
            op: op.into(),
            value,
        })
    }

    /// The expression: numbers bare, text quoted.
    pub fn expr(&self) -> String {
        let v = if self.value.trim().parse::<f64>().is_ok() {
            self.value.trim().to_string()
        } else {
            serde_json::to_string(self.value.trim()).unwrap_or_default()
        };
        format!("subject.{} {} {v}", self.field, self.op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn onboarding() -> FlowModel {
        let src = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("workflows/instrument_onboarding.yaml"),
        )
        .unwrap();
        FlowModel::from_yaml("instrument_onboarding.yaml", &src).unwrap()
    }

    #[test]
    fn adding_a_step_after_the_review_rewires_the_chain_and_passes_the_checks() {
        let mut m = onboarding();
        let name = add_after(&mut m, 0);
        assert_eq!(m.steps[1].name, name);
        let review = m.step("review").unwrap().task.as_ref().unwrap();
        assert_eq!(
            review.on[0],
            (
                "approve".into(),
                TransitionModel {
                    to: name.clone(),
                    ..Default::default()
                }
            )
        );
        let new = m.step(&name).unwrap().task.as_ref().unwrap();
        assert_eq!(new.on[0].1.to, "approved");
        assert!(
            new.on
                .iter()
                .any(|(a, t)| a == "return" && t.to == "review")
        );
        let yaml = m.to_yaml();
        def::parse(
            "instrument_onboarding.yaml",
            &yaml,
            &def::builtin_roles(),
            &crate::server::workflow_catalog(),
        )
        .unwrap_or_else(|p| panic!("{p:?}\n{yaml}"));
        // Moving it up puts it first in the chain; removing it restores the original flow.
        move_step(&mut m, 1, true);
        assert_eq!(m.initial, name);
        assert_eq!(m.steps[0].name, name);
        move_step(&mut m, 0, false);
        assert_eq!(m.initial, "review");
        remove(&mut m, 1);
        assert_eq!(m, onboarding());
    }

    #[test]
    fn the_guard_builder_reads_what_it_writes() {
        let g = SimpleGuard::parse("subject.expert_count >= 3").unwrap();
        assert_eq!(g.expr(), "subject.expert_count >= 3");
        let g = SimpleGuard {
            field: "city".into(),
            op: "==".into(),
            value: "许昌市".into(),
        };
        assert_eq!(SimpleGuard::parse(&g.expr()), Some(g));
        assert_eq!(
            SimpleGuard::parse("subject.contract_count >= 1 and subject.invoice_count >= 1"),
            None
        );
    }
}
