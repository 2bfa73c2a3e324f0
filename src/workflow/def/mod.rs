//! Workflow definitions (流程定义): the YAML schema, the loader with `file:line: message`
//! errors, and the static checks run by `labshare workflows check` and on every reload.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::hooks::Catalog;
use crate::auth::Permission;

mod check;
mod load;
mod model;

pub use check::*;
pub use load::*;
pub use model::*;

/// One definition error, located in its file.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: u64,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// A flow as written in `workflows/<key>.yaml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefinition {
    pub key: Spanned<String>,
    pub title: String,
    pub subject: Spanned<String>,
    pub initial: Spanned<String>,
    /// Checked when an instance starts (e.g. a dishonest unit cannot apply).
    #[serde(default)]
    pub guard: Option<Spanned<String>>,
    #[serde(default)]
    pub guard_message: Option<String>,
    pub states: BTreeMap<String, RawState>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub terminal: bool,
    /// Hooks run on entering the state, inside the decision's transaction.
    #[serde(default)]
    pub effects: Vec<RawEffect>,
    /// A human task (步骤) active while the instance is in this state.
    #[serde(default)]
    pub task: Option<RawTask>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEffect {
    pub hook: Spanned<String>,
    #[serde(default)]
    pub with: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTask {
    pub assignees: Spanned<Assignees>,
    #[serde(default)]
    pub mode: Mode,
    pub actions: Vec<Spanned<String>>,
    #[serde(default)]
    pub on: BTreeMap<String, Spanned<RawTransition>>,
    #[serde(default)]
    pub deadline: Option<Spanned<String>>,
    #[serde(default)]
    pub at_deadline: Option<AtDeadline>,
    /// Roles copied (抄送) on every decision.
    #[serde(default)]
    pub cc: Vec<Spanned<String>>,
    /// Hooks run on every decision of this step's tasks (approve, reject, return …), inside
    /// the decision's transaction and before the step counts its votes; a hook's error
    /// refuses the decision (e.g. an objection without a reason).
    #[serde(default)]
    pub on_decision: Vec<RawEffect>,
    /// The deciders' names are shown only to themselves and to auditors (e.g. experts'
    /// reviews, anonymous to the unit they review).
    #[serde(default)]
    pub anonymous: bool,
    /// States whose approvers may not decide this step (四眼原则, e.g. 复核 after 初审): they
    /// are left out when assigning and refused (`same_decider`) when deciding.
    #[serde(default)]
    pub distinct_from: Vec<Spanned<String>>,
}

/// Who gets the task.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Assignees {
    /// Everyone holding a role.
    Role(String),
    /// Everyone holding a permission.
    Permission(String),
    /// Members of the subject's unit with this unit role (`manager`, `member`).
    UnitRole(String),
    /// A named user.
    User(String),
    /// Whoever started the instance.
    Applicant(bool),
    /// A minijinja expression giving a username, a user id or a list of them.
    Expr(String),
}

/// How many assignees must decide (会签 / 或签 / 依次 / quorum).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Any,
    All,
    Sequential,
    MinApprovals(u32),
    Ratio(f64),
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum RawTransition {
    To(String),
    Full {
        to: String,
        #[serde(default)]
        guard: Option<String>,
        #[serde(default)]
        message: Option<String>,
        /// Checked on every decision with this action (the guard only on the last one),
        /// e.g. that each expert's form carries a score.
        #[serde(default)]
        require: Option<String>,
        #[serde(default)]
        require_message: Option<String>,
    },
}

/// What happens when a task's deadline passes.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AtDeadline {
    Remind(bool),
    Escalate(String),
    Action(String),
}

pub const ACTIONS: [(&str, &str); 7] = [
    ("approve", "同意"),
    ("reject", "驳回"),
    ("return", "退回"),
    ("withdraw", "撤回"),
    ("transfer", "转办"),
    ("add_signer", "加签"),
    ("comment", "评论"),
];

pub fn action_label(a: &str) -> &'static str {
    ACTIONS
        .iter()
        .find(|(k, _)| *k == a)
        .map(|(_, l)| *l)
        .unwrap_or("操作")
}

/// A checked definition, ready to run.
#[derive(Clone, Debug, Serialize)]
pub struct Definition {
    pub key: String,
    pub title: String,
    pub subject: String,
    pub initial: String,
    pub guard: Option<Transition>,
    pub states: BTreeMap<String, State>,
    /// Version in the database (0 until recorded).
    pub version: i64,
    /// Whether any expression may read `scores` (the step's approved forms are then loaded).
    pub uses_scores: bool,
    pub source: String,
    pub file: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct State {
    pub name: String,
    pub title: String,
    pub terminal: bool,
    pub effects: Vec<Effect>,
    pub task: Option<Task>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Effect {
    pub hook: String,
    pub with: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Task {
    pub assignees: Assignees,
    pub mode: Mode,
    pub actions: Vec<String>,
    pub on: BTreeMap<String, Transition>,
    pub deadline: Option<Duration>,
    pub at_deadline: Option<AtDeadline>,
    pub cc: Vec<String>,
    pub on_decision: Vec<Effect>,
    pub anonymous: bool,
    pub distinct_from: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Transition {
    pub to: String,
    pub guard: Option<String>,
    pub message: Option<String>,
    pub require: Option<String>,
    pub require_message: Option<String>,
}

impl Transition {
    /// Whether deciding needs data a form carries (a `require`, or a guard reading `form.`):
    /// such a decision cannot be a one-click link.
    pub fn needs_form(&self) -> bool {
        self.require.is_some() || self.guard.as_deref().is_some_and(|g| g.contains("form."))
    }
}

/// A deadline: an amount of calendar days, working days or hours.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub enum Duration {
    Hours(i64),
    Days(i64),
    WorkingDays(i64),
}

impl Duration {
    pub fn parse(s: &str) -> Option<Duration> {
        let s = s.trim();
        let (n, unit) = s.split_once(char::is_whitespace)?;
        let n: i64 = n.parse().ok().filter(|n| *n > 0 && *n < 10_000)?;
        match unit.trim() {
            "working days" | "working day" | "个工作日" | "工作日" => {
                Some(Duration::WorkingDays(n))
            }
            "days" | "day" | "天" => Some(Duration::Days(n)),
            "hours" | "hour" | "小时" => Some(Duration::Hours(n)),
            _ => None,
        }
    }

    /// The absolute instant `self` after `from` (unix seconds); working days follow the
    /// Chinese working-day calendar (weekends and public holidays skipped, adjusted working
    /// Saturdays counted) in Asia/Shanghai.
    pub fn after(self, from: i64) -> i64 {
        self.after_on(&crate::published::default_calendar(), from)
    }

    /// [`Duration::after`] with the calendar in force in the transaction `conn` belongs to
    /// (published years read from it), so a year published on any node counts at once.
    pub async fn after_in(
        self,
        conn: &mut crate::store::Conn,
        from: i64,
    ) -> crate::error::Result<i64> {
        Ok(match self {
            Duration::WorkingDays(_) => {
                let cal = crate::calendar::in_transaction(conn).await?;
                self.after_on(&cal, from)
            }
            _ => self.after_on(&crate::calendar::Calendar::builtin(), from),
        })
    }

    /// [`Duration::after`] with the given calendar.
    pub fn after_on(self, calendar: &crate::calendar::Calendar, from: i64) -> i64 {
        use chrono::TimeZone;
        match self {
            Duration::Hours(h) => from + h * 3600,
            Duration::Days(d) => from + d * 86_400,
            Duration::WorkingDays(n) => {
                let tz = chrono_tz::Asia::Shanghai;
                let Some(mut t) = tz.timestamp_opt(from, 0).single() else {
                    return from + n * 86_400;
                };
                let mut left = n;
                while left > 0 {
                    t += chrono::Duration::days(1);
                    if calendar.is_working_day(t.date_naive()) {
                        left -= 1;
                    }
                }
                t.timestamp()
            }
        }
    }
}

impl Definition {
    pub fn state(&self, name: &str) -> Option<&State> {
        self.states.get(name)
    }

    pub fn state_title(&self, name: &str) -> String {
        self.states
            .get(name)
            .map(|s| s.title.clone())
            .unwrap_or_else(|| name.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_days_skip_the_weekend() {
        // Friday 2026-11-27 10:00 Asia/Shanghai.
        let friday = chrono::DateTime::parse_from_rfc3339("2026-11-27T10:00:00+08:00")
            .unwrap()
            .timestamp();
        let due = Duration::parse("3 working days").unwrap().after(friday);
        let expected = chrono::DateTime::parse_from_rfc3339("2026-12-02T10:00:00+08:00")
            .unwrap()
            .timestamp();
        assert_eq!(due, expected);
        // Across National Day 2026: 30 Sep + 1 working day is Thursday 8 Oct (1–7 Oct off).
        let before = chrono::DateTime::parse_from_rfc3339("2026-09-30T10:00:00+08:00")
            .unwrap()
            .timestamp();
        let due = Duration::parse("1 working day").unwrap().after(before);
        let expected = chrono::DateTime::parse_from_rfc3339("2026-10-08T10:00:00+08:00")
            .unwrap()
            .timestamp();
        assert_eq!(due, expected, "holidays are skipped");
        assert_eq!(Duration::parse("2 days").unwrap().after(0), 172_800);
        assert_eq!(Duration::parse("48 hours"), Some(Duration::Hours(48)));
        assert_eq!(Duration::parse("soon"), None);
        assert_eq!(Duration::parse("0 days"), None);
    }

    const TWO_STAGES: &str = "key: two\ntitle: 两级\nsubject: unit\ninitial: a\nstates:\n  a:\n    task:\n      assignees: { permission: unit.review }\n      mode: all\n      actions: [approve]\n      on: { approve: b }\n      deadline: 1 days\n  b:\n    task:\n      assignees: { permission: unit.review }\n      distinct_from: [STATE]\n      actions: [approve]\n      on: { approve: done }\n      deadline: 1 days\n  done:\n    terminal: true\n";

    #[test]
    fn distinct_from_names_an_earlier_step_and_an_impossible_one_is_warned_about() {
        let roles = builtin_roles();
        let cat = Catalog::engine();
        let p = parse(
            "two.yaml",
            &TWO_STAGES.replace("STATE", "nowhere"),
            &roles,
            &cat,
        )
        .unwrap_err();
        assert!(
            p.iter()
                .any(|p| p.message.contains("distinct_from 中未知的状态 `nowhere`")),
            "{p:?}"
        );
        let p = parse(
            "two.yaml",
            &TWO_STAGES.replace("STATE", "done"),
            &roles,
            &cat,
        )
        .unwrap_err();
        assert!(
            p.iter().any(|p| p.message.contains("没有审批任务")),
            "{p:?}"
        );
        let d = parse("two.yaml", &TWO_STAGES.replace("STATE", "a"), &roles, &cat).unwrap();
        assert_eq!(d.states["b"].task.as_ref().unwrap().distinct_from, ["a"]);
        let w = warnings(&d);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].message.contains("无人可指派"), "{w:?}");
    }

    #[test]
    fn a_definition_without_a_way_to_finish_is_refused() {
        let src = "key: loop\ntitle: 循环\nsubject: unit\ninitial: a\nstates:\n  a:\n    task:\n      assignees: { applicant: true }\n      actions: [approve]\n      on: { approve: b }\n      deadline: 1 days\n  b:\n    task:\n      assignees: { applicant: true }\n      actions: [approve]\n      on: { approve: a }\n      deadline: 1 days\n  done:\n    terminal: true\n";
        let p = parse("loop.yaml", src, &builtin_roles(), &Catalog::engine()).unwrap_err();
        let msgs: Vec<_> = p.iter().map(|p| p.to_string()).collect();
        assert!(
            msgs.iter().any(|m| m.contains("`done` 从初始状态不可达")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("loop.yaml:6:") && m.contains("无法到达任何终止状态")),
            "{msgs:?}"
        );
    }
}
