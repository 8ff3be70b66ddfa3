//! Accepting an invitation (`/invitation/<token>` on the organisation's host): a newcomer
//! chooses a password and their second step; someone who already has a PropLink account
//! confirms with their password. Either way the membership becomes active and they are signed
//! in here.

use super::account::issue_backup_codes;
use crate::error::{WebError, current_request_id};
use crate::login::{self, new_password_problem};
use crate::session::{self, Client};
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::extract::{Form, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use proplink_auth::links::{hash_token, new_token};
use proplink_db::access::{self, InvitationRefusal, InvitationView};
use proplink_db::organisation::Organisation;
use proplink_db::rate_limit::Limit;
use proplink_db::{Actor, TenantContext, staff};
use proplink_domain::{ActorKind, Channel};
use secrecy::SecretString;
use serde::Deserialize;

const PER_IP: Limit = Limit {
    max: 30,
    window: time::Duration::minutes(10),
};

#[derive(Template, WebTemplate)]
#[template(path = "admin/invitation.html")]
pub struct InvitationPage {
    org_name: String,
    token: String,
    name: String,
    email: String,
    has_password: bool,
    refusal: Option<String>,
    error: Option<String>,
    app_chosen: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/welcome.html")]
pub struct WelcomePage {
    org_name: String,
    name: String,
    codes: Vec<String>,
    next: &'static str,
}

fn system_ctx(org: &Organisation) -> TenantContext {
    TenantContext {
        org: org.id,
        actor: Actor::system(),
        channel: Channel::Admin,
        request_id: current_request_id(),
    }
}

async fn lookup(
    state: &AppState,
    org: &Organisation,
    token: &str,
) -> Result<Result<InvitationView, InvitationRefusal>, WebError> {
    let Some(hash) = hash_token(token) else {
        return Ok(Err(InvitationRefusal::Unknown));
    };
    let mut tx = state.db().begin(&system_ctx(org)).await?;
    let found = access::find_invitation(&mut tx, &hash, state.now()).await?;
    tx.rollback().await?;
    Ok(found)
}

fn refused(org: &Organisation, refusal: InvitationRefusal) -> Response {
    let status = match refusal {
        InvitationRefusal::Unknown => StatusCode::NOT_FOUND,
        _ => StatusCode::GONE,
    };
    (
        status,
        InvitationPage {
            org_name: org.name.clone(),
            token: String::new(),
            name: String::new(),
            email: String::new(),
            has_password: false,
            refusal: Some(refusal.to_string()),
            error: None,
            app_chosen: false,
        },
    )
        .into_response()
}

pub async fn show(
    State(state): State<AppState>,
    Extension(org): Extension<Organisation>,
    who: Client,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let ip = who.ip.clone().unwrap_or_default();
    if let Err(m) = login::limit(&state, &[(format!("invitation:ip:{ip}"), PER_IP)]).await? {
        return Err(WebError::TooManyRequests(m));
    }
    Ok(match lookup(&state, &org, &token).await? {
        Err(refusal) => refused(&org, refusal),
        Ok(inv) => InvitationPage {
            org_name: org.name.clone(),
            token,
            name: inv.name,
            email: inv.email,
            has_password: inv.has_password,
            refusal: None,
            error: None,
            app_chosen: false,
        }
        .into_response(),
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AcceptForm {
    password: String,
    confirm: String,
    second_factor: String,
}

pub async fn accept(
    State(state): State<AppState>,
    Extension(org): Extension<Organisation>,
    who: Client,
    Path(token): Path<String>,
    Form(form): Form<AcceptForm>,
) -> Result<Response, WebError> {
    let ip = who.ip.clone().unwrap_or_default();
    if let Err(m) = login::limit(&state, &[(format!("invitation:ip:{ip}"), PER_IP)]).await? {
        return Err(WebError::TooManyRequests(m));
    }
    let inv = match lookup(&state, &org, &token).await? {
        Err(refusal) => return Ok(refused(&org, refusal)),
        Ok(inv) => inv,
    };
    let app_chosen = form.second_factor == "app";
    let again = |error: String| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            InvitationPage {
                org_name: org.name.clone(),
                token: token.clone(),
                name: inv.name.clone(),
                email: inv.email.clone(),
                has_password: inv.has_password,
                refusal: None,
                error: Some(error),
                app_chosen,
            },
        )
            .into_response()
    };
    let user = staff::find(state.db(), inv.user_id)
        .await?
        .ok_or(WebError::NotFound)?;
    let now = state.now();
    if inv.has_password {
        // Someone who already uses PropLink proves it is them with their password.
        if user.locked_at(now) {
            return Ok(again(
                "Your account is locked after too many failed attempts. Try again in 15 minutes."
                    .into(),
            ));
        }
        if !state
            .hasher()
            .verify(
                SecretString::from(form.password),
                user.password_hash.clone(),
            )
            .await
        {
            staff::record_failure(state.db(), user.id, now).await?;
            return Ok(again("That password is not right. Use the password you already sign in to PropLink with, or reset it from the sign-in page.".into()));
        }
    } else {
        if let Err(m) = new_password_problem(&form.password, &form.confirm, &inv.email) {
            return Ok(again(m));
        }
        let hashed = state
            .hasher()
            .hash(SecretString::from(form.password))
            .await
            .map_err(|e| WebError::Internal(e.to_string()))?;
        staff::set_password(state.db(), user.id, &hashed, now).await?;
    }
    // Accept and sign in, as the person.
    let ctx = TenantContext {
        actor: Actor {
            id: Some(user.id),
            kind: ActorKind::Staff,
            name: Some(user.name.clone()),
        },
        ..system_ctx(&org)
    };
    let (session_token, session_hash) = new_token();
    let mut tx = state.db().begin(&ctx).await?;
    if !access::accept_invitation(&mut tx, inv.id, now).await? {
        tx.rollback().await?;
        return Ok(refused(&org, InvitationRefusal::Expired));
    }
    access::start_session(
        &mut tx,
        inv.membership_id,
        user.id,
        &session_hash,
        who.ip.as_deref(),
        who.user_agent.as_deref(),
        now,
    )
    .await?;
    access::record_auth_event(
        &mut tx,
        &access::AuthEvent {
            user_id: Some(user.id),
            email: &user.email,
            kind: "invitation_accepted",
            detail: None,
            ip: who.ip.as_deref(),
            user_agent: who.user_agent.as_deref(),
        },
    )
    .await?;
    tx.commit().await?;
    staff::clear_failures(state.db(), user.id).await?;
    // A newcomer gets their backup codes now; their second step is e-mailed codes unless they
    // chose an app, which they set up next.
    let codes = if inv.has_password {
        vec![]
    } else {
        issue_backup_codes(&state, user.id).await?
    };
    let next = if app_chosen && !inv.has_password {
        "/account/security/totp"
    } else {
        "/dashboard"
    };
    let cookie = session::set(
        session::ADMIN_SESSION,
        &session_token,
        None,
        state.settings().tls,
    );
    Ok((
        [(header::SET_COOKIE, cookie)],
        WelcomePage {
            org_name: org.name.clone(),
            name: user.name,
            codes,
            next,
        },
    )
        .into_response())
}
