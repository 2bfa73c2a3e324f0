//! A directory of definitions, the built-in roles they may name, and the warnings a
//! sound definition can still deserve.

#[allow(unused_imports)]
use super::*;

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
pub(super) fn holders(a: &Assignees) -> Option<Vec<&'static str>> {
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
pub(super) fn successors(s: &State) -> Vec<String> {
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
