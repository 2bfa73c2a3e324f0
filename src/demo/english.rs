//! English names (英文名称, the national `ename`) of the demo instruments, kept in their
//! national supplements (`national_json.name_en`) as a unit would fill them in.

#[allow(unused_imports)]
use super::*;

/// Chinese template name → English name.
pub(super) const ENGLISH_NAMES: &[(&str, &str)] = &[
    (
        "场发射扫描电子显微镜",
        "Field Emission Scanning Electron Microscope",
    ),
    ("透射电子显微镜", "Transmission Electron Microscope"),
    (
        "台式扫描电子显微镜",
        "Benchtop Scanning Electron Microscope",
    ),
    ("气相色谱-质谱联用仪", "Gas Chromatograph-Mass Spectrometer"),
    (
        "液相色谱-串联质谱联用仪",
        "Liquid Chromatograph-Tandem Mass Spectrometer",
    ),
    (
        "电感耦合等离子体质谱仪",
        "Inductively Coupled Plasma Mass Spectrometer",
    ),
    ("X射线衍射仪", "X-ray Diffractometer"),
    ("X射线荧光光谱仪", "X-ray Fluorescence Spectrometer"),
    ("X射线光电子能谱仪", "X-ray Photoelectron Spectrometer"),
    (
        "傅里叶变换红外光谱仪",
        "Fourier Transform Infrared Spectrometer",
    ),
    ("激光共聚焦拉曼光谱仪", "Confocal Raman Spectrometer"),
    ("紫外可见近红外分光光度计", "UV-Vis-NIR Spectrophotometer"),
    (
        "电感耦合等离子体发射光谱仪",
        "Inductively Coupled Plasma Optical Emission Spectrometer",
    ),
    ("原子吸收光谱仪", "Atomic Absorption Spectrometer"),
    ("荧光光谱仪", "Fluorescence Spectrometer"),
    ("气相色谱仪", "Gas Chromatograph"),
    ("高效液相色谱仪", "High Performance Liquid Chromatograph"),
    ("离子色谱仪", "Ion Chromatograph"),
    ("核磁共振波谱仪", "Nuclear Magnetic Resonance Spectrometer"),
    (
        "电子顺磁共振波谱仪",
        "Electron Paramagnetic Resonance Spectrometer",
    ),
    ("电化学工作站", "Electrochemical Workstation"),
    ("激光扫描共聚焦显微镜", "Confocal Laser Scanning Microscope"),
    ("原子力显微镜", "Atomic Force Microscope"),
    ("同步热分析仪", "Simultaneous Thermal Analyzer"),
    ("差示扫描量热仪", "Differential Scanning Calorimeter"),
    ("流式细胞仪", "Flow Cytometer"),
    ("实时荧光定量PCR仪", "Real-Time Quantitative PCR System"),
    ("全自动凯氏定氮仪", "Automatic Kjeldahl Nitrogen Analyzer"),
    ("元素分析仪", "Elemental Analyzer"),
    ("微波消解仪", "Microwave Digestion System"),
    ("电子万能试验机", "Electronic Universal Testing Machine"),
    ("疲劳试验机", "Fatigue Testing Machine"),
    ("激光粒度分析仪", "Laser Particle Size Analyzer"),
    (
        "比表面积及孔径分析仪",
        "Surface Area and Pore Size Analyzer",
    ),
    ("超声波探伤仪", "Ultrasonic Flaw Detector"),
    ("三坐标测量机", "Coordinate Measuring Machine"),
    ("激光跟踪仪", "Laser Tracker"),
    (
        "高精度数字多用表校准系统",
        "Precision Digital Multimeter Calibration System",
    ),
    ("矢量网络分析仪", "Vector Network Analyzer"),
    ("频谱分析仪", "Spectrum Analyzer"),
    ("数字存储示波器", "Digital Storage Oscilloscope"),
    ("半导体参数分析仪", "Semiconductor Parameter Analyzer"),
    (
        "电磁兼容测试系统",
        "Electromagnetic Compatibility Test System",
    ),
    ("声学多普勒流速剖面仪", "Acoustic Doppler Current Profiler"),
    ("高密度电法仪", "High Density Resistivity Meter"),
    ("探地雷达", "Ground Penetrating Radar"),
    ("大气颗粒物监测仪", "Atmospheric Particulate Monitor"),
    ("工业CT检测系统", "Industrial CT Inspection System"),
    ("便携式X射线探伤机", "Portable X-ray Flaw Detector"),
    ("局部放电检测系统", "Partial Discharge Detection System"),
    ("飞秒激光器", "Femtosecond Laser"),
    ("光纤激光器", "Fiber Laser"),
    ("金属3D打印机", "Metal 3D Printer"),
    ("磁控溅射镀膜系统", "Magnetron Sputtering Coating System"),
    (
        "高低温交变湿热试验箱",
        "Temperature and Humidity Cycling Chamber",
    ),
    ("高性能计算集群", "High Performance Computing Cluster"),
    ("光学望远镜", "Optical Telescope"),
    ("小动物活体成像系统", "Small Animal In Vivo Imaging System"),
    ("全自动生化分析仪", "Automatic Biochemistry Analyzer"),
    ("高内涵细胞成像分析系统", "High Content Cell Imaging System"),
    ("液体闪烁计数器", "Liquid Scintillation Counter"),
    ("高纯锗γ能谱仪", "HPGe Gamma Spectrometer"),
    ("超纯水系统", "Ultrapure Water System"),
    ("超低温冰箱", "Ultra-Low Temperature Freezer"),
    ("多参数水质分析仪", "Multiparameter Water Quality Analyzer"),
    ("自动气象站", "Automatic Weather Station"),
];

/// The English name of a template name, if known.
pub(crate) fn english_name(name: &str) -> Option<&'static str> {
    ENGLISH_NAMES
        .iter()
        .find(|(zh, _)| *zh == name)
        .map(|(_, en)| *en)
}

/// Fill in `name_en` of demo instruments that have none yet (idempotent).
pub(super) async fn fill_english_names(db: &Db) -> Result<usize> {
    let rows: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT id, name, national_json FROM instruments")
            .fetch_all(&db.pool)
            .await?;
    let mut n = 0;
    let mut tx = db.begin_write().await?;
    for (id, name, national) in rows {
        let Some(en) = english_name(&name) else {
            continue;
        };
        let mut map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&national).unwrap_or_default();
        if map
            .get("name_en")
            .and_then(|v| v.as_str())
            .is_some_and(|s| !s.is_empty())
        {
            continue;
        }
        map.insert("name_en".into(), serde_json::json!(en));
        sqlx::query("UPDATE instruments SET national_json = $1 WHERE id = $2")
            .bind(serde_json::Value::Object(map).to_string())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        n += 1;
    }
    tx.commit().await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_has_an_english_name() {
        for (name, _, _) in TEMPLATES {
            assert!(english_name(name).is_some(), "{name}");
        }
    }
}
