//! Route tables (路由表). Each web module declares one table, `routes()`: every route's
//! method, path, access and handler, and for console pages the sidebar entry. The
//! application's router is built from these tables only ([`router`]), so a route cannot exist
//! without its entry; the console sidebar ([`sidebar`]) and the permission tests
//! ([`all`]) read the same tables.
//!
//! `access` describes what the handler checks (handlers keep their own
//! `user.require(Permission::X)?`); it is not enforced a second time here, because a layer
//! in front of the extractors would change the answers to malformed or CSRF-less requests.

use std::sync::LazyLock;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    handler::Handler,
    http::Method,
    routing::{MethodFilter, MethodRouter, on},
};

use super::AppState;
use crate::auth::{CurrentUser, Permission};

/// Who may use a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Any signed-in user; what they may see or do is decided per record.
    SignedIn,
    /// Signed-in users holding the permission; everyone else gets 403.
    Permission(Permission),
    /// Signed-in users holding at least one of the permissions.
    AnyOf(&'static [Permission]),
}

impl From<Permission> for Access {
    fn from(p: Permission) -> Access {
        Access::Permission(p)
    }
}

impl Access {
    /// Whether a signed-in user for whom `has` says which permissions they hold passes.
    pub fn allows(self, has: impl Fn(Permission) -> bool) -> bool {
        match self {
            Access::Public | Access::SignedIn => true,
            Access::Permission(p) => has(p),
            Access::AnyOf(ps) => ps.iter().any(|p| has(*p)),
        }
    }

    /// Whether some permission is needed (rather than only signing in, or nothing).
    pub fn is_guarded(self) -> bool {
        matches!(self, Access::Permission(_) | Access::AnyOf(_))
    }
}

/// A console sidebar entry (后台菜单项) pointing at a GET page.
#[derive(Clone, Debug)]
pub struct Nav {
    pub label: &'static str,
    /// Position in the sidebar; entries of all tables are sorted by it.
    pub order: u32,
    /// Who sees the entry: the route's access unless the entry says otherwise.
    pub shown_to: Access,
    /// A query string the entry's link carries (e.g. a filter of the page), without `?`.
    pub query: Option<&'static str>,
}

/// One route: method, path (axum syntax, `{id}`), access, handler, sidebar entries.
pub struct Route {
    pub method: Method,
    pub path: String,
    pub access: Access,
    pub nav: Vec<Nav>,
    handler: MethodRouter<AppState>,
}

impl Route {
    pub fn new<H, T>(
        method: Method,
        path: impl Into<String>,
        access: impl Into<Access>,
        handler: H,
    ) -> Route
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a routable method");
        Route {
            method,
            path: path.into(),
            access: access.into(),
            nav: Vec::new(),
            handler: on(filter, handler),
        }
    }

    pub fn get<H: Handler<T, AppState>, T: 'static>(
        path: impl Into<String>,
        access: impl Into<Access>,
        handler: H,
    ) -> Route {
        Route::new(Method::GET, path, access, handler)
    }

    pub fn post<H: Handler<T, AppState>, T: 'static>(
        path: impl Into<String>,
        access: impl Into<Access>,
        handler: H,
    ) -> Route {
        Route::new(Method::POST, path, access, handler)
    }

    pub fn put<H: Handler<T, AppState>, T: 'static>(
        path: impl Into<String>,
        access: impl Into<Access>,
        handler: H,
    ) -> Route {
        Route::new(Method::PUT, path, access, handler)
    }

    pub fn patch<H: Handler<T, AppState>, T: 'static>(
        path: impl Into<String>,
        access: impl Into<Access>,
        handler: H,
    ) -> Route {
        Route::new(Method::PATCH, path, access, handler)
    }

    pub fn delete<H: Handler<T, AppState>, T: 'static>(
        path: impl Into<String>,
        access: impl Into<Access>,
        handler: H,
    ) -> Route {
        Route::new(Method::DELETE, path, access, handler)
    }

    /// Show this page in the console sidebar, to those the route lets in.
    pub fn nav(self, label: &'static str, order: u32) -> Route {
        let access = self.access;
        self.nav_for(label, order, access)
    }

    /// Show this page in the console sidebar under `label`, to those `shown_to` lets in.
    pub fn nav_for(
        mut self,
        label: &'static str,
        order: u32,
        shown_to: impl Into<Access>,
    ) -> Route {
        self.nav.push(Nav {
            label,
            order,
            shown_to: shown_to.into(),
            query: None,
        });
        self
    }

    /// `nav_for` with a link to the page filtered by `query` (`flow=unit_certification`).
    pub fn nav_query(
        mut self,
        label: &'static str,
        order: u32,
        shown_to: impl Into<Access>,
        query: &'static str,
    ) -> Route {
        self.nav.push(Nav {
            label,
            order,
            shown_to: shown_to.into(),
            query: Some(query),
        });
        self
    }

    /// Accept request bodies up to `bytes` (uploads).
    pub fn body_limit(mut self, bytes: usize) -> Route {
        self.handler = self.handler.layer(DefaultBodyLimit::max(bytes));
        self
    }

    pub fn has_path_params(&self) -> bool {
        self.path.contains('{')
    }

    pub fn is_api(&self) -> bool {
        self.path.starts_with("/api/")
    }
}

/// Every route of the application, table by table.
pub fn all() -> Vec<Route> {
    [
        super::routes(),
        super::portal::routes(),
        super::account::routes(),
        super::console::routes(),
        super::notifications::routes(),
        super::bookings::routes(),
        super::settlements::routes(),
        super::redemptions::routes(),
        super::email_actions::routes(),
        super::workflows::routes(),
        super::instruments::routes(),
        super::content_admin::routes(),
        super::uploads::routes(),
        super::records::routes(),
        super::experts::routes(),
        super::evaluations::routes(),
        super::testing::routes(),
        super::statistics::routes(),
        super::service_records::routes(),
        super::api::routes(),
        super::money_api::routes(),
        super::search::routes(),
        super::reports::routes(),
        super::settings::routes(),
        super::consultations::routes(),
        super::transfer::routes(),
        super::docking::routes(),
        super::openapi::routes(),
        super::changes::routes(),
        super::memberships::routes(),
        super::booking_plus_api::routes(),
        super::booking_pages::routes(),
        super::open_data::routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The router of the given routes. The same path listed for two methods is one route (axum
/// merges the method routers); the same method and path listed twice panics.
pub fn router_of(routes: Vec<Route>) -> Router<AppState> {
    routes.into_iter().fold(Router::new(), |r, route| {
        r.route(&route.path, route.handler)
    })
}

/// The application's router: every table's routes.
pub fn router() -> Router<AppState> {
    router_of(all())
}

/// A console sidebar entry as the template shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SidebarItem {
    pub label: &'static str,
    pub href: String,
}

/// The console sidebar: the sidebar entries of all tables, in order, that `user` may see.
pub fn sidebar(user: &CurrentUser) -> Vec<SidebarItem> {
    sidebar_for(|p| user.can(p))
}

/// The sidebar of a user for whom `has` says which permissions they hold.
pub fn sidebar_for(has: impl Fn(Permission) -> bool) -> Vec<SidebarItem> {
    static ENTRIES: LazyLock<Vec<(SidebarItem, Access)>> = LazyLock::new(|| {
        let mut entries: Vec<(u32, SidebarItem, Access)> = all()
            .into_iter()
            .flat_map(|r| {
                let href = r.path;
                r.nav.into_iter().map(move |n| {
                    let item = SidebarItem {
                        label: n.label,
                        href: match n.query {
                            Some(q) => format!("{href}?{q}"),
                            None => href.clone(),
                        },
                    };
                    (n.order, item, n.shown_to)
                })
            })
            .collect();
        entries.sort_by_key(|(order, _, _)| *order);
        entries.into_iter().map(|(_, i, a)| (i, a)).collect()
    });
    ENTRIES
        .iter()
        .filter(|(_, shown_to)| shown_to.allows(&has))
        .map(|(item, _)| item.clone())
        .collect()
}

/// The href of the sidebar entry that stands for the page at `path_and_query`: the entry
/// with exactly that link, else the one for the path, else the longest entry the path lies
/// under (`/console/tasks/12` → 待办任务). At most one entry is highlighted.
pub fn current_entry(items: &[SidebarItem], path: &str, path_and_query: &str) -> Option<String> {
    if let Some(i) = items.iter().find(|i| i.href == path_and_query) {
        return Some(i.href.clone());
    }
    if let Some(i) = items.iter().find(|i| i.href == path) {
        return Some(i.href.clone());
    }
    items
        .iter()
        .filter(|i| !i.href.contains('?') && i.href != "/console")
        .filter(|i| path.starts_with(&format!("{}/", i.href)))
        .max_by_key(|i| i.href.len())
        .map(|i| i.href.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sidebar_entry_is_current_on_the_tasks_pages() {
        let items = sidebar_for(|_| true);
        let current = |p: &str, pq: &str| current_entry(&items, p, pq);
        assert_eq!(
            current("/console/tasks", "/console/tasks").as_deref(),
            Some("/console/tasks")
        );
        assert_eq!(
            current("/console/tasks", "/console/tasks?flow=unit_certification").as_deref(),
            Some("/console/tasks?flow=unit_certification")
        );
        assert_eq!(
            current("/console/tasks/7", "/console/tasks/7").as_deref(),
            Some("/console/tasks")
        );
        assert_eq!(current("/console/nowhere", "/console/nowhere"), None);
        let hrefs: Vec<&str> = items.iter().map(|i| i.href.as_str()).collect();
        let mut unique = hrefs.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            hrefs.len(),
            "two entries share a link: {hrefs:?}"
        );
    }

    #[test]
    fn every_route_is_listed_once_with_axum_path_syntax() {
        let routes = all();
        let mut seen = std::collections::BTreeSet::new();
        for r in &routes {
            assert!(r.path.starts_with('/'), "{}", r.path);
            assert!(!r.path.contains("/:"), "old path syntax: {}", r.path);
            assert!(
                seen.insert((r.method.to_string(), r.path.clone())),
                "{} {} listed twice",
                r.method,
                r.path
            );
        }
        // Building the router checks the paths and panics on overlapping method routes.
        let _ = router_of(routes);
    }

    #[test]
    fn sidebar_entries_are_get_pages_in_a_total_order() {
        let mut orders = std::collections::BTreeSet::new();
        for r in all() {
            for n in &r.nav {
                assert_eq!(r.method, Method::GET, "{}", n.label);
                assert!(r.path.starts_with("/console"), "{}", r.path);
                assert!(!r.has_path_params(), "{}", r.path);
                assert!(orders.insert(n.order), "two entries at {}", n.order);
            }
        }
    }

    /// The sidebar as it was written by hand before it came from the tables: label, href and
    /// who saw it (an entry listed for two permissions showed once).
    const HAND_WRITTEN: &[(&str, &str, Option<Permission>)] = &[
        ("工作台", "/console", None),
        ("我的单位", "/console/units", Some(Permission::UnitManage)),
        (
            "仪器管理",
            "/console/instruments",
            Some(Permission::InstrumentManage),
        ),
        ("管理制度", "/console/rules", Some(Permission::UnitManage)),
        (
            "科研平台",
            "/console/platforms",
            Some(Permission::InstrumentManage),
        ),
        (
            "检测项目",
            "/console/services",
            Some(Permission::InstrumentManage),
        ),
        (
            "科技成果",
            "/console/achievements",
            Some(Permission::InstrumentManage),
        ),
        (
            "预约管理",
            "/console/bookings",
            Some(Permission::BookingHandle),
        ),
        (
            "服务记录",
            "/console/service-records",
            Some(Permission::ConsoleAccess),
        ),
        (
            "信息上报",
            "/console/reports",
            Some(Permission::InstrumentManage),
        ),
        (
            "信息上报",
            "/console/reports",
            Some(Permission::ResourceReview),
        ),
        (
            "信息上报",
            "/console/reports",
            Some(Permission::SystemConfig),
        ),
        (
            "我的预约",
            "/console/my-bookings",
            Some(Permission::BookingCreate),
        ),
        (
            "我的候补",
            "/console/waitlist",
            Some(Permission::BookingCreate),
        ),
        (
            "创新券",
            "/console/vouchers",
            Some(Permission::VoucherApply),
        ),
        (
            "创新券兑付",
            "/console/redemptions",
            Some(Permission::RedemptionApply),
        ),
        ("专家咨询", "/console/consultations", None),
        ("成果转化对接", "/console/transfer", None),
        (
            "绩效评价申报",
            "/console/evaluations",
            Some(Permission::EvaluationDeclare),
        ),
        ("待办任务", "/console/tasks", None),
        ("消息通知", "/console/notifications", None),
        (
            "单位认证审核",
            "/console/tasks?flow=unit_certification",
            Some(Permission::UnitReview),
        ),
        ("专家库", "/console/experts", Some(Permission::UnitReview)),
        (
            "仪器入网审核",
            "/console/tasks?flow=instrument_onboarding",
            Some(Permission::InstrumentReview),
        ),
        (
            "资讯发布",
            "/console/content",
            Some(Permission::ContentManage),
        ),
        (
            "创新券管理",
            "/console/voucher-admin",
            Some(Permission::VoucherManage),
        ),
        (
            "补贴结算",
            "/console/subsidies",
            Some(Permission::SubsidyManage),
        ),
        (
            "补贴结算",
            "/console/subsidies",
            Some(Permission::RedemptionApply),
        ),
        (
            "绩效评审",
            "/console/expert-reviews",
            Some(Permission::EvaluationReview),
        ),
        (
            "统计分析",
            "/console/statistics",
            Some(Permission::StatsView),
        ),
        (
            "绩效评价管理",
            "/console/evaluation-admin",
            Some(Permission::EvaluationManage),
        ),
        ("用户管理", "/console/users", Some(Permission::UserManage)),
        ("角色与权限", "/console/roles", Some(Permission::RoleManage)),
        (
            "流程定义",
            "/console/workflows",
            Some(Permission::WorkflowEdit),
        ),
        (
            "定时任务与邮件",
            "/console/jobs",
            Some(Permission::JobManage),
        ),
        (
            "平台配置",
            "/console/settings",
            Some(Permission::SystemConfig),
        ),
        (
            "工作日历",
            "/console/calendar",
            Some(Permission::SystemConfig),
        ),
        (
            "数据对接",
            "/console/docking",
            Some(Permission::SystemConfig),
        ),
        (
            "接口文档",
            "/console/api-docs",
            Some(Permission::ConsoleAccess),
        ),
        ("修改密码", "/console/password", None),
    ];

    fn hand_written(has: impl Fn(Permission) -> bool) -> Vec<SidebarItem> {
        let mut items: Vec<SidebarItem> = Vec::new();
        for (label, href, p) in HAND_WRITTEN {
            if p.is_none_or(&has) && !items.iter().any(|i| i.label == *label && i.href == *href) {
                items.push(SidebarItem {
                    label,
                    href: href.to_string(),
                });
            }
        }
        items
    }

    #[test]
    fn the_sidebar_is_the_one_that_was_written_by_hand() {
        let mut users: Vec<Vec<Permission>> = crate::auth::BUILTIN_ROLES
            .iter()
            .map(|r| r.permissions.to_vec())
            .collect();
        users.push(vec![]);
        users.push(Permission::ALL.to_vec());
        users.extend(Permission::ALL.iter().map(|p| vec![*p]));
        for perms in users {
            let has = |p: Permission| perms.contains(&p);
            assert_eq!(sidebar_for(has), hand_written(has), "{perms:?}");
        }
    }

    /// Routes come from the tables only: nothing else in the source calls axum's `route`
    /// (or nests a router), so a route cannot be registered without its entry.
    #[test]
    fn no_route_is_registered_outside_the_tables() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        walk(&root.join("src"), &mut files);
        let this = root.join("src/web/routes.rs");
        let mut found = Vec::new();
        for f in files.iter().filter(|f| **f != this) {
            let text = std::fs::read_to_string(f).unwrap();
            for (i, line) in text.lines().enumerate() {
                if [".route(", ".nest(", ".route_service(", "routing::"]
                    .iter()
                    .any(|s| line.contains(s))
                {
                    found.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
                }
            }
        }
        assert!(
            found.is_empty(),
            "routes outside the tables:\n{}",
            found.join("\n")
        );
    }
}
