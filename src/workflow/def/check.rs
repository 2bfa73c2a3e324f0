//! Parsing and checking one definition file: the YAML, then the named checks of a
//! `Checker` (identity, start, states, tasks, transitions, deadlines, reachability).

#[allow(unused_imports)]
use super::*;

/// A hook named by `effects` or `on_decision`: registered, and its parameters accepted.
pub(super) fn check_hook(catalog: &Catalog, e: &RawEffect, subject: &str) -> Option<String> {
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
pub(super) fn line_of(source: &str, prefix: &str) -> u64 {
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
        env: crate::workflow::expr_env(),
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
        // Expressions can only read the step's scores by naming them.
        uses_scores: source.contains("scores"),
        source: source.to_string(),
        file: file.to_string(),
    })
}

/// A problem in `file` at `line` (at least 1).
pub(super) fn problem(file: &str, line: u64, message: String) -> Problem {
    Problem {
        file: file.to_string(),
        line: line.max(1),
        message,
    }
}

/// Reads the YAML into the raw schema; a syntax or shape error is the file's only problem.
pub(super) fn read_yaml(file: &str, source: &str) -> Result<RawDefinition, Problem> {
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
pub(super) struct Checker<'a> {
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
