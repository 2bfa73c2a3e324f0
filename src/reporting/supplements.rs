//! National supplements of an instrument: the national fields the platform's own record
//! lacks, kept beside it.

#[allow(unused_imports)]
use super::*;

// ---- national supplements of an instrument ------------------------------------------------

/// The national fields an instrument lacked (contract: `name_en`, `technical`, …), kept as
/// one JSON object. Optional on the platform, checked when reporting.
pub const INSTRUMENT_NATIONAL_FIELDS: [&str; 13] = [
    "name_en",
    "technical",
    "functions",
    "requirements",
    "subject_codes",
    "begin_date",
    "county",
    "address",
    "postal_code",
    "contact_name",
    "contact_phone",
    "contact_email",
    "affiliation",
];

/// Keep only the national supplement fields of `input` (strings; `subject_codes` a list, or
/// a string split at commas).
pub fn national_supplements(input: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for f in INSTRUMENT_NATIONAL_FIELDS {
        let Some(v) = input.get(f) else { continue };
        let v = match (f, v) {
            ("subject_codes", Value::Array(a)) => Value::Array(
                a.iter()
                    .map(|x| json!(national_text(x)))
                    .filter(|x| x.as_str() != Some(""))
                    .collect(),
            ),
            ("subject_codes", other) => Value::Array(
                national_text(other)
                    .split([',', '，', ' '])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| json!(s))
                    .collect(),
            ),
            (_, other) => json!(national_text(other)),
        };
        out.insert(f.to_string(), v);
    }
    out
}

pub(super) fn national_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// An instrument's national supplements.
pub async fn instrument_supplements(db: &Db, id: i64) -> Result<(i64, Map<String, Value>)> {
    let r = sqlx::query("SELECT unit_id, national_json FROM instruments WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok((
        r.get("unit_id"),
        serde_json::from_str(&r.get::<String, _>("national_json")).unwrap_or_default(),
    ))
}

/// Create an instrument (`POST /instruments`) with its national supplements, in one transaction.
pub async fn create_instrument_with(
    db: &Db,
    valid: &crate::instruments::ValidInstrument,
    national: &Map<String, Value>,
    now: i64,
) -> Result<i64> {
    let mut tx = db.begin_write().await?;
    let id = crate::instruments::create(&mut *tx, valid, now).await?;
    sqlx::query("UPDATE instruments SET national_json = $1 WHERE id = $2")
        .bind(Value::Object(national.clone()).to_string())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id)
}

/// Merge national supplements into an instrument (any review state: they are reporting
/// data, not the reviewed public record).
pub async fn save_supplements(
    db: &Db,
    id: i64,
    patch: &Map<String, Value>,
    now: i64,
) -> Result<Map<String, Value>> {
    let (_, mut current) = instrument_supplements(db, id).await?;
    for (k, v) in national_supplements(patch) {
        current.insert(k, v);
    }
    let mut tx = db.begin_write().await?;
    sqlx::query("UPDATE instruments SET national_json = $1, updated_at = $2 WHERE id = $3")
        .bind(Value::Object(current.clone()).to_string())
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    // The English name (`name_en`) is searchable: reindex the instrument.
    crate::search::enqueue(&mut tx, "instrument", id).await?;
    tx.commit().await?;
    Ok(current)
}
