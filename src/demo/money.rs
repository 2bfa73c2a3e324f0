//! The demo's money history: this year's vouchers for the demo enterprise, completed and rated
//! services on two universities' instruments (some paid with vouchers, one batch already
//! redeemed), and a request and a quote waiting for the demo accounts — so 统计分析, 服务记录,
//! an evaluation's indicators and a settlement have real figures, and the journey can be
//! continued by hand. Loaded once: nothing is added when any booking exists.

use chrono::{Datelike, Duration, NaiveDate, TimeZone};
use chrono_tz::Asia::Shanghai;

use crate::{
    domain::Yuan,
    error::Result,
    money::{self, vouchers},
    store::Db,
};

/// (instrument index within its unit, days ago, start hour, hours, price in yuan, voucher
/// share in percent, rating, by the enterprise (true) or the unit itself).
const SERVICES: &[(usize, i64, u32, u32, i64, i64, Option<&str>, bool)] = &[
    (0, 58, 9, 2, 1600, 40, Some("非常满意"), true),
    (1, 51, 14, 3, 2400, 40, Some("基本满意"), true),
    (0, 44, 9, 4, 3200, 25, Some("非常满意"), true),
    (2, 37, 10, 2, 1200, 0, None, false),
    (1, 30, 14, 2, 1800, 40, Some("一般"), true),
    (0, 23, 9, 3, 2700, 0, None, false),
    (2, 16, 9, 2, 1500, 40, None, true),
];

async fn user_id(db: &Db, username: &str) -> Result<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&db.pool)
            .await?,
    )
}

async fn unit_id(db: &Db, name: &str) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar("SELECT id FROM units WHERE name = $1")
        .bind(name)
        .fetch_optional(&db.pool)
        .await?)
}

/// The working day `days` before today (after it when negative; the nearest working day
/// further in that direction if it is not one), at `hour` in Xuchang.
fn past_slot(now: i64, days: i64, hour: u32) -> i64 {
    let today = Shanghai
        .timestamp_opt(now, 0)
        .single()
        .map(|t| t.date_naive())
        .unwrap_or(NaiveDate::MIN);
    let mut d = today - Duration::days(days);
    let step = Duration::days(if days < 0 { -1 } else { 1 });
    while !crate::calendar::is_working_day(d) {
        d -= step;
    }
    Shanghai
        .from_local_datetime(&d.and_hms_opt(hour, 0, 0).unwrap_or_default())
        .single()
        .map(|t| t.timestamp())
        .unwrap_or(now)
}

pub async fn load(db: &Db, now: i64) -> Result<usize> {
    let (bookings,): (i64,) = sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM bookings")
        .fetch_one(&db.pool)
        .await?;
    let (Some(buyer), Some(enterprise)) = (
        user_id(db, "senyuan").await?,
        unit_id(db, "许昌森源智能电气股份有限公司").await?,
    ) else {
        return Ok(0);
    };
    if bookings > 0 {
        return Ok(0);
    }
    let year = Shanghai
        .timestamp_opt(now, 0)
        .single()
        .map(|t| t.year() as i64)
        .unwrap_or(2026);
    let (policy_id, policy) = money::current(db).await?;
    let mut conn = db.pool.acquire().await?;
    vouchers::grant(
        &mut conn,
        enterprise,
        year,
        policy.quota_for("high_tech"),
        policy_id,
        now,
    )
    .await?;
    let mut added = 1;
    for (owner_name, manager) in [("许昌学院", "xcu_lab"), ("郑州大学", "zzu_lab")] {
        let (Some(owner), Some(manager_id)) =
            (unit_id(db, owner_name).await?, user_id(db, manager).await?)
        else {
            continue;
        };
        let instruments: Vec<(i64,)> = sqlx::query_as(
            "SELECT id FROM instruments WHERE unit_id = $1 AND review_status = 'approved' ORDER BY id LIMIT 3",
        )
        .bind(owner)
        .fetch_all(&mut *conn)
        .await?;
        if instruments.len() < 3 {
            continue;
        }
        let mut redeemable = Vec::new();
        for (n, (ix, days, hour, hours, price, share, rating, external)) in
            SERVICES.iter().enumerate()
        {
            let instrument = instruments[*ix].0;
            let start = past_slot(now, *days, *hour);
            let end = start + i64::from(*hours) * 3600;
            // Early in January the older services would fall in last year: leave them out.
            if Shanghai
                .timestamp_opt(start, 0)
                .single()
                .map(|t| t.year() as i64)
                != Some(year)
            {
                continue;
            }
            let (unit, user) = if *external {
                (enterprise, buyer)
            } else {
                (owner, manager_id)
            };
            let price_fen = price * 100;
            let voucher_fen = if *external {
                price_fen * share / 100
            } else {
                0
            };
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO bookings (instrument_id, unit_id, user_id, start_at, end_at, purpose, sample_info, status, price_fen, \
                 voucher_fen, voucher_year, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, '', 'completed', $7, $8, $9, $10, $11) RETURNING id",
            )
            .bind(instrument)
            .bind(unit)
            .bind(user)
            .bind(start)
            .bind(end)
            .bind(if *external { "产品材料检测" } else { "本单位科研测试" })
            .bind(price_fen)
            .bind(voucher_fen)
            .bind(year)
            .bind(start - 5 * 86_400)
            .bind(end)
            .fetch_one(&mut *conn)
            .await?;
            vouchers::reserve(
                &mut conn,
                unit,
                year,
                Yuan::from_fen(voucher_fen),
                id,
                start - 86_400,
            )
            .await?;
            let local = Shanghai.timestamp_opt(end, 0).single();
            let order_no = format!(
                "FW{}{:06}",
                local
                    .map(|t| t.format("%Y%m%d").to_string())
                    .unwrap_or_default(),
                id
            );
            sqlx::query(
                "INSERT INTO service_records (booking_id, order_no, instrument_id, managing_unit_id, user_unit_id, applicant_name, \
                 applicant_phone, amount_fen, voucher_fen, service_hours_x100, started_at, ended_at, completed_at, year, rating, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, '', $7, $8, $9, $10, $11, $11, $12, $13, $11)",
            )
            .bind(id)
            .bind(&order_no)
            .bind(instrument)
            .bind(owner)
            .bind(unit)
            .bind(if *external { "孙立" } else { "实验室教师" })
            .bind(price_fen)
            .bind(voucher_fen)
            .bind(i64::from(*hours) * 100)
            .bind(start)
            .bind(end)
            .bind(year)
            .bind(*rating)
            .execute(&mut *conn)
            .await?;
            sqlx::query("UPDATE instruments SET service_count = service_count + 1 WHERE id = $1")
                .bind(instrument)
                .execute(&mut *conn)
                .await?;
            // The older voucher services of 许昌学院 were redeemed already.
            if voucher_fen > 0 && owner_name == "许昌学院" && n < 4 {
                redeemable.push((id, voucher_fen));
            }
            added += 1;
        }
        if !redeemable.is_empty() {
            let total: i64 = redeemable.iter().map(|r| r.1).sum();
            let decided = past_slot(now, 10, 10);
            let rid: i64 = sqlx::query_scalar(
                "INSERT INTO redemptions (managing_unit_id, status, total_fen, created_by, created_at, updated_at, decided_at) \
                 VALUES ($1, 'approved', $2, $3, $4, $5, $5) RETURNING id",
            )
            .bind(owner)
            .bind(total)
            .bind(manager_id)
            .bind(decided - 20 * 86_400)
            .bind(decided)
            .fetch_one(&mut *conn)
            .await?;
            for (booking, voucher) in redeemable {
                sqlx::query("INSERT INTO redemption_items (redemption_id, booking_id, voucher_fen) VALUES ($1, $2, $3)")
                    .bind(rid)
                    .bind(booking)
                    .bind(voucher)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query(
                    "INSERT INTO voucher_ledger (unit_id, year, kind, amount_fen, delta_fen, booking_id, note, created_at) \
                     VALUES ($1, $2, 'redeem', $3, 0, $4, '兑付通过', $5)",
                )
                .bind(enterprise)
                .bind(year)
                .bind(voucher)
                .bind(booking)
                .bind(decided)
                .execute(&mut *conn)
                .await?;
            }
            added += 1;
        }
    }
    // Waiting for the demo accounts: a request for 郑州大学 to quote, a quote for 森源 to confirm.
    for (owner_name, status, price_fen, days) in [
        ("郑州大学", "requested", None, -3),
        ("许昌学院", "quoted", Some(120_000), -4),
    ] {
        let Some(owner) = unit_id(db, owner_name).await? else {
            continue;
        };
        let instrument: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM instruments WHERE unit_id = $1 AND review_status = 'approved' ORDER BY id LIMIT 1",
        )
        .bind(owner)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(instrument) = instrument else {
            continue;
        };
        let start = past_slot(now, days, 9);
        sqlx::query(
            "INSERT INTO bookings (instrument_id, unit_id, user_id, start_at, end_at, purpose, sample_info, status, price_fen, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, '新产品绝缘材料分析', '环氧树脂样块 3 件', $6, $7, $8, $8)",
        )
        .bind(instrument)
        .bind(enterprise)
        .bind(buyer)
        .bind(start)
        .bind(start + 2 * 3600)
        .bind(status)
        .bind(price_fen)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        added += 1;
    }
    Ok(added)
}
