//! Planned maintenance and compliance in the admin app (issue 5): the compliance matrix across
//! the portfolio (sites × obligations: overdue, due within 30 days, compliant), a site's
//! maintenance events with their completions and evidence, raising a work order for an event,
//! and service agreements.

use super::form::FormData;
use super::operations::{Categories, any_work, back_to, flash_of, ops_error, query_of, refused_on};
use super::records::{self, Opt, check, may, parse_id, site_scope};
use super::{Member, Shell};
use crate::error::WebError;
use crate::state::AppState;
use crate::uploads;
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::multipart::Multipart;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use proplink_db::maintenance::{self as mnt, AgreementInput, EventInput};
use proplink_db::operations::{self as ops, Attachment, Location};
use proplink_domain::dates::long_date;
use proplink_domain::schedule::{ComplianceStatus, DueBasis, Recurrence, templates};
use proplink_domain::uk::{format_pence, parse_pounds_to_pence};
use proplink_files::MediaType;
use uuid::Uuid;

type Page = Result<Response, WebError>;

// ---------------------------------------------------------------------------------------------
// The compliance matrix

pub(super) struct MatrixCell {
    pub css: &'static str,
    pub text: String,
}

pub(super) struct MatrixRowView {
    pub site_id: Uuid,
    pub site_name: String,
    pub worst: &'static str,
    pub cells: Vec<MatrixCell>,
}

#[derive(Template, WebTemplate)]
#[template(path = "operations/compliance.html")]
pub struct CompliancePage {
    shell: Shell,
    columns: Vec<String>,
    rows: Vec<MatrixRowView>,
    overdue: i64,
    due_soon: i64,
    compliant: i64,
    attention_only: bool,
    shown: usize,
    total_sites: usize,
}

/// The sites shown at once; the totals always count all of them.
const MATRIX_ROWS: usize = 200;

pub async fn dashboard(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(raw): RawQuery,
) -> Page {
    let query = query_of(raw);
    let attention_only = query.get("show") == "attention";
    let today = state.now().date();
    let mut tx = state.db().begin(&member.ctx()).await?;
    let matrix = mnt::compliance_matrix(&mut tx, &site_scope(&member), None, today).await?;
    tx.commit().await?;
    let total_sites = matrix.rows.len();
    let rows: Vec<MatrixRowView> = matrix
        .rows
        .iter()
        .filter(|r| !attention_only || r.worst != ComplianceStatus::Compliant)
        .take(MATRIX_ROWS)
        .map(|r| MatrixRowView {
            site_id: r.site_id,
            site_name: r.site_name.clone(),
            worst: r.worst.css(),
            cells: r
                .cells
                .iter()
                .map(|c| match c {
                    Some(c) => MatrixCell {
                        css: c.status.css(),
                        text: format!("{}: {}", c.status.label(), long_date(c.next_due)),
                    },
                    None => MatrixCell {
                        css: "none",
                        text: "—".into(),
                    },
                })
                .collect(),
        })
        .collect();
    Ok(CompliancePage {
        shell: Shell::new(&member, "/maintenance"),
        columns: matrix.columns.iter().map(|(_, n)| n.clone()).collect(),
        shown: rows.len(),
        rows,
        overdue: matrix.overdue,
        due_soon: matrix.due_soon,
        compliant: matrix.compliant,
        attention_only,
        total_sites,
    }
    .into_response())
}

// ---------------------------------------------------------------------------------------------
// A site's maintenance

pub(super) struct EventView {
    pub id: Uuid,
    pub name: String,
    pub place: String,
    pub schedule: String,
    pub next_due: String,
    pub css: &'static str,
    pub status: String,
    pub last_done: String,
    pub responsible: String,
    pub contractor: String,
    pub compliance: bool,
    pub can_raise: bool,
    pub completions: Vec<(String, String, String, Option<Uuid>)>,
}

#[derive(Template, WebTemplate)]
#[template(path = "operations/site_maintenance.html")]
pub struct SiteMaintenancePage {
    shell: Shell,
    site_id: Uuid,
    site_name: String,
    events: Vec<EventView>,
    templates: Vec<Opt>,
    trades: Vec<Opt>,
    vendors: Vec<Opt>,
    can_create: bool,
    can_update: bool,
    today: String,
    flash: Option<String>,
    problem: Option<String>,
}

pub async fn site_maintenance(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let site_id = parse_id(&id)?;
    let query = query_of(raw);
    let today = state.now().date();
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = proplink_db::portfolio::site(&mut tx, site_id)
        .await?
        .ok_or(WebError::NotFound)?;
    check(&member, "maintenance.read", site.placement())?;
    let events = mnt::events_of_site(&mut tx, site_id).await?;
    let mut views = Vec::with_capacity(events.len());
    for e in &events {
        let completions = mnt::completions(&mut tx, e.id).await?;
        let status = e.status(today);
        views.push(EventView {
            id: e.id,
            name: e.name.clone(),
            place: e.place.clone(),
            schedule: format!(
                "{}, {}",
                e.recurrence().map(|r| r.label()).unwrap_or_default(),
                if e.due_basis == "anchored" {
                    "fixed calendar"
                } else {
                    "from each completion"
                }
            ),
            next_due: long_date(e.next_due),
            css: status.css(),
            status: status.label().to_owned(),
            last_done: e.last_completed_on.map(long_date).unwrap_or_default(),
            responsible: e.responsible_name.clone().unwrap_or_default(),
            contractor: e.vendor_name.clone().unwrap_or_default(),
            compliance: e.compliance,
            can_raise: e.trade.is_some(),
            completions: completions
                .iter()
                .map(|c| {
                    (
                        long_date(c.completed_on),
                        c.recorded_by.clone(),
                        c.notes.clone().unwrap_or_default(),
                        c.file_id,
                    )
                })
                .collect(),
        });
    }
    let vendors = ops::vendor_choices(&mut tx, &any_work(), None, today).await?;
    let categories = Categories::load(&mut tx).await?;
    tx.commit().await?;
    let (flash, problem) = flash_of(&query);
    let placement = site.placement();
    Ok(SiteMaintenancePage {
        shell: Shell::new(&member, "/maintenance"),
        site_id,
        site_name: site.name.clone(),
        events: views,
        templates: std::iter::once(Opt::new("", "A one-off or custom event", ""))
            .chain(templates().iter().map(|t| {
                Opt::new(
                    t.key,
                    format!("{} ({})", t.name, t.recurrence.label().to_lowercase()),
                    "",
                )
            }))
            .collect(),
        trades: std::iter::once(Opt::new("", "Do not raise work orders", ""))
            .chain(categories.options(""))
            .collect(),
        vendors: std::iter::once(Opt::new("", "None", ""))
            .chain(
                vendors
                    .iter()
                    .map(|v| Opt::new(v.id.to_string(), v.name.clone(), "")),
            )
            .collect(),
        can_create: may(&member, "maintenance.create", placement),
        can_update: may(&member, "maintenance.update", placement),
        today: records::uk_date_text(today),
        flash,
        problem,
    }
    .into_response())
}

fn parse_event(site: Uuid, v: &FormData) -> Result<EventInput, String> {
    let template = match v.get("template") {
        "" => None,
        key => Some(
            proplink_domain::schedule::template(key)
                .ok_or("Choose one of the listed templates.")?,
        ),
    };
    let name = match (v.get("name").trim(), template) {
        ("", Some(t)) => t.name.to_owned(),
        ("", None) => return Err("Give the event a name, or choose a template.".into()),
        (n, _) => n.to_owned(),
    };
    let recurrence = match (v.get("frequency"), template) {
        ("", Some(t)) => t.recurrence,
        ("", None) => return Err("Choose how often the event recurs.".into()),
        (f, _) => Recurrence::from_form(
            f,
            Some(v.get("custom_interval")),
            Some(v.get("custom_unit")),
        )
        .map_err(|e| e.to_string())?,
    };
    let basis = match (v.get("basis"), template) {
        ("", Some(t)) => t.basis,
        ("", None) => DueBasis::Rolling,
        (b, _) => DueBasis::parse(b).map_err(|e| e.to_string())?,
    };
    let first_due = match records::uk_date(v.get("first_due").trim()) {
        Ok(Some(d)) => d,
        Ok(None) => return Err("Give the first due date, e.g. 31/03/2027.".into()),
        Err(e) => return Err(format!("The first due date: {e}")),
    };
    let trade = match v.get("trade").trim() {
        "" => None,
        t => Some(t.to_owned()),
    };
    let raise_days_before = match (&trade, v.get("raise_days_before").trim()) {
        (None, _) => None,
        (Some(_), "") => Some(14),
        (Some(_), d) => Some(
            d.parse::<i32>()
                .ok()
                .filter(|d| (0..=90).contains(d))
                .ok_or("Raise work orders between 0 and 90 days before the due date.")?,
        ),
    };
    let vendor_id = match v.get("vendor") {
        "" => None,
        id => Some(Uuid::parse_str(id).map_err(|_| "Choose the contractor again.")?),
    };
    if v.get("responsible").chars().count() > 200 {
        return Err("Keep the responsible person's name to 200 characters.".into());
    }
    Ok(EventInput {
        location: Location {
            site_id: site,
            ..Default::default()
        },
        name,
        template_key: template.map(|t| t.key.to_owned()),
        compliance: v.get("compliance") == "yes" || template.is_some_and(|t| t.compliance),
        recurrence,
        basis,
        first_due,
        responsible_name: Some(v.get("responsible").to_owned()),
        vendor_id,
        trade,
        raise_days_before,
    })
}

pub async fn create_event(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let site_id = parse_id(&id)?;
    let path = format!("/sites/{site_id}/maintenance");
    let v = FormData::parse(&body);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = proplink_db::portfolio::site(&mut tx, site_id)
        .await?
        .ok_or(WebError::NotFound)?;
    check(&member, "maintenance.create", site.placement())?;
    let input = match parse_event(site_id, &v) {
        Ok(i) => i,
        Err(p) => return Ok(refused_on(&path, &p)),
    };
    match mnt::create_event(&mut tx, &input).await {
        Ok(_) => {
            tx.commit().await?;
            Ok(back_to(&path, &format!("{} added.", input.name)))
        }
        Err(e) => Ok(refused_on(&path, &ops_error(e)?)),
    }
}

async fn event_for(
    tx: &mut proplink_db::TenantTx,
    member: &Member,
    id: Uuid,
    key: &str,
) -> Result<mnt::Event, WebError> {
    let e = mnt::find_event(tx, id).await?.ok_or(WebError::NotFound)?;
    check(
        member,
        key,
        proplink_domain::authorize::Placement::Site {
            site: e.site_id,
            estate: e.estate_id,
        },
    )?;
    Ok(e)
}

/// Records a completion with its evidence (certificate or report).
pub async fn complete_event(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    multipart: Multipart,
) -> Page {
    let event = parse_id(&id)?;
    let site = {
        let mut tx = state.db().begin(&member.ctx()).await?;
        let e = event_for(&mut tx, &member, event, "maintenance.update").await?;
        tx.commit().await?;
        e.site_id
    };
    let path = format!("/sites/{site}/maintenance");
    let posted = match uploads::read(multipart).await {
        Ok(p) => p,
        Err(p) => return Ok(refused_on(&path, &p)),
    };
    let completed_on = match records::uk_date(posted.values.get("completed_on").trim()) {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(refused_on(&path, "Give the date the work was done.")),
        Err(e) => return Ok(refused_on(&path, &format!("The completion date: {e}"))),
    };
    let files: Vec<_> = posted.files_in("evidence").collect();
    let stored = match uploads::store(
        &state,
        member.org.id,
        &files,
        MediaType::ALL,
        "evidence",
        &member.name,
    )
    .await
    {
        Ok(s) => s,
        Err(p) => return Ok(refused_on(&path, &p)),
    };
    let now = state.now();
    let mut tx = state.db().begin(&member.ctx()).await?;
    match mnt::record_completion(
        &mut tx,
        event,
        completed_on,
        Some(posted.values.get("notes")),
        &member.name,
        now.date(),
    )
    .await
    {
        Ok((completion, next)) => {
            for f in &stored {
                ops::record_file(
                    &mut tx,
                    Attachment::MaintenanceCompletion(completion),
                    f,
                    now,
                )
                .await?;
            }
            tx.commit().await?;
            Ok(back_to(
                &path,
                &format!("Completion recorded. Next due {}.", long_date(next)),
            ))
        }
        Err(e) => Ok(refused_on(&path, &ops_error(e)?)),
    }
}

/// Raises the work order for an event's current due date now.
pub async fn raise_event_work_order(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let event = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let e = event_for(&mut tx, &member, event, "work_order.create").await?;
    let path = format!("/sites/{}/maintenance", e.site_id);
    let settings = state.settings().clone();
    let link = move |t: &str| settings.url(&settings.domains.contractor, &format!("/{t}"));
    match mnt::raise_work_order(&mut tx, event, &member.org.name, &link, state.now()).await {
        Ok(Some(wo)) => {
            tx.commit().await?;
            Ok(back_to(
                &format!("/work-orders/{wo}"),
                "Work order raised for the event.",
            ))
        }
        Ok(None) => Ok(refused_on(
            &path,
            "A work order for this due date has already been raised.",
        )),
        Err(e) => Ok(refused_on(&path, &ops_error(e)?)),
    }
}

// ---------------------------------------------------------------------------------------------
// Service agreements

pub(super) struct AgreementView {
    pub id: Uuid,
    pub schedules: Vec<String>,
    pub title: String,
    pub vendor: String,
    pub sites: String,
    pub pricing: String,
    pub value: String,
    pub term: String,
    pub renewal: String,
    pub attention: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "operations/agreements.html")]
pub struct AgreementsPage {
    shell: Shell,
    rows: Vec<AgreementView>,
    vendors: Vec<Opt>,
    sites: Vec<Opt>,
    can_create: bool,
    can_schedule: bool,
    trades: Vec<Opt>,
    flash: Option<String>,
    problem: Option<String>,
}

/// "FREQ=MONTHLY 2026-12-01; …" → "Monthly, next 1 December 2026".
fn schedule_lines(raw: &str) -> Vec<String> {
    raw.split("; ")
        .filter_map(|one| {
            let (rule, date) = one.rsplit_once(' ')?;
            let rec = Recurrence::parse_rrule(rule).ok()?;
            let date = time::Date::parse(
                date,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .ok()?;
            Some(format!("{}, next {}", rec.label(), long_date(date)))
        })
        .collect()
}

/// Adds a schedule to an agreement: its vendor's work orders raised on each date.
pub async fn add_schedule(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let agreement = parse_id(&id)?;
    let path = "/service-agreements";
    let v = FormData::parse(&body);
    let parsed = (|| -> Result<(Uuid, Recurrence, time::Date, String), String> {
        let site = Uuid::parse_str(v.get("site")).map_err(|_| "Choose the site.")?;
        let rec = Recurrence::from_form(
            v.get("frequency"),
            Some(v.get("custom_interval")),
            Some(v.get("custom_unit")),
        )
        .map_err(|e| e.to_string())?;
        let first = match records::uk_date(v.get("first_date").trim()) {
            Ok(Some(d)) => d,
            Ok(None) => return Err("Give the first date, e.g. 01/12/2026.".into()),
            Err(e) => return Err(format!("The first date: {e}")),
        };
        let trade = match v.get("trade").trim() {
            "" => return Err("Choose the service category.".into()),
            t => t.to_owned(),
        };
        Ok((site, rec, first, trade))
    })();
    let (site, rec, first, trade) = match parsed {
        Ok(p) => p,
        Err(p) => return Ok(refused_on(path, &p)),
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    let s = proplink_db::portfolio::site(&mut tx, site)
        .await?
        .ok_or(WebError::NotFound)?;
    check(&member, "service_agreement.update", s.placement())?;
    match mnt::add_schedule(&mut tx, agreement, site, rec, first, &trade).await {
        Ok(_) => {
            tx.commit().await?;
            Ok(back_to(
                path,
                &format!(
                    "Schedule added: {}, first on {}.",
                    rec.label(),
                    long_date(first)
                ),
            ))
        }
        Err(e) => Ok(refused_on(path, &ops_error(e)?)),
    }
}

fn pricing_label(key: &str) -> &'static str {
    match key {
        "fixed_fee" => "Fixed fee",
        "recurring_fee" => "Recurring fee",
        "schedule_of_rates" => "Schedule of rates",
        _ => "Time and materials",
    }
}

pub async fn agreements(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(raw): RawQuery,
) -> Page {
    let query = query_of(raw);
    let today = state.now().date();
    let mut tx = state.db().begin(&member.ctx()).await?;
    let list = mnt::agreements(&mut tx, None, &site_scope(&member)).await?;
    let vendors = ops::vendor_choices(&mut tx, &any_work(), None, today).await?;
    let sites = ops::site_choices(&mut tx, &site_scope(&member)).await?;
    let categories = Categories::load(&mut tx).await?;
    tx.commit().await?;
    let (flash, problem) = flash_of(&query);
    Ok(AgreementsPage {
        shell: Shell::new(&member, "/service-agreements"),
        rows: list
            .iter()
            .map(|a| {
                let notice_by = a.notice_by();
                AgreementView {
                    id: a.id,
                    schedules: schedule_lines(&a.schedules),
                    title: a.title.clone(),
                    vendor: a.vendor_name.clone(),
                    sites: a.sites.clone(),
                    pricing: pricing_label(&a.pricing_model).to_owned(),
                    value: a
                        .annual_value_pence
                        .map(|p| format!("{} a year", format_pence(p)))
                        .unwrap_or_default(),
                    term: match a.ends_on {
                        Some(e) => format!("{} to {}", long_date(a.starts_on), long_date(e)),
                        None => format!("From {}, rolling", long_date(a.starts_on)),
                    },
                    renewal: match notice_by {
                        Some(n) => format!(
                            "{}; notice by {} ({} days)",
                            if a.auto_renew {
                                "Renews automatically"
                            } else {
                                "Ends"
                            },
                            long_date(n),
                            a.notice_days
                        ),
                        None => format!("{} days' notice", a.notice_days),
                    },
                    attention: notice_by
                        .is_some_and(|n| (n - today).whole_days() <= mnt::RENEWAL_REMINDER_DAYS),
                }
            })
            .collect(),
        vendors: vendors
            .iter()
            .map(|v| Opt::new(v.id.to_string(), v.name.clone(), ""))
            .collect(),
        sites: sites
            .into_iter()
            .map(|(id, n)| Opt::new(id.to_string(), n, ""))
            .collect(),
        can_create: member.can("service_agreement.create") && !member.read_only(),
        can_schedule: member.can("service_agreement.update") && !member.read_only(),
        trades: categories.options(""),
        flash,
        problem,
    }
    .into_response())
}

pub async fn create_agreement(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    body: Bytes,
) -> Page {
    let v = FormData::parse(&body);
    let path = "/service-agreements";
    let date = |k: &str, label: &str| -> Result<Option<time::Date>, String> {
        records::uk_date(v.get(k).trim()).map_err(|e| format!("The {label}: {e}"))
    };
    let parsed = (|| -> Result<AgreementInput, String> {
        let vendor_id = Uuid::parse_str(v.get("vendor")).map_err(|_| "Choose the vendor.")?;
        let starts_on = date("starts_on", "start date")?.ok_or("Give the start date.")?;
        let annual_value_pence = match v.get("annual_value").trim() {
            "" => None,
            t => {
                let p = parse_pounds_to_pence(t).map_err(|e| format!("The yearly value: {e}"))?;
                if p > 10_000_000_000 {
                    return Err(
                        "The yearly value is more than £100,000,000; check the figure.".into(),
                    );
                }
                Some(p)
            }
        };
        if v.get("scope").chars().count() > 5000 {
            return Err("Keep the scope to 5,000 characters.".into());
        }
        let notice_days = match v.get("notice_days").trim() {
            "" => 30,
            t => t
                .parse::<i32>()
                .map_err(|_| "Give the notice period as a number of days.")?,
        };
        let sites = v
            .all("site")
            .map(|s| Uuid::parse_str(s).map_err(|_| "Choose the sites again."))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AgreementInput {
            vendor_id,
            title: v.get("title").to_owned(),
            scope: Some(v.get("scope").to_owned()),
            pricing_model: v.get("pricing_model").to_owned(),
            annual_value_pence,
            starts_on,
            ends_on: date("ends_on", "end date")?,
            notice_days,
            auto_renew: v.get("auto_renew") == "yes",
            sites,
            manager_name: member.name.clone(),
            manager_email: Some(member.email.clone()),
        })
    })();
    let input = match parsed {
        Ok(i) => i,
        Err(p) => return Ok(refused_on(path, &p)),
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    // Every chosen site must be in the member's scope; an agreement for no particular site is
    // organisation-wide.
    if input.sites.is_empty() {
        check(
            &member,
            "service_agreement.create",
            proplink_domain::authorize::Placement::Organisation,
        )?;
    }
    for site in &input.sites {
        let s = proplink_db::portfolio::site(&mut tx, *site)
            .await?
            .ok_or(WebError::NotFound)?;
        check(&member, "service_agreement.create", s.placement())?;
    }
    match mnt::create_agreement(&mut tx, &input).await {
        Ok(_) => {
            tx.commit().await?;
            Ok(back_to(path, &format!("{} added.", input.title.trim())))
        }
        Err(e) => Ok(refused_on(path, &ops_error(e)?)),
    }
}

// ---------------------------------------------------------------------------------------------
// The maintenance calendar: a month of planned events across the member's sites.

pub struct CalendarEntry {
    pub site_id: Uuid,
    pub site_name: String,
    pub name: String,
    pub css: &'static str,
    pub projected: bool,
}

pub struct CalendarDay {
    pub day: u8,
    pub in_month: bool,
    pub today: bool,
    pub entries: Vec<CalendarEntry>,
}

#[derive(Template, WebTemplate)]
#[template(path = "operations/calendar.html")]
pub struct CalendarPage {
    shell: Shell,
    title: String,
    previous: String,
    next: String,
    weeks: Vec<Vec<CalendarDay>>,
    count: usize,
    truncated: bool,
}

/// The first of the month named `2026-12`, or of this month when none (or nonsense) is given.
fn month_start(text: &str, today: time::Date) -> time::Date {
    let parsed = text.split_once('-').and_then(|(y, m)| {
        let year: i32 = y.parse().ok()?;
        let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
        if !(2000..=2100).contains(&year) {
            return None;
        }
        time::Date::from_calendar_date(year, month, 1).ok()
    });
    parsed.unwrap_or_else(|| today.replace_day(1).unwrap_or(today))
}

fn month_key(d: time::Date) -> String {
    format!("{}-{:02}", d.year(), u8::from(d.month()))
}

/// GET /maintenance/calendar?month=2026-12
pub async fn calendar(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(raw): RawQuery,
) -> Page {
    let query = query_of(raw);
    let today = state.now().date();
    let first = month_start(query.get("month"), today);
    let last = first
        .replace_day(first.month().length(first.year()))
        .unwrap_or(first);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let events = mnt::events_due_by(&mut tx, &site_scope(&member), last).await?;
    tx.commit().await?;
    let truncated = events.len() as i64 == mnt::CALENDAR_EVENTS;
    // Each event's dates in the month: its next due date, then the dates projected from it.
    let mut by_day: Vec<Vec<CalendarEntry>> = (0..31).map(|_| Vec::new()).collect();
    let mut count = 0;
    for e in &events {
        let Some(rec) = e.recurrence() else { continue };
        for d in proplink_domain::schedule::occurrences(rec, e.next_due, first, last) {
            let projected = d != e.next_due;
            if let Some(slot) = by_day.get_mut(usize::from(d.day()) - 1) {
                slot.push(CalendarEntry {
                    site_id: e.site_id,
                    site_name: e.site_name.clone(),
                    name: e.name.clone(),
                    css: if projected {
                        "grey"
                    } else {
                        e.status(today).css()
                    },
                    projected,
                });
                count += 1;
            }
        }
    }
    // Weeks from Monday: the days before the 1st and after the last belong to other months.
    let lead = i64::from(first.weekday().number_days_from_monday());
    let mut weeks = Vec::new();
    let mut day = first - time::Duration::days(lead);
    while day <= last || day.weekday() != time::Weekday::Monday {
        let mut week = Vec::with_capacity(7);
        for _ in 0..7 {
            let in_month = day.month() == first.month() && day.year() == first.year();
            week.push(CalendarDay {
                day: day.day(),
                in_month,
                today: day == today,
                entries: if in_month {
                    std::mem::take(&mut by_day[usize::from(day.day()) - 1])
                } else {
                    Vec::new()
                },
            });
            day = day.next_day().unwrap_or(day);
        }
        weeks.push(week);
        if weeks.len() > 6 {
            break;
        }
    }
    let previous = first.previous_day().unwrap_or(first);
    let next = last.next_day().unwrap_or(last);
    Ok(CalendarPage {
        shell: Shell::new(&member, "/maintenance"),
        title: format!("{} {}", first.month(), first.year()),
        previous: month_key(previous),
        next: month_key(next),
        weeks,
        count,
        truncated,
    }
    .into_response())
}

#[cfg(test)]
mod calendar_tests {
    use super::month_start;
    use time::macros::date;

    #[test]
    fn months_are_read_or_default_to_this_one() {
        let today = date!(2026 - 11 - 24);
        assert_eq!(month_start("2027-02", today), date!(2027 - 02 - 01));
        for bad in ["", "2027-13", "x-1", "1999-05", "2027", "2027-02-01"] {
            assert_eq!(month_start(bad, today), date!(2026 - 11 - 01), "{bad}");
        }
    }
}
