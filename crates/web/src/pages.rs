//! Pages of the admin door that exist in the platform core, and the operational endpoints.

use crate::error::{WebError, current_request_id};
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::extract::{ConnectInfo, Form, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use proplink_db::email::{self, NewEmail};
use proplink_db::organisation::Organisation;
use proplink_db::{Actor, TenantContext, audit};
use proplink_domain::dates::{long_date_time, uk_offset};
use proplink_domain::{ActorKind, Channel, EmailAddress};
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use time::OffsetDateTime;
use uuid::Uuid;

pub async fn not_found() -> WebError {
    WebError::NotFound
}

/// Liveness: the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers too.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.db().ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the database is unavailable",
            )
                .into_response()
        }
    }
}

/// Prometheus metrics: for loopback callers, or with the configured bearer token.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap, req: Request) -> Response {
    // A reverse proxy on the same machine makes every caller look local: a forwarded request
    // is not treated as a local one.
    let forwarded = ["forwarded", "x-forwarded-for", "x-real-ip"]
        .iter()
        .any(|h| headers.contains_key(*h));
    let loopback = !forwarded
        && req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|ConnectInfo(addr)| addr.ip().is_loopback());
    let token_ok = match (
        &state.settings().metrics_token,
        headers.get(header::AUTHORIZATION),
    ) {
        (Some(token), Some(given)) => given
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|v| {
                proplink_auth::constant_time_eq(v.as_bytes(), token.expose_secret().as_bytes())
            }),
        _ => false,
    };
    if !(loopback || token_ok) {
        return WebError::NotFound.into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics().render(),
    )
        .into_response()
}

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/proplink.css"),
    )
        .into_response()
}

/// htmx 2.0.4 (0BSD licence), served from the binary.
pub async fn htmx() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../static/htmx.min.js"),
    )
        .into_response()
}

/// PropLink's own script (address look-up), served from the binary.
pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/proplink.js"),
    )
        .into_response()
}

/// The development mailbox acts as the machine's own user, through the admin door.
fn mailbox_context(org: &Organisation) -> TenantContext {
    TenantContext {
        org: org.id,
        actor: Actor {
            id: None,
            kind: ActorKind::System,
            name: Some("the development mailbox".into()),
        },
        channel: Channel::Admin,
        request_id: current_request_id(),
    }
}

fn uk_time(t: OffsetDateTime) -> String {
    long_date_time(t, uk_offset(t))
}

pub struct MessageRow {
    id: Uuid,
    to: String,
    subject: String,
    status: String,
    queued: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "mailbox.html")]
pub struct Mailbox {
    org_name: String,
    messages: Vec<MessageRow>,
    error: Option<String>,
    form_to: String,
    form_subject: String,
    form_body: String,
}

async fn mailbox_page(
    state: &AppState,
    org: &Organisation,
    error: Option<String>,
    form: TestEmailForm,
) -> Result<Mailbox, WebError> {
    let mut tx = state.db().begin(&mailbox_context(org)).await?;
    let messages = email::recent(&mut tx, 100).await?;
    tx.commit().await?;
    Ok(Mailbox {
        org_name: org.name.clone(),
        messages: messages
            .into_iter()
            .map(|m| MessageRow {
                id: m.id,
                to: match m.to_name {
                    Some(n) => format!("{n} <{}>", m.to_address),
                    None => m.to_address,
                },
                subject: m.subject,
                status: m.status,
                queued: uk_time(m.created_at),
            })
            .collect(),
        error,
        form_to: form.to,
        form_subject: form.subject,
        form_body: form.body,
    })
}

pub async fn mailbox(
    State(state): State<AppState>,
    Extension(org): Extension<Organisation>,
) -> Result<Mailbox, WebError> {
    let form = TestEmailForm {
        subject: "Test message from PropLink".into(),
        ..TestEmailForm::default()
    };
    mailbox_page(&state, &org, None, form).await
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct TestEmailForm {
    #[serde(default)]
    to: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body: String,
}

pub async fn send_test_email(
    State(state): State<AppState>,
    Extension(org): Extension<Organisation>,
    Form(form): Form<TestEmailForm>,
) -> Result<Response, WebError> {
    let subject = form.subject.trim().to_owned();
    let has_nul = [&form.to, &form.subject, &form.body]
        .iter()
        .any(|f| f.contains('\0'));
    let to = EmailAddress::parse(&form.to);
    let problem = if has_nul {
        Some("The form contains a character that cannot be stored (a NUL byte).".to_owned())
    } else if let Err(e) = &to {
        Some(format!(
            "Enter an e-mail address like name@example.co.uk: {e}."
        ))
    } else if subject.is_empty() {
        Some("Enter a subject.".to_owned())
    } else if subject.chars().count() > 200 {
        Some("The subject must be 200 characters or fewer.".to_owned())
    } else if form.body.chars().count() > 10_000 {
        Some("The message must be 10,000 characters or fewer.".to_owned())
    } else {
        None
    };
    let to = match (problem, to) {
        (None, Ok(to)) => to,
        (problem, _) => {
            let page = mailbox_page(&state, &org, problem, form).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let mut tx = state.db().begin(&mailbox_context(&org)).await?;
    email::queue(
        &mut tx,
        NewEmail {
            to_address: to.to_string(),
            to_name: None,
            subject,
            body_text: if form.body.trim().is_empty() {
                "This is a test message.".into()
            } else {
                form.body
            },
            body_html: None,
            category: "test".into(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Redirect::to("/dev/mailbox").into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "message.html")]
pub struct MessagePage {
    org_name: String,
    subject: String,
    to: String,
    status: String,
    queued: String,
    body: String,
    history: Vec<String>,
}

pub async fn mailbox_message(
    State(state): State<AppState>,
    Extension(org): Extension<Organisation>,
    Path(id): Path<String>,
) -> Result<MessagePage, WebError> {
    let id = Uuid::parse_str(&id).map_err(|_| WebError::NotFound)?;
    let mut tx = state.db().begin(&mailbox_context(&org)).await?;
    let message = email::get(&mut tx, id).await?.ok_or(WebError::NotFound)?;
    let history = audit::history(&mut tx, "email_message", &id.to_string()).await?;
    tx.commit().await?;
    Ok(MessagePage {
        org_name: org.name,
        subject: message.subject,
        to: message.to_address,
        status: match message.status_detail {
            Some(d) => format!("{} ({d})", message.status),
            None => message.status,
        },
        queued: uk_time(message.created_at),
        body: message.body_text,
        history: history.iter().map(|e| e.sentence()).collect(),
    })
}
