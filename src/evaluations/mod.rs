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

use crate::{
    auth::{CurrentUser, Permission},
    domain::Yuan,
    error::{AppError, Result},
    money::Policy,
    store::Db,
};

mod indicators;
mod scoring;

pub use indicators::{Indicators, indicators};
pub use scoring::*;

pub use crate::money::grade_label;

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

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AssignedExpert {
    pub user_id: i64,
    #[sqlx(rename = "display_name")]
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

/// An `evaluations` row with its unit's name; [`Evaluation`] adds labels and experts.
#[derive(sqlx::FromRow)]
struct EvaluationRow {
    id: i64,
    unit_id: i64,
    unit_name: String,
    year: i64,
    self_report: String,
    indicators: String,
    status: String,
    score_x100: Option<i64>,
    suggested_grade: Option<String>,
    grade: Option<String>,
    override_reason: String,
    published_at: Option<i64>,
    instance_id: Option<i64>,
    applicant_id: i64,
    created_at: i64,
}

impl From<EvaluationRow> for Evaluation {
    fn from(r: EvaluationRow) -> Evaluation {
        Evaluation {
            id: r.id,
            unit_id: r.unit_id,
            unit_name: r.unit_name,
            year: r.year,
            self_report: r.self_report,
            indicators: serde_json::from_str(&r.indicators).unwrap_or(Value::Null),
            status_label: status_label(&r.status),
            status: r.status,
            experts: Vec::new(),
            score: r.score_x100.map(|s| Decimal::new(s, 2)),
            suggested_grade: r.suggested_grade,
            grade_label: r.grade.as_deref().map(grade_label).unwrap_or("—"),
            grade: r.grade,
            override_reason: r.override_reason,
            published_at: r.published_at.map(crate::clock::rfc3339),
            instance_id: r.instance_id,
            applicant_id: r.applicant_id,
            created_at: crate::clock::rfc3339(r.created_at),
        }
    }
}

/// One evaluation with its experts (and, while scoring, the aggregate so far).
pub async fn get(db: &Db, policy: &Policy, id: i64) -> Result<Evaluation> {
    let mut conn = db.acquire().await?;
    let row: EvaluationRow =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE e.id = $1")))
            .bind(id)
            .fetch_optional(&mut conn)
            .await?
            .ok_or(AppError::NotFound)?;
    let mut e = Evaluation::from(row);
    let round = review_round(&mut conn, e.instance_id).await?;
    e.experts = sqlx::query_as(
        "SELECT ee.user_id, u.display_name, COALESCE(x.title, '') AS title, COALESCE(x.unit_name, '') AS unit_name, \
         (SELECT t.status FROM workflow_tasks t WHERE t.instance_id = $2 AND t.state = 'expert_review' AND t.round = $3 \
          AND t.assignee_id = ee.user_id ORDER BY t.id DESC LIMIT 1) AS task_status \
         FROM evaluation_experts ee JOIN users u ON u.id = ee.user_id LEFT JOIN experts x ON x.user_id = ee.user_id \
         WHERE ee.evaluation_id = $1 ORDER BY ee.user_id",
    )
    .bind(id)
    .bind(e.instance_id.unwrap_or(0))
    .bind(round)
    .fetch_all(&mut conn)
    .await?;
    if e.score.is_none() {
        let scores = expert_scores(&mut conn, e.instance_id).await?;
        let totals: Vec<Decimal> = scores.iter().map(|s| s.total).collect();
        e.score = aggregate(policy, &totals);
        e.suggested_grade = e.score.map(|s| policy.grade_for(s).to_string());
    }
    Ok(e)
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
    let rows: Vec<EvaluationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} {filter} ORDER BY e.id DESC LIMIT $3 OFFSET $4"
    )))
    .bind(user.id)
    .bind(year.unwrap_or(0))
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    Ok((rows.into_iter().map(Evaluation::from).collect(), total))
}

/// Published results (公示), newest year first.
pub async fn published(db: &Db, year: Option<i64>) -> Result<Vec<Evaluation>> {
    let rows: Vec<EvaluationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE e.status = 'published' AND ($1 = 0 OR e.year = $1) ORDER BY e.year DESC, e.score_x100 DESC, e.id LIMIT 500"
    )))
    .bind(year.unwrap_or(0))
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(Evaluation::from).collect())
}

/// A unit's published results, newest year first (for its public page).
pub async fn published_for_unit(db: &Db, unit_id: i64) -> Result<Vec<Evaluation>> {
    let rows: Vec<EvaluationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE e.status = 'published' AND e.unit_id = $1 ORDER BY e.year DESC LIMIT 10"
    )))
    .bind(unit_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(Evaluation::from).collect())
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

/// Validate and store a declaration and start its review (`expert_evaluation`) in one
/// transaction; returns its id and the started flow.
#[allow(clippy::too_many_arguments)]
pub async fn declare(
    engine: &crate::workflow::Engine,
    user: &CurrentUser,
    unit_id: i64,
    year: i64,
    self_report: &str,
    now: i64,
    this_year: i64,
) -> Result<(i64, crate::workflow::Started)> {
    let db = engine.db();
    user.require(Permission::EvaluationDeclare)?;
    let unit = crate::units::get(db, unit_id).await?;
    user.require_for(Permission::EvaluationDeclare, unit.id)?;
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
    let mut tx = db.begin_write().await?;
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
    let started = engine
        .start_in(
            &mut tx,
            "expert_evaluation",
            "evaluation",
            id,
            user.id,
            serde_json::json!({"year": year}),
        )
        .await?;
    sqlx::query("UPDATE evaluations SET instance_id = $1 WHERE id = $2")
        .bind(started.instance_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((id, started))
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
    let mut tx = db.begin_write().await?;
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
    #[derive(sqlx::FromRow)]
    struct CandidateRow {
        user_id: i64,
        name: String,
        title: String,
        unit_name: String,
        fields: String,
        member: i64,
        same_unit: i64,
        assigned: i64,
    }
    let rows: Vec<CandidateRow> = sqlx::query_as(
        "SELECT x.user_id, x.name, x.title, x.unit_name, x.fields, \
         (SELECT CAST(COUNT(*) AS BIGINT) FROM unit_members m WHERE m.user_id = x.user_id AND m.unit_id = e.unit_id AND m.created_at <= e.created_at) AS member, \
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
        .into_iter()
        .map(|r| Candidate {
            user_id: r.user_id,
            name: r.name,
            title: r.title,
            unit_name: r.unit_name,
            fields: r.fields,
            recused: if r.member > 0 {
                Some("本单位成员")
            } else if r.same_unit > 0 {
                Some("所在单位即被评单位")
            } else {
                None
            },
            assigned: r.assigned > 0,
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
    let mut tx = db.begin_write().await?;
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

// ---- as a workflow subject ---------------------------------------------------------------

/// Yearly performance evaluations (绩效评价).
pub const WORKFLOW_SUBJECTS: &[crate::workflow::hooks::Subject] = &[
    crate::workflow::hooks::Subject {
        kind: "evaluation",
        table: "evaluations",
        status_column: "status",
        unit: crate::workflow::hooks::UnitOf::Column("unit_id"),
        has_joined_on: false,
        searchable: false,
        label: |conn, id| {
            Box::pin(crate::workflow::hooks::label_by(
                conn,
                "SELECT u.name || ' ' || CAST(e.year AS TEXT) || ' 年度绩效评价' FROM evaluations e JOIN units u ON u.id = e.unit_id WHERE e.id = $1",
                id,
            ))
        },
    },
];

/// `finalise_evaluation`: combine the experts' scores into the grade.
pub const WORKFLOW_HOOKS: &[crate::workflow::hooks::Hook] = &[crate::workflow::hooks::Hook {
    name: "finalise_evaluation",
    check: check_finalise_hook,
    run: run_finalise_hook,
}];
