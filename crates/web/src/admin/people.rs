//! People → Contacts (docs-spec §2.4): the directory with search, role and site filters and
//! CSV export; a contact's page with their e-mails, phones, roles, leases, occupancies,
//! positions and possible duplicates; the contact form; merging; and the subject-access
//! export (UK GDPR Art. 15) as JSON.
//!
//! A contact has no site of its own: `people::contact` with the member's scope answers None for
//! a contact not connected to their sites, which the pages report as not found. Leases and
//! occupancies on a contact's page are limited to the sites the member can see.

use super::audit_log::{iso_date, uk_time};
use super::form::{FieldErrors, FormData};
use super::portfolio::{add_chosen_contacts, contact_choices, done_flash, unit_type_label};
use super::records::{
    self, ADDRESS, ConfirmPage, Fields, FormPage, HistoryRow, Opt, Pager, Section, parse_id,
    site_scope,
};
use super::subject_access;
use super::{Member, Shell};
use crate::error::WebError;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use proplink_db::people::{self, Contact, ContactInput, ContactQuery, EraseError, MergeError};
use proplink_db::portfolio::{self, Archivable, Showing};
use proplink_db::{DbError, TenantTx};
use proplink_domain::EmailAddress;
use proplink_domain::dates::long_date;
use proplink_domain::portfolio::{ContactKind, ContactRole, CorrespondencePreference};
use proplink_domain::uk::PhoneNumber;
use std::collections::HashSet;
use time::OffsetDateTime;
use uuid::Uuid;

type Page = Result<Response, WebError>;

const PER_PAGE: i64 = 50;

/// The contact, if the member's scope reaches it.
async fn contact_for(tx: &mut TenantTx, member: &Member, id: Uuid) -> Result<Contact, WebError> {
    people::contact(tx, &site_scope(member), id)
        .await?
        .ok_or(WebError::NotFound)
}

fn role_label(key: &str) -> String {
    ContactRole::from_key(key)
        .map(|r| r.label().to_owned())
        .unwrap_or_else(|| key.to_owned())
}

fn roles_label(roles: &[String]) -> String {
    roles
        .iter()
        .map(|r| role_label(r))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------------
// The directory

struct ContactFilter {
    q: String,
    role: Option<ContactRole>,
    site: Option<Uuid>,
    showing: Showing,
    page: i64,
}

impl ContactFilter {
    fn from_query(query: &FormData) -> Self {
        Self {
            q: query.get("q").trim().chars().take(100).collect(),
            role: ContactRole::from_key(query.get("role")),
            site: records::filter_id(query.get("site")),
            showing: Showing::parse(query.get("showing")),
            page: records::page_number(query.get("page")),
        }
    }

    fn query(&self) -> ContactQuery {
        ContactQuery {
            q: self.q.clone(),
            role: self.role.map(|r| r.key().to_owned()),
            site: self.site,
            showing: self.showing,
            page: self.page,
            per_page: PER_PAGE,
        }
    }

    fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("q", self.q.clone()),
            (
                "role",
                self.role.map(|r| r.key().to_owned()).unwrap_or_default(),
            ),
            ("site", self.site.map(|s| s.to_string()).unwrap_or_default()),
            (
                "showing",
                if self.showing == Showing::Live {
                    String::new()
                } else {
                    self.showing.key().to_owned()
                },
            ),
        ]
    }
}

pub struct ContactRow {
    id: Uuid,
    name: String,
    kind: String,
    email: String,
    phone: String,
    roles: String,
    archived: bool,
}

impl ContactRow {
    fn new(c: &Contact) -> Self {
        Self {
            id: c.id,
            name: c.display_name.clone(),
            kind: if c.kind == "company" {
                "Company"
            } else {
                "Person"
            }
            .to_owned(),
            email: c.primary_email().unwrap_or_default().to_owned(),
            phone: c.phones.first().cloned().unwrap_or_default(),
            roles: roles_label(&c.roles),
            archived: c.archived_at.is_some(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "people/contacts.html")]
struct ContactsPage {
    shell: Shell,
    rows: Vec<ContactRow>,
    q: String,
    roles: Vec<Opt>,
    sites: Vec<Opt>,
    showing: Vec<Opt>,
    pager: Pager,
    can_create: bool,
    export_href: Option<String>,
}

/// GET /contacts (`contact.read`).
pub async fn list(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(query): RawQuery,
) -> Page {
    let query = FormData::parse(query.unwrap_or_default().as_bytes());
    let filter = ContactFilter::from_query(&query);
    let scope = site_scope(&member);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let page = people::list_contacts(&mut tx, &scope, &filter.query()).await?;
    let sites = portfolio::list_sites(&mut tx, &scope, Showing::Live, None, "").await?;
    tx.commit().await?;
    let role_chosen = filter.role.map(|r| r.key()).unwrap_or_default();
    let site_chosen = filter.site.map(|s| s.to_string()).unwrap_or_default();
    let pairs = filter.pairs();
    Ok(ContactsPage {
        shell: Shell::new(&member, "/contacts")
            .with_flash((query.get("done") == "merged").then(|| "Contacts merged.".to_owned())),
        rows: page.rows.iter().map(ContactRow::new).collect(),
        q: filter.q.clone(),
        roles: std::iter::once(Opt::new("", "Any role", role_chosen))
            .chain(
                ContactRole::ALL
                    .iter()
                    .map(|r| Opt::new(r.key(), r.label(), role_chosen)),
            )
            .collect(),
        sites: std::iter::once(Opt::new("", "Any site", &site_chosen))
            .chain(sites.iter().map(|s| {
                Opt::new(
                    s.id.to_string(),
                    format!("{} {}", s.reference, s.name),
                    &site_chosen,
                )
            }))
            .collect(),
        showing: [
            ("live", "Live"),
            ("archived", "Archived"),
            ("all", "Live and archived"),
        ]
        .into_iter()
        .map(|(v, l)| Opt::new(v, l, filter.showing.key()))
        .collect(),
        pager: Pager::new("/contacts", &pairs, page.page, page.pages(), page.total),
        can_create: member.can("contact.create") && !member.read_only(),
        export_href: member
            .can("data_import.export")
            .then(|| format!("/contacts/export.csv{}", records::query_string(&pairs))),
    }
    .into_response())
}

/// GET /contacts/export.csv (`data_import.export`).
pub async fn export(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(query): RawQuery,
) -> Page {
    let query = FormData::parse(query.unwrap_or_default().as_bytes());
    let filter = ContactFilter::from_query(&query);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let contacts = people::export_contacts(&mut tx, &site_scope(&member), &filter.query()).await?;
    tx.commit().await?;
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    records::csv_download(
        "contacts",
        &member.org.slug,
        state.now(),
        &[
            "Name",
            "Kind",
            "Reference",
            "E-mails",
            "Phones",
            "Roles",
            "Address line 1",
            "Address line 2",
            "Town or city",
            "Postcode",
            "Country",
            "Correspondence",
            "Archived",
        ],
        contacts.iter().map(|c| {
            vec![
                c.display_name.clone(),
                c.kind.clone(),
                text(&c.reference),
                c.emails.join("; "),
                c.phones.join("; "),
                roles_label(&c.roles),
                text(&c.address_line_1),
                text(&c.address_line_2),
                text(&c.city),
                text(&c.postcode),
                c.country.clone(),
                c.correspondence.clone(),
                if c.archived_at.is_some() { "Yes" } else { "No" }.to_owned(),
            ]
        }),
    )
}

// ---------------------------------------------------------------------------------------------
// A contact's page

pub struct LeaseLine {
    unit_id: Uuid,
    unit: String,
    site: String,
    period: String,
    with: String,
}

pub struct OccupancyLine {
    unit_id: Uuid,
    unit: String,
    kind: String,
    period: String,
}

pub struct PositionLine {
    id: Uuid,
    company_id: Uuid,
    company: String,
    person_id: Uuid,
    person: String,
    position: String,
    current: bool,
}

pub struct Duplicate {
    id: Uuid,
    name: String,
    reason: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "people/contact.html")]
struct ContactPage {
    shell: Shell,
    id: Uuid,
    name: String,
    is_company: bool,
    facts: Vec<(String, String)>,
    emails: Vec<String>,
    phones: Vec<String>,
    leases: Vec<LeaseLine>,
    occupancies: Vec<OccupancyLine>,
    positions: Vec<PositionLine>,
    duplicates: Vec<Duplicate>,
    merged_into: Option<Uuid>,
    /// The day their personal data was erased.
    erased_on: Option<String>,
    can_erase: bool,
    history: Vec<HistoryRow>,
    archived: bool,
    can_edit: bool,
    can_archive: bool,
    can_merge: bool,
    can_export: bool,
    can_add_officer: bool,
    residenceport: Option<ResidentAccount>,
    can_invite_resident: bool,
    flash: Option<String>,
    problem: Option<String>,
}

/// The contact's ResidencePort account, as the contact page shows it.
struct ResidentAccount {
    email: String,
    status: &'static str,
    active: bool,
    invited: Option<String>,
    last_signed_in: Option<String>,
}

fn period(starts: time::Date, ends: Option<time::Date>) -> String {
    match ends {
        Some(end) => format!("{} to {}", long_date(starts), long_date(end)),
        None => format!("from {}", long_date(starts)),
    }
}

/// GET /contacts/{id} (`contact.read`).
pub async fn show(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    let query = FormData::parse(query.unwrap_or_default().as_bytes());
    let scope = site_scope(&member);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let c = contact_for(&mut tx, &member, id).await?;
    let visible: HashSet<Uuid> = portfolio::list_sites(&mut tx, &scope, Showing::All, None, "")
        .await?
        .iter()
        .map(|s| s.id)
        .collect();
    let leases = people::contact_leases(&mut tx, id).await?;
    let mut occupancies = Vec::new();
    for o in people::occupancies(&mut tx, None, Some(id)).await? {
        if let Some(unit) = portfolio::unit(&mut tx, o.unit_id).await?
            && visible.contains(&unit.site_id)
        {
            occupancies.push(OccupancyLine {
                unit_id: unit.id,
                unit: format!(
                    "{} {} ({})",
                    unit.site_reference,
                    unit.reference,
                    unit_type_label(&unit.unit_type)
                ),
                kind: if o.kind == "occupier" {
                    "Occupier"
                } else {
                    "Tenant"
                }
                .to_owned(),
                period: period(o.starts_on, o.ends_on),
            });
        }
    }
    let positions = people::officers(&mut tx, id).await?;
    let mut duplicates = Vec::new();
    for (dup, name, reason) in people::possible_duplicates(&mut tx, id).await? {
        if people::contact(&mut tx, &scope, dup).await?.is_some() {
            duplicates.push(Duplicate {
                id: dup,
                name,
                reason,
            });
        }
    }
    let history = records::history(&mut tx, "contact", id).await?;
    let account = proplink_db::resident::account_summary(&mut tx, id).await?;
    tx.commit().await?;

    let text = |v: Option<String>| records::or_not_recorded(v);
    let mut facts = vec![(
        "Kind".to_owned(),
        if c.kind == "company" {
            "Company"
        } else {
            "Person"
        }
        .to_owned(),
    )];
    if let Some(reference) = &c.reference {
        facts.push(("Reference".to_owned(), reference.clone()));
    }
    if c.kind == "company" {
        facts.push((
            "Companies House number".to_owned(),
            text(c.company_number.clone()),
        ));
    }
    facts.extend([
        ("Roles".to_owned(), text(Some(roles_label(&c.roles)))),
        ("Address".to_owned(), text(Some(c.address().one_line()))),
        ("Country".to_owned(), c.country.clone()),
        (
            "Correspondence by".to_owned(),
            CorrespondencePreference::from_key(&c.correspondence)
                .map(|p| p.label().to_owned())
                .unwrap_or_else(|| c.correspondence.clone()),
        ),
    ]);
    if let Some(notes) = &c.notes {
        facts.push(("Notes".to_owned(), notes.clone()));
    }
    let writable = !member.read_only() && c.merged_into_id.is_none() && c.erased_at.is_none();
    let archived = c.archived_at.is_some();
    Ok(ContactPage {
        shell: Shell::new(&member, "/contacts").with_flash(done_flash(&query, "Contact")),
        id,
        name: c.display_name.clone(),
        is_company: c.kind == "company",
        facts,
        emails: c.emails.clone(),
        phones: c.phones.clone(),
        leases: leases
            .iter()
            .filter(|l| visible.contains(&l.site_id))
            .map(|l| LeaseLine {
                unit_id: l.unit_id,
                unit: format!("{} {}", l.unit_reference, l.unit_name),
                site: l.site_reference.clone(),
                period: period(l.starts_on, l.ends_on),
                with: l
                    .holder_ids
                    .iter()
                    .zip(&l.holder_names)
                    .filter(|(h, _)| **h != id)
                    .map(|(_, n)| n.clone())
                    .collect::<Vec<_>>()
                    .join(" & "),
            })
            .collect(),
        occupancies,
        positions: positions
            .into_iter()
            .map(|o| PositionLine {
                id: o.id,
                company_id: o.company_id,
                company: o.company_name,
                person_id: o.person_id,
                person: o.person_name,
                position: o.position,
                current: o.resigned_on.is_none(),
            })
            .collect(),
        duplicates,
        merged_into: c.merged_into_id,
        history,
        archived,
        can_edit: writable && member.can("contact.update"),
        can_archive: writable && member.can("contact.archive"),
        can_merge: writable && !archived && member.can("contact.merge"),
        can_export: member.can("contact.export"),
        can_add_officer: writable && c.kind == "company" && member.can("contact.update"),
        can_erase: writable && member.can("contact.erase"),
        residenceport: account.map(|a| ResidentAccount {
            email: a.email,
            status: if a.status == "active" {
                "active"
            } else {
                "turned off"
            },
            active: a.status == "active",
            invited: a.invited_at.map(|t| {
                format!(
                    "{} by {}",
                    proplink_domain::dates::uk_long_date(t),
                    a.invited_by.unwrap_or_default()
                )
            }),
            last_signed_in: a
                .last_signed_in_at
                .map(proplink_domain::dates::uk_long_date),
        }),
        can_invite_resident: writable
            && !archived
            && c.kind == "person"
            && member.can("contact.update"),
        flash: Some(query.get("flash").trim().to_owned()).filter(|s| !s.is_empty()),
        problem: Some(query.get("problem").trim().to_owned()).filter(|s| !s.is_empty()),
        erased_on: c.erased_at.map(|at| long_date(at.date())),
    }
    .into_response())
}

// ---------------------------------------------------------------------------------------------
// The form

fn contact_values(c: &Contact) -> FormData {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut values = FormData::from_pairs([
        ("kind", c.kind.clone()),
        ("reference", text(&c.reference)),
        ("title", text(&c.title)),
        ("first_name", text(&c.first_name)),
        ("last_name", text(&c.last_name)),
        ("company_name", text(&c.company_name)),
        ("company_number", text(&c.company_number)),
        ("emails", c.emails.join("\n")),
        ("phones", c.phones.join("\n")),
        ("correspondence", c.correspondence.clone()),
        ("country", c.country.clone()),
        ("notes", text(&c.notes)),
    ]);
    for role in &c.roles {
        values.push("role", role.clone());
    }
    for (k, v) in records::address_values(&ADDRESS, &c.address()) {
        values.push(k, v);
    }
    values
}

fn contact_sections(values: &FormData, errors: &FieldErrors) -> Vec<Section> {
    let f = Fields { values, errors };
    let mut address = f.address(&ADDRESS);
    address.push(
        f.text("country", "Country")
            .max(100)
            .hint("United Kingdom unless given."),
    );
    vec![
        Section::new(
            "Who",
            vec![
                f.radios(
                    "kind",
                    "This contact is",
                    records::choices(ContactKind::ALL, ContactKind::key, ContactKind::label),
                ),
                f.text("title", "Title (person)")
                    .max(20)
                    .hint("Such as Mrs or Dr."),
                f.text("first_name", "First name (person)").max(100),
                f.text("last_name", "Last name (person)").max(100),
                f.text("company_name", "Company name (company)"),
                f.text("company_number", "Companies House number (company)")
                    .max(20)
                    .hint("8 digits, or 2 letters and 6 digits."),
                f.text("reference", "Reference (optional)").max(40),
            ],
        ),
        Section::new(
            "Contact details",
            vec![
                f.area("emails", "E-mail addresses")
                    .max(2000)
                    .hint("One a line; the first is used for correspondence."),
                f.area("phones", "Phone numbers")
                    .max(1000)
                    .hint("One a line."),
                f.radios(
                    "correspondence",
                    "Send letters, demands and notices by",
                    records::choices(
                        CorrespondencePreference::ALL,
                        CorrespondencePreference::key,
                        CorrespondencePreference::label,
                    ),
                )
                .hint("Post needs an address; e-mail needs an e-mail address."),
            ],
        ),
        Section::new(
            "Roles",
            vec![f.checks(
                "role",
                "Roles",
                records::choices(ContactRole::ALL, ContactRole::key, ContactRole::label),
            )],
        ),
        Section::new("Address", address),
        Section::new("Notes", vec![f.area("notes", "Notes")]),
    ]
}

/// Each non-blank line parsed by `parse`; the first bad line is reported with its number.
fn lines<T>(raw: &str, mut parse: impl FnMut(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    let mut out = Vec::new();
    for (n, line) in raw.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        out.push(parse(line).map_err(|e| format!("Line {}: {e}", n + 1))?);
    }
    Ok(out)
}

fn parse_contact(values: &FormData) -> Result<ContactInput, FieldErrors> {
    let mut errors = FieldErrors::default();
    let kind = errors.take(
        "kind",
        ContactKind::parse(values.get("kind"))
            .map(Some)
            .map_err(|_| "Choose a person or a company.".to_owned()),
    );
    let is_company = kind == Some(ContactKind::Company);
    let text = |errors: &mut FieldErrors, name: &'static str, max: usize, what: &str| {
        errors.take(name, records::optional(values.get(name), max, what))
    };
    let title = text(&mut errors, "title", 20, "The title");
    let first_name = text(&mut errors, "first_name", 100, "The first name");
    let last_name = text(&mut errors, "last_name", 100, "The last name");
    let company_name = text(&mut errors, "company_name", 200, "The company name");
    let company_number = errors.take(
        "company_number",
        super::settings::company_number(values.get("company_number")),
    );
    if kind == Some(ContactKind::Person) && last_name.is_none() && errors.get("last_name").is_none()
    {
        errors.add("last_name", "Enter the person's last name.");
    }
    if is_company && company_name.is_none() && errors.get("company_name").is_none() {
        errors.add("company_name", "Enter the company's name.");
    }
    let mut seen = HashSet::new();
    let emails: Vec<String> = errors
        .take(
            "emails",
            lines(values.get("emails"), |l| {
                EmailAddress::parse(l)
                    .map(|e| e.as_str().to_owned())
                    .map_err(|e| format!("{e}."))
            }),
        )
        .into_iter()
        .filter(|e| seen.insert(e.to_lowercase()))
        .collect();
    let mut seen = HashSet::new();
    let phones: Vec<String> = errors
        .take(
            "phones",
            lines(values.get("phones"), |l| {
                PhoneNumber::parse(l)
                    .map(|p| p.as_str().to_owned())
                    .map_err(|e| format!("{e}."))
            }),
        )
        .into_iter()
        .filter(|p| seen.insert(p.clone()))
        .collect();
    let mut roles = Vec::new();
    for role in values.all("role") {
        match ContactRole::from_key(role) {
            Some(r) if !roles.contains(&r.key().to_owned()) => roles.push(r.key().to_owned()),
            Some(_) => {}
            None => errors.add("role", "Choose roles from the list."),
        }
    }
    let address = records::address(values, &ADDRESS, &mut errors);
    let correspondence = match CorrespondencePreference::parse(values.get("correspondence")) {
        Ok(CorrespondencePreference::Post)
            if address.line_1.is_none() || address.postcode.is_none() =>
        {
            errors.add(
                "correspondence",
                "Post needs an address: enter at least the first line and the postcode, or choose e-mail.",
            );
            String::new()
        }
        Ok(CorrespondencePreference::Email)
            if emails.is_empty() && errors.get("emails").is_none() =>
        {
            errors.add(
                "correspondence",
                "E-mail needs an e-mail address: enter one, or choose post.",
            );
            String::new()
        }
        Ok(p) => p.key().to_owned(),
        Err(_) => {
            errors.add("correspondence", "Choose e-mail or post.");
            String::new()
        }
    };
    let input = ContactInput {
        kind: kind.map(|k| k.key().to_owned()).unwrap_or_default(),
        reference: text(&mut errors, "reference", 40, "The reference"),
        title: title.filter(|_| !is_company),
        first_name: first_name.filter(|_| !is_company),
        last_name: last_name.filter(|_| !is_company),
        company_name: company_name.filter(|_| is_company),
        company_number: company_number.filter(|_| is_company),
        address,
        country: text(&mut errors, "country", 100, "The country"),
        correspondence,
        notes: text(&mut errors, "notes", 2000, "The notes"),
        emails,
        phones,
        roles,
    };
    errors.or(input)
}

fn render_contact_form(
    state: &AppState,
    member: &Member,
    existing: Option<Uuid>,
    values: &FormData,
    errors: FieldErrors,
) -> Response {
    let (title, action, cancel) = match existing {
        Some(id) => (
            "Edit contact",
            format!("/contacts/{id}/edit"),
            format!("/contacts/{id}"),
        ),
        None => (
            "Add contact",
            "/contacts/new".to_owned(),
            "/contacts".to_owned(),
        ),
    };
    let sections = contact_sections(values, &errors);
    FormPage::new(Shell::new(member, "/contacts"), title, action, cancel)
        .address_lookup(state)
        .submit("Save contact")
        .sections(errors, sections)
        .respond()
}

/// GET /contacts/new (`contact.create`).
pub async fn new_contact(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
) -> Page {
    let values = FormData::from_pairs([("kind", "person"), ("correspondence", "email")]);
    Ok(render_contact_form(
        &state,
        &member,
        None,
        &values,
        FieldErrors::default(),
    ))
}

/// GET /contacts/{id}/edit (`contact.update`).
pub async fn edit_contact(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let c = contact_for(&mut tx, &member, id).await?;
    tx.commit().await?;
    Ok(render_contact_form(
        &state,
        &member,
        Some(id),
        &contact_values(&c),
        FieldErrors::default(),
    ))
}

/// POST /contacts/new (`contact.create`).
pub async fn create_contact(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    body: Bytes,
) -> Page {
    save_contact(&state, &member, None, FormData::parse(&body)).await
}

/// POST /contacts/{id}/edit (`contact.update`).
pub async fn update_contact(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    save_contact(
        &state,
        &member,
        Some(parse_id(&id)?),
        FormData::parse(&body),
    )
    .await
}

async fn save_contact(
    state: &AppState,
    member: &Member,
    existing: Option<Uuid>,
    values: FormData,
) -> Page {
    let mut tx = state.db().begin(&member.ctx()).await?;
    if let Some(id) = existing {
        let stored = contact_for(&mut tx, member, id).await?;
        // A merged or erased record is kept for history only.
        if stored.merged_into_id.is_some() || stored.erased_at.is_some() {
            return Err(WebError::NotFound);
        }
    }
    let input = match parse_contact(&values) {
        Ok(input) => input,
        Err(errors) => {
            drop(tx);
            return Ok(render_contact_form(
                state, member, existing, &values, errors,
            ));
        }
    };
    match people::save_contact(&mut tx, existing, &input).await {
        Ok(id) => {
            tx.commit().await?;
            let done = if existing.is_some() {
                "saved"
            } else {
                "created"
            };
            Ok(Redirect::to(&format!("/contacts/{id}?done={done}")).into_response())
        }
        Err(DbError::Duplicate { constraint }) if constraint == "contact_reference" => {
            let mut errors = FieldErrors::default();
            errors.add("reference", "Another contact already has this reference.");
            Ok(render_contact_form(
                state, member, existing, &values, errors,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// POST /contacts/{id}/archive (`contact.archive`).
pub async fn archive_contact(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    set_archived(&state, &member, &id, true).await
}

/// POST /contacts/{id}/restore (`contact.archive`: the catalogue has no contact.restore, and
/// whoever may archive a contact may undo it).
pub async fn restore_contact(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    set_archived(&state, &member, &id, false).await
}

async fn set_archived(state: &AppState, member: &Member, id: &str, archived: bool) -> Page {
    let id = parse_id(id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    contact_for(&mut tx, member, id).await?;
    portfolio::set_archived(&mut tx, Archivable::Contact, id, archived).await?;
    tx.commit().await?;
    let done = if archived { "archived" } else { "restored" };
    Ok(Redirect::to(&format!("/contacts/{id}?done={done}")).into_response())
}

// ---------------------------------------------------------------------------------------------
// Merging and subject access

fn merge_page(
    member: &Member,
    keep: &Contact,
    duplicate: &Contact,
    error: Option<String>,
) -> ConfirmPage {
    ConfirmPage {
        shell: Shell::new(member, "/contacts"),
        title: format!("Merge {} into {}", duplicate.display_name, keep.display_name),
        paragraphs: vec![
            format!(
                "{} ({}) keeps its record. The e-mails, phones, roles, leases, occupancies and positions of {} ({}) move to it.",
                keep.display_name,
                keep.primary_email().unwrap_or("no e-mail"),
                duplicate.display_name,
                duplicate.primary_email().unwrap_or("no e-mail"),
            ),
            "The duplicate is kept, marked as merged, so the history of both stays in the audit log.".to_owned(),
        ],
        error,
        allowed: true,
        action: format!("/contacts/{}/merge", keep.id),
        hidden: vec![("duplicate".to_owned(), duplicate.id.to_string())],
        submit: "Merge contacts".to_owned(),
        cancel: format!("/contacts/{}", keep.id),
    }
}

/// GET /contacts/{id}/merge?with=… (`contact.merge`): the confirmation step.
pub async fn confirm_merge(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    let query = FormData::parse(query.unwrap_or_default().as_bytes());
    let other = parse_id(query.get("with"))?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let keep = contact_for(&mut tx, &member, id).await?;
    let duplicate = contact_for(&mut tx, &member, other).await?;
    tx.commit().await?;
    Ok(merge_page(&member, &keep, &duplicate, None).into_response())
}

/// POST /contacts/{id}/merge (`contact.merge`): `duplicate` is merged into this contact.
pub async fn merge(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let form = FormData::parse(&body);
    let other = parse_id(form.get("duplicate"))?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let keep = contact_for(&mut tx, &member, id).await?;
    let duplicate = contact_for(&mut tx, &member, other).await?;
    match people::merge_contacts(&mut tx, id, other).await {
        Ok(()) => {
            tx.commit().await?;
            Ok(Redirect::to(&format!("/contacts/{id}?done=merged")).into_response())
        }
        Err(MergeError::Db(e)) => Err(e.into()),
        Err(refused) => {
            drop(tx);
            let page = merge_page(&member, &keep, &duplicate, Some(refused.to_string()));
            Ok((StatusCode::CONFLICT, page).into_response())
        }
    }
}

/// GET /contacts/{id}/personal-data.zip (`contact.export`): everything held about the contact
/// (UK GDPR Art. 15), as a ZIP of a README, one JSON document and a CSV per part (see
/// `subject_access`). The export itself is recorded in the audit chain.
pub async fn personal_data(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let contact = contact_for(&mut tx, &member, id).await?;
    let document = people::subject_access(&mut tx, id).await?;
    let detail = format!("contact {id}");
    proplink_db::access::record_auth_event(
        &mut tx,
        &proplink_db::access::AuthEvent {
            user_id: Some(member.user_id),
            email: &member.email,
            kind: "personal_data_exported",
            detail: Some(&detail),
            ip: None,
            user_agent: None,
        },
    )
    .await?;
    tx.commit().await?;
    let now = OffsetDateTime::now_utc();
    let body = subject_access::zip_file(
        &document,
        &subject_access::Cover {
            organisation: &member.org.name,
            contact: &contact.display_name,
            produced_by: &member.name,
            produced_on: long_date(uk_time(now).date()),
            now: uk_time(now),
        },
    )
    .map_err(|e| WebError::Internal(format!("writing the subject-access file: {e}")))?;
    let slug: String = contact
        .display_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"personal-data-{slug}-{}.zip\"",
                    iso_date(uk_time(now).date())
                ),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------------
// Officers of a company (RMC or RTM directors)

const POSITIONS: [(&str, &str); 3] = [
    ("director", "Director"),
    ("secretary", "Secretary"),
    ("other", "Other officer"),
];

fn render_officer_form(
    member: &Member,
    company: &Contact,
    values: &FormData,
    errors: FieldErrors,
    persons: &[(Uuid, String)],
) -> Response {
    let f = Fields {
        values,
        errors: &errors,
    };
    let sections = vec![Section::new(
        "Officer",
        vec![
            f.select(
                "person",
                "Person",
                records::with_none(
                    "Choose a person",
                    persons
                        .iter()
                        .map(|(id, name)| (id.to_string(), name.clone()))
                        .collect(),
                ),
            )
            .searchable("/contacts/choices?kind=person")
            .hint("Add a new person under People → Contacts first."),
            f.select(
                "position",
                "Position",
                POSITIONS
                    .iter()
                    .map(|(k, l)| ((*k).to_owned(), (*l).to_owned()))
                    .collect(),
            ),
            f.text("appointed_on", "Appointed on (optional)")
                .max(10)
                .hint("dd/mm/yyyy."),
        ],
    )];
    FormPage::new(
        Shell::new(member, "/contacts"),
        format!("Add an officer of {}", company.display_name),
        format!("/contacts/{}/officers/new", company.id),
        format!("/contacts/{}", company.id),
    )
    .submit("Save officer")
    .sections(errors, sections)
    .respond()
}

/// The company contact, refusing a person (only companies have officers).
async fn company_for(tx: &mut TenantTx, member: &Member, id: Uuid) -> Result<Contact, WebError> {
    let company = contact_for(tx, member, id).await?;
    if company.kind != "company" || company.merged_into_id.is_some() {
        return Err(WebError::NotFound);
    }
    Ok(company)
}

/// GET /contacts/{id}/officers/new (`contact.update`).
pub async fn new_officer(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let company = company_for(&mut tx, &member, id).await?;
    let persons = contact_choices(&mut tx, &member, None, Some("person")).await?;
    tx.commit().await?;
    let values = FormData::from_pairs([("position", "director")]);
    Ok(render_officer_form(
        &member,
        &company,
        &values,
        FieldErrors::default(),
        &persons,
    ))
}

/// POST /contacts/{id}/officers/new (`contact.update`).
pub async fn create_officer(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let values = FormData::parse(&body);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let company = company_for(&mut tx, &member, id).await?;
    let mut persons = contact_choices(&mut tx, &member, None, Some("person")).await?;
    add_chosen_contacts(
        &mut tx,
        &member,
        &values,
        &["person"],
        Some("person"),
        &mut persons,
    )
    .await?;
    let allowed: Vec<Uuid> = persons.iter().map(|(id, _)| *id).collect();
    let mut errors = FieldErrors::default();
    let person = errors.take(
        "person",
        records::chosen_id(values.get("person"), &allowed, "The person"),
    );
    if person.is_none() && errors.get("person").is_none() {
        errors.add("person", "Choose the person who holds the position.");
    }
    let position = match POSITIONS.iter().find(|(k, _)| *k == values.get("position")) {
        Some((k, _)) => *k,
        None => {
            errors.add("position", "Choose a position from the list.");
            "director"
        }
    };
    let appointed_on = errors.take("appointed_on", records::uk_date(values.get("appointed_on")));
    let (Some(person), true) = (person, errors.is_empty()) else {
        return Ok(render_officer_form(
            &member, &company, &values, errors, &persons,
        ));
    };
    people::add_officer(&mut tx, id, person, position, appointed_on).await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/contacts/{id}?done=added")).into_response())
}

fn render_resign_form(
    member: &Member,
    company: &Contact,
    officer: &people::Officer,
    values: &FormData,
    errors: FieldErrors,
) -> Response {
    let f = Fields {
        values,
        errors: &errors,
    };
    let sections = vec![Section::new(
        "Resignation",
        vec![
            f.text("resigned_on", "Resigned on")
                .max(10)
                .hint("dd/mm/yyyy. They stay in the company's history as a former officer."),
        ],
    )];
    FormPage::new(
        Shell::new(member, "/contacts"),
        format!(
            "{} resigns as {} of {}",
            officer.person_name, officer.position, company.display_name
        ),
        format!("/contacts/{}/officers/{}/resign", company.id, officer.id),
        format!("/contacts/{}", company.id),
    )
    .submit("Save")
    .sections(errors, sections)
    .respond()
}

async fn officer_of(
    tx: &mut TenantTx,
    company: Uuid,
    officer: Uuid,
) -> Result<people::Officer, WebError> {
    people::officers(tx, company)
        .await?
        .into_iter()
        .find(|o| o.id == officer && o.company_id == company)
        .ok_or(WebError::NotFound)
}

/// GET /contacts/{id}/officers/{officer}/resign (`contact.update`).
pub async fn resign_officer_form(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path((id, officer)): Path<(String, String)>,
) -> Page {
    let (id, officer) = (parse_id(&id)?, parse_id(&officer)?);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let company = company_for(&mut tx, &member, id).await?;
    let officer = officer_of(&mut tx, id, officer).await?;
    tx.commit().await?;
    let resigned = officer
        .resigned_on
        .map(records::uk_date_text)
        .unwrap_or_default();
    let values = FormData::from_pairs([("resigned_on", resigned.as_str())]);
    Ok(render_resign_form(
        &member,
        &company,
        &officer,
        &values,
        FieldErrors::default(),
    ))
}

/// POST /contacts/{id}/officers/{officer}/resign (`contact.update`).
pub async fn resign_officer(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path((id, officer)): Path<(String, String)>,
    body: Bytes,
) -> Page {
    let (id, officer) = (parse_id(&id)?, parse_id(&officer)?);
    let values = FormData::parse(&body);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let company = company_for(&mut tx, &member, id).await?;
    let officer = officer_of(&mut tx, id, officer).await?;
    let mut errors = FieldErrors::default();
    let resigned_on = records::required_date(
        &values,
        "resigned_on",
        "the date they resigned",
        &mut errors,
    );
    let Some(resigned_on) = resigned_on else {
        return Ok(render_resign_form(
            &member, &company, &officer, &values, errors,
        ));
    };
    match people::resign_officer(&mut tx, id, officer.id, resigned_on).await? {
        Ok(()) => {
            tx.commit().await?;
            Ok(Redirect::to(&format!("/contacts/{id}?done=saved")).into_response())
        }
        Err(message) => {
            drop(tx);
            let mut errors = FieldErrors::default();
            errors.add("resigned_on", message);
            Ok(render_resign_form(
                &member, &company, &officer, &values, errors,
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Erasure (UK GDPR Art. 17)

/// What an erasure replaces, and what it keeps with the legal basis, as the confirmation says.
const ERASED: &str = "Names, title, company name and number, correspondence address, notes and reference are replaced with placeholders (\u{201c}Erased contact\u{201d}); every e-mail address and phone number is deleted; the same values are stripped from the audit trail. Contacts merged into this one are erased with it.";
const RETAINED: &str = "Past leases and occupancies, roles and positions are kept, naming the contact only by its record: the landlord must be able to show who held each unit and when (legitimate interests, and the Limitation Act 1980 periods for claims under the lease). The audit trail keeps every event with the personal data stripped (accountability, UK GDPR Art. 5(2)); PropLink can still prove it has not been tampered with. E-mails already sent stay in the outbox as records of notices served.";

fn erase_page(
    member: &Member,
    contact: &Contact,
    values: &FormData,
    errors: FieldErrors,
) -> Response {
    let f = Fields {
        values,
        errors: &errors,
    };
    let sections = vec![
        Section::new("Will be erased", Vec::new()).hint(ERASED),
        Section::new("Kept, with the legal basis", Vec::new()).hint(RETAINED),
        Section::new(
            "The request",
            vec![f.area("reason", "Reason").max(500).hint(
                "How and when the person asked (\u{201c}E-mail of 1 May 2026\u{201d}). Kept with the erasure record.",
            )],
        ),
    ];
    FormPage::new(
        Shell::new(member, "/contacts"),
        format!("Erase the personal data of {}", contact.display_name),
        format!("/contacts/{}/erase", contact.id),
        format!("/contacts/{}", contact.id),
    )
    .intro("This cannot be undone.")
    .submit("Erase personal data")
    .danger()
    .sections(errors, sections)
    .respond()
}

/// GET /contacts/{id}/erase (`contact.erase`): what will be erased and what kept, and why.
pub async fn confirm_erase(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let contact = contact_for(&mut tx, &member, id).await?;
    tx.commit().await?;
    Ok(erase_page(
        &member,
        &contact,
        &FormData::from_pairs(Vec::<(String, String)>::new()),
        FieldErrors::default(),
    ))
}

/// POST /contacts/{id}/erase (`contact.erase`): erases, or says why not and erases nothing.
pub async fn erase(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let values = FormData::parse(&body);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let contact = contact_for(&mut tx, &member, id).await?;
    match people::erase_contact(&mut tx, id, values.get("reason")).await {
        Ok(_) => {
            tx.commit().await?;
            Ok(Redirect::to(&format!("/contacts/{id}?done=erased")).into_response())
        }
        Err(EraseError::Db(e)) => Err(e.into()),
        Err(refused) => {
            drop(tx);
            let mut errors = FieldErrors::default();
            errors.add("reason", refused.to_string());
            Ok(erase_page(&member, &contact, &values, errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_needs_an_address_and_lines_are_numbered() {
        let values = FormData::from_pairs([
            ("kind", "person"),
            ("last_name", "Smith"),
            ("correspondence", "post"),
            ("emails", "jo@example.com\nnot-an-email"),
        ]);
        let errors = parse_contact(&values).unwrap_err();
        assert!(errors.get("correspondence").is_some());
        assert!(
            errors
                .get("emails")
                .unwrap_or_default()
                .starts_with("Line 2:")
        );
    }

    #[test]
    fn a_company_needs_its_name_and_keeps_no_personal_names() {
        let values = FormData::from_pairs([
            ("kind", "company"),
            ("company_name", "Goldcrest RMC Ltd"),
            ("first_name", "Stray"),
            ("correspondence", "email"),
            ("emails", "rmc@example.com"),
        ]);
        let input = parse_contact(&values).unwrap();
        assert_eq!(input.company_name.as_deref(), Some("Goldcrest RMC Ltd"));
        assert_eq!(input.first_name, None);
    }
}
