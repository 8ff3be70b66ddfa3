//! The login host (`login.<admin base>`): universal sign-in for staff.
//!
//! e-mail + password → second factor (an e-mailed code, or an authenticator app; a backup code
//! always works) → the organisation picker → a one-time hand-off code that the chosen
//! organisation's host exchanges for its own session (cookies are per host). Also: forgotten
//! password and reset links, sign-out, and the development mailbox for platform mail.
//!
//! Abuse limits: every password, code and link endpoint counts attempts per address and per
//! account ([`proplink_db::rate_limit`]); five failures in a row lock the account for 15
//! minutes and tell its owner by e-mail. Refusals never say whether an address has an account.

use crate::error::{WebError, current_request_id};
use crate::session::{self, Client};
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use proplink_auth::codes;
use proplink_auth::links::{hash_token, new_token};
use proplink_auth::password::check_policy;
use proplink_auth::totp;
use proplink_db::access::{self, AuthEvent, OrgChoice};
use proplink_db::rate_limit::{self, Decision, Limit};
use proplink_db::staff::{self, FailureEffect, LoginSession, PlatformEmail, StaffUser};
use proplink_db::{Actor, TenantContext};
use proplink_domain::dates::{long_date_time, uk_offset};
use proplink_domain::{ActorKind, Channel, EmailAddress, OrgId};
use secrecy::SecretString;
use serde::Deserialize;
use time::{Duration, OffsetDateTime};

/// Login-host routes. All are reachable without a session; each handler checks the sign-in
/// state it needs.
pub fn routes() -> Vec<(&'static str, axum::routing::MethodRouter<AppState>)> {
    vec![
        ("/", get(sign_in_form).post(sign_in)),
        ("/verify", get(verify_form).post(verify)),
        ("/verify/resend", post(resend_code)),
        ("/organisations", get(organisations).post(choose)),
        ("/sign-out", post(sign_out)),
        ("/forgot", get(forgot_form).post(forgot)),
        ("/reset/{token}", get(reset_form).post(reset)),
    ]
}

pub fn router(state: &AppState) -> Router<AppState> {
    let mut router = Router::new();
    for (path, methods) in routes() {
        router = router.route(path, methods);
    }
    if state.settings().dev_mailbox {
        router = router.route("/dev/mailbox", get(mailbox));
    }
    router
}

const PASSWORD_PER_IP: Limit = Limit {
    max: 30,
    window: Duration::minutes(10),
};
const PASSWORD_PER_ACCOUNT: Limit = Limit {
    max: 10,
    window: Duration::minutes(15),
};
const CODE_PER_IP: Limit = Limit {
    max: 30,
    window: Duration::minutes(10),
};
const CODE_PER_ACCOUNT: Limit = Limit {
    max: 10,
    window: Duration::minutes(15),
};
pub(crate) const RESEND_PER_ACCOUNT: Limit = Limit {
    max: 5,
    window: Duration::minutes(15),
};
const LINK_PER_IP: Limit = Limit {
    max: 30,
    window: Duration::minutes(10),
};
const FORGOT_PER_ACCOUNT: Limit = Limit {
    max: 3,
    window: Duration::hours(1),
};

const WRONG_PASSWORD: &str = "That e-mail address and password do not match. Check them and try again, or reset your password.";

/// Counts one attempt against each key; refused (with a sentence) if any is over its limit.
pub(crate) async fn limit(
    state: &AppState,
    keys: &[(String, Limit)],
) -> Result<Result<(), String>, WebError> {
    for (key, l) in keys {
        if let Decision::Refused { retry_after } =
            rate_limit::hit(state.db(), key, *l, state.now()).await?
        {
            let minutes = (retry_after.whole_seconds() + 59) / 60;
            return Ok(Err(format!(
                "Too many attempts. Please wait {minutes} minute{} and try again.",
                if minutes == 1 { "" } else { "s" }
            )));
        }
    }
    Ok(Ok(()))
}

fn uk_time(t: OffsetDateTime) -> String {
    long_date_time(t, uk_offset(t))
}

// ---------------------------------------------------------------------------------------------
// Pages

#[derive(Template, WebTemplate)]
#[template(path = "login/sign_in.html")]
struct SignInPage {
    email: String,
    error: Option<String>,
    notice: Option<String>,
    dev_mailbox: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "login/verify.html")]
struct VerifyPage {
    totp: bool,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "login/organisations.html")]
struct OrganisationsPage {
    name: String,
    orgs: Vec<OrgChoice>,
}

#[derive(Template, WebTemplate)]
#[template(path = "login/forgot.html")]
struct ForgotPage {
    email: String,
    error: Option<String>,
    sent: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "login/reset.html")]
struct ResetPage {
    token: String,
    error: Option<String>,
    invalid: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "login/mailbox.html")]
struct MailboxPage {
    messages: Vec<MailRow>,
}

struct MailRow {
    to: String,
    subject: String,
    body: String,
    status: String,
    queued: String,
}

fn with_status(status: StatusCode, page: impl IntoResponse) -> Response {
    (status, page).into_response()
}

/// The live login-host session, if the request carries one.
async fn current_login(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<LoginSession>, WebError> {
    let Some(hash) = session::read(headers, session::LOGIN_SESSION).and_then(|t| hash_token(&t))
    else {
        return Ok(None);
    };
    Ok(staff::find_login(state.db(), &hash, state.now()).await?)
}

#[derive(Deserialize)]
pub struct SignInQuery {
    #[serde(default)]
    notice: Option<String>,
}

async fn sign_in_form(
    State(state): State<AppState>,
    Query(q): Query<SignInQuery>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    if let Some(login) = current_login(&state, &headers).await? {
        return Ok(Redirect::to(if login.verified() {
            "/organisations"
        } else {
            "/verify"
        })
        .into_response());
    }
    let notice = match q.notice.as_deref() {
        Some("password-changed") => Some("Your password has been changed. Sign in with it now."),
        Some("signed-out") => Some("You have signed out."),
        _ => None,
    };
    Ok(SignInPage {
        email: String::new(),
        error: None,
        notice: notice.map(str::to_owned),
        dev_mailbox: state.settings().dev_mailbox,
    }
    .into_response())
}

#[derive(Deserialize)]
#[serde(default)]
#[derive(Default)]
pub struct SignInForm {
    email: String,
    password: String,
}

async fn sign_in(
    State(state): State<AppState>,
    who: Client,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, WebError> {
    let refuse = |status: StatusCode, error: String| {
        with_status(
            status,
            SignInPage {
                email: form.email.trim().to_owned(),
                error: Some(error),
                notice: None,
                dev_mailbox: state.settings().dev_mailbox,
            },
        )
    };
    let email = form.email.trim().to_lowercase();
    if email.is_empty() || form.password.is_empty() {
        return Ok(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter your e-mail address and your password.".into(),
        ));
    }
    let ip = who.ip.clone().unwrap_or_default();
    if let Err(m) = limit(
        &state,
        &[
            (format!("password:ip:{ip}"), PASSWORD_PER_IP),
            (format!("password:account:{email}"), PASSWORD_PER_ACCOUNT),
        ],
    )
    .await?
    {
        return Ok(refuse(StatusCode::TOO_MANY_REQUESTS, m));
    }
    let now = state.now();
    let user = staff::find_by_email(state.db(), &email).await?;
    // Always one Argon2 verification, against the dummy hash when there is no account or no
    // password yet, so the time taken says nothing.
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let correct = state
        .hasher()
        .verify(SecretString::from(form.password.clone()), stored)
        .await;
    let Some(user) = user else {
        staff::record_sign_in_event(
            state.db(),
            None,
            &email,
            "sign_in_failed",
            who.ip.as_deref(),
            who.user_agent.as_deref(),
        )
        .await?;
        return Ok(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            WRONG_PASSWORD.into(),
        ));
    };
    staff::expire_lock(state.db(), user.id, now).await?;
    if user.locked_at(now) {
        // Only someone who knows the password learns that the account is locked.
        let message = match (correct, user.locked_until) {
            (true, Some(until)) => format!(
                "Your account is locked after too many failed attempts. Try again after {}. We have e-mailed you about it.",
                uk_time(until)
            ),
            _ => WRONG_PASSWORD.to_owned(),
        };
        event(&state, &user, "sign_in_refused_locked", None, &who).await?;
        return Ok(refuse(StatusCode::UNPROCESSABLE_ENTITY, message));
    }
    if !correct {
        failure(&state, &user, "sign_in_failed", "wrong password", &who).await?;
        return Ok(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            WRONG_PASSWORD.into(),
        ));
    }
    // Failures are cleared only once the second factor passes too: a correct password between
    // wrong codes must not reset the count towards the lock.
    let (token, hash) = new_token();
    let login = staff::start_login(
        state.db(),
        user.id,
        &hash,
        false,
        who.ip.as_deref(),
        who.user_agent.as_deref(),
        now,
    )
    .await?;
    let secure = state.settings().tls;
    let cookie = session::set(session::LOGIN_SESSION, &token, None, secure);
    // A remembered device skips the second factor.
    let remembered = match session::read(&headers, session::DEVICE).and_then(|t| hash_token(&t)) {
        Some(device) => {
            staff::device_is_remembered(state.db(), user.id, &device, who.ip.as_deref(), now)
                .await?
        }
        None => false,
    };
    if remembered {
        staff::clear_failures(state.db(), user.id).await?;
        staff::mark_login_verified(state.db(), login, now).await?;
        event(&state, &user, "signed_in_remembered_device", None, &who).await?;
        return Ok((
            [(header::SET_COOKIE, cookie)],
            Redirect::to("/organisations"),
        )
            .into_response());
    }
    if !user.uses_totp() {
        staff::issue_code(state.db(), state.code_key(), &user, now).await?;
    }
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/verify")).into_response())
}

/// Records a failed step: counts it towards the lock, tells the owner when it locks, and
/// writes the event on the login host and in each of the person's organisations.
pub(crate) async fn failure(
    state: &AppState,
    user: &StaffUser,
    kind: &str,
    detail: &str,
    who: &Client,
) -> Result<(), WebError> {
    let effect = staff::record_failure(state.db(), user.id, state.now()).await?;
    event(state, user, kind, Some(detail), who).await?;
    if let FailureEffect::LockedNow { until } = effect {
        event(state, user, "account_locked", None, who).await?;
        staff::send_platform_email(
            state.db(),
            &PlatformEmail {
                to_address: user.email.clone(),
                to_name: Some(user.name.clone()),
                subject: "Your PropLink account has been locked".into(),
                body_text: format!(
                    "Hello {},\n\nThere were {} failed attempts to sign in to your PropLink account in a row, so we have locked it until {}.\n\nIf this was you, wait and try again, or reset your password from the sign-in page. If it was not you, reset your password as soon as you can: someone may be trying to get in.\n\nLast attempt from: {}\n",
                    user.name,
                    staff::LOCK_AFTER_FAILURES,
                    uk_time(until),
                    who.ip.as_deref().unwrap_or("an unknown address")
                ),
                category: "account_locked".into(),
            },
        )
        .await?;
    }
    Ok(())
}

/// Writes a sign-in event on the login host and in every organisation of the person.
#[allow(clippy::too_many_arguments, reason = "each is one fact of the event")]
pub(crate) async fn event_for(
    state: &AppState,
    user_id: uuid::Uuid,
    email: &str,
    name: &str,
    kind: &str,
    detail: Option<&str>,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> Result<(), WebError> {
    staff::record_sign_in_event(state.db(), Some(user_id), email, kind, ip, user_agent).await?;
    access::record_auth_event_everywhere(
        state.db(),
        name,
        &AuthEvent {
            user_id: Some(user_id),
            email,
            kind,
            detail,
            ip,
            user_agent,
        },
        Channel::Admin,
        current_request_id(),
    )
    .await?;
    Ok(())
}

async fn event(
    state: &AppState,
    user: &StaffUser,
    kind: &str,
    detail: Option<&str>,
    who: &Client,
) -> Result<(), WebError> {
    event_for(
        state,
        user.id,
        &user.email,
        &user.name,
        kind,
        detail,
        who.ip.as_deref(),
        who.user_agent.as_deref(),
    )
    .await
}

/// The person whose sign-in is waiting for its second factor.
async fn pending(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(LoginSession, StaffUser)>, WebError> {
    let Some(login) = current_login(state, headers).await? else {
        return Ok(None);
    };
    let Some(user) = staff::find(state.db(), login.user_id).await? else {
        return Ok(None);
    };
    Ok(Some((login, user)))
}

#[derive(Deserialize)]
pub struct VerifyQuery {
    #[serde(default)]
    resent: Option<String>,
}

async fn verify_form(
    State(state): State<AppState>,
    Query(q): Query<VerifyQuery>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let Some((login, user)) = pending(&state, &headers).await? else {
        return Ok(Redirect::to("/").into_response());
    };
    if login.verified() {
        return Ok(Redirect::to("/organisations").into_response());
    }
    Ok(VerifyPage {
        totp: user.uses_totp(),
        error: None,
        notice: q
            .resent
            .map(|_| "We have sent you a new code. Only the newest code works.".to_owned()),
    }
    .into_response())
}

#[derive(Deserialize)]
#[serde(default)]
#[derive(Default)]
pub struct VerifyForm {
    code: String,
    remember: Option<String>,
}

async fn verify(
    State(state): State<AppState>,
    who: Client,
    headers: HeaderMap,
    Form(form): Form<VerifyForm>,
) -> Result<Response, WebError> {
    let Some((login, user)) = pending(&state, &headers).await? else {
        return Ok(Redirect::to("/").into_response());
    };
    if login.verified() {
        return Ok(Redirect::to("/organisations").into_response());
    }
    let refuse = |status: StatusCode, error: String| {
        with_status(
            status,
            VerifyPage {
                totp: user.uses_totp(),
                error: Some(error),
                notice: None,
            },
        )
    };
    let ip = who.ip.clone().unwrap_or_default();
    if let Err(m) = limit(
        &state,
        &[
            (format!("code:ip:{ip}"), CODE_PER_IP),
            (format!("code:account:{}", user.id), CODE_PER_ACCOUNT),
        ],
    )
    .await?
    {
        return Ok(refuse(StatusCode::TOO_MANY_REQUESTS, m));
    }
    let now = state.now();
    if user.locked_at(now) {
        return Ok(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Your account is locked after too many failed attempts. Wait 15 minutes and sign in again."
                .into(),
        ));
    }
    let accepted = check_second_factor(&state, &user, &form.code, now).await?;
    let how = match accepted {
        Ok(how) => how,
        Err(message) => {
            failure(&state, &user, "second_factor_failed", "wrong code", &who).await?;
            return Ok(refuse(StatusCode::UNPROCESSABLE_ENTITY, message));
        }
    };
    staff::clear_failures(state.db(), user.id).await?;
    staff::mark_login_verified(state.db(), login.id, now).await?;
    event(&state, &user, "second_factor_passed", Some(how), &who).await?;
    let mut resp = Redirect::to("/organisations").into_response();
    if form.remember.is_some() {
        let (token, hash) = new_token();
        staff::remember_device(
            state.db(),
            user.id,
            &hash,
            &session::device_label(who.user_agent.as_deref()),
            who.ip.as_deref(),
            now,
        )
        .await?;
        resp.headers_mut().append(
            header::SET_COOKIE,
            session::set(
                session::DEVICE,
                &token,
                Some(staff::REMEMBER_DEVICE_FOR),
                state.settings().tls,
            ),
        );
        event(&state, &user, "device_remembered", None, &who).await?;
    }
    Ok(resp)
}

/// Checks a second-factor code typed by `user`: their authenticator app's code or the code we
/// e-mailed them (6 digits), or one of their backup codes. Ok(how) or Err(what to show).
pub(crate) async fn check_second_factor(
    state: &AppState,
    user: &StaffUser,
    typed: &str,
    now: OffsetDateTime,
) -> Result<Result<&'static str, String>, WebError> {
    let typed = typed.trim();
    let digits: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
        if user.uses_totp() {
            return check_totp(state, user, &digits, now).await;
        }
        return Ok(
            match staff::verify_code(state.db(), state.code_key(), user.id, &digits, now).await? {
                Ok(()) => Ok("code"),
                Err(refusal) => {
                    tracing::info!(reason = %refusal, "staff sign-in code refused");
                    Err(refusal.public_message().to_owned())
                }
            },
        );
    }
    let normalised = codes::normalise(typed);
    let digest = state
        .code_key()
        .digest("backup", &user.id.to_string(), &normalised);
    Ok(
        if !normalised.is_empty()
            && staff::use_backup_code(state.db(), user.id, &digest, now).await?
        {
            Ok("backup code")
        } else {
            Err(
                "That code did not work. Enter the 6-digit code, or one of your backup codes."
                    .to_owned(),
            )
        },
    )
}

/// An authenticator-app code: right for the current window (±1 step) and not a step already
/// used (replay).
async fn check_totp(
    state: &AppState,
    user: &StaffUser,
    code: &str,
    now: OffsetDateTime,
) -> Result<Result<&'static str, String>, WebError> {
    let Some(secret) = user.totp_secret.as_deref() else {
        return Ok(Err("Your authenticator app is not set up.".into()));
    };
    let unix = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    match totp::verify(secret, code, unix, None) {
        Ok(step) if staff::accept_totp_step(state.db(), user.id, step).await? => {
            Ok(Ok("authenticator app"))
        }
        Ok(_) => Ok(Err(
            "That code has already been used. Wait for your app to show the next one.".into(),
        )),
        Err(_) => Ok(Err(
            "That code is not right. Enter the 6-digit code your authenticator app shows now."
                .into(),
        )),
    }
}

async fn resend_code(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let Some((login, user)) = pending(&state, &headers).await? else {
        return Ok(Redirect::to("/").into_response());
    };
    if login.verified() || user.uses_totp() {
        return Ok(Redirect::to("/verify").into_response());
    }
    if let Err(m) = limit(
        &state,
        &[(format!("resend:account:{}", user.id), RESEND_PER_ACCOUNT)],
    )
    .await?
    {
        return Ok(with_status(
            StatusCode::TOO_MANY_REQUESTS,
            VerifyPage {
                totp: false,
                error: Some(m),
                notice: None,
            },
        ));
    }
    staff::issue_code(state.db(), state.code_key(), &user, state.now()).await?;
    Ok(Redirect::to("/verify?resent=1").into_response())
}

/// The verified person on the login host.
async fn verified(state: &AppState, headers: &HeaderMap) -> Result<Option<StaffUser>, WebError> {
    match pending(state, headers).await? {
        Some((login, user)) if login.verified() => Ok(Some(user)),
        _ => Ok(None),
    }
}

async fn organisations(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let Some(user) = verified(&state, &headers).await? else {
        return Ok(Redirect::to("/").into_response());
    };
    let orgs = access::organisations_of(state.db(), user.id).await?;
    // One organisation: no choice to make, straight there.
    if let [only] = orgs.as_slice() {
        let url = handoff_url(&state, &user.id, &user.name, only).await?;
        return Ok(Redirect::to(&url).into_response());
    }
    Ok(OrganisationsPage {
        name: user.name,
        orgs,
    }
    .into_response())
}

#[derive(Deserialize)]
#[serde(default)]
#[derive(Default)]
pub struct ChooseForm {
    org: String,
}

async fn choose(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ChooseForm>,
) -> Result<Response, WebError> {
    let Some(user) = verified(&state, &headers).await? else {
        return Ok(Redirect::to("/").into_response());
    };
    let orgs = access::organisations_of(state.db(), user.id).await?;
    let Some(choice) = orgs.into_iter().find(|o| o.slug == form.org) else {
        return Err(WebError::NotFound);
    };
    let url = handoff_url(&state, &user.id, &user.name, &choice).await?;
    Ok(Redirect::to(&url).into_response())
}

/// Mints a hand-off code in the chosen organisation and returns the URL on its host that
/// exchanges it for a session there.
pub(crate) async fn handoff_url(
    state: &AppState,
    user_id: &uuid::Uuid,
    name: &str,
    choice: &OrgChoice,
) -> Result<String, WebError> {
    let (code, hash) = new_token();
    let ctx = TenantContext {
        org: OrgId(choice.organisation_id),
        actor: Actor {
            id: Some(*user_id),
            kind: ActorKind::Staff,
            name: Some(name.to_owned()),
        },
        channel: Channel::Admin,
        request_id: current_request_id(),
    };
    let mut tx = state.db().begin(&ctx).await?;
    access::mint_handoff(&mut tx, choice.membership_id, *user_id, &hash, state.now()).await?;
    tx.commit().await?;
    Ok(state.settings().url(
        &state.settings().admin_host(&choice.slug),
        &format!("/auth/handoff?code={code}"),
    ))
}

async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, WebError> {
    if let Some(login) = current_login(&state, &headers).await? {
        staff::end_login(state.db(), login.id, state.now()).await?;
    }
    Ok((
        [(
            header::SET_COOKIE,
            session::clear(session::LOGIN_SESSION, state.settings().tls),
        )],
        Redirect::to("/?notice=signed-out"),
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------------
// Forgotten passwords

async fn forgot_form() -> ForgotPage {
    ForgotPage {
        email: String::new(),
        error: None,
        sent: false,
    }
}

#[derive(Deserialize)]
#[serde(default)]
#[derive(Default)]
pub struct ForgotForm {
    email: String,
}

async fn forgot(
    State(state): State<AppState>,
    who: Client,
    Form(form): Form<ForgotForm>,
) -> Result<Response, WebError> {
    let Ok(email) = EmailAddress::parse(&form.email) else {
        return Ok(with_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            ForgotPage {
                email: form.email.trim().to_owned(),
                error: Some("Enter your e-mail address, like name@example.co.uk.".into()),
                sent: false,
            },
        ));
    };
    let key = email.as_str().to_lowercase();
    let ip = who.ip.clone().unwrap_or_default();
    if let Err(m) = limit(
        &state,
        &[
            (format!("forgot:ip:{ip}"), LINK_PER_IP),
            (format!("forgot:account:{key}"), FORGOT_PER_ACCOUNT),
        ],
    )
    .await?
    {
        return Ok(with_status(
            StatusCode::TOO_MANY_REQUESTS,
            ForgotPage {
                email: email.as_str().to_owned(),
                error: Some(m),
                sent: false,
            },
        ));
    }
    // The same answer, in the same time, whether or not there is an account: the link is made
    // and sent after the page has been answered.
    let background = state.clone();
    let address = email.as_str().to_owned();
    tokio::spawn(async move {
        let sent = async {
            if let Some(user) = staff::find_by_email(background.db(), &address).await? {
                send_reset_link(
                    &background,
                    &user,
                    "Someone (we hope you) asked to reset your PropLink password.",
                )
                .await?;
                event(&background, &user, "password_reset_requested", None, &who).await?;
            }
            Ok::<_, WebError>(())
        };
        if let Err(e) = sent.await {
            tracing::error!(error = %e, "a password-reset link could not be sent");
        }
    });
    Ok(ForgotPage {
        email: email.as_str().to_owned(),
        error: None,
        sent: true,
    }
    .into_response())
}

/// Sends a password-reset link (self-service, an administrator's reset, and the first
/// password of someone whose credentials were reset).
pub(crate) async fn send_reset_link(
    state: &AppState,
    user: &StaffUser,
    reason: &str,
) -> Result<(), WebError> {
    let (token, hash) = new_token();
    let url = state
        .settings()
        .url(&state.settings().login_host(), &format!("/reset/{token}"));
    staff::create_password_reset(state.db(), user, &hash, &url, reason, state.now()).await?;
    Ok(())
}

async fn reset_form(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let live = match hash_token(&token) {
        Some(hash) => staff::find_password_reset(state.db(), &hash, state.now())
            .await?
            .is_some(),
        None => false,
    };
    Ok(with_status(
        if live {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        },
        ResetPage {
            token,
            error: None,
            invalid: !live,
        },
    ))
}

#[derive(Deserialize)]
#[serde(default)]
#[derive(Default)]
pub struct ResetForm {
    password: String,
    confirm: String,
}

async fn reset(
    State(state): State<AppState>,
    Path(token): Path<String>,
    who: Client,
    Form(form): Form<ResetForm>,
) -> Result<Response, WebError> {
    let ip = who.ip.clone().unwrap_or_default();
    if let Err(m) = limit(&state, &[(format!("reset:ip:{ip}"), LINK_PER_IP)]).await? {
        return Err(WebError::TooManyRequests(m));
    }
    let invalid = || {
        with_status(
            StatusCode::NOT_FOUND,
            ResetPage {
                token: String::new(),
                error: None,
                invalid: true,
            },
        )
    };
    let Some(hash) = hash_token(&token) else {
        return Ok(invalid());
    };
    let now = state.now();
    let Some(user_id) = staff::find_password_reset(state.db(), &hash, now).await? else {
        return Ok(invalid());
    };
    let Some(user) = staff::find(state.db(), user_id).await? else {
        return Ok(invalid());
    };
    if let Err(message) = new_password_problem(&form.password, &form.confirm, &user.email) {
        return Ok(with_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            ResetPage {
                token,
                error: Some(message),
                invalid: false,
            },
        ));
    }
    let hashed = state
        .hasher()
        .hash(SecretString::from(form.password))
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    if staff::complete_password_reset(state.db(), &hash, &hashed, now)
        .await?
        .is_none()
    {
        return Ok(invalid());
    }
    event(&state, &user, "password_reset", None, &who).await?;
    Ok(Redirect::to("/?notice=password-changed").into_response())
}

/// Checks a new password and its confirmation; the sentence to show when refused.
pub(crate) fn new_password_problem(
    password: &str,
    confirm: &str,
    email: &str,
) -> Result<(), String> {
    check_policy(password, email).map_err(|e| e.to_string())?;
    if password != confirm {
        return Err(
            "The two passwords are different. Type the same password in both boxes.".into(),
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Development mailbox (platform mail)

/// Mounted only when the development mailbox is on (see [`router`]).
async fn mailbox(State(state): State<AppState>) -> Result<Response, WebError> {
    let messages = staff::recent_platform_emails(state.db(), 50)
        .await?
        .into_iter()
        .map(|m| MailRow {
            to: m.to_address,
            subject: m.subject,
            body: m.body_text,
            status: m.status,
            queued: uk_time(m.created_at),
        })
        .collect();
    Ok(MailboxPage { messages }.into_response())
}
