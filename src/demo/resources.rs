//! Instruments, platforms, services and achievements of the demo units.

#[allow(unused_imports)]
use super::*;
use crate::store::WriteQuery;

/// Unit index, title, field, maturity, transfer mode, price in fen (None: negotiable).
pub(super) type DemoAchievement = (
    usize,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<i64>,
);

/// Instruments per managing unit, so that the total exceeds 300.
pub(super) const PER_UNIT: usize = 32;

pub(super) async fn insert_instruments(
    db: &Db,
    unit_id: i64,
    u: &DemoUnit,
    unit_index: usize,
    rng: &mut Lcg,
    now: i64,
) -> Result<usize> {
    let mut tx = db.begin_write().await?;
    let mut n = 0;
    for k in 0..PER_UNIT {
        // Walk the templates so every class is covered, offset per unit.
        let (name, code, variants) = TEMPLATES[(unit_index * 7 + k * 3 + k / 11) % TEMPLATES.len()];
        let (model, maker, country, wan) = variants[rng.below(variants.len())];
        let value_fen = (wan as i64) * 1_000_000 + (rng.below(90) as i64) * 10_000;
        let department = u.departments[rng.below(u.departments.len())];
        let status = match k % 16 {
            14 => "pending",
            15 => "draft",
            _ => "approved",
        };
        let usage = ["正常", "正常", "正常", "正常", "偶有故障", "正常", "待修"][rng.below(7)];
        let sharing = if k % 9 == 4 {
            "内部共享"
        } else {
            "外部共享"
        };
        let open = sharing == "外部共享";
        let customs = country != "中国" && k % 5 == 0;
        let year = 2012 + rng.below(13);
        let joined = format!(
            "{}-{:02}-{:02}",
            2019 + rng.below(7),
            1 + rng.below(12),
            1 + rng.below(28)
        );
        let source = if country == "中国" && k % 7 == 0 {
            "研制"
        } else {
            "购置"
        };
        let funding = ["中央财政", "地方财政", "单位自有", "地方财政"][rng.below(4)];
        let kind = if k % 4 == 0 { "专用" } else { "通用" };
        let floor = 1 + rng.below(5);
        let room = 100 * floor + 1 + rng.below(30);
        sqlx::query(
            "INSERT INTO instruments (unit_id, name, model, manufacturer, country, category_code, department, \
             value_fen, open_to_public, city, customs_supervised, customs_declaration_no, customs_release_date, \
             usage_status, sharing_mode, source, funding, instrument_type, description, service_content, \
             location, fee_standard, review_status, joined_on, purchase_date, annual_running_hours, \
             annual_service_hours, service_count, created_at, updated_at) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, \
              $22, $23, $24, $25, $26, $27, $28, $29, $29)",
        )
        .bind(unit_id)
        .bind(name)
        .bind(model)
        .bind(maker)
        .bind(country)
        .bind(code)
        .bind(department)
        .bind(value_fen)
        .bind(open as i64)
        .bind(u.city)
        .bind(customs as i64)
        .bind(if customs { format!("4601{}{:010}", year, unit_id * 1000 + k as i64) } else { String::new() })
        .bind(if customs { Some(format!("{year}-06-18")) } else { None })
        .bind(usage)
        .bind(sharing)
        .bind(source)
        .bind(funding)
        .bind(kind)
        .bind(format!(
            "{maker} {model} {name}，{year} 年购置，安装于{}{department}，由专职技术人员管理，可提供{name}相关的测试与技术咨询。",
            u.name
        ))
        .bind(format!("{name}常规测试、方法开发、数据分析与结果解读；可承接企业委托检测与科研合作。"))
        .bind(format!("{}{}楼 {} 室", department, floor, room))
        .bind(format!(
            "校内 {} 元/小时，校外 {} 元/小时，具体以协商价格为准",
            (wan / 10).clamp(50, 800),
            (wan / 5).clamp(100, 1500)
        ))
        .bind(status)
        .bind(&joined)
        .bind(format!("{year}-0{}-15", 1 + rng.below(9)))
        .bind(800 + rng.below(1000) as i64)
        .bind(100 + rng.below(400) as i64)
        .bind(rng.below(120) as i64)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        n += 1;
    }
    tx.commit().await?;
    Ok(n)
}

pub(super) async fn insert_resources(db: &Db, unit_ids: &[i64], now: i64) -> Result<usize> {
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM platforms")
        .fetch_one(&db.pool)
        .await?;
    if existing > 0 {
        return Ok(0);
    }
    let mut n = 0;
    let platforms: &[(usize, &str, &str, &str)] = &[
        (0, "许昌学院分析测试中心", "公共检测平台", "校级平台"),
        (
            0,
            "河南省表界面科学重点实验室",
            "重点实验室",
            "省级重点实验室",
        ),
        (
            4,
            "郑州大学材料物理教育部重点实验室",
            "重点实验室",
            "部级重点实验室",
        ),
        (
            5,
            "省部共建小麦玉米作物学国家重点实验室",
            "重点实验室",
            "国家重点实验室",
        ),
        (
            6,
            "河南省科学院同位素研究所辐照平台",
            "工程技术研究中心",
            "省级工程技术研究中心",
        ),
        (7, "许昌智能电网装备检测平台", "检验检测平台", "市级平台"),
        (
            8,
            "长葛超硬材料公共检测与中试平台",
            "中试基地",
            "市级中试基地",
        ),
    ];
    for (ix, name, cat, ty) in platforms {
        sqlx::query(
            "INSERT INTO platforms (unit_id, name, category, platform_type, description, review_status, joined_on, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'approved', '2023-05-10', $6, $6)",
        )
        .bind(unit_ids[*ix])
        .bind(*name)
        .bind(*cat)
        .bind(*ty)
        .bind(format!("{name}面向社会开放共享，提供测试分析、技术咨询与人才培训服务。"))
        .bind(now)
        .write(db)
        .await?;
        n += 1;
    }
    let services: &[(usize, &str, &str, i64, &str, i64)] = &[
        (
            0,
            "扫描电镜形貌观察与能谱分析",
            "材料表征",
            30_000,
            "块体或粉末，尺寸不超过 2 cm，需干燥导电或可喷金",
            5,
        ),
        (
            0,
            "X射线衍射物相分析",
            "材料表征",
            20_000,
            "粉末约 0.5 g 或平整块体",
            3,
        ),
        (
            3,
            "电线电缆导体电阻检测",
            "电气检测",
            15_000,
            "样品长度不少于 1.5 m",
            5,
        ),
        (
            3,
            "发制品材料成分检测",
            "理化检测",
            40_000,
            "样品不少于 10 g",
            7,
        ),
        (
            2,
            "农产品农药残留检测",
            "食品农产品检测",
            60_000,
            "样品不少于 500 g，冷藏送样",
            5,
        ),
        (
            2,
            "土壤养分全项分析",
            "环境检测",
            35_000,
            "风干土样不少于 200 g",
            7,
        ),
        (
            4,
            "核磁共振氢谱、碳谱测试",
            "结构分析",
            25_000,
            "样品 5–20 mg，注明溶剂",
            3,
        ),
        (
            4,
            "液质联用定性定量分析",
            "化学分析",
            80_000,
            "样品需可溶于甲醇或乙腈",
            5,
        ),
        (
            7,
            "电磁兼容预测试",
            "电气检测",
            300_000,
            "提供样机与说明书",
            10,
        ),
        (
            8,
            "金刚石单晶抗压强度测试",
            "材料力学",
            20_000,
            "粒度 40/50 以上，不少于 5 克拉",
            3,
        ),
        (
            9,
            "实时荧光定量 PCR 检测",
            "生物医学",
            25_000,
            "RNA/cDNA 样品，干冰运输",
            5,
        ),
    ];
    for (ix, name, cat, price, sample, days) in services {
        sqlx::query(
            "INSERT INTO services (unit_id, name, category, price_fen, sample_requirements, turnaround_days, description, review_status, published_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'approved', $8, $8, $8)",
        )
        .bind(unit_ids[*ix])
        .bind(*name)
        .bind(*cat)
        .bind(*price)
        .bind(*sample)
        .bind(*days)
        .bind(format!("{name}：按国家或行业标准方法检测，出具检测报告。"))
        .bind(now)
        .write(db)
        .await?;
        n += 1;
    }
    let achievements: &[DemoAchievement] = &[
        (
            0,
            "高导热石墨烯复合散热膜制备技术",
            "新材料",
            "中试阶段",
            "许可",
            Some(50_000_000),
        ),
        (
            4,
            "低成本钙钛矿太阳能电池封装工艺",
            "新能源",
            "小试阶段",
            "合作开发",
            None,
        ),
        (
            5,
            "抗赤霉病小麦新品种“豫农 916”",
            "现代农业",
            "已应用",
            "转让",
            Some(120_000_000),
        ),
        (
            6,
            "食品辐照灭菌剂量快速检测方法",
            "食品安全",
            "已应用",
            "许可",
            Some(8_000_000),
        ),
        (
            7,
            "特高压直流换流阀状态监测系统",
            "智能电网",
            "产业化",
            "作价入股",
            None,
        ),
        (
            8,
            "聚晶金刚石复合片高温高压烧结工艺",
            "超硬材料",
            "中试阶段",
            "合作开发",
            None,
        ),
    ];
    for (ix, title, field, maturity, mode, price) in achievements {
        sqlx::query(
            "INSERT INTO achievements (unit_id, title, field, maturity, transfer_mode, price_fen, holder, contact_name, contact_phone, description, review_status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, (SELECT name FROM units WHERE id = $1), '成果转化办公室', '0374-2968000', $7, 'approved', $8, $8)",
        )
        .bind(unit_ids[*ix])
        .bind(*title)
        .bind(*field)
        .bind(*maturity)
        .bind(*mode)
        .bind(*price)
        .bind(format!("{title}，拥有自主知识产权，可面向企业开展技术转移与成果转化。"))
        .bind(now)
        .write(db)
        .await?;
        n += 1;
    }
    Ok(n)
}
