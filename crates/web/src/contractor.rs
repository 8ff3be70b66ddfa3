//! ContractorPort (docs-spec §2.10): a contractor invited to one work order opens a signed,
//! time-limited link. No account, no password: the link starts a session limited to that one
//! invitation (cookie `pl_contractor`, host-only), and every page and action reads the grant
//! from it. The contractor sees the work order's scope, place, access notes and the documents
//! staff shared, and nothing else of the organisation; their actions are audited as actor
//! kind contractor on channel ContractorPort, in the same rows the admin app shows. Once the
//! work is complete the awarded contractor sends their invoice with its file, which becomes a
//! draft bill coded to the work order for the manager to check (`db::bill_intake`).
//!
//! A link URL names no organisation; the session cookie carries the organisation's id beside
//! the session token (the token alone decides: under another organisation's id it finds
//! nothing). Expired or revoked links offer a fresh link sent to the invited address.

use crate::admin::form::FormData;
use crate::error::WebError;
use crate::session;
use crate::state::AppState;
use crate::uploads;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::body::Bytes;
use axum::extract::multipart::Multipart;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use proplink_db::TenantTx;
use proplink_db::bill_intake::{self, ContractorInvoice};
use proplink_db::bills::{self, Bill, BillStatus};
use proplink_db::ledger::LedgerError;
use proplink_db::links::{self, LinkGrant, LinkRefusal, ResolveError};
use proplink_db::operations::{self as ops, Attachment, Invitation, QuoteInput, WorkOrder};
use proplink_db::rate_limit::{self, Decision, Limit};
use proplink_db::tenant::{Actor, TenantContext};
use proplink_domain::dates::long_date;
use proplink_domain::folders::Viewer;
use proplink_domain::operations::{QuoteAmounts, WorkOrderStatus};
use proplink_domain::uk::{format_pence, parse_pounds_to_pence, parse_uk_date};
use proplink_domain::{ActorKind, Channel, OrgId};
use proplink_files::MediaType;
use std::net::SocketAddr;
use uuid::Uuid;

/// The contractor's session cookie.
pub const COOKIE: &str = "pl_contractor";

type Page = Result<Response, WebError>;

pub fn router() -> Router<AppState> {
    let upload = || axum::extract::DefaultBodyLimit::max(uploads::UPLOAD_BODY);
    Router::new()
        .route("/", get(home))
        .route("/job", get(job))
        .route("/job/accept", post(accept))
        .route("/job/decline", post(decline))
        .route("/job/quote", post(quote).layer(upload()))
        .route("/job/certificates", post(certificate).layer(upload()))
        .route("/job/progress", post(progress))
        .route("/job/photos", post(photos).layer(upload()))
        .route("/job/complete", post(complete).layer(upload()))
        .route("/job/invoice", post(invoice).layer(upload()))
        .route("/job/invoices/{id}/document", get(invoice_document))
        .route("/job/files/{id}", get(file))
        .route("/job/files/{id}/thumbnail", get(thumbnail))
        .route("/account/{slug}", get(account_form).post(account_code))
        .route("/account/{slug}/verify", post(account_verify))
        .route("/account/{slug}/jobs", get(account_jobs))
        .route("/account/{slug}/jobs/{invitation}", post(account_open_job))
        .route("/{token}", get(open))
        .route("/{token}/resend", post(resend))
}

#[derive(Template, WebTemplate)]
#[template(path = "contractor/notice.html")]
struct Notice {
    title: String,
    message: String,
    /// Offer a fresh link for this token.
    resend_token: Option<String>,
}

fn notice(status: StatusCode, title: &str, message: &str, resend: Option<String>) -> Response {
    (
        status,
        Notice {
            title: title.into(),
            message: message.into(),
            resend_token: resend,
        },
    )
        .into_response()
}

async fn home() -> Response {
    notice(
        StatusCode::OK,
        "ContractorPort",
        "Open the link in your invitation e-mail to see your work order.",
        None,
    )
}

fn contractor_ctx(org: OrgId, name: &str) -> TenantContext {
    TenantContext {
        org,
        actor: Actor {
            id: None,
            kind: ActorKind::Contractor,
            name: Some(name.to_owned()),
        },
        channel: Channel::ContractorPort,
        request_id: crate::error::current_request_id(),
    }
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

/// GET /{token}: opens the link, starts the contractor's session, and sends them to the job.
async fn open(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Page {
    let ip = session::client_ip(peer.ip(), &headers, &state.settings().trusted_proxies);
    if limited(&state, &format!("contractor_link:ip:{ip}"), 120).await? {
        return Ok(notice(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            "Too many links were opened from this address. Please wait an hour and try again.",
            None,
        ));
    }
    let now = state.now();
    let grant = match links::resolve(state.db(), &token, now).await {
        Ok(g) => g,
        Err(ResolveError::Refused(r @ (LinkRefusal::Expired | LinkRefusal::Revoked))) => {
            return Ok(notice(
                StatusCode::GONE,
                "This link no longer opens",
                &format!(
                    "{r} If the work is still open, we can e-mail a fresh link to the address the invitation went to."
                ),
                Some(token),
            ));
        }
        Err(ResolveError::Refused(r)) => {
            return Ok(notice(
                StatusCode::NOT_FOUND,
                "Link not recognised",
                &r.to_string(),
                None,
            ));
        }
        Err(ResolveError::Db(e)) => return Err(e.into()),
    };
    if grant.record_type != "work_order_invitation" {
        return Err(WebError::NotFound);
    }
    let (session_token, session_hash) = proplink_auth::links::new_token();
    let name = grant
        .recipient_name
        .clone()
        .unwrap_or_else(|| grant.recipient_email.clone());
    let mut tx = state.db().begin(&contractor_ctx(grant.org, &name)).await?;
    links::start_session(&mut tx, &grant, &session_hash, now).await?;
    tx.commit().await?;
    let cookie = session::set(
        COOKIE,
        &format!("{}.{session_token}", grant.org.0),
        Some(links::SESSION_MAX),
        state.settings().tls,
    );
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (
                header::LOCATION,
                "/job"
                    .parse()
                    .map_err(|_| WebError::Internal("location".into()))?,
            ),
        ],
    )
        .into_response())
}

/// POST /{token}/resend: a fresh link to the invited address, if the work is still open. The
/// answer is the same whatever happened, so it reveals nothing about the invitation.
async fn resend(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Page {
    let ip = session::client_ip(peer.ip(), &headers, &state.settings().trusted_proxies);
    let digest = proplink_auth::links::hash_token(&token).unwrap_or_default();
    if limited(&state, &format!("contractor_resend:ip:{ip}"), 20).await?
        || limited(&state, &format!("contractor_resend:link:{digest}"), 3).await?
    {
        return Ok(notice(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            "A fresh link has already been asked for several times. Please wait an hour, or contact the managing agent.",
            None,
        ));
    }
    if let Some(lapsed) = links::lapsed(state.db(), &token).await?
        && lapsed.record_type == "work_order_invitation"
    {
        let name = lapsed
            .recipient_name
            .clone()
            .unwrap_or_else(|| lapsed.recipient_email.clone());
        let mut tx = state.db().begin(&contractor_ctx(lapsed.org, &name)).await?;
        let org_name = proplink_db::organisation::name_of(&mut tx).await?;
        let settings = state.settings().clone();
        let link = move |t: &str| settings.url(&settings.domains.contractor, &format!("/{t}"));
        match ops::reissue_link(&mut tx, lapsed.record_id, &org_name, &link, state.now()).await {
            Ok(_) => tx.commit().await?,
            Err(ops::OpsError::Db(e)) => return Err(e.into()),
            Err(_) => drop(tx),
        }
    }
    Ok(notice(
        StatusCode::OK,
        "Check your e-mail",
        "If this work order is still open, a fresh link is on its way to the address the invitation was sent to.",
        None,
    ))
}

/// The live session's grant and a transaction in its organisation, as the contractor.
struct Session {
    grant: LinkGrant,
    tx: TenantTx,
}

async fn session_of(state: &AppState, headers: &HeaderMap) -> Result<Option<Session>, WebError> {
    let Some(raw) = session::read(headers, COOKIE) else {
        return Ok(None);
    };
    let Some((org, token)) = raw.split_once('.') else {
        return Ok(None);
    };
    let (Ok(org), Some(hash)) = (
        Uuid::parse_str(org),
        proplink_auth::links::hash_token(token),
    ) else {
        return Ok(None);
    };
    let org = OrgId(org);
    // Read the grant as the system first, then act as the named contractor.
    let mut probe = state.db().begin(&contractor_ctx(org, "contractor")).await?;
    let grant = links::find_session(&mut probe, &hash, state.now()).await?;
    probe.commit().await?;
    let Some(grant) = grant.filter(|g| g.record_type == "work_order_invitation") else {
        return Ok(None);
    };
    let name = grant
        .recipient_name
        .clone()
        .unwrap_or_else(|| grant.recipient_email.clone());
    let tx = state.db().begin(&contractor_ctx(org, &name)).await?;
    Ok(Some(Session { grant, tx }))
}

fn expired_session() -> Response {
    notice(
        StatusCode::UNAUTHORIZED,
        "Your session has ended",
        "Open the link in your invitation e-mail again. If it has expired, it offers to send you a fresh one.",
        None,
    )
}

/// The invitation and work order this session is for.
async fn job_of(s: &mut Session) -> Result<(Invitation, WorkOrder), WebError> {
    let inv = ops::find_invitation(&mut s.tx, s.grant.record_id)
        .await?
        .ok_or(WebError::NotFound)?;
    let wo = ops::find_work_order(&mut s.tx, inv.work_order_id)
        .await?
        .ok_or(WebError::NotFound)?;
    Ok((inv, wo))
}

/// An invoice this contractor sent for the job, and where it has got to.
struct InvoiceLine {
    id: Uuid,
    reference: String,
    date: String,
    total: String,
    state: &'static str,
    document: bool,
}

fn invoice_line(b: &Bill) -> InvoiceLine {
    InvoiceLine {
        id: b.id,
        reference: b.supplier_reference.clone(),
        date: long_date(b.issue_date),
        total: format_pence(b.total_pence),
        state: match b.status() {
            BillStatus::Draft => "received: the manager is checking it",
            BillStatus::AwaitingApproval => "checked, awaiting approval",
            BillStatus::Approved if b.paid_pence > 0 => "approved and part paid",
            BillStatus::Approved => "approved for payment",
            BillStatus::Scheduled => "approved and in a payment run",
            BillStatus::Paid => "paid",
            BillStatus::Held => "on hold: the manager will be in touch",
            BillStatus::Voided => "not accepted",
        },
        document: b.document_key.is_some(),
    }
}

struct FileLink {
    id: Uuid,
    name: String,
    size: String,
    thumbnail: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "contractor/job.html")]
struct JobPage {
    org_name: String,
    vendor: String,
    wo: WorkOrder,
    trade: String,
    status: String,
    invitation_status: String,
    target: String,
    files: Vec<FileLink>,
    /// The site's documents in folders opened to contractors: (folder, file).
    site_files: Vec<(String, FileLink)>,
    my_quotes: Vec<(String, String, String)>,
    updates: Vec<(String, String, String)>,
    documents: Vec<(String, String, String)>,
    doc_types: Vec<(String, String)>,
    can_answer: bool,
    can_quote: bool,
    can_work: bool,
    /// The work is done: the awarded contractor may send their invoice.
    can_invoice: bool,
    invoices: Vec<InvoiceLine>,
    today: String,
    finished: bool,
    flash: Option<String>,
    problem: Option<String>,
}

async fn job(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Page {
    let Some(mut s) = session_of(&state, &headers).await? else {
        return Ok(expired_session());
    };
    let query = FormData::parse(raw.unwrap_or_default().as_bytes());
    let (inv, wo) = job_of(&mut s).await?;
    let org_name = proplink_db::organisation::name_of(&mut s.tx).await?;
    let live = inv.is_open() && wo.status() != WorkOrderStatus::Cancelled;
    let (files, site_files) = if live {
        (
            ops::files_of(&mut s.tx, Attachment::WorkOrder(wo.id)).await?,
            proplink_db::folders::visible_files(&mut s.tx, wo.site_id, Viewer::Contractor).await?,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let quotes: Vec<_> = ops::quotations(&mut s.tx, wo.id)
        .await?
        .into_iter()
        .filter(|q| q.invitation_id == inv.id)
        .collect();
    let awarded = inv.status == "awarded";
    let updates = if awarded {
        ops::updates(&mut s.tx, wo.id).await?
    } else {
        Vec::new()
    };
    let documents = ops::vendor_documents(&mut s.tx, inv.vendor_id).await?;
    let trade = proplink_db::service_categories::name_of(&mut s.tx, &wo.trade).await?;
    let invoices: Vec<InvoiceLine> = if awarded {
        bills::for_work_order(&mut s.tx, wo.id)
            .await?
            .iter()
            .filter(|b| b.vendor_id == inv.vendor_id)
            .map(invoice_line)
            .collect()
    } else {
        Vec::new()
    };
    s.tx.commit().await?;
    let nonempty = |k: &str| Some(query.get(k).trim().to_owned()).filter(|v| !v.is_empty());
    let status = wo.status();
    Ok(JobPage {
        org_name,
        vendor: inv.vendor_name.clone(),
        trade,
        status: if awarded || !wo.status().is_awarded_work() {
            status.label().to_owned()
        } else {
            "Awarded to another contractor".to_owned()
        },
        invitation_status: match inv.status.as_str() {
            "invited" => "You have been invited to quote.",
            "accepted" => "You accepted the invitation: send your quotation when ready.",
            "declined" => "You declined this invitation.",
            "quoted" => "Your quotation is with the manager.",
            "awarded" => "Your quotation was approved: the work is yours.",
            "not_awarded" => "The work was awarded to another contractor.",
            _ => "This invitation has been withdrawn.",
        }
        .into(),
        target: match (wo.target_start, wo.target_completion) {
            (Some(s), Some(e)) => format!("{} to {}", long_date(s), long_date(e)),
            (Some(s), None) => format!("from {}", long_date(s)),
            (None, Some(e)) => format!("by {}", long_date(e)),
            (None, None) => "to be agreed".into(),
        },
        // Staff's documents and photos for the job, and what this contractor uploaded.
        files: files
            .iter()
            .map(|f| FileLink {
                id: f.id,
                name: f.original_name.clone(),
                size: crate::admin::human_size(f.size_bytes),
                thumbnail: f.thumbnail_key.is_some(),
            })
            .collect(),
        site_files: site_files
            .iter()
            .map(|(folder, f)| {
                (
                    folder.name.clone(),
                    FileLink {
                        id: f.id,
                        name: f.original_name.clone(),
                        size: crate::admin::human_size(f.size_bytes),
                        thumbnail: f.thumbnail_key.is_some(),
                    },
                )
            })
            .collect(),
        my_quotes: quotes
            .iter()
            .map(|q| {
                (
                    format_pence(q.gross_pence()),
                    long_date(q.valid_until),
                    match q.status.as_str() {
                        "submitted" => "with the manager".to_owned(),
                        "approved" => "approved".to_owned(),
                        "rejected" => format!(
                            "not accepted: {}",
                            q.decision_reason.clone().unwrap_or_default()
                        ),
                        "not_awarded" => "not awarded".to_owned(),
                        _ => "replaced".to_owned(),
                    },
                )
            })
            .collect(),
        updates: updates
            .iter()
            .map(|u| {
                (
                    long_date(u.occurred_at.date()),
                    u.kind.replace('_', " "),
                    u.body.clone().unwrap_or_default(),
                )
            })
            .collect(),
        documents: documents
            .iter()
            .map(|d| {
                (
                    d.doc_type().label().to_owned(),
                    d.reference_number.clone(),
                    long_date(d.expires_on),
                )
            })
            .collect(),
        doc_types: proplink_domain::operations::DocumentType::ALL
            .iter()
            .map(|d| (d.as_str().to_owned(), d.label().to_owned()))
            .collect(),
        can_answer: inv.status == "invited" && status.can_approve(),
        can_quote: matches!(inv.status.as_str(), "invited" | "accepted" | "quoted")
            && status.can_approve(),
        can_work: awarded && status.is_awarded_work(),
        can_invoice: awarded && bill_intake::takes_invoices(status),
        invoices,
        today: {
            let d = state.now().date();
            format!("{:02}/{:02}/{}", d.day(), u8::from(d.month()), d.year())
        },
        finished: status == WorkOrderStatus::Cancelled,
        flash: nonempty("flash"),
        problem: nonempty("problem"),
        wo,
    }
    .into_response())
}

fn done(message: &str) -> Response {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("flash", message)
        .finish();
    Redirect::to(&format!("/job?{q}")).into_response()
}

fn problem(message: &str) -> Response {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("problem", message)
        .finish();
    Redirect::to(&format!("/job?{q}")).into_response()
}

/// Commits on success, or shows the refusal on the job page with nothing written.
async fn finish(s: Session, result: Result<(), ops::OpsError>, message: &str) -> Page {
    match result {
        Ok(()) => {
            s.tx.commit().await?;
            Ok(done(message))
        }
        Err(ops::OpsError::NotFound) => Err(WebError::NotFound),
        Err(ops::OpsError::Db(e)) => Err(e.into()),
        Err(refusal) => Ok(problem(&refusal.to_string())),
    }
}

async fn accept(State(state): State<AppState>, headers: HeaderMap) -> Page {
    let Some(mut s) = session_of(&state, &headers).await? else {
        return Ok(expired_session());
    };
    let id = s.grant.record_id;
    let r = ops::accept_invitation(&mut s.tx, id, state.now()).await;
    finish(
        s,
        r,
        "Thank you: you have accepted the invitation to quote.",
    )
    .await
}

async fn decline(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Page {
    let Some(mut s) = session_of(&state, &headers).await? else {
        return Ok(expired_session());
    };
    let v = FormData::parse(&body);
    let id = s.grant.record_id;
    let r = ops::decline_invitation(&mut s.tx, id, Some(v.get("reason")), state.now()).await;
    finish(s, r, "You have declined. Thank you for letting us know.").await
}

async fn read_form(multipart: Multipart) -> Result<uploads::Posted, Response> {
    uploads::read(multipart).await.map_err(|p| problem(&p))
}

async fn quote(State(state): State<AppState>, headers: HeaderMap, multipart: Multipart) -> Page {
    let Some(mut s) = session_of(&state, &headers).await? else {
        return Ok(expired_session());
    };
    let posted = match read_form(multipart).await {
        Ok(p) => p,
        Err(r) => return Ok(r),
    };
    let v = &posted.values;
    let amounts = match QuoteAmounts::parse(v.get("net"), v.get("vat")) {
        Ok(a) => a,
        Err(e) => return Ok(problem(&e.to_string())),
    };
    let valid_until = match crate::admin::uk_date(v.get("valid_until").trim()) {
        Ok(Some(d)) => d,
        Ok(None) => {
            return Ok(problem(
                "Give the date your quotation is valid until, e.g. 31/12/2026.",
            ));
        }
        Err(e) => return Ok(problem(&format!("The validity date: {e}"))),
    };
    let pdfs: Vec<_> = posted.files_in("document").collect();
    let stored = match uploads::store(
        &state,
        s.grant.org,
        &pdfs,
        &[MediaType::Pdf],
        "quotation",
        s.grant.recipient_name.as_deref().unwrap_or("Contractor"),
    )
    .await
    {
        Ok(f) => f,
        Err(p) => return Ok(problem(&p)),
    };
    let now = state.now();
    let id = s.grant.record_id;
    let input = QuoteInput {
        kind: v.get("kind").to_owned(),
        amounts,
        valid_until,
        notes: Some(v.get("notes").to_owned()),
    };
    let result = match ops::submit_quotation(&mut s.tx, id, &input, now).await {
        Ok(q) => {
            for f in &stored {
                ops::record_file(&mut s.tx, Attachment::Quotation(q), f, now).await?;
            }
            Ok(())
        }
        Err(e) => Err(e),
    };
    finish(s, result, "Your quotation has been sent to the manager.").await
}

async fn certificate(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Page {
    let Some(mut s) = session_of(&state, &headers).await? else {
        return Ok(expired_session());
    };
    let posted = match read_form(multipart).await {
        Ok(p) => p,
        Err(r) => return Ok(r),
    };
    let input = match crate::admin::parse_document(&posted.values) {
        Ok(i) => i,
        Err(p) => return Ok(problem(&p)),
    };
    let files: Vec<_> = posted.files_in("file").collect();
    if files.is_empty() {
        return Ok(problem("Attach the certificate (a PDF or a photo of it)."));
    }
    let stored = match uploads::store(
        &state,
        s.grant.org,
        &files,
        MediaType::ALL,
        "certificate",
        s.grant.recipient_name.as_deref().unwrap_or("Contractor"),
    )
    .await
    {
        Ok(f) => f,
        Err(p) => return Ok(problem(&p)),
    };
    let now = state.now();
    let (inv, wo) = job_of(&mut s).await?;
    if wo.status().is_finished() || inv.status == "withdrawn" {
        return Ok(problem("This work order is no longer open."));
    }
    let result =
        match ops::add_contractor_document(&mut s.tx, inv.vendor_id, &input, now.date()).await {
            Ok(doc) => {
                for f in &stored {
                    ops::record_file(&mut s.tx, Attachment::VendorDocument(doc), f, now).await?;
                }
                Ok(())
            }
            Err(e) => Err(e),
        };
    finish(
        s,
        result,
        "Certificate uploaded. The manager will check it against the original.",
    )
    .await
}

async fn progress(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Page {
    let Some(mut s) = session_of(&state, &headers).await? else {
        return Ok(expired_session());
    };
    let v = FormData::parse(&body);
    let (inv, wo) = job_of(&mut s).await?;
    if inv.status != "awarded" {
        return Ok(problem(
            "Progress can be recorded once your quotation is approved.",
        ));
    }
    let author = inv.vendor_name.clone();
    let r = ops::record_update(
        &mut s.tx,
        wo.id,
        v.get("kind"),
        Some(v.get("body")),
        &author,
        state.now(),
    )
    .await;
    finish(s, r, "Recorded. The manager can see it now.").await
}

/// Stores the form's files under `field` on the work order, as this contractor.
async fn attach_to_work_order(
    state: &AppState,
    s: &mut Session,
    posted: &uploads::Posted,
    field: &str,
    allowed: &[MediaType],
    purpose: &str,
    wo: Uuid,
) -> Result<Result<usize, String>, WebError> {
    let files: Vec<_> = posted.files_in(field).collect();
    let stored = match uploads::store(
        state,
        s.grant.org,
        &files,
        allowed,
        purpose,
        s.grant.recipient_name.as_deref().unwrap_or("Contractor"),
    )
    .await
    {
        Ok(f) => f,
        Err(p) => return Ok(Err(p)),
    };
    let now = state.now();
    for f in &stored {
        ops::record_file(&mut s.tx, Attachment::WorkOrder(wo), f, now).await?;
    }
    Ok(Ok(stored.len()))
}

async fn photos(State(state): State<AppState>, headers: HeaderMap, multipart: Multipart) -> Page {
    let Some(mut s) = session_of(&state, &headers).await? else {
        return Ok(expired_session());
    };
    let posted = match read_form(multipart).await {
        Ok(p) => p,
        Err(r) => return Ok(r),
    };
    let (inv, wo) = job_of(&mut s).await?;
    if inv.status != "awarded" || !wo.status().is_awarded_work() {
        return Ok(problem("Photos can be added while the work is in hand."));
    }
    match attach_to_work_order(
        &state,
        &mut s,
        &posted,
        "photos",
        MediaType::PHOTOS,
        "photo",
        wo.id,
    )
    .await?
    {
        Ok(0) => Ok(problem("Choose at least one photo.")),
        Ok(_) => finish(s, Ok(()), "Photos added.").await,
        Err(p) => Ok(problem(&p)),
    }
}

async fn complete(State(state): State<AppState>, headers: HeaderMap, multipart: Multipart) -> Page {
    let Some(mut s) = session_of(&state, &headers).await? else {
        return Ok(expired_session());
    };
    let posted = match read_form(multipart).await {
        Ok(p) => p,
        Err(r) => return Ok(r),
    };
    let (inv, wo) = job_of(&mut s).await?;
    if inv.status != "awarded" {
        return Ok(problem(
            "Only the contractor the work was awarded to can complete it.",
        ));
    }
    for (field, allowed, purpose) in [
        ("photos", MediaType::PHOTOS, "photo"),
        ("certificate", MediaType::ALL, "completion_certificate"),
    ] {
        if let Err(p) =
            attach_to_work_order(&state, &mut s, &posted, field, allowed, purpose, wo.id).await?
        {
            return Ok(problem(&p));
        }
    }
    let author = inv.vendor_name.clone();
    let r = ops::complete_work(
        &mut s.tx,
        wo.id,
        Some(posted.values.get("note")),
        &author,
        state.now(),
    )
    .await;
    finish(
        s,
        r,
        "Thank you: the work is marked complete and the manager has been told.",
    )
    .await
}

/// The invoice form's figures as typed, or the sentence saying what is wrong.
struct InvoiceFigures {
    reference: String,
    date: time::Date,
    net: i64,
    vat: i64,
    total: i64,
}

fn invoice_figures(v: &FormData) -> Result<InvoiceFigures, String> {
    let reference = v.get("invoice_number").trim().to_owned();
    if reference.is_empty() {
        return Err("Give your invoice number.".into());
    }
    let date = match v.get("invoice_date").trim() {
        "" => return Err("Give the invoice date, e.g. 31/12/2026.".into()),
        d => parse_uk_date(d).map_err(|e| format!("The invoice date: {e}."))?,
    };
    let pence = |key: &str, what: &str, blank: Option<i64>| match (v.get(key).trim(), blank) {
        ("", Some(b)) => Ok(b),
        ("", None) => Err(format!("Give the {what}.")),
        (t, _) => parse_pounds_to_pence(t).map_err(|e| format!("The {what}: {e}.")),
    };
    Ok(InvoiceFigures {
        reference,
        date,
        net: pence("net", "net amount", None)?,
        // No VAT typed: a contractor who is not VAT registered.
        vat: pence("vat", "VAT", Some(0))?,
        total: pence("total", "invoice total", None)?,
    })
}

/// POST /job/invoice: the awarded contractor's invoice for the completed work, with its file,
/// saved as a draft bill coded to the work order for the manager to check; the manager is
/// told. A refusal saves nothing.
async fn invoice(State(state): State<AppState>, headers: HeaderMap, multipart: Multipart) -> Page {
    let Some(mut s) = session_of(&state, &headers).await? else {
        return Ok(expired_session());
    };
    let posted = match read_form(multipart).await {
        Ok(p) => p,
        Err(r) => return Ok(r),
    };
    let (inv, wo) = job_of(&mut s).await?;
    // Checked before the file is stored (and again, under the work order's lock, when saved).
    if inv.status != "awarded" {
        return Ok(problem(
            "Only the contractor the work was awarded to can send an invoice for it.",
        ));
    }
    if !bill_intake::takes_invoices(wo.status()) {
        return Ok(problem(&format!(
            "{} is {}: send your invoice once the work is marked complete.",
            wo.reference,
            wo.status().label().to_lowercase()
        )));
    }
    let figures = match invoice_figures(&posted.values) {
        Ok(f) => f,
        Err(p) => return Ok(problem(&p)),
    };
    let files: Vec<_> = posted.files_in("document").collect();
    let uploaded_by = inv.vendor_name.clone();
    let document = match uploads::store_invoice(&state, s.grant.org, &files, &uploaded_by).await {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(problem("Attach your invoice (a PDF, JPEG or PNG file).")),
        Err(p) => return Ok(problem(&p)),
    };
    let input = ContractorInvoice {
        supplier_reference: figures.reference,
        issue_date: figures.date,
        net_pence: figures.net,
        vat_pence: figures.vat,
        total_pence: figures.total,
        document,
    };
    match bill_intake::from_contractor(&mut s.tx, inv.id, &input, state.now()).await {
        Ok(_) => {
            s.tx.commit().await?;
            Ok(done(&format!(
                "Thank you: invoice {} has been sent to the manager.",
                input.supplier_reference.trim()
            )))
        }
        Err(LedgerError::NotFound) => Err(WebError::NotFound),
        Err(LedgerError::Db(e)) => Err(e.into()),
        Err(refusal) => Ok(problem(&refusal.to_string())),
    }
}

/// GET /job/invoices/{id}/document: the file of an invoice this contractor sent for this job.
async fn invoice_document(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Page {
    let Some(mut s) = session_of(&state, &headers).await? else {
        return Ok(expired_session());
    };
    let id = Uuid::parse_str(&id).map_err(|_| WebError::NotFound)?;
    let (inv, wo) = job_of(&mut s).await?;
    let bill = bills::find(&mut s.tx, id)
        .await?
        .filter(|b| {
            inv.status == "awarded"
                && b.work_order_id == Some(wo.id)
                && b.vendor_id == inv.vendor_id
        })
        .ok_or(WebError::NotFound)?;
    s.tx.commit().await?;
    let (Some(key), Some(media)) = (&bill.document_key, &bill.document_type) else {
        return Err(WebError::NotFound);
    };
    let name = bill
        .document_name
        .clone()
        .unwrap_or_else(|| format!("Invoice {}", bill.supplier_reference));
    uploads::send_stored(&state, key, media, &name, "attachment").await
}

async fn file(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Page {
    job_file(&state, &headers, &id, false).await
}

async fn thumbnail(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Page {
    job_file(&state, &headers, &id, true).await
}

/// A file of this job: the work order's, this contractor's quotations', or their documents'.
async fn job_file(state: &AppState, headers: &HeaderMap, id: &str, thumb: bool) -> Page {
    let Some(mut s) = session_of(state, headers).await? else {
        return Ok(expired_session());
    };
    let id = Uuid::parse_str(id).map_err(|_| WebError::NotFound)?;
    let (inv, wo) = job_of(&mut s).await?;
    let f = ops::find_file(&mut s.tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    // The work order's own files only while this contractor is still in the running or doing
    // the work (a contractor not awarded sees none of what comes after).
    let live = inv.is_open() && wo.status() != WorkOrderStatus::Cancelled;
    let mine = if f.work_order_id == Some(wo.id) {
        live
    } else if let Some(q) = f.quotation_id {
        ops::quotations(&mut s.tx, wo.id)
            .await?
            .iter()
            .any(|x| x.id == q && x.invitation_id == inv.id)
    } else if let Some(d) = f.vendor_document_id {
        ops::vendor_documents(&mut s.tx, inv.vendor_id)
            .await?
            .iter()
            .any(|x| x.id == d)
    } else if f.folder_id.is_some() {
        // The site's folders opened to contractors, while this contractor's link is live.
        let open = live
            && proplink_db::folders::viewer_may_open(&mut s.tx, &f, wo.site_id, Viewer::Contractor)
                .await?;
        if open && !thumb {
            proplink_db::folders::record_access(&mut s.tx, f.id, "download", None, state.now())
                .await?;
        }
        open
    } else {
        false
    };
    s.tx.commit().await?;
    if !mine {
        return Err(WebError::NotFound);
    }
    uploads::serve(state, &f, thumb).await
}

// ---------------------------------------------------------------------------------------------
// Accounts for contractors who work regularly: e-mail + one-time code at
// `/account/<organisation>`, listing their open work orders in that organisation only. Opening
// one starts the same link session an e-mailed link does.

/// The account session's cookie: `<org id>.<token>`, like the link session's.
pub const ACCOUNT_COOKIE: &str = "pl_contractor_account";

#[derive(Template, WebTemplate)]
#[template(path = "contractor/account.html")]
struct AccountPage {
    org_name: String,
    slug: String,
    /// The address a code was sent to (the code form), or None (the e-mail form).
    email: Option<String>,
    message: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "contractor/jobs.html")]
struct JobsPage {
    org_name: String,
    slug: String,
    name: String,
    jobs: Vec<(Uuid, String, String, String)>,
}

async fn org_of(
    state: &AppState,
    slug: &str,
) -> Result<proplink_db::organisation::Organisation, WebError> {
    let org = proplink_db::organisation::find_by_slug(state.db(), slug)
        .await?
        .ok_or(WebError::NotFound)?;
    if org.status == proplink_db::organisation::OrgStatus::Closed {
        return Err(WebError::NotFound);
    }
    Ok(org)
}

async fn account_form(State(state): State<AppState>, Path(slug): Path<String>) -> Page {
    let org = org_of(&state, &slug).await?;
    Ok(AccountPage {
        org_name: org.name,
        slug,
        email: None,
        message: None,
    }
    .into_response())
}

/// Sends a code when the address has a contractor account here; the answer is the same either
/// way.
async fn account_code(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(slug): Path<String>,
    body: Bytes,
) -> Page {
    let org = org_of(&state, &slug).await?;
    let v = FormData::parse(&body);
    let Ok(email) = proplink_domain::EmailAddress::parse(v.get("email").trim()) else {
        return Ok(AccountPage {
            org_name: org.name,
            slug,
            email: None,
            message: Some("Enter your e-mail address, e.g. jobs@yourfirm.co.uk.".into()),
        }
        .into_response());
    };
    let ip = session::client_ip(peer.ip(), &headers, &state.settings().trusted_proxies);
    if limited(&state, &format!("contractor_code:ip:{ip}"), 20).await?
        || limited(
            &state,
            &format!("contractor_code:email:{}", email.as_str()),
            5,
        )
        .await?
    {
        return Ok(notice(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            "Too many codes were asked for. Please wait an hour and try again.",
            None,
        ));
    }
    let mut tx = state
        .db()
        .begin(&contractor_ctx(org.id, email.as_str()))
        .await?;
    proplink_db::portal::request_sign_in_code(
        &mut tx,
        state.code_key(),
        proplink_db::portal::Portal::ContractorPort,
        &email,
        &org.name,
        state.now(),
    )
    .await?;
    tx.commit().await?;
    Ok(AccountPage {
        org_name: org.name,
        slug,
        email: Some(email.as_str().to_owned()),
        message: Some(
            "If this address has a ContractorPort account here, a 6-digit code is on its way."
                .into(),
        ),
    }
    .into_response())
}

async fn account_verify(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    body: Bytes,
) -> Page {
    let org = org_of(&state, &slug).await?;
    let v = FormData::parse(&body);
    let Ok(email) = proplink_domain::EmailAddress::parse(v.get("email").trim()) else {
        return Err(WebError::NotFound);
    };
    if limited(
        &state,
        &format!("contractor_verify:email:{}", email.as_str()),
        10,
    )
    .await?
    {
        return Ok(notice(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many tries",
            "Too many codes were tried. Please wait an hour and ask for a new one.",
            None,
        ));
    }
    let now = state.now();
    let mut tx = state
        .db()
        .begin(&contractor_ctx(org.id, email.as_str()))
        .await?;
    let outcome = proplink_db::portal::verify_sign_in_code(
        &mut tx,
        state.code_key(),
        proplink_db::portal::Portal::ContractorPort,
        &email,
        v.get("code").trim(),
        now,
    )
    .await?;
    let proplink_db::portal::CodeOutcome::Accepted { account_id } = outcome else {
        // Refusals count a try: keep it.
        tx.commit().await?;
        let message = match outcome {
            proplink_db::portal::CodeOutcome::Refused(r) => r.public_message().to_owned(),
            proplink_db::portal::CodeOutcome::Accepted { .. } => String::new(),
        };
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            AccountPage {
                org_name: org.name,
                slug,
                email: Some(email.as_str().to_owned()),
                message: Some(message),
            },
        )
            .into_response());
    };
    let (token, hash) = proplink_auth::links::new_token();
    proplink_db::portal::start_session(&mut tx, account_id, &hash, now).await?;
    tx.commit().await?;
    let cookie = session::set(
        ACCOUNT_COOKIE,
        &format!("{}.{token}", org.id.0),
        Some(proplink_db::portal::SESSION_ABSOLUTE),
        state.settings().tls,
    );
    let location = format!("/account/{slug}/jobs")
        .parse()
        .map_err(|_| WebError::NotFound)?;
    Ok((
        StatusCode::SEE_OTHER,
        [(header::SET_COOKIE, cookie), (header::LOCATION, location)],
    )
        .into_response())
}

/// The signed-in account of this organisation, and a transaction as them.
async fn account_of(
    state: &AppState,
    headers: &HeaderMap,
    org: OrgId,
) -> Result<Option<(proplink_db::portal::PortalAccount, TenantTx)>, WebError> {
    let Some(raw) = session::read(headers, ACCOUNT_COOKIE) else {
        return Ok(None);
    };
    let Some((cookie_org, token)) = raw.split_once('.') else {
        return Ok(None);
    };
    let Some(hash) = proplink_auth::links::hash_token(token) else {
        return Ok(None);
    };
    if Uuid::parse_str(cookie_org).ok() != Some(org.0) {
        return Ok(None);
    }
    let mut tx = state.db().begin(&contractor_ctx(org, "contractor")).await?;
    let account = proplink_db::portal::find_session(
        &mut tx,
        proplink_db::portal::Portal::ContractorPort,
        &hash,
        state.now(),
    )
    .await?;
    tx.commit().await?;
    let Some(account) = account else {
        return Ok(None);
    };
    let tx = state
        .db()
        .begin(&contractor_ctx(org, &account.name))
        .await?;
    Ok(Some((account, tx)))
}

async fn account_jobs(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> Page {
    let org = org_of(&state, &slug).await?;
    let Some((account, mut tx)) = account_of(&state, &headers, org.id).await? else {
        return Ok(Redirect::to(&format!("/account/{slug}")).into_response());
    };
    let jobs = ops::open_invitations_for_email(&mut tx, &account.email).await?;
    tx.commit().await?;
    Ok(JobsPage {
        org_name: org.name,
        slug,
        name: account.name,
        jobs: jobs
            .into_iter()
            .map(|(inv, reference, title, status)| {
                (
                    inv.id,
                    reference,
                    title,
                    WorkOrderStatus::parse(&status)
                        .map(|s| s.label().to_owned())
                        .unwrap_or(status),
                )
            })
            .collect(),
    }
    .into_response())
}

async fn account_open_job(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((slug, invitation)): Path<(String, String)>,
) -> Page {
    let org = org_of(&state, &slug).await?;
    let invitation = Uuid::parse_str(&invitation).map_err(|_| WebError::NotFound)?;
    let Some((account, mut tx)) = account_of(&state, &headers, org.id).await? else {
        return Ok(Redirect::to(&format!("/account/{slug}")).into_response());
    };
    let now = state.now();
    let grant = match ops::link_for_account(&mut tx, &account.email, invitation, now).await {
        Ok(Some(g)) => g,
        Ok(None) => return Err(WebError::NotFound),
        Err(ops::OpsError::Db(e)) => return Err(e.into()),
        Err(_) => return Err(WebError::NotFound),
    };
    let (session_token, session_hash) = proplink_auth::links::new_token();
    links::start_session(&mut tx, &grant, &session_hash, now).await?;
    tx.commit().await?;
    let cookie = session::set(
        COOKIE,
        &format!("{}.{session_token}", org.id.0),
        Some(links::SESSION_MAX),
        state.settings().tls,
    );
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (
                header::LOCATION,
                "/job".parse().map_err(|_| WebError::NotFound)?,
            ),
        ],
    )
        .into_response())
}
