//! What expressions see and who gets a task: the expression environment, the subject row,
//! the step's scores, guards, and assignee resolution with recusal (回避).

#[allow(unused_imports)]
use super::*;

/// The shared expression environment for guards and assignee expressions.
pub fn expr_env() -> &'static minijinja::Environment<'static> {
    static ENV: OnceLock<minijinja::Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
        env
    })
}

/// Evaluate an expression against a JSON context.
pub fn eval(expr: &str, ctx: &Value) -> Result<minijinja::Value> {
    let e = expr_env()
        .compile_expression(expr)
        .map_err(|e| anyhow::anyhow!("expression {expr}: {e}"))?;
    e.eval(minijinja::Value::from(minijinja::value::Serde(ctx)))
        .map_err(|e| AppError::unprocessable("guard_failed", format!("条件表达式无法求值：{e}")))
}

/// The subject's row as JSON (any column), for guards and expressions.
pub(super) async fn load_subject(
    cat: &Catalog,
    conn: &mut crate::store::Conn,
    subject_type: &str,
    id: i64,
) -> Result<Value> {
    let Some(s) = cat.subject(subject_type) else {
        return Ok(json!({"id": id}));
    };
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM {} WHERE id = $1",
        s.table
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(AppError::NotFound)?;
    let mut map = serde_json::Map::new();
    for c in row.columns() {
        let name = c.name();
        let v = if let Ok(v) = row.try_get::<Option<i64>, _>(name) {
            json!(v)
        } else if let Ok(v) = row.try_get::<Option<String>, _>(name) {
            json!(v)
        } else if let Ok(v) = row.try_get::<Option<f64>, _>(name) {
            json!(v)
        } else {
            Value::Null
        };
        map.insert(name.to_string(), v);
    }
    Ok(Value::Object(map))
}

pub(super) fn today(now: i64) -> String {
    use chrono::TimeZone;
    chrono_tz::Asia::Shanghai
        .timestamp_opt(now, 0)
        .single()
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// Resolve a task's assignees to user ids, never a member of the subject's unit (回避)
/// except for the applicant and unit-role assignments, which are the unit by design, and
/// never the applicant (职责分离) except in a step that is the applicant's by design
/// (`assignees: applicant`, e.g. 申请人修改).
pub(super) async fn resolve_assignees(
    conn: &mut crate::store::Conn,
    who: &def::Assignees,
    inst: &Instance,
    ctx: &Value,
) -> Result<Vec<i64>> {
    resolve_step_assignees(conn, who, &[], inst, ctx).await
}

/// `resolve_assignees` for a step, also leaving out whoever approved in the states its
/// `distinct_from` names (四眼原则).
pub(super) async fn resolve_step_assignees(
    conn: &mut crate::store::Conn,
    who: &def::Assignees,
    distinct_from: &[String],
    inst: &Instance,
    ctx: &Value,
) -> Result<Vec<i64>> {
    let ids = candidates(conn, who, inst, ctx).await?;
    let ids = eligible_only(conn, who, distinct_from, inst, ids).await?;
    if ids.is_empty() {
        return Err(AppError::unprocessable(
            "no_assignee",
            "没有可指派的审核人（本单位成员按回避规则不能审核本单位事项，申请人不能审核自己的事项，复核人须不同于前一环节的审核人）",
        ));
    }
    Ok(ids)
}

/// Filter `ids` down to those who may hold a task of the step: recusal (回避), not the
/// applicant, not an approver of a `distinct_from` state. Keeps the order.
pub(super) async fn eligible_only(
    conn: &mut crate::store::Conn,
    who: &def::Assignees,
    distinct_from: &[String],
    inst: &Instance,
    mut ids: Vec<i64>,
) -> Result<Vec<i64>> {
    use def::Assignees as A;
    if !matches!(who, A::Applicant(_) | A::UnitRole(_)) {
        ids = recuse(conn, ids, inst.unit_id, inst.created_at).await?;
    }
    if !matches!(who, A::Applicant(_)) {
        ids.retain(|id| *id != inst.applicant_id);
    }
    let earlier = approvers_in(conn, inst.id, distinct_from).await?;
    ids.retain(|id| !earlier.contains(id));
    let mut seen = BTreeSet::new();
    ids.retain(|id| seen.insert(*id));
    Ok(ids)
}

/// Who approved a task of this instance in any of `states` (any round).
pub(super) async fn approvers_in(
    conn: &mut crate::store::Conn,
    instance_id: i64,
    states: &[String],
) -> Result<BTreeSet<i64>> {
    let mut out = BTreeSet::new();
    for state in states {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT DISTINCT assignee_id FROM workflow_tasks WHERE instance_id = $1 AND state = $2 AND status = 'approved'",
        )
        .bind(instance_id)
        .bind(state)
        .fetch_all(&mut *conn)
        .await?;
        out.extend(rows.into_iter().map(|r| r.0));
    }
    Ok(out)
}

/// Whether `user_id` still satisfies the step's assignee rule (an active user holding the
/// role or permission, a member of the unit in that role, the named user, the applicant).
/// Expressions name users from the subject's data and are not re-checked.
pub(super) async fn satisfies_rule(
    conn: &mut crate::store::Conn,
    who: &def::Assignees,
    inst: &Instance,
    user_id: i64,
) -> Result<bool> {
    use def::Assignees as A;
    let found: Option<(i64,)> = match who {
        A::Role(r) => {
            sqlx::query_as(
                "SELECT u.id FROM users u JOIN user_roles ur ON ur.user_id = u.id JOIN roles r ON r.id = ur.role_id \
                 WHERE r.key = $1 AND u.id = $2 AND u.is_active = 1",
            )
            .bind(r)
            .bind(user_id)
            .fetch_optional(&mut *conn)
            .await?
        }
        A::Permission(p) => {
            sqlx::query_as(
                "SELECT u.id FROM users u JOIN user_roles ur ON ur.user_id = u.id \
                 JOIN role_permissions rp ON rp.role_id = ur.role_id WHERE rp.permission = $1 AND u.id = $2 AND u.is_active = 1",
            )
            .bind(p)
            .bind(user_id)
            .fetch_optional(&mut *conn)
            .await?
        }
        A::UnitRole(role) => {
            sqlx::query_as(
                "SELECT m.user_id FROM unit_members m JOIN users u ON u.id = m.user_id \
                 WHERE m.unit_id = $1 AND m.role = $2 AND m.user_id = $3 AND u.is_active = 1",
            )
            .bind(inst.unit_id.unwrap_or(0))
            .bind(role)
            .bind(user_id)
            .fetch_optional(&mut *conn)
            .await?
        }
        A::User(name) => {
            sqlx::query_as("SELECT id FROM users WHERE username = $1 AND id = $2 AND is_active = 1")
                .bind(name)
                .bind(user_id)
                .fetch_optional(&mut *conn)
                .await?
        }
        A::Applicant(_) => return Ok(user_id == inst.applicant_id),
        A::Expr(_) => {
            sqlx::query_as("SELECT id FROM users WHERE id = $1 AND is_active = 1")
                .bind(user_id)
                .fetch_optional(&mut *conn)
                .await?
        }
    };
    Ok(found.is_some())
}

/// The users the rule names, before recusal and separation of duties.
async fn candidates(
    conn: &mut crate::store::Conn,
    who: &def::Assignees,
    inst: &Instance,
    ctx: &Value,
) -> Result<Vec<i64>> {
    use def::Assignees as A;
    let ids: Vec<i64> = match who {
        A::Role(r) => sqlx::query_as::<_, (i64,)>(
            "SELECT DISTINCT u.id FROM users u JOIN user_roles ur ON ur.user_id = u.id JOIN roles r ON r.id = ur.role_id \
             WHERE r.key = $1 AND u.is_active = 1 ORDER BY u.id",
        )
        .bind(r)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|r| r.0)
        .collect(),
        A::Permission(p) => sqlx::query_as::<_, (i64,)>(
            "SELECT DISTINCT u.id FROM users u JOIN user_roles ur ON ur.user_id = u.id \
             JOIN role_permissions rp ON rp.role_id = ur.role_id WHERE rp.permission = $1 AND u.is_active = 1 ORDER BY u.id",
        )
        .bind(p)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|r| r.0)
        .collect(),
        A::UnitRole(role) => sqlx::query_as::<_, (i64,)>("SELECT user_id FROM unit_members WHERE unit_id = $1 AND role = $2 ORDER BY user_id")
            .bind(inst.unit_id.unwrap_or(0))
            .bind(role)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|r| r.0)
            .collect(),
        A::User(name) => sqlx::query_as::<_, (i64,)>("SELECT id FROM users WHERE username = $1 AND is_active = 1")
            .bind(name)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|r| r.0)
            .collect(),
        A::Applicant(_) => vec![inst.applicant_id],
        A::Expr(e) => {
            let v = eval(e, ctx)?;
            let items: Vec<minijinja::Value> = match v.try_iter() {
                Ok(it) if v.kind() == minijinja::value::ValueKind::Seq => it.collect(),
                _ => vec![v],
            };
            let mut out = Vec::new();
            for item in items {
                if let Some(id) = item.as_i64() {
                    out.push(id);
                } else if let Some(name) = item.as_str()
                    && let Some((id,)) = sqlx::query_as::<_, (i64,)>("SELECT id FROM users WHERE username = $1").bind(name).fetch_optional(&mut *conn).await?
                {
                    out.push(id);
                }
            }
            out
        }
    };
    Ok(ids)
}

/// Drop members of the subject's unit (回避) as the unit stood when the flow started
/// (`as_of`): a membership accepted later does not change who reviews (it cannot be used to
/// steer recusal).
pub(super) async fn recuse(
    conn: &mut crate::store::Conn,
    ids: Vec<i64>,
    unit_id: Option<i64>,
    as_of: i64,
) -> Result<Vec<i64>> {
    let Some(unit) = unit_id else { return Ok(ids) };
    let members: BTreeSet<i64> = sqlx::query_as::<_, (i64,)>(
        "SELECT user_id FROM unit_members WHERE unit_id = $1 AND created_at <= $2",
    )
    .bind(unit)
    .bind(as_of)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| r.0)
    .collect();
    Ok(ids.into_iter().filter(|i| !members.contains(i)).collect())
}

/// Expression context: subject, instance data, form data, scores.
pub(super) async fn expr_ctx(
    cat: &Catalog,
    conn: &mut crate::store::Conn,
    d: &Definition,
    inst: &Instance,
    form: &Value,
) -> Result<Value> {
    let subject = load_subject(cat, conn, &inst.subject_type, inst.subject_id).await?;
    let forms: Vec<(String,)> = if d.uses_scores {
        sqlx::query_as("SELECT form FROM workflow_tasks WHERE instance_id = $1 AND round = $2 AND status = 'approved'")
            .bind(inst.id)
            .bind(inst.round)
            .fetch_all(&mut *conn)
            .await?
    } else {
        Vec::new()
    };
    let mut scores: Vec<f64> = forms
        .iter()
        .filter_map(|(f,)| serde_json::from_str::<Value>(f).ok())
        .filter_map(|v| v.get("score").and_then(Value::as_f64))
        .collect();
    if let Some(s) = form.get("score").and_then(Value::as_f64) {
        scores.push(s);
    }
    Ok(json!({
        "subject": subject, "data": inst.data, "form": form, "scores": score_summary(&scores),
        "applicant_id": inst.applicant_id, "unit_id": inst.unit_id,
    }))
}

/// count, mean, min, max and the trimmed mean (drop one highest and one lowest when ≥ 3).
pub fn score_summary(scores: &[f64]) -> Value {
    if scores.is_empty() {
        return json!({"count": 0, "mean": 0, "trimmed_mean": 0, "min": 0, "max": 0});
    }
    let mut s = scores.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let mean = s.iter().sum::<f64>() / s.len() as f64;
    let trimmed = if s.len() >= 3 {
        &s[1..s.len() - 1]
    } else {
        &s[..]
    };
    let tmean = trimmed.iter().sum::<f64>() / trimmed.len() as f64;
    json!({"count": s.len(), "mean": mean, "trimmed_mean": tmean, "min": s[0], "max": s[s.len() - 1]})
}

pub(super) fn check_guard(tr: &def::Transition, ctx: &Value) -> Result<()> {
    if let Some(g) = &tr.guard
        && !eval(g, ctx)?.is_true()
    {
        return Err(AppError::unprocessable(
            "guard_refused",
            tr.message
                .clone()
                .unwrap_or_else(|| format!("不满足流转条件：{g}")),
        ));
    }
    Ok(())
}

pub(super) async fn user_by_ref(conn: &mut crate::store::Conn, data: &Value) -> Result<i64> {
    if let Some(id) = data.get("user_id").and_then(Value::as_i64) {
        let found: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM users WHERE id = $1 AND is_active = 1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
        return found
            .map(|r| r.0)
            .ok_or_else(|| AppError::field("user", "找不到该用户"));
    }
    let name = data
        .get("user")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim();
    if name.is_empty() {
        return Err(AppError::field("user", "请填写转办或加签的用户名"));
    }
    let found: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM users WHERE username = $1 AND is_active = 1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    found
        .map(|r| r.0)
        .ok_or_else(|| AppError::field("user", format!("找不到用户 {name}")))
}
