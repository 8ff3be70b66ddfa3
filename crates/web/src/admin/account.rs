//! The signed-in person's own account on an organisation's host: arriving from the login host
//! (the hand-off), switching organisation, signing out, and security settings (second factor,
//! backup codes, remembered devices, password, sign out everywhere).

use super::{Member, Shell};
use crate::error::WebError;
use crate::login::{self, event_for, new_password_problem};
use crate::session::{self, Client};
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::extract::{Form, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use proplink_auth::codes;
use proplink_auth::links::{hash_token, new_token};
use proplink_auth::totp;
use proplink_db::access::{self, OrgChoice};
use proplink_db::organisation::Organisation;
use proplink_db::staff;
use proplink_db::{Actor, TenantContext};
use proplink_domain::Channel;
use proplink_domain::dates::{long_date_time, uk_offset};
use secrecy::SecretString;
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

fn uk_time(t: OffsetDateTime) -> String {
    long_date_time(t, uk_offset(t))
}

/// Makes ten fresh backup codes for the person (replacing any earlier ones) and returns them
/// to be shown once.
pub(crate) async fn issue_backup_codes(
    state: &AppState,
    user_id: Uuid,
) -> Result<Vec<String>, WebError> {
    let fresh = codes::new_backup_codes();
    let digests: Vec<String> = fresh
        .iter()
        .map(|c| {
            state
                .code_key()
                .digest("backup", &user_id.to_string(), &codes::normalise(c))
        })
        .collect();
    staff::replace_backup_codes(state.db(), user_id, &digests).await?;
    Ok(fresh)
}

// ---------------------------------------------------------------------------------------------
// Arriving and leaving

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct HandoffQuery {
    code: String,
}

/// Exchanges a one-time hand-off code (from the login host or "switch organisation") for a
/// session on this host.
pub async fn handoff(
    State(state): State<AppState>,
    Extension(org): Extension<Organisation>,
    who: Client,
    Query(q): Query<HandoffQuery>,
) -> Result<Response, WebError> {
    let ip = who.ip.clone().unwrap_or_default();
    if let Err(m) = login::limit(
        &state,
        &[(
            format!("handoff:ip:{ip}"),
            proplink_db::rate_limit::Limit {
                max: 30,
                window: time::Duration::minutes(10),
            },
        )],
    )
    .await?
    {
        return Err(WebError::TooManyRequests(m));
    }
    let again =
        || Redirect::to(&state.settings().url(&state.settings().login_host(), "/")).into_response();
    let Some(code_hash) = hash_token(&q.code) else {
        return Ok(again());
    };
    let now = state.now();
    let ctx = TenantContext {
        org: org.id,
        actor: Actor::system(),
        channel: Channel::Admin,
        request_id: crate::error::current_request_id(),
    };
    let mut tx = state.db().begin(&ctx).await?;
    let Some((membership_id, user_id)) = access::redeem_handoff(&mut tx, &code_hash, now).await?
    else {
        tx.rollback().await?;
        return Ok(again());
    };
    let Some(member) = access::member(&mut tx, membership_id).await? else {
        tx.rollback().await?;
        return Ok(again());
    };
    tx.commit().await?;
    // The session is written as the person (its creation is their sign-in in the audit log).
    let ctx = TenantContext {
        actor: Actor {
            id: Some(user_id),
            kind: proplink_domain::ActorKind::Staff,
            name: Some(member.name.clone()),
        },
        ..ctx
    };
    let (token, hash) = new_token();
    let mut tx = state.db().begin(&ctx).await?;
    access::start_session(
        &mut tx,
        membership_id,
        user_id,
        &hash,
        who.ip.as_deref(),
        who.user_agent.as_deref(),
        now,
    )
    .await?;
    access::record_auth_event(
        &mut tx,
        &access::AuthEvent {
            user_id: Some(user_id),
            email: &member.email,
            kind: "signed_in",
            detail: None,
            ip: who.ip.as_deref(),
            user_agent: who.user_agent.as_deref(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((
        [(
            header::SET_COOKIE,
            session::set(session::ADMIN_SESSION, &token, None, state.settings().tls),
        )],
        Redirect::to("/dashboard"),
    )
        .into_response())
}

/// Signs out of this organisation and of the login host, so the picker is not left open in this
/// browser (other organisations' sessions, on their own hosts, stay until they time out or
/// "sign out everywhere"). The login host's cookie cannot be reached from here, so the person's
/// login-host sessions are ended on the server.
pub async fn sign_out(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    who: Client,
) -> Result<Response, WebError> {
    let now = state.now();
    let mut tx = state.db().begin(&member.ctx()).await?;
    access::end_session(&mut tx, member.session_id, "signed_out", now).await?;
    access::record_auth_event(
        &mut tx,
        &access::AuthEvent {
            user_id: Some(member.user_id),
            email: &member.email,
            kind: "signed_out",
            detail: None,
            ip: who.ip.as_deref(),
            user_agent: who.user_agent.as_deref(),
        },
    )
    .await?;
    tx.commit().await?;
    staff::end_logins_of(state.db(), member.user_id, now).await?;
    Ok((
        [(
            header::SET_COOKIE,
            session::clear(session::ADMIN_SESSION, state.settings().tls),
        )],
        Redirect::to(
            &state
                .settings()
                .url(&state.settings().login_host(), "/?notice=signed-out"),
        ),
    )
        .into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/organisations.html")]
pub struct OrganisationsPage {
    shell: Shell,
    current: String,
    orgs: Vec<OrgChoice>,
}

/// Switch organisation: the person's other organisations, without the password again.
pub async fn organisations(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
) -> Result<OrganisationsPage, WebError> {
    let orgs = access::organisations_of(state.db(), member.user_id).await?;
    Ok(OrganisationsPage {
        shell: Shell::new(&member, ""),
        current: member.org.slug.clone(),
        orgs,
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SwitchForm {
    org: String,
}

pub async fn switch(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Form(form): Form<SwitchForm>,
) -> Result<Response, WebError> {
    let orgs = access::organisations_of(state.db(), member.user_id).await?;
    let Some(choice) = orgs.into_iter().find(|o| o.slug == form.org) else {
        return Err(WebError::NotFound);
    };
    let url = login::handoff_url(&state, &member.user_id, &member.name, &choice).await?;
    Ok(Redirect::to(&url).into_response())
}

// ---------------------------------------------------------------------------------------------
// Security settings

const REAUTH_PER_ACCOUNT: proplink_db::rate_limit::Limit = proplink_db::rate_limit::Limit {
    max: 10,
    window: time::Duration::minutes(15),
};

/// Changing how someone signs in needs their current password, not just an open session (a
/// session left open on a shared computer must not be enough to take the account over).
/// Wrong passwords count towards the lock like any other; tries are rate-limited.
async fn confirm_password(
    state: &AppState,
    member: &Member,
    who: &Client,
    typed: &str,
) -> Result<Result<staff::StaffUser, String>, WebError> {
    if let Err(m) = login::limit(
        state,
        &[(
            format!("reauth:account:{}", member.user_id),
            REAUTH_PER_ACCOUNT,
        )],
    )
    .await?
    {
        return Ok(Err(m));
    }
    let user = staff::find(state.db(), member.user_id)
        .await?
        .ok_or(WebError::NotFound)?;
    if user.locked_at(state.now()) {
        return Ok(Err(
            "Your account is locked after too many failed attempts. Try again in 15 minutes."
                .into(),
        ));
    }
    if !state
        .hasher()
        .verify(
            SecretString::from(typed.to_owned()),
            user.password_hash.clone(),
        )
        .await
    {
        login::failure(
            state,
            &user,
            "password_check_failed",
            "security settings",
            who,
        )
        .await?;
        return Ok(Err("Your current password is not right.".into()));
    }
    Ok(Ok(user))
}

pub struct DeviceRow {
    id: Uuid,
    label: String,
    ip: String,
    last_seen: String,
    state: &'static str,
    live: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/security.html")]
pub struct SecurityPage {
    shell: Shell,
    email: String,
    totp: bool,
    backup_left: i64,
    devices: Vec<DeviceRow>,
    new_codes: Vec<String>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SecurityQuery {
    done: String,
}

fn done_message(key: &str) -> Option<String> {
    Some(
        match key {
            "totp" => "Your authenticator app is now your second sign-in step.",
            "email" => "Sign-in codes will now come to you by e-mail.",
            "device" => "That device will be asked for the second step again.",
            _ => return None,
        }
        .to_owned(),
    )
}

async fn security_page(
    state: &AppState,
    member: &Member,
    flash: Option<String>,
    new_codes: Vec<String>,
    error: Option<String>,
) -> Result<SecurityPage, WebError> {
    let user = staff::find(state.db(), member.user_id)
        .await?
        .ok_or(WebError::NotFound)?;
    let now = state.now();
    let devices = staff::devices(state.db(), member.user_id)
        .await?
        .into_iter()
        .map(|d| {
            let (state, live) = match (d.revoked_at, d.expires_at > now) {
                (Some(_), _) => ("Revoked", false),
                (None, false) => ("Expired", false),
                (None, true) => ("Remembered", true),
            };
            DeviceRow {
                id: d.id,
                label: d.label,
                ip: d.ip.unwrap_or_else(|| "unknown".into()),
                last_seen: uk_time(d.last_seen_at),
                state,
                live,
            }
        })
        .collect();
    Ok(SecurityPage {
        shell: Shell::new(member, "").with_flash(flash),
        email: user.email.clone(),
        totp: user.uses_totp(),
        backup_left: staff::unused_backup_codes(state.db(), member.user_id).await?,
        devices,
        new_codes,
        error,
    })
}

pub async fn security(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Query(q): Query<SecurityQuery>,
) -> Result<SecurityPage, WebError> {
    security_page(&state, &member, done_message(&q.done), vec![], None).await
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/totp.html")]
pub struct TotpPage {
    shell: Shell,
    secret: String,
    uri: String,
    qr_svg: String,
    error: Option<String>,
}

fn totp_page(member: &Member, secret: String, error: Option<String>) -> Result<TotpPage, WebError> {
    let uri =
        totp::otpauth_uri(&secret, &member.email).map_err(|e| WebError::Internal(e.to_string()))?;
    let qr_svg = totp::qr_svg(&uri).map_err(|e| WebError::Internal(e.to_string()))?;
    Ok(TotpPage {
        shell: Shell::new(member, ""),
        secret,
        uri,
        qr_svg,
        error,
    })
}

/// Enrolment: a new secret, shown as a QR code and as text. Nothing is stored until the first
/// code from the app is checked.
pub async fn totp_form(Extension(member): Extension<Member>) -> Result<TotpPage, WebError> {
    totp_page(&member, totp::new_secret(), None)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TotpForm {
    secret: String,
    code: String,
    current: String,
}

pub async fn totp_enable(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    who: Client,
    Form(form): Form<TotpForm>,
) -> Result<Response, WebError> {
    let secret = form.secret.trim().to_owned();
    let valid_secret = secret.len() >= 16
        && secret.len() <= 128
        && secret
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b));
    if !valid_secret {
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            totp_page(
                &member,
                totp::new_secret(),
                Some("The set-up expired. Scan this new code with your app.".into()),
            )?,
        )
            .into_response());
    }
    if let Err(m) = confirm_password(&state, &member, &who, &form.current).await? {
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            totp_page(&member, secret, Some(m))?,
        )
            .into_response());
    }
    let unix = u64::try_from(state.now().unix_timestamp()).unwrap_or(0);
    let step = match totp::verify(&secret, &form.code, unix, None) {
        Ok(step) => step,
        Err(_) => {
            return Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                totp_page(
                    &member,
                    secret,
                    Some("That code is not right. Enter the 6-digit code your app shows now (check the time on your phone is set automatically).".into()),
                )?,
            )
                .into_response());
        }
    };
    staff::use_totp(state.db(), member.user_id, &secret, step).await?;
    event_for(
        &state,
        member.user_id,
        &member.email,
        &member.name,
        "second_factor_changed",
        Some("authenticator app"),
        who.ip.as_deref(),
        who.user_agent.as_deref(),
    )
    .await?;
    Ok(Redirect::to("/account/security?done=totp").into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CurrentPasswordForm {
    current: String,
}

pub async fn use_email_codes(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    who: Client,
    Form(form): Form<CurrentPasswordForm>,
) -> Result<Response, WebError> {
    if let Err(m) = confirm_password(&state, &member, &who, &form.current).await? {
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            security_page(&state, &member, None, vec![], Some(m)).await?,
        )
            .into_response());
    }
    staff::use_email_codes(state.db(), member.user_id).await?;
    event_for(
        &state,
        member.user_id,
        &member.email,
        &member.name,
        "second_factor_changed",
        Some("e-mailed codes"),
        who.ip.as_deref(),
        who.user_agent.as_deref(),
    )
    .await?;
    Ok(Redirect::to("/account/security?done=email").into_response())
}

pub async fn new_backup_codes(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    who: Client,
    Form(form): Form<CurrentPasswordForm>,
) -> Result<Response, WebError> {
    if let Err(m) = confirm_password(&state, &member, &who, &form.current).await? {
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            security_page(&state, &member, None, vec![], Some(m)).await?,
        )
            .into_response());
    }
    let fresh = issue_backup_codes(&state, member.user_id).await?;
    event_for(
        &state,
        member.user_id,
        &member.email,
        &member.name,
        "backup_codes_replaced",
        None,
        who.ip.as_deref(),
        who.user_agent.as_deref(),
    )
    .await?;
    Ok(security_page(
        &state,
        &member,
        Some("Here are your new backup codes. The old ones no longer work.".into()),
        fresh,
        None,
    )
    .await?
    .into_response())
}

pub async fn revoke_device(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    who: Client,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = Uuid::parse_str(&id).map_err(|_| WebError::NotFound)?;
    if !staff::revoke_device(state.db(), member.user_id, id, state.now()).await? {
        return Err(WebError::NotFound);
    }
    event_for(
        &state,
        member.user_id,
        &member.email,
        &member.name,
        "device_revoked",
        None,
        who.ip.as_deref(),
        who.user_agent.as_deref(),
    )
    .await?;
    Ok(Redirect::to("/account/security?done=device").into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PasswordForm {
    current: String,
    password: String,
    confirm: String,
}

/// Changes the password. Every session ends, this one included: the person signs in again.
pub async fn change_password(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    who: Client,
    Form(form): Form<PasswordForm>,
) -> Result<Response, WebError> {
    let refuse = |message: String| async {
        Ok::<_, WebError>(
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                security_page(&state, &member, None, vec![], Some(message)).await?,
            )
                .into_response(),
        )
    };
    let user = match confirm_password(&state, &member, &who, &form.current).await? {
        Ok(user) => user,
        Err(m) => return refuse(m).await,
    };
    if let Err(m) = new_password_problem(&form.password, &form.confirm, &user.email) {
        return refuse(m).await;
    }
    let hashed = state
        .hasher()
        .hash(SecretString::from(form.password))
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    staff::set_password(state.db(), user.id, &hashed, state.now()).await?;
    event_for(
        &state,
        member.user_id,
        &member.email,
        &member.name,
        "password_changed",
        None,
        who.ip.as_deref(),
        who.user_agent.as_deref(),
    )
    .await?;
    Ok(signed_out_response(&state, "password-changed"))
}

/// Ends every session of the person, everywhere.
pub async fn sign_out_everywhere(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    who: Client,
) -> Result<Response, WebError> {
    staff::sign_out_everywhere(state.db(), member.user_id, state.now()).await?;
    event_for(
        &state,
        member.user_id,
        &member.email,
        &member.name,
        "signed_out_everywhere",
        None,
        who.ip.as_deref(),
        who.user_agent.as_deref(),
    )
    .await?;
    Ok(signed_out_response(&state, "signed-out"))
}

fn signed_out_response(state: &AppState, notice: &str) -> Response {
    (
        [(
            header::SET_COOKIE,
            session::clear(session::ADMIN_SESSION, state.settings().tls),
        )],
        Redirect::to(&state.settings().url(
            &state.settings().login_host(),
            &format!("/?notice={notice}"),
        )),
    )
        .into_response()
}
