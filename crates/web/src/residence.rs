//! ResidencePort (docs-spec §2.10): the leaseholder and tenant portal on
//! `<org>.residenceport.<base>`. A resident signs in with their e-mail and a one-time code (no
//! password); the session cookie `pl_resident` is host-only, so the same person at two
//! organisations has two separate portals. Every page starts from [`signed_in`], which finds
//! the session and the contact's holdings in one transaction that then acts as the resident
//! (actor kind leaseholder, channel ResidencePort): what they do is audited in their name.
//!
//! Scope: a resident sees only the units they hold (`db::resident::holdings`); any other id
//! in a path answers 404 exactly as a missing one does. Amounts to pay come from the server.

use crate::admin::form::FormData;
use crate::admin::money_pdf;
use crate::error::WebError;
use crate::session;
use crate::state::AppState;
use crate::uploads;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::body::Bytes;
use axum::extract::multipart::Multipart;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, routing};
use proplink_db::TenantTx;
use proplink_db::operations::{self as ops, Attachment, IssueInput, Location};
use proplink_db::organisation::Organisation;
use proplink_db::portal::{self, CodeOutcome, Portal, PortalAccount};
use proplink_db::rate_limit::{self, Decision, Limit};
use proplink_db::receivables::{self as rx, Invoice};
use proplink_db::resident::{self, Holding, Role};
use proplink_db::tenant::{Actor, TenantContext};
use proplink_domain::dates::{iso_date, long_date, uk_date, uk_long_date};
use proplink_domain::folders::Viewer;
use proplink_domain::operations::{IssueCategory, IssueStatus, Priority, ReporterKind};
use proplink_domain::uk::{format_pence, parse_uk_date};
use proplink_domain::{ActorKind, Channel, EmailAddress};
use proplink_files::MediaType;
use std::net::SocketAddr;
use time::Date;
use uuid::Uuid;

mod dd;
pub(crate) mod pay;

/// The resident's session cookie (host-only: one per organisation's portal).
pub const COOKIE: &str = "pl_resident";

type Page = Result<Response, WebError>;

pub fn router() -> Router<AppState> {
    let upload = || axum::extract::DefaultBodyLimit::max(uploads::UPLOAD_BODY);
    Router::new()
        .route("/", get(home))
        .route("/brand.css", get(brand_css))
        .route("/brand/logo", get(brand_logo))
        .route("/sign-in", get(sign_in_form).post(send_code))
        .route("/sign-in/verify", post(verify_code))
        .route("/sign-out", post(sign_out))
        .route("/units/{unit}/statement", get(statement))
        .route("/units/{unit}/statement.pdf", get(statement_pdf))
        .route("/invoices/{id}", get(invoice))
        .route("/invoices/{id}/pdf", get(invoice_pdf))
        .route("/invoices/{id}/pay", post(pay::start_card))
        .route("/payments/{id}", get(pay::payment))
        .route(
            "/test-mode/checkout/{id}",
            get(pay::test_checkout).post(pay::test_checkout_submit),
        )
        .route("/direct-debit", get(dd::page).post(dd::start))
        .route(
            "/test-mode/direct-debit/{id}",
            get(dd::test_page).post(dd::test_confirm),
        )
        .route(
            "/requests",
            get(requests).post(raise_request).layer(upload()),
        )
        .route("/requests/new", get(request_form))
        .route("/requests/{id}", get(request_page))
        .route("/requests/{id}/messages", post(request_message))
        .route("/requests/{id}/photos/{file}", get(request_photo))
        .route("/notices", get(notices))
        .route("/notices/{id}", get(notice_page))
        .route("/documents", get(documents))
        .route("/documents/{id}", get(document))
        .route("/profile", routing::get(profile).post(save_profile))
}

// ---------------------------------------------------------------------------------------------
// The signed-in resident

pub(crate) struct Resident {
    pub account: PortalAccount,
    pub contact: Uuid,
    pub holdings: Vec<Holding>,
    pub tx: TenantTx,
    pub today: Date,
}

impl Resident {
    /// A holding of this unit (the current one first), or 404.
    pub fn holding(&self, unit: Uuid) -> Result<&Holding, WebError> {
        self.holdings
            .iter()
            .find(|h| h.unit_id == unit)
            .ok_or(WebError::NotFound)
    }

    pub fn current(&self) -> impl Iterator<Item = &Holding> {
        self.holdings.iter().filter(|h| h.is_current(self.today))
    }

    /// May the resident act on this unit (pay, raise requests): a current holding.
    pub fn holds_now(&self, unit: Uuid) -> bool {
        self.holdings
            .iter()
            .any(|h| h.unit_id == unit && h.is_current(self.today))
    }

    pub fn viewer(&self, site: Uuid) -> Viewer {
        let here = self.current().filter(|h| h.site_id == site);
        let (mut leaseholder, mut director) = (false, false);
        for h in here {
            leaseholder |= h.role() == Role::Leaseholder;
            director |= h.director;
        }
        Viewer::Resident {
            leaseholder,
            director,
        }
    }
}

pub(crate) fn resident_actor(id: Option<Uuid>, name: &str) -> Actor {
    Actor {
        id,
        kind: ActorKind::Leaseholder,
        name: Some(name.to_owned()),
    }
}

fn anonymous(org: &Organisation) -> TenantContext {
    TenantContext {
        org: org.id,
        actor: resident_actor(None, "resident"),
        channel: Channel::ResidencePort,
        request_id: crate::error::current_request_id(),
    }
}

/// The signed-in resident of this organisation's portal, with a transaction acting as them.
pub(crate) async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    org: &Organisation,
) -> Result<Option<Resident>, WebError> {
    let Some(raw) = session::read(headers, COOKIE) else {
        return Ok(None);
    };
    let Some((cookie_org, token)) = raw.split_once('.') else {
        return Ok(None);
    };
    if Uuid::parse_str(cookie_org).ok() != Some(org.id.0) {
        return Ok(None);
    }
    let Some(hash) = proplink_auth::links::hash_token(token) else {
        return Ok(None);
    };
    let now = state.now();
    let mut tx = state.db().begin(&anonymous(org)).await?;
    let Some(account) = portal::find_session(&mut tx, Portal::ResidencePort, &hash, now).await?
    else {
        tx.commit_portal().await?;
        return Ok(None);
    };
    let Some(contact) = resident::contact_of(&mut tx, account.id).await? else {
        tx.commit_portal().await?;
        return Ok(None);
    };
    tx.act_as(
        &resident_actor(Some(account.id), &account.name),
        Channel::ResidencePort,
    )
    .await?;
    let today = uk_date(now);
    let holdings = resident::holdings(&mut tx, contact, today).await?;
    Ok(Some(Resident {
        account,
        contact,
        holdings,
        tx,
        today,
    }))
}

fn to_sign_in() -> Response {
    Redirect::to("/sign-in").into_response()
}

/// The organisation this portal belongs to (put there by the dispatcher).
type Org = Extension<Organisation>;

macro_rules! resident_or_sign_in {
    ($state:expr, $headers:expr, $org:expr) => {
        match signed_in(&$state, &$headers, &$org).await? {
            Some(r) => r,
            None => return Ok(to_sign_in()),
        }
    };
}
pub(crate) use resident_or_sign_in;

/// What every page's header shows.
pub(crate) struct Chrome {
    pub org_name: String,
    pub resident: Option<String>,
    pub test_mode: bool,
}

impl Chrome {
    fn of(state: &AppState, org: &Organisation, r: Option<&Resident>) -> Self {
        Self {
            org_name: org.name.clone(),
            resident: r.map(|r| r.account.name.clone()),
            test_mode: state.settings().payments.card_test_mode(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Branding

/// GET /brand.css: the organisation's primary colour as the design tokens' brand colour, with
/// a text colour that keeps contrast on it.
async fn brand_css(State(state): State<AppState>, Extension(org): Org) -> Page {
    let mut tx = state.db().begin(&anonymous(&org)).await?;
    let profile = proplink_db::profile::get(&mut tx).await?;
    tx.end_reading();
    let mut css = match profile.brand_colour.as_deref().and_then(parse_hex) {
        Some((r, g, b)) => {
            let ink = if luminance(r, g, b) > 0.45 {
                "#1b2430"
            } else {
                "#ffffff"
            };
            format!(":root {{ --pl-brand: #{r:02x}{g:02x}{b:02x}; --pl-brand-ink: {ink}; }}\n")
        }
        None => String::from("/* no brand colour set */\n"),
    };
    if profile.logo_key.is_some() {
        // The header's logo, as a background so no page needs to know whether there is one.
        css.push_str(
            ".pl-brand-logo { display: inline-block; width: 10rem; height: 2.5rem; background: url(/brand/logo) left center / contain no-repeat; }\n",
        );
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "private, max-age=60"),
        ],
        css,
    )
        .into_response())
}

/// GET /brand/logo: the organisation's logo, or 404 when it has none.
async fn brand_logo(State(state): State<AppState>, Extension(org): Org) -> Page {
    let mut tx = state.db().begin(&anonymous(&org)).await?;
    let profile = proplink_db::profile::get(&mut tx).await?;
    tx.end_reading();
    let (Some(key), Some(media)) = (profile.logo_key, profile.logo_media_type) else {
        return Err(WebError::NotFound);
    };
    let mut resp = uploads::send_stored(&state, &key, &media, "logo", "inline").await?;
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("public, max-age=300"),
    );
    Ok(resp)
}

fn parse_hex(s: &str) -> Option<(u8, u8, u8)> {
    let h = s.strip_prefix('#')?;
    if h.len() != 6 {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(h.get(i..i + 2)?, 16).ok();
    Some((byte(0)?, byte(2)?, byte(4)?))
}

/// Relative luminance (WCAG) of an sRGB colour.
fn luminance(r: u8, g: u8, b: u8) -> f64 {
    let channel = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
}

// ---------------------------------------------------------------------------------------------
// Sign-in

#[derive(Template, WebTemplate)]
#[template(path = "residence/sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    email: Option<String>,
    message: Option<String>,
}

async fn sign_in_form(
    State(state): State<AppState>,
    Extension(org): Org,
    headers: HeaderMap,
) -> Page {
    if let Some(r) = signed_in(&state, &headers, &org).await? {
        r.tx.commit_portal().await?;
        return Ok(Redirect::to("/").into_response());
    }
    Ok(SignInPage {
        chrome: Chrome::of(&state, &org, None),
        email: None,
        message: None,
    }
    .into_response())
}

async fn limited(state: &AppState, key: &str, max: i32) -> Result<bool, WebError> {
    let limit = Limit {
        max,
        window: time::Duration::hours(1),
    };
    Ok(matches!(
        rate_limit::hit(state.db(), key, limit, state.now()).await?,
        Decision::Refused { .. }
    ))
}

fn too_many(state: &AppState, org: &Organisation, message: &str) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        SignInPage {
            chrome: Chrome::of(state, org, None),
            email: None,
            message: Some(message.to_owned()),
        },
    )
        .into_response()
}

/// POST /sign-in: a code for an account here, or for a contact on a lease or occupancy here
/// (whose account is made then). The answer is the same whatever happened.
async fn send_code(
    State(state): State<AppState>,
    Extension(org): Org,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Page {
    let v = FormData::parse(&body);
    let Ok(email) = EmailAddress::parse(v.get("email").trim()) else {
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            SignInPage {
                chrome: Chrome::of(&state, &org, None),
                email: None,
                message: Some("Enter your e-mail address, e.g. name@example.co.uk.".into()),
            },
        )
            .into_response());
    };
    let ip = session::client_ip(peer.ip(), &headers, &state.settings().trusted_proxies);
    if limited(&state, &format!("resident_code:ip:{ip}"), 20).await?
        || limited(
            &state,
            &format!("resident_code:{}:{}", org.id, email.as_str()),
            5,
        )
        .await?
    {
        return Ok(too_many(
            &state,
            &org,
            "Too many codes were asked for. Please wait an hour and try again.",
        ));
    }
    let mut tx = state.db().begin(&anonymous(&org)).await?;
    resident::request_code(&mut tx, state.code_key(), &email, &org.name, state.now()).await?;
    tx.commit_portal().await?;
    Ok(SignInPage {
        chrome: Chrome::of(&state, &org, None),
        email: Some(email.as_str().to_owned()),
        message: Some(
            "If this address belongs to a resident here, a 6-digit code is on its way. It works once, for 10 minutes."
                .into(),
        ),
    }
    .into_response())
}

/// POST /sign-in/verify
async fn verify_code(
    State(state): State<AppState>,
    Extension(org): Org,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Page {
    let v = FormData::parse(&body);
    let Ok(email) = EmailAddress::parse(v.get("email").trim()) else {
        return Ok(to_sign_in());
    };
    let ip = session::client_ip(peer.ip(), &headers, &state.settings().trusted_proxies);
    if limited(&state, &format!("resident_verify:ip:{ip}"), 30).await?
        || limited(
            &state,
            &format!("resident_verify:{}:{}", org.id, email.as_str()),
            10,
        )
        .await?
    {
        return Ok(too_many(
            &state,
            &org,
            "Too many codes were tried. Please wait an hour and ask for a new one.",
        ));
    }
    let now = state.now();
    let mut tx = state.db().begin(&anonymous(&org)).await?;
    let outcome = portal::verify_sign_in_code(
        &mut tx,
        state.code_key(),
        Portal::ResidencePort,
        &email,
        v.get("code").trim(),
        now,
    )
    .await?;
    let CodeOutcome::Accepted { account_id } = outcome else {
        // A refusal counts a try: keep it.
        tx.commit_portal().await?;
        let message = match outcome {
            CodeOutcome::Refused(r) => r.public_message().to_owned(),
            CodeOutcome::Accepted { .. } => String::new(),
        };
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            SignInPage {
                chrome: Chrome::of(&state, &org, None),
                email: Some(email.as_str().to_owned()),
                message: Some(message),
            },
        )
            .into_response());
    };
    let (token, hash) = proplink_auth::links::new_token();
    portal::start_session(&mut tx, account_id, &hash, now).await?;
    tx.commit_portal().await?;
    let cookie = session::set(
        COOKIE,
        &format!("{}.{token}", org.id.0),
        Some(portal::SESSION_ABSOLUTE),
        state.settings().tls,
    );
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, http::HeaderValue::from_static("/")),
        ],
    )
        .into_response())
}

async fn sign_out(State(state): State<AppState>, Extension(org): Org, headers: HeaderMap) -> Page {
    if let Some(raw) = session::read(&headers, COOKIE)
        && let Some((_, token)) = raw.split_once('.')
        && let Some(hash) = proplink_auth::links::hash_token(token)
    {
        let mut tx = state.db().begin(&anonymous(&org)).await?;
        portal::end_session(&mut tx, &hash, state.now()).await?;
        tx.commit_portal().await?;
    }
    Ok((
        StatusCode::SEE_OTHER,
        [
            (
                header::SET_COOKIE,
                session::clear(COOKIE, state.settings().tls),
            ),
            (header::LOCATION, http::HeaderValue::from_static("/sign-in")),
        ],
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------------
// Home

pub(crate) struct UnitRow {
    pub unit_id: Uuid,
    pub place: String,
    pub role: &'static str,
    pub period: String,
    pub current: bool,
    pub statement: bool,
}

fn unit_rows(r: &Resident) -> Vec<UnitRow> {
    r.holdings
        .iter()
        .map(|h| UnitRow {
            unit_id: h.unit_id,
            place: h.place(),
            role: h.role().label(),
            period: match h.last_day() {
                Some(last) => format!("{} to {}", long_date(h.starts_on), long_date(last)),
                None => format!("since {}", long_date(h.starts_on)),
            },
            current: h.is_current(r.today),
            statement: h.role() == Role::Leaseholder,
        })
        .collect()
}

pub(crate) struct InvoiceRow {
    pub id: Uuid,
    pub number: String,
    pub unit: String,
    pub issued: String,
    pub due: String,
    pub total: String,
    pub balance: String,
    pub status: String,
    pub overdue: bool,
}

fn invoice_row(i: &Invoice, today: Date) -> InvoiceRow {
    InvoiceRow {
        id: i.id,
        number: i.label(),
        unit: i.unit_reference.clone(),
        issued: i.issue_date.map(long_date).unwrap_or_default(),
        due: i.due_date.map(long_date).unwrap_or_default(),
        total: format_pence(i.total_pence),
        balance: format_pence(i.balance_pence()),
        status: i.status().label().to_owned(),
        overdue: i.balance_pence() > 0 && i.due_date.is_some_and(|d| d < today),
    }
}

pub(crate) struct RequestRow {
    pub id: Uuid,
    pub reference: String,
    pub title: String,
    pub place: String,
    pub status: &'static str,
    pub raised: String,
}

pub(crate) struct NoticeRow {
    pub id: Uuid,
    pub title: String,
    pub place: String,
    pub published: String,
    pub read: bool,
}

fn notice_row((n, read): &(resident::Notice, bool)) -> NoticeRow {
    NoticeRow {
        id: n.id,
        title: n.title.clone(),
        place: n.place(),
        published: uk_long_date(n.published_at),
        read: *read,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "residence/home.html")]
struct HomePage {
    chrome: Chrome,
    name: String,
    units: Vec<UnitRow>,
    balance: String,
    owing: bool,
    next_due: Option<String>,
    overdue: Option<String>,
    invoices: Vec<InvoiceRow>,
    requests: Vec<RequestRow>,
    notices: Vec<NoticeRow>,
}

async fn home(State(state): State<AppState>, Extension(org): Org, headers: HeaderMap) -> Page {
    let mut r = resident_or_sign_in!(state, headers, org);
    let invoices = resident::visible_invoices(&mut r.tx, &r.holdings, r.contact).await?;
    let open: Vec<&Invoice> = invoices
        .iter()
        .filter(|i| {
            i.balance_pence() > 0 && matches!(i.status.as_str(), "approved" | "sent" | "part_paid")
        })
        .collect();
    let balance: i64 = open.iter().map(|i| i.balance_pence()).sum();
    let overdue: i64 = open
        .iter()
        .filter(|i| i.due_date.is_some_and(|d| d < r.today))
        .map(|i| i.balance_pence())
        .sum();
    let next_due = open
        .iter()
        .filter_map(|i| i.due_date)
        .filter(|d| *d >= r.today)
        .min();
    let requests = ops::issues_reported_by(&mut r.tx, r.contact).await?;
    let notices = resident::notices_for(&mut r.tx, &r.holdings, r.account.id, r.today, 5).await?;
    let page = HomePage {
        chrome: Chrome::of(&state, &org, Some(&r)),
        name: r.account.name.clone(),
        units: unit_rows(&r),
        balance: format_pence(balance),
        owing: balance > 0,
        next_due: next_due.map(long_date),
        overdue: (overdue > 0).then(|| format_pence(overdue)),
        invoices: invoices
            .iter()
            .take(10)
            .map(|i| invoice_row(i, r.today))
            .collect(),
        requests: requests
            .iter()
            .filter(|i| !matches!(i.status(), IssueStatus::Closed | IssueStatus::Resolved))
            .map(request_row)
            .collect(),
        notices: notices.iter().map(notice_row).collect(),
    };
    r.tx.commit_portal().await?;
    Ok(page.into_response())
}

fn request_row(i: &ops::Issue) -> RequestRow {
    RequestRow {
        id: i.id,
        reference: i.reference.clone(),
        title: i.title.clone(),
        place: i.place.clone(),
        status: i.status().label(),
        raised: uk_long_date(i.created_at),
    }
}

// ---------------------------------------------------------------------------------------------
// Statement and documents of money

pub(crate) fn query_map(raw: Option<String>) -> std::collections::HashMap<String, String> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// The period asked for, within the holding: a year to today by default.
fn period(
    holding: &Holding,
    query: &std::collections::HashMap<String, String>,
    today: Date,
) -> Result<(Date, Date, Option<String>), WebError> {
    let mut problem = None;
    let mut date = |key: &str, label: &str| -> Option<Date> {
        let raw = query.get(key).map(|s| s.trim()).filter(|s| !s.is_empty())?;
        match parse_uk_date(raw) {
            Ok(d) => Some(d),
            Err(_) => {
                problem = Some(format!(
                    "The {label} is not a date. Write it like 10/05/2026 or 2026-05-10."
                ));
                None
            }
        }
    };
    let end = holding
        .last_day()
        .unwrap_or(today)
        .min(today.max(holding.starts_on));
    let to = date("to", "end date").unwrap_or(end);
    let from = date("from", "start date").unwrap_or_else(|| {
        to.replace_year(to.year() - 1)
            .unwrap_or(to)
            .next_day()
            .unwrap_or(to)
    });
    match resident::statement_window(holding, from, to) {
        Some((f, t)) => Ok((f, t, problem)),
        None => {
            let f = holding.starts_on;
            Ok((
                f,
                end.max(f),
                Some(
                    "That period is outside the time you held this unit; the statement shows your whole holding."
                        .into(),
                ),
            ))
        }
    }
}

struct StatementLine {
    date: String,
    description: String,
    charge: String,
    payment: String,
    balance: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "residence/statement.html")]
struct StatementPage {
    chrome: Chrome,
    unit_id: Uuid,
    place: String,
    from: String,
    to: String,
    from_iso: String,
    to_iso: String,
    problem: Option<String>,
    opening: String,
    lines: Vec<StatementLine>,
    closing: String,
    overdue: String,
    read_only: Option<String>,
    invoices: Vec<InvoiceRow>,
}

/// A leaseholder's own holding of a unit, or 404.
fn leasehold(r: &Resident, unit: &str) -> Result<Holding, WebError> {
    let unit = Uuid::parse_str(unit).map_err(|_| WebError::NotFound)?;
    r.holdings
        .iter()
        .find(|h| h.unit_id == unit && h.role() == Role::Leaseholder)
        .cloned()
        .ok_or(WebError::NotFound)
}

async fn statement(
    State(state): State<AppState>,
    Extension(org): Org,
    headers: HeaderMap,
    Path(unit): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let mut r = resident_or_sign_in!(state, headers, org);
    let holding = leasehold(&r, &unit)?;
    let (from, to, problem) = period(&holding, &query_map(raw), r.today)?;
    let st = rx::statement(&mut r.tx, holding.unit_id, from, to)
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let invoices = resident::visible_invoices(&mut r.tx, &r.holdings, r.contact).await?;
    let page = StatementPage {
        chrome: Chrome::of(&state, &org, Some(&r)),
        unit_id: holding.unit_id,
        place: holding.place(),
        from: long_date(from),
        to: long_date(to),
        from_iso: iso_date(from),
        to_iso: iso_date(to),
        problem,
        opening: format_pence(st.opening_pence),
        lines: st
            .rows
            .iter()
            .map(|row| StatementLine {
                date: long_date(row.date),
                description: row.description.clone(),
                charge: if row.amount_pence > 0 {
                    format_pence(row.amount_pence)
                } else {
                    String::new()
                },
                payment: if row.amount_pence < 0 {
                    format_pence(-row.amount_pence)
                } else {
                    String::new()
                },
                balance: format_pence(row.balance_pence),
            })
            .collect(),
        closing: format_pence(st.closing_pence),
        overdue: format_pence(st.overdue_pence),
        read_only: holding
            .last_day()
            .filter(|_| !holding.is_current(r.today))
            .map(|d| {
                format!(
                    "You held this unit until {}. Its history up to then is shown read-only.",
                    long_date(d)
                )
            }),
        invoices: invoices
            .iter()
            .filter(|i| i.unit_id == holding.unit_id)
            .map(|i| invoice_row(i, r.today))
            .collect(),
    };
    r.tx.commit_portal().await?;
    Ok(page.into_response())
}

async fn statement_pdf(
    State(state): State<AppState>,
    Extension(org): Org,
    headers: HeaderMap,
    Path(unit): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let mut r = resident_or_sign_in!(state, headers, org);
    let holding = leasehold(&r, &unit)?;
    let (from, to, _) = period(&holding, &query_map(raw), r.today)?;
    let unit = proplink_db::portfolio::unit(&mut r.tx, holding.unit_id)
        .await?
        .ok_or(WebError::NotFound)?;
    let document =
        money_pdf::statement_document(&mut r.tx, &unit, from, to, &org.name, Some(r.contact))
            .await?;
    r.tx.commit_portal().await?;
    let (bytes, _) = money_pdf::render(&state, document).await?;
    let filename = format!(
        "statement-{}-{}-{}.pdf",
        unit.reference.replace(' ', "-"),
        iso_date(from),
        iso_date(to)
    );
    Ok(money_pdf::pdf_response(bytes, &filename))
}

/// An invoice the resident may see, or 404.
async fn visible_invoice(r: &mut Resident, id: &str) -> Result<Invoice, WebError> {
    let id = Uuid::parse_str(id).map_err(|_| WebError::NotFound)?;
    let invoice = rx::find_invoice(&mut r.tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    if !resident::may_see_invoice(&r.holdings, r.contact, &invoice) {
        return Err(WebError::NotFound);
    }
    Ok(invoice)
}

struct LineRow {
    description: String,
    net: String,
    vat: String,
}

struct PaymentRow {
    id: Uuid,
    when: String,
    method: &'static str,
    amount: String,
    status: &'static str,
    test_mode: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "residence/invoice.html")]
struct InvoicePage {
    chrome: Chrome,
    invoice: InvoiceRow,
    kind: String,
    place: String,
    lines: Vec<LineRow>,
    paid: String,
    payable: Option<String>,
    too_small: bool,
    read_only: bool,
    payments: Vec<PaymentRow>,
    message: Option<String>,
}

pub(crate) fn payment_status_label(status: &str) -> &'static str {
    match status {
        "pending" => "Waiting for confirmation",
        "submitted" => "Submitted to your bank",
        "paid" => "Paid",
        "failed" => "Failed",
        "cancelled" => "Cancelled",
        "expired" => "Not completed",
        _ => "Returned by your bank",
    }
}

pub(crate) async fn invoice_page(
    state: &AppState,
    org: &Organisation,
    mut r: Resident,
    invoice: Invoice,
    message: Option<String>,
) -> Page {
    let lines = rx::invoice_lines(&mut r.tx, invoice.id).await?;
    let payable = resident::payable_pence(&mut r.tx, &invoice).await?;
    let payments = resident::payments_of_invoice(&mut r.tx, invoice.id).await?;
    let holding = r.holding(invoice.unit_id)?.clone();
    let page = InvoicePage {
        chrome: Chrome::of(state, org, Some(&r)),
        invoice: invoice_row(&invoice, r.today),
        kind: invoice.kind().label().to_owned(),
        place: holding.place(),
        lines: lines
            .iter()
            .map(|l| LineRow {
                description: l.description.clone(),
                net: format_pence(l.net_pence),
                vat: format_pence(l.vat_pence),
            })
            .collect(),
        paid: format_pence(invoice.paid_pence),
        payable: (payable > 0).then(|| format_pence(payable)),
        too_small: payable > 0
            && payable < proplink_integrations::payments::stripe::MINIMUM_AMOUNT_PENCE,
        read_only: !r.holds_now(invoice.unit_id),
        payments: payments
            .iter()
            .map(|p| PaymentRow {
                id: p.id,
                when: uk_long_date(p.created_at),
                method: if p.method == "card" {
                    "Card"
                } else {
                    "Direct Debit"
                },
                amount: format_pence(p.amount_pence),
                status: payment_status_label(&p.status),
                test_mode: p.test_mode,
            })
            .collect(),
        message,
    };
    r.tx.commit_portal().await?;
    Ok(page.into_response())
}

async fn invoice(
    State(state): State<AppState>,
    Extension(org): Org,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Page {
    let mut r = resident_or_sign_in!(state, headers, org);
    let invoice = visible_invoice(&mut r, &id).await?;
    invoice_page(&state, &org, r, invoice, None).await
}

async fn invoice_pdf(
    State(state): State<AppState>,
    Extension(org): Org,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Page {
    let mut r = resident_or_sign_in!(state, headers, org);
    let inv = visible_invoice(&mut r, &id).await?;
    let unit = proplink_db::portfolio::unit(&mut r.tx, inv.unit_id)
        .await?
        .ok_or(WebError::NotFound)?;
    let Some(number) = inv.number.clone() else {
        return Err(WebError::NotFound);
    };
    let filename = format!("{number}.pdf");
    let by = r.account.name.clone();
    let pdf = money_pdf::stored_or_fresh(
        &state,
        &mut r.tx,
        "debtor_invoice",
        inv.id,
        &unit,
        None,
        &filename,
        &by,
        async |tx| money_pdf::invoice_document(tx, &inv, &unit, &org.name).await,
    )
    .await?;
    r.tx.commit_portal().await?;
    Ok(money_pdf::pdf_response(pdf.bytes, &filename))
}

// ---------------------------------------------------------------------------------------------
// Requests

#[derive(Template, WebTemplate)]
#[template(path = "residence/requests.html")]
struct RequestsPage {
    chrome: Chrome,
    requests: Vec<RequestRow>,
}

async fn requests(State(state): State<AppState>, Extension(org): Org, headers: HeaderMap) -> Page {
    let mut r = resident_or_sign_in!(state, headers, org);
    let found = ops::issues_reported_by(&mut r.tx, r.contact).await?;
    let page = RequestsPage {
        chrome: Chrome::of(&state, &org, Some(&r)),
        requests: found.iter().map(request_row).collect(),
    };
    r.tx.commit_portal().await?;
    Ok(page.into_response())
}

struct PlaceChoice {
    value: String,
    label: String,
    selected: bool,
}

struct CategoryChoice {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "residence/request_new.html")]
struct RequestForm {
    chrome: Chrome,
    places: Vec<PlaceChoice>,
    categories: Vec<CategoryChoice>,
    title: String,
    description: String,
    problem: Option<String>,
}

/// Where a resident may report: each current unit, or the communal areas of its site.
fn place_choices(r: &Resident, chosen: &str) -> Vec<PlaceChoice> {
    let mut out = Vec::new();
    for h in r.current() {
        out.push(PlaceChoice {
            value: format!("unit:{}", h.unit_id),
            label: format!("My home: {}", h.place()),
            selected: chosen == format!("unit:{}", h.unit_id),
        });
    }
    let mut sites: Vec<(Uuid, Option<Uuid>, String)> = Vec::new();
    for h in r.current() {
        if !sites
            .iter()
            .any(|(s, b, _)| *s == h.site_id && *b == h.building_id)
        {
            let name = match &h.building_name {
                Some(b) => format!("{b}, {}", h.site_name),
                None => h.site_name.clone(),
            };
            sites.push((h.site_id, h.building_id, name));
        }
    }
    for (site, building, name) in sites {
        let value = match building {
            Some(b) => format!("building:{b}"),
            None => format!("site:{site}"),
        };
        out.push(PlaceChoice {
            selected: chosen == value,
            value,
            label: format!("A communal area: {name}"),
        });
    }
    out
}

fn request_form_page(
    state: &AppState,
    org: &Organisation,
    r: &Resident,
    v: &FormData,
    problem: Option<String>,
) -> RequestForm {
    RequestForm {
        chrome: Chrome::of(state, org, Some(r)),
        places: place_choices(r, v.get("place")),
        categories: IssueCategory::ALL
            .iter()
            .map(|c| CategoryChoice {
                value: c.as_str(),
                label: c.label(),
                selected: v.get("category") == c.as_str(),
            })
            .collect(),
        title: v.get("title").to_owned(),
        description: v.get("description").to_owned(),
        problem,
    }
}

async fn request_form(
    State(state): State<AppState>,
    Extension(org): Org,
    headers: HeaderMap,
) -> Page {
    let r = resident_or_sign_in!(state, headers, org);
    let page = request_form_page(&state, &org, &r, &FormData::default(), None);
    r.tx.commit_portal().await?;
    Ok(page.into_response())
}

/// The location a form's place names, if it is one of the resident's.
fn location_of(r: &Resident, place: &str) -> Option<Location> {
    let (kind, id) = place.split_once(':')?;
    let id = Uuid::parse_str(id).ok()?;
    let h = match kind {
        "unit" => r.current().find(|h| h.unit_id == id)?,
        "building" => r.current().find(|h| h.building_id == Some(id))?,
        "site" => r.current().find(|h| h.site_id == id)?,
        _ => return None,
    };
    Some(Location {
        site_id: h.site_id,
        building_id: match kind {
            "unit" | "building" => h.building_id,
            _ => None,
        },
        unit_id: (kind == "unit").then_some(h.unit_id),
        space_id: None,
    })
}

/// POST /requests: a new issue with its photos, as the admin app's issue queue shows it.
async fn raise_request(
    State(state): State<AppState>,
    Extension(org): Org,
    headers: HeaderMap,
    multipart: Multipart,
) -> Page {
    // The body first: a slow upload holds no database connection.
    let posted = uploads::read(multipart).await;
    let r = resident_or_sign_in!(state, headers, org);
    let posted = match posted {
        Ok(p) => p,
        Err(problem) => {
            let page = request_form_page(&state, &org, &r, &FormData::default(), Some(problem));
            r.tx.commit_portal().await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let v = &posted.values;
    let refuse = |r: Resident, problem: &str| {
        let page = request_form_page(&state, &org, &r, v, Some(problem.to_owned()));
        (r, (StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
    };
    let Some(location) = location_of(&r, v.get("place")) else {
        let (r, resp) = refuse(
            r,
            "Choose where the problem is: your home or a communal area.",
        );
        r.tx.commit_portal().await?;
        return Ok(resp);
    };
    let Some(category) = IssueCategory::parse(v.get("category")) else {
        let (r, resp) = refuse(r, "Choose what kind of problem it is.");
        r.tx.commit_portal().await?;
        return Ok(resp);
    };
    let title = v.get("title").trim();
    if title.is_empty() || title.chars().count() > 200 {
        let (r, resp) = refuse(
            r,
            "Say in a few words what is wrong (up to 200 characters).",
        );
        r.tx.commit_portal().await?;
        return Ok(resp);
    }
    if [v.get("title"), v.get("description")].iter().any(|t| {
        t.chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    }) {
        let (r, resp) = refuse(r, "The text has characters that cannot be printed.");
        r.tx.commit_portal().await?;
        return Ok(resp);
    }
    if v.get("description").chars().count() > 5000 {
        let (r, resp) = refuse(r, "The description is at most 5,000 characters.");
        r.tx.commit_portal().await?;
        return Ok(resp);
    }
    let photos: Vec<_> = posted.files_in("photos").collect();
    let stored = match uploads::store(
        &state,
        org.id,
        &photos,
        MediaType::PHOTOS,
        "photo",
        &r.account.name,
    )
    .await
    {
        Ok(s) => s,
        Err(problem) => {
            let (r, resp) = refuse(r, &problem);
            r.tx.commit_portal().await?;
            return Ok(resp);
        }
    };
    let mut r = r;
    let now = state.now();
    let input = IssueInput {
        location,
        title: title.to_owned(),
        description: Some(v.get("description").to_owned()),
        category,
        priority: if category == IssueCategory::WaterLeak || category == IssueCategory::FireSafety {
            Priority::High
        } else {
            Priority::Medium
        },
        reporter_kind: ReporterKind::Resident,
        reporter_contact_id: Some(r.contact),
        reporter_name: r.account.name.clone(),
        reporter_email: EmailAddress::parse(&r.account.email).ok(),
        channel: "residenceport".into(),
    };
    let (id, _) = match ops::create_issue(&mut r.tx, &input, now).await {
        Ok(done) => done,
        Err(ops::OpsError::Invalid(problem)) => {
            let (r, resp) = refuse(r, &problem);
            r.tx.rollback().await?;
            return Ok(resp);
        }
        Err(e) => return Err(WebError::Internal(e.to_string())),
    };
    for f in &stored {
        ops::record_file(&mut r.tx, Attachment::Issue(id), f, now).await?;
    }
    r.tx.commit_portal().await?;
    Ok(Redirect::to(&format!("/requests/{id}")).into_response())
}

struct MessageRow {
    from: String,
    staff: bool,
    when: String,
    body: String,
}

struct PhotoRow {
    id: Uuid,
    name: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "residence/request.html")]
struct RequestPage {
    chrome: Chrome,
    request: RequestRow,
    description: String,
    category: String,
    status_note: Option<String>,
    resolved: bool,
    messages: Vec<MessageRow>,
    photos: Vec<PhotoRow>,
    problem: Option<String>,
}

/// An issue this resident reported, or 404.
async fn own_request(r: &mut Resident, id: &str) -> Result<ops::Issue, WebError> {
    let id = Uuid::parse_str(id).map_err(|_| WebError::NotFound)?;
    let reporter = resident::issue_reporter(&mut r.tx, id).await?;
    if reporter != Some(r.contact) {
        return Err(WebError::NotFound);
    }
    ops::find_issue(&mut r.tx, id)
        .await?
        .ok_or(WebError::NotFound)
}

async fn request_view(
    state: &AppState,
    org: &Organisation,
    mut r: Resident,
    issue: ops::Issue,
    problem: Option<String>,
) -> Page {
    let messages = resident::messages(&mut r.tx, issue.id).await?;
    let photos = ops::files_of(&mut r.tx, Attachment::Issue(issue.id)).await?;
    let page = RequestPage {
        chrome: Chrome::of(state, org, Some(&r)),
        request: request_row(&issue),
        description: issue.description.clone().unwrap_or_default(),
        category: IssueCategory::parse(&issue.category)
            .map(|c| c.label())
            .unwrap_or("Other")
            .to_owned(),
        status_note: issue.status_note.clone(),
        resolved: issue.status() == IssueStatus::Resolved,
        messages: messages
            .iter()
            .map(|m| MessageRow {
                from: if m.author_kind == "staff" {
                    format!("{} ({})", m.author_name, org.name)
                } else {
                    m.author_name.clone()
                },
                staff: m.author_kind == "staff",
                when: uk_long_date(m.created_at),
                body: m.body.clone(),
            })
            .collect(),
        photos: photos
            .iter()
            .map(|f| PhotoRow {
                id: f.id,
                name: f.original_name.clone(),
            })
            .collect(),
        problem,
    };
    r.tx.commit_portal().await?;
    Ok(page.into_response())
}

async fn request_page(
    State(state): State<AppState>,
    Extension(org): Org,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Page {
    let mut r = resident_or_sign_in!(state, headers, org);
    let issue = own_request(&mut r, &id).await?;
    request_view(&state, &org, r, issue, None).await
}

async fn request_message(
    State(state): State<AppState>,
    Extension(org): Org,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let mut r = resident_or_sign_in!(state, headers, org);
    let issue = own_request(&mut r, &id).await?;
    let v = FormData::parse(&body);
    let name = r.account.name.clone();
    match resident::add_message(
        &mut r.tx,
        issue.id,
        "resident",
        &name,
        v.get("body"),
        state.now(),
    )
    .await
    {
        Ok(_) => {
            r.tx.commit_portal().await?;
            Ok(Redirect::to(&format!("/requests/{}", issue.id)).into_response())
        }
        Err(proplink_db::ledger::LedgerError::Refused(problem)) => {
            request_view(&state, &org, r, issue, Some(problem)).await
        }
        Err(e) => Err(WebError::Internal(e.to_string())),
    }
}

async fn request_photo(
    State(state): State<AppState>,
    Extension(org): Org,
    headers: HeaderMap,
    Path((id, file)): Path<(String, String)>,
) -> Page {
    let mut r = resident_or_sign_in!(state, headers, org);
    let issue = own_request(&mut r, &id).await?;
    let file = Uuid::parse_str(&file).map_err(|_| WebError::NotFound)?;
    let photos = ops::files_of(&mut r.tx, Attachment::Issue(issue.id)).await?;
    let found = photos
        .into_iter()
        .find(|f| f.id == file)
        .ok_or(WebError::NotFound)?;
    r.tx.commit_portal().await?;
    uploads::serve(&state, &found, false).await
}

// ---------------------------------------------------------------------------------------------
// Notices

#[derive(Template, WebTemplate)]
#[template(path = "residence/notices.html")]
struct NoticesPage {
    chrome: Chrome,
    notices: Vec<NoticeRow>,
}

async fn notices(State(state): State<AppState>, Extension(org): Org, headers: HeaderMap) -> Page {
    let mut r = resident_or_sign_in!(state, headers, org);
    let found = resident::notices_for(&mut r.tx, &r.holdings, r.account.id, r.today, 100).await?;
    let page = NoticesPage {
        chrome: Chrome::of(&state, &org, Some(&r)),
        notices: found.iter().map(notice_row).collect(),
    };
    r.tx.commit_portal().await?;
    Ok(page.into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "residence/notice.html")]
struct NoticePage {
    chrome: Chrome,
    title: String,
    place: String,
    published: String,
    paragraphs: Vec<String>,
}

/// GET /notices/{id}: the notice, noting that this resident has read it.
async fn notice_page(
    State(state): State<AppState>,
    Extension(org): Org,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Page {
    let mut r = resident_or_sign_in!(state, headers, org);
    let id = Uuid::parse_str(&id).map_err(|_| WebError::NotFound)?;
    let notice = resident::find_notice(&mut r.tx, id)
        .await?
        .filter(|n| n.reaches(&r.holdings, r.today))
        .ok_or(WebError::NotFound)?;
    resident::mark_read(&mut r.tx, notice.id, r.account.id, state.now()).await?;
    let page = NoticePage {
        chrome: Chrome::of(&state, &org, Some(&r)),
        title: notice.title.clone(),
        place: notice.place(),
        published: uk_long_date(notice.published_at),
        paragraphs: notice
            .body
            .split("\n\n")
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect(),
    };
    r.tx.commit_portal().await?;
    Ok(page.into_response())
}

// ---------------------------------------------------------------------------------------------
// Shared documents

struct DocumentRow {
    id: Uuid,
    folder: String,
    place: String,
    name: String,
    size: String,
    added: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "residence/documents.html")]
struct DocumentsPage {
    chrome: Chrome,
    documents: Vec<DocumentRow>,
}

/// The files the resident's audience allows, with the site each is for. A folder shared with
/// one building or unit reaches only its residents.
async fn shared_files(
    r: &mut Resident,
) -> Result<Vec<(proplink_db::folders::Folder, ops::FileRecord)>, WebError> {
    let mut sites: Vec<Uuid> = r.current().map(|h| h.site_id).collect();
    sites.sort();
    sites.dedup();
    let mut out = Vec::new();
    for site in sites {
        let viewer = r.viewer(site);
        for (folder, file) in proplink_db::folders::visible_files(&mut r.tx, site, viewer).await? {
            let reaches = r.current().any(|h| {
                h.site_id == folder.site_id
                    && folder.building_id.is_none_or(|b| h.building_id == Some(b))
                    && folder.unit_id.is_none_or(|u| h.unit_id == u)
            });
            if reaches {
                out.push((folder, file));
            }
        }
    }
    Ok(out)
}

async fn documents(State(state): State<AppState>, Extension(org): Org, headers: HeaderMap) -> Page {
    let mut r = resident_or_sign_in!(state, headers, org);
    let files = shared_files(&mut r).await?;
    let page = DocumentsPage {
        chrome: Chrome::of(&state, &org, Some(&r)),
        documents: files
            .iter()
            .map(|(folder, f)| DocumentRow {
                id: f.id,
                folder: folder.name.clone(),
                place: folder.site_name.clone(),
                name: f.original_name.clone(),
                size: crate::admin::operations::human_size(f.size_bytes),
                added: uk_long_date(f.created_at),
            })
            .collect(),
    };
    r.tx.commit_portal().await?;
    Ok(page.into_response())
}

async fn document(
    State(state): State<AppState>,
    Extension(org): Org,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Page {
    let mut r = resident_or_sign_in!(state, headers, org);
    let id = Uuid::parse_str(&id).map_err(|_| WebError::NotFound)?;
    let files = shared_files(&mut r).await?;
    let (_, file) = files
        .into_iter()
        .find(|(_, f)| f.id == id)
        .ok_or(WebError::NotFound)?;
    proplink_db::folders::record_access(
        &mut r.tx,
        file.id,
        "download",
        Some("ResidencePort"),
        state.now(),
    )
    .await?;
    r.tx.commit_portal().await?;
    uploads::serve(&state, &file, false).await
}

// ---------------------------------------------------------------------------------------------
// Profile

#[derive(Template, WebTemplate)]
#[template(path = "residence/profile.html")]
struct ProfilePage {
    chrome: Chrome,
    email: String,
    d: resident::Details,
    pending: Vec<(String, String, String)>,
    message: Option<String>,
    problem: Option<String>,
}

async fn profile_page(
    state: &AppState,
    org: &Organisation,
    mut r: Resident,
    d: Option<resident::Details>,
    message: Option<String>,
    problem: Option<String>,
) -> Page {
    let stored = resident::details(&mut r.tx, r.contact)
        .await?
        .ok_or(WebError::NotFound)?;
    let pending = resident::pending_change(&mut r.tx, r.contact).await?;
    let page = ProfilePage {
        chrome: Chrome::of(state, org, Some(&r)),
        email: r.account.email.clone(),
        d: d.unwrap_or(stored),
        pending: pending.map(|p| p.lines()).unwrap_or_default(),
        message,
        problem,
    };
    r.tx.commit_portal().await?;
    Ok(page.into_response())
}

async fn profile(
    State(state): State<AppState>,
    Extension(org): Org,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Page {
    let r = resident_or_sign_in!(state, headers, org);
    let message = match query_map(raw).get("saved").map(String::as_str) {
        Some("1") => Some("Saved.".to_owned()),
        Some("2") => Some("Saved. The changes to your name or address are waiting for your managing agent to accept them.".to_owned()),
        _ => None,
    };
    profile_page(&state, &org, r, None, message, None).await
}

/// The form's details, checked: UK postcode, phone number, lengths.
fn details_from(v: &FormData) -> Result<resident::Details, String> {
    let text = |k: &str, max: usize, label: &str| -> Result<Option<String>, String> {
        let t = v.get(k).trim();
        if t.chars().count() > max {
            return Err(format!("{label} is at most {max} characters."));
        }
        if t.chars().any(char::is_control) {
            return Err(format!("{label} has characters that cannot be printed."));
        }
        Ok((!t.is_empty()).then(|| t.to_owned()))
    };
    let postcode = match v.get("postcode").trim() {
        "" => None,
        raw => Some(
            proplink_domain::uk::Postcode::parse(raw)
                .map_err(|_| "That is not a UK postcode, e.g. LS1 4AP.".to_owned())?
                .to_string(),
        ),
    };
    let phone = match v.get("phone").trim() {
        "" => None,
        raw => Some(
            proplink_domain::uk::PhoneNumber::parse(raw)
                .map_err(|_| {
                    "That is not a UK phone number, e.g. 0113 496 0000 or 07700 900123.".to_owned()
                })?
                .as_str()
                .to_owned(),
        ),
    };
    let correspondence = match v.get("correspondence") {
        "post" => "post",
        "email" | "" => "email",
        _ => return Err("Choose e-mail or post.".into()),
    };
    let d = resident::Details {
        title: text("title", 20, "Title")?,
        first_name: text("first_name", 100, "First name")?,
        last_name: text("last_name", 100, "Last name")?,
        address_line_1: text("address_line_1", 200, "Address line 1")?,
        address_line_2: text("address_line_2", 200, "Address line 2")?,
        city: text("city", 100, "Town or city")?,
        postcode,
        correspondence: correspondence.to_owned(),
        phone,
    };
    if d.last_name.is_none() {
        return Err("Your last name cannot be empty.".into());
    }
    Ok(d)
}

async fn save_profile(
    State(state): State<AppState>,
    Extension(org): Org,
    headers: HeaderMap,
    body: Bytes,
) -> Page {
    let mut r = resident_or_sign_in!(state, headers, org);
    let v = FormData::parse(&body);
    let details = match details_from(&v) {
        Ok(d) => d,
        Err(problem) => {
            let typed = resident::Details {
                title: Some(v.get("title").to_owned()),
                first_name: Some(v.get("first_name").to_owned()),
                last_name: Some(v.get("last_name").to_owned()),
                address_line_1: Some(v.get("address_line_1").to_owned()),
                address_line_2: Some(v.get("address_line_2").to_owned()),
                city: Some(v.get("city").to_owned()),
                postcode: Some(v.get("postcode").to_owned()),
                correspondence: v.get("correspondence").to_owned(),
                phone: Some(v.get("phone").to_owned()),
            };
            return profile_page(&state, &org, r, Some(typed), None, Some(problem)).await;
        }
    };
    let (contact, account) = (r.contact, r.account.id);
    let waiting = resident::change_details(&mut r.tx, contact, account, &details, state.now())
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    r.tx.commit_portal().await?;
    Ok(Redirect::to(if waiting {
        "/profile?saved=2"
    } else {
        "/profile?saved=1"
    })
    .into_response())
}
