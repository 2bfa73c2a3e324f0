//! The designer's model of a flow (流程设计器): an ordered chain of steps read from the YAML
//! and written back to it. The YAML stays the source of truth: the designer reads a
//! definition with `FlowModel::from_yaml` and publishes `FlowModel::to_yaml`, which passes
//! the same checks (`parse`) as any hand-written file. Comments inside the file are not
//! kept (the leading comment block is).

#[allow(unused_imports)]
use super::*;

/// A flow for the designer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowModel {
    /// The comment lines at the top of the file (without `# `).
    pub comment: Vec<String>,
    pub key: String,
    pub title: String,
    pub subject: String,
    pub initial: String,
    pub guard: Option<String>,
    pub guard_message: Option<String>,
    /// In the file's order.
    pub steps: Vec<StepModel>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepModel {
    pub name: String,
    pub title: Option<String>,
    pub terminal: bool,
    pub effects: Vec<EffectModel>,
    pub task: Option<TaskModel>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EffectModel {
    pub hook: String,
    pub with: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskModel {
    pub assignees: Assignees,
    pub mode: Mode,
    pub actions: Vec<String>,
    /// Where each action leads, in the order of `actions` (then any others by name).
    pub on: Vec<(String, TransitionModel)>,
    pub deadline: Option<String>,
    pub at_deadline: Option<AtDeadline>,
    pub cc: Vec<String>,
    pub on_decision: Vec<EffectModel>,
    pub anonymous: bool,
    pub distinct_from: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TransitionModel {
    pub to: String,
    pub guard: Option<String>,
    pub message: Option<String>,
    pub require: Option<String>,
    pub require_message: Option<String>,
}

impl TransitionModel {
    fn is_plain(&self) -> bool {
        self.guard.is_none()
            && self.message.is_none()
            && self.require.is_none()
            && self.require_message.is_none()
    }
}

fn effect(e: &RawEffect) -> EffectModel {
    EffectModel {
        hook: e.hook.value.clone(),
        with: e.with.clone(),
    }
}

/// Positions of the state keys under `states:` in the source (for the file's order).
fn state_positions(source: &str, names: &BTreeSet<&str>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    let mut in_states = false;
    let mut indent: Option<usize> = None;
    for (i, line) in source.lines().enumerate() {
        if line.starts_with("states:") {
            in_states = true;
            continue;
        }
        if !in_states || line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let lead = line.len() - line.trim_start().len();
        if lead == 0 {
            in_states = false;
            continue;
        }
        if indent.is_none() {
            indent = Some(lead);
        }
        if Some(lead) == indent
            && let Some((name, _)) = line.trim_start().split_once(':')
            && names.contains(name.trim())
        {
            out.entry(name.trim().to_string()).or_insert(i);
        }
    }
    out
}

impl FlowModel {
    /// Read a definition's YAML (syntax and shape only; `parse` does the checks).
    pub fn from_yaml(file: &str, source: &str) -> Result<FlowModel, Problem> {
        let raw = check::read_yaml(file, source)?;
        let names: BTreeSet<&str> = raw.states.keys().map(String::as_str).collect();
        let pos = state_positions(source, &names);
        let mut order: Vec<&String> = raw.states.keys().collect();
        order.sort_by_key(|n| (pos.get(*n).copied().unwrap_or(usize::MAX), (*n).clone()));
        let steps = order
            .into_iter()
            .map(|name| {
                let st = &raw.states[name];
                StepModel {
                    name: name.clone(),
                    title: st.title.clone(),
                    terminal: st.terminal,
                    effects: st.effects.iter().map(effect).collect(),
                    task: st.task.as_ref().map(|t| {
                        let actions: Vec<String> =
                            t.actions.iter().map(|a| a.value.clone()).collect();
                        let mut keys: Vec<&String> = t.on.keys().collect();
                        keys.sort_by_key(|k| {
                            (
                                actions.iter().position(|a| a == *k).unwrap_or(usize::MAX),
                                (*k).clone(),
                            )
                        });
                        TaskModel {
                            assignees: t.assignees.value.clone(),
                            mode: t.mode.clone(),
                            on: keys
                                .into_iter()
                                .map(|k| {
                                    let tr = match &t.on[k].value {
                                        RawTransition::To(to) => TransitionModel {
                                            to: to.clone(),
                                            ..Default::default()
                                        },
                                        RawTransition::Full {
                                            to,
                                            guard,
                                            message,
                                            require,
                                            require_message,
                                        } => TransitionModel {
                                            to: to.clone(),
                                            guard: guard.clone(),
                                            message: message.clone(),
                                            require: require.clone(),
                                            require_message: require_message.clone(),
                                        },
                                    };
                                    (k.clone(), tr)
                                })
                                .collect(),
                            actions,
                            deadline: t.deadline.as_ref().map(|d| d.value.clone()),
                            at_deadline: t.at_deadline.clone(),
                            cc: t.cc.iter().map(|c| c.value.clone()).collect(),
                            on_decision: t.on_decision.iter().map(effect).collect(),
                            anonymous: t.anonymous,
                            distinct_from: t
                                .distinct_from
                                .iter()
                                .map(|d| d.value.clone())
                                .collect(),
                        }
                    }),
                }
            })
            .collect();
        let comment = source
            .lines()
            .take_while(|l| l.starts_with('#'))
            .map(|l| l.trim_start_matches('#').trim().to_string())
            .collect();
        Ok(FlowModel {
            comment,
            key: raw.key.value,
            title: raw.title,
            subject: raw.subject.value,
            initial: raw.initial.value,
            guard: raw.guard.map(|g| g.value),
            guard_message: raw.guard_message,
            steps,
        })
    }

    /// The YAML of the model, and each step's line range in it (1-based, inclusive), so the
    /// checker's `file:line` problems can be shown beside the step they concern.
    pub fn to_yaml_with_lines(&self) -> (String, Vec<(u64, u64)>) {
        let mut out = String::new();
        for c in &self.comment {
            out.push_str(&format!("# {c}\n").replace("# \n", "#\n"));
        }
        out.push_str(&format!("key: {}\n", scalar(&self.key)));
        out.push_str(&format!("title: {}\n", scalar(&self.title)));
        out.push_str(&format!("subject: {}\n", scalar(&self.subject)));
        out.push_str(&format!("initial: {}\n", scalar(&self.initial)));
        if let Some(g) = &self.guard {
            out.push_str(&format!("guard: {}\n", quoted(g)));
        }
        if let Some(m) = &self.guard_message {
            out.push_str(&format!("guard_message: {}\n", quoted(m)));
        }
        out.push_str("states:\n");
        let mut ranges = Vec::new();
        for s in &self.steps {
            let start = out.lines().count() as u64 + 1;
            write_step(&mut out, s);
            ranges.push((start, out.lines().count() as u64));
        }
        (out, ranges)
    }

    pub fn to_yaml(&self) -> String {
        self.to_yaml_with_lines().0
    }

    pub fn step(&self, name: &str) -> Option<&StepModel> {
        self.steps.iter().find(|s| s.name == name)
    }
}

/// A plain scalar when it is safe (an identifier-like word or Chinese text without YAML
/// indicators), otherwise a double-quoted (JSON) string.
fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && !s.starts_with(|c: char| c.is_whitespace() || "-?:,[]{}#&*!|>'\"%@`~".contains(c))
        && !s.ends_with(char::is_whitespace)
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.contains(['\n', '\t', '"', '\'', ',', '[', ']', '{', '}'])
        && s.parse::<f64>().is_err()
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~" | "y" | "n"
        );
    if plain { s.to_string() } else { quoted(s) }
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn flow_map(with: &BTreeMap<String, serde_json::Value>) -> String {
    let items: Vec<String> = with
        .iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => scalar(s),
                other => other.to_string(),
            };
            format!("{}: {v}", scalar(k))
        })
        .collect();
    format!("{{ {} }}", items.join(", "))
}

fn write_effects(out: &mut String, key: &str, indent: &str, effects: &[EffectModel]) {
    if effects.is_empty() {
        return;
    }
    out.push_str(&format!("{indent}{key}:\n"));
    for e in effects {
        out.push_str(&format!("{indent}  - hook: {}\n", scalar(&e.hook)));
        if !e.with.is_empty() {
            out.push_str(&format!("{indent}    with: {}\n", flow_map(&e.with)));
        }
    }
}

fn list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|i| scalar(i)).collect();
    format!("[{}]", items.join(", "))
}

fn write_step(out: &mut String, s: &StepModel) {
    out.push_str(&format!("  {}:\n", scalar(&s.name)));
    if let Some(t) = &s.title {
        out.push_str(&format!("    title: {}\n", scalar(t)));
    }
    if s.terminal {
        out.push_str("    terminal: true\n");
    }
    write_effects(out, "effects", "    ", &s.effects);
    let Some(t) = &s.task else { return };
    out.push_str("    task:\n");
    let who = match &t.assignees {
        Assignees::Role(r) => format!("{{ role: {} }}", scalar(r)),
        Assignees::Permission(p) => format!("{{ permission: {} }}", scalar(p)),
        Assignees::UnitRole(r) => format!("{{ unit_role: {} }}", scalar(r)),
        Assignees::User(u) => format!("{{ user: {} }}", scalar(u)),
        Assignees::Applicant(b) => format!("{{ applicant: {b} }}"),
        Assignees::Expr(e) => format!("{{ expr: {} }}", quoted(e)),
    };
    out.push_str(&format!("      assignees: {who}\n"));
    if t.anonymous {
        out.push_str("      anonymous: true\n");
    }
    if !t.distinct_from.is_empty() {
        out.push_str(&format!(
            "      distinct_from: {}\n",
            list(&t.distinct_from)
        ));
    }
    let mode = match &t.mode {
        Mode::Any => "any".to_string(),
        Mode::All => "all".to_string(),
        Mode::Sequential => "sequential".to_string(),
        Mode::MinApprovals(n) => format!("{{ min_approvals: {n} }}"),
        Mode::Ratio(r) => format!("{{ ratio: {r} }}"),
    };
    out.push_str(&format!("      mode: {mode}\n"));
    out.push_str(&format!("      actions: {}\n", list(&t.actions)));
    if !t.on.is_empty() {
        out.push_str("      on:\n");
        for (action, tr) in &t.on {
            if tr.is_plain() {
                out.push_str(&format!("        {}: {}\n", scalar(action), scalar(&tr.to)));
                continue;
            }
            out.push_str(&format!("        {}:\n", scalar(action)));
            out.push_str(&format!("          to: {}\n", scalar(&tr.to)));
            for (k, v) in [
                ("guard", &tr.guard),
                ("message", &tr.message),
                ("require", &tr.require),
                ("require_message", &tr.require_message),
            ] {
                if let Some(v) = v {
                    out.push_str(&format!("          {k}: {}\n", quoted(v)));
                }
            }
        }
    }
    write_effects(out, "on_decision", "      ", &t.on_decision);
    if let Some(d) = &t.deadline {
        out.push_str(&format!("      deadline: {}\n", scalar(d)));
    }
    if let Some(a) = &t.at_deadline {
        let a = match a {
            AtDeadline::Remind(b) => format!("{{ remind: {b} }}"),
            AtDeadline::Escalate(r) => format!("{{ escalate: {} }}", scalar(r)),
            AtDeadline::Action(x) => format!("{{ action: {} }}", scalar(x)),
        };
        out.push_str(&format!("      at_deadline: {a}\n"));
    }
    if !t.cc.is_empty() {
        out.push_str(&format!("      cc: {}\n", list(&t.cc)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Vec<(String, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
        let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read_to_string(&p).unwrap(),
                )
            })
            .collect();
        out.sort();
        assert!(out.len() >= 10, "the shipped flows are found");
        out
    }

    /// Designer model → YAML → model is the identity for every shipped flow, and the
    /// written YAML is the same definition as the original (same checked result).
    #[test]
    fn every_shipped_flow_round_trips_through_the_designer_model() {
        let catalog = crate::server::workflow_catalog();
        let roles = builtin_roles();
        for (file, source) in shipped() {
            let model = FlowModel::from_yaml(&file, &source).unwrap();
            let yaml = model.to_yaml();
            let again = FlowModel::from_yaml(&file, &yaml)
                .unwrap_or_else(|p| panic!("{file}: {p}\n{yaml}"));
            assert_eq!(model, again, "{file}:\n{yaml}");
            let original = parse(&file, &source, &roles, &catalog).unwrap();
            let written = parse(&file, &yaml, &roles, &catalog)
                .unwrap_or_else(|p| panic!("{file}: {p:?}\n{yaml}"));
            let strip = |d: &Definition| {
                let mut v = serde_json::to_value(d).unwrap();
                v["source"] = serde_json::Value::Null;
                v
            };
            assert_eq!(strip(&original), strip(&written), "{file}");
            // Steps keep the file's order.
            assert_eq!(model.steps[0].name, original.initial, "{file}");
        }
    }

    #[test]
    fn line_ranges_cover_each_step() {
        let (file, source) = shipped()
            .into_iter()
            .find(|(f, _)| f == "instrument_onboarding.yaml")
            .unwrap();
        let model = FlowModel::from_yaml(&file, &source).unwrap();
        let (yaml, ranges) = model.to_yaml_with_lines();
        let lines: Vec<&str> = yaml.lines().collect();
        for (s, (a, b)) in model.steps.iter().zip(&ranges) {
            assert_eq!(lines[*a as usize - 1].trim(), format!("{}:", s.name));
            assert!(b >= a);
        }
        assert_eq!(scalar("5 working days"), "5 working days");
        assert_eq!(scalar("true"), "\"true\"");
        assert_eq!(scalar("a: b"), "\"a: b\"");
    }
}
