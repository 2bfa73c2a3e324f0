//! A batch's items: the source values of the unit's reportable records and the national
//! records built from them.

#[allow(unused_imports)]
use super::*;

/// The source values of the unit's reportable records of `kind`: approved instruments of at
/// least the national threshold, or service records completed in the quarter; records already
/// accepted upstream, or in another batch under review or push, are left out.
pub(super) async fn sources(
    conn: &mut crate::store::Conn,
    batch_id: i64,
    unit_id: i64,
    kind: &str,
    period: &str,
    site: &Site,
) -> Result<Vec<(i64, Map<String, Value>)>> {
    let taken = "NOT EXISTS (SELECT 1 FROM report_items ri JOIN report_batches rb ON rb.id = ri.batch_id \
        WHERE rb.kind = $2 AND ri.record_id = {ID} AND rb.id <> $3 AND \
        (ri.upstream_status = 'accepted' OR rb.status IN ('pending', 'approved', 'pushing')))";
    let mut out = Vec::new();
    if kind == "instruments" {
        let sql = format!(
            "SELECT {INSTRUMENT_SOURCE} FROM instruments i WHERE i.unit_id = $1 AND i.review_status = 'approved' \
             AND i.value_fen >= $4 AND {} ORDER BY i.id",
            taken.replace("{ID}", "i.id")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(unit_id)
            .bind(kind)
            .bind(batch_id)
            .bind(national::reportable_min_fen())
            .fetch_all(&mut *conn)
            .await?;
        for r in rows {
            out.push((r.get("id"), instrument_source(&r, site)));
        }
    } else {
        let (from, to) = quarter(period)?;
        let sql = format!(
            "SELECT {SERVICE_SOURCE} FROM {SERVICE_FROM} \
             WHERE sr.managing_unit_id = $1 AND sr.completed_at >= $4 AND sr.completed_at < $5 AND {} \
             ORDER BY sr.id",
            taken.replace("{ID}", "sr.id")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(unit_id)
            .bind(kind)
            .bind(batch_id)
            .bind(midnight_ts(from))
            .bind(midnight_ts(to))
            .fetch_all(&mut *conn)
            .await?;
        for r in rows {
            out.push((r.get("id"), service_source(&r)));
        }
    }
    Ok(out)
}

/// The instrument columns the national mapping reads (`i` = instruments).
pub(crate) const INSTRUMENT_SOURCE: &str = "i.id, i.name, i.category_code, i.source, i.instrument_type, \
    i.value_fen, i.country, i.model, i.manufacturer, i.purchase_date, i.fee_standard, i.service_content, \
    i.customs_supervised, i.customs_declaration_no, i.customs_release_date, i.annual_running_hours, \
    i.annual_service_hours, i.funding, i.department, i.usage_status, i.sharing_mode, i.city, i.national_json";

/// An instrument row as the mapping's source values.
pub(crate) fn instrument_source(r: &sqlx::any::AnyRow, site: &Site) -> Map<String, Value> {
    let id: i64 = r.get("id");
    let extra: Map<String, Value> =
        serde_json::from_str(&r.get::<String, _>("national_json")).unwrap_or_default();
    let mut m = Map::new();
    for c in [
        "name",
        "category_code",
        "source",
        "instrument_type",
        "country",
        "model",
        "manufacturer",
        "fee_standard",
        "service_content",
        "customs_declaration_no",
        "funding",
        "department",
        "usage_status",
        "sharing_mode",
        "city",
    ] {
        m.insert(c.into(), json!(r.get::<String, _>(c)));
    }
    for c in ["value_fen", "annual_running_hours", "annual_service_hours"] {
        m.insert(c.into(), json!(r.get::<i64, _>(c)));
    }
    m.insert("id".into(), json!(id.to_string()));
    m.insert(
        "customs_supervised".into(),
        json!(r.get::<i64, _>("customs_supervised") != 0),
    );
    m.insert(
        "customs_release_date".into(),
        json!(r.get::<Option<String>, _>("customs_release_date")),
    );
    m.insert(
        "service_url".into(),
        json!(format!("{}/instruments/{id}", site.public_url)),
    );
    m.insert("province".into(), json!(site.province));
    // The national supplements; `begin_date` falls back to the purchase date.
    for (k, v) in extra {
        m.insert(k, v);
    }
    if m.get("begin_date")
        .is_none_or(|v| v.as_str().is_none_or(str::is_empty))
    {
        m.insert(
            "begin_date".into(),
            json!(r.get::<Option<String>, _>("purchase_date")),
        );
    }
    m
}

/// The service-record columns the national mapping reads, and their joins.
pub(crate) const SERVICE_SOURCE: &str = "sr.id, sr.instrument_id, sr.amount_fen, sr.started_at, sr.ended_at, \
    sr.service_hours_x100, sr.applicant_name, sr.applicant_phone, sr.rating, sr.user_unit_id, \
    sr.managing_unit_id, b.kind, b.purpose, b.customs_notice_no, i.service_content, \
    uu.name AS user_unit_name, us.email AS applicant_email";
pub(crate) const SERVICE_FROM: &str = "service_records sr JOIN bookings b ON b.id = sr.booking_id \
    JOIN instruments i ON i.id = sr.instrument_id JOIN units uu ON uu.id = sr.user_unit_id \
    LEFT JOIN users us ON us.id = b.user_id";

/// A service-record row as the mapping's source values.
pub(crate) fn service_source(r: &sqlx::any::AnyRow) -> Map<String, Value> {
    let purpose: String = r.get("purpose");
    let content = if purpose.trim().is_empty() {
        r.get::<String, _>("service_content")
    } else {
        purpose
    };
    let internal = r.get::<i64, _>("user_unit_id") == r.get::<i64, _>("managing_unit_id");
    let m = json!({
        "id": r.get::<i64, _>("id").to_string(),
        "instrument_id": r.get::<i64, _>("instrument_id").to_string(),
        "amount_fen": r.get::<i64, _>("amount_fen"),
        "started_at": r.get::<i64, _>("started_at"),
        "ended_at": r.get::<i64, _>("ended_at"),
        "service_hours_x100": r.get::<i64, _>("service_hours_x100"),
        "service_content": content,
        "kind": r.get::<String, _>("kind"),
        "applicant_name": r.get::<String, _>("applicant_name"),
        "applicant_phone": r.get::<String, _>("applicant_phone"),
        "applicant_email": r.get::<Option<String>, _>("applicant_email"),
        "user_unit_name": r.get::<String, _>("user_unit_name"),
        "rating": r.get::<Option<String>, _>("rating"),
        "user_kind": if internal { "internal" } else { "external" },
        "customs_notice_no": r.get::<String, _>("customs_notice_no"),
    });
    m.as_object().cloned().unwrap_or_default()
}

/// (Re)build a draft batch's items from the records as they are now.
pub(super) async fn build_items(
    conn: &mut crate::store::Conn,
    batch_id: i64,
    site: &Site,
) -> Result<()> {
    let b = sqlx::query("SELECT unit_id, kind, period FROM report_batches WHERE id = $1")
        .bind(batch_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(AppError::NotFound)?;
    let kind: String = b.get("kind");
    let recs = sources(
        conn,
        batch_id,
        b.get("unit_id"),
        &kind,
        &b.get::<String, _>("period"),
        site,
    )
    .await?;
    sqlx::query("DELETE FROM report_items WHERE batch_id = $1")
        .bind(batch_id)
        .execute(&mut *conn)
        .await?;
    for (id, source) in recs {
        let (national, problems) = national::map(&kind, &source);
        sqlx::query(
            "INSERT INTO report_items (batch_id, record_id, national_json, problems_json) VALUES ($1, $2, $3, $4)",
        )
        .bind(batch_id)
        .bind(id)
        .bind(Value::Object(national).to_string())
        .bind(serde_json::to_string(&problems).unwrap_or_else(|_| "[]".into()))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
