//! Operations in the admin app (issue 5): the issue queue (organisation-wide and per site),
//! issues, work orders with their invitations, quotations, approvals and reviews, and the
//! files they carry. The rules live in `proplink_db::operations`; these handlers parse forms,
//! check scope (a record outside the member's sites is 404) and permissions, and draw pages.

use super::form::FormData;
use super::records::{self, Opt, Pager, check, may, parse_id, site_scope};
use super::{Member, Shell};
use crate::error::WebError;
use crate::state::AppState;
use crate::uploads::{self, Posted};
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::multipart::Multipart;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use proplink_db::TenantTx;
use proplink_db::operations::{
    self as ops, Approver, Attachment, FileRecord, InviteRequest, Issue, IssueInput, IssueMove,
    IssueQuery, Location, OpsError, WorkOrder, WorkOrderInput, WorkOrderQuery,
};
use proplink_db::service_categories;
use proplink_domain::EmailAddress;
use proplink_domain::authorize::Placement;
use proplink_domain::dates::long_date;
use proplink_domain::operations::{
    ClosedReason, DocumentType, IssueCategory, IssueStatus, Priority, ReporterKind,
    ServiceCategory, Trade, WorkOrderStatus,
};
use proplink_domain::uk::{format_pence, parse_pounds_to_pence};
use proplink_files::MediaType;
use uuid::Uuid;

type Page = Result<Response, WebError>;

pub(super) fn site_placement(site: Uuid, estate: Option<Uuid>) -> Placement {
    Placement::Site { site, estate }
}

pub(super) fn query_of(raw: Option<String>) -> FormData {
    FormData::parse(raw.unwrap_or_default().as_bytes())
}

fn opt_uuid(s: &str) -> Option<Uuid> {
    Uuid::parse_str(s.trim()).ok()
}

/// Turns an operations refusal into the page's answer: sentences for people (422), the rest
/// as errors.
pub(super) fn ops_error(e: OpsError) -> Result<String, WebError> {
    match e {
        OpsError::NotFound => Err(WebError::NotFound),
        OpsError::Db(d) => Err(d.into()),
        other => Ok(other.to_string()),
    }
}

/// The record's page again with a refusal or a done message in its banner.
pub(super) fn back_to(path: &str, flash: &str) -> Response {
    let q = records::query_string(&[("flash", flash.to_owned())]);
    Redirect::to(&format!("{path}{q}")).into_response()
}

pub(super) fn refused_on(path: &str, message: &str) -> Response {
    let q = records::query_string(&[("problem", message.to_owned())]);
    // 303 so a reload does not post again; the problem is shown on the page.
    Redirect::to(&format!("{path}{q}")).into_response()
}

pub(super) fn flash_of(query: &FormData) -> (Option<String>, Option<String>) {
    let nonempty = |k: &str| Some(query.get(k).trim().to_owned()).filter(|s| !s.is_empty());
    (nonempty("flash"), nonempty("problem"))
}

// ---------------------------------------------------------------------------------------------
// Files: served only to someone who may read the record they belong to.

pub async fn file(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    send_file(&state, &member, &id, false).await
}

pub async fn thumbnail(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    send_file(&state, &member, &id, true).await
}

async fn send_file(state: &AppState, member: &Member, id: &str, thumb: bool) -> Page {
    let id = parse_id(id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let file = ops::find_file(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    check_file(&mut tx, member, &file).await?;
    if file.folder_id.is_some() && !thumb {
        proplink_db::folders::record_access(&mut tx, file.id, "download", None, state.now())
            .await?;
    }
    tx.commit().await?;
    uploads::serve(state, &file, thumb).await
}

async fn check_file(tx: &mut TenantTx, member: &Member, file: &FileRecord) -> Result<(), WebError> {
    if let Some(issue) = file.issue_id {
        issue_for(tx, member, issue).await?;
    } else if let Some(wo) = file.work_order_id {
        work_order_for(tx, member, wo).await?;
    } else if let Some(q) = file.quotation_id {
        let wo = ops::work_order_of_quotation(tx, q)
            .await?
            .ok_or(WebError::NotFound)?;
        work_order_for(tx, member, wo).await?;
        member.require("quotation.read")?;
    } else if let Some(c) = file.maintenance_completion_id {
        let (site, estate) = proplink_db::maintenance::site_of_completion(tx, c)
            .await?
            .ok_or(WebError::NotFound)?;
        check(member, "maintenance.read", site_placement(site, estate))?;
    } else if let Some(folder) = file.folder_id {
        let f = proplink_db::folders::find(tx, folder)
            .await?
            .ok_or(WebError::NotFound)?;
        check(member, "file.read", site_placement(f.site_id, f.estate_id))?;
    } else if let Some(agreement) = file.service_agreement_id {
        member.require("service_agreement.read")?;
        if !proplink_db::maintenance::agreement_visible(tx, agreement, &site_scope(member)).await? {
            return Err(WebError::NotFound);
        }
    } else {
        member.require("vendor.read")?;
    }
    Ok(())
}

pub(super) struct FileView {
    pub id: Uuid,
    pub name: String,
    pub size: String,
    pub has_thumbnail: bool,
    pub purpose: String,
    pub uploaded_by: String,
}

impl FileView {
    pub(super) fn new(f: &FileRecord) -> Self {
        Self {
            id: f.id,
            name: f.original_name.clone(),
            size: human_size(f.size_bytes),
            has_thumbnail: f.thumbnail_key.is_some(),
            purpose: match f.purpose.as_str() {
                "photo" => "Photo",
                "quotation" => "Quotation",
                "certificate" => "Certificate",
                "completion_certificate" => "Certificate of works",
                _ => "Document",
            }
            .into(),
            uploaded_by: f.uploaded_by.clone(),
        }
    }
}

pub(crate) fn human_size(bytes: i64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{} KB", (bytes + 1023) / 1024)
    }
}

// ---------------------------------------------------------------------------------------------
// Issues

pub(super) async fn issue_for(
    tx: &mut TenantTx,
    member: &Member,
    id: Uuid,
) -> Result<Issue, WebError> {
    let issue = ops::find_issue(tx, id).await?.ok_or(WebError::NotFound)?;
    check(
        member,
        "issue.read",
        site_placement(issue.site_id, issue.estate_id),
    )?;
    Ok(issue)
}

pub(super) struct IssueRow {
    pub id: Uuid,
    pub reference: String,
    pub title: String,
    pub place: String,
    pub site_name: String,
    pub category: String,
    pub priority: String,
    pub status: String,
    pub reported: String,
}

impl IssueRow {
    fn new(i: &Issue) -> Self {
        Self {
            id: i.id,
            reference: i.reference.clone(),
            title: i.title.clone(),
            place: i.place.clone(),
            site_name: i.site_name.clone(),
            category: IssueCategory::parse(&i.category)
                .map(|c| c.label().to_owned())
                .unwrap_or_default(),
            priority: Priority::from_key(&i.priority)
                .map(|p| p.label().to_owned())
                .unwrap_or_default(),
            status: status_label(i),
            reported: long_date(i.created_at.date()),
        }
    }
}

fn status_label(i: &Issue) -> String {
    match (i.status(), i.closed_reason.as_deref()) {
        (IssueStatus::Closed, Some(r)) => format!(
            "Closed: {}",
            ClosedReason::parse(r)
                .map(|c| c.label().to_lowercase())
                .unwrap_or_default()
        ),
        (s, _) => s.label().to_owned(),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "operations/issues.html")]
pub struct IssuesPage {
    shell: Shell,
    title: String,
    action: String,
    site_id: Option<Uuid>,
    rows: Vec<IssueRow>,
    statuses: Vec<Opt>,
    priorities: Vec<Opt>,
    categories: Vec<Opt>,
    sites: Vec<Opt>,
    pager: Pager,
    can_create: bool,
}

/// The organisation-wide issue queue.
pub async fn issues(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(raw): RawQuery,
) -> Page {
    issue_queue(&state, &member, None, query_of(raw)).await
}

/// A site's Issues tab.
pub async fn site_issues(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let site = parse_id(&id)?;
    issue_queue(&state, &member, Some(site), query_of(raw)).await
}

async fn issue_queue(
    state: &AppState,
    member: &Member,
    fixed_site: Option<Uuid>,
    query: FormData,
) -> Page {
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site_name = match fixed_site {
        Some(id) => {
            let site = proplink_db::portfolio::site(&mut tx, id)
                .await?
                .ok_or(WebError::NotFound)?;
            check(member, "issue.read", site.placement())?;
            Some(site.name)
        }
        None => None,
    };
    let site = fixed_site.or_else(|| opt_uuid(query.get("site")));
    let status = query.get("status").to_owned();
    let priority = Some(query.get("priority"))
        .filter(|p| Priority::from_key(p).is_some())
        .map(str::to_owned);
    let category = Some(query.get("category"))
        .filter(|c| IssueCategory::parse(c).is_some())
        .map(str::to_owned);
    let page = records::page_number(query.get("page"));
    let scope = site_scope(member);
    let found = ops::list_issues(
        &mut tx,
        &scope,
        &IssueQuery {
            site,
            status: status.clone(),
            priority: priority.clone(),
            category: category.clone(),
            page,
            per_page: 50,
        },
    )
    .await?;
    let sites = if fixed_site.is_none() {
        ops::site_choices(&mut tx, &scope).await?
    } else {
        Vec::new()
    };
    tx.commit().await?;
    let action = match fixed_site {
        Some(id) => format!("/sites/{id}/issues"),
        None => "/issues".to_owned(),
    };
    let filters = [
        ("status", status.clone()),
        ("priority", priority.clone().unwrap_or_default()),
        ("category", category.clone().unwrap_or_default()),
        (
            "site",
            if fixed_site.is_none() {
                site.map(|s| s.to_string()).unwrap_or_default()
            } else {
                String::new()
            },
        ),
    ];
    let full = found.rows.len() as i64 == found.per_page;
    let pager = Pager::counted_up_to(
        &action,
        &filters,
        found.page,
        found.pages(),
        found.total,
        found.capped,
        full,
    );
    let mut statuses = vec![
        Opt::new("", "Open (not resolved or closed)", &status),
        Opt::new("all", "All", &status),
    ];
    statuses.extend(
        IssueStatus::ALL
            .iter()
            .map(|s| Opt::new(s.as_str(), s.label(), &status)),
    );
    let chosen_priority = priority.unwrap_or_default();
    let chosen_category = category.unwrap_or_default();
    let chosen_site = site.map(|s| s.to_string()).unwrap_or_default();
    Ok(IssuesPage {
        shell: Shell::new(member, "/issues"),
        title: match site_name {
            Some(n) => format!("Issues at {n}"),
            None => "Issues".to_owned(),
        },
        action,
        site_id: fixed_site,
        rows: found.rows.iter().map(IssueRow::new).collect(),
        statuses,
        priorities: std::iter::once(Opt::new("", "Any", &chosen_priority))
            .chain(
                Priority::ALL
                    .iter()
                    .map(|p| Opt::new(p.as_str(), p.label(), &chosen_priority)),
            )
            .collect(),
        categories: std::iter::once(Opt::new("", "Any", &chosen_category))
            .chain(
                IssueCategory::ALL
                    .iter()
                    .map(|c| Opt::new(c.as_str(), c.label(), &chosen_category)),
            )
            .collect(),
        sites: std::iter::once(Opt::new("", "All sites", &chosen_site))
            .chain(
                sites
                    .into_iter()
                    .map(|(id, name)| Opt::new(id.to_string(), name, &chosen_site)),
            )
            .collect(),
        pager,
        can_create: member.can("issue.create") && !member.read_only(),
    }
    .into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "operations/issue_new.html")]
pub struct NewIssuePage {
    shell: Shell,
    site: Option<(Uuid, String)>,
    sites: Vec<Opt>,
    places: Vec<Opt>,
    categories: Vec<Opt>,
    priorities: Vec<Opt>,
    reporters: Vec<Opt>,
    values: FormData,
    problem: Option<String>,
}

/// The new-issue form: first the site (unless given), then the details.
pub async fn new_issue(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(raw): RawQuery,
) -> Page {
    let query = query_of(raw);
    issue_form(&state, &member, query, None).await
}

async fn issue_form(
    state: &AppState,
    member: &Member,
    values: FormData,
    problem: Option<String>,
) -> Page {
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = match opt_uuid(values.get("site")) {
        Some(id) => {
            let site = proplink_db::portfolio::site(&mut tx, id)
                .await?
                .ok_or(WebError::NotFound)?;
            check(member, "issue.create", site.placement())?;
            Some((site.id, site.name))
        }
        None => None,
    };
    let sites = ops::site_choices(&mut tx, &site_scope(member)).await?;
    let places = match &site {
        Some((id, _)) => ops::place_choices(&mut tx, *id).await?,
        None => Vec::new(),
    };
    tx.commit().await?;
    let chosen = |k: &str| values.get(k).to_owned();
    let place = chosen("place");
    let status = if problem.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let category = chosen("category");
    let priority = if values.get("priority").is_empty() {
        "medium".to_owned()
    } else {
        chosen("priority")
    };
    let reporter = if values.get("reporter_kind").is_empty() {
        "staff".to_owned()
    } else {
        chosen("reporter_kind")
    };
    let page = NewIssuePage {
        shell: Shell::new(member, "/issues"),
        sites: sites
            .into_iter()
            .map(|(id, name)| Opt::new(id.to_string(), name, values.get("site")))
            .collect(),
        places: place_options(places, &place),
        categories: IssueCategory::ALL
            .iter()
            .map(|c| Opt::new(c.as_str(), c.label(), &category))
            .collect(),
        priorities: Priority::ALL
            .iter()
            .map(|p| Opt::new(p.as_str(), p.label(), &priority))
            .collect(),
        reporters: ReporterKind::ALL
            .iter()
            .map(|r| Opt::new(r.as_str(), r.label(), &reporter))
            .collect(),
        site,
        values,
        problem,
    };
    Ok((status, page).into_response())
}

/// The "where" choices of a site: the site in general, its units, its communal spaces.
fn place_options(places: Vec<(String, Uuid, String)>, chosen: &str) -> Vec<Opt> {
    std::iter::once(Opt::new("", "The site in general", chosen))
        .chain(places.into_iter().map(|(kind, id, label)| {
            let label = if kind == "space" {
                format!("{label} (communal)")
            } else {
                label
            };
            Opt::new(format!("{kind}:{id}"), label, chosen)
        }))
        .collect()
}

fn parse_place(value: &str) -> Result<(Option<Uuid>, Option<Uuid>), String> {
    if value.trim().is_empty() {
        return Ok((None, None));
    }
    match value.split_once(':') {
        Some(("unit", id)) => opt_uuid(id)
            .map(|u| (Some(u), None))
            .ok_or_else(|| "Choose the unit or communal space again.".to_owned()),
        Some(("space", id)) => opt_uuid(id)
            .map(|s| (None, Some(s)))
            .ok_or_else(|| "Choose the unit or communal space again.".to_owned()),
        _ => Err("Choose the unit or communal space again.".to_owned()),
    }
}

fn parse_issue(member: &Member, v: &FormData) -> Result<IssueInput, String> {
    let site = opt_uuid(v.get("site")).ok_or("Choose a site.")?;
    let (unit_id, space_id) = parse_place(v.get("place"))?;
    let category = IssueCategory::parse(v.get("category")).ok_or("Choose a category.")?;
    let priority = Priority::from_key(v.get("priority")).ok_or("Choose a priority.")?;
    let reporter_kind =
        ReporterKind::parse(v.get("reporter_kind")).ok_or("Say who reported the issue.")?;
    let title = v.get("title").trim();
    if title.is_empty() {
        return Err("Give the issue a title.".into());
    }
    if title.chars().count() > 200 {
        return Err("Keep the title to 200 characters.".into());
    }
    if v.get("description").chars().count() > 5000 {
        return Err("Keep the description to 5,000 characters.".into());
    }
    let (reporter_name, reporter_email) =
        if reporter_kind == ReporterKind::Staff && v.get("reporter_name").trim().is_empty() {
            (member.name.clone(), None)
        } else {
            let name = v.get("reporter_name").trim();
            if name.is_empty() || name.chars().count() > 200 {
                return Err("Give the reporter's name (up to 200 characters).".into());
            }
            let email = match v.get("reporter_email").trim() {
                "" => None,
                e => Some(EmailAddress::parse(e).map_err(|_| {
                    format!("“{e}” is not an e-mail address; leave it blank if you have none.")
                })?),
            };
            (name.to_owned(), email)
        };
    let channel = match v.get("channel") {
        "" => "admin",
        c @ ("admin" | "phone" | "email") => c,
        _ => return Err("Choose how the issue was reported.".into()),
    };
    Ok(IssueInput {
        location: Location {
            site_id: site,
            building_id: None,
            unit_id,
            space_id,
        },
        title: title.to_owned(),
        description: Some(v.get("description").to_owned()),
        category,
        priority,
        reporter_kind,
        reporter_contact_id: None,
        reporter_name,
        reporter_email,
        channel: channel.to_owned(),
    })
}

/// Creates an issue with its photos.
pub async fn create_issue(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    multipart: Multipart,
) -> Page {
    let posted = match uploads::read(multipart).await {
        Ok(p) => p,
        Err(problem) => {
            return issue_form(&state, &member, FormData::default(), Some(problem)).await;
        }
    };
    let Posted { values, .. } = &posted;
    let input = match parse_issue(&member, values) {
        Ok(i) => i,
        Err(problem) => {
            return issue_form(&state, &member, clone_form(values), Some(problem)).await;
        }
    };
    // Scope: the member must be able to create issues at this site.
    {
        let mut tx = state.db().begin(&member.ctx()).await?;
        let site = proplink_db::portfolio::site(&mut tx, input.location.site_id)
            .await?
            .ok_or(WebError::NotFound)?;
        check(&member, "issue.create", site.placement())?;
        tx.commit().await?;
    }
    let photos: Vec<_> = posted.files_in("photos").collect();
    let stored = match uploads::store(
        &state,
        member.org.id,
        &photos,
        MediaType::PHOTOS,
        "photo",
        &member.name,
    )
    .await
    {
        Ok(s) => s,
        Err(problem) => {
            return issue_form(&state, &member, clone_form(values), Some(problem)).await;
        }
    };
    let now = state.now();
    let mut tx = state.db().begin(&member.ctx()).await?;
    let (id, _) = match ops::create_issue(&mut tx, &input, now).await {
        Ok(done) => done,
        Err(e) => {
            let problem = ops_error(e)?;
            drop(tx);
            return issue_form(&state, &member, clone_form(values), Some(problem)).await;
        }
    };
    for f in &stored {
        ops::record_file(&mut tx, Attachment::Issue(id), f, now).await?;
    }
    tx.commit().await?;
    Ok(back_to(&format!("/issues/{id}"), "Issue recorded."))
}

fn clone_form(v: &FormData) -> FormData {
    v.clone()
}

#[derive(Template, WebTemplate)]
#[template(path = "operations/issue.html")]
pub struct IssuePage {
    shell: Shell,
    issue: IssueRow,
    description: String,
    reporter: String,
    note: String,
    duplicate_of: Option<(Uuid, String)>,
    photos: Vec<super::operations::FileView>,
    work_orders: Vec<(Uuid, String, String)>,
    moves: Vec<Opt>,
    reasons: Vec<Opt>,
    can_update: bool,
    can_raise: bool,
    history: Vec<records::HistoryRow>,
    flash: Option<String>,
    problem: Option<String>,
    /// Messages with the resident who reported it (ResidencePort).
    messages: Vec<(String, String, String)>,
    can_message: bool,
}

pub async fn issue(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    let query = query_of(raw);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let issue = issue_for(&mut tx, &member, id).await?;
    let photos = ops::files_of(&mut tx, Attachment::Issue(id)).await?;
    let work_orders = ops::work_orders_of_issue(&mut tx, id).await?;
    let duplicate_of = match issue.duplicate_of {
        Some(d) => ops::find_issue(&mut tx, d)
            .await?
            .map(|o| (o.id, o.reference)),
        None => None,
    };
    let history = records::history(&mut tx, "issue", id).await?;
    let messages = proplink_db::resident::messages(&mut tx, id).await?;
    let reported_by_resident = proplink_db::resident::issue_reporter(&mut tx, id)
        .await?
        .is_some()
        && issue.channel == "residenceport";
    tx.commit().await?;
    let placement = site_placement(issue.site_id, issue.estate_id);
    let (flash, problem) = flash_of(&query);
    Ok(IssuePage {
        shell: Shell::new(&member, "/issues"),
        description: issue.description.clone().unwrap_or_default(),
        reporter: format!(
            "{} ({}), by {}",
            issue.reporter_name,
            ReporterKind::parse(&issue.reporter_kind)
                .map(|r| r.label().to_lowercase())
                .unwrap_or_default(),
            match issue.channel.as_str() {
                "residenceport" => "ResidencePort",
                "facility_report" => "Facility Report",
                "contractorport" => "ContractorPort",
                "phone" => "phone",
                "email" => "e-mail",
                _ => "the admin app",
            }
        ),
        note: issue.status_note.clone().unwrap_or_default(),
        duplicate_of,
        photos: photos.iter().map(FileView::new).collect(),
        work_orders: work_orders
            .into_iter()
            .map(|(id, r, s)| {
                (
                    id,
                    r,
                    WorkOrderStatus::parse(&s)
                        .map(|s| s.label().to_owned())
                        .unwrap_or(s),
                )
            })
            .collect(),
        moves: issue
            .status()
            .next()
            .iter()
            .map(|s| Opt::new(s.as_str(), s.label(), ""))
            .collect(),
        reasons: ClosedReason::ALL
            .iter()
            .map(|r| Opt::new(r.as_str(), r.label(), ""))
            .collect(),
        can_update: may(&member, "issue.update", placement),
        can_raise: issue.status().is_open() && may(&member, "work_order.create", placement),
        history,
        flash,
        problem,
        messages: messages
            .iter()
            .map(|m| {
                (
                    m.author_name.clone(),
                    proplink_domain::dates::uk_long_date(m.created_at),
                    m.body.clone(),
                )
            })
            .collect(),
        can_message: reported_by_resident
            && !member.read_only()
            && may(&member, "issue.update", placement),
        issue: IssueRow::new(&issue),
    }
    .into_response())
}

pub async fn move_issue(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let v = FormData::parse(&body);
    let path = format!("/issues/{id}");
    let Some(to) = IssueStatus::parse(v.get("to")) else {
        return Ok(refused_on(&path, "Choose the issue's new state."));
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    let issue = issue_for(&mut tx, &member, id).await?;
    check(
        &member,
        "issue.update",
        site_placement(issue.site_id, issue.estate_id),
    )?;
    let change = IssueMove {
        to,
        closed_reason: ClosedReason::parse(v.get("reason")),
        duplicate_of: Some(v.get("duplicate_of").to_owned()),
        note: Some(v.get("note").to_owned()),
    };
    match ops::move_issue(&mut tx, id, &change, state.now()).await {
        Ok(()) => {
            tx.commit().await?;
            Ok(back_to(
                &path,
                &format!("The issue is now {}.", to.label().to_lowercase()),
            ))
        }
        Err(e) => {
            let message = ops_error(e)?;
            drop(tx);
            Ok(refused_on(&path, &message))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Work orders

async fn work_order_for(
    tx: &mut TenantTx,
    member: &Member,
    id: Uuid,
) -> Result<WorkOrder, WebError> {
    let wo = ops::find_work_order(tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    check(
        member,
        "work_order.read",
        site_placement(wo.site_id, wo.estate_id),
    )?;
    Ok(wo)
}

/// The organisation's service categories (Settings → Vendor service categories), for names and
/// choices on the pages.
pub(super) struct Categories(Vec<ServiceCategory>);

impl Categories {
    pub(super) async fn load(tx: &mut TenantTx) -> Result<Self, WebError> {
        Ok(Self(service_categories::all(tx, true).await?))
    }

    /// "Heating and gas"; the key itself for one that has gone (it cannot, but a page should
    /// not fail on it).
    pub(super) fn name(&self, key: &str) -> String {
        self.0
            .iter()
            .find(|c| c.key == key)
            .map_or_else(|| key.to_owned(), |c| c.name.clone())
    }

    /// The live categories to choose from for new work (never an archived one, even if it was
    /// chosen before).
    pub(super) fn options(&self, chosen: &str) -> Vec<Opt> {
        self.0
            .iter()
            .filter(|c| !c.archived)
            .map(|c| Opt::new(c.key.clone(), c.name.clone(), chosen))
            .collect()
    }

    pub(super) fn get(&self, key: &str) -> Option<&ServiceCategory> {
        self.0.iter().find(|c| c.key == key)
    }
}

/// The category used only to list vendors where no particular work is in view.
pub(super) fn any_work() -> ServiceCategory {
    ServiceCategory::standard(Trade::GeneralRepairs, &[])
}

pub(super) struct WorkOrderRow {
    pub id: Uuid,
    pub reference: String,
    pub title: String,
    pub place: String,
    pub site_name: String,
    pub trade: String,
    pub priority: String,
    pub status: String,
    pub vendor: String,
    pub amount: String,
    pub raised: String,
}

impl WorkOrderRow {
    fn new(w: &WorkOrder, categories: &Categories) -> Self {
        Self {
            id: w.id,
            reference: w.reference.clone(),
            title: w.title.clone(),
            place: w.place.clone(),
            site_name: w.site_name.clone(),
            trade: categories.name(&w.trade),
            priority: Priority::from_key(&w.priority)
                .map(|p| p.label().to_owned())
                .unwrap_or_default(),
            status: w.status().label().to_owned(),
            vendor: w.vendor_name.clone().unwrap_or_default(),
            amount: w.approved_pence.map(format_pence).unwrap_or_default(),
            raised: long_date(w.created_at.date()),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "operations/work_orders.html")]
pub struct WorkOrdersPage {
    shell: Shell,
    rows: Vec<WorkOrderRow>,
    statuses: Vec<Opt>,
    sites: Vec<Opt>,
    pager: Pager,
    can_create: bool,
}

pub async fn work_orders(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(raw): RawQuery,
) -> Page {
    let query = query_of(raw);
    let status = query.get("status").to_owned();
    let site = opt_uuid(query.get("site"));
    let page = records::page_number(query.get("page"));
    let scope = site_scope(&member);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let found = ops::list_work_orders(
        &mut tx,
        &scope,
        &WorkOrderQuery {
            site,
            status: status.clone(),
            vendor: opt_uuid(query.get("vendor")),
            page,
            per_page: 50,
        },
    )
    .await?;
    let sites = ops::site_choices(&mut tx, &scope).await?;
    let categories = Categories::load(&mut tx).await?;
    tx.commit().await?;
    let chosen_site = site.map(|s| s.to_string()).unwrap_or_default();
    let filters = [("status", status.clone()), ("site", chosen_site.clone())];
    let full = found.rows.len() as i64 == found.per_page;
    let mut statuses = vec![
        Opt::new("", "Open (not closed or cancelled)", &status),
        Opt::new("all", "All", &status),
    ];
    statuses.extend(
        WorkOrderStatus::ALL
            .iter()
            .map(|s| Opt::new(s.as_str(), s.label(), &status)),
    );
    Ok(WorkOrdersPage {
        shell: Shell::new(&member, "/work-orders"),
        rows: found
            .rows
            .iter()
            .map(|w| WorkOrderRow::new(w, &categories))
            .collect(),
        statuses,
        sites: std::iter::once(Opt::new("", "All sites", &chosen_site))
            .chain(
                sites
                    .into_iter()
                    .map(|(id, n)| Opt::new(id.to_string(), n, &chosen_site)),
            )
            .collect(),
        pager: Pager::counted_up_to(
            "/work-orders",
            &filters,
            found.page,
            found.pages(),
            found.total,
            found.capped,
            full,
        ),
        can_create: member.can("work_order.create") && !member.read_only(),
    }
    .into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "operations/work_order_new.html")]
pub struct NewWorkOrderPage {
    shell: Shell,
    site: Option<(Uuid, String)>,
    sites: Vec<Opt>,
    places: Vec<Opt>,
    trades: Vec<Opt>,
    priorities: Vec<Opt>,
    issues: Vec<(Uuid, String)>,
    values: FormData,
    problem: Option<String>,
}

/// The trade an issue's category suggests.
fn trade_for(category: &str) -> Trade {
    match IssueCategory::parse(category) {
        Some(IssueCategory::WaterLeak) => Trade::Plumbing,
        Some(IssueCategory::Lighting) => Trade::Electrical,
        Some(IssueCategory::FireSafety) => Trade::FireSafety,
        Some(IssueCategory::Security) => Trade::Locksmiths,
        Some(IssueCategory::Cleanliness) => Trade::Cleaning,
        Some(IssueCategory::Lift) => Trade::Lifts,
        Some(IssueCategory::Heating) => Trade::HeatingGas,
        Some(IssueCategory::Structural) => Trade::BuildingWork,
        Some(IssueCategory::Pests) => Trade::PestControl,
        _ => Trade::GeneralRepairs,
    }
}

/// The new-work-order form; `?issue=` converts an issue (title, place, trade, priority and
/// photos come with it), `?site=` starts at a site.
pub async fn new_work_order(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(raw): RawQuery,
) -> Page {
    let query = query_of(raw);
    let mut values = FormData::default();
    if let Some(issue_id) = opt_uuid(query.get("issue")) {
        let mut tx = state.db().begin(&member.ctx()).await?;
        let issue = issue_for(&mut tx, &member, issue_id).await?;
        tx.commit().await?;
        values.push("site", issue.site_id.to_string());
        values.push("issue", issue.id.to_string());
        values.push("title", issue.title.clone());
        values.push(
            "scope",
            format!(
                "{}{}",
                issue.title,
                issue
                    .description
                    .as_deref()
                    .map(|d| format!("\n\n{d}"))
                    .unwrap_or_default()
            ),
        );
        values.push("trade", trade_for(&issue.category).as_str());
        values.push("priority", issue.priority.clone());
        if let Some(u) = issue.unit_id {
            values.push("place", format!("unit:{u}"));
        } else if let Some(s) = issue.space_id {
            values.push("place", format!("space:{s}"));
        }
    } else {
        values.push("site", query.get("site").to_owned());
    }
    work_order_form(&state, &member, values, None).await
}

async fn work_order_form(
    state: &AppState,
    member: &Member,
    values: FormData,
    problem: Option<String>,
) -> Page {
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = match opt_uuid(values.get("site")) {
        Some(id) => {
            let site = proplink_db::portfolio::site(&mut tx, id)
                .await?
                .ok_or(WebError::NotFound)?;
            check(member, "work_order.create", site.placement())?;
            Some((site.id, site.name))
        }
        None => None,
    };
    let sites = ops::site_choices(&mut tx, &site_scope(member)).await?;
    let places = match &site {
        Some((id, _)) => ops::place_choices(&mut tx, *id).await?,
        None => Vec::new(),
    };
    let mut issues = Vec::new();
    for raw in values.all("issue") {
        if let Some(id) = opt_uuid(raw) {
            let i = issue_for(&mut tx, member, id).await?;
            issues.push((i.id, format!("{} {}", i.reference, i.title)));
        }
    }
    let categories = Categories::load(&mut tx).await?;
    tx.commit().await?;
    let place = values.get("place").to_owned();
    let trade = values.get("trade").to_owned();
    let priority = if values.get("priority").is_empty() {
        "medium".to_owned()
    } else {
        values.get("priority").to_owned()
    };
    let status = if problem.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = NewWorkOrderPage {
        shell: Shell::new(member, "/work-orders"),
        sites: sites
            .into_iter()
            .map(|(id, n)| Opt::new(id.to_string(), n, values.get("site")))
            .collect(),
        places: place_options(places, &place),
        trades: categories.options(&trade),
        priorities: Priority::ALL
            .iter()
            .map(|p| Opt::new(p.as_str(), p.label(), &priority))
            .collect(),
        site,
        issues,
        values,
        problem,
    };
    Ok((status, page).into_response())
}

fn parse_work_order(member: &Member, v: &FormData) -> Result<(WorkOrderInput, Vec<Uuid>), String> {
    let site = opt_uuid(v.get("site")).ok_or("Choose a site.")?;
    let (unit_id, space_id) = parse_place(v.get("place"))?;
    let trade = match v.get("trade").trim() {
        "" => return Err("Choose the trade (service category).".into()),
        t => t.to_owned(),
    };
    let priority = Priority::from_key(v.get("priority")).ok_or("Choose a priority.")?;
    let date = |k: &str, label: &str| -> Result<Option<time::Date>, String> {
        match v.get(k).trim() {
            "" => Ok(None),
            t => records::uk_date(t).map_err(|e| format!("The {label}: {e}")),
        }
    };
    let not_to_exceed = match v.get("not_to_exceed").trim() {
        "" => None,
        t => {
            let p =
                parse_pounds_to_pence(t).map_err(|e| format!("The not-to-exceed amount: {e}"))?;
            if p == 0 || p > proplink_domain::operations::MAX_QUOTE_PENCE {
                return Err(
                    "The not-to-exceed amount must be between £0.01 and £10,000,000.00.".into(),
                );
            }
            Some(p)
        }
    };
    let cost_code = v.get("cost_code").trim();
    if !cost_code.is_empty()
        && (cost_code.len() > 30
            || !cost_code.starts_with(|c: char| c.is_ascii_alphanumeric())
            || !cost_code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " ./-".contains(c)))
    {
        return Err(
            "The cost code starts with a letter or digit and may use letters, digits, spaces and . / - (up to 30 characters).".into(),
        );
    }
    if v.get("scope").chars().count() > 10_000 {
        return Err("Keep the scope of work to 10,000 characters.".into());
    }
    if v.get("access_notes").chars().count() > 2000 {
        return Err("Keep the access notes to 2,000 characters.".into());
    }
    let issues = v.all("issue").filter_map(opt_uuid).collect();
    Ok((
        WorkOrderInput {
            location: Location {
                site_id: site,
                building_id: None,
                unit_id,
                space_id,
            },
            title: v.get("title").to_owned(),
            scope: v.get("scope").to_owned(),
            trade,
            priority,
            cost_code: Some(cost_code.to_owned()),
            not_to_exceed_pence: not_to_exceed,
            target_start: date("target_start", "target start date")?,
            target_completion: date("target_completion", "target completion date")?,
            access_notes: Some(v.get("access_notes").to_owned()),
            manager_name: member.name.clone(),
            manager_email: Some(member.email.clone()),
        },
        issues,
    ))
}

pub async fn create_work_order(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    body: Bytes,
) -> Page {
    let values = FormData::parse(&body);
    let (input, issues) = match parse_work_order(&member, &values) {
        Ok(parsed) => parsed,
        Err(problem) => return work_order_form(&state, &member, values, Some(problem)).await,
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = proplink_db::portfolio::site(&mut tx, input.location.site_id)
        .await?
        .ok_or(WebError::NotFound)?;
    check(&member, "work_order.create", site.placement())?;
    for id in &issues {
        let issue = issue_for(&mut tx, &member, *id).await?;
        check(
            &member,
            "issue.update",
            site_placement(issue.site_id, issue.estate_id),
        )?;
    }
    match ops::create_work_order(&mut tx, &input, &issues, state.now()).await {
        Ok((id, reference)) => {
            tx.commit().await?;
            Ok(back_to(
                &format!("/work-orders/{id}"),
                &format!("Work order {reference} raised. Invite contractors to quote."),
            ))
        }
        Err(e) => {
            let problem = ops_error(e)?;
            drop(tx);
            work_order_form(&state, &member, values, Some(problem)).await
        }
    }
}

pub(super) struct InvitationRow {
    pub vendor: String,
    pub email: String,
    pub status: String,
    pub note: String,
    pub invited: String,
}

pub(super) struct QuotationRow {
    pub id: Uuid,
    pub vendor: String,
    pub kind: String,
    pub net: String,
    pub vat: String,
    pub gross: String,
    pub valid_until: String,
    pub expired: bool,
    pub notes: String,
    pub status: String,
    pub open: bool,
    /// Above the work order's not-to-exceed amount: approving it raises that amount.
    pub over_limit: bool,
    pub decision: String,
    pub file_id: Option<Uuid>,
}

pub(super) struct UpdateRow {
    pub when: String,
    pub what: String,
    pub body: String,
    pub author: String,
}

pub(super) struct VendorOpt {
    pub id: Uuid,
    pub label: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "operations/work_order.html")]
pub struct WorkOrderPage {
    shell: Shell,
    wo: WorkOrderRow,
    status_key: String,
    facts: Vec<(String, String)>,
    scope: String,
    issues: Vec<(Uuid, String, String)>,
    /// The bills coded to it, and the payments of each: the trail on to the money.
    bills: Vec<BillTrail>,
    invitations: Vec<InvitationRow>,
    quotations: Vec<QuotationRow>,
    updates: Vec<UpdateRow>,
    files: Vec<FileView>,
    vendors: Vec<VendorOpt>,
    can_invite: bool,
    can_override: bool,
    can_approve: bool,
    can_update: bool,
    can_close: bool,
    can_cancel: bool,
    rating: String,
    history: Vec<records::HistoryRow>,
    flash: Option<String>,
    problem: Option<String>,
}

/// A bill coded to a work order and the payments that paid it.
pub struct BillTrail {
    pub id: Uuid,
    pub label: String,
    pub status: &'static str,
    pub total: String,
    /// (payment id, "PAY-2026-000004 on 3 June 2026: £450.00 (Paid)")
    pub payments: Vec<(Uuid, String)>,
}

async fn bill_trail(tx: &mut TenantTx, work_order: Uuid) -> Result<Vec<BillTrail>, WebError> {
    let mut out = Vec::new();
    for b in proplink_db::bills::for_work_order(tx, work_order).await? {
        let payments = proplink_db::payments::payments_of_bill(tx, b.id)
            .await?
            .iter()
            .map(|p| (p.id, p.describe()))
            .collect();
        out.push(BillTrail {
            id: b.id,
            label: b.label(),
            status: b.status().label(),
            total: format_pence(b.total_pence),
            payments,
        });
    }
    Ok(out)
}

pub async fn work_order(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    let query = query_of(raw);
    let today = state.now().date();
    let mut tx = state.db().begin(&member.ctx()).await?;
    let wo = work_order_for(&mut tx, &member, id).await?;
    let placement = site_placement(wo.site_id, wo.estate_id);
    let issues = ops::issues_of_work_order(&mut tx, id).await?;
    let bills = if may(&member, "bill.read", placement) {
        bill_trail(&mut tx, id).await?
    } else {
        Vec::new()
    };
    let invitations = ops::invitations(&mut tx, id).await?;
    let quotations = if member.can("quotation.read") {
        ops::quotations(&mut tx, id).await?
    } else {
        Vec::new()
    };
    let updates = ops::updates(&mut tx, id).await?;
    let files = ops::files_of(&mut tx, Attachment::WorkOrder(id)).await?;
    let categories = Categories::load(&mut tx).await?;
    let can_invite =
        wo.status().can_invite() && may(&member, "work_order.invite_contractor", placement);
    let vendors = if can_invite {
        let category = categories.get(&wo.trade).cloned().unwrap_or_else(any_work);
        ops::vendor_choices(&mut tx, &category, Some(wo.site_id), today).await?
    } else {
        Vec::new()
    };
    let history = records::history(&mut tx, "work_order", id).await?;
    tx.commit().await?;
    let (flash, problem) = flash_of(&query);
    let text = |v: Option<String>| {
        v.filter(|s| !s.is_empty())
            .unwrap_or_else(|| "Not recorded".into())
    };
    let facts = vec![
        ("Site".to_owned(), wo.site_name.clone()),
        ("Where".to_owned(), wo.place.clone()),
        ("Trade".to_owned(), categories.name(&wo.trade)),
        (
            "Priority".to_owned(),
            Priority::from_key(&wo.priority)
                .map(|p| p.label().to_owned())
                .unwrap_or_default(),
        ),
        ("Cost code".to_owned(), text(wo.cost_code.clone())),
        (
            "Not to exceed".to_owned(),
            text(wo.not_to_exceed_pence.map(format_pence)),
        ),
        (
            "Target start".to_owned(),
            text(wo.target_start.map(long_date)),
        ),
        (
            "Target completion".to_owned(),
            text(wo.target_completion.map(long_date)),
        ),
        ("Access".to_owned(), text(wo.access_notes.clone())),
        ("Raised by".to_owned(), wo.manager_name.clone()),
        ("Contractor".to_owned(), text(wo.vendor_name.clone())),
        (
            "Approved price".to_owned(),
            text(wo.approved_pence.map(format_pence)),
        ),
        (
            "Final cost".to_owned(),
            text(wo.final_cost_pence.map(format_pence)),
        ),
    ];
    let rating = match wo.rating {
        Some(r) => format!(
            "{} of 5{}",
            r,
            wo.rating_note
                .as_deref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default()
        ),
        None => String::new(),
    };
    let open_quotes = wo.status().can_approve();
    Ok(WorkOrderPage {
        shell: Shell::new(&member, "/work-orders"),
        status_key: wo.status.clone(),
        facts,
        scope: wo.scope.clone(),
        issues: issues
            .iter()
            .map(|i| (i.id, i.reference.clone(), status_label(i)))
            .collect(),
        bills,
        invitations: invitations
            .iter()
            .map(|i| InvitationRow {
                vendor: i.vendor_name.clone(),
                email: i.email.clone(),
                status: match i.status.as_str() {
                    "invited" => "Invited",
                    "accepted" => "Accepted, preparing a quotation",
                    "declined" => "Declined",
                    "quoted" => "Quoted",
                    "awarded" => "Awarded",
                    "not_awarded" => "Not awarded",
                    _ => "Withdrawn",
                }
                .into(),
                note: [
                    i.decline_reason.clone(),
                    i.compliance_override
                        .clone()
                        .map(|o| format!("Compliance override: {o}")),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
                invited: long_date(i.invited_at.date()),
            })
            .collect(),
        quotations: quotations
            .iter()
            .map(|q| QuotationRow {
                id: q.id,
                vendor: q.vendor_name.clone(),
                kind: if q.kind == "fixed" {
                    "Fixed price"
                } else {
                    "Estimate"
                }
                .into(),
                net: format_pence(q.net_pence),
                vat: format_pence(q.vat_pence),
                gross: format_pence(q.gross_pence()),
                valid_until: long_date(q.valid_until),
                expired: q.valid_until < today,
                notes: q.notes.clone().unwrap_or_default(),
                status: match q.status.as_str() {
                    "submitted" => "Awaiting decision",
                    "approved" => "Approved",
                    "rejected" => "Rejected",
                    "not_awarded" => "Not awarded",
                    _ => "Replaced",
                }
                .into(),
                open: open_quotes && q.status == "submitted",
                over_limit: wo.not_to_exceed_pence.is_some_and(|n| q.gross_pence() > n),
                decision: match (&q.decided_by, &q.decision_reason) {
                    (Some(by), Some(r)) => format!("{by}: {r}"),
                    (Some(by), None) => by.clone(),
                    _ => String::new(),
                },
                file_id: q.file_id,
            })
            .collect(),
        updates: updates
            .iter()
            .map(|u| UpdateRow {
                when: super::audit_log::when_label(u.occurred_at),
                what: match u.kind.as_str() {
                    "attendance" => "Attended",
                    "started" => "Started",
                    "materials_ordered" => "Materials ordered",
                    "completed" => "Marked complete",
                    _ => "Note",
                }
                .into(),
                body: u.body.clone().unwrap_or_default(),
                author: u.author_name.clone(),
            })
            .collect(),
        files: files.iter().map(FileView::new).collect(),
        vendors: vendors
            .iter()
            .filter(|v| v.has_email)
            .map(|v| VendorOpt {
                id: v.id,
                label: format!(
                    "{}{} ({}) — {}",
                    if v.preferred { "★ " } else { "" },
                    v.name,
                    v.trade,
                    match &v.gap {
                        None => "documents in order".to_owned(),
                        Some(g) => g.sentences().join("; "),
                    }
                ),
            })
            .collect(),
        can_invite,
        can_override: may(&member, "work_order.override_compliance", placement),
        can_approve: open_quotes && may(&member, "quotation.approve", placement),
        can_update: wo.status().is_awarded_work() && may(&member, "work_order.update", placement),
        // Closed by paying its bills, it is still rated.
        can_close: (wo.status().can_close()
            || (wo.status() == WorkOrderStatus::Closed && wo.rating.is_none()))
            && may(&member, "work_order.update", placement),
        can_cancel: wo.status().can_cancel() && may(&member, "work_order.update", placement),
        rating,
        history,
        flash,
        problem,
        wo: WorkOrderRow::new(&wo, &categories),
    }
    .into_response())
}

/// Loads the work order for an action, checking the member may do `key` there.
async fn work_order_action(
    tx: &mut TenantTx,
    member: &Member,
    id: Uuid,
    key: &str,
) -> Result<WorkOrder, WebError> {
    let wo = work_order_for(tx, member, id).await?;
    check(member, key, site_placement(wo.site_id, wo.estate_id))?;
    Ok(wo)
}

/// The reason for a compliance override, when the member may give one.
fn override_reason(
    member: &Member,
    wo: &WorkOrder,
    v: &FormData,
) -> Result<Option<String>, WebError> {
    let reason = v.get("override_reason").trim();
    if reason.is_empty() {
        return Ok(None);
    }
    check(
        member,
        "work_order.override_compliance",
        site_placement(wo.site_id, wo.estate_id),
    )?;
    Ok(Some(reason.to_owned()))
}

pub async fn invite(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let v = FormData::parse(&body);
    let path = format!("/work-orders/{id}");
    let mut tx = state.db().begin(&member.ctx()).await?;
    let wo = work_order_action(&mut tx, &member, id, "work_order.invite_contractor").await?;
    let Some(vendor_id) = opt_uuid(v.get("vendor")) else {
        return Ok(refused_on(&path, "Choose a contractor to invite."));
    };
    let request = InviteRequest {
        vendor_id,
        override_reason: override_reason(&member, &wo, &v)?,
    };
    let settings = state.settings().clone();
    let link = move |token: &str| settings.url(&settings.domains.contractor, &format!("/{token}"));
    match ops::invite_contractor(&mut tx, id, &request, &member.org.name, &link, state.now()).await
    {
        Ok(_) => {
            tx.commit().await?;
            Ok(back_to(
                &path,
                "Invitation sent: the contractor has been e-mailed a link.",
            ))
        }
        Err(e) => {
            let message = ops_error(e)?;
            drop(tx);
            Ok(refused_on(&path, &message))
        }
    }
}

/// The quotation's work order, for an approval or rejection.
async fn quotation_work_order(
    tx: &mut TenantTx,
    member: &Member,
    quotation: Uuid,
) -> Result<WorkOrder, WebError> {
    let wo = ops::work_order_of_quotation(tx, quotation)
        .await?
        .ok_or(WebError::NotFound)?;
    work_order_action(tx, member, wo, "quotation.approve").await
}

pub async fn approve_quotation(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let v = FormData::parse(&body);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let wo = quotation_work_order(&mut tx, &member, id).await?;
    let path = format!("/work-orders/{}", wo.id);
    let approver = Approver {
        name: member.name.clone(),
        limit_pence: ops::approval_limit(&mut tx, member.membership_id).await?,
    };
    let reason = override_reason(&member, &wo, &v)?;
    if v.get("raise_not_to_exceed") == "yes" {
        // Lifting the cap changes the work order: that needs its own permission too.
        check(
            &member,
            "work_order.update",
            site_placement(wo.site_id, wo.estate_id),
        )?;
    }
    if v.get("raise_not_to_exceed") == "yes"
        && let Err(e) = ops::raise_not_to_exceed(&mut tx, id, &member.name, state.now()).await
    {
        let message = ops_error(e)?;
        drop(tx);
        return Ok(refused_on(&path, &message));
    }
    match ops::approve_quotation(
        &mut tx,
        id,
        &approver,
        reason.as_deref(),
        &member.org.name,
        state.now(),
    )
    .await
    {
        Ok(()) => {
            tx.commit().await?;
            Ok(back_to(
                &path,
                "Quotation approved: the contractor has been told to go ahead, and the others thanked.",
            ))
        }
        Err(e) => {
            let message = ops_error(e)?;
            drop(tx);
            Ok(refused_on(&path, &message))
        }
    }
}

pub async fn reject_quotation(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let v = FormData::parse(&body);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let wo = quotation_work_order(&mut tx, &member, id).await?;
    let path = format!("/work-orders/{}", wo.id);
    match ops::reject_quotation(&mut tx, id, v.get("reason"), &member.name, state.now()).await {
        Ok(()) => {
            tx.commit().await?;
            Ok(back_to(
                &path,
                "Quotation rejected; the contractor has been told why.",
            ))
        }
        Err(e) => {
            let message = ops_error(e)?;
            drop(tx);
            Ok(refused_on(&path, &message))
        }
    }
}

pub async fn cancel_work_order(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let v = FormData::parse(&body);
    let path = format!("/work-orders/{id}");
    let mut tx = state.db().begin(&member.ctx()).await?;
    work_order_action(&mut tx, &member, id, "work_order.update").await?;
    match ops::cancel_work_order(&mut tx, id, v.get("reason"), &member.org.name, state.now()).await
    {
        Ok(()) => {
            tx.commit().await?;
            Ok(back_to(
                &path,
                "Work order cancelled; invited contractors have been told.",
            ))
        }
        Err(e) => {
            let message = ops_error(e)?;
            drop(tx);
            Ok(refused_on(&path, &message))
        }
    }
}

pub async fn close_work_order(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let v = FormData::parse(&body);
    let path = format!("/work-orders/{id}");
    let Ok(rating) = v.get("rating").trim().parse::<i16>() else {
        return Ok(refused_on(&path, "Rate the work from 1 to 5 stars."));
    };
    let final_cost = match v.get("final_cost").trim() {
        "" => None,
        t => match parse_pounds_to_pence(t) {
            Ok(p) if p <= proplink_domain::operations::MAX_QUOTE_PENCE => Some(p),
            Ok(_) => {
                return Ok(refused_on(
                    &path,
                    "The final cost is more than £10,000,000.00; check the figure.",
                ));
            }
            Err(e) => return Ok(refused_on(&path, &format!("The final cost: {e}"))),
        },
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    work_order_action(&mut tx, &member, id, "work_order.update").await?;
    match ops::close_work_order(
        &mut tx,
        id,
        rating,
        Some(v.get("note")),
        final_cost,
        state.now(),
    )
    .await
    {
        Ok(()) => {
            tx.commit().await?;
            Ok(back_to(
                &path,
                "Work order closed; its issues are resolved.",
            ))
        }
        Err(e) => {
            let message = ops_error(e)?;
            drop(tx);
            Ok(refused_on(&path, &message))
        }
    }
}

/// A note or attendance recorded by staff on work in hand.
pub async fn add_update(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let v = FormData::parse(&body);
    let path = format!("/work-orders/{id}");
    let mut tx = state.db().begin(&member.ctx()).await?;
    work_order_action(&mut tx, &member, id, "work_order.update").await?;
    match ops::record_update(
        &mut tx,
        id,
        v.get("kind"),
        Some(v.get("body")),
        &member.name,
        state.now(),
    )
    .await
    {
        Ok(()) => {
            tx.commit().await?;
            Ok(back_to(&path, "Progress recorded."))
        }
        Err(e) => {
            let message = ops_error(e)?;
            drop(tx);
            Ok(refused_on(&path, &message))
        }
    }
}

/// Documents for the contractor (drawings, a specification) or photos, from staff.
pub async fn add_work_order_files(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    multipart: Multipart,
) -> Page {
    let id = parse_id(&id)?;
    let path = format!("/work-orders/{id}");
    {
        let mut tx = state.db().begin(&member.ctx()).await?;
        let wo = work_order_action(&mut tx, &member, id, "work_order.update").await?;
        tx.commit().await?;
        if wo.status().is_finished() {
            return Ok(refused_on(
                &path,
                &format!(
                    "{} is {}: no more files can be added.",
                    wo.reference,
                    wo.status().label().to_lowercase()
                ),
            ));
        }
    }
    let posted = match uploads::read(multipart).await {
        Ok(p) => p,
        Err(problem) => return Ok(refused_on(&path, &problem)),
    };
    let files: Vec<_> = posted.files_in("files").collect();
    if files.is_empty() {
        return Ok(refused_on(&path, "Choose at least one file to upload."));
    }
    let stored = match uploads::store(
        &state,
        member.org.id,
        &files,
        MediaType::ALL,
        "document",
        &member.name,
    )
    .await
    {
        Ok(s) => s,
        Err(problem) => return Ok(refused_on(&path, &problem)),
    };
    let now = state.now();
    let mut tx = state.db().begin(&member.ctx()).await?;
    for mut f in stored {
        if f.media_type.starts_with("image/") {
            f.purpose = "photo".into();
        }
        ops::record_file(&mut tx, Attachment::WorkOrder(id), &f, now).await?;
    }
    tx.commit().await?;
    Ok(back_to(
        &path,
        "Files added: the contractor can see them on ContractorPort.",
    ))
}

// ---------------------------------------------------------------------------------------------
// Contractors' documents (on the vendor's page)

pub(super) struct DocumentRow {
    pub id: Uuid,
    pub kind: String,
    pub reference: String,
    pub issuer: String,
    pub sum_insured: String,
    pub expires: String,
    pub state: String,
    pub verified: bool,
    pub file_id: Option<Uuid>,
}

pub(super) async fn document_rows(
    tx: &mut TenantTx,
    vendor: Uuid,
    today: time::Date,
) -> Result<Vec<DocumentRow>, WebError> {
    Ok(ops::vendor_documents(tx, vendor)
        .await?
        .iter()
        .map(|d| DocumentRow {
            id: d.id,
            kind: d.doc_type().label().to_owned(),
            reference: d.reference_number.clone(),
            issuer: d.issuer.clone().unwrap_or_default(),
            sum_insured: d.sum_insured_pence.map(format_pence).unwrap_or_default(),
            expires: long_date(d.expires_on),
            state: if d.expires_on < today {
                "Expired".to_owned()
            } else if (d.expires_on - today).whole_days()
                <= proplink_domain::operations::EXPIRY_REMINDER_DAYS
            {
                "Expires soon".to_owned()
            } else {
                "Current".to_owned()
            },
            verified: d.verified_at.is_some(),
            file_id: d.file_id,
        })
        .collect())
}

pub(super) fn document_types() -> Vec<Opt> {
    DocumentType::ALL
        .iter()
        .map(|d| Opt::new(d.as_str(), d.label(), ""))
        .collect()
}

/// Parses a document form (shared with ContractorPort).
pub(crate) fn parse_document(v: &FormData) -> Result<ops::DocumentInput, String> {
    let doc_type = DocumentType::parse(v.get("doc_type")).ok_or("Choose the type of document.")?;
    let expires_on = match records::uk_date(v.get("expires_on").trim()) {
        Ok(Some(d)) => d,
        Ok(None) => return Err("Give the expiry date, e.g. 31/12/2027.".into()),
        Err(e) => return Err(format!("The expiry date: {e}")),
    };
    let sum_insured_pence = match v.get("sum_insured").trim() {
        "" => None,
        t => Some(
            parse_pounds_to_pence(t)
                .map_err(|e| format!("The sum insured: {e}"))
                .and_then(|p| {
                    if p > 0 && p <= 100_000_000_000 {
                        Ok(p)
                    } else {
                        Err("The sum insured must be between £0.01 and £1,000,000,000.".into())
                    }
                })?,
        ),
    };
    if v.get("issuer").chars().count() > 200 {
        return Err("Keep the insurer or scheme name to 200 characters.".into());
    }
    Ok(ops::DocumentInput {
        doc_type,
        reference_number: v.get("reference_number").to_owned(),
        issuer: Some(v.get("issuer").to_owned()),
        sum_insured_pence,
        expires_on,
    })
}

pub async fn add_document(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    multipart: Multipart,
) -> Page {
    let vendor = parse_id(&id)?;
    let path = format!("/vendors/{vendor}");
    let posted = match uploads::read(multipart).await {
        Ok(p) => p,
        Err(problem) => return Ok(refused_on(&path, &problem)),
    };
    let input = match parse_document(&posted.values) {
        Ok(i) => i,
        Err(problem) => return Ok(refused_on(&path, &problem)),
    };
    let files: Vec<_> = posted.files_in("file").collect();
    let stored = match uploads::store(
        &state,
        member.org.id,
        &files,
        MediaType::ALL,
        "certificate",
        &member.name,
    )
    .await
    {
        Ok(s) => s,
        Err(problem) => return Ok(refused_on(&path, &problem)),
    };
    let now = state.now();
    let mut tx = state.db().begin(&member.ctx()).await?;
    proplink_db::people::vendor(&mut tx, vendor)
        .await?
        .ok_or(WebError::NotFound)?;
    match ops::add_vendor_document(&mut tx, vendor, &input, now.date()).await {
        Ok(doc) => {
            for f in &stored {
                ops::record_file(&mut tx, Attachment::VendorDocument(doc), f, now).await?;
            }
            tx.commit().await?;
            Ok(back_to(&path, "Document added."))
        }
        Err(e) => {
            let message = ops_error(e)?;
            drop(tx);
            Ok(refused_on(&path, &message))
        }
    }
}

pub async fn verify_document(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path((vendor, document)): Path<(String, String)>,
) -> Page {
    let vendor = parse_id(&vendor)?;
    let document = parse_id(&document)?;
    let path = format!("/vendors/{vendor}");
    let mut tx = state.db().begin(&member.ctx()).await?;
    match ops::verify_document(&mut tx, vendor, document, &member.name, state.now()).await {
        Ok(()) => {
            tx.commit().await?;
            Ok(back_to(&path, "Document marked as verified."))
        }
        Err(e) => {
            let message = ops_error(e)?;
            drop(tx);
            Ok(refused_on(&path, &message))
        }
    }
}

/// Gives a contractor who works regularly a ContractorPort account (their e-mail address and a
/// one-time code) and e-mails them where to sign in.
pub async fn issue_contractor_account(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let vendor_id = parse_id(&id)?;
    let path = format!("/vendors/{vendor_id}");
    let mut tx = state.db().begin(&member.ctx()).await?;
    let vendor = proplink_db::people::vendor(&mut tx, vendor_id)
        .await?
        .ok_or(WebError::NotFound)?;
    let Some(email) = vendor
        .email
        .as_deref()
        .and_then(|e| EmailAddress::parse(e).ok())
    else {
        return Ok(refused_on(
            &path,
            "Add the contractor's e-mail address first: it is how they sign in.",
        ));
    };
    use proplink_db::portal::{self, Portal};
    if portal::find_account(&mut tx, Portal::ContractorPort, &email)
        .await?
        .is_some()
    {
        return Ok(refused_on(
            &path,
            &format!("{} already has a ContractorPort account.", email.as_str()),
        ));
    }
    portal::create_account(&mut tx, Portal::ContractorPort, &email, &vendor.name).await?;
    let url = state.settings().url(
        &state.settings().domains.contractor,
        &format!("/account/{}", member.org.slug),
    );
    proplink_db::email::queue(
        &mut tx,
        proplink_db::email::NewEmail {
            to_address: email.as_str().to_owned(),
            to_name: Some(vendor.name.clone()),
            subject: format!("{}: your ContractorPort account", member.org.name),
            body_text: format!(
                "Hello {},\n\n{} has given you a ContractorPort account. Sign in with this e-mail \
                 address and a code we send you, to see your open work orders with them:\n{url}\n",
                vendor.name, member.org.name
            ),
            body_html: None,
            category: "contractor_account".into(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(back_to(
        &path,
        &format!(
            "ContractorPort account created; {} has been e-mailed.",
            email.as_str()
        ),
    ))
}

/// More photos on an issue, from staff.
pub async fn add_issue_photos(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    multipart: Multipart,
) -> Page {
    let id = parse_id(&id)?;
    let path = format!("/issues/{id}");
    {
        let mut tx = state.db().begin(&member.ctx()).await?;
        let issue = issue_for(&mut tx, &member, id).await?;
        check(
            &member,
            "issue.update",
            site_placement(issue.site_id, issue.estate_id),
        )?;
        tx.commit().await?;
    }
    let posted = match uploads::read(multipart).await {
        Ok(p) => p,
        Err(problem) => return Ok(refused_on(&path, &problem)),
    };
    let photos: Vec<_> = posted.files_in("photos").collect();
    if photos.is_empty() {
        return Ok(refused_on(&path, "Choose at least one photo."));
    }
    let stored = match uploads::store(
        &state,
        member.org.id,
        &photos,
        MediaType::PHOTOS,
        "photo",
        &member.name,
    )
    .await
    {
        Ok(s) => s,
        Err(problem) => return Ok(refused_on(&path, &problem)),
    };
    let now = state.now();
    let mut tx = state.db().begin(&member.ctx()).await?;
    for f in &stored {
        ops::record_file(&mut tx, Attachment::Issue(id), f, now).await?;
    }
    tx.commit().await?;
    Ok(back_to(&path, "Photos added."))
}

/// Puts the vendor on a preferred list (everywhere, a site, a trade, or both).
pub async fn add_preference(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let vendor = parse_id(&id)?;
    let path = format!("/vendors/{vendor}");
    let v = FormData::parse(&body);
    let trade = match v.get("trade").trim() {
        "" => None,
        t => Some(t.to_owned()),
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = match (v.get("site").trim(), opt_uuid(v.get("site"))) {
        ("", _) => {
            // Every site: only someone whose access covers every site.
            check(&member, "vendor.update", Placement::Organisation)?;
            if !site_scope(&member).all {
                return Err(WebError::Forbidden);
            }
            None
        }
        (_, Some(site)) => {
            let s = proplink_db::portfolio::site(&mut tx, site)
                .await?
                .ok_or(WebError::NotFound)?;
            check(&member, "vendor.update", s.placement())?;
            Some(site)
        }
        (_, None) => return Ok(refused_on(&path, "Choose the site again.")),
    };
    match ops::add_preference(&mut tx, vendor, site, trade.as_deref()).await {
        Ok(()) => {
            tx.commit().await?;
            Ok(back_to(&path, "Added to the preferred list."))
        }
        Err(e) => {
            let message = ops_error(e)?;
            drop(tx);
            Ok(refused_on(&path, &message))
        }
    }
}

pub async fn remove_preference(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path((id, preference)): Path<(String, String)>,
) -> Page {
    let vendor = parse_id(&id)?;
    let preference = parse_id(&preference)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    // A preference for a site is that site's to change; one for every site needs every site.
    match ops::preference_site(&mut tx, vendor, preference).await? {
        None => return Err(WebError::NotFound),
        Some(Some(site)) => {
            let s = proplink_db::portfolio::site(&mut tx, site)
                .await?
                .ok_or(WebError::NotFound)?;
            check(&member, "vendor.update", s.placement())?;
        }
        Some(None) => {
            if !site_scope(&member).all {
                return Err(WebError::Forbidden);
            }
        }
    }
    match ops::remove_preference(&mut tx, vendor, preference).await {
        Ok(()) => {
            tx.commit().await?;
            Ok(back_to(
                &format!("/vendors/{vendor}"),
                "Removed from the preferred list.",
            ))
        }
        Err(e) => Err(ops_error(e).map_or_else(|e| e, |_| WebError::NotFound)),
    }
}

pub(super) async fn preference_rows(
    tx: &mut TenantTx,
    vendor: Uuid,
) -> Result<Vec<(Uuid, String)>, WebError> {
    let categories = Categories::load(tx).await?;
    Ok(ops::preferences(tx, vendor)
        .await?
        .into_iter()
        .map(|(id, site, trade)| {
            let trade = trade.as_deref().map(|t| categories.name(t));
            let text = match (site, trade) {
                (None, None) => "Preferred everywhere, for all work".to_owned(),
                (Some(s), None) => format!("Preferred at {s}"),
                (None, Some(t)) => format!("Preferred for {t}"),
                (Some(s), Some(t)) => format!("Preferred for {t} at {s}"),
            };
            (id, text)
        })
        .collect())
}

pub(super) async fn trade_options(tx: &mut TenantTx) -> Result<Vec<Opt>, WebError> {
    let categories = Categories::load(tx).await?;
    Ok(std::iter::once(Opt::new("", "All work", ""))
        .chain(categories.options(""))
        .collect())
}

pub(super) async fn site_options(tx: &mut TenantTx, member: &Member) -> Result<Vec<Opt>, WebError> {
    Ok(std::iter::once(Opt::new("", "Every site", ""))
        .chain(
            ops::site_choices(tx, &site_scope(member))
                .await?
                .into_iter()
                .map(|(id, n)| Opt::new(id.to_string(), n, "")),
        )
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_a_unit_or_a_space_or_nothing() {
        let u = Uuid::now_v7();
        assert_eq!(parse_place(&format!("unit:{u}")), Ok((Some(u), None)));
        assert_eq!(parse_place(&format!("space:{u}")), Ok((None, Some(u))));
        assert_eq!(parse_place(""), Ok((None, None)));
        assert!(parse_place("unit:nonsense").is_err());
        assert!(parse_place(&format!("site:{u}")).is_err());
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(1), "1 KB");
        assert_eq!(human_size(3 * 1024 * 1024 + 300_000), "3.3 MB");
    }

    #[test]
    fn a_leak_is_plumbers_work() {
        assert_eq!(trade_for("water_leak"), Trade::Plumbing);
        assert_eq!(trade_for("nonsense"), Trade::GeneralRepairs);
    }
}
