//! 接口文档: the OpenAPI 3.1 document of every `/api/v1` route (`GET /api/v1/openapi.json`),
//! generated from the route tables ([`super::routes::all`]) with utoipa's builders, so a route
//! cannot be served without being described; and the console page that renders it.
//!
//! Per route the tables give the method, the path and who may call it; this module adds a
//! Chinese summary where it knows one ([`SUMMARIES`]) and the request and response schemas of
//! the main bodies ([`BODIES`], from `ToSchema` derives). Everything else is derived: tags from
//! the first path segment, path parameters from `{…}`, security from the access, the error
//! responses from the contract's JSON error.

use std::sync::LazyLock;

use axum::{
    extract::State,
    http::{Method, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use utoipa::openapi::{
    self, Content, HttpMethod, InfoBuilder, OpenApi, OpenApiBuilder, PathItem, PathsBuilder, Ref,
    RefOr, Required, ResponseBuilder, ResponsesBuilder,
    path::{OperationBuilder, ParameterBuilder, ParameterIn},
    request_body::RequestBodyBuilder,
    schema::{ComponentsBuilder, ObjectBuilder, Type},
    security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme},
    tag::TagBuilder,
};

use super::{
    AppState,
    page::{Page, PageResult},
    routes::{Access, Route},
    session::SignedIn,
};
use crate::auth::Permission;

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/api/v1/openapi.json", Access::Public, openapi_json),
        Route::get("/console/api-docs", Permission::ConsoleAccess, docs_page).nav("接口文档", 287),
    ]
}

mod tables;

use tables::{BODIES, SUMMARIES, SchemaOf};
pub use tables::{ErrorBody, ErrorDetail, ListPage};

fn http_method(m: &Method) -> HttpMethod {
    match *m {
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::PATCH => HttpMethod::Patch,
        Method::DELETE => HttpMethod::Delete,
        Method::HEAD => HttpMethod::Head,
        Method::OPTIONS => HttpMethod::Options,
        _ => HttpMethod::Get,
    }
}

/// The tag of a path: its first segment after `/api/v1/`.
fn tag_of(path: &str) -> &str {
    let rest = path.trim_start_matches("/api/v1/");
    let first = rest.split('/').next().unwrap_or(rest);
    first.split('.').next().unwrap_or(first)
}

/// Chinese names of the tags.
const TAGS: &[(&str, &str)] = &[
    ("users", "账号"),
    ("session", "登录会话"),
    ("me", "当前用户"),
    ("roles", "角色与权限"),
    ("units", "单位"),
    ("instruments", "仪器"),
    ("search", "检索"),
    ("bookings", "预约与服务"),
    ("testing-orders", "委托检测"),
    ("voucher-applications", "创新券"),
    ("policy", "创新券政策"),
    ("redemptions", "创新券兑付"),
    ("subsidy-settlements", "补贴结算"),
    ("evaluations", "绩效评价"),
    ("tasks", "待办任务"),
    ("workflows", "流程定义"),
    ("workflow-instances", "流程实例"),
    ("statistics", "统计"),
    ("reports", "信息上报"),
    ("api-clients", "数据对接客户端"),
    ("docking", "数据对接读取"),
    ("openapi", "接口文档"),
];

fn tag_label(tag: &str) -> String {
    TAGS.iter()
        .find(|(k, _)| *k == tag)
        .map(|(_, l)| l.to_string())
        .unwrap_or_else(|| tag.to_string())
}

/// Who may call a route, in Chinese.
fn access_text(route: &Route) -> String {
    if let Some(scope) = crate::reporting::docking::scope_of(route.method.as_str(), &route.path) {
        return format!(
            "数据对接客户端令牌（Authorization: Bearer lsd_…），权限范围 `{scope}`；令牌吊销或过期即 401，范围外 403 insufficient_scope；每个客户端受调用频率限制（超出 429，附 Retry-After）"
        );
    }
    let perm = |p: &Permission| format!("`{}`（{}）", p.key(), p.label());
    match route.access {
        Access::Public => "公开接口，无需令牌".into(),
        Access::SignedIn => "需登录：Authorization: Bearer <登录令牌>".into(),
        Access::Permission(p) => format!("需登录且具有权限 {}", perm(&p)),
        Access::AnyOf(ps) => format!(
            "需登录且具有以下任一权限：{}",
            ps.iter().map(perm).collect::<Vec<_>>().join("、")
        ),
    }
}

/// The path parameters of a route (`{id}` …): integers for ids and years.
fn path_params(path: &str) -> Vec<String> {
    path.split('{')
        .skip(1)
        .filter_map(|s| s.split_once('}').map(|(name, _)| name.to_string()))
        .collect()
}

fn error_response(description: &str) -> openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
        )
        .build()
}

fn content_type_of(path: &str) -> &'static str {
    if path.ends_with(".xlsx") {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    } else if path.ends_with(".csv") {
        "text/csv"
    } else {
        "application/json"
    }
}

/// The OpenAPI document of the given routes' `/api/v1` part.
pub fn build(routes: &[Route]) -> OpenApi {
    let mut paths = PathsBuilder::new();
    let mut components = ComponentsBuilder::new()
        .schema_from::<ErrorBody>()
        .schema_from::<ErrorDetail>()
        .security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("POST /api/v1/session 取得的登录令牌"))
                    .build(),
            ),
        )
        .security_scheme(
            "client_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("lsd_…")
                    .description(Some("系统管理员在“数据对接”创建的客户端令牌（带权限范围）"))
                    .build(),
            ),
        );
    let mut tags: Vec<String> = Vec::new();
    for r in routes.iter().filter(|r| r.path.starts_with("/api/v1/")) {
        let method = r.method.as_str();
        let tag = tag_of(&r.path).to_string();
        if !tags.contains(&tag) {
            tags.push(tag.clone());
        }
        let summary = SUMMARIES
            .iter()
            .find(|(m, p, _)| *m == method && *p == r.path)
            .map(|(_, _, s)| s.to_string())
            .unwrap_or_else(|| format!("{} {}", method, r.path));
        let docking = crate::reporting::docking::scope_of(method, &r.path);
        let mut op = OperationBuilder::new()
            .tag(tag_label(&tag))
            .summary(Some(summary))
            .description(Some(access_text(r)))
            .operation_id(Some(format!(
                "{}_{}",
                method.to_lowercase(),
                r.path
                    .trim_start_matches("/api/v1/")
                    .replace(['/', '-', '.'], "_")
                    .replace(['{', '}'], "")
            )));
        for name in path_params(&r.path) {
            let int = name == "id" || name.ends_with("_id") || name == "year";
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(ObjectBuilder::new().schema_type(if int {
                        Type::Integer
                    } else {
                        Type::String
                    }))),
            );
        }
        let query: &[(&str, &str, Type)] = if r.path == "/api/v1/docking/statistics" {
            &[("year", "年份，默认今年", Type::Integer)]
        } else if docking.is_some() && method == "GET" && !r.has_path_params() {
            &[
                (
                    "updated_since",
                    "只返回此时刻（RFC 3339）及以后变更的记录",
                    Type::String,
                ),
                ("page", "页码，从 1 开始", Type::Integer),
                ("per_page", "每页条数（1–100）", Type::Integer),
            ]
        } else if method == "GET" && !r.has_path_params() && r.path != "/api/v1/me" {
            &[
                ("page", "页码，从 1 开始（列表接口）", Type::Integer),
                ("per_page", "每页条数（列表接口）", Type::Integer),
            ]
        } else {
            &[]
        };
        for (name, desc, ty) in query {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(*name)
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .description(Some(*desc))
                    .schema(Some(ObjectBuilder::new().schema_type(ty.clone()))),
            );
        }
        let bodies = BODIES
            .iter()
            .find(|(m, p, _, _)| *m == method && *p == r.path);
        let mut register = |f: SchemaOf| -> Ref {
            let (name, schema, deps) = f();
            components = std::mem::take(&mut components)
                .schema(name.clone(), schema)
                .schemas_from_iter(deps);
            Ref::from_schema_name(name)
        };
        if let Some(req) = bodies.and_then(|b| b.2) {
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content("application/json", Content::new(Some(register(req))))
                    .build(),
            ));
        } else if ["POST", "PUT", "PATCH"].contains(&method) {
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::False))
                    .content(
                        "application/json",
                        Content::new(Some(ObjectBuilder::new().schema_type(Type::Object))),
                    )
                    .build(),
            ));
        }
        let ok_content = match bodies.and_then(|b| b.3) {
            Some(resp) => Content::new(Some(RefOr::Ref(register(resp)))),
            None if content_type_of(&r.path) == "application/json" => {
                Content::new(Some(ObjectBuilder::new().schema_type(Type::Object)))
            }
            None => Content::new(Some(ObjectBuilder::new().schema_type(Type::String).format(
                Some(openapi::SchemaFormat::KnownFormat(
                    openapi::KnownFormat::Binary,
                )),
            ))),
        };
        let mut responses = ResponsesBuilder::new().response(
            "2XX",
            ResponseBuilder::new()
                .description("成功")
                .content(content_type_of(&r.path), ok_content)
                .build(),
        );
        if docking.is_some() || r.access != Access::Public {
            responses =
                responses.response("401", error_response("未登录或令牌无效（unauthenticated）"));
            op = op.security(SecurityRequirement::new(
                if docking.is_some() {
                    "client_token"
                } else {
                    "bearer"
                },
                docking.map(|s| vec![s.to_string()]).unwrap_or_default(),
            ));
        }
        if docking.is_some() || r.access.is_guarded() {
            responses = responses.response(
                "403",
                error_response("无权访问（forbidden / insufficient_scope）"),
            );
        }
        if r.has_path_params() {
            responses = responses.response("404", error_response("记录不存在（not_found）"));
        }
        if ["POST", "PUT", "PATCH"].contains(&method) {
            responses = responses.response(
                "422",
                error_response("输入有误（validation_failed 及字段信息，或其他业务错误）"),
            );
        }
        if docking.is_some() {
            responses = responses.response(
                "429",
                ResponseBuilder::new()
                    .description("调用过于频繁（too_many_requests），Retry-After 头给出等待秒数")
                    .content(
                        "application/json",
                        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                    )
                    .build(),
            );
        }
        op = op.responses(responses.build());
        paths = paths.path(
            r.path.clone(),
            PathItem::new(http_method(&r.method), op.build()),
        );
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("labshare 科研设施与仪器共享服务平台 API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "由路由表生成，覆盖全部 /api/v1 接口。错误均为 {\"error\": {code, message, fields?, details?}}。",
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components.build()))
        .tags(Some(
            tags.iter()
                .map(|t| TagBuilder::new().name(tag_label(t)).description(Some(format!("/api/v1/{t}"))).build()),
        ))
        .build()
}

/// The application's document (built once from the route tables).
pub fn document() -> &'static OpenApi {
    static DOC: LazyLock<OpenApi> = LazyLock::new(|| build(&super::routes::all()));
    &DOC
}

static DOC_JSON: LazyLock<String> = LazyLock::new(|| {
    document()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".to_string())
});

async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOC_JSON.as_str(),
    )
        .into_response()
}

/// The document as the console page shows it: per tag, its operations.
fn view() -> Value {
    let doc: Value = serde_json::from_str(&DOC_JSON).unwrap_or_default();
    let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, op) in item {
                let tag = op["tags"][0].as_str().unwrap_or("其他").to_string();
                let params: Vec<Value> = op["parameters"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .map(|p| {
                                json!({"name": p["name"], "in": p["in"], "type": p["schema"]["type"],
                                "required": p["required"], "description": p["description"]})
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let schema_name = |v: &Value| {
                    v["content"]
                        .as_object()
                        .and_then(|c| c.values().next())
                        .and_then(|c| c["schema"]["$ref"].as_str())
                        .map(|r| r.trim_start_matches("#/components/schemas/").to_string())
                };
                let responses: Vec<Value> = op["responses"]
                    .as_object()
                    .map(|rs| {
                        rs.iter()
                            .map(|(code, r)| {
                                json!({"code": code, "description": r["description"],
                                "schema": schema_name(r)})
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let entry = json!({
                    "method": method.to_uppercase(), "path": path, "summary": op["summary"],
                    "description": op["description"], "params": params,
                    "request": schema_name(&op["requestBody"]), "responses": responses,
                    "anchor": op["operationId"],
                });
                match groups.iter_mut().find(|(t, _)| *t == tag) {
                    Some((_, ops)) => ops.push(entry),
                    None => groups.push((tag, vec![entry])),
                }
            }
        }
    }
    let schemas: Vec<Value> = doc["components"]["schemas"]
        .as_object()
        .map(|s| {
            s.iter()
                .map(|(name, schema)| {
                    let required: Vec<&str> = schema["required"]
                        .as_array()
                        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
                        .unwrap_or_default();
                    let props: Vec<Value> = schema["properties"]
                        .as_object()
                        .map(|p| {
                            p.iter()
                                .map(|(k, v)| {
                                    let ty = match &v["type"] {
                                        Value::Array(a) => a
                                            .iter()
                                            .filter_map(|t| t.as_str())
                                            .collect::<Vec<_>>()
                                            .join(" | "),
                                        Value::String(s) => s.clone(),
                                        _ => v["$ref"]
                                            .as_str()
                                            .map(|r| r.trim_start_matches("#/components/schemas/").to_string())
                                            .unwrap_or_else(|| "任意".into()),
                                    };
                                    json!({"name": k, "type": ty, "required": required.contains(&k.as_str()),
                                    "description": v["description"]})
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    json!({"name": name, "description": schema["description"], "props": props})
                })
                .collect()
        })
        .unwrap_or_default();
    let count: usize = groups.iter().map(|(_, o)| o.len()).sum();
    json!({
        "title": doc["info"]["title"], "version": doc["openapi"], "count": count,
        "groups": groups.into_iter().map(|(t, ops)| json!({"tag": t, "ops": ops})).collect::<Vec<_>>(),
        "schemas": schemas,
    })
}

async fn docs_page(State(_state): State<AppState>, SignedIn(user): SignedIn) -> PageResult {
    user.require(Permission::ConsoleAccess)?;
    static VIEW: LazyLock<Value> = LazyLock::new(view);
    Ok(Page::new("console/api_docs.html", crate::ctx! { doc => &*VIEW }).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_route_of_the_tables_is_in_the_document() {
        let doc: Value = serde_json::from_str(&document().to_json().unwrap()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
        let mut n = 0;
        for r in super::super::routes::all() {
            if !r.path.starts_with("/api/v1/") {
                continue;
            }
            n += 1;
            let op = &doc["paths"][&r.path][r.method.as_str().to_lowercase()];
            assert!(
                op.is_object(),
                "{} {} is not in the document",
                r.method,
                r.path
            );
            assert!(op["responses"].is_object(), "{} {}", r.method, r.path);
            for p in path_params(&r.path) {
                assert!(
                    op["parameters"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|x| x["name"] == p && x["in"] == "path"),
                    "{} {}: {p}",
                    r.method,
                    r.path
                );
            }
        }
        assert!(n > 50, "{n}");
        // Every summary names a route that exists, so the table cannot go stale silently.
        let all = super::super::routes::all();
        for (m, p, _) in SUMMARIES {
            assert!(
                all.iter().any(|r| r.method.as_str() == *m && r.path == *p),
                "summary of a route that does not exist: {m} {p}"
            );
        }
        for (m, p, _, _) in BODIES {
            assert!(
                all.iter().any(|r| r.method.as_str() == *m && r.path == *p),
                "{m} {p}"
            );
        }
        // Every referenced schema is a component.
        let text = doc.to_string();
        for part in text.split("#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(doc["components"]["schemas"][name].is_object(), "{name}");
        }
    }
}
