//! The demo's booking settings (issue 17): one electron microscope of 许昌学院 requires a
//! qualification (培训资质) that the demo enterprise user `senyuan` holds for a year, and one
//! instrument of 郑州大学 allows multi-day bookings — so 空闲时段查询, 培训申请 and 跨日预约 can
//! be tried at once in `serve --demo`.

use crate::{error::Result, store::Db, store::WriteQuery};

/// Loaded once: nothing is changed when any qualification exists.
pub async fn load(db: &Db, now: i64) -> Result<usize> {
    let any: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM instrument_qualifications")
        .fetch_one(&db.pool)
        .await?;
    if any > 0 {
        return Ok(0);
    }
    let mut n = 0;
    let sem: Option<(i64, i64)> = sqlx::query_as(
        "SELECT i.id, i.unit_id FROM instruments i JOIN units u ON u.id = i.unit_id \
         WHERE u.name = '许昌学院' AND i.review_status = 'approved' AND i.category_code LIKE '0101%' \
         ORDER BY i.id LIMIT 1",
    )
    .fetch_optional(&db.pool)
    .await?;
    let senyuan: Option<i64> =
        sqlx::query_scalar("SELECT id FROM users WHERE username = 'senyuan'")
            .fetch_optional(&db.pool)
            .await?;
    let granter: Option<i64> =
        sqlx::query_scalar("SELECT id FROM users WHERE username = 'xcu_lab'")
            .fetch_optional(&db.pool)
            .await?;
    if let (Some((sem, _)), Some(user), Some(granter)) = (sem, senyuan, granter) {
        sqlx::query("UPDATE instruments SET requires_qualification = 1 WHERE id = $1")
            .bind(sem)
            .write(db)
            .await?;
        let until = chrono::DateTime::from_timestamp(now + 365 * 86_400, 0)
            .unwrap_or_default()
            .date_naive()
            .to_string();
        sqlx::query(
            "INSERT INTO instrument_qualifications (instrument_id, user_id, expires_on, granted_by, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(sem)
        .bind(user)
        .bind(until)
        .bind(granter)
        .bind(now)
        .write(db)
        .await?;
        n += 1;
    }
    let n2 = sqlx::query(
        "UPDATE instruments SET multi_day = 1, max_duration_hours = 72 WHERE id = (SELECT MIN(i.id) \
         FROM instruments i JOIN units u ON u.id = i.unit_id WHERE u.name = '郑州大学' AND i.review_status = 'approved')",
    )
    .write(db)
    .await?
    .rows_affected();
    Ok(n + n2 as usize)
}
