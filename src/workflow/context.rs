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
    conn: &mut sqlx::AnyConnection,
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
/// except for the applicant and unit-role assignments, which are the unit by design.
pub(super) async fn resolve_assignees(
    conn: &mut sqlx::AnyConnection,
    who: &def::Assignees,
    inst: &Instance,
    ctx: &Value,
) -> Result<Vec<i64>> {
    use def::Assignees as A;
    let mut ids: Vec<i64> = match who {
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
    if !matches!(who, A::Applicant(_) | A::UnitRole(_)) {
        ids = recuse(conn, ids, inst.unit_id).await?;
    }
    ids.dedup();
    if ids.is_empty() {
        return Err(AppError::unprocessable(
            "no_assignee",
            "没有可指派的审核人（本单位成员按回避规则不能审核本单位事项）",
        ));
    }
    Ok(ids)
}

/// Drop members of the subject's unit (回避).
pub(super) async fn recuse(
    conn: &mut sqlx::AnyConnection,
    ids: Vec<i64>,
    unit_id: Option<i64>,
) -> Result<Vec<i64>> {
    let Some(unit) = unit_id else { return Ok(ids) };
    let members: BTreeSet<i64> =
        sqlx::query_as::<_, (i64,)>("SELECT user_id FROM unit_members WHERE unit_id = $1")
            .bind(unit)
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
    conn: &mut sqlx::AnyConnection,
    inst: &Instance,
    form: &Value,
) -> Result<Value> {
    let subject = load_subject(cat, conn, &inst.subject_type, inst.subject_id).await?;
    let forms: Vec<(String,)> = sqlx::query_as("SELECT form FROM workflow_tasks WHERE instance_id = $1 AND round = $2 AND status = 'approved'")
        .bind(inst.id)
        .bind(inst.round)
        .fetch_all(&mut *conn)
        .await?;
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

pub(super) async fn user_by_ref(conn: &mut sqlx::AnyConnection, data: &Value) -> Result<i64> {
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
