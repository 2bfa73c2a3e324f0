//! Reference data (基础数据): the national instrument classification and the enumerations
//! of the instrument record, read from data files compiled into the binary.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Subclass {
    pub code: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct InstrumentClass {
    pub code: String,
    pub name: String,
    pub subclasses: Vec<Subclass>,
}

/// The 15 national classes with their subclasses.
pub fn classes() -> &'static [InstrumentClass] {
    static CLASSES: OnceLock<Vec<InstrumentClass>> = OnceLock::new();
    CLASSES.get_or_init(|| {
        serde_saphyr::from_str(include_str!("instrument_classes.yaml"))
            .expect("instrument_classes.yaml is valid (checked by a unit test)")
    })
}

/// The major class a six-digit code belongs to (`010203` → `010000`).
pub fn major_code(code: &str) -> String {
    if code.len() == 6 {
        format!("{}0000", &code[..2])
    } else {
        code.to_string()
    }
}

/// "分析仪器 / 电子光学仪器" for a code; the code itself when unknown.
pub fn class_label(code: &str) -> String {
    let major = major_code(code);
    let Some(class) = classes().iter().find(|c| c.code == major) else {
        return code.to_string();
    };
    match class.subclasses.iter().find(|s| s.code == code) {
        Some(sub) => format!("{} / {}", class.name, sub.name),
        None => class.name.clone(),
    }
}

pub fn is_known_code(code: &str) -> bool {
    classes()
        .iter()
        .any(|c| c.code == code || c.subclasses.iter().any(|s| s.code == code))
}

pub const SOURCES: [&str; 4] = ["购置", "研制", "赠送", "其他"];
pub const TYPES: [&str; 2] = ["通用", "专用"];
pub const USAGE_STATUSES: [&str; 5] = ["正常", "偶有故障", "故障频繁", "待修", "待报废"];
pub const SHARING_MODES: [&str; 3] = ["外部共享", "内部共享", "不共享"];
pub const FUNDING: [&str; 4] = ["中央财政", "地方财政", "单位自有", "其他"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_fifteen_national_classes_with_unique_codes() {
        let cs = classes();
        assert_eq!(cs.len(), 15);
        let mut codes: Vec<_> = cs
            .iter()
            .flat_map(|c| std::iter::once(&c.code).chain(c.subclasses.iter().map(|s| &s.code)))
            .collect();
        let n = codes.len();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), n);
        assert!(cs.iter().any(|c| c.code == "990000" && c.name == "其他"));
    }

    #[test]
    fn a_subclass_code_is_labelled_with_its_major_class() {
        assert_eq!(class_label("010100"), "分析仪器 / 电子光学仪器");
        assert_eq!(class_label("030122"), "计量仪器 / 三坐标测量机");
        assert_eq!(major_code("030122"), "030000");
        assert!(is_known_code("010500"));
        assert!(!is_known_code("123456"));
    }
}
