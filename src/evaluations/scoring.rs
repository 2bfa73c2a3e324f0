//! Scoring: the experts' sheets (checked against the policy, kept in their task forms), the
//! aggregate, and the final grade with the override rule (hook `finalise_evaluation`).

use sqlx::Row;

use super::indicators::two_places;
#[allow(unused_imports)]
use super::*;

/// Combine the experts' totals by the policy, half-up to two places. `None` without scores.
pub fn aggregate(policy: &Policy, totals: &[Decimal]) -> Option<Decimal> {
    if totals.is_empty() {
        return None;
    }
    let mut s = totals.to_vec();
    s.sort();
    let kept = if policy.evaluation.aggregate == "trimmed_mean" && s.len() >= 3 {
        &s[1..s.len() - 1]
    } else {
        &s[..]
    };
    let sum: Decimal = kept.iter().sum();
    Some(two_places(sum / Decimal::from(kept.len())))
}

/// Check an expert's scoring sheet against the policy: every item present, a number from 0
/// to the item's most points with at most one decimal. Returns the items and the total.
pub fn check_sheet(
    policy: &Policy,
    sheet: &BTreeMap<String, String>,
) -> Result<(BTreeMap<String, Decimal>, Decimal)> {
    let mut errors = BTreeMap::new();
    let mut items = BTreeMap::new();
    for item in &policy.evaluation.indicators {
        let raw = sheet.get(&item.key).map(|s| s.trim()).unwrap_or("");
        let field = format!("scores.{}", item.key);
        if raw.is_empty() {
            errors.insert(field, format!("请为“{}”打分", item.title));
            continue;
        }
        match raw.parse::<Decimal>() {
            Ok(v) if v >= Decimal::ZERO && v <= Decimal::from(item.max) && v.scale() <= 1 => {
                items.insert(item.key.clone(), v.normalize());
            }
            _ => {
                errors.insert(
                    field,
                    format!(
                        "“{}”应为 0 到 {} 之间的分数，最多一位小数",
                        item.title, item.max
                    ),
                );
            }
        }
    }
    if let Some(k) = sheet
        .keys()
        .find(|k| !policy.evaluation.indicators.iter().any(|i| &i.key == *k))
    {
        errors.insert(format!("scores.{k}"), format!("评分表中没有“{k}”这一项"));
    }
    if !errors.is_empty() {
        return Err(AppError::Validation {
            message: "评分有误，请检查".into(),
            fields: errors,
        });
    }
    let total = items.values().sum();
    Ok((items, total))
}

/// One expert's scoring, read from their approved task.
#[derive(Debug, Clone, Serialize)]
pub struct ExpertScore {
    pub user_id: i64,
    pub name: String,
    pub total: Decimal,
    pub items: BTreeMap<String, Value>,
    pub comment: String,
    pub at: String,
}

/// The latest expert-review round of the instance (0 before any).
pub(super) async fn review_round(
    conn: &mut crate::store::Conn,
    instance_id: Option<i64>,
) -> Result<i64> {
    let (round,): (Option<i64>,) = sqlx::query_as(
        "SELECT MAX(round) FROM workflow_tasks WHERE instance_id = $1 AND state = 'expert_review'",
    )
    .bind(instance_id.unwrap_or(0))
    .fetch_one(&mut *conn)
    .await?;
    Ok(round.unwrap_or(0))
}

/// The scores of the latest review round, one per expert who approved.
pub async fn expert_scores(
    conn: &mut crate::store::Conn,
    instance_id: Option<i64>,
) -> Result<Vec<ExpertScore>> {
    let round = review_round(conn, instance_id).await?;
    let rows = sqlx::query(
        "SELECT t.assignee_id, u.display_name, t.form, t.comment, t.decided_at FROM workflow_tasks t JOIN users u ON u.id = t.assignee_id \
         WHERE t.instance_id = $1 AND t.state = 'expert_review' AND t.round = $2 AND t.status = 'approved' ORDER BY t.assignee_id",
    )
    .bind(instance_id.unwrap_or(0))
    .bind(round)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        let form: Value = serde_json::from_str(&r.get::<String, _>("form")).unwrap_or(Value::Null);
        // The total is what the engine's guard saw; the sheet came from the scoring page.
        let Some(total) = form
            .get("score")
            .and_then(Value::as_f64)
            .and_then(|f| Decimal::try_from(f).ok())
        else {
            continue;
        };
        let items = form
            .get("scores")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        out.push(ExpertScore {
            user_id: r.get("assignee_id"),
            name: r.get("display_name"),
            total: total.round_dp(1),
            items,
            comment: r.get("comment"),
            at: r
                .get::<Option<i64>, _>("decided_at")
                .map(crate::clock::rfc3339)
                .unwrap_or_default(),
        });
    }
    Ok(out)
}

/// The form an expert's approval carries: the total (for the engine's guard) and the sheet.
pub fn score_form(items: &BTreeMap<String, Decimal>, total: Decimal) -> Value {
    json!({
        "score": total.to_f64().unwrap_or(0.0),
        "scores": items.iter().map(|(k, v)| (k.clone(), Value::String(v.to_string()))).collect::<serde_json::Map<_, _>>(),
    })
}

/// The effect of reaching `published`: check the admin's grade against the score, store the
/// outcome and the grade the settlement uses. Runs inside the deciding transaction.
pub async fn finalise(
    conn: &mut crate::store::Conn,
    evaluation_id: i64,
    instance_id: i64,
    now: i64,
) -> Result<()> {
    let (unit_id, year): (i64, i64) =
        sqlx::query_as("SELECT unit_id, year FROM evaluations WHERE id = $1")
            .bind(evaluation_id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(AppError::NotFound)?;
    let decision = sqlx::query(
        "SELECT form, comment, assignee_id FROM workflow_tasks WHERE instance_id = $1 AND state = 'grading' AND status = 'approved' \
         ORDER BY decided_at DESC, id DESC LIMIT 1",
    )
    .bind(instance_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| anyhow::anyhow!("evaluation {evaluation_id} published without a grading decision"))?;
    let form: Value =
        serde_json::from_str(&decision.get::<String, _>("form")).unwrap_or(Value::Null);
    let grade = form
        .get("grade")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let reason = form
        .get("reason")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| decision.get::<String, _>("comment").trim().to_string());
    let (policy_id, policy) = crate::money::current_in(conn).await?;
    let totals: Vec<Decimal> = expert_scores(conn, Some(instance_id))
        .await?
        .iter()
        .map(|s| s.total)
        .collect();
    let score = aggregate(&policy, &totals);
    let suggested = score.map(|s| policy.grade_for(s));
    if suggested != Some(grade.as_str()) && reason.is_empty() {
        return Err(AppError::field(
            "reason",
            match suggested {
                Some(s) => format!(
                    "评分 {} 对应“{}”，所定等级为“{}”，请说明调整理由",
                    score.unwrap_or_default(),
                    grade_label(s),
                    grade_label(&grade)
                ),
                None => "没有专家评分，直接定级须说明理由".to_string(),
            },
        ));
    }
    let score_x100 = score.map(|s| (s * Decimal::ONE_HUNDRED).to_i64().unwrap_or(0));
    let override_reason = if suggested == Some(grade.as_str()) {
        String::new()
    } else {
        reason.clone()
    };
    sqlx::query(
        "UPDATE evaluations SET status = 'published', score_x100 = $1, suggested_grade = $2, grade = $3, override_reason = $4, \
         policy_version_id = $5, published_at = $6, updated_at = $6 WHERE id = $7",
    )
    .bind(score_x100)
    .bind(suggested)
    .bind(&grade)
    .bind(&override_reason)
    .bind(policy_id)
    .bind(now)
    .bind(evaluation_id)
    .execute(&mut *conn)
    .await?;
    let note = match score {
        Some(s) if override_reason.is_empty() => format!("专家评分 {s}"),
        Some(s) => format!("专家评分 {s}；调整理由：{override_reason}"),
        None => override_reason.clone(),
    };
    crate::money::record_grade(
        conn,
        crate::money::UnitGrade {
            unit_id,
            year,
            grade: &grade,
            reason: &note,
            source: "evaluation",
            decided_by: decision.get::<i64, _>("assignee_id"),
            override_reason: "",
        },
        now,
    )
    .await?;
    Ok(())
}

/// `finalise_evaluation` may only end an evaluation flow and takes no parameters.
pub fn check_finalise_hook(
    subject_type: &str,
    _subject: Option<&crate::workflow::Subject>,
    with: &BTreeMap<String, Value>,
) -> std::result::Result<(), String> {
    if subject_type != "evaluation" {
        return Err("finalise_evaluation 只能用于 evaluation 流程".into());
    }
    if !with.is_empty() {
        return Err("finalise_evaluation 不需要参数".into());
    }
    Ok(())
}

pub fn run_finalise_hook<'a, 'c>(
    ctx: &'a mut crate::workflow::hooks::HookCtx<'c>,
) -> futures::future::BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        if ctx.dry_run {
            return Ok(());
        }
        finalise(ctx.conn, ctx.subject_id, ctx.instance_id, ctx.now).await
    })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn policy() -> Policy {
        Policy::parse(crate::money::DEFAULT_POLICY).unwrap()
    }

    #[test]
    fn the_trimmed_mean_drops_one_highest_and_one_lowest() {
        let p = policy();
        assert_eq!(
            aggregate(&p, &[d("95"), d("60"), d("80"), d("82")]),
            Some(d("81.00"))
        );
        // Two experts: nothing to trim.
        assert_eq!(aggregate(&p, &[d("90"), d("81")]), Some(d("85.50")));
        assert_eq!(aggregate(&p, &[]), None);
        // Half-up to two places: (80.5 + 80 + 80) / 3 = 80.1666… → 80.17 with the plain mean.
        let mut mean = p.clone();
        mean.evaluation.aggregate = "mean".into();
        assert_eq!(
            aggregate(&mean, &[d("80.5"), d("80"), d("80")]),
            Some(d("80.17"))
        );
        // 89.995 rounds up to 90.00 (half-up), which is 优秀.
        assert_eq!(
            aggregate(&mean, &[d("89.99"), d("90")]).map(|s| p.grade_for(s)),
            Some("excellent")
        );
    }

    #[test]
    fn a_scoring_sheet_must_fill_every_item_within_its_points() {
        let p = policy();
        let mut sheet: BTreeMap<String, String> = [
            ("usage", "25"),
            ("sharing", "27.5"),
            ("results", "20"),
            ("satisfaction", "9"),
            ("management", "8"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (_, total) = check_sheet(&p, &sheet).unwrap();
        assert_eq!(total, d("89.5"));
        sheet.insert("usage".into(), "26".into());
        sheet.insert("sharing".into(), "1.25".into());
        sheet.remove("results");
        sheet.insert("bogus".into(), "1".into());
        let Err(AppError::Validation { fields, .. }) = check_sheet(&p, &sheet) else {
            panic!("accepted a bad sheet")
        };
        assert!(fields["scores.usage"].contains("0 到 25"), "{fields:?}");
        assert!(fields["scores.sharing"].contains("一位小数"));
        assert!(fields["scores.results"].contains("请为"));
        assert!(fields.contains_key("scores.bogus"));
    }
}
