//! The public portal (门户): home, list and detail pages for instruments, platforms, services,
//! service organisations, achievements and articles, and the search page.

use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{
    AppState,
    extract::{PagePath, PageQuery},
    page::{Page, PageResult},
    routes::{Access, Route},
};
use crate::{
    catalog, content,
    error::AppError,
    instruments::{self, Filter},
    resources::{self, Kind},
    units,
};

/// The public portal's pages.
pub fn routes() -> Vec<Route> {
    let p = Access::Public;
    vec![
        Route::get("/", p, home),
        Route::get("/instruments", p, instrument_list),
        Route::get("/instruments/{id}", p, instrument_detail),
        Route::get("/platforms", p, platform_list),
        Route::get("/platforms/{id}", p, platform_detail),
        Route::get("/services", p, service_list),
        Route::get("/services/{id}", p, service_detail),
        Route::get("/achievements", p, achievement_list),
        Route::get("/achievements/{id}", p, achievement_detail),
        Route::get("/orgs", p, org_list),
        Route::get("/orgs/{id}", p, org_detail),
        Route::get("/search", p, search),
        Route::get("/news", p, news_list),
        Route::get("/notices", p, notice_list),
        Route::get("/policies", p, policy_list),
        Route::get("/news/{id}", p, news_detail),
        Route::get("/notices/{id}", p, notice_detail),
        Route::get("/policies/{id}", p, policy_detail),
    ]
}

const PER_PAGE: i64 = 20;

#[derive(Deserialize, Default)]
struct PageNo {
    page: Option<String>,
}

/// A page number from the query; anything odd is page 1.
fn page_no(raw: Option<&str>) -> i64 {
    raw.and_then(|p| p.parse::<i64>().ok())
        .filter(|p| *p >= 1 && *p <= 10_000)
        .unwrap_or(1)
}

fn pager(page: i64, total: i64) -> minijinja::Value {
    super::page::pager(page, total, PER_PAGE)
}

async fn home(State(state): State<AppState>) -> PageResult {
    let (count, value_fen, units, services) = instruments::figures(&state.db).await?;
    let (featured, _) = instruments::list_public(
        &state.db,
        &Filter {
            sort: "value".into(),
            open: "1".into(),
            ..Default::default()
        },
        0,
        8,
    )
    .await?;
    let (notices, _) = content::list_published(&state.db, "notice", 0, 6).await?;
    let (news, _) = content::list_published(&state.db, "news", 0, 6).await?;
    let (policies, _) = content::list_published(&state.db, "policy", 0, 5).await?;
    let classes = instruments::counts_by_class(&state.db).await?;
    Ok(Page::new(
        "portal/home.html",
        crate::ctx! {
            figures => crate::ctx!{ instruments => count, value_fen => value_fen,
                                 units => units, services => services },
            featured => featured, notices => notices, news => news, policies => policies,
            classes => classes,
        },
    )
    .into_response())
}

#[derive(Deserialize, Default)]
struct InstrumentQuery {
    #[serde(flatten)]
    filter: Filter,
    page: Option<String>,
}

async fn instrument_list(
    State(state): State<AppState>,
    PageQuery(q): PageQuery<InstrumentQuery>,
) -> PageResult {
    let page = page_no(q.page.as_deref());
    let (items, total) = if q.filter.q.trim().is_empty() {
        instruments::list_public(&state.db, &q.filter, (page - 1) * PER_PAGE, PER_PAGE).await?
    } else {
        // Keywords go through the full-text engine (jieba, synonyms, pinyin, model numbers)
        // with the same filters; rows are then read in the engine's order.
        instruments_by_engine(&state, &q.filter, page).await?
    };
    let cities = instruments::cities(&state.db).await?;
    Ok(Page::new(
        "portal/instruments.html",
        crate::ctx! { items => items, pager => pager(page, total), filter => q.filter,
        classes => catalog::classes(), cities => cities },
    )
    .into_response())
}

async fn instruments_by_engine(
    state: &AppState,
    f: &Filter,
    page: i64,
) -> crate::error::Result<(Vec<instruments::Instrument>, i64)> {
    let params = crate::search::SearchParams {
        q: f.q.chars().take(200).collect(),
        doc_type: "instrument".into(),
        category: f.category.trim().to_string(),
        city: f.city.trim().to_string(),
        unit: f.unit.map(|u| u.to_string()).unwrap_or_default(),
        open: if f.open == "1" {
            "1".into()
        } else {
            String::new()
        },
        value: String::new(),
        sort: match f.sort.as_str() {
            "value" => "value".into(),
            "" => "relevance".into(),
            _ => "newest".into(),
        },
    };
    let result =
        state
            .search
            .search(&params, ((page - 1) * PER_PAGE) as usize, PER_PAGE as usize)?;
    let mut items = Vec::with_capacity(result.items.len());
    for hit in &result.items {
        match instruments::get(&state.db, hit.id).await {
            Ok(i) if i.review_status == "approved" => items.push(i),
            Ok(_) | Err(AppError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok((items, result.total as i64))
}

async fn instrument_detail(
    State(state): State<AppState>,
    auth: super::session::Auth,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    let item = instruments::get(&state.db, id).await?;
    // Only approved instruments are public; reviewers and the owning unit may preview
    // the others (a reviewer opens the record from the task page).
    let preview = item.review_status != "approved";
    if preview {
        let allowed = auth.user.as_ref().is_some_and(|u| {
            u.can(crate::auth::Permission::InstrumentReview) || u.acts_for(item.unit_id, false)
        });
        if !allowed {
            return Err(AppError::NotFound.into());
        }
    }
    let photos = crate::uploads::instrument_photos(&state.db, id).await?;
    Ok(Page::new(
        "portal/instrument.html",
        crate::ctx! { item => item, photos => photos, preview => preview },
    )
    .into_response())
}

async fn resource_list(state: &AppState, kind: Kind, page: Option<&str>) -> PageResult {
    let page = page_no(page);
    let (items, total) =
        resources::list_public(&state.db, kind, (page - 1) * PER_PAGE, PER_PAGE).await?;
    Ok(Page::new(
        "portal/resources.html",
        crate::ctx! { items => items, pager => pager(page, total), title => kind.label(), base => kind.path() },
    )
    .into_response())
}

async fn resource_detail(state: &AppState, kind: Kind, id: i64) -> PageResult {
    let item = resources::get_public(&state.db, kind, id).await?;
    let instruments = if kind == Kind::Platform {
        crate::records::platform_instruments(&state.db, id, true).await?
    } else {
        vec![]
    };
    Ok(Page::new(
        "portal/resource.html",
        crate::ctx! { item => item, title => kind.label(), base => kind.path(), instruments => instruments },
    )
    .into_response())
}

async fn platform_list(State(s): State<AppState>, PageQuery(q): PageQuery<PageNo>) -> PageResult {
    resource_list(&s, Kind::Platform, q.page.as_deref()).await
}
async fn platform_detail(State(s): State<AppState>, PagePath(id): PagePath<i64>) -> PageResult {
    resource_detail(&s, Kind::Platform, id).await
}
async fn service_list(State(s): State<AppState>, PageQuery(q): PageQuery<PageNo>) -> PageResult {
    resource_list(&s, Kind::Service, q.page.as_deref()).await
}
async fn service_detail(State(s): State<AppState>, PagePath(id): PagePath<i64>) -> PageResult {
    resource_detail(&s, Kind::Service, id).await
}
async fn achievement_list(
    State(s): State<AppState>,
    PageQuery(q): PageQuery<PageNo>,
) -> PageResult {
    resource_list(&s, Kind::Achievement, q.page.as_deref()).await
}
async fn achievement_detail(State(s): State<AppState>, PagePath(id): PagePath<i64>) -> PageResult {
    resource_detail(&s, Kind::Achievement, id).await
}

async fn org_list(State(state): State<AppState>, PageQuery(q): PageQuery<PageNo>) -> PageResult {
    let page = page_no(q.page.as_deref());
    let (items, total) =
        units::list_service_orgs(&state.db, (page - 1) * PER_PAGE, PER_PAGE).await?;
    Ok(Page::new(
        "portal/orgs.html",
        crate::ctx! { items => items, pager => pager(page, total) },
    )
    .into_response())
}

async fn org_detail(
    State(state): State<AppState>,
    PagePath(id): PagePath<i64>,
    PageQuery(q): PageQuery<PageNo>,
) -> PageResult {
    let unit = units::get(&state.db, id).await?;
    if unit.kind != "managing" || unit.certification_status != "certified" {
        return Err(AppError::NotFound.into());
    }
    let page = page_no(q.page.as_deref());
    let filter = Filter {
        unit: Some(id),
        ..Default::default()
    };
    let (items, total) =
        instruments::list_public(&state.db, &filter, (page - 1) * PER_PAGE, PER_PAGE).await?;
    let grades = crate::evaluations::published_for_unit(&state.db, id).await?;
    Ok(Page::new(
        "portal/org.html",
        crate::ctx! { unit => unit, items => items, pager => pager(page, total), grades => grades },
    )
    .into_response())
}

/// Search (检索): every public record type through the full-text engine, with facets,
/// highlighted snippets, sorting and pagination.
async fn search(
    State(state): State<AppState>,
    PageQuery(q): PageQuery<super::search::SearchQuery>,
) -> PageResult {
    let (result, page) = super::search::run(&state, &q, PER_PAGE as usize).await?;
    let p = &q.params;
    let query: String = p.q.chars().take(200).collect();
    // Links keep every active filter; a facet link replaces its own key and resets the page.
    let params: Vec<(&str, &str)> = [
        ("q", query.as_str()),
        ("type", p.doc_type.as_str()),
        ("category", p.category.as_str()),
        ("city", p.city.as_str()),
        ("open", p.open.as_str()),
        ("value", p.value.as_str()),
        ("unit", p.unit.as_str()),
        ("sort", p.sort.as_str()),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .collect();
    let link = |key: &str, value: &str| {
        let mut pairs: Vec<(&str, &str)> =
            params.iter().filter(|(k, _)| *k != key).cloned().collect();
        if !value.is_empty() {
            pairs.push((key, value));
        }
        format!(
            "/search?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    };
    let facets: Vec<minijinja::Value> = [
        ("type", "类型"),
        ("category", "仪器分类"),
        ("city", "所在城市"),
        ("open", "开放情况"),
        ("value", "仪器价值"),
        ("unit", "所属单位"),
    ]
    .iter()
    .filter_map(|(key, label)| {
        let values = result.facets.get(*key)?;
        if values.is_empty() {
            return None;
        }
        let active = params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
            .unwrap_or("");
        let items: Vec<minijinja::Value> = values
            .iter()
            .map(|v| {
                crate::ctx! { label => v.label, count => v.count, active => v.value == active,
                href => link(key, if v.value == active { "" } else { v.value.as_str() }) }
            })
            .collect();
        Some(crate::ctx! { key => key, label => label, items => items,
        clear => if active.is_empty() { String::new() } else { link(key, "") } })
    })
    .collect();
    let sorts: Vec<minijinja::Value> = [("", "相关度"), ("value", "价值"), ("newest", "最新")]
        .iter()
        .map(|(key, label)| {
            crate::ctx! { label => label, active => p.sort == *key, href => link("sort", key) }
        })
        .collect();
    let page_query: std::collections::BTreeMap<&str, &str> = params.iter().cloned().collect();
    Ok(Page::new(
        "portal/search.html",
        crate::ctx! { q => query, items => result.items, total => result.total,
        took_ms => result.took_ms, facets => facets, sorts => sorts,
        pager => pager(page as i64, result.total as i64), page_query => page_query,
        filtered => params.iter().any(|(k, _)| *k != "q" && *k != "sort") },
    )
    .into_response())
}

async fn article_list(state: &AppState, kind: &'static str, page: Option<&str>) -> PageResult {
    let page = page_no(page);
    let (items, total) =
        content::list_published(&state.db, kind, (page - 1) * PER_PAGE, PER_PAGE).await?;
    let base = match kind {
        "news" => "/news",
        "notice" => "/notices",
        _ => "/policies",
    };
    Ok(Page::new(
        "portal/articles.html",
        crate::ctx! { items => items, pager => pager(page, total), title => content::kind_label(kind), base => base },
    )
    .into_response())
}

async fn article_detail(
    state: &AppState,
    kind: &'static str,
    id: i64,
) -> Result<Response, super::page::PageError> {
    let item = content::get_published(&state.db, kind, id).await?;
    let base = match kind {
        "news" => "/news",
        "notice" => "/notices",
        _ => "/policies",
    };
    Ok(Page::new(
        "portal/article.html",
        crate::ctx! { item => item, title => content::kind_label(kind), base => base,
        attachments => crate::uploads::article_attachments(&state.db, id).await? },
    )
    .into_response())
}

async fn news_list(State(s): State<AppState>, PageQuery(q): PageQuery<PageNo>) -> PageResult {
    article_list(&s, "news", q.page.as_deref()).await
}
async fn notice_list(State(s): State<AppState>, PageQuery(q): PageQuery<PageNo>) -> PageResult {
    article_list(&s, "notice", q.page.as_deref()).await
}
async fn policy_list(State(s): State<AppState>, PageQuery(q): PageQuery<PageNo>) -> PageResult {
    article_list(&s, "policy", q.page.as_deref()).await
}
async fn news_detail(State(s): State<AppState>, PagePath(id): PagePath<i64>) -> PageResult {
    article_detail(&s, "news", id).await
}
async fn notice_detail(State(s): State<AppState>, PagePath(id): PagePath<i64>) -> PageResult {
    article_detail(&s, "notice", id).await
}
async fn policy_detail(State(s): State<AppState>, PagePath(id): PagePath<i64>) -> PageResult {
    article_detail(&s, "policy", id).await
}
