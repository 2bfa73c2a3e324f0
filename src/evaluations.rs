//! Expert performance evaluation (绩效评价). A certified managing unit declares a year with a
//! self report; the platform computes its indicators from its own data (effective and
//! external service hours, sharing rate, services, income, user ratings) and keeps them with
//! the declaration. The platform admin assigns experts from the pool — never anyone from the
//! unit (回避) — each expert scores the policy's scoring sheet, the totals aggregate by the
//! policy (trimmed mean by default), and the admin's final grade is checked against the
//! thresholds: a grade other than the one the score gives needs a reason. Publication writes
//! the grade the subsidy settlement uses.
//!
//! Each expert's scores are the form of their `expert_evaluation` task, so they sit in the
//! workflow's hash-chained audit log and nowhere else.

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy, prelude::ToPrimitive};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row;

use crate::{
    auth::{CurrentUser, Permission},
    domain::Yuan,
    error::{AppError, Result},
    money::{GRADES, Policy},
    store::Db,
};

/// The indicators computed from the platform's data for a unit and year.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Indicators {
    /// Approved instruments of the unit.
    pub instruments: i64,
    /// Service hours of all service records completed in the year.
    pub effective_hours: Decimal,
    /// Service hours for other units (对外服务机时).
    pub external_hours: Decimal,
    /// External hours ÷ effective hours, in percent, two places.
    pub sharing_rate: Decimal,
    pub services: i64,
    pub external_services: i64,
    /// The service records' amounts.
    pub service_income: Yuan,
    /// Voucher amounts whose redemption was approved (the sharing-service income).
    pub voucher_income: Yuan,
    pub ratings: i64,
    /// Ratings of 非常满意 or 基本满意.
    pub satisfied: i64,
    /// Satisfied ÷ ratings, in percent, two places.
    pub satisfaction_rate: Decimal,
}

fn percent(part: Decimal, whole: Decimal) -> Decimal {
    if whole.is_zero() {
        two_places(Decimal::ZERO)
    } else {
        two_places(part * Decimal::ONE_HUNDRED / whole)
    }
}

/// Half-up to two places, always shown with two (80 → 80.00).
fn two_places(v: Decimal) -> Decimal {
    let mut v = v.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    v.rescale(2);
    v
}

fn hours(x100: i64) -> Decimal {
    Decimal::new(x100, 2)
}

/// Compute a unit's indicators for `year` from service records, redemptions and ratings.
pub async fn indicators(
    conn: &mut sqlx::AnyConnection,
    unit_id: i64,
    year: i64,
) -> Result<Indicators> {
    let (instruments,): (i64,) = sqlx::query_as(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM instruments WHERE unit_id = $1 AND review_status = 'approved'",
    )
    .bind(unit_id)
    .fetch_one(&mut *conn)
    .await?;
    let r = sqlx::query(
        "SELECT CAST(COUNT(*) AS BIGINT) AS services, \
         CAST(COALESCE(SUM(service_hours_x100), 0) AS BIGINT) AS hours, \
         CAST(COALESCE(SUM(CASE WHEN user_unit_id <> managing_unit_id THEN service_hours_x100 ELSE 0 END), 0) AS BIGINT) AS ext_hours, \
         CAST(COALESCE(SUM(CASE WHEN user_unit_id <> managing_unit_id THEN 1 ELSE 0 END), 0) AS BIGINT) AS ext_services, \
         CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) AS income, \
         CAST(COALESCE(SUM(CASE WHEN rating IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS ratings, \
         CAST(COALESCE(SUM(CASE WHEN rating IN ('非常满意', '基本满意') THEN 1 ELSE 0 END), 0) AS BIGINT) AS satisfied \
         FROM service_records WHERE managing_unit_id = $1 AND year = $2 AND review_status = 'approved'",
    )
    .bind(unit_id)
    .bind(year)
    .fetch_one(&mut *conn)
    .await?;
    let (voucher,): (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(sr.voucher_fen), 0) AS BIGINT) FROM service_records sr \
         JOIN redemption_items ri ON ri.booking_id = sr.booking_id JOIN redemptions rd ON rd.id = ri.redemption_id \
         WHERE sr.managing_unit_id = $1 AND sr.year = $2 AND rd.status = 'approved'",
    )
    .bind(unit_id)
    .bind(year)
    .fetch_one(&mut *conn)
    .await?;
    let effective = hours(r.get("hours"));
    let external = hours(r.get("ext_hours"));
    let ratings: i64 = r.get("ratings");
    let satisfied: i64 = r.get("satisfied");
    Ok(Indicators {
        instruments,
        effective_hours: effective,
        external_hours: external,
        sharing_rate: percent(external, effective),
        services: r.get("services"),
        external_services: r.get("ext_services"),
        service_income: Yuan::from_fen(r.get("income")),
        voucher_income: Yuan::from_fen(voucher),
        ratings,
        satisfied,
        satisfaction_rate: percent(Decimal::from(satisfied), Decimal::from(ratings)),
    })
}

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

pub fn grade_label(grade: &str) -> &'static str {
    GRADES
        .iter()
        .find(|(g, _)| *g == grade)
        .map(|(_, l)| *l)
        .unwrap_or("—")
}

pub fn status_label(status: &str) -> &'static str {
    match status {
        "assigning" => "待指派专家",
        "revising" => "待补充材料",
        "reviewing" => "专家评审中",
        "grading" => "待定级",
        "published" => "已定级公示",
        "rejected" => "未通过",
        "withdrawn" => "已撤回",
        _ => "—",
    }
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

#[derive(Debug, Clone, Serialize)]
pub struct AssignedExpert {
    pub user_id: i64,
    pub name: String,
    pub title: String,
    pub unit_name: String,
    /// `open`, `approved` (scored), `returned`, … of their task in the current review round.
    pub task_status: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub id: i64,
    pub unit_id: i64,
    pub unit_name: String,
    pub year: i64,
    pub self_report: String,
    pub indicators: Value,
    pub status: String,
    pub status_label: &'static str,
    pub experts: Vec<AssignedExpert>,
    /// The aggregate so far (while experts score) or the final one.
    pub score: Option<Decimal>,
    pub suggested_grade: Option<String>,
    pub grade: Option<String>,
    pub grade_label: &'static str,
    pub override_reason: String,
    pub published_at: Option<String>,
    pub instance_id: Option<i64>,
    pub applicant_id: i64,
    pub created_at: String,
}

const SELECT: &str = "SELECT e.id, e.unit_id, u.name AS unit_name, e.year, e.self_report, e.indicators, e.status, \
    e.score_x100, e.suggested_grade, e.grade, e.override_reason, e.published_at, e.instance_id, e.applicant_id, e.created_at \
    FROM evaluations e JOIN units u ON u.id = e.unit_id";

fn from_row(r: &sqlx::any::AnyRow) -> Evaluation {
    let status: String = r.get("status");
    let grade: Option<String> = r.get("grade");
    Evaluation {
        id: r.get("id"),
        unit_id: r.get("unit_id"),
        unit_name: r.get("unit_name"),
        year: r.get("year"),
        self_report: r.get("self_report"),
        indicators: serde_json::from_str(&r.get::<String, _>("indicators")).unwrap_or(Value::Null),
        status_label: status_label(&status),
        status,
        experts: Vec::new(),
        score: r
            .get::<Option<i64>, _>("score_x100")
            .map(|s| Decimal::new(s, 2)),
        suggested_grade: r.get("suggested_grade"),
        grade_label: grade.as_deref().map(grade_label).unwrap_or("—"),
        grade,
        override_reason: r.get("override_reason"),
        published_at: r
            .get::<Option<i64>, _>("published_at")
            .map(crate::clock::rfc3339),
        instance_id: r.get("instance_id"),
        applicant_id: r.get("applicant_id"),
        created_at: crate::clock::rfc3339(r.get("created_at")),
    }
}

/// One evaluation with its experts (and, while scoring, the aggregate so far).
pub async fn get(db: &Db, policy: &Policy, id: i64) -> Result<Evaluation> {
    let mut conn = db.pool.acquire().await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} WHERE e.id = $1")))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(AppError::NotFound)?;
    let mut e = from_row(&row);
    let round = review_round(&mut conn, e.instance_id).await?;
    let rows = sqlx::query(
        "SELECT ee.user_id, u.display_name, COALESCE(x.title, '') AS title, COALESCE(x.unit_name, '') AS unit_name, \
         (SELECT t.status FROM workflow_tasks t WHERE t.instance_id = $2 AND t.state = 'expert_review' AND t.round = $3 \
          AND t.assignee_id = ee.user_id ORDER BY t.id DESC LIMIT 1) AS task_status \
         FROM evaluation_experts ee JOIN users u ON u.id = ee.user_id LEFT JOIN experts x ON x.user_id = ee.user_id \
         WHERE ee.evaluation_id = $1 ORDER BY ee.user_id",
    )
    .bind(id)
    .bind(e.instance_id.unwrap_or(0))
    .bind(round)
    .fetch_all(&mut *conn)
    .await?;
    e.experts = rows
        .iter()
        .map(|r| AssignedExpert {
            user_id: r.get("user_id"),
            name: r.get("display_name"),
            title: r.get("title"),
            unit_name: r.get("unit_name"),
            task_status: r.get("task_status"),
        })
        .collect();
    if e.score.is_none() {
        let scores = expert_scores(&mut conn, e.instance_id).await?;
        let totals: Vec<Decimal> = scores.iter().map(|s| s.total).collect();
        e.score = aggregate(policy, &totals);
        e.suggested_grade = e.score.map(|s| policy.grade_for(s).to_string());
    }
    Ok(e)
}

/// The latest expert-review round of the instance (0 before any).
async fn review_round(conn: &mut sqlx::AnyConnection, instance_id: Option<i64>) -> Result<i64> {
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
    conn: &mut sqlx::AnyConnection,
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

/// Evaluations visible to the user: all for evaluation managers, those of their units for
/// unit members, those they were assigned for experts. Newest first, paged.
pub async fn list(
    db: &Db,
    user: &CurrentUser,
    year: Option<i64>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Evaluation>, i64)> {
    let scope = if user.can(Permission::EvaluationManage) {
        "$1 = $1"
    } else {
        "(e.unit_id IN (SELECT unit_id FROM unit_members WHERE user_id = $1) \
          OR e.id IN (SELECT evaluation_id FROM evaluation_experts WHERE user_id = $1))"
    };
    let filter = format!("WHERE {scope} AND ($2 = 0 OR e.year = $2)");
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM evaluations e {filter}"
    )))
    .bind(user.id)
    .bind(year.unwrap_or(0))
    .fetch_one(&db.pool)
    .await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} {filter} ORDER BY e.id DESC LIMIT $3 OFFSET $4"
    )))
    .bind(user.id)
    .bind(year.unwrap_or(0))
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    Ok((rows.iter().map(from_row).collect(), total))
}

/// Published results (公示), newest year first.
pub async fn published(db: &Db, year: Option<i64>) -> Result<Vec<Evaluation>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE e.status = 'published' AND ($1 = 0 OR e.year = $1) ORDER BY e.year DESC, e.score_x100 DESC, e.id LIMIT 500"
    )))
    .bind(year.unwrap_or(0))
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.iter().map(from_row).collect())
}

/// A unit's published results, newest year first (for its public page).
pub async fn published_for_unit(db: &Db, unit_id: i64) -> Result<Vec<Evaluation>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE e.status = 'published' AND e.unit_id = $1 ORDER BY e.year DESC LIMIT 10"
    )))
    .bind(unit_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.iter().map(from_row).collect())
}

/// The years with published results, newest first.
pub async fn published_years(db: &Db) -> Result<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT year FROM evaluations WHERE status = 'published' ORDER BY year DESC",
    )
    .fetch_all(&db.pool)
    .await?)
}

/// May the user see this evaluation at all (and the experts' individual scores)?
pub async fn access(db: &Db, user: &CurrentUser, e: &Evaluation) -> Result<Access> {
    if user.can(Permission::EvaluationManage) {
        return Ok(Access::Manager);
    }
    if e.experts.iter().any(|x| x.user_id == user.id) {
        return Ok(Access::Expert);
    }
    if user.acts_for(e.unit_id, false) {
        return Ok(Access::Unit);
    }
    // A transferred task makes its holder a reviewer too.
    if let Some(inst) = e.instance_id {
        let (n,): (i64,) = sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM workflow_tasks WHERE instance_id = $1 AND assignee_id = $2")
            .bind(inst)
            .bind(user.id)
            .fetch_one(&db.pool)
            .await?;
        if n > 0 {
            return Ok(Access::Expert);
        }
    }
    Err(AppError::forbidden())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Manager,
    Expert,
    Unit,
}

/// Validate and store a declaration; the caller starts the workflow.
pub async fn declare(
    db: &Db,
    user: &CurrentUser,
    unit_id: i64,
    year: i64,
    self_report: &str,
    now: i64,
    this_year: i64,
) -> Result<i64> {
    user.require(Permission::EvaluationDeclare)?;
    let unit = crate::units::get(db, unit_id).await?;
    user.require_unit(unit.id)?;
    let mut fields = BTreeMap::new();
    if !(2000..=this_year).contains(&year) {
        fields.insert(
            "year".to_string(),
            format!("年度应在 2000 到 {this_year} 之间"),
        );
    }
    let report = self_report.trim();
    if report.chars().count() < 10 {
        fields.insert(
            "self_report".to_string(),
            "请填写自评报告（不少于 10 个字）".to_string(),
        );
    } else if report.chars().count() > 20_000 {
        fields.insert(
            "self_report".to_string(),
            "自评报告不能超过 20000 字".to_string(),
        );
    }
    if !fields.is_empty() {
        return Err(AppError::Validation {
            message: "申报信息有误，请检查".into(),
            fields,
        });
    }
    if unit.kind != "managing" || unit.certification_status != "certified" {
        return Err(AppError::unprocessable(
            "unit_not_eligible",
            "只有已认证的管理单位可以申报绩效评价",
        ));
    }
    let mut tx = db.pool.begin().await?;
    let snapshot = indicators(&mut tx, unit.id, year).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO evaluations (unit_id, year, self_report, indicators, applicant_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
    )
    .bind(unit.id)
    .bind(year)
    .bind(report)
    .bind(serde_json::to_string(&snapshot).map_err(anyhow::Error::from)?)
    .bind(user.id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        if crate::store::is_unique_violation(&e) {
            AppError::conflict(
                "already_declared",
                format!("本单位 {year} 年度的绩效评价已在办理或已定级"),
            )
        } else {
            AppError::Database(e)
        }
    })?;
    tx.commit().await?;
    Ok(id)
}

/// While the unit supplements its declaration (退回补充), it may rewrite the self report;
/// the indicators are recomputed at the same time.
pub async fn revise(
    db: &Db,
    user: &CurrentUser,
    id: i64,
    self_report: &str,
    now: i64,
) -> Result<()> {
    let (unit_id, year, status): (i64, i64, String) =
        sqlx::query_as("SELECT unit_id, year, status FROM evaluations WHERE id = $1")
            .bind(id)
            .fetch_optional(&db.pool)
            .await?
            .ok_or(AppError::NotFound)?;
    user.require_unit(unit_id)?;
    if status != "revising" {
        return Err(AppError::conflict(
            "not_revising",
            "只有被退回补充材料的申报可以修改",
        ));
    }
    let report = self_report.trim();
    if report.chars().count() < 10 || report.chars().count() > 20_000 {
        return Err(AppError::field(
            "self_report",
            "请填写自评报告（10 到 20000 字）",
        ));
    }
    let mut tx = db.pool.begin().await?;
    let snapshot = indicators(&mut tx, unit_id, year).await?;
    sqlx::query(
        "UPDATE evaluations SET self_report = $1, indicators = $2, updated_at = $3 WHERE id = $4",
    )
    .bind(report)
    .bind(serde_json::to_string(&snapshot).map_err(anyhow::Error::from)?)
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// An expert of the pool, as a candidate for an evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub user_id: i64,
    pub name: String,
    pub title: String,
    pub unit_name: String,
    pub fields: String,
    /// Why this expert may not review the unit (回避), if so.
    pub recused: Option<&'static str>,
    pub assigned: bool,
}

/// Certified experts in the pool (在库) with an account holding `evaluation.review`, and
/// whether each must be recused from the evaluation's unit.
pub async fn candidates(db: &Db, evaluation_id: i64) -> Result<Vec<Candidate>> {
    let rows = sqlx::query(
        "SELECT x.user_id, x.name, x.title, x.unit_name, x.fields, \
         (SELECT CAST(COUNT(*) AS BIGINT) FROM unit_members m WHERE m.user_id = x.user_id AND m.unit_id = e.unit_id) AS member, \
         CASE WHEN x.unit_name = u.name THEN 1 ELSE 0 END AS same_unit, \
         (SELECT CAST(COUNT(*) AS BIGINT) FROM evaluation_experts ee WHERE ee.evaluation_id = e.id AND ee.user_id = x.user_id) AS assigned \
         FROM experts x JOIN evaluations e ON e.id = $1 JOIN units u ON u.id = e.unit_id \
         WHERE x.user_id IS NOT NULL AND x.certification_status = 'certified' AND x.status = '在库' \
         AND x.user_id IN (SELECT ur.user_id FROM user_roles ur JOIN role_permissions rp ON rp.role_id = ur.role_id WHERE rp.permission = 'evaluation.review') \
         AND x.user_id IN (SELECT id FROM users WHERE is_active = 1) \
         ORDER BY x.id",
    )
    .bind(evaluation_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| Candidate {
            user_id: r.get("user_id"),
            name: r.get("name"),
            title: r.get("title"),
            unit_name: r.get("unit_name"),
            fields: r.get("fields"),
            recused: if r.get::<i64, _>("member") > 0 {
                Some("本单位成员")
            } else if r.get::<i64, _>("same_unit") > 0 {
                Some("所在单位即被评单位")
            } else {
                None
            },
            assigned: r.get::<i64, _>("assigned") > 0,
        })
        .collect())
}

/// Replace the evaluation's experts (only while experts are being assigned). Every one must
/// be an eligible candidate; recused experts are refused by name.
pub async fn assign_experts(
    db: &Db,
    user: &CurrentUser,
    id: i64,
    expert_ids: &[i64],
    now: i64,
) -> Result<()> {
    user.require(Permission::EvaluationManage)?;
    let status: String = sqlx::query_scalar("SELECT status FROM evaluations WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .ok_or(AppError::NotFound)?;
    if status != "assigning" {
        return Err(AppError::conflict(
            "not_assigning",
            "专家只能在“指派专家”环节调整",
        ));
    }
    let pool = candidates(db, id).await?;
    let mut ids: Vec<i64> = expert_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    for uid in &ids {
        match pool.iter().find(|c| c.user_id == *uid) {
            None => {
                return Err(AppError::field(
                    "expert_ids",
                    format!("用户 {uid} 不是专家库中在库的认证专家"),
                ));
            }
            Some(c) if c.recused.is_some() => {
                return Err(AppError::field(
                    "expert_ids",
                    format!("{}须回避（{}）", c.name, c.recused.unwrap_or_default()),
                ));
            }
            Some(_) => {}
        }
    }
    let mut tx = db.pool.begin().await?;
    sqlx::query("DELETE FROM evaluation_experts WHERE evaluation_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    for uid in &ids {
        sqlx::query("INSERT INTO evaluation_experts (evaluation_id, user_id, assigned_by, assigned_at) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(uid)
            .bind(user.id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    sqlx::query(
        "UPDATE evaluations SET expert_ids = $1, expert_count = $2, updated_at = $3 WHERE id = $4",
    )
    .bind(list)
    .bind(ids.len() as i64)
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The user's open task on the evaluation in `state`, if any.
pub async fn open_task(db: &Db, e: &Evaluation, user_id: i64, state: &str) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM workflow_tasks WHERE instance_id = $1 AND state = $2 AND assignee_id = $3 AND status = 'open' ORDER BY id LIMIT 1",
    )
    .bind(e.instance_id.unwrap_or(0))
    .bind(state)
    .bind(user_id)
    .fetch_optional(&db.pool)
    .await?)
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
    conn: &mut sqlx::AnyConnection,
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
    sqlx::query("DELETE FROM unit_grades WHERE unit_id = $1 AND year = $2")
        .bind(unit_id)
        .bind(year)
        .execute(&mut *conn)
        .await?;
    let note = match score {
        Some(s) if override_reason.is_empty() => format!("专家评分 {s}"),
        Some(s) => format!("专家评分 {s}；调整理由：{override_reason}"),
        None => override_reason.clone(),
    };
    sqlx::query(
        "INSERT INTO unit_grades (unit_id, year, grade, reason, source, decided_by, decided_at) VALUES ($1, $2, $3, $4, 'evaluation', $5, $6)",
    )
    .bind(unit_id)
    .bind(year)
    .bind(&grade)
    .bind(note)
    .bind(decision.get::<i64, _>("assignee_id"))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// `finalise_evaluation` may only end an evaluation flow and takes no parameters.
pub fn check_finalise_hook(
    subject_type: &str,
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
