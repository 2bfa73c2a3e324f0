//! The demo data set (演示数据): units of Xuchang and Henan, 300+ instruments over the 15
//! national classes, platforms, services, achievements, articles and one account per role.
//! Loading is idempotent: records that already exist (by name) are left alone.

mod booking_plus;
mod consult;
mod content;
mod english;
mod money;
mod resources;
mod templates;
mod units;

use content::*;
use resources::*;
pub(crate) use templates::*;
use units::*;

use std::fmt;

use crate::{
    auth::{self, NewUser},
    clock::Clock,
    domain::CreditCode,
    error::Result,
    store::Db,
};

/// Demo accounts: username, display name, role, unit (index into `UNITS`) and email.
pub const DEMO_PASSWORD: &str = "Demo2026pass";
/// What `load` did.
#[derive(Debug, Default)]
pub struct Report {
    pub units: usize,
    pub users: usize,
    pub instruments: usize,
    pub articles: usize,
    pub others: usize,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "演示数据已加载：新增单位 {} 个、用户 {} 个、仪器 {} 台、资讯 {} 篇、平台/服务/成果 {} 项（已存在的记录保持不变）",
            self.units, self.users, self.instruments, self.articles, self.others
        )
    }
}

/// True when nothing has been created yet.
pub async fn is_empty(db: &Db) -> Result<bool> {
    let n: i64 =
        sqlx::query_scalar("SELECT (SELECT COUNT(*) FROM units) + (SELECT COUNT(*) FROM users)")
            .fetch_one(&db.pool)
            .await?;
    Ok(n == 0)
}

/// A deterministic pseudo-random sequence, so every load builds the same data.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

pub async fn load(db: &Db, clock: &Clock) -> Result<Report> {
    let now = clock.now_ts();
    let mut report = Report::default();
    let mut unit_ids = Vec::new();
    let mut rng = Lcg(20_261_126);
    for (index, u) in UNITS.iter().enumerate() {
        let existing: Option<i64> = sqlx::query_scalar("SELECT id FROM units WHERE name = $1")
            .bind(u.name)
            .fetch_optional(&db.pool)
            .await?;
        if let Some(id) = existing {
            unit_ids.push(id);
            continue;
        }
        let joined = format!(
            "20{:02}-{:02}-{:02}",
            19 + index % 6,
            1 + index % 12,
            3 + index % 25
        );
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO units (name, kind, nature, credit_code, contact_name, contact_mobile, \
             contact_email, enterprise_type, certification_status, city, address, intro, joined_on, \
             created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14) RETURNING id",
        )
        .bind(u.name)
        .bind(u.kind)
        .bind(u.nature)
        .bind(credit_code(u, index))
        .bind(u.contact)
        .bind(u.mobile)
        .bind(format!("contact{}@labshare.example", index + 1))
        .bind(u.enterprise_type)
        .bind(u.status)
        .bind(u.city)
        .bind(u.address)
        .bind(u.intro)
        .bind(&joined)
        .bind(now)
        .fetch_one(&db.pool)
        .await?;
        report.units += 1;
        unit_ids.push(id);
        if u.kind == "managing" {
            report.instruments += insert_instruments(db, id, u, index, &mut rng, now).await?;
        }
    }

    for (username, display, role, unit, email) in ACCOUNTS {
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
            .bind(*username)
            .fetch_optional(&db.pool)
            .await?;
        if exists.is_some() {
            continue;
        }
        let id = auth::create_user(
            db,
            NewUser {
                username: username.to_string(),
                password: DEMO_PASSWORD.into(),
                display_name: display.to_string(),
                email: Some(email.to_string()),
                phone: None,
            },
            &[role],
            now,
        )
        .await?;
        if let Some(ix) = unit {
            let member_role = if *role == "expert" {
                "member"
            } else {
                "manager"
            };
            let mut conn = db.acquire().await?;
            crate::units::add_member(&mut conn, unit_ids[*ix], id, member_role, now).await?;
        }
        report.users += 1;
    }

    english::fill_english_names(db).await?;
    report.others += insert_resources(db, &unit_ids, now).await?;
    report.articles += insert_articles(db, now).await?;
    report.others += insert_experts_and_rules(db, &unit_ids, now).await?;
    report.others += money::load(db, now).await?;
    report.others += consult::load(db, now).await?;
    report.others += booking_plus::load(db, now).await?;
    Ok(report)
}

/// Put the demo's pending records into review on the engine, so the platform admin's 待办
/// holds real tasks: pending instruments (applicant: their unit's manager) and pending units
/// (applicant: the system admin, as data docking would). Records already in a running
/// flow are left alone; returns how many flows were started.
pub async fn start_pending_reviews(engine: &crate::workflow::Engine) -> Result<usize> {
    let db = engine.db();
    let mut started = 0;
    let pending: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT 'instrument', i.id, COALESCE((SELECT MIN(m.user_id) FROM unit_members m WHERE m.unit_id = i.unit_id AND m.role = 'manager'), \
         (SELECT MIN(u.id) FROM users u JOIN user_roles ur ON ur.user_id = u.id JOIN roles r ON r.id = ur.role_id WHERE r.key = 'system_admin'), 0) \
         FROM instruments i WHERE i.review_status = 'pending' \
         UNION ALL SELECT 'unit', n.id, COALESCE((SELECT MIN(u.id) FROM users u JOIN user_roles ur ON ur.user_id = u.id \
         JOIN roles r ON r.id = ur.role_id WHERE r.key = 'system_admin'), 0) FROM units n WHERE n.certification_status = 'pending'",
    )
    .fetch_all(&db.pool)
    .await?;
    for (kind, id, applicant) in pending {
        if applicant == 0 {
            continue;
        }
        let running: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM workflow_instances WHERE subject_type = $1 AND subject_id = $2 AND status = 'running'",
        )
        .bind(&kind)
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
        if running.is_some() {
            continue;
        }
        let key = if kind == "instrument" {
            "instrument_onboarding"
        } else {
            "unit_certification"
        };
        engine
            .start(
                key,
                &kind,
                id,
                applicant,
                serde_json::json!({"source": "demo"}),
            )
            .await?;
        started += 1;
    }
    Ok(started)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_credit_codes_are_valid_and_unique() {
        let codes: std::collections::HashSet<_> = UNITS
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let c = credit_code(u, i);
                assert!(CreditCode::parse(&c).is_ok(), "{c}");
                c
            })
            .collect();
        assert_eq!(codes.len(), UNITS.len());
    }

    #[test]
    fn the_demo_covers_all_fifteen_classes_and_300_instruments() {
        let managing = UNITS.iter().filter(|u| u.kind == "managing").count();
        assert!(managing * PER_UNIT >= 300);
        let majors: std::collections::HashSet<_> = TEMPLATES
            .iter()
            .map(|(_, c, _)| crate::catalog::major_code(c))
            .collect();
        assert_eq!(majors.len(), 15);
        for (_, code, _) in TEMPLATES {
            assert!(crate::catalog::is_known_code(code), "{code}");
        }
    }
}
