//! Spreadsheets (Excel 导入导出): the instrument import template, the all-or-nothing bulk
//! import with a row-by-row Chinese report, and xlsx exports of console lists.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use rust_xlsxwriter::{Format, Workbook};

use crate::{
    catalog,
    error::{AppError, Result},
    instruments::{self, InstrumentInput},
    store::Db,
};

/// Template columns: header (a trailing `*` marks required) and the input field it fills.
pub const COLUMNS: [(&str, &str); 38] = [
    ("仪器名称*", "name"),
    ("规格型号", "model"),
    ("生产厂商", "manufacturer"),
    ("产地国别", "country"),
    ("分类代码*", "category_code"),
    ("所在部门", "department"),
    ("原值（元）*", "value"),
    ("对社会开放（是/否）", "open_to_public"),
    ("所在城市", "city"),
    ("海关监管（是/否）", "customs_supervised"),
    ("进口报关单编号", "customs_declaration_no"),
    ("放行日期", "customs_release_date"),
    ("运行状态", "usage_status"),
    ("共享方式", "sharing_mode"),
    ("仪器来源", "source"),
    ("资金来源", "funding"),
    ("仪器类型", "instrument_type"),
    ("主要技术指标与功能", "description"),
    ("服务内容", "service_content"),
    ("典型成果", "typical_achievements"),
    ("安放地点", "location"),
    ("收费标准", "fee_standard"),
    ("购置日期", "purchase_date"),
    ("年运行机时", "annual_running_hours"),
    ("年服务机时", "annual_service_hours"),
    // National reporting fields (国家上报字段).
    ("英文名称", "name_en"),
    ("主要技术指标（国家上报）", "technical"),
    ("主要功能（国家上报）", "functions"),
    ("服务对象要求", "requirements"),
    ("学科领域代码", "subject_codes"),
    ("启用日期", "begin_date"),
    ("所属类型", "affiliation"),
    ("区县", "county"),
    ("详细地址", "address"),
    ("邮政编码", "postal_code"),
    ("联系人", "contact_name"),
    ("联系电话", "contact_phone"),
    ("联系邮箱", "contact_email"),
];

fn xlsx_err(e: rust_xlsxwriter::XlsxError) -> AppError {
    AppError::Internal(anyhow::anyhow!("xlsx: {e}"))
}

/// The import template: the header row, the rules and the class codes.
pub fn instrument_template() -> Result<Vec<u8>> {
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let ws = wb.add_worksheet();
    ws.set_name("仪器").map_err(xlsx_err)?;
    for (c, (header, _)) in COLUMNS.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, *header, &bold)
            .map_err(xlsx_err)?;
        ws.set_column_width(c as u16, 16).map_err(xlsx_err)?;
    }
    let notes = wb.add_worksheet();
    notes.set_name("填写说明").map_err(xlsx_err)?;
    let lines = [
        "从第 2 行起每行一台仪器；带 * 的列必填；不要修改第 1 行的列名。".to_string(),
        "原值按元填写，最多两位小数；门户按万元显示。".to_string(),
        "分类代码为六位数字，见“分类代码”工作表。".to_string(),
        "海关监管填“是”时，进口报关单编号和放行日期必填；日期格式 YYYY-MM-DD。".to_string(),
        format!("运行状态可选：{}", catalog::USAGE_STATUSES.join("、")),
        format!("共享方式可选：{}", catalog::SHARING_MODES.join("、")),
        format!("仪器来源可选：{}", catalog::SOURCES.join("、")),
        format!("资金来源可选：{}", catalog::FUNDING.join("、")),
        format!("仪器类型可选：{}", catalog::TYPES.join("、")),
        "年运行机时、年服务机时填 0–8784 的整数（小时）。".to_string(),
        "国家上报字段（英文名称至联系邮箱）：原值 50 万元及以上的仪器入网后须向国家平台上报，请尽量填写；主要技术指标不超过 500 字，主要功能不超过 300 字。".to_string(),
        "学科领域代码填 GB/T 13745 数字代码，最多 4 个，用逗号分隔，如 110,520；启用日期格式 YYYY-MM-DD；邮政编码 6 位数字。".to_string(),
        "任一行有误时整批不导入，请按报告修改后重新上传。".to_string(),
    ];
    for (r, line) in lines.iter().enumerate() {
        notes.write_string(r as u32, 0, line).map_err(xlsx_err)?;
    }
    let codes = wb.add_worksheet();
    codes.set_name("分类代码").map_err(xlsx_err)?;
    codes
        .write_string_with_format(0, 0, "代码", &bold)
        .map_err(xlsx_err)?;
    codes
        .write_string_with_format(0, 1, "分类", &bold)
        .map_err(xlsx_err)?;
    let mut r = 1u32;
    for class in catalog::classes() {
        for sub in &class.subclasses {
            codes.write_string(r, 0, &sub.code).map_err(xlsx_err)?;
            codes
                .write_string(r, 1, format!("{} / {}", class.name, sub.name))
                .map_err(xlsx_err)?;
            r += 1;
        }
    }
    wb.save_to_buffer().map_err(xlsx_err)
}

/// A cell as the text a user typed: whole numbers without `.0`, dates as `YYYY-MM-DD`.
fn cell_text(d: &Data) -> String {
    match d {
        Data::Empty | Data::Error(_) => String::new(),
        Data::String(s) => s.trim().to_string(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => {
            if f.fract() == 0.0 && f.abs() < 1e15 {
                format!("{}", *f as i64)
            } else {
                // Excel keeps money as binary floats; two places is what the user typed.
                format!("{f:.2}")
            }
        }
        Data::Bool(b) => if *b { "是" } else { "否" }.to_string(),
        Data::DateTime(dt) => {
            // A serial far outside the calendar (a forged cell) gives no date, not a panic.
            let days = dt.as_f64().floor() as i64;
            chrono::NaiveDate::from_ymd_opt(1899, 12, 30)
                .zip(chrono::Duration::try_days(days))
                .and_then(|(base, d)| base.checked_add_signed(d))
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default()
        }
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.chars().take(10).collect(),
    }
}

/// One problem in an uploaded sheet (`row` is the spreadsheet's row number, 0 for the file).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RowError {
    pub row: usize,
    pub message: String,
}

/// The outcome of an import: rows imported, or the report of every problem found.
#[derive(Debug, Clone, serde::Serialize)]
pub enum ImportOutcome {
    Imported(usize),
    Rejected(Vec<RowError>),
}

/// Parse a sheet into inputs for `unit_id`; errors name the row and the column.
pub fn parse_instruments(
    bytes: &[u8],
    unit_id: i64,
) -> std::result::Result<Vec<(usize, InstrumentInput)>, Vec<RowError>> {
    let file_error = |m: &str| {
        vec![RowError {
            row: 0,
            message: m.to_string(),
        }]
    };
    let mut wb: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes.to_vec()))
        .map_err(|_| file_error("无法读取文件：请上传由导入模板填写的 .xlsx 文件"))?;
    let range = match wb.worksheet_range_at(0) {
        Some(Ok(r)) => r,
        _ => return Err(file_error("文件中没有工作表")),
    };
    let mut rows = range.rows();
    let Some(header) = rows.next() else {
        return Err(file_error("文件为空：第 1 行应为列名"));
    };
    let norm = |s: &str| s.trim().trim_end_matches('*').trim().to_string();
    let mut index = Vec::with_capacity(COLUMNS.len());
    let mut missing = Vec::new();
    for (h, _) in COLUMNS {
        match header.iter().position(|c| norm(&cell_text(c)) == norm(h)) {
            Some(i) => index.push(Some(i)),
            None => {
                if h.ends_with('*') {
                    missing.push(norm(h));
                }
                index.push(None)
            }
        }
    }
    if !missing.is_empty() {
        return Err(file_error(&format!(
            "模板缺少必填列：{}（请使用下载的导入模板）",
            missing.join("、")
        )));
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (n, row) in rows.enumerate() {
        let row_no = n + 2;
        let get = |field: &str| -> String {
            COLUMNS
                .iter()
                .position(|(_, f)| *f == field)
                .and_then(|k| index[k])
                .and_then(|i| row.get(i))
                .map(cell_text)
                .unwrap_or_default()
        };
        if row.iter().all(|c| cell_text(c).is_empty()) {
            continue;
        }
        let yes = |s: String| matches!(s.trim(), "是" | "1" | "Y" | "y" | "yes" | "true");
        let open = get("open_to_public");
        // Excel turns a typed 010100 into the number 10100: restore the leading zeros.
        let mut category_code = get("category_code");
        if !category_code.is_empty()
            && category_code.len() < 6
            && category_code.chars().all(|c| c.is_ascii_digit())
        {
            category_code = format!("{category_code:0>6}");
        }
        let input = InstrumentInput {
            unit_id: Some(unit_id),
            name: get("name"),
            model: get("model"),
            manufacturer: get("manufacturer"),
            country: get("country"),
            category_code,
            department: get("department"),
            value: get("value"),
            open_to_public: open.trim().is_empty() || yes(open),
            city: get("city"),
            customs_supervised: yes(get("customs_supervised")),
            customs_declaration_no: get("customs_declaration_no"),
            customs_release_date: get("customs_release_date"),
            usage_status: get("usage_status"),
            sharing_mode: get("sharing_mode"),
            source: get("source"),
            funding: get("funding"),
            instrument_type: get("instrument_type"),
            description: get("description"),
            service_content: get("service_content"),
            typical_achievements: get("typical_achievements"),
            location: get("location"),
            fee_standard: get("fee_standard"),
            purchase_date: get("purchase_date"),
            annual_running_hours: get("annual_running_hours"),
            annual_service_hours: get("annual_service_hours"),
            name_en: get("name_en"),
            technical: get("technical"),
            functions: get("functions"),
            requirements: get("requirements"),
            subject_codes: get("subject_codes"),
            begin_date: get("begin_date"),
            affiliation: get("affiliation"),
            county: get("county"),
            address: get("address"),
            postal_code: get("postal_code"),
            contact_name: get("contact_name"),
            contact_phone: get("contact_phone"),
            contact_email: get("contact_email"),
            ..Default::default()
        };
        match input.clone().validate() {
            Ok(_) => out.push((row_no, input)),
            Err(AppError::Validation { fields, .. }) => {
                for (field, msg) in fields {
                    let col = COLUMNS
                        .iter()
                        .find(|(_, f)| *f == field)
                        .map(|(h, _)| norm(h))
                        .unwrap_or(field);
                    errors.push(RowError {
                        row: row_no,
                        message: format!("第 {row_no} 行“{col}”：{msg}"),
                    });
                }
            }
            Err(e) => errors.push(RowError {
                row: row_no,
                message: format!("第 {row_no} 行：{e}"),
            }),
        }
    }
    if out.is_empty() && errors.is_empty() {
        return Err(file_error("没有可导入的数据：请从第 2 行起填写"));
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Import every row as a draft of `unit_id`, all or nothing, in one transaction.
pub async fn import_instruments(
    db: &Db,
    bytes: &[u8],
    unit_id: i64,
    now: i64,
) -> Result<ImportOutcome> {
    let rows = match parse_instruments(bytes, unit_id) {
        Ok(rows) => rows,
        Err(errors) => return Ok(ImportOutcome::Rejected(errors)),
    };
    let mut tx = db.begin_write().await?;
    for (_, input) in &rows {
        let valid = input.clone().validate()?;
        instruments::create(&mut *tx, &valid, now).await?;
    }
    tx.commit().await?;
    Ok(ImportOutcome::Imported(rows.len()))
}

/// A sheet of rows under Chinese headers, every cell as text (money already formatted).
pub fn export(sheet: &str, headers: &[&str], rows: &[Vec<String>]) -> Result<Vec<u8>> {
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let ws = wb.add_worksheet();
    ws.set_name(sheet).map_err(xlsx_err)?;
    for (c, h) in headers.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, *h, &bold)
            .map_err(xlsx_err)?;
        ws.set_column_width(c as u16, 18).map_err(xlsx_err)?;
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            ws.write_string(r as u32 + 1, c as u16, &*as_text(v))
                .map_err(xlsx_err)?;
        }
    }
    wb.save_to_buffer().map_err(xlsx_err)
}

/// A value as an exported cell: text a spreadsheet would take for a formula (it starts with
/// `=`, `+`, `-`, `@`, a tab or a carriage return, e.g. an instrument named
/// `=HYPERLINK(…)`) gets a leading `'`, so it stays text when the cell is edited or the
/// sheet is saved as CSV (formula injection). Numbers such as `-12.50` and a lone `-` are
/// left alone.
fn as_text(v: &str) -> std::borrow::Cow<'_, str> {
    let risky = v.len() > 1 && v.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && v.parse::<f64>().is_err() {
        format!("'{v}").into()
    } else {
        v.into()
    }
}

#[cfg(test)]
mod tests {
    use calamine::{Data, ExcelDateTime, ExcelDateTimeType};

    use super::cell_text;

    #[test]
    fn a_date_cell_far_outside_the_calendar_is_empty_not_a_panic() {
        let cell =
            |v: f64| Data::DateTime(ExcelDateTime::new(v, ExcelDateTimeType::DateTime, false));
        assert_eq!(cell_text(&cell(46_357.0)), "2026-12-01");
        for v in [1e300, -1e300, f64::INFINITY, f64::NAN, 9.2e18] {
            let _ = cell_text(&cell(v));
        }
        assert_eq!(cell_text(&cell(1e300)), "");
    }
}
