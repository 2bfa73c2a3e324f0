//! Subsidy settlement (补贴结算): per instrument, income × the unit's coefficient, capped per
//! instrument; per unit, capped in total. When the unit cap bites, the instruments' amounts
//! are scaled down so that they add up to the cap exactly to the fen:
//!
//! **Allocation rule.** Each instrument gets `amount × cap / unit_total`, rounded down to the
//! fen; the fen still missing go one each to the instruments with the largest remainders
//! (ties: lower instrument id first). The result is deterministic and reproducible.

use rust_decimal::{Decimal, RoundingStrategy, prelude::ToPrimitive};
use serde::Serialize;

use super::Policy;
use crate::{
    domain::Yuan,
    error::{AppError, Result},
    store::Db,
};

/// One instrument's line of the computation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InstrumentLine {
    pub instrument_id: i64,
    pub income: Yuan,
    /// income × coefficient, half-up, before any cap.
    pub uncapped: Yuan,
    pub amount: Yuan,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UnitLine {
    pub unit_id: i64,
    pub grade: String,
    pub coefficient: Decimal,
    pub total: Yuan,
    pub unit_cap_applied: bool,
    pub instruments: Vec<InstrumentLine>,
}

/// Compute one unit's subsidy from its instruments' incomes `(instrument_id, income)`.
pub fn compute_unit(
    policy: &Policy,
    unit_id: i64,
    grade: &str,
    incomes: &[(i64, Yuan)],
) -> UnitLine {
    let coefficient = policy.coefficient(grade);
    let cap_i = policy.subsidy.cap_per_instrument;
    let mut lines: Vec<InstrumentLine> = incomes
        .iter()
        .map(|(id, income)| {
            let uncapped = Yuan::new(income.decimal() * coefficient);
            InstrumentLine {
                instrument_id: *id,
                income: *income,
                uncapped,
                amount: uncapped.min(cap_i),
            }
        })
        .collect();
    lines.sort_by_key(|l| l.instrument_id);
    let sum_fen: i64 = lines.iter().map(|l| l.amount.fen()).sum();
    let cap_u = policy.subsidy.cap_per_unit.fen();
    let unit_cap_applied = sum_fen > cap_u;
    if unit_cap_applied {
        let scaled = allocate(
            &lines.iter().map(|l| l.amount.fen()).collect::<Vec<_>>(),
            cap_u,
        );
        for (l, fen) in lines.iter_mut().zip(scaled) {
            l.amount = Yuan::from_fen(fen);
        }
    }
    let total = Yuan::from_fen(lines.iter().map(|l| l.amount.fen()).sum());
    UnitLine {
        unit_id,
        grade: grade.to_string(),
        coefficient,
        total,
        unit_cap_applied,
        instruments: lines,
    }
}

/// Scale `amounts` (fen) down to add up to `target` exactly (largest remainder method).
pub fn allocate(amounts: &[i64], target: i64) -> Vec<i64> {
    let total: i64 = amounts.iter().sum();
    if total <= target || total == 0 {
        return amounts.to_vec();
    }
    let (t, tot) = (Decimal::from(target), Decimal::from(total));
    let mut out = Vec::with_capacity(amounts.len());
    let mut remainders = Vec::with_capacity(amounts.len());
    for (i, a) in amounts.iter().enumerate() {
        let exact = Decimal::from(*a) * t / tot;
        let floor = exact.round_dp_with_strategy(0, RoundingStrategy::ToZero);
        out.push(floor.to_i64().unwrap_or(0));
        remainders.push((exact - floor, i));
    }
    let mut missing = target - out.iter().sum::<i64>();
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders {
        if missing == 0 {
            break;
        }
        out[i] += 1;
        missing -= 1;
    }
    out
}

/// A unit's answer to the computation (单位确认): `pending`, `confirmed` or `objected`.
#[derive(Debug, Clone, Serialize, PartialEq, sqlx::FromRow)]
pub struct Confirmation {
    pub unit_id: i64,
    pub unit_name: String,
    pub status: String,
    /// The objection's reason (异议理由); empty otherwise.
    pub reason: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
}

/// A stored settlement as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Settlement {
    pub id: i64,
    pub year: i64,
    pub status: String,
    pub policy_version_id: i64,
    pub instance_id: Option<i64>,
    pub units: Vec<UnitLine>,
    pub total: Yuan,
    pub confirmations: Vec<Confirmation>,
    pub computed_at: i64,
    pub computations: i64,
}

impl Settlement {
    pub fn confirmation(&self, unit_id: i64) -> Option<&Confirmation> {
        self.confirmations.iter().find(|c| c.unit_id == unit_id)
    }
}

/// Incomes per instrument for `year`: voucher amounts of service records completed that year
/// whose redemption has been approved.
async fn incomes(conn: &mut crate::store::Conn, year: i64) -> Result<Vec<(i64, i64, i64)>> {
    Ok(sqlx::query_as(
        "SELECT sr.managing_unit_id AS unit_id, sr.instrument_id, CAST(SUM(sr.voucher_fen) AS BIGINT) AS income \
         FROM service_records sr JOIN redemption_items ri ON ri.booking_id = sr.booking_id \
         JOIN redemptions r ON r.id = ri.redemption_id \
         WHERE sr.year = $1 AND r.status = 'approved' AND sr.voucher_fen > 0 \
         GROUP BY sr.managing_unit_id, sr.instrument_id ORDER BY sr.managing_unit_id, sr.instrument_id",
    )
    .bind(year)
    .fetch_all(conn)
    .await?)
}

/// Compute the year's settlement from approved redemptions and final grades (no grade: 0).
pub async fn compute(
    conn: &mut crate::store::Conn,
    policy: &Policy,
    year: i64,
) -> Result<Vec<UnitLine>> {
    let rows = incomes(&mut *conn, year).await?;
    let mut units: Vec<UnitLine> = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        let unit_id = rows[i].0;
        let mut incs = Vec::new();
        while i < rows.len() && rows[i].0 == unit_id {
            incs.push((rows[i].1, Yuan::from_fen(rows[i].2)));
            i += 1;
        }
        let grade: Option<String> =
            sqlx::query_scalar("SELECT grade FROM unit_grades WHERE unit_id = $1 AND year = $2")
                .bind(unit_id)
                .bind(year)
                .fetch_optional(&mut *conn)
                .await?;
        units.push(compute_unit(
            policy,
            unit_id,
            grade.as_deref().unwrap_or("unqualified"),
            &incs,
        ));
    }
    Ok(units)
}

/// Store a new settlement for `year` (status `computed`, no figures yet) and start its
/// workflow in the same transaction; the flow's first step computes it (`compute_settlement`).
pub async fn create(
    engine: &crate::workflow::Engine,
    year: i64,
    user_id: i64,
    now: i64,
) -> Result<i64> {
    let (policy_id, _) = super::current(engine.db()).await?;
    let mut tx = engine.db().begin_write().await?;
    // One live settlement per year: the partial unique index `settlements_live_year` (a
    // cancelled one does not count) decides between concurrent creations on both backends.
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO settlements (year, policy_version_id, total_fen, created_by, created_at, updated_at) VALUES ($1, $2, 0, $3, $4, $4) RETURNING id",
    )
    .bind(year)
    .bind(policy_id)
    .bind(user_id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        if crate::store::is_unique_violation(&e) {
            AppError::conflict(
                "settlement_exists",
                format!("{year} 年度已有进行中或已下达的补贴结算，不能重复发起"),
            )
        } else {
            AppError::Database(e)
        }
    })?;
    // The flow's first step computes the figures and asks the units to confirm them.
    let started = engine
        .start_in(
            &mut tx,
            "subsidy_settlement",
            "subsidy_settlement",
            id,
            user_id,
            serde_json::json!({"year": year}),
        )
        .await?;
    sqlx::query("UPDATE settlements SET instance_id = $1 WHERE id = $2")
        .bind(started.instance_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id)
}

/// (Re)compute settlement `id` from the current inputs — approved redemptions, final grades
/// and the policy in force — replacing its lines, and open the units' confirmation afresh:
/// every unit `pending`, its managers the confirmers. The same inputs give the same figures.
pub async fn recompute(conn: &mut crate::store::Conn, id: i64, now: i64) -> Result<()> {
    let year: i64 = sqlx::query_scalar("SELECT year FROM settlements WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(AppError::NotFound)?;
    let (policy_id, content): (i64, String) =
        sqlx::query_as("SELECT id, content FROM policy_versions ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no policy version stored")))?;
    let policy =
        Policy::parse(&content).map_err(|e| AppError::Internal(anyhow::anyhow!(e.join("; "))))?;
    let units = compute(&mut *conn, &policy, year).await?;
    if units.is_empty() {
        return Err(AppError::unprocessable(
            "nothing_to_settle",
            format!("{year} 年度没有已兑付的共享服务收入，无需结算"),
        ));
    }
    sqlx::query("DELETE FROM settlement_lines WHERE settlement_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM settlement_units WHERE settlement_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let mut confirmers: Vec<i64> = Vec::new();
    for u in &units {
        for l in &u.instruments {
            sqlx::query(
                "INSERT INTO settlement_lines (settlement_id, unit_id, instrument_id, grade, income_fen, uncapped_fen, amount_fen) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id)
            .bind(u.unit_id)
            .bind(l.instrument_id)
            .bind(&u.grade)
            .bind(l.income.fen())
            .bind(l.uncapped.fen())
            .bind(l.amount.fen())
            .execute(&mut *conn)
            .await?;
        }
        sqlx::query("INSERT INTO settlement_units (settlement_id, unit_id) VALUES ($1, $2)")
            .bind(id)
            .bind(u.unit_id)
            .execute(&mut *conn)
            .await?;
        let managers: Vec<i64> = sqlx::query_scalar(
            "SELECT m.user_id FROM unit_members m JOIN users u ON u.id = m.user_id \
             WHERE m.unit_id = $1 AND m.role = 'manager' AND u.is_active = 1 ORDER BY m.user_id",
        )
        .bind(u.unit_id)
        .fetch_all(&mut *conn)
        .await?;
        if managers.is_empty() {
            let name: String = sqlx::query_scalar("SELECT name FROM units WHERE id = $1")
                .bind(u.unit_id)
                .fetch_one(&mut *conn)
                .await?;
            return Err(AppError::unprocessable(
                "no_unit_manager",
                format!("单位“{name}”没有单位管理员，无法确认结算，请先为其指定单位管理员"),
            ));
        }
        confirmers.extend(managers);
    }
    confirmers.sort_unstable();
    confirmers.dedup();
    let confirmer_ids = confirmers
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let total: i64 = units.iter().map(|u| u.total.fen()).sum();
    sqlx::query(
        "UPDATE settlements SET total_fen = $1, policy_version_id = $2, confirmer_ids = $3, computed_at = $4, \
         computations = computations + 1, updated_at = $4 WHERE id = $5",
    )
    .bind(total)
    .bind(policy_id)
    .bind(confirmer_ids)
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Record a unit manager's decision on the computation: an approval confirms their units
/// once every manager of the unit has confirmed (会签 among co-managers); a rejection is an
/// objection (异议) and needs a reason.
pub async fn record_decision(
    conn: &mut crate::store::Conn,
    id: i64,
    d: &crate::workflow::hooks::DecisionInfo,
    now: i64,
) -> Result<()> {
    let mine: Vec<i64> = sqlx::query_scalar(
        "SELECT su.unit_id FROM settlement_units su JOIN unit_members m ON m.unit_id = su.unit_id \
         WHERE su.settlement_id = $1 AND m.user_id = $2 AND m.role = 'manager' AND su.status = 'pending' ORDER BY su.unit_id",
    )
    .bind(id)
    .bind(d.assignee_id)
    .fetch_all(&mut *conn)
    .await?;
    let decided_by = d.actor_id.unwrap_or(d.assignee_id);
    match d.action.as_str() {
        "reject" => {
            let reason = d.comment.trim();
            if reason.is_empty() {
                return Err(AppError::field(
                    "comment",
                    "提出异议时请写明理由（哪一条不对、应当是多少）",
                ));
            }
            for unit in mine {
                sqlx::query(
                    "UPDATE settlement_units SET status = 'objected', reason = $1, decided_by = $2, decided_at = $3 \
                     WHERE settlement_id = $4 AND unit_id = $5",
                )
                .bind(reason)
                .bind(decided_by)
                .bind(now)
                .bind(id)
                .bind(unit)
                .execute(&mut *conn)
                .await?;
            }
        }
        "approve" => {
            for unit in mine {
                // Co-managers of the unit who still hold an open task in this round.
                let (waiting,): (i64,) = sqlx::query_as(
                    "SELECT CAST(COUNT(*) AS BIGINT) FROM workflow_tasks t JOIN unit_members m ON m.user_id = t.assignee_id \
                     WHERE t.instance_id = (SELECT instance_id FROM workflow_tasks WHERE id = $1) AND t.round = $2 \
                     AND t.status = 'open' AND m.unit_id = $3 AND m.role = 'manager'",
                )
                .bind(d.task_id)
                .bind(d.round)
                .bind(unit)
                .fetch_one(&mut *conn)
                .await?;
                if waiting == 0 {
                    sqlx::query(
                        "UPDATE settlement_units SET status = 'confirmed', reason = '', decided_by = $1, decided_at = $2 \
                         WHERE settlement_id = $3 AND unit_id = $4",
                    )
                    .bind(decided_by)
                    .bind(now)
                    .bind(id)
                    .bind(unit)
                    .execute(&mut *conn)
                    .await?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Units' confirmations of settlement `id`, by unit.
pub async fn confirmations(db: &Db, id: i64) -> Result<Vec<Confirmation>> {
    Ok(sqlx::query_as(
        "SELECT su.unit_id, un.name AS unit_name, su.status, su.reason, us.display_name AS decided_by, su.decided_at \
         FROM settlement_units su JOIN units un ON un.id = su.unit_id LEFT JOIN users us ON us.id = su.decided_by \
         WHERE su.settlement_id = $1 ORDER BY su.unit_id",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?)
}

/// A `settlements` row.
#[derive(sqlx::FromRow)]
struct SettlementRow {
    year: i64,
    status: String,
    policy_version_id: i64,
    instance_id: Option<i64>,
    #[sqlx(rename = "total_fen", try_from = "crate::store::Fen")]
    total: Yuan,
    computed_at: i64,
    computations: i64,
}

/// A `settlement_lines` row: one instrument of one unit.
#[derive(sqlx::FromRow)]
struct LineRow {
    unit_id: i64,
    instrument_id: i64,
    grade: String,
    #[sqlx(rename = "income_fen", try_from = "crate::store::Fen")]
    income: Yuan,
    #[sqlx(rename = "uncapped_fen", try_from = "crate::store::Fen")]
    uncapped: Yuan,
    #[sqlx(rename = "amount_fen", try_from = "crate::store::Fen")]
    amount: Yuan,
}

/// Load a stored settlement, rebuilt from its lines and its policy version.
pub async fn get(db: &Db, id: i64) -> Result<Settlement> {
    let row: SettlementRow = sqlx::query_as("SELECT year, status, policy_version_id, instance_id, total_fen, computed_at, computations FROM settlements WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .ok_or(AppError::NotFound)?;
    let content: String = sqlx::query_scalar("SELECT content FROM policy_versions WHERE id = $1")
        .bind(row.policy_version_id)
        .fetch_one(&db.pool)
        .await?;
    let policy =
        Policy::parse(&content).map_err(|e| AppError::Internal(anyhow::anyhow!(e.join("; "))))?;
    let lines: Vec<LineRow> = sqlx::query_as(
        "SELECT unit_id, instrument_id, grade, income_fen, uncapped_fen, amount_fen FROM settlement_lines \
         WHERE settlement_id = $1 ORDER BY unit_id, instrument_id",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?;
    let mut units: Vec<UnitLine> = Vec::new();
    for l in lines {
        let unit_id = l.unit_id;
        if units.last().map(|u| u.unit_id) != Some(unit_id) {
            units.push(UnitLine {
                unit_id,
                coefficient: policy.coefficient(&l.grade),
                grade: l.grade,
                total: Yuan::ZERO,
                unit_cap_applied: false,
                instruments: vec![],
            });
        }
        let u = units.last_mut().expect("pushed above");
        let line = InstrumentLine {
            instrument_id: l.instrument_id,
            income: l.income,
            uncapped: l.uncapped,
            amount: l.amount,
        };
        u.total = Yuan::from_fen(u.total.fen() + line.amount.fen());
        u.instruments.push(line);
    }
    for u in &mut units {
        let capped_sum: i64 = u
            .instruments
            .iter()
            .map(|l| l.uncapped.min(policy.subsidy.cap_per_instrument).fen())
            .sum();
        u.unit_cap_applied = capped_sum > policy.subsidy.cap_per_unit.fen();
    }
    Ok(Settlement {
        id,
        year: row.year,
        status: row.status,
        policy_version_id: row.policy_version_id,
        instance_id: row.instance_id,
        total: row.total,
        units,
        confirmations: confirmations(db, id).await?,
        computed_at: row.computed_at,
        computations: row.computations,
    })
}

/// The newest 100 settlements' ids.
pub async fn recent_ids(db: &Db) -> Result<Vec<i64>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM settlements ORDER BY id DESC LIMIT 100")
            .fetch_all(&db.pool)
            .await?,
    )
}

/// Ids of the settlements that pay a unit the user manages, newest first.
pub async fn ids_for_manager(db: &Db, user_id: i64) -> Result<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT su.settlement_id FROM settlement_units su JOIN unit_members m ON m.unit_id = su.unit_id \
         WHERE m.user_id = $1 AND m.role = 'manager' ORDER BY su.settlement_id DESC",
    )
    .bind(user_id)
    .fetch_all(&db.pool)
    .await?)
}

/// The user's first open task on a settlement's flow (`instance_id`), if any: what they
/// still have to answer.
pub async fn open_task(db: &Db, instance_id: Option<i64>, user_id: i64) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM workflow_tasks WHERE instance_id = $1 AND assignee_id = $2 AND status = 'open' ORDER BY id LIMIT 1",
    )
    .bind(instance_id.unwrap_or(0))
    .bind(user_id)
    .fetch_optional(&db.pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::{DEFAULT_POLICY, Policy};

    fn y(s: &str) -> Yuan {
        Yuan::parse(s).unwrap()
    }

    fn policy() -> Policy {
        Policy::parse(DEFAULT_POLICY).unwrap()
    }

    #[test]
    fn an_instrument_earning_120000_for_a_good_unit_gets_the_30000_cap() {
        let u = compute_unit(&policy(), 1, "good", &[(7, y("120000"))]);
        assert_eq!(u.instruments[0].uncapped.to_string(), "36000.00");
        assert_eq!(u.instruments[0].amount.to_string(), "30000.00");
        assert_eq!(u.total.to_string(), "30000.00");
    }

    #[test]
    fn a_unit_whose_instruments_add_up_to_260000_gets_200000_exactly() {
        // Ten instruments whose 30% is 26,000.00 each: 260,000.00 before the unit cap.
        let incomes: Vec<(i64, Yuan)> = (1..=10).map(|i| (i, y("86666.67"))).collect();
        let u = compute_unit(&policy(), 1, "excellent", &incomes);
        let before: i64 = u.instruments.iter().map(|l| l.uncapped.fen()).sum();
        assert_eq!(before, 26_000_000, "each 86,666.67 × 30% = 26,000.00");
        assert!(u.unit_cap_applied);
        assert_eq!(u.total.to_string(), "200000.00");
        let sum: i64 = u.instruments.iter().map(|l| l.amount.fen()).sum();
        assert_eq!(sum, 20_000_000);
    }

    #[test]
    fn qualified_units_get_15_percent_and_unqualified_nothing() {
        let u = compute_unit(&policy(), 1, "qualified", &[(1, y("10000.05"))]);
        // 10,000.05 × 0.15 = 1,500.0075 → 1,500.01 half-up
        assert_eq!(u.total.to_string(), "1500.01");
        let u = compute_unit(&policy(), 1, "unqualified", &[(1, y("99999"))]);
        assert_eq!(u.total, Yuan::ZERO);
    }

    #[test]
    fn the_instrument_cap_boundary_is_inclusive() {
        let u = compute_unit(&policy(), 1, "good", &[(1, y("100000.00"))]);
        assert_eq!(u.total.to_string(), "30000.00");
        let u = compute_unit(&policy(), 1, "good", &[(1, y("99999.99"))]);
        // 99,999.99 × 0.3 = 29,999.997 → 30,000.00 after half-up, not over the cap
        assert_eq!(u.total.to_string(), "30000.00");
    }

    #[test]
    fn scaling_down_adds_up_to_the_cap_to_the_fen_with_largest_remainders() {
        let out = allocate(&[100, 100, 100], 200);
        assert_eq!(out.iter().sum::<i64>(), 200);
        assert_eq!(out, vec![67, 67, 66]);
        let out = allocate(&[3_000_000, 2_999_999, 1], 4_000_000);
        assert_eq!(out.iter().sum::<i64>(), 4_000_000);
        assert_eq!(
            allocate(&[5, 5], 20),
            vec![5, 5],
            "under the cap nothing changes"
        );
    }

    #[test]
    fn the_computation_is_reproducible() {
        let incomes: Vec<(i64, Yuan)> = (1..=13).map(|i| (i, y("77777.77"))).collect();
        let a = compute_unit(&policy(), 3, "good", &incomes);
        let b = compute_unit(&policy(), 3, "good", &incomes);
        assert_eq!(a, b);
        assert_eq!(a.total.to_string(), "200000.00");
    }
}
