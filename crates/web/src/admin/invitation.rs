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
    /// An existing account's second factor is an authenticator app (no code to e-mail).
    totp: bool,
    /// A sign-in code has just been e-mailed.
    code_sent: bool,
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
            totp: false,
            code_sent: false,
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
        Ok(inv) => page(&state, &org, token, &inv, false, None, false)
            .await?
            .into_response(),
    })
}

async fn page(
    state: &AppState,
    org: &Organisation,
    token: String,
    inv: &InvitationView,
    app_chosen: bool,
    error: Option<String>,
    code_sent: bool,
) -> Result<InvitationPage, WebError> {
    let totp = staff::find(state.db(), inv.user_id)
        .await?
        .is_some_and(|u| u.uses_totp());
    Ok(InvitationPage {
        org_name: org.name.clone(),
        token,
        name: inv.name.clone(),
        email: inv.email.clone(),
        has_password: inv.has_password,
        totp,
        code_sent,
        refusal: None,
        error,
        app_chosen,
    })
}

/// Someone who already has a PropLink account proves it with their password and their second
/// step: this e-mails them a sign-in code for that.
pub async fn send_code(
    State(state): State<AppState>,
    Extension(org): Extension<Organisation>,
    who: Client,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let ip = who.ip.clone().unwrap_or_default();
    if let Err(m) = login::limit(&state, &[(format!("invitation:ip:{ip}"), PER_IP)]).await? {
        return Err(WebError::TooManyRequests(m));
    }
    let inv = match lookup(&state, &org, &token).await? {
        Err(refusal) => return Ok(refused(&org, refusal)),
        Ok(inv) => inv,
    };
    let user = staff::find(state.db(), inv.user_id)
        .await?
        .ok_or(WebError::NotFound)?;
    if inv.has_password && !user.uses_totp() {
        if let Err(m) = login::limit(
            &state,
            &[(
                format!("resend:account:{}", user.id),
                login::RESEND_PER_ACCOUNT,
            )],
        )
        .await?
        {
            return Err(WebError::TooManyRequests(m));
        }
        staff::issue_code(state.db(), state.code_key(), &user, state.now()).await?;
    }
    Ok(page(&state, &org, token, &inv, false, None, true)
        .await?
        .into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AcceptForm {
    password: String,
    confirm: String,
    second_factor: String,
    /// An existing account's second-factor code (or a backup code).
    code: String,
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
    let again = |error: String| async {
        Ok::<_, WebError>(
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                page(
                    &state,
                    &org,
                    token.clone(),
                    &inv,
                    app_chosen,
                    Some(error),
                    false,
                )
                .await?,
            )
                .into_response(),
        )
    };
    let user = staff::find(state.db(), inv.user_id)
        .await?
        .ok_or(WebError::NotFound)?;
    let now = state.now();
    let mut new_password = None;
    if inv.has_password {
        // Someone who already uses PropLink proves it is them as at sign-in: password and
        // second step (an invitation link alone, or with a password, is not enough).
        if user.locked_at(now) {
            return again(
                "Your account is locked after too many failed attempts. Try again in 15 minutes."
                    .into(),
            )
            .await;
        }
        if !state
            .hasher()
            .verify(
                SecretString::from(form.password),
                user.password_hash.clone(),
            )
            .await
        {
            login::failure(
                &state,
                &user,
                "sign_in_failed",
                "wrong password on an invitation",
                &who,
            )
            .await?;
            return again("That password is not right. Use the password you already sign in to PropLink with, or reset it from the sign-in page.".into()).await;
        }
        match login::check_second_factor(&state, &user, &form.code, now).await? {
            Ok(_) => {}
            Err(message) => {
                login::failure(
                    &state,
                    &user,
                    "second_factor_failed",
                    "wrong code on an invitation",
                    &who,
                )
                .await?;
                return again(message).await;
            }
        }
    } else {
        if let Err(m) = new_password_problem(&form.password, &form.confirm, &inv.email) {
            return again(m).await;
        }
        new_password = Some(
            state
                .hasher()
                .hash(SecretString::from(form.password))
                .await
                .map_err(|e| WebError::Internal(e.to_string()))?,
        );
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
    // A newcomer's password is set with the acceptance, or not at all.
    if let Some(hashed) = &new_password {
        staff::set_password_in(tx.conn(), user.id, hashed, now).await?;
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
