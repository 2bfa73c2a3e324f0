//! The role × route matrix (角色×路由权限矩阵): every route of the route tables — those with
//! path parameters too, filled from real records — called anonymously, as each built-in role
//! and as a unit manager acting on another unit's records, against an expectation written
//! here as data. A route without an entry fails the test; so does any 5xx, also when the
//! parameters name nothing.

use std::collections::BTreeMap;

use axum::http::Method;
use serde_json::{Value, json};

use crate::common::{TestApp, certified_unit, csrf_from, new_client, spawn_app_with};

/// Tuesday 1 December 2026, 08:00 in Xuchang.
const NOW: &str = "2026-12-01T08:00:00+08:00";

/// Who calls, in the order of the expectation strings. `unit_manager` manages unit A, which
/// owns every record below; `other_manager` manages unit B and acts on unit A's records;
/// `user` is the enterprise user whose booking it is.
const ACTORS: [&str; 7] = [
    "anonymous",
    "system_admin",
    "platform_admin",
    "unit_manager",
    "other_manager",
    "expert",
    "user",
];

/// What each actor gets, one character per actor in the order of [`ACTORS`]:
/// `A` let through (any status below 500 other than 401, 403, 404 or the login redirect: a
/// page, a redirect after the change, or a 400/409/422 about the empty body), `F` 403,
/// `N` 404 (the record is not shown to them at all), `L` sign in first (401 on `/api/v1`,
/// 303 to `/login?next=…` on pages). Never a 5xx.
///
/// Requests carry no form fields or an empty JSON body (with ids that name nothing where a
/// handler reads the body before the permission), so an `A` on a state-changing route usually
/// means "validated and refused for the body", not "changed". GET routes run first, then
/// the others in table order, then the two that end the session.
const EXPECTED: &[(&str, &str)] = &[
    // Issue 13 (units run themselves): operational fields, retirement and change requests of
    // the fixture's approved instrument and records (unit A's manager only; reviewers read
    // requests), invitations, leaving, handing over (unit A's manager), revoking a
    // certification (unit reviewers). Invitation and change ids name nothing here.
    ("PATCH /api/v1/instruments/{id}/operation", "LFFAFFF"),
    ("POST /api/v1/instruments/{id}/retire", "LFFAFFF"),
    ("GET /api/v1/instruments/{id}/changes", "LFAAFFF"),
    ("GET /api/v1/changes/{id}", "LNNNNNN"),
    ("POST /console/instruments/{id}/operation", "LFFAFFF"),
    ("POST /console/instruments/{id}/retire", "LFFAFFF"),
    ("POST /api/v1/platforms/{id}/retire", "LFFAFFF"),
    ("GET /api/v1/platforms/{id}/changes", "LFAAFFF"),
    ("POST /api/v1/services/{id}/retire", "LFFAFFF"),
    ("GET /api/v1/services/{id}/changes", "LFAAFFF"),
    ("POST /api/v1/achievements/{id}/retire", "LFFAFFF"),
    ("GET /api/v1/achievements/{id}/changes", "LFAAFFF"),
    ("POST /api/v1/units/{id}/invitations", "LFFAFFF"),
    ("GET /api/v1/units/{id}/invitations", "LFFAFFF"),
    ("GET /api/v1/units/{id}/members", "LFAAFFF"),
    ("POST /api/v1/invitations/{id}/accept", "LNNNNNN"),
    ("POST /api/v1/invitations/{id}/decline", "LNNNNNN"),
    ("POST /api/v1/units/{id}/leave", "LFFAFFF"),
    ("POST /api/v1/units/{id}/handover", "LFFAFFF"),
    ("POST /console/invitations/{id}/accept", "LNNNNNN"),
    ("POST /console/invitations/{id}/decline", "LNNNNNN"),
    ("POST /console/units/{id}/leave", "LFFAFFF"),
    ("POST /console/units/{id}/handover", "LFFAFFF"),
    ("POST /api/v1/units/{id}/revoke-certification", "LFAFFFF"),
    ("POST /console/units/{id}/revoke-certification", "LFAFFFF"),
    // Public pages and API: everyone, signed in or not.
    ("GET /healthz", "AAAAAAA"),
    ("GET /readyz", "AAAAAAA"),
    // Loopback callers only (as the test client is) unless LABSHARE_METRICS_TOKEN is set.
    ("GET /metrics", "AAAAAAA"),
    ("GET /", "AAAAAAA"),
    ("GET /instruments", "AAAAAAA"),
    ("GET /instruments/{id}", "AAAAAAA"),
    ("GET /platforms", "AAAAAAA"),
    ("GET /platforms/{id}", "AAAAAAA"),
    ("GET /services", "AAAAAAA"),
    ("GET /services/{id}", "AAAAAAA"),
    ("GET /achievements", "AAAAAAA"),
    ("GET /achievements/{id}", "AAAAAAA"),
    ("GET /orgs", "AAAAAAA"),
    ("GET /orgs/{id}", "AAAAAAA"),
    ("GET /search", "AAAAAAA"),
    ("GET /news", "AAAAAAA"),
    ("GET /notices", "AAAAAAA"),
    ("GET /policies", "AAAAAAA"),
    ("GET /news/{id}", "AAAAAAA"),
    ("GET /notices/{id}", "AAAAAAA"),
    ("GET /policies/{id}", "AAAAAAA"),
    ("GET /login", "AAAAAAA"),
    ("GET /register", "AAAAAAA"),
    ("GET /console/password", "LAAAAAA"),
    ("GET /console", "LAAAAAA"),
    ("GET /console/units", "LFFAAFA"),
    ("GET /console/units/new", "LFFAAFA"),
    ("GET /console/units/{id}", "LFAAFFF"),
    ("GET /console/users", "LAFFFFF"),
    ("GET /console/roles", "LAFFFFF"),
    ("GET /console/roles/new", "LAFFFFF"),
    ("GET /console/roles/{id}", "LAFFFFF"),
    ("GET /console/notifications", "LAAAAAA"),
    ("GET /console/notifications/settings", "LAAAAAA"),
    ("GET /console/jobs", "LAFFFFF"),
    ("GET /instruments/{id}/book", "AAAAAAA"),
    ("GET /instruments/{id}/calendar.ics", "AAAAAAA"),
    ("GET /console/my-bookings", "LFFAAFA"),
    ("GET /calendar/{file}", "AAAAAAA"),
    ("GET /console/bookings", "LFFAAFF"),
    ("GET /console/vouchers", "LFFFFFA"),
    ("GET /console/voucher-admin", "LFAFFFF"),
    ("GET /console/subsidies", "LFAAAFF"),
    ("GET /console/subsidies/{id}", "LFAFFFF"),
    ("GET /console/subsidies/{id}/export.xlsx", "LFAFFFF"),
    ("GET /console/subsidies/{id}/confirm", "LFFAFFF"),
    ("GET /console/redemptions", "LFFAAFF"),
    ("GET /console/redemptions/{id}", "LFAAFFF"),
    ("GET /console/redemptions/{id}/files/{file_id}", "LFAAFFF"),
    ("GET /email-actions/{token}", "AAAAAAA"),
    ("GET /api/v1/workflows", "LAAAAAA"),
    ("GET /api/v1/tasks", "LAAAAAA"),
    ("GET /api/v1/workflow-instances/{id}", "LAAAFFF"),
    ("GET /console/tasks", "LAAAAAA"),
    ("GET /console/tasks/done", "LAAAAAA"),
    ("GET /console/tasks/started", "LAAAAAA"),
    // Someone else's task: a redirect to the task list with a flash message, not the task.
    ("GET /console/tasks/{id}", "LAAAAAA"),
    ("GET /console/workflow-instances/{id}", "LAAAFFF"),
    (
        "GET /console/workflow-instances/{id}/diagram.svg",
        "LAAAFFF",
    ),
    ("GET /console/workflows", "LAFFFFF"),
    ("GET /console/workflows/{key}", "LAFFFFF"),
    ("GET /console/workflows/{key}/diagram.svg", "LAAAAAA"),
    ("GET /api/v1/instruments/{id}", "AAAAAAA"),
    ("GET /console/instruments", "LFFAAFF"),
    ("GET /console/instruments/new", "LFFAAFF"),
    ("GET /console/instruments/{id}", "LFFAFFF"),
    ("GET /console/instruments/template.xlsx", "LFFAAFF"),
    ("GET /console/instruments/export.xlsx", "LFFAAFF"),
    ("GET /console/instruments/import", "LFFAAFF"),
    ("GET /console/content", "LFAFFFF"),
    ("GET /console/content/new", "LFAFFFF"),
    ("GET /console/content/{id}", "LFAFFFF"),
    // The fixture's upload is a redemption contract: private files are never served at
    // /uploads, only by their records' routes (which check who asks).
    ("GET /uploads/{name}", "NNNNNNN"),
    ("GET /api/v1/platforms/{id}", "AAAAAAA"),
    ("GET /console/platforms", "LFFAAFF"),
    ("GET /console/platforms/new", "LFFAAFF"),
    ("GET /console/platforms/export.xlsx", "LFFAAFF"),
    ("GET /console/platforms/{id}", "LFFAFFF"),
    ("GET /api/v1/services/{id}", "AAAAAAA"),
    ("GET /console/services", "LFFAAFF"),
    ("GET /console/services/new", "LFFAAFF"),
    ("GET /console/services/export.xlsx", "LFFAAFF"),
    ("GET /console/services/{id}", "LFFAFFF"),
    ("GET /api/v1/achievements/{id}", "AAAAAAA"),
    ("GET /console/achievements", "LFFAAFF"),
    ("GET /console/achievements/new", "LFFAAFF"),
    ("GET /console/achievements/export.xlsx", "LFFAAFF"),
    ("GET /console/achievements/{id}", "LFFAFFF"),
    ("GET /console/experts", "LFAFFFF"),
    ("GET /console/experts/new", "LFAFFFF"),
    ("GET /console/experts/{id}", "LFAFFFF"),
    ("GET /console/rules", "LFFAAFA"),
    ("GET /evaluations", "AAAAAAA"),
    ("GET /console/evaluations", "LFFAAFF"),
    ("GET /console/evaluation-admin", "LFAFFFF"),
    ("GET /console/expert-reviews", "LFFFFAF"),
    ("GET /console/evaluations/{id}", "LFAAFFF"),
    ("GET /api/v1/evaluations", "LAAAAAA"),
    ("GET /api/v1/evaluations/{id}", "LFAAFFF"),
    ("GET /services/{id}/order", "LFFAAFA"),
    // No report uploaded yet: 404 to those who may see one.
    ("GET /console/bookings/{id}/report", "LFFNFFN"),
    ("GET /console/statistics", "LAAFFFF"),
    ("GET /console/statistics/export.xlsx", "LAAFFFF"),
    ("GET /api/v1/statistics", "LAAFFFF"),
    // Issue 16: charts' data, national indicators (a unit manager only for their own unit,
    // which the matrix does not name: the statistics tests check it), open data (public).
    ("GET /console/statistics/charts/{file}", "LAAFFFF"),
    ("GET /api/v1/statistics/indicators", "LAAFFFF"),
    ("GET /open-data", "AAAAAAA"),
    ("GET /open-data/{file}", "AAAAAAA"),
    ("GET /console/service-records", "LAAAAAA"),
    ("GET /api/v1/me", "LAAAAAA"),
    ("GET /api/v1/roles", "LAFFFFF"),
    // A certified unit is public information to signed-in users; drafts are not.
    ("GET /api/v1/units/{id}", "LAAAAAA"),
    ("GET /api/v1/bookings/{id}", "LFAAFFA"),
    ("GET /api/v1/units/{id}/vouchers", "LFAAFFF"),
    ("GET /api/v1/units/{id}/voucher-ledger", "LFAAFFF"),
    ("GET /api/v1/subsidy-settlements/{id}", "LFAAFFF"),
    (
        "GET /api/v1/subsidy-settlements/{id}/export.xlsx",
        "LFAFFFF",
    ),
    ("GET /api/v1/policy", "LFAFFFF"),
    ("GET /api/v1/redemptions/{id}", "LFAAFFF"),
    ("GET /api/v1/redemptions/{id}/files/{file_id}", "LFAAFFF"),
    ("GET /api/v1/search", "AAAAAAA"),
    ("GET /api/v1/search/suggest", "AAAAAAA"),
    ("POST /login", "AAAAAAA"),
    ("POST /register", "AAAAAAA"),
    ("POST /console/password", "LAAAAAA"),
    ("POST /console/units", "LFFAAFA"),
    ("POST /console/units/{id}", "LFFAFFF"),
    ("POST /console/units/{id}/members", "LFFAFFF"),
    ("POST /console/users/{id}/roles", "LAFFFFF"),
    ("POST /console/roles", "LAFFFFF"),
    ("POST /console/roles/{id}", "LAFFFFF"),
    ("POST /console/roles/{id}/delete", "LAFFFFF"),
    ("POST /console/notifications/read-all", "LAAAAAA"),
    // Someone else's notification does not exist for you.
    ("POST /console/notifications/{id}/open", "LNNANNN"),
    ("POST /console/notifications/settings", "LAAAAAA"),
    ("POST /console/jobs/{name}/run", "LAFFFFF"),
    ("POST /console/mail/{id}/resend", "LAFFFFF"),
    ("POST /instruments/{id}/book", "LFFAAFA"),
    ("POST /console/my-bookings/calendar", "LFFAAFA"),
    // Cancelling (with a reason): the instrument's unit and the booker only.
    ("POST /console/bookings/{id}/{action}", "LFFAFFA"),
    ("POST /console/subsidies", "LFAFFFF"),
    ("POST /console/subsidies/{id}/confirm", "LFFAFFF"),
    ("POST /console/redemptions", "LFFAAFF"),
    ("POST /console/redemptions/{id}/files", "LFFAFFF"),
    ("POST /email-actions/{token}", "AAAAAAA"),
    ("POST /api/v1/workflows/reload", "LAFFFFF"),
    ("POST /api/v1/tasks/{id}/actions", "LFAFFFF"),
    ("POST /api/v1/workflow-instances/{id}/withdraw", "LFFAFFF"),
    ("POST /api/v1/units/{id}/certification", "LFFAFFF"),
    ("POST /console/tasks/{id}", "LFAFFFF"),
    ("POST /console/workflow-instances/{id}/withdraw", "LFFAFFF"),
    ("POST /console/workflows", "LAFFFFF"),
    ("POST /console/workflows/{key}", "LAFFFFF"),
    ("POST /console/workflows/{key}/simulate", "LAFFFFF"),
    ("POST /console/units/{id}/certification", "LFFAFFF"),
    ("POST /api/v1/instruments", "LFFAAFF"),
    ("PATCH /api/v1/instruments/{id}", "LFFAFFF"),
    ("POST /api/v1/instruments/{id}/submit", "LFFAFFF"),
    ("POST /console/instruments", "LFFAAFF"),
    ("POST /console/instruments/{id}", "LFFAFFF"),
    ("POST /console/instruments/{id}/submit", "LFFAFFF"),
    ("POST /console/instruments/import", "LFFAAFF"),
    ("POST /console/content", "LFAFFFF"),
    ("POST /console/content/{id}", "LFAFFFF"),
    ("POST /console/content/{id}/publish", "LFAFFFF"),
    ("POST /console/content/{id}/unpublish", "LFAFFFF"),
    ("POST /console/instruments/{id}/photos", "LFFAFFF"),
    ("POST /console/content/{id}/attachments", "LFAFFFF"),
    ("POST /api/v1/platforms", "LFFAAFF"),
    ("PATCH /api/v1/platforms/{id}", "LFFAFFF"),
    ("POST /api/v1/platforms/{id}/submit", "LFFAFFF"),
    ("POST /console/platforms", "LFFAAFF"),
    ("POST /console/platforms/{id}", "LFFAFFF"),
    ("POST /console/platforms/{id}/submit", "LFFAFFF"),
    ("POST /api/v1/services", "LFFAAFF"),
    ("PATCH /api/v1/services/{id}", "LFFAFFF"),
    ("POST /api/v1/services/{id}/submit", "LFFAFFF"),
    ("POST /console/services", "LFFAAFF"),
    ("POST /console/services/{id}", "LFFAFFF"),
    ("POST /console/services/{id}/submit", "LFFAFFF"),
    ("POST /api/v1/achievements", "LFFAAFF"),
    ("PATCH /api/v1/achievements/{id}", "LFFAFFF"),
    ("POST /api/v1/achievements/{id}/submit", "LFFAFFF"),
    ("POST /console/achievements", "LFFAAFF"),
    ("POST /console/achievements/{id}", "LFFAFFF"),
    ("POST /console/achievements/{id}/submit", "LFFAFFF"),
    ("POST /console/platforms/{id}/instruments", "LFFAFFF"),
    (
        "POST /console/platforms/{id}/instruments/{instrument_id}/remove",
        "LFFAFFF",
    ),
    ("POST /console/experts", "LFAFFFF"),
    ("POST /console/experts/{id}", "LFAFFFF"),
    ("POST /console/experts/{id}/certify", "LFAFFFF"),
    ("POST /console/rules", "LFFAAFA"),
    ("POST /console/evaluations", "LFFAAFF"),
    ("POST /console/evaluations/{id}/experts", "LFAFFFF"),
    ("POST /console/evaluations/{id}/scores", "LFFFFFF"),
    // No open grading task for anyone yet (the evaluation is under expert review).
    ("POST /console/evaluations/{id}/grade", "LFFFFFF"),
    ("POST /console/evaluations/{id}/report", "LFFAFFF"),
    ("POST /api/v1/evaluations", "LFFNNFF"),
    ("PUT /api/v1/evaluations/{id}/experts", "LFAFFFF"),
    // A valid sheet, but no expert is assigned yet: nobody may score (the unit's own manager
    // least of all).
    ("POST /api/v1/evaluations/{id}/scores", "LFFFFFF"),
    ("PUT /api/v1/evaluations/{id}/report", "LFFAFFF"),
    ("POST /services/{id}/order", "LFFAAFA"),
    // A report PDF: only the testing unit may upload it.
    ("POST /console/bookings/{id}/report", "LFFAFFF"),
    ("POST /api/v1/testing-orders", "LFFFFFF"),
    // Checked before anything is stored: another unit's manager is refused.
    ("PUT /api/v1/bookings/{id}/report", "LFFAFFF"),
    ("POST /api/v1/users", "AAAAAAA"),
    ("POST /api/v1/session", "AAAAAAA"),
    ("POST /api/v1/units", "LFFAAFA"),
    ("PATCH /api/v1/units/{id}", "LFFAFFF"),
    ("POST /api/v1/bookings", "LFFFFFF"),
    ("POST /api/v1/bookings/{id}/quote", "LFFAFFF"),
    ("POST /api/v1/bookings/{id}/confirm", "LFFFFFA"),
    ("POST /api/v1/bookings/{id}/complete", "LFFAFFF"),
    ("POST /api/v1/bookings/{id}/cancel", "LFFAFFA"),
    ("POST /api/v1/bookings/{id}/rating", "LFFFFFA"),
    ("PUT /api/v1/units/{id}/grades/{year}", "LFAFFFF"),
    ("POST /api/v1/subsidy-settlements", "LFAFFFF"),
    ("POST /api/v1/subsidy-settlements/{id}/confirm", "LFFAFFF"),
    ("POST /api/v1/subsidy-settlements/{id}/objection", "LFFAFFF"),
    ("PUT /api/v1/policy", "LFAFFFF"),
    ("POST /api/v1/voucher-applications", "LFFFFFN"),
    ("POST /api/v1/redemptions", "LFFNNFF"),
    ("POST /api/v1/redemptions/{id}/files", "LFFAFFF"),
    ("POST /logout", "AAAAAAA"),
    ("DELETE /api/v1/session", "LAAAAAA"),
    // Issue 20: 平台配置 and 工作日历 (system admin), 专家咨询 (the fixture's consultation was
    // asked by `user`; no pool expert matches it, so the expert gets 404; the platform sees
    // all and reassigns), 成果转化对接 (the buyer's interest in unit A's achievement: unit A's
    // manager answers; page forms answer a refusal with a flash redirect).
    ("GET /api/v1/settings", "AAAAAAA"),
    ("GET /api/v1/calendar/{year}", "AAAAAAA"),
    ("GET /console/settings", "LAFFFFF"),
    ("GET /console/calendar", "LAFFFFF"),
    ("PUT /api/v1/settings", "LAFFFFF"),
    ("PUT /api/v1/calendar/{year}", "LAFFFFF"),
    ("POST /console/settings", "LAFFFFF"),
    ("POST /console/calendar", "LAFFFFF"),
    ("GET /qa", "AAAAAAA"),
    // Not closed and public: nobody sees it as a Q&A.
    ("GET /qa/{id}", "NNNNNNN"),
    ("GET /console/consultations", "LAAAAAA"),
    ("GET /console/consultations/new", "LAAAAAA"),
    ("GET /console/consultations/{id}", "LNANNNA"),
    ("GET /api/v1/consultations", "LAAAAAA"),
    ("GET /api/v1/consultations/{id}", "LNANNNA"),
    ("POST /console/consultations", "LAAAAAA"),
    // The action `cancel` does not exist here.
    ("POST /console/consultations/{id}/{action}", "LNNNNNN"),
    ("POST /api/v1/consultations", "LAAAAAA"),
    ("POST /api/v1/consultations/{id}/answers", "LNFNNNF"),
    ("POST /api/v1/consultations/{id}/followups", "LNFNNFA"),
    ("POST /api/v1/consultations/{id}/close", "LNFNNFA"),
    ("POST /api/v1/consultations/{id}/reassign", "LFAFFFF"),
    ("GET /console/transfer", "LAAAAAA"),
    ("GET /api/v1/achievement-interests", "LAAAAAA"),
    ("GET /api/v1/statistics/transfer-agreements", "LFAFFFF"),
    ("POST /achievements/{id}/interest", "LAAAAAA"),
    ("POST /api/v1/achievements/{id}/interest", "LAAAAAA"),
    ("POST /console/transfer/{id}", "LNFANNN"),
    ("PATCH /api/v1/achievement-interests/{id}", "LNFANNN"),
    // 信息上报与数据对接 and the voucher exception (second round); report ids name nothing.
    ("GET /api/v1/reports", "LAAAAFF"),
    ("GET /api/v1/reports/{id}", "LNNNNFF"),
    ("GET /api/v1/reports/{id}/export.xlsx", "LNNNNFF"),
    ("GET /api/v1/instruments/{id}/national", "LFFAFFF"),
    ("GET /api/v1/api-clients", "LAFFFFF"),
    ("GET /api/v1/docking/instruments", "LLLLLLL"),
    ("GET /api/v1/docking/service-records", "LLLLLLL"),
    ("GET /console/reports", "LAAAAFF"),
    ("GET /console/reports/{id}", "LNNNNFF"),
    ("GET /console/reports/{id}/export.xlsx", "LNNNNFF"),
    ("GET /console/instruments/{id}/national", "LFFAFFF"),
    ("GET /console/docking", "LAFFFFF"),
    ("POST /api/v1/bookings/{id}/voucher-exception", "LFAFFFF"),
    ("POST /api/v1/reports", "LFFAAFF"),
    ("DELETE /api/v1/reports/{id}", "LFFNNFF"),
    ("POST /api/v1/reports/{id}/refresh", "LFFNNFF"),
    ("POST /api/v1/reports/{id}/submit", "LFFNNFF"),
    ("POST /api/v1/reports/{id}/retry", "LAFFFFF"),
    ("PUT /api/v1/instruments/{id}/national", "LFFAFFF"),
    ("POST /api/v1/api-clients", "LAFFFFF"),
    ("DELETE /api/v1/api-clients/{id}", "LNFFFFF"),
    ("POST /console/reports", "LFFAAFF"),
    ("POST /console/reports/{id}/refresh", "LFFNNFF"),
    ("POST /console/reports/{id}/submit", "LFFNNFF"),
    ("POST /console/reports/{id}/delete", "LFFNNFF"),
    ("POST /console/reports/{id}/retry", "LAFFFFF"),
    ("POST /console/instruments/{id}/national", "LFFAFFF"),
    ("POST /console/docking/clients", "LAFFFFF"),
    ("POST /console/docking/clients/{id}/revoke", "LNFFFFF"),
    // Issue 18: reviewer queue batch approval, delegation (anyone signed in, for themselves),
    // the flow designer and versions (workflow.edit).
    ("GET /console/delegations", "LAAAAAA"),
    ("POST /console/delegations", "LAAAAAA"),
    ("POST /console/delegations/{id}/end", "LAAAAAA"),
    ("POST /console/tasks/batch-approve", "LAAAAAA"),
    ("GET /console/workflows/{key}/designer", "LAFFFFF"),
    ("POST /console/workflows/{key}/designer", "LAFFFFF"),
    ("GET /console/workflows/{key}/versions", "LAFFFFF"),
    ("POST /console/workflows/{key}/versions/rollback", "LAFFFFF"),
    ("POST /console/workflows/{key}/versions/migrate", "LAFFFFF"),
    // Issue 12, second part: the OpenAPI document and its console page; docking calls of
    // `write:reports` clients take a client token only, so every user's token gets 401.
    ("GET /api/v1/openapi.json", "AAAAAAA"),
    ("GET /console/api-docs", "LAAAAAA"),
    ("GET /api/v1/docking/reports/{id}", "LLLLLLL"),
    ("GET /api/v1/docking/statistics", "LLLLLLL"),
    ("POST /api/v1/docking/reports", "LLLLLLL"),
    ("POST /api/v1/docking/reports/{id}/submit", "LLLLLLL"),
    // Issue 17 (booking plus): availability, waitlists, qualifications, training, check-in.
    ("GET /api/v1/availability", "AAAAAAA"),
    ("GET /availability", "AAAAAAA"),
    ("GET /availability/grid", "AAAAAAA"),
    ("GET /instruments/{id}/checkin-qr.svg", "AAAAAAA"),
    ("GET /instruments/{id}/check-in", "LAAAAAA"),
    ("GET /api/v1/waitlist/{id}", "LNNNNNN"),
    ("GET /console/waitlist", "LFFAAFA"),
    ("GET /console/waitlist/{id}", "LFFNNFN"),
    ("GET /console/bookings/{id}/cancellation", "LFFAFFA"),
    ("GET /api/v1/instruments/{id}/qualifications", "LFFAFFF"),
    ("GET /console/instruments/{id}/qualifications", "LFFAFFF"),
    ("POST /api/v1/instruments/{id}/waitlist", "LAAAAAA"),
    ("POST /instruments/{id}/waitlist", "LFFFFFF"),
    ("POST /api/v1/waitlist/{id}/accept", "LFFNNFN"),
    ("POST /api/v1/waitlist/{id}/decline", "LFFNNFN"),
    ("POST /console/waitlist/{id}/{action}", "LFFNNFN"),
    ("POST /api/v1/instruments/{id}/qualifications", "LAAAAAA"),
    ("POST /console/instruments/{id}/qualifications", "LFFAFFF"),
    ("POST /api/v1/instruments/{id}/training", "LAAAAAA"),
    ("POST /api/v1/bookings/{id}/confirm-training", "LFFAFFF"),
    ("POST /api/v1/bookings/{id}/check-in", "LFFFFFA"),
    ("POST /api/v1/bookings/{id}/check-out", "LFFFFFA"),
];

/// The records the matrix's paths point at.
struct Fixture {
    unit_a: i64,
    instrument: i64,
    platform: i64,
    service: i64,
    achievement: i64,
    news: i64,
    notice: i64,
    policy: i64,
    booking: i64,
    redemption: i64,
    redemption_file: i64,
    settlement: i64,
    evaluation: i64,
    task: i64,
    instance: i64,
    expert: i64,
    role: i64,
    bystander: i64,
    notification: i64,
    mail: i64,
    upload: String,
    email_token: String,
    calendar_token: String,
    consultation: i64,
    interest: i64,
}

impl Fixture {
    /// The value for the parameter `param` that follows the segment `collection`.
    fn value(&self, collection: &str, param: &str) -> String {
        let id = |v: i64| v.to_string();
        match (collection, param) {
            ("units" | "orgs", "{id}") => id(self.unit_a),
            ("instruments", "{id}") => id(self.instrument),
            ("instruments", "{instrument_id}") => id(self.instrument),
            ("platforms", "{id}") => id(self.platform),
            ("services", "{id}") => id(self.service),
            ("achievements", "{id}") => id(self.achievement),
            ("news" | "content", "{id}") => id(self.news),
            ("notices", "{id}") => id(self.notice),
            ("policies", "{id}") => id(self.policy),
            ("bookings", "{id}") => id(self.booking),
            ("{id}", "{action}") => "cancel".into(),
            ("redemptions", "{id}") => id(self.redemption),
            ("files", "{file_id}") => id(self.redemption_file),
            ("subsidies" | "subsidy-settlements", "{id}") => id(self.settlement),
            ("evaluations", "{id}") => id(self.evaluation),
            ("tasks", "{id}") => id(self.task),
            ("workflow-instances", "{id}") => id(self.instance),
            ("workflows", "{key}") => "unit_certification".into(),
            ("experts", "{id}") => id(self.expert),
            ("roles", "{id}") => id(self.role),
            ("users", "{id}") => id(self.bystander),
            ("notifications", "{id}") => id(self.notification),
            ("jobs", "{name}") => "index-check".into(),
            ("mail", "{id}") => id(self.mail),
            ("uploads", "{name}") => self.upload.clone(),
            ("email-actions", "{token}") => self.email_token.clone(),
            ("calendar", "{file}") => format!("{}.ics", self.calendar_token),
            ("grades", "{year}") => "2026".into(),
            // Issue 20: a year nobody published; the consultation the buyer asked; the
            // buyer's interest in unit A's achievement.
            ("calendar", "{year}") => "2031".into(),
            ("consultations" | "qa", "{id}") => id(self.consultation),
            ("achievement-interests" | "transfer", "{id}") => id(self.interest),
            // Issue 16.
            ("charts", "{file}") => "monthly_hours.xlsx".into(),
            ("open-data", "{file}") => "grades.csv".into(),
            // Report batches and docking clients: ids that name nothing (the reporting tests
            // cover who may act on real ones); the matrix checks who is turned away first.
            ("reports" | "api-clients" | "clients", "{id}") => "999999".into(),
            // Delegations: an id that names nothing (tests/api/flow_designer.rs covers real ones).
            ("delegations", "{id}") => "999999".into(),
            // Issue 13: change requests and invitations (tests/api/self_service.rs covers real ones).
            ("changes" | "invitations", "{id}") => "999999".into(),
            // Issue 17: a waitlist entry that names nothing (tests/api/booking_plus.rs covers
            // who may act on real ones).
            ("waitlist", "{id}") => "999999".into(),
            _ => panic!("no fixture for {param} after /{collection}/: add one to Fixture"),
        }
    }

    /// `path` with its parameters filled.
    fn fill(&self, path: &str) -> String {
        let segs: Vec<&str> = path.split('/').collect();
        let mut out = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            if s.starts_with('{') {
                out.push(self.value(segs[i - 1], s));
            } else {
                out.push(s.to_string());
            }
        }
        out.join("/")
    }
}

async fn scalar(app: &TestApp, sql: &'static str, bind: i64) -> i64 {
    sqlx::query_scalar(sql)
        .bind(bind)
        .fetch_one(&app.db.pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn created(app: &TestApp, token: &str, path: &str, body: Value) -> i64 {
    let (status, b) = app.api("POST", path, Some(token), Some(body)).await;
    assert!(status == 201 || status == 202, "{path}: {status} {b}");
    b["id"].as_i64().unwrap_or_else(|| panic!("{path}: {b}"))
}

/// A multipart body with text fields and files (field, file name, bytes).
pub(crate) fn multipart(
    fields: &[(&str, &str)],
    files: &[(&str, &str, &[u8])],
) -> (String, Vec<u8>) {
    let boundary = "----labshareSecurityBoundary";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    for (field, name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Users, units A and B, and one record of each kind owned by unit A (Arrange).
async fn arrange(app: &TestApp) -> Fixture {
    for (name, role) in [
        ("sec_root", "system_admin"),
        ("sec_bureau", "platform_admin"),
        ("sec_mgr_a", "unit_manager"),
        ("sec_mgr_b", "unit_manager"),
        ("sec_expert", "expert"),
        ("sec_buyer", "user"),
    ] {
        app.create_user(name, role).await;
    }
    let bystander = app.create_user("sec_bystander", "user").await;
    let bureau = app.token("sec_bureau").await;
    let mgr_a = app.token("sec_mgr_a").await;
    let mgr_b = app.token("sec_mgr_b").await;
    let buyer = app.token("sec_buyer").await;
    let unit_a = certified_unit(app, &mgr_a, "许昌安全测试大学", 901, "managing", "other").await;
    certified_unit(app, &mgr_b, "许昌安全测试学院", 902, "managing", "other").await;
    let buyer_unit =
        certified_unit(app, &buyer, "许昌安全测试企业", 903, "user", "high_tech").await;

    let instrument = created(
        app,
        &mgr_a,
        "/api/v1/instruments",
        json!({"unit_id": unit_a, "name": "场发射扫描电子显微镜", "category_code": "010100", "value": 1250000}),
    )
    .await;
    sqlx::query(
        "UPDATE instruments SET review_status = 'approved', open_to_public = 1 WHERE id = $1",
    )
    .bind(instrument)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let platform = created(
        app,
        &mgr_a,
        "/api/v1/platforms",
        json!({"unit_id": unit_a, "name": "材料表征平台", "category": "重点实验室",
               "platform_type": "市级", "description": "材料表征"}),
    )
    .await;
    let service = created(
        app,
        &mgr_a,
        "/api/v1/services",
        json!({"unit_id": unit_a, "name": "金属材料拉伸试验", "category": "材料检测", "price": "300.00",
               "price_unit": "样", "sample_requirements": "标准试样", "turnaround_days": 5,
               "service_status": "服务中"}),
    )
    .await;
    let achievement = created(
        app,
        &mgr_a,
        "/api/v1/achievements",
        json!({"unit_id": unit_a, "title": "高强铝合金制备技术", "field": "新材料", "holder": "许昌安全测试大学", "maturity": "中试",
               "transfer_mode": "转让", "description": "成果简介"}),
    )
    .await;
    for table in ["platforms", "services", "achievements"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET review_status = 'approved' WHERE unit_id = $1"
        )))
        .bind(unit_a)
        .execute(&app.db.pool)
        .await
        .unwrap();
    }
    let mut articles = Vec::new();
    for kind in ["news", "notice", "policy"] {
        articles.push(
            sqlx::query_scalar::<_, i64>(
                "INSERT INTO articles (kind, title, body_html, status, published_at, created_at, updated_at) \
                 VALUES ($1, '关于开展仪器共享的通知', '<p>正文</p>', 'published', 0, 0, 0) RETURNING id",
            )
            .bind(kind)
            .fetch_one(&app.db.pool)
            .await
            .unwrap(),
        );
    }

    // A quoted booking of the buyer on unit A's instrument.
    let (status, b) = app
        .api("POST", "/api/v1/bookings", Some(&buyer), Some(json!({
            "instrument_id": instrument, "unit_id": buyer_unit,
            "start": "2026-12-02T09:00:00+08:00", "end": "2026-12-02T11:00:00+08:00", "purpose": "材料形貌表征"
        })))
        .await;
    assert_eq!(status, 201, "{b}");
    let booking = b["id"].as_i64().unwrap();
    // A completed one, paid partly with vouchers, for the redemption.
    let done: i64 = sqlx::query_scalar(
        "INSERT INTO bookings (instrument_id, unit_id, user_id, start_at, end_at, purpose, status, live, price_fen, voucher_fen, voucher_year, created_at, updated_at) \
         VALUES ($1, $2, 1, 1780000000, 1780003600, '测试', 'completed', 0, 150000, 50000, 2026, 0, 0) RETURNING id",
    )
    .bind(instrument)
    .bind(buyer_unit)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let (status, r) = app
        .api(
            "POST",
            "/api/v1/redemptions",
            Some(&mgr_a),
            Some(json!({"unit_id": unit_a, "booking_ids": [done]})),
        )
        .await;
    assert_eq!(status, 202, "{r}");
    let redemption = r["id"].as_i64().unwrap();
    let instance = r["instance_id"].as_i64().unwrap();
    let (ct, body) = multipart(
        &[("kind", "contract")],
        &[("file", "合同.pdf", crate::redemptions::PDF)],
    );
    let res = app
        .client
        .post(app.url(&format!("/api/v1/redemptions/{redemption}/files")))
        .bearer_auth(&mgr_a)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let redemption_file = scalar(
        app,
        "SELECT MAX(id) FROM redemption_files WHERE redemption_id = $1",
        redemption,
    )
    .await;
    let task = scalar(
        app,
        "SELECT MIN(id) FROM workflow_tasks WHERE instance_id = $1 AND status = 'open'",
        instance,
    )
    .await;

    let evaluation = created(
        app,
        &mgr_a,
        "/api/v1/evaluations",
        json!({"unit_id": unit_a, "year": 2026, "self_report": "本年度仪器共享服务情况良好，开放机时与服务收入均有增长。"}),
    )
    .await;
    // Income already redeemed, for the settlement: a served booking in an approved redemption.
    let paid: i64 = sqlx::query_scalar(
        "INSERT INTO bookings (instrument_id, unit_id, user_id, start_at, end_at, purpose, status, live, price_fen, voucher_fen, voucher_year, created_at, updated_at) \
         VALUES ($1, $2, 1, 1780100000, 1780103600, '测试', 'completed', 0, 300000, 100000, 2026, 0, 0) RETURNING id",
    )
    .bind(instrument)
    .bind(buyer_unit)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO service_records (booking_id, order_no, instrument_id, managing_unit_id, user_unit_id, applicant_name, amount_fen, voucher_fen, \
         service_hours_x100, started_at, ended_at, completed_at, year, created_at) VALUES ($1, 'FWSEC000001', $2, $3, $4, '张三', 300000, 100000, 100, 1780100000, 1780103600, 1780103600, 2026, 0)",
    )
    .bind(paid)
    .bind(instrument)
    .bind(unit_a)
    .bind(buyer_unit)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let approved: i64 = sqlx::query_scalar(
        "INSERT INTO redemptions (managing_unit_id, status, total_fen, created_by, created_at) VALUES ($1, 'approved', 100000, 1, 0) RETURNING id",
    )
    .bind(unit_a)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO redemption_items (redemption_id, booking_id, voucher_fen) VALUES ($1, $2, 100000)",
    )
    .bind(approved)
    .bind(paid)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let settlement = created(
        app,
        &bureau,
        "/api/v1/subsidy-settlements",
        json!({"year": 2026}),
    )
    .await;
    let expert_user = scalar(
        app,
        "SELECT id FROM users WHERE username = 'sec_expert' AND id > $1",
        0,
    )
    .await;
    let expert: i64 = sqlx::query_scalar(
        "INSERT INTO experts (user_id, name, unit_name, title, fields, status, certification_status, created_at, updated_at) \
         VALUES ($1, '王专家', '许昌大学', '正高级', '材料科学', '在库', 'certified', 0, 0) RETURNING id",
    )
    .bind(expert_user)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let role: i64 = sqlx::query_scalar(
        "INSERT INTO roles (key, name, description, builtin, created_at) VALUES ('sec_custom', '数据专员', '', 0, 0) RETURNING id",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let mgr_a_id = scalar(
        app,
        "SELECT id FROM users WHERE username = 'sec_mgr_a' AND id > $1",
        0,
    )
    .await;
    let notification: i64 = sqlx::query_scalar(
        "INSERT INTO notifications (user_id, kind, title, created_at) VALUES ($1, 'test', '测试通知', 0) RETURNING id",
    )
    .bind(mgr_a_id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let mail: i64 = sqlx::query_scalar(
        "INSERT INTO mail_outbox (to_addr, to_user_id, kind, subject, body_text, body_html, status, next_attempt_at, created_at) \
         VALUES ('sec_mgr_a@test.example', $1, 'test', '测试', '正文', '<p>正文</p>', 'failed', 0, 0) RETURNING id",
    )
    .bind(mgr_a_id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();

    // A photo of the instrument, uploaded through the console.
    let browser = app.browser_login("sec_mgr_a").await;
    let (_, html) = app
        .get_page(&browser, &format!("/console/instruments/{instrument}"))
        .await;
    let csrf = csrf_from(&html).unwrap_or_default();
    let png = crate::uploads::png(0);
    let (ct, body) = multipart(&[("csrf_token", &csrf)], &[("photo", "照片.png", &png)]);
    let res = browser
        .post(app.url(&format!("/console/instruments/{instrument}/photos")))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(
        res.status().as_u16() < 400,
        "photo upload: {}",
        res.status()
    );
    let upload: String = sqlx::query_scalar("SELECT stored_name FROM uploads ORDER BY id LIMIT 1")
        .fetch_one(&app.db.pool)
        .await
        .expect("an uploaded photo");

    let bureau_id = scalar(
        app,
        "SELECT id FROM users WHERE username = 'sec_bureau' AND id > $1",
        0,
    )
    .await;
    let mut conn = app.db.acquire().await.unwrap();
    let email_token =
        labshare::email_actions::issue(&mut conn, task, bureau_id, "approve", 0, app.now())
            .await
            .unwrap();
    drop(conn);
    let buyer_id = scalar(
        app,
        "SELECT id FROM users WHERE username = 'sec_buyer' AND id > $1",
        0,
    )
    .await;
    let calendar_token = labshare::feeds::regenerate(&app.db, buyer_id, app.now())
        .await
        .unwrap();
    let consultation = created(
        app,
        &buyer,
        "/api/v1/consultations",
        json!({"field": "环境检测", "title": "土壤重金属检测选什么仪器", "question": "厂区土壤中的铅、镉应该怎么检测？", "unit_id": buyer_unit}),
    )
    .await;
    let interest = created(
        app,
        &buyer,
        &format!("/api/v1/achievements/{achievement}/interest"),
        json!({"unit_id": buyer_unit, "message": "希望以技术许可方式合作"}),
    )
    .await;

    Fixture {
        unit_a,
        instrument,
        platform,
        service,
        achievement,
        news: articles[0],
        notice: articles[1],
        policy: articles[2],
        booking,
        redemption,
        redemption_file,
        settlement,
        evaluation,
        task,
        instance,
        expert,
        role,
        bystander,
        notification,
        mail,
        upload,
        email_token,
        calendar_token,
        consultation,
        interest,
    }
}

/// One actor's credentials: a bearer token for the API, a signed-in browser and its CSRF
/// token for pages (for the anonymous actor: none, a fresh browser and its token).
struct Caller {
    token: Option<String>,
    browser: reqwest::Client,
    csrf: String,
}

async fn caller(app: &TestApp, username: Option<&str>) -> Caller {
    let (token, browser, page) = match username {
        Some(u) => (
            Some(app.token(u).await),
            app.browser_login(u).await,
            "/console/password",
        ),
        None => (None, new_client(), "/login"),
    };
    let (_, html) = app.get_page(&browser, page).await;
    let csrf = csrf_from(&html).expect("a CSRF token on the form page");
    Caller {
        token,
        browser,
        csrf,
    }
}

/// Page forms and API routes that take multipart bodies (uploads).
fn is_multipart(path: &str) -> bool {
    [
        "/console/redemptions",
        "/console/redemptions/{id}/files",
        "/console/instruments/import",
        "/console/instruments/{id}/photos",
        "/console/content/{id}/attachments",
        "/console/rules",
        "/console/bookings/{id}/report",
        "/api/v1/redemptions/{id}/files",
        "/api/v1/bookings/{id}/report",
    ]
    .contains(&path)
}

/// A JSON body for the API routes whose handlers read the body before the permission (ids
/// that name nothing), `{}` for the rest.
fn api_body(path: &str) -> Value {
    let none = 999_999;
    match path {
        "/api/v1/evaluations" | "/api/v1/voucher-applications" => {
            json!({"unit_id": none, "year": 2024})
        }
        "/api/v1/testing-orders" => {
            json!({"service_id": none, "unit_id": none, "instrument_id": none})
        }
        "/api/v1/bookings" => json!({"instrument_id": none, "unit_id": none,
                                     "start": "2030-01-07 09:00", "end": "2030-01-07 10:00"}),
        "/api/v1/subsidy-settlements" => json!({"year": 2000}),
        "/api/v1/policy" => json!({"yaml": ""}),
        "/api/v1/redemptions" => json!({"unit_id": none, "booking_ids": []}),
        // Bodies that pass the extractor and the handler's checks of the body, so the
        // answer is the handler's decision about who asks.
        "/api/v1/evaluations/{id}/experts" => json!({"expert_ids": [none]}),
        "/api/v1/evaluations/{id}/scores" => json!({"scores": {"usage": "20", "sharing": "20",
            "results": "15", "satisfaction": "10", "management": "10"}, "comment": "矩阵测试"}),
        "/api/v1/evaluations/{id}/report" => {
            json!({"self_report": "本年度仪器共享服务情况良好，开放机时与服务收入均有增长。"})
        }
        "/api/v1/bookings/{id}/quote" => json!({"price": "100.00"}),
        "/api/v1/bookings/{id}/cancel" => json!({"reason": "矩阵测试"}),
        "/api/v1/bookings/{id}/rating" => json!({"rating": "非常满意"}),
        "/api/v1/units/{id}/grades/{year}" => json!({"grade": "good", "reason": "矩阵测试"}),
        "/api/v1/subsidy-settlements/{id}/objection" => json!({"reason": "矩阵测试"}),
        _ => json!({}),
    }
}

/// Fields for the page forms whose handlers check the form before who asks, so the answer
/// is the handler's decision about the caller.
fn page_fields(path: &str) -> &'static [(&'static str, &'static str)] {
    match path {
        "/console/bookings/{id}/{action}" => &[("reason", "矩阵测试")],
        "/console/evaluations/{id}/scores" => &[
            ("score_usage", "20"),
            ("score_sharing", "20"),
            ("score_results", "15"),
            ("score_satisfaction", "10"),
            ("score_management", "10"),
        ],
        _ => &[],
    }
}

/// Call `method path` (filled as `url`) as `c`; the outcome letter and what was seen.
async fn outcome(
    app: &TestApp,
    method: &Method,
    path: &str,
    url: &str,
    c: &Caller,
) -> (char, String) {
    let api = path.starts_with("/api/");
    let mut req = if api {
        let mut r = app.client.request(method.clone(), app.url(url));
        if let Some(t) = &c.token {
            r = r.bearer_auth(t);
        }
        r
    } else {
        c.browser.request(method.clone(), app.url(url))
    };
    if *method != Method::GET {
        req = if is_multipart(path) {
            let fields: Vec<(&str, &str)> = if api {
                vec![]
            } else {
                vec![("csrf_token", c.csrf.as_str())]
            };
            let mut fields = fields;
            let mut files: Vec<(&str, &str, &[u8])> = vec![];
            if path.ends_with("/redemptions/{id}/files") {
                fields.push(("kind", "invoice"));
                files.push(("file", "发票.pdf", crate::redemptions::PDF));
            }
            if path.ends_with("/bookings/{id}/report") {
                files.push(("report", "检测报告.pdf", crate::redemptions::PDF));
            }
            let (ct, body) = multipart(&fields, &files);
            req.header("content-type", ct).body(body)
        } else if api {
            req.json(&api_body(path))
        } else {
            let mut fields = vec![("csrf_token", c.csrf.as_str())];
            fields.extend_from_slice(page_fields(path));
            req.form(&fields)
        };
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let seen = format!("{status} {location}");
    let letter = match status {
        500.. => '!',
        401 => 'L',
        303 if location.starts_with("/login?next=") => 'L',
        403 => 'F',
        404 => 'N',
        _ => 'A',
    };
    (letter, seen.trim().to_string())
}

#[tokio::test]
async fn every_route_answers_each_actor_as_the_matrix_says() {
    let app = spawn_app_with(&[("LABSHARE_NOW", NOW)]).await;
    let fx = arrange(&app).await;
    let usernames = [
        None,
        Some("sec_root"),
        Some("sec_bureau"),
        Some("sec_mgr_a"),
        Some("sec_mgr_b"),
        Some("sec_expert"),
        Some("sec_buyer"),
    ];
    let mut callers = Vec::new();
    for u in usernames {
        callers.push(caller(&app, u).await);
    }

    let expected: BTreeMap<&str, &str> = EXPECTED.iter().copied().collect();
    assert_eq!(
        expected.len(),
        EXPECTED.len(),
        "a route listed twice in EXPECTED"
    );
    let mut routes: Vec<(Method, String)> = labshare::web::routes::all()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    // GETs first (they see the records as arranged), the session's end last.
    let ends_session = |m: &Method, p: &str| {
        (*m == Method::POST && p == "/logout") || (*m == Method::DELETE && p == "/api/v1/session")
    };
    routes.sort_by_key(|(m, p)| (ends_session(m, p), *m != Method::GET));

    let record = std::env::var("LABSHARE_MATRIX_RECORD").is_ok();
    let mut wrong = Vec::new();
    let mut recorded = Vec::new();
    let mut checked = 0;
    for (method, path) in &routes {
        let key = format!("{method} {path}");
        let url = fx.fill(path);
        let mut got = String::new();
        let mut seen = Vec::new();
        for c in &callers {
            let (letter, s) = outcome(&app, method, path, &url, c).await;
            got.push(letter);
            seen.push(s);
            checked += 1;
        }
        recorded.push(format!("    (\"{key}\", \"{got}\"),"));
        if record {
            eprintln!("{key} ({url}): {}", seen.join(", "));
        }
        let want = expected.get(key.as_str()).copied();
        if want != Some(got.as_str()) || got.contains('!') {
            let detail: Vec<String> = ACTORS
                .iter()
                .zip(&seen)
                .map(|(a, s)| format!("{a}: {s}"))
                .collect();
            wrong.push(format!(
                "{key} ({url}): expected {}, got {got} [{}]",
                want.unwrap_or("no entry"),
                detail.join(", ")
            ));
        }
    }
    if record {
        println!("{}", recorded.join("\n"));
    }
    // The same routes with parameters that name nothing (an id, a key, a token): never a 5xx.
    let mut missing = 0;
    for (method, path) in routes.iter().filter(|(_, p)| p.contains('{')) {
        let url = path
            .split('/')
            .map(|s| match s {
                "{year}" => "2026",
                "{action}" => "cancel",
                _ if s.starts_with('{') => "999999",
                _ => s,
            })
            .collect::<Vec<_>>()
            .join("/");
        for (actor, c) in ACTORS.iter().zip(&callers) {
            let (letter, seen) = outcome(&app, method, path, &url, c).await;
            if letter == '!' {
                wrong.push(format!("{method} {url} as {actor}: {seen}"));
            }
            missing += 1;
        }
    }
    let listed: Vec<String> = routes.iter().map(|(m, p)| format!("{m} {p}")).collect();
    let stale: Vec<&&str> = expected
        .keys()
        .filter(|k| !listed.iter().any(|l| l == **k))
        .collect();
    assert!(
        stale.is_empty(),
        "entries for routes that no longer exist: {stale:?}"
    );
    assert!(
        wrong.is_empty(),
        "{} of {} routes differ:\n{}",
        wrong.len(),
        routes.len(),
        wrong.join("\n")
    );
    assert_eq!(checked, routes.len() * ACTORS.len());
    println!(
        "role × route matrix: {} routes × {} actors = {checked} calls, \
         and {missing} calls with parameters that name nothing",
        routes.len(),
        ACTORS.len()
    );
}
