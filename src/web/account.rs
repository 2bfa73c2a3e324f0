//! Sign-in pages (登录、注册、退出、修改密码). Sessions are renewed on login; `next=` only
//! leads to local paths; failures keep what the user typed (except passwords).

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{
    AppState, ErrorStatus,
    extract::{ClientIp, CsrfForm, PageQuery},
    page::{Page, PageResult, redirect_with_flash, safe_next},
    routes::{Access, Route},
    session::{Auth, SESSION_COOKIE, SignedIn, cookie_attrs, set_cookie},
};
use crate::{
    auth::{self, NewUser},
    error::AppError,
};

/// Sign-in, registration, sign-out and the password page.
pub fn routes() -> Vec<Route> {
    let (p, s) = (Access::Public, Access::SignedIn);
    vec![
        Route::get("/login", p, login_page),
        Route::post("/login", p, login),
        Route::get("/register", p, register_page),
        Route::post("/register", p, register),
        Route::post("/logout", p, logout),
        Route::get("/console/password", s, password_page).nav("修改密码", 290),
        Route::post("/console/password", s, change_password),
    ]
}

#[derive(Deserialize, Default)]
struct NextQuery {
    next: Option<String>,
}

async fn login_page(auth: Auth, PageQuery(q): PageQuery<NextQuery>) -> Response {
    if auth.user.is_some() && auth.via == super::session::Via::Cookie {
        return axum::response::Redirect::to(&safe_next(q.next.as_deref())).into_response();
    }
    Page::new(
        "auth/login.html",
        crate::ctx! { next => q.next, form => crate::ctx!{}, errors => crate::ctx!{} },
    )
    .into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    auth: Auth,
    ClientIp(ip): ClientIp,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> PageResult {
    let now = state.now();
    let show = |message: String, status: StatusCode| {
        Page::new(
            "auth/login.html",
            crate::ctx! { next => form.next, form => crate::ctx!{ username => form.username }, error => message },
        )
        .with_status(status)
        .into_response()
    };
    if form.username.trim().is_empty() || form.password.is_empty() {
        return Ok(show(
            "请输入用户名和密码".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    }
    let user_id =
        match auth::authenticate(&state.db, &form.username, &form.password, &ip, now).await {
            Ok(id) => id,
            Err(e @ (AppError::InvalidCredentials | AppError::TooManyRequests { .. })) => {
                return Ok(show(e.to_string(), e.status()));
            }
            Err(e) => return Err(e.into()),
        };
    // Renew: drop the old session (if any) and issue a fresh token.
    if let Some(old) = &auth.token
        && auth.via == super::session::Via::Cookie
    {
        auth::delete_session(&state.db, old).await?;
    }
    let (token, _csrf) = auth::create_session(&state.db, user_id, now).await?;
    let mut res = redirect_with_flash(&safe_next(form.next.as_deref()), "登录成功，欢迎回来");
    set_cookie(
        &mut res,
        &format!("{SESSION_COOKIE}={token}{}", cookie_attrs(&state)),
    );
    Ok(res)
}

async fn register_page() -> Response {
    Page::new(
        "auth/register.html",
        crate::ctx! { form => crate::ctx!{}, errors => crate::ctx!{} },
    )
    .into_response()
}

#[derive(Deserialize, Default)]
struct RegisterForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
}

async fn register(
    State(state): State<AppState>,
    CsrfForm(form): CsrfForm<RegisterForm>,
) -> PageResult {
    let now = state.now();
    let kept = crate::ctx! {
        username => form.username, display_name => form.display_name,
        email => form.email, phone => form.phone,
    };
    let new = NewUser {
        username: form.username.clone(),
        password: form.password.clone(),
        display_name: form.display_name.clone(),
        email: Some(form.email.clone()),
        phone: Some(form.phone.clone()),
    };
    let result = if form.password != form.password_confirm {
        Err(AppError::field("password_confirm", "两次输入的密码不一致"))
    } else {
        auth::create_user(&state.db, new, &["user"], now).await
    };
    match result {
        Ok(user_id) => {
            let (token, _) = auth::create_session(&state.db, user_id, now).await?;
            let mut res = redirect_with_flash(
                "/console",
                "注册成功。请在“我的单位”中登记并提交单位认证，认证通过后即可预约仪器。",
            );
            set_cookie(
                &mut res,
                &format!("{SESSION_COOKIE}={token}{}", cookie_attrs(&state)),
            );
            Ok(res)
        }
        Err(e @ (AppError::Validation { .. } | AppError::Conflict { .. })) => {
            let errors = match &e {
                AppError::Validation { fields, .. } => fields.clone(),
                _ => [("username".to_string(), e.to_string())].into(),
            };
            Ok(Page::new(
                "auth/register.html",
                crate::ctx! { form => kept, errors => errors },
            )
            .with_status(StatusCode::UNPROCESSABLE_ENTITY)
            .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct Empty {}

async fn logout(
    State(state): State<AppState>,
    auth: Auth,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    if let Some(token) = &auth.token
        && auth.via == super::session::Via::Cookie
    {
        auth::delete_session(&state.db, token).await?;
    }
    let mut res = redirect_with_flash("/", "您已安全退出");
    set_cookie(
        &mut res,
        &format!("{SESSION_COOKIE}=; Max-Age=0{}", cookie_attrs(&state)),
    );
    Ok(res)
}

async fn password_page(SignedIn(_): SignedIn) -> Response {
    Page::new(
        "console/password.html",
        crate::ctx! { errors => crate::ctx!{} },
    )
    .into_response()
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password_confirm: String,
}

async fn change_password(
    State(state): State<AppState>,
    auth: Auth,
    SignedIn(user): SignedIn,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> PageResult {
    let result = if form.new_password != form.new_password_confirm {
        Err(AppError::field(
            "new_password_confirm",
            "两次输入的新密码不一致",
        ))
    } else {
        auth::change_password(
            &state.db,
            user.id,
            &form.current_password,
            &form.new_password,
            auth.token.as_deref(),
            state.now(),
        )
        .await
    };
    match result {
        Ok(()) => Ok(redirect_with_flash(
            "/console",
            "密码已修改，其他设备上的登录已失效",
        )),
        Err(AppError::Validation { fields, .. }) => Ok(Page::new(
            "console/password.html",
            crate::ctx! { errors => fields },
        )
        .with_status(StatusCode::UNPROCESSABLE_ENTITY)
        .into_response()),
        Err(e) => Err(e.into()),
    }
}
