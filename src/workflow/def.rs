//! Workflow definitions (流程定义): the YAML schema, the loader with `file:line: message`
//! errors, and the static checks run by `labshare workflows check` and on every reload.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::hooks::Catalog;
use crate::auth::Permission;

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
                    if crate::calendar::is_working_day(t.date_naive()) {
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

/// A hook named by `effects` or `on_decision`: registered, and its parameters accepted.
fn check_hook(catalog: &Catalog, e: &RawEffect, subject: &str) -> Option<String> {
    let hook = &e.hook.value;
    match catalog.hook(hook) {
        None => Some(format!(
            "未知的钩子 `{hook}`（已注册：{}）",
            catalog.hook_names().join("、")
        )),
        Some(h) => (h.check)(subject, catalog.subject(subject), &e.with).err(),
    }
}

/// Number (1-based) of the first line whose trimmed text starts with `prefix` (fallback: 1).
fn line_of(source: &str, prefix: &str) -> u64 {
    source
        .lines()
        .position(|l| l.trim_start().starts_with(prefix))
        .map(|i| i as u64 + 1)
        .unwrap_or(1)
}

/// Parse and check one file. `roles` are the role keys that exist (built-in plus custom);
/// `catalog` holds the hooks and subjects that are registered.
pub fn parse(
    file: &str,
    source: &str,
    roles: &BTreeSet<String>,
    catalog: &Catalog,
) -> Result<Definition, Vec<Problem>> {
    let raw = read_yaml(file, source).map_err(|p| vec![p])?;
    let mut check = Checker {
        file,
        source,
        roles,
        catalog,
        env: super::expr_env(),
        problems: Vec::new(),
    };
    check.check_identity(&raw);
    check.check_start(&raw);
    let states: BTreeMap<String, State> = raw
        .states
        .iter()
        .map(|(name, st)| (name.clone(), check.check_state(&raw, name, st)))
        .collect();
    // The graph is only walked once every state and transition is known to be sound.
    if check.problems.is_empty() {
        check.check_reachable(&raw.initial.value, &states);
        check.check_can_finish(&states);
    }
    let mut problems = check.problems;
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.line);
        return Err(problems);
    }
    Ok(Definition {
        key: raw.key.value.clone(),
        title: raw.title,
        subject: raw.subject.value.clone(),
        initial: raw.initial.value.clone(),
        guard: raw.guard.as_ref().map(|g| Transition {
            to: raw.initial.value.clone(),
            guard: Some(g.value.clone()),
            message: raw.guard_message.clone(),
            require: None,
            require_message: None,
        }),
        states,
        version: 0,
        source: source.to_string(),
        file: file.to_string(),
    })
}

/// A problem in `file` at `line` (at least 1).
fn problem(file: &str, line: u64, message: String) -> Problem {
    Problem {
        file: file.to_string(),
        line: line.max(1),
        message,
    }
}

/// Reads the YAML into the raw schema; a syntax or shape error is the file's only problem.
fn read_yaml(file: &str, source: &str) -> Result<RawDefinition, Problem> {
    serde_saphyr::from_str(source).map_err(|e| {
        let line = e.location().map(|l| l.line()).unwrap_or(1);
        let text = e.to_string();
        let first = text.lines().next().unwrap_or("无法解析");
        // The location is already in `file:line`; keep the column.
        let first = match first
            .strip_prefix("error: line ")
            .and_then(|r| r.split_once(": "))
        {
            Some((pos, msg)) => match pos.split_once(" column ") {
                Some((_, col)) => format!("{msg}（第 {col} 列）"),
                None => msg.to_string(),
            },
            None => first.to_string(),
        };
        problem(file, line, format!("定义格式错误：{first}"))
    })
}

/// The checks of one parsed file: what a definition may name, and the problems found so far
/// (in the order found; `parse` sorts them by line).
struct Checker<'a> {
    file: &'a str,
    source: &'a str,
    roles: &'a BTreeSet<String>,
    catalog: &'a Catalog,
    env: &'static minijinja::Environment<'static>,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn push(&mut self, line: u64, message: String) {
        self.problems.push(problem(self.file, line, message));
    }

    fn line_of(&self, prefix: &str) -> u64 {
        line_of(self.source, prefix)
    }

    /// Checks the key (lowercase letters, digits, `_`; the file's name) and a non-empty title.
    fn check_identity(&mut self, raw: &RawDefinition) {
        let key = &raw.key.value;
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            self.push(
                raw.key.referenced.line(),
                format!("流程标识 `{key}` 只能由小写字母、数字和下划线组成"),
            );
        }
        let expected = std::path::Path::new(self.file)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("");
        if !expected.is_empty() && expected != key && self.file.ends_with(".yaml") {
            self.push(
                raw.key.referenced.line(),
                format!("流程标识 `{key}` 与文件名 `{expected}` 不一致"),
            );
        }
        if raw.title.trim().is_empty() {
            self.push(self.line_of("title:"), "流程名称不能为空".into());
        }
    }

    /// Checks how an instance starts and ends: the initial state exists, some state is
    /// terminal, and the start guard compiles.
    fn check_start(&mut self, raw: &RawDefinition) {
        if !raw.states.contains_key(&raw.initial.value) {
            self.push(
                raw.initial.referenced.line(),
                format!("初始状态 `{}` 未定义", raw.initial.value),
            );
        }
        if !raw.states.values().any(|s| s.terminal) {
            self.push(
                self.line_of("states:"),
                "至少需要一个终止状态（terminal: true）".into(),
            );
        }
        if let Some(g) = &raw.guard
            && let Err(e) = self.env.compile_expression(&g.value)
        {
            self.push(g.referenced.line(), format!("条件表达式无法编译：{e}"));
        }
    }

    /// Checks one state: its effects, a task exactly when it is not terminal, and that task.
    fn check_state(&mut self, raw: &RawDefinition, name: &str, st: &RawState) -> State {
        let state_line = self.line_of(&format!("{name}:"));
        let effects = self.check_effects(&st.effects, &raw.subject.value);
        if st.terminal && st.task.is_some() {
            self.push(state_line, format!("终止状态 `{name}` 不能有审批任务"));
        }
        if !st.terminal && st.task.is_none() {
            self.push(
                state_line,
                format!("非终止状态 `{name}` 需要一个审批任务（task）"),
            );
        }
        let task = st
            .task
            .as_ref()
            .map(|t| self.check_task(raw, name, state_line, t));
        State {
            name: name.to_string(),
            title: st.title.clone().unwrap_or_else(|| name.to_string()),
            terminal: st.terminal,
            effects,
            task,
        }
    }

    /// Checks that each hook of `effects` or `on_decision` is registered and accepts its `with`.
    fn check_effects(&mut self, effects: &[RawEffect], subject: &str) -> Vec<Effect> {
        let mut checked = Vec::new();
        for e in effects {
            if let Some(m) = check_hook(self.catalog, e, subject) {
                self.push(e.hook.referenced.line(), m);
            }
            checked.push(Effect {
                hook: e.hook.value.clone(),
                with: e.with.clone(),
            });
        }
        checked
    }

    /// Checks the task of state `name`, one part after the other.
    fn check_task(
        &mut self,
        raw: &RawDefinition,
        name: &str,
        state_line: u64,
        t: &RawTask,
    ) -> Task {
        let actions = self.check_actions(&t.actions);
        self.check_assignees(&t.assignees);
        self.check_mode(&t.mode);
        let on = self.check_transitions(&raw.states, &t.on, &actions);
        self.check_outcomes(name, state_line, &actions, &on);
        let deadline = self.check_deadline(name, state_line, t.deadline.as_ref());
        self.check_at_deadline(t.at_deadline.as_ref(), &on);
        self.check_cc(&t.cc);
        let on_decision = self.check_effects(&t.on_decision, &raw.subject.value);
        let distinct_from = self.check_distinct_from(&raw.states, name, &t.distinct_from);
        Task {
            assignees: t.assignees.value.clone(),
            mode: t.mode.clone(),
            actions,
            on,
            deadline,
            at_deadline: t.at_deadline.clone(),
            cc: t.cc.iter().map(|c| c.value.clone()).collect(),
            on_decision,
            anonymous: t.anonymous,
            distinct_from,
        }
    }

    /// Checks that each state named by `distinct_from` exists, has a task and is not the
    /// step itself.
    fn check_distinct_from(
        &mut self,
        states: &BTreeMap<String, RawState>,
        name: &str,
        distinct_from: &[Spanned<String>],
    ) -> Vec<String> {
        let mut checked = Vec::new();
        for s in distinct_from {
            let line = s.referenced.line();
            match states.get(&s.value) {
                None => self.push(line, format!("distinct_from 中未知的状态 `{}`", s.value)),
                Some(st) if st.task.is_none() => self.push(
                    line,
                    format!("distinct_from 中的状态 `{}` 没有审批任务", s.value),
                ),
                Some(_) if s.value == name => {
                    self.push(line, format!("distinct_from 不能指向本环节 `{name}`"))
                }
                Some(_) => {}
            }
            checked.push(s.value.clone());
        }
        checked
    }

    /// Checks that every action a task offers is one of `ACTIONS`.
    fn check_actions(&mut self, actions: &[Spanned<String>]) -> Vec<String> {
        let mut checked = Vec::new();
        for a in actions {
            if !ACTIONS.iter().any(|(k, _)| *k == a.value) {
                self.push(a.referenced.line(), format!("未知的操作 `{}`", a.value));
            }
            checked.push(a.value.clone());
        }
        checked
    }

    /// Checks that the assignees name a known role, permission or unit role, or an
    /// expression that compiles.
    fn check_assignees(&mut self, assignees: &Spanned<Assignees>) {
        let line = assignees.referenced.line();
        match &assignees.value {
            Assignees::Role(r) if !self.roles.contains(r) => {
                self.push(line, format!("未知的角色 `{r}`"))
            }
            Assignees::Permission(p) if Permission::from_key(p).is_none() => {
                self.push(line, format!("未知的权限 `{p}`"))
            }
            Assignees::UnitRole(r) if r != "manager" && r != "member" => self.push(
                line,
                format!("单位内角色只能是 manager 或 member，而不是 `{r}`"),
            ),
            Assignees::Expr(x) => {
                if let Err(e) = self.env.compile_expression(x) {
                    self.push(line, format!("处理人表达式无法编译：{e}"));
                }
            }
            _ => {}
        }
    }

    /// Checks that a quorum asks for at least one approval and a ratio lies in (0, 1].
    fn check_mode(&mut self, mode: &Mode) {
        match mode {
            Mode::MinApprovals(0) => {
                self.push(self.line_of("mode:"), "min_approvals 至少为 1".into())
            }
            Mode::Ratio(r) if !(*r > 0.0 && *r <= 1.0) => {
                self.push(self.line_of("mode:"), "ratio 应在 0 与 1 之间".into())
            }
            _ => {}
        }
    }

    /// Checks each `on` entry: an action that moves the instance and that the task offers, a
    /// known target state, and guards and requirements that compile.
    fn check_transitions(
        &mut self,
        states: &BTreeMap<String, RawState>,
        on: &BTreeMap<String, Spanned<RawTransition>>,
        actions: &[String],
    ) -> BTreeMap<String, Transition> {
        let mut checked = BTreeMap::new();
        for (action, spanned) in on {
            let line = spanned.referenced.line();
            let (to, guard, message, require, require_message) = match &spanned.value {
                RawTransition::To(to) => (to, None, None, None, None),
                RawTransition::Full {
                    to,
                    guard,
                    message,
                    require,
                    require_message,
                } => (
                    to,
                    guard.as_ref(),
                    message.clone(),
                    require.as_ref(),
                    require_message.clone(),
                ),
            };
            if !matches!(
                action.as_str(),
                "approve" | "reject" | "return" | "withdraw" | "timeout"
            ) {
                self.push(line, format!("`on` 中的操作 `{action}` 不会引起状态变化"));
            } else if action != "timeout" && !actions.contains(action) {
                self.push(line, format!("操作 `{action}` 有去向但不在 actions 列表中"));
            }
            if !states.contains_key(to) {
                self.push(line, format!("未知的状态 `{to}`"));
            }
            for g in [guard, require].into_iter().flatten() {
                if let Err(e) = self.env.compile_expression(g) {
                    self.push(line, format!("条件表达式无法编译：{e}"));
                }
            }
            checked.insert(
                action.clone(),
                Transition {
                    to: to.clone(),
                    guard: guard.cloned(),
                    message,
                    require: require.cloned(),
                    require_message,
                },
            );
        }
        checked
    }

    /// Checks that `approve`, `reject` and `withdraw`, when offered, each say where they go.
    fn check_outcomes(
        &mut self,
        name: &str,
        state_line: u64,
        actions: &[String],
        on: &BTreeMap<String, Transition>,
    ) {
        for needed in ["approve", "reject", "withdraw"] {
            if actions.iter().any(|a| a == needed) && !on.contains_key(needed) {
                self.push(
                    state_line,
                    format!("状态 `{name}` 允许 `{needed}`，但没有写明去向（on.{needed}）"),
                );
            }
        }
    }

    /// Checks that the task has a deadline and that it reads as a duration.
    fn check_deadline(
        &mut self,
        name: &str,
        state_line: u64,
        deadline: Option<&Spanned<String>>,
    ) -> Option<Duration> {
        match deadline {
            None => {
                self.push(
                    state_line,
                    format!("审批任务 `{name}` 没有办理时限（deadline）"),
                );
                None
            }
            Some(d) => {
                let parsed = Duration::parse(&d.value);
                if parsed.is_none() {
                    self.push(
                        d.referenced.line(),
                        format!(
                            "无法识别的时限 `{}`（例如：3 working days、2 days、48 hours）",
                            d.value
                        ),
                    );
                }
                parsed
            }
        }
    }

    /// Checks that an escalation names a known role and an automatic action has a transition.
    fn check_at_deadline(
        &mut self,
        at_deadline: Option<&AtDeadline>,
        on: &BTreeMap<String, Transition>,
    ) {
        match at_deadline {
            Some(AtDeadline::Escalate(r)) if !self.roles.contains(r) => {
                self.push(self.line_of("escalate:"), format!("未知的角色 `{r}`"))
            }
            Some(AtDeadline::Action(a)) if !on.contains_key(a) => self.push(
                self.line_of("action:"),
                format!("到期自动操作 `{a}` 没有去向"),
            ),
            _ => {}
        }
    }

    /// Checks that every role copied (抄送) exists.
    fn check_cc(&mut self, cc: &[Spanned<String>]) {
        for c in cc {
            if !self.roles.contains(&c.value) {
                self.push(
                    c.referenced.line(),
                    format!("抄送中未知的角色 `{}`", c.value),
                );
            }
        }
    }

    /// Checks that every state can be reached from the initial state.
    fn check_reachable(&mut self, initial: &str, states: &BTreeMap<String, State>) {
        let mut seen = BTreeSet::from([initial.to_string()]);
        let mut queue = VecDeque::from([initial.to_string()]);
        while let Some(s) = queue.pop_front() {
            for next in successors(&states[&s]) {
                if seen.insert(next.clone()) {
                    queue.push_back(next);
                }
            }
        }
        // A `return` without a named target goes back to any earlier state: covered by edges.
        for name in states.keys() {
            if !seen.contains(name) {
                self.push(
                    self.line_of(&format!("{name}:")),
                    format!("状态 `{name}` 从初始状态不可达"),
                );
            }
        }
    }

    /// Checks that a terminal state can be reached from every state.
    fn check_can_finish(&mut self, states: &BTreeMap<String, State>) {
        let mut finishing: BTreeSet<String> = states
            .values()
            .filter(|s| s.terminal)
            .map(|s| s.name.clone())
            .collect();
        loop {
            let before = finishing.len();
            for s in states.values() {
                if successors(s).iter().any(|n| finishing.contains(n)) {
                    finishing.insert(s.name.clone());
                }
            }
            if finishing.len() == before {
                break;
            }
        }
        for name in states.keys() {
            if !finishing.contains(name) {
                self.push(
                    self.line_of(&format!("{name}:")),
                    format!("从状态 `{name}` 无法到达任何终止状态"),
                );
            }
        }
    }
}

/// Warnings about a sound definition (`labshare workflows check` prints them and still exits
/// 0): steps that could end with no eligible assignee once the applicant is left out (职责分离)
/// and a `distinct_from` state's approvers are excluded.
pub fn warnings(d: &Definition) -> Vec<Problem> {
    let mut out = Vec::new();
    for (name, st) in &d.states {
        let Some(t) = &st.task else { continue };
        let line = line_of(&d.source, &format!("{name}:"));
        let mut warn = |message: String| out.push(problem(&d.file, line, message));
        if let Assignees::User(u) = &t.assignees {
            warn(format!(
                "环节 `{name}` 只指派给用户 `{u}`：由该用户发起的事项，此环节将无人可指派（申请人不能审核自己的事项）"
            ));
        }
        if matches!(t.assignees, Assignees::Applicant(_)) && !t.distinct_from.is_empty() {
            warn(format!(
                "环节 `{name}` 指派给申请人又要求不同于 {} 的审核人：申请人在那些环节同意过时，此环节将无人可指派",
                t.distinct_from.join("、")
            ));
        }
        for other in &t.distinct_from {
            let Some(o) = d.state(other).and_then(|s| s.task.as_ref()) else {
                continue;
            };
            if o.assignees == t.assignees {
                let all = matches!(o.mode, Mode::All | Mode::Sequential);
                warn(if all {
                    format!(
                        "环节 `{name}` 与 `{other}` 的处理人规则相同且 `{other}` 须全部同意：`{other}` 的每个人都被排除，此环节将无人可指派"
                    )
                } else {
                    format!(
                        "环节 `{name}` 与 `{other}` 的处理人规则相同：只有一人符合时，此环节将无人可指派（至少需要两人）"
                    )
                });
            } else if let (Some(mine), Some(theirs)) =
                (holders(&t.assignees), holders(&o.assignees))
                && mine.iter().all(|r| theirs.contains(r))
            {
                warn(format!(
                    "环节 `{name}` 的处理人角色（{}）都能办理 `{other}`：同一人办理了 `{other}` 且无其他人时，此环节将无人可指派",
                    mine.join("、")
                ));
            }
        }
    }
    out
}

/// The built-in roles a role or permission rule names (`None` for other rules).
fn holders(a: &Assignees) -> Option<Vec<&'static str>> {
    use crate::auth::permissions::BUILTIN_ROLES;
    match a {
        Assignees::Role(r) => BUILTIN_ROLES
            .iter()
            .find(|b| b.key == r)
            .map(|b| vec![b.key]),
        Assignees::Permission(p) => {
            let p = Permission::from_key(p)?;
            Some(
                BUILTIN_ROLES
                    .iter()
                    .filter(|b| b.permissions.contains(&p))
                    .map(|b| b.key)
                    .collect(),
            )
        }
        _ => None,
    }
}

/// The states a state's task can move an instance to.
fn successors(s: &State) -> Vec<String> {
    s.task
        .as_ref()
        .map(|t| t.on.values().map(|tr| tr.to.clone()).collect())
        .unwrap_or_default()
}

/// Role keys every definition may name: the built-in ones.
pub fn builtin_roles() -> BTreeSet<String> {
    crate::auth::permissions::BUILTIN_ROLES
        .iter()
        .map(|r| r.key.to_string())
        .collect()
}

/// Parse every `*.yaml` in `dir`; duplicate keys across files are errors too.
pub fn load_dir(
    dir: &std::path::Path,
    roles: &BTreeSet<String>,
    catalog: &Catalog,
) -> Result<Vec<Definition>, Vec<Problem>> {
    let mut files: Vec<_> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect(),
        Err(e) => {
            return Err(vec![Problem {
                file: dir.display().to_string(),
                line: 1,
                message: format!("无法读取流程目录：{e}"),
            }]);
        }
    };
    files.sort();
    let mut defs: Vec<Definition> = Vec::new();
    let mut problems = Vec::new();
    for path in files {
        let name = path.display().to_string();
        let source = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) => {
                problems.push(Problem {
                    file: name,
                    line: 1,
                    message: format!("无法读取文件：{e}"),
                });
                continue;
            }
        };
        match parse(&name, &source, roles, catalog) {
            Ok(d) => {
                if let Some(other) = defs.iter().find(|o| o.key == d.key) {
                    problems.push(Problem {
                        file: name,
                        line: line_of(&source, "key:"),
                        message: format!("流程标识 `{}` 与 {} 重复", d.key, other.file),
                    });
                } else {
                    defs.push(d);
                }
            }
            Err(mut p) => problems.append(&mut p),
        }
    }
    if problems.is_empty() {
        Ok(defs)
    } else {
        Err(problems)
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
