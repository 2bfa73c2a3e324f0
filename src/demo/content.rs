//! Articles (news, notices, policies), the expert pool and units' management rules.

#[allow(unused_imports)]
use super::*;
use crate::store::WriteQuery;

/// Demo experts (专家库) and unit management rules (单位管理制度); each is skipped when a
/// record of the same name already exists, so loading twice changes nothing.
pub(super) async fn insert_experts_and_rules(db: &Db, unit_ids: &[i64], now: i64) -> Result<usize> {
    let mut n = 0;
    let experts: &[(&str, &str, &str, &str, &str, &str)] = &[
        (
            "张建华",
            "郑州大学",
            "正高级",
            "新材料、金属材料检测",
            "2023-04-12",
            "certified",
        ),
        (
            "李慧敏",
            "河南农业大学",
            "正高级",
            "农产品检测、食品安全",
            "2023-06-20",
            "certified",
        ),
        (
            "王志强",
            "河南省科学院",
            "副高级",
            "分析化学、色谱质谱",
            "2024-03-08",
            "certified",
        ),
        (
            "刘晓燕",
            "河南省科学院",
            "副高级",
            "环境检测、水处理",
            "2024-09-15",
            "certified",
        ),
        (
            "陈国栋",
            "许昌智能电网装备研究院有限公司",
            "正高级",
            "电力装备、电磁兼容",
            "2025-01-10",
            "certified",
        ),
        (
            "赵立新",
            "许昌学院",
            "副高级",
            "生物医药、细胞分析",
            "2025-05-18",
            "draft",
        ),
        (
            "孙伟",
            "许昌市中心医院",
            "正高级",
            "医学影像设备",
            "2025-08-02",
            "pending",
        ),
    ];
    for (name, unit, title, fields, joined, cert) in experts {
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT id FROM experts WHERE name = $1 AND unit_name = $2")
                .bind(*name)
                .bind(*unit)
                .fetch_optional(&db.pool)
                .await?;
        if exists.is_some() {
            continue;
        }
        sqlx::query(
            "INSERT INTO experts (name, unit_name, title, fields, joined_on, status, \
             certification_status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, '在库', $6, $7, $7)",
        )
        .bind(*name)
        .bind(*unit)
        .bind(*title)
        .bind(*fields)
        .bind(*joined)
        .bind(*cert)
        .bind(now)
        .write(db)
        .await?;
        n += 1;
    }
    // The demo expert accounts are these pool members (they review evaluations).
    for (username, name) in [
        ("expert_zhang", "张建华"),
        ("expert_liu", "刘晓燕"),
        ("expert_chen", "陈国栋"),
    ] {
        sqlx::query(
            "UPDATE experts SET user_id = (SELECT id FROM users WHERE username = $1) WHERE name = $2 AND user_id IS NULL",
        )
        .bind(username)
        .bind(name)
        .write(db)
        .await?;
    }
    let rules: &[(usize, &str, &str, &str, &str)] = &[
        (
            0,
            "许昌学院大型仪器设备开放共享管理办法",
            "许院资〔2023〕15号",
            "2023-03-01",
            "2023-03-15",
        ),
        (
            0,
            "许昌学院分析测试中心收费管理规定",
            "许院资〔2023〕16号",
            "2023-03-01",
            "2023-04-01",
        ),
        (
            2,
            "许昌市农业科学研究院科研仪器共享服务细则",
            "许农科〔2024〕7号",
            "2024-05-10",
            "2024-06-01",
        ),
    ];
    for (ix, name, number, published, effective) in rules {
        let Some(unit_id) = unit_ids.get(*ix) else {
            continue;
        };
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT id FROM unit_rules WHERE unit_id = $1 AND name = $2")
                .bind(*unit_id)
                .bind(*name)
                .fetch_optional(&db.pool)
                .await?;
        if exists.is_some() {
            continue;
        }
        sqlx::query(
            "INSERT INTO unit_rules (unit_id, name, number, published_on, effective_on, \
             data_source, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, '单位填报', $6, $6)",
        )
        .bind(*unit_id)
        .bind(*name)
        .bind(*number)
        .bind(*published)
        .bind(*effective)
        .bind(now)
        .write(db)
        .await?;
        n += 1;
    }
    Ok(n)
}

pub(super) async fn insert_articles(db: &Db, now: i64) -> Result<usize> {
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM articles")
        .fetch_one(&db.pool)
        .await?;
    if existing > 0 {
        return Ok(0);
    }
    let day = 86_400;
    let articles: &[(&str, &str, &str, bool, i64)] = &[
        (
            "notice",
            "关于开展 2026 年度科技创新券申领工作的通知",
            "各有关单位：为降低企业研发成本，现启动 2026 年度科技创新券申领工作。国家高新技术企业年度额度 5 万元，科技型中小企业和创新团队 3 万元。",
            true,
            3,
        ),
        (
            "notice",
            "关于组织开展 2026 年度大型科研仪器开放共享绩效评价的通知",
            "请各管理单位于 12 月 20 日前完成绩效评价申报，评价结果将作为后补助的依据。",
            false,
            10,
        ),
        (
            "notice",
            "许昌市科研设施与仪器共享服务平台试运行公告",
            "平台现已上线试运行，欢迎各高校、科研院所和企业登记入网、预约使用。",
            false,
            40,
        ),
        (
            "news",
            "我市新增 32 台套大型科研仪器纳入共享服务平台",
            "近日，市科技局组织专家完成了第三批仪器入网审核，新增扫描电镜、核磁共振波谱仪等大型仪器 32 台套。",
            false,
            5,
        ),
        (
            "news",
            "许昌学院分析测试中心为 20 余家企业提供检测服务",
            "今年以来，许昌学院分析测试中心依托平台累计为企业提供检测服务 600 余机时。",
            false,
            15,
        ),
        (
            "news",
            "市科技局赴长葛调研超硬材料公共检测平台建设",
            "调研组一行实地察看了超硬材料中试车间和材料表征室，听取平台开放共享情况汇报。",
            false,
            28,
        ),
        (
            "policy",
            "《许昌市科技创新券管理办法》政策解读",
            "创新券可用于支付使用平台内科研仪器和检测服务费用的 40%，由服务提供方凭券申请兑付。",
            false,
            20,
        ),
        (
            "policy",
            "国务院关于国家重大科研基础设施和大型科研仪器向社会开放的意见（解读）",
            "明确了开放共享的基本原则、管理体系和激励约束机制，提出将开放共享情况纳入考核评价。",
            false,
            60,
        ),
        (
            "policy",
            "河南省科研设施与仪器开放共享双向补贴政策要点",
            "对提供共享服务的管理单位按服务收入给予补贴，对使用仪器的用户单位通过创新券给予支持。",
            false,
            90,
        ),
    ];
    let mut n = 0;
    for (kind, title, text, pinned, days_ago) in articles {
        let body = crate::content::sanitize_html(&format!(
            "<p>{text}</p><p>联系电话：0374-2968000（市科技局资源共享科）。</p>"
        ));
        sqlx::query(
            "INSERT INTO articles (kind, title, summary, body_html, source, status, pinned, published_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, '许昌市科学技术局', 'published', $5, $6, $6, $6)",
        )
        .bind(*kind)
        .bind(*title)
        .bind(text.chars().take(60).collect::<String>())
        .bind(body)
        .bind(*pinned as i64)
        .bind(now - days_ago * day)
        .write(db)
        .await?;
        n += 1;
    }
    Ok(n)
}
