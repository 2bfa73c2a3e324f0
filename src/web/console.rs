//! The console (后台): the signed-in area. Its sidebar comes from the user's permissions;
//! every handler checks the permission it needs on the server.

use axum::{extract::State, http::StatusCode, response::IntoResponse};
use serde::Deserialize;

use super::{
    AppState,
    extract::{CsrfForm, PagePath, PageQuery},
    page::{Page, PageResult, redirect_with_flash},
    routes::{Access, Route},
    session::SignedIn,
};
use crate::{
    auth::{self, Permission, builtin_role},
    error::{AppError, FieldErrors, Result},
    store::Db,
    units::{self, ENTERPRISE_TYPES, KINDS, NATURES, NewUnit},
};

/// Console pages: the dashboard, units, users and roles.
pub fn routes() -> Vec<Route> {
    use Permission::*;
    vec![
        Route::get("/console", ConsoleAccess, super::dashboard::dashboard).nav_for(
            "工作台",
            10,
            Access::SignedIn,
        ),
        Route::get("/console/units", UnitManage, my_units).nav("我的单位", 20),
        Route::post("/console/units", UnitManage, create_unit),
        Route::get("/console/units/new", UnitManage, new_unit_page),
        // Reviewers see other units too; the handler decides per unit.
        Route::get("/console/units/{id}", Access::SignedIn, unit_page),
        Route::post("/console/units/{id}", UnitManage, update_unit),
        Route::post("/console/units/{id}/members", UnitManage, add_member),
        Route::get("/console/users", UserManage, users_page).nav("用户管理", 250),
        Route::post("/console/users/{id}/roles", UserManage, set_user_roles),
        Route::get("/console/roles", RoleManage, roles_page).nav("角色与权限", 260),
        Route::post("/console/roles", RoleManage, create_role),
        Route::get("/console/roles/new", RoleManage, new_role_page),
        Route::get("/console/roles/{id}", RoleManage, role_page),
        Route::post("/console/roles/{id}", RoleManage, update_role),
        Route::post("/console/roles/{id}/delete", RoleManage, delete_role),
    ]
}

// ---- units -------------------------------------------------------------------------------

fn unit_form_options() -> minijinja::Value {
    crate::ctx! { kinds => KINDS, enterprise_types => ENTERPRISE_TYPES, natures => NATURES }
}

async fn my_units(State(state): State<AppState>, SignedIn(user): SignedIn) -> PageResult {
    user.require(Permission::UnitManage)?;
    let units = units::for_user(&state.db, user.id).await?;
    let invitations = units::invitations::pending_for_user(&state.db, user.id).await?;
    Ok(Page::new(
        "console/units.html",
        crate::ctx! { units => units, invitations => invitations },
    )
    .into_response())
}

async fn new_unit_page(SignedIn(user): SignedIn) -> PageResult {
    user.require(Permission::UnitManage)?;
    Ok(Page::new(
        "console/unit_new.html",
        crate::ctx! { form => crate::ctx!{ kind => if user.has_role("unit_manager") { "managing" } else { "user" } },
                   errors => crate::ctx!{}, options => unit_form_options() },
    )
    .into_response())
}

async fn create_unit(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    CsrfForm(form): CsrfForm<NewUnit>,
) -> PageResult {
    user.require(Permission::UnitManage)?;
    match units::create(&state.db, form.clone(), user.id, state.now()).await {
        Ok(id) => Ok(redirect_with_flash(
            &format!("/console/units/{id}"),
            "单位信息已保存（未提交认证）",
        )),
        Err(AppError::Validation { fields, .. }) => Ok(Page::new(
            "console/unit_new.html",
            crate::ctx! { form => form, errors => fields, options => unit_form_options() },
        )
        .with_status(StatusCode::UNPROCESSABLE_ENTITY)
        .into_response()),
        Err(e) => Err(e.into()),
    }
}

/// A unit page's open invitations (for its managers) and membership history (its members).
async fn membership_view(
    db: &Db,
    user: &crate::auth::CurrentUser,
    id: i64,
) -> Result<(Vec<units::invitations::Invitation>, Vec<serde_json::Value>)> {
    let invitations = if user.acts_for(id, true) {
        units::invitations::pending_for_unit(db, id).await?
    } else {
        Vec::new()
    };
    let history = if user.acts_for(id, false) || user.can(Permission::UnitReview) {
        units::invitations::history(db, id)
            .await?
            .into_iter()
            .map(|l| {
                serde_json::json!({"action": units::invitations::action_label(&l.action),
                    "role": units::invitations::role_label(&l.role), "user": l.user_name,
                    "actor": l.actor_name, "at": crate::clock::display(l.at)})
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok((invitations, history))
}

/// Load a unit the user may see in the console: members, or unit reviewers.
async fn visible_unit(db: &Db, user: &crate::auth::CurrentUser, id: i64) -> Result<units::Unit> {
    let unit = units::get(db, id).await?;
    if !(user.acts_for(id, false) || user.can(Permission::UnitReview)) {
        return Err(AppError::Forbidden {
            code: "not_unit_member",
        });
    }
    Ok(unit)
}

async fn unit_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    let unit = visible_unit(&state.db, &user, id).await?;
    let members = units::members(&state.db, id).await?;
    let (invitations, history) = membership_view(&state.db, &user, id).await?;
    Ok(Page::new(
        "console/unit.html",
        crate::ctx! { unit => unit, members => members, can_manage => user.acts_for(id, true),
        is_member => user.acts_for(id, false), invitations => invitations, history => history,
        errors => crate::ctx!{}, form => crate::ctx!{} },
    )
    .into_response())
}

async fn update_unit(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(form): CsrfForm<units::ContactUpdate>,
) -> PageResult {
    user.require(Permission::UnitManage)?;
    let unit = visible_unit(&state.db, &user, id).await?;
    user.require_for(Permission::UnitManage, id)?;
    match units::update_contact(&state.db, id, form.clone(), state.now()).await {
        Ok(()) => Ok(redirect_with_flash(
            &format!("/console/units/{id}"),
            "联系信息已更新",
        )),
        Err(AppError::Validation { fields, .. }) => {
            let members = units::members(&state.db, id).await?;
            let (invitations, history) = membership_view(&state.db, &user, id).await?;
            Ok(Page::new(
                "console/unit.html",
                crate::ctx! { unit => unit, members => members, can_manage => true, errors => fields,
                           is_member => true, invitations => invitations, history => history,
                           form => crate::ctx!{ contact_name => form.contact_name, contact_mobile => form.contact_mobile } },
            )
            .with_status(StatusCode::UNPROCESSABLE_ENTITY)
            .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct MemberForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
}

/// 邀请成员: an invitation the invitee accepts or declines; nobody is added directly.
async fn add_member(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(form): CsrfForm<MemberForm>,
) -> PageResult {
    user.require(Permission::UnitManage)?;
    let back = format!("/console/units/{id}");
    let role = if form.role == "manager" {
        "manager"
    } else {
        "member"
    };
    match units::invitations::invite(&state.app, &user, id, &form.username, role).await {
        Ok(inv) => Ok(redirect_with_flash(
            &back,
            &format!("已向“{}”发出邀请，对方接受后成为本单位成员", inv.username),
        )),
        Err(AppError::Validation { fields, message }) => Ok(redirect_with_flash(
            &back,
            fields.values().next().unwrap_or(&message),
        )),
        Err(e @ AppError::Conflict { .. }) => Ok(redirect_with_flash(&back, &e.to_string())),
        Err(e) => Err(e.into()),
    }
}

// ---- users and roles ---------------------------------------------------------------------

fn permission_options() -> Vec<serde_json::Value> {
    Permission::ALL
        .iter()
        .map(|p| serde_json::json!({"key": p.key(), "label": p.label()}))
        .collect()
}

#[derive(Deserialize)]
struct UsersQuery {
    #[serde(default)]
    q: String,
    #[serde(default = "one")]
    page: i64,
}

fn one() -> i64 {
    1
}

const PER_PAGE: i64 = 20;

async fn users_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PageQuery(q): PageQuery<UsersQuery>,
) -> PageResult {
    user.require(Permission::UserManage)?;
    let page = q.page.clamp(1, 10_000);
    let (total, rows) =
        auth::search_users(&state.db, &q.q, PER_PAGE, (page - 1) * PER_PAGE).await?;
    let mut users = Vec::new();
    for r in rows {
        let role_keys = auth::roles::role_keys(&state.db, r.id).await?;
        users.push(serde_json::json!({
            "id": r.id, "username": r.username,
            "display_name": r.display_name,
            "email": r.email,
            "is_active": r.is_active,
            "created_at": r.created_at,
            "roles": role_keys,
        }));
    }
    let roles = auth::list_roles(&state.db).await?;
    Ok(Page::new(
        "console/users.html",
        crate::ctx! { users => users, roles => roles, total => total, page => page,
        pages => (total + PER_PAGE - 1) / PER_PAGE, query => crate::ctx!{ q => q.q } },
    )
    .into_response())
}

async fn set_user_roles(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(target): PagePath<i64>,
    CsrfForm(form): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    user.require(Permission::UserManage)?;
    let wanted: Vec<String> = form
        .into_iter()
        .filter(|(k, _)| k == "roles")
        .map(|(_, v)| v)
        .collect();
    if target == user.id
        && user.has_role("system_admin")
        && !wanted.iter().any(|r| r == "system_admin")
    {
        return Ok(redirect_with_flash(
            "/console/users",
            "不能移除自己的系统管理员角色",
        ));
    }
    if !auth::user_exists(&state.db, target).await? {
        return Err(AppError::NotFound.into());
    }
    auth::roles::set_user_roles(&state.db, target, &wanted).await?;
    Ok(redirect_with_flash("/console/users", "用户角色已更新"))
}

async fn roles_page(State(state): State<AppState>, SignedIn(user): SignedIn) -> PageResult {
    user.require(Permission::RoleManage)?;
    let roles = auth::list_roles(&state.db).await?;
    Ok(Page::new(
        "console/roles.html",
        crate::ctx! { roles => roles, permissions => permission_options() },
    )
    .into_response())
}

async fn new_role_page(SignedIn(user): SignedIn) -> PageResult {
    user.require(Permission::RoleManage)?;
    Ok(Page::new(
        "console/role_form.html",
        crate::ctx! { role => crate::ctx!{ permissions => Vec::<String>::new() }, permissions => permission_options(),
                   errors => crate::ctx!{}, is_new => true },
    )
    .into_response())
}

/// A custom role as submitted: repeated `permissions` fields.
struct RoleForm {
    key: String,
    name: String,
    description: String,
    permissions: Vec<String>,
}

impl RoleForm {
    fn from_pairs(pairs: Vec<(String, String)>) -> RoleForm {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        RoleForm {
            key: get("key"),
            name: get("name"),
            description: get("description"),
            permissions: pairs
                .iter()
                .filter(|(k, _)| k == "permissions")
                .map(|(_, v)| v.clone())
                .collect(),
        }
    }

    fn validate(&self, is_new: bool) -> FieldErrors {
        let mut errors = FieldErrors::new();
        if is_new {
            let ok = self.key.len() >= 2
                && self.key.len() <= 40
                && self
                    .key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !ok {
                errors.insert(
                    "key".into(),
                    "角色标识为 2–40 位小写字母、数字或下划线".into(),
                );
            } else if builtin_role(&self.key).is_some() {
                errors.insert("key".into(), "不能使用内置角色的标识".into());
            }
        }
        if self.name.is_empty() || self.name.chars().count() > 30 {
            errors.insert("name".into(), "请填写角色名称（不超过 30 字）".into());
        }
        if self.permissions.is_empty() {
            errors.insert("permissions".into(), "请至少选择一项权限".into());
        }
        if self
            .permissions
            .iter()
            .any(|p| Permission::from_key(p).is_none())
        {
            errors.insert("permissions".into(), "包含未知的权限".into());
        }
        errors
    }

    fn context(&self) -> minijinja::Value {
        crate::ctx! { key => self.key, name => self.name, description => self.description,
        permissions => self.permissions }
    }
}

async fn create_role(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    user.require(Permission::RoleManage)?;
    let form = RoleForm::from_pairs(pairs);
    let mut errors = form.validate(true);
    if errors.is_empty() {
        let created = auth::roles::create_role(
            &state.db,
            &form.key,
            &form.name,
            &form.description,
            &form.permissions,
            state.now(),
        )
        .await;
        match created {
            Ok(_) => return Ok(redirect_with_flash("/console/roles", "自定义角色已创建")),
            Err(AppError::Validation { fields, .. }) => errors.extend(fields),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Page::new(
        "console/role_form.html",
        crate::ctx! { role => form.context(), permissions => permission_options(), errors => errors, is_new => true },
    )
    .with_status(StatusCode::UNPROCESSABLE_ENTITY)
    .into_response())
}

async fn role_page(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    user.require(Permission::RoleManage)?;
    let role = auth::roles::find_role(&state.db, id).await?;
    Ok(Page::new(
        "console/role_form.html",
        crate::ctx! { role => role, permissions => permission_options(), errors => crate::ctx!{}, is_new => false },
    )
    .into_response())
}

async fn update_role(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    user.require(Permission::RoleManage)?;
    let role = auth::roles::find_role(&state.db, id).await?;
    if role.builtin {
        return Ok(redirect_with_flash(
            "/console/roles",
            "内置角色的权限由系统维护，不能修改",
        ));
    }
    let mut form = RoleForm::from_pairs(pairs);
    form.key = role.key.clone();
    let errors = form.validate(false);
    if !errors.is_empty() {
        return Ok(Page::new(
            "console/role_form.html",
            crate::ctx! { role => minijinja::context!{ id => id, ..form.context() }, permissions => permission_options(),
                       errors => errors, is_new => false },
        )
        .with_status(StatusCode::UNPROCESSABLE_ENTITY)
        .into_response());
    }
    auth::roles::update_role(
        &state.db,
        id,
        &form.name,
        &form.description,
        &form.permissions,
    )
    .await?;
    Ok(redirect_with_flash("/console/roles", "角色已保存"))
}

async fn delete_role(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    PagePath(id): PagePath<i64>,
    CsrfForm(_): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    user.require(Permission::RoleManage)?;
    let role = auth::roles::find_role(&state.db, id).await?;
    if role.builtin {
        return Ok(redirect_with_flash("/console/roles", "内置角色不能删除"));
    }
    auth::roles::delete_role(&state.db, id).await?;
    Ok(redirect_with_flash(
        "/console/roles",
        &format!("已删除角色“{}”", role.name),
    ))
}
