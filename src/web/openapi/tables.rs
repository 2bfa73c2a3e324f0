//! The tables the OpenAPI document adds to the route tables: the contract's error and list
//! shapes, a Chinese summary per route and the request/response schemas of the main bodies.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::{
    ToSchema,
    openapi::{RefOr, schema::Schema},
};

/// The contract's JSON error (every 4xx and 5xx answer of the API).
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// snake_case code, e.g. `validation_failed`, `insufficient_scope`.
    pub code: String,
    /// A Chinese message for people.
    pub message: String,
    /// Per field Chinese messages (`validation_failed`).
    pub fields: Option<BTreeMap<String, String>>,
    /// Details of the problem, e.g. `[{record_id, field, message}]` for `report_invalid`.
    pub details: Option<Value>,
}

/// A page of a list (`?page=&per_page=`).
#[derive(Serialize, ToSchema)]
pub struct ListPage {
    pub items: Vec<Value>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

/// Chinese summaries of routes, by method and path.
pub(super) const SUMMARIES: &[(&str, &str, &str)] = &[
    ("POST", "/api/v1/users", "注册账号"),
    ("POST", "/api/v1/session", "登录，取得访问令牌"),
    ("DELETE", "/api/v1/session", "退出登录，令牌失效"),
    ("GET", "/api/v1/me", "当前用户、角色与单位"),
    ("GET", "/api/v1/roles", "角色与权限列表"),
    ("POST", "/api/v1/units", "登记单位（待认证）"),
    ("GET", "/api/v1/units/{id}", "单位详情"),
    ("PATCH", "/api/v1/units/{id}", "修改单位信息"),
    ("GET", "/api/v1/units/{id}/vouchers", "单位的创新券"),
    (
        "GET",
        "/api/v1/units/{id}/voucher-ledger",
        "单位的创新券流水",
    ),
    (
        "POST",
        "/api/v1/instruments",
        "登记仪器（草稿），含国家上报字段",
    ),
    ("GET", "/api/v1/instruments/{id}", "仪器详情"),
    ("PATCH", "/api/v1/instruments/{id}", "修改仪器（部分字段）"),
    (
        "POST",
        "/api/v1/instruments/{id}/submit",
        "提交仪器入网审核",
    ),
    (
        "GET",
        "/api/v1/instruments/{id}/national",
        "仪器的国家上报补充信息",
    ),
    (
        "PUT",
        "/api/v1/instruments/{id}/national",
        "保存仪器的国家上报补充信息",
    ),
    ("GET", "/api/v1/search", "检索仪器与资源"),
    ("GET", "/api/v1/search/suggest", "检索联想词"),
    ("POST", "/api/v1/bookings", "预约仪器"),
    ("GET", "/api/v1/bookings/{id}", "预约详情"),
    ("POST", "/api/v1/bookings/{id}/quote", "管理单位报价"),
    ("POST", "/api/v1/bookings/{id}/confirm", "确认预约"),
    ("POST", "/api/v1/bookings/{id}/cancel", "取消预约"),
    ("POST", "/api/v1/bookings/{id}/complete", "登记服务完成"),
    ("POST", "/api/v1/bookings/{id}/rating", "评价服务"),
    ("PUT", "/api/v1/bookings/{id}/report", "上传检测报告"),
    ("POST", "/api/v1/testing-orders", "委托检测"),
    ("POST", "/api/v1/voucher-applications", "申请创新券"),
    ("GET", "/api/v1/policy", "创新券政策"),
    ("PUT", "/api/v1/policy", "修改创新券政策"),
    ("POST", "/api/v1/redemptions", "申请创新券兑付"),
    ("GET", "/api/v1/redemptions/{id}", "兑付详情"),
    ("POST", "/api/v1/redemptions/{id}/files", "上传兑付材料"),
    ("GET", "/api/v1/subsidy-settlements/{id}", "补贴结算详情"),
    ("GET", "/api/v1/evaluations", "绩效评价列表"),
    ("POST", "/api/v1/evaluations", "绩效评价申报"),
    ("GET", "/api/v1/evaluations/{id}", "绩效评价详情"),
    ("PUT", "/api/v1/evaluations/{id}/report", "上传自评报告"),
    ("POST", "/api/v1/evaluations/{id}/scores", "专家打分"),
    ("GET", "/api/v1/tasks", "我的待办任务"),
    (
        "POST",
        "/api/v1/tasks/{id}/actions",
        "办理待办（通过、退回…）",
    ),
    ("GET", "/api/v1/workflows", "流程定义列表"),
    ("POST", "/api/v1/workflows/reload", "重新加载流程定义"),
    (
        "GET",
        "/api/v1/workflow-instances/{id}",
        "流程实例与办理记录",
    ),
    (
        "POST",
        "/api/v1/workflow-instances/{id}/withdraw",
        "撤回流程",
    ),
    ("GET", "/api/v1/statistics", "统计数据"),
    ("POST", "/api/v1/reports", "生成上报批次（草稿）"),
    ("GET", "/api/v1/reports", "上报批次列表"),
    (
        "GET",
        "/api/v1/reports/{id}",
        "上报批次：国家字段、问题清单与上级平台回执",
    ),
    ("DELETE", "/api/v1/reports/{id}", "删除草稿批次"),
    (
        "POST",
        "/api/v1/reports/{id}/refresh",
        "按最新数据重新生成批次",
    ),
    ("POST", "/api/v1/reports/{id}/submit", "提交平台审核"),
    ("POST", "/api/v1/reports/{id}/retry", "重新推送失败的批次"),
    (
        "GET",
        "/api/v1/reports/{id}/export.xlsx",
        "导出国家模板（手工上传用）",
    ),
    (
        "POST",
        "/api/v1/api-clients",
        "新建对接客户端（令牌只返回一次）",
    ),
    ("GET", "/api/v1/api-clients", "对接客户端列表"),
    ("DELETE", "/api/v1/api-clients/{id}", "吊销对接客户端"),
    (
        "GET",
        "/api/v1/docking/instruments",
        "对接读取：仪器（国家字段）",
    ),
    (
        "GET",
        "/api/v1/docking/service-records",
        "对接读取：服务记录（国家字段）",
    ),
    (
        "GET",
        "/api/v1/docking/statistics",
        "对接读取：年度统计数据",
    ),
    (
        "POST",
        "/api/v1/docking/reports",
        "对接上报：为本客户端的单位生成上报批次",
    ),
    (
        "GET",
        "/api/v1/docking/reports/{id}",
        "对接上报：批次、问题清单与回执",
    ),
    (
        "POST",
        "/api/v1/docking/reports/{id}/submit",
        "对接上报：提交平台审核",
    ),
    ("GET", "/api/v1/openapi.json", "本接口文档（OpenAPI 3.1）"),
];

/// A component's name and schema, and its dependencies.
pub(super) type NamedSchema = (String, RefOr<Schema>, Vec<(String, RefOr<Schema>)>);

/// A body's schema.
pub(super) type SchemaOf = fn() -> NamedSchema;

pub(super) fn schema_of<T: ToSchema>() -> NamedSchema {
    let mut deps = Vec::new();
    T::schemas(&mut deps);
    (T::name().into_owned(), T::schema(), deps)
}

/// Request and success response bodies of the main routes: (method, path, request, response).
pub(super) const BODIES: &[(&str, &str, Option<SchemaOf>, Option<SchemaOf>)] = &[
    (
        "POST",
        "/api/v1/instruments",
        Some(schema_of::<crate::instruments::InstrumentInput>),
        None,
    ),
    (
        "PATCH",
        "/api/v1/instruments/{id}",
        Some(schema_of::<crate::instruments::InstrumentInput>),
        None,
    ),
    (
        "POST",
        "/api/v1/reports",
        Some(schema_of::<super::super::reports::NewBatch>),
        Some(schema_of::<crate::reporting::BatchView>),
    ),
    (
        "GET",
        "/api/v1/reports/{id}",
        None,
        Some(schema_of::<crate::reporting::BatchView>),
    ),
    (
        "POST",
        "/api/v1/reports/{id}/refresh",
        None,
        Some(schema_of::<crate::reporting::BatchView>),
    ),
    ("GET", "/api/v1/reports", None, Some(schema_of::<ListPage>)),
    (
        "POST",
        "/api/v1/api-clients",
        Some(schema_of::<super::super::docking::NewClient>),
        None,
    ),
    (
        "GET",
        "/api/v1/api-clients",
        None,
        Some(schema_of::<ListPage>),
    ),
    (
        "POST",
        "/api/v1/docking/reports",
        Some(schema_of::<super::super::docking::ClientBatch>),
        Some(schema_of::<crate::reporting::BatchView>),
    ),
    (
        "GET",
        "/api/v1/docking/reports/{id}",
        None,
        Some(schema_of::<crate::reporting::BatchView>),
    ),
    (
        "GET",
        "/api/v1/docking/instruments",
        None,
        Some(schema_of::<ListPage>),
    ),
    (
        "GET",
        "/api/v1/docking/service-records",
        None,
        Some(schema_of::<ListPage>),
    ),
];
