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

/// One past service of the demo history.
struct Service {
    /// Index of the instrument within its unit (the first three approved ones).
    instrument: usize,
    days_ago: i64,
    hour: u32,
    hours: u32,
    /// Negotiated price in yuan.
    price: i64,
    /// Share of the price paid with vouchers (external services only).
    voucher_percent: i64,
    rating: Option<&'static str>,
    /// For the enterprise (true) or the unit's own research.
    external: bool,
}

const SERVICES: &[Service] = &[
    Service {
        instrument: 0,
        days_ago: 58,
        hour: 9,
        hours: 2,
        price: 1600,
        voucher_percent: 40,
        rating: Some("非常满意"),
        external: true,
    },
    Service {
        instrument: 1,
        days_ago: 51,
        hour: 14,
        hours: 3,
        price: 2400,
        voucher_percent: 40,
        rating: Some("基本满意"),
        external: true,
    },
    Service {
        instrument: 0,
        days_ago: 44,
        hour: 9,
        hours: 4,
        price: 3200,
        voucher_percent: 25,
        rating: Some("非常满意"),
        external: true,
    },
    Service {
        instrument: 2,
        days_ago: 37,
        hour: 10,
        hours: 2,
        price: 1200,
        voucher_percent: 0,
        rating: None,
        external: false,
    },
    Service {
        instrument: 1,
        days_ago: 30,
        hour: 14,
        hours: 2,
        price: 1800,
        voucher_percent: 40,
        rating: Some("一般"),
        external: true,
    },
    Service {
        instrument: 0,
        days_ago: 23,
        hour: 9,
        hours: 3,
        price: 2700,
        voucher_percent: 0,
        rating: None,
        external: false,
    },
    Service {
        instrument: 2,
        days_ago: 16,
        hour: 9,
        hours: 2,
        price: 1500,
        voucher_percent: 40,
        rating: None,
        external: true,
    },
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
    let mut conn = db.acquire().await?;
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
        .fetch_all(&mut conn)
        .await?;
        if instruments.len() < 3 {
            continue;
        }
        let mut redeemable = Vec::new();
        for (n, sv) in SERVICES.iter().enumerate() {
            let instrument = instruments[sv.instrument].0;
            let start = past_slot(now, sv.days_ago, sv.hour);
            let end = start + i64::from(sv.hours) * 3600;
            // Early in January the older services would fall in last year: leave them out.
            if Shanghai
                .timestamp_opt(start, 0)
                .single()
                .map(|t| t.year() as i64)
                != Some(year)
            {
                continue;
            }
            let (unit, user) = if sv.external {
                (enterprise, buyer)
            } else {
                (owner, manager_id)
            };
            let price_fen = sv.price * 100;
            let voucher_fen = if sv.external {
                price_fen * sv.voucher_percent / 100
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
            .bind(if sv.external { "产品材料检测" } else { "本单位科研测试" })
            .bind(price_fen)
            .bind(voucher_fen)
            .bind(year)
            .bind(start - 5 * 86_400)
            .bind(end)
            .fetch_one(&mut conn)
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
            .bind(if sv.external { "孙立" } else { "实验室教师" })
            .bind(price_fen)
            .bind(voucher_fen)
            .bind(i64::from(sv.hours) * 100)
            .bind(start)
            .bind(end)
            .bind(year)
            .bind(sv.rating)
            .execute(&mut conn)
            .await?;
            sqlx::query("UPDATE instruments SET service_count = service_count + 1 WHERE id = $1")
                .bind(instrument)
                .execute(&mut conn)
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
            .fetch_one(&mut conn)
            .await?;
            for (booking, voucher) in redeemable {
                sqlx::query("INSERT INTO redemption_items (redemption_id, booking_id, voucher_fen) VALUES ($1, $2, $3)")
                    .bind(rid)
                    .bind(booking)
                    .bind(voucher)
                    .execute(&mut conn)
                    .await?;
                vouchers::redeem(&mut conn, enterprise, year, voucher, booking, decided).await?;
            }
            added += 1;
        }
    }
    // Waiting for the demo accounts: a request for 郑州大学 to quote, a quote for 森源 to
    // confirm, and yesterday's confirmed service (40% in vouchers) for 许昌学院 to complete.
    for (owner_name, status, price_fen, voucher_fen, days) in [
        ("郑州大学", "requested", None, 0, -3),
        ("许昌学院", "quoted", Some(120_000), 0, -4),
        ("许昌学院", "confirmed", Some(200_000), 80_000, 1),
    ] {
        let Some(owner) = unit_id(db, owner_name).await? else {
            continue;
        };
        let instrument: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM instruments WHERE unit_id = $1 AND review_status = 'approved' ORDER BY id LIMIT 1",
        )
        .bind(owner)
        .fetch_optional(&mut conn)
        .await?;
        let Some(instrument) = instrument else {
            continue;
        };
        let start = past_slot(now, days, 9);
        if Shanghai
            .timestamp_opt(start, 0)
            .single()
            .map(|t| t.year() as i64)
            != Some(year)
        {
            continue;
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO bookings (instrument_id, unit_id, user_id, start_at, end_at, purpose, sample_info, status, price_fen, \
             voucher_fen, voucher_year, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, '新产品绝缘材料分析', '环氧树脂样块 3 件', $6, $7, $8, $9, $10, $10) RETURNING id",
        )
        .bind(instrument)
        .bind(enterprise)
        .bind(buyer)
        .bind(start)
        .bind(start + 2 * 3600)
        .bind(status)
        .bind(price_fen)
        .bind(voucher_fen)
        .bind((voucher_fen > 0).then_some(year))
        .bind(now)
        .fetch_one(&mut conn)
        .await?;
        vouchers::reserve(
            &mut conn,
            enterprise,
            year,
            Yuan::from_fen(voucher_fen),
            id,
            now,
        )
        .await?;
        added += 1;
    }
    Ok(added)
}
