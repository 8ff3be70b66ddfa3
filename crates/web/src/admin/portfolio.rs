//! Portfolio → Estates and Sites (docs-spec §2.3): lists with filters and CSV export, the
//! record pages with their buildings, spaces, units, landlord and management company, the
//! create and edit forms, archive, restore and (sites only) force delete.
//!
//! Buildings and spaces are in [`super::buildings`], units in [`super::units`]. Forms are
//! parsed with the domain's types in Rust first; a refused form comes back at 422 with what
//! was typed and a message beside each field, and nothing is written.

use super::form::{FieldErrors, FormData};
use super::records::{
    self, ADDRESS, AddressNames, ConfirmPage, Fields, FormPage, HistoryRow, Opt, Section, check,
    may, parse_id, site_scope,
};
use super::{Member, Shell};
use crate::error::WebError;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use proplink_db::people::{self, ContactQuery};
use proplink_db::portfolio::{
    self, Archivable, DeleteError, Estate, EstateInput, Landlord, Showing, Site, SiteInput,
    UnitQuery,
};
use proplink_db::{DbError, TenantTx};
use proplink_domain::portfolio::ManagementCompanyKind;
use proplink_domain::uk::Postcode;
use proplink_integrations::geo::{AddressSuggestion, Coordinates, GeoError, MapSize};
use uuid::Uuid;

type Page = Result<Response, WebError>;

/// A site's modules: (key, label).
pub(super) const SITE_MODULES: [(&str, &str); 4] = [
    ("bm", "Block management"),
    ("fm", "Facilities management"),
    ("lt", "Lettings"),
    ("hrb", "Building safety (HRB)"),
];

fn module_label(key: &str) -> &str {
    SITE_MODULES
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(key, |(_, label)| label)
}

/// The message for `?done=…` after an action on a record called `noun`.
pub(super) fn done_flash(query: &FormData, noun: &str) -> Option<String> {
    let message = match query.get("done") {
        "created" => format!("{noun} created."),
        "saved" => format!("{noun} saved."),
        "archived" => format!("{noun} archived: it is hidden from lists until it is restored."),
        "restored" => format!("{noun} restored."),
        "added" => "Added.".to_owned(),
        "archived_space" => "Space archived.".to_owned(),
        "restored_space" => "Space restored.".to_owned(),
        "merged" => "Contacts merged: the duplicate's details, leases and positions are now on this contact.".to_owned(),
        "erased" => "Personal data erased: the contact's details are replaced with placeholders and stripped from the audit trail.".to_owned(),
        _ => return None,
    };
    let geo = match query.get("geo") {
        "" => return Some(message),
        "quota" => "the maps provider's usage limit has been reached",
        "unavailable" => "the maps provider is not answering just now",
        "unauthorised" => "the maps provider did not accept PropLink's key",
        "not_found" => "the maps provider could not find the address",
        "outside" => "the position found is outside the United Kingdom",
        _ => "the maps provider could not be asked",
    };
    Some(format!(
        "{message} It could not be placed on the map ({geo}); saving the address again later will try again."
    ))
}

fn is_duplicate(e: &DbError, constraint: &str) -> bool {
    matches!(e, DbError::Duplicate { constraint: c } if c == constraint)
}

// ---------------------------------------------------------------------------------------------
// Estates

/// Whether the member's scope reaches this estate (all sites, the estate itself, or one of its
/// sites).
async fn visible_estate(tx: &mut TenantTx, member: &Member, id: Uuid) -> Result<Estate, WebError> {
    let listed = portfolio::list_estates(tx, &site_scope(member), Showing::All).await?;
    listed
        .into_iter()
        .find(|e| e.id == id)
        .ok_or(WebError::NotFound)
}

pub struct EstateRow {
    id: Uuid,
    reference: String,
    name: String,
    address: String,
    freeholder: String,
    sites: i64,
    units: i64,
    archived: bool,
}

impl EstateRow {
    fn new(e: &Estate) -> Self {
        Self {
            id: e.id,
            reference: e.reference.clone(),
            name: e.name.clone(),
            address: e.address().one_line(),
            freeholder: e.freeholder_name.clone().unwrap_or_default(),
            sites: e.site_count,
            units: e.unit_count,
            archived: e.archived_at.is_some(),
        }
    }

    fn csv(&self) -> Vec<String> {
        vec![
            self.reference.clone(),
            self.name.clone(),
            self.address.clone(),
            self.freeholder.clone(),
            self.sites.to_string(),
            self.units.to_string(),
            yes_no(self.archived),
        ]
    }
}

fn yes_no(b: bool) -> String {
    if b { "Yes" } else { "No" }.to_owned()
}

fn showing_options(showing: Showing) -> Vec<Opt> {
    [
        ("live", "Live"),
        ("archived", "Archived"),
        ("all", "Live and archived"),
    ]
    .into_iter()
    .map(|(v, l)| Opt::new(v, l, showing.key()))
    .collect()
}

#[derive(Template, WebTemplate)]
#[template(path = "portfolio/estates.html")]
struct EstatesPage {
    shell: Shell,
    rows: Vec<EstateRow>,
    showing: Vec<Opt>,
    can_create: bool,
    export_href: Option<String>,
}

/// GET /estates (`estate.read`).
pub async fn estates(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(query): RawQuery,
) -> Page {
    let query = FormData::parse(query.unwrap_or_default().as_bytes());
    let showing = Showing::parse(query.get("showing"));
    let mut tx = state.db().begin(&member.ctx()).await?;
    let estates = portfolio::list_estates(&mut tx, &site_scope(&member), showing).await?;
    tx.commit().await?;
    let filters = [("showing", showing.key().to_owned())];
    Ok(EstatesPage {
        shell: Shell::new(&member, "/estates"),
        rows: estates.iter().map(EstateRow::new).collect(),
        showing: showing_options(showing),
        can_create: member.can("estate.create") && !member.read_only(),
        export_href: member
            .can("data_import.export")
            .then(|| format!("/estates/export.csv{}", records::query_string(&filters))),
    }
    .into_response())
}

/// GET /estates/export.csv (`data_import.export`).
pub async fn export_estates(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(query): RawQuery,
) -> Page {
    let query = FormData::parse(query.unwrap_or_default().as_bytes());
    let showing = Showing::parse(query.get("showing"));
    let mut tx = state.db().begin(&member.ctx()).await?;
    let estates = portfolio::list_estates(&mut tx, &site_scope(&member), showing).await?;
    tx.commit().await?;
    records::csv_download(
        "estates",
        &member.org.slug,
        state.now(),
        &[
            "Reference",
            "Name",
            "Address",
            "Freeholder",
            "Live sites",
            "Live units",
            "Archived",
        ],
        estates.iter().map(|e| EstateRow::new(e).csv()),
    )
}

#[derive(Template, WebTemplate)]
#[template(path = "portfolio/estate.html")]
struct EstatePage {
    shell: Shell,
    estate: EstateRow,
    sites: Vec<SiteRow>,
    history: Vec<HistoryRow>,
    can_edit: bool,
    can_archive: bool,
    can_restore: bool,
}

/// GET /estates/{id} (`estate.read`).
pub async fn estate(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    let query = FormData::parse(query.unwrap_or_default().as_bytes());
    let mut tx = state.db().begin(&member.ctx()).await?;
    let estate = visible_estate(&mut tx, &member, id).await?;
    let sites =
        portfolio::list_sites(&mut tx, &site_scope(&member), Showing::Live, Some(id), "").await?;
    let history = records::history(&mut tx, "estate", id).await?;
    tx.commit().await?;
    let writable = !member.read_only();
    let archived = estate.archived_at.is_some();
    Ok(EstatePage {
        shell: Shell::new(&member, "/estates").with_flash(done_flash(&query, "Estate")),
        estate: EstateRow::new(&estate),
        sites: sites.iter().map(SiteRow::new).collect(),
        history,
        can_edit: writable && member.can("estate.update"),
        can_archive: writable && !archived && member.can("estate.archive"),
        can_restore: writable && archived && member.can("estate.restore"),
    }
    .into_response())
}

fn estate_values(e: &Estate) -> FormData {
    let mut values = FormData::from_pairs([
        ("reference", e.reference.clone()),
        ("name", e.name.clone()),
        (
            "freeholder",
            e.freeholder_id.map(|f| f.to_string()).unwrap_or_default(),
        ),
    ]);
    for (k, v) in records::address_values(&ADDRESS, &e.address()) {
        values.push(k, v);
    }
    values
}

/// Contacts the member may pick (with `role`, of `kind` when given): (id, name), the first 500
/// in name order.
pub(super) async fn contact_choices(
    tx: &mut TenantTx,
    member: &Member,
    role: Option<&str>,
    kind: Option<&str>,
) -> Result<Vec<(Uuid, String)>, WebError> {
    let page = people::list_contacts(
        tx,
        &site_scope(member),
        &ContactQuery {
            role: role.map(str::to_owned),
            per_page: 500,
            page: 1,
            ..ContactQuery::default()
        },
    )
    .await?;
    Ok(page
        .rows
        .into_iter()
        .filter(|c| kind.is_none_or(|k| c.kind == k))
        .map(|c| (c.id, c.display_name))
        .collect())
}

/// Adds to `choices` the contacts chosen in `fields` that the first 500 did not include (picked
/// through the search box beside the list), when the member may see them and they are live,
/// not merged and (when `kind` is given) of that kind. Anything else stays out, so the form's
/// own check refuses it as not one of the contacts offered.
pub(super) async fn add_chosen_contacts(
    tx: &mut TenantTx,
    member: &Member,
    values: &FormData,
    fields: &[&str],
    kind: Option<&str>,
    choices: &mut Vec<(Uuid, String)>,
) -> Result<(), WebError> {
    for field in fields {
        let Ok(id) = values.get(field).parse::<Uuid>() else {
            continue;
        };
        if choices.iter().any(|(c, _)| *c == id) {
            continue;
        }
        if let Some(c) = people::contact(tx, &site_scope(member), id).await?
            && c.merged_into_id.is_none()
            && c.archived_at.is_none()
            && kind.is_none_or(|k| c.kind == k)
        {
            choices.push((c.id, c.display_name));
        }
    }
    Ok(())
}

/// What `/contacts/choices` answers: up to 20 contacts matching what was typed.
#[derive(serde::Serialize)]
struct ContactChoice {
    value: Uuid,
    label: String,
}

/// `GET /contacts/choices?q=…[&kind=person]` (`contact.read`): the contact pickers' search, for
/// organisations with more contacts than a list can show. Live contacts in the member's scope,
/// by name, e-mail or reference, each labelled with their first e-mail to tell namesakes apart.
pub async fn contact_search(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(query): RawQuery,
) -> Page {
    let query = FormData::parse(query.unwrap_or_default().as_bytes());
    let typed = query.get("q").trim();
    let kind = query.get("kind");
    let mut found = Vec::new();
    if typed.chars().count() >= 2 {
        let mut tx = state.db().begin(&member.ctx()).await?;
        let page = people::list_contacts(
            &mut tx,
            &site_scope(&member),
            &ContactQuery {
                q: typed.chars().take(100).collect(),
                per_page: 20,
                page: 1,
                ..ContactQuery::default()
            },
        )
        .await?;
        tx.commit().await?;
        found = page
            .rows
            .into_iter()
            .filter(|c| kind.is_empty() || c.kind == kind)
            .map(|c| ContactChoice {
                value: c.id,
                label: match c.primary_email() {
                    Some(email) => format!("{} ({email})", c.display_name),
                    None => c.display_name.clone(),
                },
            })
            .collect();
    }
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({ "choices": found })),
    )
        .into_response())
}

fn id_choices(items: &[(Uuid, String)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(id, name)| (id.to_string(), name.clone()))
        .collect()
}

fn estate_sections(
    values: &FormData,
    errors: &FieldErrors,
    freeholders: &[(Uuid, String)],
) -> Vec<Section> {
    let f = Fields { values, errors };
    vec![
        Section::new(
            "Estate",
            vec![
                f.text("reference", "Reference")
                    .max(20)
                    .hint("Letters, digits and hyphens, up to 20 characters, such as EST-001."),
                f.text("name", "Name"),
                f.select(
                    "freeholder",
                    "Freeholder",
                    records::with_none("None recorded", id_choices(freeholders)),
                )
                .hint("Contacts with the Freeholder role. The estate's freeholder applies to all its sites."),
            ],
        ),
        Section::new("Address", f.address(&ADDRESS)),
    ]
}

fn parse_estate(
    values: &FormData,
    freeholders: &[(Uuid, String)],
) -> Result<EstateInput, FieldErrors> {
    let mut errors = FieldErrors::default();
    let allowed: Vec<Uuid> = freeholders.iter().map(|(id, _)| *id).collect();
    let input = EstateInput {
        reference: errors.take(
            "reference",
            records::reference(values.get("reference"), 20, "-", "The estate reference"),
        ),
        name: errors.take(
            "name",
            records::required(values.get("name"), 200, "The name"),
        ),
        address: records::address(values, &ADDRESS, &mut errors),
        freeholder_id: errors.take(
            "freeholder",
            records::chosen_id(values.get("freeholder"), &allowed, "The freeholder"),
        ),
    };
    errors.or(input)
}

async fn estate_form(
    state: &AppState,
    member: &Member,
    existing: Option<Uuid>,
    values: Option<FormData>,
) -> Page {
    let mut tx = state.db().begin(&member.ctx()).await?;
    let freeholders = contact_choices(&mut tx, member, Some("freeholder"), None).await?;
    let stored = match existing {
        Some(id) => Some(visible_estate(&mut tx, member, id).await?),
        None => None,
    };
    tx.commit().await?;
    let submitted = values.is_some();
    let values = values
        .or_else(|| stored.as_ref().map(estate_values))
        .unwrap_or_else(|| FormData::from_pairs(Vec::<(String, String)>::new()));
    let errors = if submitted {
        parse_estate(&values, &freeholders)
            .err()
            .unwrap_or_default()
    } else {
        FieldErrors::default()
    };
    Ok(render_estate_form(
        state,
        member,
        existing,
        &values,
        errors,
        &freeholders,
    ))
}

fn render_estate_form(
    state: &AppState,
    member: &Member,
    existing: Option<Uuid>,
    values: &FormData,
    errors: FieldErrors,
    freeholders: &[(Uuid, String)],
) -> Response {
    let (title, action, cancel) = match existing {
        Some(id) => (
            "Edit estate",
            format!("/estates/{id}/edit"),
            format!("/estates/{id}"),
        ),
        None => (
            "Create estate",
            "/estates/new".to_owned(),
            "/estates".to_owned(),
        ),
    };
    let sections = estate_sections(values, &errors, freeholders);
    FormPage::new(Shell::new(member, "/estates"), title, action, cancel)
        .address_lookup(state)
        .intro("An estate groups sites that share a freeholder, a management contract or a development.")
        .submit("Save estate")
        .sections(errors, sections)
        .respond()
}

/// GET /estates/new (`estate.create`).
pub async fn new_estate(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
) -> Page {
    estate_form(&state, &member, None, None).await
}

/// GET /estates/{id}/edit (`estate.update`).
pub async fn edit_estate(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    estate_form(&state, &member, Some(parse_id(&id)?), None).await
}

/// POST /estates/new (`estate.create`).
pub async fn create_estate(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    body: Bytes,
) -> Page {
    save_estate(&state, &member, None, FormData::parse(&body)).await
}

/// POST /estates/{id}/edit (`estate.update`).
pub async fn update_estate(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    save_estate(
        &state,
        &member,
        Some(parse_id(&id)?),
        FormData::parse(&body),
    )
    .await
}

async fn save_estate(
    state: &AppState,
    member: &Member,
    existing: Option<Uuid>,
    values: FormData,
) -> Page {
    let mut tx = state.db().begin(&member.ctx()).await?;
    if let Some(id) = existing {
        visible_estate(&mut tx, member, id).await?;
    }
    let freeholders = contact_choices(&mut tx, member, Some("freeholder"), None).await?;
    let input = match parse_estate(&values, &freeholders) {
        Ok(input) => input,
        Err(errors) => {
            return Ok(render_estate_form(
                state,
                member,
                existing,
                &values,
                errors,
                &freeholders,
            ));
        }
    };
    match portfolio::save_estate(&mut tx, existing, &input).await {
        Ok(id) => {
            tx.commit().await?;
            let done = if existing.is_some() {
                "saved"
            } else {
                "created"
            };
            Ok(Redirect::to(&format!("/estates/{id}?done={done}")).into_response())
        }
        Err(e) if is_duplicate(&e, "estate_reference") => {
            let mut errors = FieldErrors::default();
            errors.add(
                "reference",
                format!(
                    "Another estate already has the reference {}.",
                    input.reference
                ),
            );
            Ok(render_estate_form(
                state,
                member,
                existing,
                &values,
                errors,
                &freeholders,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// POST /estates/{id}/archive (`estate.archive`).
pub async fn archive_estate(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    set_estate_archived(&state, &member, &id, true).await
}

/// POST /estates/{id}/restore (`estate.restore`).
pub async fn restore_estate(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    set_estate_archived(&state, &member, &id, false).await
}

async fn set_estate_archived(state: &AppState, member: &Member, id: &str, archived: bool) -> Page {
    let id = parse_id(id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    visible_estate(&mut tx, member, id).await?;
    portfolio::set_archived(&mut tx, Archivable::Estate, id, archived).await?;
    tx.commit().await?;
    let done = if archived { "archived" } else { "restored" };
    Ok(Redirect::to(&format!("/estates/{id}?done={done}")).into_response())
}

// ---------------------------------------------------------------------------------------------
// Sites

pub struct SiteRow {
    id: Uuid,
    reference: String,
    name: String,
    estate: String,
    address: String,
    buildings: i64,
    units: i64,
    hrb: i64,
    archived: bool,
}

impl SiteRow {
    fn new(s: &Site) -> Self {
        Self {
            id: s.id,
            reference: s.reference.clone(),
            name: s.name.clone(),
            estate: s.estate_name.clone().unwrap_or_default(),
            address: s.address().one_line(),
            buildings: s.building_count,
            units: s.unit_count,
            hrb: s.hrb_count,
            archived: s.archived_at.is_some(),
        }
    }
}

fn site_csv(s: &Site) -> Vec<String> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let a = s.address();
    vec![
        s.reference.clone(),
        s.name.clone(),
        text(&s.estate_name),
        text(&a.line_1),
        text(&a.line_2),
        text(&a.city),
        text(&a.postcode),
        s.modules
            .iter()
            .map(|m| module_label(m))
            .collect::<Vec<_>>()
            .join(", "),
        text(&s.landlord_name),
        s.landlord_address().one_line(),
        text(&s.management_company_name),
        s.management_company_kind
            .as_deref()
            .and_then(ManagementCompanyKind::from_key)
            .map(|k| k.label().to_owned())
            .unwrap_or_default(),
        s.building_count.to_string(),
        s.unit_count.to_string(),
        s.hrb_count.to_string(),
        yes_no(s.archived_at.is_some()),
    ]
}

const SITE_CSV_HEADER: [&str; 16] = [
    "Reference",
    "Name",
    "Estate",
    "Address line 1",
    "Address line 2",
    "Town or city",
    "Postcode",
    "Modules",
    "Landlord",
    "Landlord address",
    "Management company",
    "Management company kind",
    "Buildings",
    "Units",
    "Higher-risk buildings",
    "Archived",
];

/// The sites list's filters as asked.
struct SiteFilter {
    showing: Showing,
    estate: Option<Uuid>,
    q: String,
}

impl SiteFilter {
    fn from_query(query: &FormData) -> Self {
        Self {
            showing: Showing::parse(query.get("showing")),
            estate: records::filter_id(query.get("estate")),
            q: query.get("q").trim().to_owned(),
        }
    }

    fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("q", self.q.clone()),
            (
                "estate",
                self.estate.map(|e| e.to_string()).unwrap_or_default(),
            ),
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

    async fn fetch(&self, tx: &mut TenantTx, member: &Member) -> Result<Vec<Site>, WebError> {
        Ok(
            portfolio::list_sites(tx, &site_scope(member), self.showing, self.estate, &self.q)
                .await?,
        )
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "portfolio/sites.html")]
struct SitesPage {
    shell: Shell,
    rows: Vec<SiteRow>,
    q: String,
    estates: Vec<Opt>,
    showing: Vec<Opt>,
    can_create: bool,
    export_href: Option<String>,
}

/// GET /sites (`site.read`).
pub async fn sites(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(query): RawQuery,
) -> Page {
    let query = FormData::parse(query.unwrap_or_default().as_bytes());
    let filter = SiteFilter::from_query(&query);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let sites = filter.fetch(&mut tx, &member).await?;
    let estates = portfolio::list_estates(&mut tx, &site_scope(&member), Showing::Live).await?;
    tx.commit().await?;
    let chosen = filter.estate.map(|e| e.to_string()).unwrap_or_default();
    let mut estate_opts = vec![Opt::new("", "Any estate", &chosen)];
    estate_opts.extend(estates.iter().map(|e| {
        Opt::new(
            e.id.to_string(),
            format!("{} ({})", e.name, e.reference),
            &chosen,
        )
    }));
    Ok(SitesPage {
        shell: Shell::new(&member, "/sites").with_flash(
            (query.get("done") == "deleted").then(|| "The site was deleted for good.".to_owned()),
        ),
        rows: sites.iter().map(SiteRow::new).collect(),
        q: filter.q.clone(),
        estates: estate_opts,
        showing: showing_options(filter.showing),
        can_create: member.can("site.create") && !member.read_only(),
        export_href: member.can("data_import.export").then(|| {
            format!(
                "/sites/export.csv{}",
                records::query_string(&filter.pairs())
            )
        }),
    }
    .into_response())
}

/// GET /sites/export.csv (`data_import.export`): the rows the list shows with these filters.
pub async fn export_sites(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(query): RawQuery,
) -> Page {
    let query = FormData::parse(query.unwrap_or_default().as_bytes());
    let filter = SiteFilter::from_query(&query);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let sites = filter.fetch(&mut tx, &member).await?;
    tx.commit().await?;
    records::csv_download(
        "sites",
        &member.org.slug,
        state.now(),
        &SITE_CSV_HEADER,
        sites.iter().map(site_csv),
    )
}

/// The site, if the member may do `key` to it (404 outside their scope).
pub(super) async fn site_for(
    tx: &mut TenantTx,
    member: &Member,
    id: Uuid,
    key: &str,
) -> Result<Site, WebError> {
    let site = portfolio::site(tx, id).await?.ok_or(WebError::NotFound)?;
    check(member, key, site.placement())?;
    Ok(site)
}

pub struct BuildingRow {
    id: Uuid,
    reference: String,
    name: String,
    height: String,
    storeys: String,
    units: i64,
    is_hrb: bool,
}

pub struct SpaceRow {
    id: Uuid,
    name: String,
    kind: String,
    place: String,
}

impl SpaceRow {
    fn new(s: &portfolio::Space) -> Self {
        Self {
            id: s.id,
            name: s.name.clone(),
            kind: proplink_domain::portfolio::SpaceKind::from_key(&s.kind)
                .map(|k| k.label().to_owned())
                .unwrap_or_else(|| s.kind.clone()),
            place: [s.building_name.clone(), s.floor_name.clone()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

pub struct UnitLine {
    id: Uuid,
    reference: String,
    name: String,
    kind: String,
    building: String,
    holders: String,
}

pub struct Officer {
    name: String,
    id: Uuid,
    position: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "portfolio/site.html")]
struct SitePage {
    shell: Shell,
    site: SiteRow,
    modules: String,
    map_href: Option<String>,
    landlord_name: Option<String>,
    landlord_address: String,
    landlord_warning: Option<String>,
    company: Option<(Uuid, String, String)>,
    officers: Vec<Officer>,
    notes: String,
    buildings: Vec<BuildingRow>,
    spaces: Vec<SpaceRow>,
    archived_spaces: Vec<SpaceRow>,
    units: Vec<UnitLine>,
    more_units: i64,
    history: Vec<HistoryRow>,
    can_edit: bool,
    can_archive: bool,
    can_restore: bool,
    can_delete: bool,
    can_add_building: bool,
    can_add_unit: bool,
    archived_space: bool,
    restore_space: bool,
    can_money: bool,
}

/// What is wrong with the landlord on record for demands (LTA 1987 ss.47–48), if anything.
fn landlord_warning(site: &Site) -> Option<String> {
    let Some(_) = site
        .landlord_name
        .as_deref()
        .filter(|n| !n.trim().is_empty())
    else {
        return Some("No landlord is recorded. Demands must give the landlord's name and an address in England or Wales (Landlord and Tenant Act 1987, ss.47–48); add them before demands are issued.".to_owned());
    };
    match site.landlord_postcode.as_deref().map(Postcode::parse) {
        Some(Ok(p)) if p.in_england_or_wales() => None,
        Some(Ok(_)) => Some("The landlord's address is not in England or Wales. Section 48 needs an address in England or Wales where notices can be served, such as a solicitor's.".to_owned()),
        _ => Some("The landlord's address has no postcode. Demands need a full address in England or Wales for notices.".to_owned()),
    }
}

/// GET /sites/{id} (`site.read`).
pub async fn site(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    let query = FormData::parse(query.unwrap_or_default().as_bytes());
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = site_for(&mut tx, &member, id, "site.read").await?;
    let buildings = portfolio::buildings(&mut tx, id, Showing::Live).await?;
    let spaces = portfolio::spaces(&mut tx, id).await?;
    let archived_spaces = portfolio::archived_spaces(&mut tx, id).await?;
    let units = portfolio::list_units(
        &mut tx,
        &site_scope(&member),
        &UnitQuery {
            site: Some(id),
            page: 1,
            per_page: 100,
            ..UnitQuery::default()
        },
    )
    .await?;
    let officers = match site.management_company_id {
        Some(company) => people::officers(&mut tx, company)
            .await?
            .into_iter()
            .filter(|o| o.company_id == company && o.resigned_on.is_none())
            .map(|o| Officer {
                name: o.person_name,
                id: o.person_id,
                position: capitalised(&o.position),
            })
            .collect(),
        None => Vec::new(),
    };
    let history = records::history(&mut tx, "site", id).await?;
    tx.commit().await?;

    let placement = site.placement();
    let archived = site.archived_at.is_some();
    let map_href = match (&state.settings().geocoder, site.latitude, site.longitude) {
        (Some(_), Some(lat), Some(lng)) => Some(format!(
            "https://www.openstreetmap.org/?mlat={lat:.5}&mlon={lng:.5}#map=17/{lat:.5}/{lng:.5}"
        )),
        _ => None,
    };
    let company = site.management_company_id.map(|c| {
        (
            c,
            site.management_company_name.clone().unwrap_or_default(),
            site.management_company_kind
                .as_deref()
                .and_then(ManagementCompanyKind::from_key)
                .map(|k| k.label().to_owned())
                .unwrap_or_default(),
        )
    });
    let more_units = units.total - units.rows.len() as i64;
    let page = SitePage {
        shell: Shell::new(&member, "/sites").with_flash(done_flash(&query, "Site")),
        modules: site
            .modules
            .iter()
            .map(|m| module_label(m))
            .collect::<Vec<_>>()
            .join(", "),
        map_href,
        landlord_name: site.landlord_name.clone(),
        landlord_address: site.landlord_address().one_line(),
        landlord_warning: landlord_warning(&site),
        company,
        officers,
        notes: site.notes.clone().unwrap_or_default(),
        buildings: buildings
            .iter()
            .map(|b| BuildingRow {
                id: b.id,
                reference: b.reference.clone(),
                name: b.name.clone(),
                height: b.height_label().unwrap_or_default(),
                storeys: b.storeys.map(|s| s.to_string()).unwrap_or_default(),
                units: b.unit_count,
                is_hrb: b.is_hrb,
            })
            .collect(),
        spaces: spaces.iter().map(SpaceRow::new).collect(),
        archived_spaces: archived_spaces.iter().map(SpaceRow::new).collect(),
        units: units
            .rows
            .iter()
            .map(|u| UnitLine {
                id: u.id,
                reference: u.reference.clone(),
                name: u.name.clone(),
                kind: unit_type_label(&u.unit_type),
                building: u.building_name.clone().unwrap_or_default(),
                holders: u.holders.clone().unwrap_or_default(),
            })
            .collect(),
        more_units,
        history,
        can_edit: may(&member, "site.update", placement),
        can_archive: !archived && may(&member, "site.archive", placement),
        can_restore: archived && may(&member, "site.restore", placement),
        can_delete: archived && may(&member, "site.force_delete", placement),
        can_money: records::may_read(&member, "ledger.read", placement),
        can_add_building: !archived && may(&member, "building.create", placement),
        can_add_unit: !archived && may(&member, "unit.create", placement),
        archived_space: may(&member, "building.archive", placement),
        restore_space: !archived && may(&member, "building.restore", placement),
        site: SiteRow::new(&site),
    };
    Ok(page.into_response())
}

pub(super) fn unit_type_label(key: &str) -> String {
    proplink_domain::portfolio::UnitType::from_key(key)
        .map(|t| t.label().to_owned())
        .unwrap_or_else(|| key.to_owned())
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

const LANDLORD: AddressNames = AddressNames([
    "landlord_line_1",
    "landlord_line_2",
    "landlord_city",
    "landlord_postcode",
]);

/// What the site form offers to choose from.
struct SiteChoices {
    estates: Vec<(Uuid, String)>,
    companies: Vec<(Uuid, String)>,
}

impl SiteChoices {
    async fn load(tx: &mut TenantTx, member: &Member) -> Result<Self, WebError> {
        let estates = portfolio::list_estates(tx, &site_scope(member), Showing::Live)
            .await?
            .into_iter()
            .map(|e| (e.id, format!("{} ({})", e.name, e.reference)))
            .collect();
        let companies = contact_choices(tx, member, None, Some("company")).await?;
        Ok(Self { estates, companies })
    }
}

fn site_values(s: &Site) -> FormData {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut values = FormData::from_pairs([
        ("reference", s.reference.clone()),
        ("name", s.name.clone()),
        (
            "estate",
            s.estate_id.map(|e| e.to_string()).unwrap_or_default(),
        ),
        ("landlord_name", text(&s.landlord_name)),
        (
            "management_company",
            s.management_company_id
                .map(|c| c.to_string())
                .unwrap_or_default(),
        ),
        ("management_company_kind", text(&s.management_company_kind)),
        ("notes", text(&s.notes)),
    ]);
    for (k, v) in records::address_values(&ADDRESS, &s.address())
        .into_iter()
        .chain(records::address_values(&LANDLORD, &s.landlord_address()))
    {
        values.push(k, v);
    }
    for m in &s.modules {
        values.push("module", m.clone());
    }
    values
}

fn site_sections(values: &FormData, errors: &FieldErrors, choices: &SiteChoices) -> Vec<Section> {
    let f = Fields { values, errors };
    let modules = SITE_MODULES
        .iter()
        .map(|(k, l)| ((*k).to_owned(), (*l).to_owned()))
        .collect();
    let mut landlord = vec![f.text("landlord_name", "Landlord's name")];
    landlord.extend(f.address(&LANDLORD));
    vec![
        Section::new(
            "Site",
            vec![
                f.text("reference", "Reference")
                    .max(20)
                    .hint("Letters, digits and hyphens, up to 20 characters, such as GC-001."),
                f.text("name", "Name"),
                f.select(
                    "estate",
                    "Estate",
                    records::with_none("Not in an estate", id_choices(&choices.estates)),
                ),
                f.checks("module", "Modules", modules)
                    .hint("Block management is used when none is ticked."),
            ],
        ),
        Section::new("Address", f.address(&ADDRESS))
            .hint("Changing the address places the site on the map again."),
        Section::new("Landlord", landlord).hint(
            "Demands must give the landlord's name and an address in England or Wales for notices (Landlord and Tenant Act 1987, ss.47–48).",
        ),
        Section::new(
            "Management company",
            vec![
                f.select(
                    "management_company",
                    "Company",
                    records::with_none("None", id_choices(&choices.companies)),
                )
                .hint("A company contact: the residents' management company or right to manage company."),
                f.radios(
                    "management_company_kind",
                    "Kind of company",
                    records::choices(
                        ManagementCompanyKind::ALL,
                        ManagementCompanyKind::key,
                        ManagementCompanyKind::label,
                    ),
                ),
            ],
        ),
        Section::new("Notes", vec![f.area("notes", "Notes")]),
    ]
}

fn parse_site(values: &FormData, choices: &SiteChoices) -> Result<SiteInput, FieldErrors> {
    let mut errors = FieldErrors::default();
    let estates: Vec<Uuid> = choices.estates.iter().map(|(id, _)| *id).collect();
    let companies: Vec<Uuid> = choices.companies.iter().map(|(id, _)| *id).collect();
    let mut modules = Vec::new();
    for m in values.all("module") {
        match SITE_MODULES.iter().find(|(k, _)| *k == m) {
            Some((k, _)) if !modules.iter().any(|x: &String| x == k) => {
                modules.push((*k).to_owned())
            }
            Some(_) => {}
            None => errors.add("module", "Choose modules from the list."),
        }
    }
    let input = SiteInput {
        reference: errors.take(
            "reference",
            records::reference(values.get("reference"), 20, "-", "The site reference"),
        ),
        name: errors.take(
            "name",
            records::required(values.get("name"), 200, "The name"),
        ),
        estate_id: errors.take(
            "estate",
            records::chosen_id(values.get("estate"), &estates, "The estate"),
        ),
        address: records::address(values, &ADDRESS, &mut errors),
        modules,
        landlord: parse_landlord(values, &mut errors),
        management_company: parse_company(values, &companies, &mut errors),
        notes: errors.take(
            "notes",
            records::optional(values.get("notes"), 2000, "The notes"),
        ),
    };
    errors.or(input)
}

/// The landlord, when any of its fields is filled in: a name, and an address in England or
/// Wales with at least a first line and a postcode.
fn parse_landlord(values: &FormData, errors: &mut FieldErrors) -> Option<Landlord> {
    let name = errors.take(
        "landlord_name",
        records::optional(values.get("landlord_name"), 200, "The landlord's name"),
    );
    let address = records::address(values, &LANDLORD, errors);
    let blank = address == portfolio::Address::default();
    let Some(name) = name else {
        if !blank {
            errors.add(
                "landlord_name",
                "Enter the landlord's name, or clear the landlord's address.",
            );
        }
        return None;
    };
    if address.line_1.is_none() {
        errors.add(
            "landlord_line_1",
            "Enter the first line of the landlord's address.",
        );
    }
    match address.postcode.as_deref().map(Postcode::parse) {
        None if errors.get("landlord_postcode").is_none() => errors.add(
            "landlord_postcode",
            "Enter the postcode of the landlord's address.",
        ),
        Some(Ok(p)) if !p.in_england_or_wales() => errors.add(
            "landlord_postcode",
            format!("{p} is not in England or Wales. Give an address in England or Wales where notices can be served (s.48), such as the landlord's solicitor's."),
        ),
        _ => {}
    }
    Some(Landlord { name, address })
}

fn parse_company(
    values: &FormData,
    companies: &[Uuid],
    errors: &mut FieldErrors,
) -> Option<(Uuid, String)> {
    let company = errors.take(
        "management_company",
        records::chosen_id(values.get("management_company"), companies, "The company"),
    )?;
    match ManagementCompanyKind::parse(values.get("management_company_kind")) {
        Ok(kind) => Some((company, kind.key().to_owned())),
        Err(_) => {
            errors.add(
                "management_company_kind",
                "Choose whether the company is a residents' management company or a right to manage company.",
            );
            None
        }
    }
}

fn render_site_form(
    state: &AppState,
    member: &Member,
    existing: Option<Uuid>,
    values: &FormData,
    errors: FieldErrors,
    choices: &SiteChoices,
) -> Response {
    let (title, action, cancel) = match existing {
        Some(id) => (
            "Edit site",
            format!("/sites/{id}/edit"),
            format!("/sites/{id}"),
        ),
        None => ("Create site", "/sites/new".to_owned(), "/sites".to_owned()),
    };
    let sections = site_sections(values, &errors, choices);
    FormPage::new(Shell::new(member, "/sites"), title, action, cancel)
        .address_lookup(state)
        .submit("Save site")
        .sections(errors, sections)
        .respond()
}

/// GET /sites/new (`site.create`).
pub async fn new_site(State(state): State<AppState>, Extension(member): Extension<Member>) -> Page {
    let mut tx = state.db().begin(&member.ctx()).await?;
    let choices = SiteChoices::load(&mut tx, &member).await?;
    tx.commit().await?;
    let values = FormData::from_pairs([("module", "bm")]);
    Ok(render_site_form(
        &state,
        &member,
        None,
        &values,
        FieldErrors::default(),
        &choices,
    ))
}

/// GET /sites/{id}/edit (`site.update`).
pub async fn edit_site(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = site_for(&mut tx, &member, id, "site.update").await?;
    let choices = SiteChoices::load(&mut tx, &member).await?;
    tx.commit().await?;
    Ok(render_site_form(
        &state,
        &member,
        Some(id),
        &site_values(&site),
        FieldErrors::default(),
        &choices,
    ))
}

/// POST /sites/new (`site.create`).
pub async fn create_site(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    body: Bytes,
) -> Page {
    save_site(&state, &member, None, FormData::parse(&body)).await
}

/// POST /sites/{id}/edit (`site.update`).
pub async fn update_site(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    save_site(
        &state,
        &member,
        Some(parse_id(&id)?),
        FormData::parse(&body),
    )
    .await
}

async fn save_site(
    state: &AppState,
    member: &Member,
    existing: Option<Uuid>,
    values: FormData,
) -> Page {
    let mut tx = state.db().begin(&member.ctx()).await?;
    if let Some(id) = existing {
        site_for(&mut tx, member, id, "site.update").await?;
    }
    let choices = SiteChoices::load(&mut tx, member).await?;
    let input = match parse_site(&values, &choices) {
        Ok(input) => input,
        Err(errors) => {
            return Ok(render_site_form(
                state, member, existing, &values, errors, &choices,
            ));
        }
    };
    let id = match portfolio::save_site(&mut tx, existing, &input).await {
        Ok(id) => id,
        Err(e) if is_duplicate(&e, "site_reference") => {
            let mut errors = FieldErrors::default();
            errors.add(
                "reference",
                format!(
                    "Another site already has the reference {}.",
                    input.reference
                ),
            );
            return Ok(render_site_form(
                state, member, existing, &values, errors, &choices,
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let saved = portfolio::site(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    tx.commit().await?;
    let geo = place_on_map(state, member, &saved).await;
    let done = if existing.is_some() {
        "saved"
    } else {
        "created"
    };
    let geo = geo.map(|g| format!("&geo={g}")).unwrap_or_default();
    Ok(Redirect::to(&format!("/sites/{id}?done={done}{geo}")).into_response())
}

/// Asks the geocoder where a site without a position is, after its save has committed (no
/// transaction waits on the provider). A failure never undoes the save: it becomes a notice
/// (the key returned).
async fn place_on_map(state: &AppState, member: &Member, site: &Site) -> Option<&'static str> {
    let geocoder = state.settings().geocoder.as_ref()?;
    let address = site.address();
    if site.latitude.is_some() || (address.line_1.is_none() && address.postcode.is_none()) {
        return None;
    }
    let point = match geocoder.geocode(&address.one_line()).await {
        Ok(Some(point)) => point,
        Ok(None) => return Some("not_found"),
        Err(e) => {
            tracing::warn!(error = %e, detail = e.detail().unwrap_or(""), site = %site.id, "geocoding a site failed");
            return Some(match e {
                GeoError::QuotaExceeded => "quota",
                GeoError::Unavailable(_) => "unavailable",
                GeoError::Unauthorised => "unauthorised",
                _ => "other",
            });
        }
    };
    // The database keeps positions to Great Britain and Northern Ireland's box.
    if !(49.0..=61.0).contains(&point.latitude) || !(-9.0..=3.0).contains(&point.longitude) {
        return Some("outside");
    }
    let stored = async {
        let mut tx = state.db().begin(&member.ctx()).await?;
        portfolio::set_site_position(&mut tx, site.id, point.latitude, point.longitude).await?;
        tx.commit().await
    }
    .await;
    match stored {
        Ok(()) => None,
        Err(e) => {
            tracing::warn!(error = %e, site = %site.id, "storing a site's position failed");
            Some("other")
        }
    }
}

/// POST /sites/{id}/archive (`site.archive`).
pub async fn archive_site(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    set_site_archived(&state, &member, &id, true).await
}

/// POST /sites/{id}/restore (`site.restore`).
pub async fn restore_site(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    set_site_archived(&state, &member, &id, false).await
}

async fn set_site_archived(state: &AppState, member: &Member, id: &str, archived: bool) -> Page {
    let id = parse_id(id)?;
    let key = if archived {
        "site.archive"
    } else {
        "site.restore"
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    site_for(&mut tx, member, id, key).await?;
    portfolio::set_archived(&mut tx, Archivable::Site, id, archived).await?;
    tx.commit().await?;
    let done = if archived { "archived" } else { "restored" };
    Ok(Redirect::to(&format!("/sites/{id}?done={done}")).into_response())
}

fn delete_page(member: &Member, site: &Site, error: Option<String>) -> ConfirmPage {
    let archived = site.archived_at.is_some();
    ConfirmPage {
        shell: Shell::new(member, "/sites"),
        title: format!("Delete {} for good", site.name),
        paragraphs: vec![
            format!(
                "This deletes the site {} ({}) with its {} buildings, {} units, their floors, spaces and leases. It cannot be undone.",
                site.name, site.reference, site.building_count, site.unit_count
            ),
            "The audit log keeps a copy of every record deleted.".to_owned(),
        ],
        error: error.or_else(|| {
            (!archived).then(|| {
                "Only an archived site can be deleted for good: archive it first.".to_owned()
            })
        }),
        allowed: archived,
        action: format!("/sites/{}/delete", site.id),
        hidden: vec![("confirm".to_owned(), "yes".to_owned())],
        submit: "Delete this site for good".to_owned(),
        cancel: format!("/sites/{}", site.id),
    }
}

/// GET /sites/{id}/delete (`site.force_delete`): the confirmation step.
pub async fn confirm_delete_site(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = site_for(&mut tx, &member, id, "site.force_delete").await?;
    tx.commit().await?;
    Ok(delete_page(&member, &site, None).into_response())
}

/// POST /sites/{id}/delete (`site.force_delete`).
pub async fn delete_site(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let form = FormData::parse(&body);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = site_for(&mut tx, &member, id, "site.force_delete").await?;
    if form.get("confirm") != "yes" {
        return Ok(delete_page(&member, &site, None).into_response());
    }
    match portfolio::force_delete_site(&mut tx, id).await {
        Ok(()) => {
            tx.commit().await?;
            Ok(Redirect::to("/sites?done=deleted").into_response())
        }
        Err(DeleteError::Db(e)) => Err(e.into()),
        Err(refused) => {
            drop(tx);
            let page = delete_page(&member, &site, Some(refused.to_string()));
            Ok((axum::http::StatusCode::CONFLICT, page).into_response())
        }
    }
}

/// The size of the site page's map, in CSS pixels (the image is drawn at twice this density).
const SITE_MAP_WIDTH: u16 = 640;
const SITE_MAP_HEIGHT: u16 = 320;

/// `GET /sites/{id}/map`: where the site is, drawn by the configured maps provider. The server
/// fetches it so the provider's key never reaches a browser. Nothing to draw (no geocoder, or
/// no position yet) is a 404; a provider failure is a placeholder saying why, never cached.
pub async fn site_map(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = site_for(&mut tx, &member, id, "site.read").await?;
    tx.commit().await?;
    let (Some(geocoder), Some(latitude), Some(longitude)) =
        (&state.settings().geocoder, site.latitude, site.longitude)
    else {
        return Err(WebError::NotFound);
    };
    let size = MapSize::new(SITE_MAP_WIDTH, SITE_MAP_HEIGHT).ok_or(WebError::NotFound)?;
    let at = Coordinates {
        latitude,
        longitude,
    };
    match geocoder.static_map(at, size).await {
        Ok(map) => Ok((
            [
                (header::CONTENT_TYPE, map.content_type),
                // A site seldom moves; a day's reuse spares the provider's quota.
                (header::CACHE_CONTROL, "private, max-age=86400".to_owned()),
            ],
            map.bytes,
        )
            .into_response()),
        Err(e) => Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (header::CONTENT_TYPE, "image/svg+xml".to_owned()),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
            map_placeholder(&e.to_string()),
        )
            .into_response()),
    }
}

/// A grey panel the size of the map with `message` on it, wrapped into lines.
fn map_placeholder(message: &str) -> String {
    const LINE_CHARS: usize = 64;
    let mut lines = vec!["Map unavailable.".to_owned(), String::new()];
    for word in message.split_whitespace() {
        let last = lines
            .last_mut()
            .filter(|l| l.len() + word.len() < LINE_CHARS);
        match last {
            Some(line) if !line.is_empty() => {
                line.push(' ');
                line.push_str(word);
            }
            Some(line) => line.push_str(word),
            None => lines.push(word.to_owned()),
        }
    }
    let text: String = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let escaped = line
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            format!(r#"<text x="24" y="{}">{escaped}</text>"#, 40 + 24 * i)
        })
        .collect();
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{SITE_MAP_WIDTH}" height="{SITE_MAP_HEIGHT}" viewBox="0 0 {SITE_MAP_WIDTH} {SITE_MAP_HEIGHT}"><rect width="100%" height="100%" fill="#f4f6f9"/><g font-family="sans-serif" font-size="16" fill="#4a5668">{text}</g></svg>"##
    )
}

/// The longest text the address look-up sends on.
const LOOKUP_MAX_CHARS: usize = 200;

/// What `/addresses/suggest` answers: suggestions, or a message for the person typing.
#[derive(serde::Serialize)]
struct LookupAnswer {
    suggestions: Vec<AddressSuggestion>,
    message: Option<String>,
}

/// `GET /addresses/suggest?q=…`: addresses matching what has been typed into a form's address
/// look-up, from the configured geocoder. Short input asks nothing; no geocoder, over-long
/// input or a provider failure answers a message to show instead (the fields stay usable).
pub async fn address_suggestions(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = FormData::parse(query.unwrap_or_default().as_bytes());
    let typed = query.get("q").trim();
    let answer = |status: StatusCode, suggestions, message: Option<String>| {
        (
            status,
            [(header::CACHE_CONTROL, "no-store")],
            Json(LookupAnswer {
                suggestions,
                message,
            }),
        )
            .into_response()
    };
    let Some(geocoder) = &state.settings().geocoder else {
        return answer(
            StatusCode::NOT_FOUND,
            Vec::new(),
            Some(GeoError::NotConfigured.to_string()),
        );
    };
    if typed.chars().count() > LOOKUP_MAX_CHARS {
        return answer(
            StatusCode::BAD_REQUEST,
            Vec::new(),
            Some(format!(
                "That is longer than an address ({LOOKUP_MAX_CHARS} characters at most); type the postcode or the first line."
            )),
        );
    }
    if typed.chars().count() < 3 {
        return answer(StatusCode::OK, Vec::new(), None);
    }
    match geocoder.autocomplete(typed).await {
        Ok(found) => answer(StatusCode::OK, found, None),
        // The look-up is a convenience: its failure is said in the form, not as an error page.
        Err(e) => answer(StatusCode::OK, Vec::new(), Some(e.to_string())),
    }
}
