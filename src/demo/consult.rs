//! Demo data for issue 20: a public expert Q&A (森源 asked about 环境检测, 刘晓燕 answered),
//! an open consultation for 陈国栋 to answer, and 森源's interest in one of 许昌学院's
//! achievements for `xcu_lab` to answer at 成果转化对接.

use crate::{error::Result, store::Db};

async fn id_of(db: &Db, sql: &'static str, key: &str) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(sql)
        .bind(key)
        .fetch_optional(&db.pool)
        .await?)
}

pub async fn load(db: &Db, now: i64) -> Result<usize> {
    let user = |name: &'static str| id_of(db, "SELECT id FROM users WHERE username = $1", name);
    let (Some(senyuan), Some(liu), Some(_chen)) = (
        user("senyuan").await?,
        user("expert_liu").await?,
        user("expert_chen").await?,
    ) else {
        return Ok(0);
    };
    let unit: Option<i64> = sqlx::query_scalar(
        "SELECT unit_id FROM unit_members WHERE user_id = $1 ORDER BY unit_id LIMIT 1",
    )
    .bind(senyuan)
    .fetch_optional(&db.pool)
    .await?;
    let Some(unit) = unit else {
        return Ok(0);
    };
    let mut n = 0;
    let mut tx = db.begin_write().await?;
    let items: [(&str, &str, &str, Option<&str>); 2] = [
        (
            "环境检测",
            "车间废水中镍、铬含量检测应选哪种方法",
            "我公司电镀车间排放废水需要检测镍、总铬和六价铬，委托检测时应选原子吸收还是 ICP-OES？采样和保存有什么要求？",
            Some(
                "镍、总铬可用 ICP-OES 同时测定（检出限满足 GB 21900 要求），六价铬须用二苯碳酰二肼分光光度法单独测定。采样用聚乙烯瓶，总量样品加硝酸至 pH<2，六价铬样品调 pH 8–9 冷藏并在 24 小时内送检。",
            ),
        ),
        (
            "电力装备",
            "开关柜局部放电检测需要什么仪器",
            "我们想对 10 kV 开关柜做出厂前局部放电检测，平台上哪些仪器可以做？需要带什么样品资料？",
            None,
        ),
    ];
    for (field, title, question, answer) in items {
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT id FROM consultations WHERE title = $1")
                .bind(title)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_some() {
            continue;
        }
        let (status, public) = if answer.is_some() {
            ("closed", 1i64)
        } else {
            ("open", 0)
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO consultations (field, title, question, unit_id, asker_id, status, rating, public, created_at, updated_at, closed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10) RETURNING id",
        )
        .bind(field)
        .bind(title)
        .bind(question)
        .bind(unit)
        .bind(senyuan)
        .bind(status)
        .bind(answer.map(|_| 5i64))
        .bind(public)
        .bind(now - 3 * 86_400)
        .bind(answer.map(|_| now - 86_400))
        .fetch_one(&mut *tx)
        .await?;
        if let Some(a) = answer {
            sqlx::query(
                "INSERT INTO consultation_messages (consultation_id, author_id, kind, body, created_at) VALUES ($1, $2, 'answer', $3, $4)",
            )
            .bind(id)
            .bind(liu)
            .bind(a)
            .bind(now - 2 * 86_400)
            .execute(&mut *tx)
            .await?;
            crate::search::enqueue(&mut tx, "consultation", id).await?;
        }
        n += 1;
    }
    let achievement: Option<i64> = sqlx::query_scalar(
        "SELECT a.id FROM achievements a JOIN units u ON u.id = a.unit_id WHERE u.name = '许昌学院' \
         AND a.review_status = 'approved' ORDER BY a.id LIMIT 1",
    )
    .fetch_optional(&mut *tx)
    .await?;
    let certified_user_unit: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM units WHERE id = $1 AND kind = 'user' AND certification_status = 'certified'",
    )
    .bind(unit)
    .fetch_optional(&mut *tx)
    .await?;
    if let (Some(a), Some(u)) = (achievement, certified_user_unit) {
        let exists: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM achievement_interests WHERE achievement_id = $1 AND unit_id = $2",
        )
        .bind(a)
        .bind(u)
        .fetch_optional(&mut *tx)
        .await?;
        if exists.is_none() {
            sqlx::query(
                "INSERT INTO achievement_interests (achievement_id, unit_id, user_id, message, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, '我公司希望以技术许可方式引进该成果用于智能开关柜产品，联系人：王经理 0374-3216888', 'new', $4, $4)",
            )
            .bind(a)
            .bind(u)
            .bind(senyuan)
            .bind(now - 86_400)
            .execute(&mut *tx)
            .await?;
            n += 1;
        }
    }
    tx.commit().await?;
    Ok(n)
}
