//! The key fields of each subject type, with Chinese labels: shown beside a task's history
//! and offered by the designer's condition builder (`subject.<column>`).

#[allow(unused_imports)]
use super::*;

/// How a column's value is shown and compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    Text,
    Number,
    /// 0 / 1.
    Flag,
    /// An amount in fen, shown in yuan.
    Fen,
}

/// One key field of a subject: its column, label and kind.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Field {
    pub column: &'static str,
    pub label: &'static str,
    pub kind: FieldKind,
}

macro_rules! f {
    ($column:expr, $label:expr, $kind:expr) => {
        Field {
            column: $column,
            label: $label,
            kind: $kind,
        }
    };
}

use FieldKind::{Fen, Flag, Number, Text};

/// The key fields of a subject type (empty for unknown types).
pub fn subject_fields(subject_type: &str) -> &'static [Field] {
    match subject_type {
        "unit" => &[
            f!("name", "单位名称", Text),
            f!("kind", "单位类型", Text),
            f!("nature", "单位性质", Text),
            f!("credit_code", "统一社会信用代码", Text),
            f!("enterprise_type", "企业类型", Text),
            f!("city", "所在城市", Text),
            f!("contact_name", "联系人", Text),
            f!("dishonest", "失信记录", Flag),
            f!("abnormal_operation", "经营异常", Flag),
        ],
        "instrument" => &[
            f!("name", "仪器名称", Text),
            f!("model", "型号", Text),
            f!("manufacturer", "生产厂商", Text),
            f!("category_code", "分类代码", Text),
            f!("value_fen", "原值（元）", Fen),
            f!("city", "所在城市", Text),
            f!("location", "放置地点", Text),
            f!("open_to_public", "对外开放", Flag),
            f!("customs_supervised", "海关监管", Flag),
            f!("sharing_mode", "共享方式", Text),
        ],
        "platform" => &[
            f!("name", "平台名称", Text),
            f!("category", "类别", Text),
            f!("platform_type", "平台类型", Text),
        ],
        "service" => &[
            f!("name", "检测项目", Text),
            f!("category", "类别", Text),
            f!("price_fen", "价格（元）", Fen),
            f!("price_unit", "计价单位", Text),
            f!("turnaround_days", "周期（天）", Number),
        ],
        "achievement" => &[
            f!("title", "成果名称", Text),
            f!("field", "领域", Text),
            f!("maturity", "成熟度", Text),
            f!("transfer_mode", "转化方式", Text),
            f!("price_fen", "价格（元）", Fen),
            f!("holder", "持有人", Text),
        ],
        "expert" => &[
            f!("name", "姓名", Text),
            f!("unit_name", "工作单位", Text),
            f!("title", "职称", Text),
            f!("fields", "专业领域", Text),
        ],
        "voucher_application" => &[f!("year", "年度", Number), f!("status", "状态", Text)],
        "redemption" => &[
            f!("total_fen", "兑付金额（元）", Fen),
            f!("status", "状态", Text),
            f!("contract_count", "合同数", Number),
            f!("invoice_count", "发票数", Number),
        ],
        "subsidy_settlement" => &[
            f!("year", "年度", Number),
            f!("total_fen", "补贴总额（元）", Fen),
            f!("status", "状态", Text),
        ],
        "evaluation" => &[
            f!("year", "年度", Number),
            f!("expert_count", "专家人数", Number),
            f!("score_x100", "得分（×100）", Number),
            f!("suggested_grade", "建议等级", Text),
        ],
        "report_batch" => &[
            f!("kind", "上报类型", Text),
            f!("period", "期间", Text),
            f!("status", "状态", Text),
        ],
        _ => &[],
    }
}

/// A field's value from the subject's row, for people (`—` when empty).
pub fn show_value(field: &Field, v: &Value) -> String {
    match (field.kind, v) {
        (_, Value::Null) => "—".into(),
        (FieldKind::Flag, v) => {
            if v.as_i64().unwrap_or(0) != 0 {
                "是".into()
            } else {
                "否".into()
            }
        }
        (FieldKind::Fen, v) => match v.as_i64() {
            Some(fen) => crate::domain::Yuan::from_fen(fen).to_string(),
            None => "—".into(),
        },
        (_, Value::String(s)) if s.is_empty() => "—".into(),
        (_, Value::String(s)) => s.clone(),
        (_, v) => v.to_string(),
    }
}

impl Engine {
    /// The subject's key fields as (label, value) for the task page.
    pub async fn subject_summary(&self, inst: &Instance) -> Result<Vec<(String, String)>> {
        let fields = subject_fields(&inst.subject_type);
        if fields.is_empty() {
            return Ok(vec![]);
        }
        let mut conn = self.db.acquire().await?;
        let row = match load_subject(
            self.definitions.catalog(),
            &mut conn,
            &inst.subject_type,
            inst.subject_id,
        )
        .await
        {
            Ok(row) => row,
            Err(AppError::NotFound) => return Ok(vec![]),
            Err(e) => return Err(e),
        };
        Ok(fields
            .iter()
            .filter(|f| row.get(f.column).is_some())
            .map(|f| (f.label.to_string(), show_value(f, &row[f.column])))
            .collect())
    }
}
