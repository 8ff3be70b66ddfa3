//! Portfolio → Units (docs-spec §2.3): the list (site, building, type, search, sort, 50 to a
//! page) and its CSV export, a unit's page with its lease history and occupants, and the unit
//! form. Leases, ownership changes and occupancy are recorded in [`super::leases`].

use super::form::{FieldErrors, FormData};
use super::portfolio::{done_flash, site_for, unit_type_label};
use super::records::{
    self, ADDRESS, Fields, FormPage, HistoryRow, Opt, Pager, Section, check, may, parse_id,
    site_scope,
};
use super::{Member, Shell};
use crate::error::WebError;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use proplink_db::TenantTx;
use proplink_db::people;
use proplink_db::portfolio::{
    self, Archivable, Building, Showing, Site, Unit, UnitError, UnitInput, UnitQuery,
};
use proplink_domain::dates::long_date;
use proplink_domain::portfolio::{UnitType, parse_square_metres};
use proplink_domain::uk::{Uprn, format_pence};
use uuid::Uuid;

type Page = Result<Response, WebError>;

const PER_PAGE: i64 = 50;

const STATUSES: [(&str, &str); 3] = [("active", "Active"), ("vacant", "Vacant"), ("void", "Void")];

/// The unit and its site, if the member may do `key` to it.
pub(super) async fn unit_for(
    tx: &mut TenantTx,
    member: &Member,
    id: Uuid,
    key: &str,
) -> Result<Unit, WebError> {
    let unit = portfolio::unit(tx, id).await?.ok_or(WebError::NotFound)?;
    check(member, key, unit.placement())?;
    Ok(unit)
}

/// The list's filters as asked.
struct UnitFilter {
    site: Option<Uuid>,
    building: Option<Uuid>,
    unit_type: Option<UnitType>,
    q: String,
    showing: Showing,
    sort: &'static str,
    page: i64,
}

impl UnitFilter {
    fn from_query(query: &FormData) -> Self {
        Self {
            site: records::filter_id(query.get("site")),
            building: records::filter_id(query.get("building")),
            unit_type: UnitType::from_key(query.get("type")),
            q: query.get("q").trim().chars().take(100).collect(),
            showing: Showing::parse(query.get("showing")),
            sort: match query.get("sort") {
                "name" => "name",
                "type" => "type",
                _ => "",
            },
            page: records::page_number(query.get("page")),
        }
    }

    fn query(&self) -> UnitQuery {
        UnitQuery {
            site: self.site,
            building: self.building,
            unit_type: self.unit_type.map(|t| t.key().to_owned()),
            q: self.q.clone(),
            showing: self.showing,
            sort: self.sort.to_owned(),
            page: self.page,
            per_page: PER_PAGE,
        }
    }

    /// The filters (not the page) as query-string pairs.
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let id = |v: Option<Uuid>| v.map(|v| v.to_string()).unwrap_or_default();
        vec![
            ("site", id(self.site)),
            ("building", id(self.building)),
            (
                "type",
                self.unit_type
                    .map(|t| t.key().to_owned())
                    .unwrap_or_default(),
            ),
            ("q", self.q.clone()),
            (
                "showing",
                if self.showing == Showing::Live {
                    String::new()
                } else {
                    self.showing.key().to_owned()
                },
            ),
            ("sort", self.sort.to_owned()),
        ]
    }
}

pub struct UnitRow {
    id: Uuid,
    site_id: Uuid,
    site: String,
    reference: String,
    name: String,
    kind: String,
    building: String,
    holders: String,
    archived: bool,
}

impl UnitRow {
    fn new(u: &Unit) -> Self {
        Self {
            id: u.id,
            site_id: u.site_id,
            site: u.site_reference.clone(),
            reference: u.reference.clone(),
            name: u.name.clone(),
            kind: unit_type_label(&u.unit_type),
            building: u.building_name.clone().unwrap_or_default(),
            holders: u.holders.clone().unwrap_or_default(),
            archived: u.archived_at.is_some(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "portfolio/units.html")]
struct UnitsPage {
    shell: Shell,
    rows: Vec<UnitRow>,
    q: String,
    sites: Vec<Opt>,
    buildings: Vec<Opt>,
    types: Vec<Opt>,
    showing: Vec<Opt>,
    sorts: Vec<Opt>,
    pager: Pager,
    export_href: Option<String>,
}

/// GET /units (`unit.read`).
pub async fn list(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(query): RawQuery,
) -> Page {
    let query = FormData::parse(query.unwrap_or_default().as_bytes());
    let filter = UnitFilter::from_query(&query);
    let scope = site_scope(&member);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let page = portfolio::list_units(&mut tx, &scope, &filter.query()).await?;
    let sites = portfolio::list_sites(&mut tx, &scope, Showing::Live, None, "").await?;
    // Buildings are offered once a site in scope is chosen.
    let buildings = match filter.site.filter(|s| sites.iter().any(|x| x.id == *s)) {
        Some(site) => portfolio::buildings(&mut tx, site, Showing::Live).await?,
        None => Vec::new(),
    };
    tx.commit().await?;

    let chosen = |v: Option<Uuid>| v.map(|v| v.to_string()).unwrap_or_default();
    let site_chosen = chosen(filter.site);
    let building_chosen = chosen(filter.building);
    let type_chosen = filter.unit_type.map(|t| t.key()).unwrap_or_default();
    let pairs = filter.pairs();
    Ok(UnitsPage {
        shell: Shell::new(&member, "/units"),
        rows: page.rows.iter().map(UnitRow::new).collect(),
        q: filter.q.clone(),
        sites: std::iter::once(Opt::new("", "Any site", &site_chosen))
            .chain(sites.iter().map(|s| {
                Opt::new(
                    s.id.to_string(),
                    format!("{} {}", s.reference, s.name),
                    &site_chosen,
                )
            }))
            .collect(),
        buildings: std::iter::once(Opt::new("", "Any building", &building_chosen))
            .chain(
                buildings
                    .iter()
                    .map(|b| Opt::new(b.id.to_string(), b.name.clone(), &building_chosen)),
            )
            .collect(),
        types: std::iter::once(Opt::new("", "Any type", type_chosen))
            .chain(
                UnitType::ALL
                    .iter()
                    .map(|t| Opt::new(t.key(), t.label(), type_chosen)),
            )
            .collect(),
        showing: [
            ("live", "Live"),
            ("archived", "Archived"),
            ("all", "Live and archived"),
        ]
        .into_iter()
        .map(|(v, l)| Opt::new(v, l, filter.showing.key()))
        .collect(),
        sorts: [
            ("", "Site, then reference"),
            ("name", "Name"),
            ("type", "Type"),
        ]
        .into_iter()
        .map(|(v, l)| Opt::new(v, l, filter.sort))
        .collect(),
        pager: Pager::counted_up_to(
            "/units",
            &pairs,
            page.page,
            page.pages(),
            page.total,
            page.capped,
            page.rows.len() as i64 == page.per_page,
        ),
        export_href: member
            .can("data_import.export")
            .then(|| format!("/units/export.csv{}", records::query_string(&pairs))),
    }
    .into_response())
}

/// GET /units/export.csv (`data_import.export`): every unit the list's filters match.
pub async fn export(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(query): RawQuery,
) -> Page {
    let query = FormData::parse(query.unwrap_or_default().as_bytes());
    let filter = UnitFilter::from_query(&query);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let units = portfolio::export_units(&mut tx, &site_scope(&member), &filter.query()).await?;
    tx.commit().await?;
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    records::csv_download(
        "units",
        &member.org.slug,
        state.now(),
        &[
            "Site reference",
            "Site",
            "Unit reference",
            "Name",
            "Type",
            "Status",
            "Building",
            "Floor",
            "Address line 1",
            "Address line 2",
            "Town or city",
            "Postcode",
            "UPRN",
            "Area (m²)",
            "Parking spaces",
            "Leaseholders",
            "Archived",
        ],
        units.iter().map(|u| {
            vec![
                u.site_reference.clone(),
                u.site_name.clone(),
                u.reference.clone(),
                u.name.clone(),
                unit_type_label(&u.unit_type),
                u.status.clone(),
                text(&u.building_name),
                text(&u.floor_name),
                text(&u.address_line_1),
                text(&u.address_line_2),
                text(&u.city),
                text(&u.postcode),
                text(&u.uprn),
                u.area_cm2
                    .map(|a| format!("{}.{:02}", a / 100, a % 100))
                    .unwrap_or_default(),
                u.parking_spaces.map(|p| p.to_string()).unwrap_or_default(),
                text(&u.holders),
                if u.archived_at.is_some() { "Yes" } else { "No" }.to_owned(),
            ]
        }),
    )
}

pub struct LeaseRow {
    period: String,
    current: bool,
    holders: Vec<(Uuid, String)>,
    term: String,
    ground_rent: String,
    s48: String,
    notes: String,
}

pub struct OccupantRow {
    id: Uuid,
    /// No move-out date recorded yet.
    open: bool,
    contact_id: Uuid,
    name: String,
    kind: String,
    period: String,
}

fn period(starts: time::Date, ends: Option<time::Date>) -> String {
    match ends {
        Some(end) => format!("{} to {}", long_date(starts), long_date(end)),
        None => format!("From {}", long_date(starts)),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "portfolio/unit.html")]
struct UnitPage {
    shell: Shell,
    unit: UnitRow,
    facts: Vec<(String, String)>,
    leases: Vec<LeaseRow>,
    occupants: Vec<OccupantRow>,
    history: Vec<HistoryRow>,
    can_edit: bool,
    can_archive: bool,
    can_restore: bool,
    can_add_lease: bool,
    can_change_owner: bool,
    can_add_occupant: bool,
    can_money: bool,
}

/// GET /units/{id} (`unit.read`).
pub async fn show(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    let query = FormData::parse(query.unwrap_or_default().as_bytes());
    let mut tx = state.db().begin(&member.ctx()).await?;
    let unit = unit_for(&mut tx, &member, id, "unit.read").await?;
    let leases = people::unit_leases(&mut tx, id).await?;
    let occupants = people::occupancies(&mut tx, Some(id), None).await?;
    let history = records::history(&mut tx, "unit", id).await?;
    tx.commit().await?;
    let today = state.now().date();
    let placement = unit.placement();
    let archived = unit.archived_at.is_some();
    let has_open_lease = leases.iter().any(|l| l.ends_on.is_none());
    let text = |v: Option<String>| records::or_not_recorded(v);
    let facts = vec![
        (
            "Site".to_owned(),
            format!("{} {}", unit.site_reference, unit.site_name),
        ),
        ("Type".to_owned(), unit_type_label(&unit.unit_type)),
        ("Status".to_owned(), unit.status.clone()),
        ("Building".to_owned(), text(unit.building_name.clone())),
        ("Floor".to_owned(), text(unit.floor_name.clone())),
        ("Address".to_owned(), text(Some(unit.address().one_line()))),
        ("UPRN".to_owned(), text(unit.uprn.clone())),
        ("Area".to_owned(), text(unit.area_label())),
        (
            "Parking spaces".to_owned(),
            text(unit.parking_spaces.map(|p| p.to_string())),
        ),
    ];
    Ok(UnitPage {
        shell: Shell::new(&member, "/units").with_flash(done_flash(&query, "Unit")),
        facts,
        leases: leases
            .iter()
            .map(|l| LeaseRow {
                period: period(l.starts_on, l.ends_on),
                current: l.is_current(today),
                holders: l
                    .holder_ids
                    .iter()
                    .copied()
                    .zip(l.holder_names.iter().cloned())
                    .collect(),
                term: match (l.term_years, l.term_start) {
                    (Some(years), Some(start)) => {
                        format!("{years} years from {}", long_date(start))
                    }
                    (Some(years), None) => format!("{years} years"),
                    _ => String::new(),
                },
                ground_rent: l
                    .ground_rent_pence
                    .map(|p| {
                        let review = l
                            .ground_rent_review
                            .as_deref()
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default();
                        format!("{} a year{review}", format_pence(p))
                    })
                    .unwrap_or_default(),
                s48: l.s48_notice_on.map(long_date).unwrap_or_default(),
                notes: l.notes.clone().unwrap_or_default(),
            })
            .collect(),
        occupants: occupants
            .iter()
            .map(|o| OccupantRow {
                id: o.id,
                open: o.ends_on.is_none(),
                contact_id: o.contact_id,
                name: o.contact_name.clone(),
                kind: if o.kind == "occupier" {
                    "Occupier"
                } else {
                    "Tenant"
                }
                .to_owned(),
                period: period(o.starts_on, o.ends_on),
            })
            .collect(),
        history,
        can_edit: may(&member, "unit.update", placement),
        can_archive: !archived && may(&member, "unit.archive", placement),
        can_restore: archived && may(&member, "unit.restore", placement),
        can_add_lease: !archived && may(&member, "lease.create", placement),
        can_change_owner: !archived && has_open_lease && may(&member, "lease.update", placement),
        can_add_occupant: !archived && may(&member, "unit.update", placement),
        can_money: records::may_read(&member, "debtor_invoice.read", placement),
        unit: UnitRow::new(&unit),
    }
    .into_response())
}

fn unit_values(u: &Unit) -> FormData {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut values = FormData::from_pairs([
        ("reference", u.reference.clone()),
        ("name", u.name.clone()),
        ("unit_type", u.unit_type.clone()),
        ("status", u.status.clone()),
        (
            "building",
            u.building_id.map(|b| b.to_string()).unwrap_or_default(),
        ),
        ("floor", text(&u.floor_name)),
        ("uprn", text(&u.uprn)),
        (
            "area",
            u.area_cm2
                .map(|a| format!("{}.{:02}", a / 100, a % 100))
                .unwrap_or_default(),
        ),
        (
            "parking_spaces",
            u.parking_spaces.map(|p| p.to_string()).unwrap_or_default(),
        ),
    ]);
    for (k, v) in records::address_values(&ADDRESS, &u.address()) {
        values.push(k, v);
    }
    values
}

fn unit_sections(values: &FormData, errors: &FieldErrors, buildings: &[Building]) -> Vec<Section> {
    let f = Fields { values, errors };
    vec![
        Section::new(
            "Unit",
            vec![
                f.text("reference", "Reference")
                    .max(30)
                    .hint("Unique within the site, such as 1, 2A or B-101."),
                f.text("name", "Name").hint("Such as Flat 1."),
                f.select(
                    "unit_type",
                    "Type",
                    records::choices(UnitType::ALL, UnitType::key, UnitType::label),
                ),
                f.select(
                    "status",
                    "Status",
                    STATUSES
                        .iter()
                        .map(|(k, l)| ((*k).to_owned(), (*l).to_owned()))
                        .collect(),
                ),
                f.select(
                    "building",
                    "Building",
                    records::with_none(
                        "Not in a building",
                        buildings
                            .iter()
                            .map(|b| (b.id.to_string(), format!("{} ({})", b.name, b.reference)))
                            .collect(),
                    ),
                ),
                f.text("floor", "Floor").max(40).hint(
                    "Such as Ground, 1 or 2. A new floor name adds the floor to the building.",
                ),
                f.text("area", "Floor area in square metres")
                    .max(12)
                    .hint("Used to share costs by area, such as 72.5."),
                f.text("parking_spaces", "Parking spaces").max(2),
                f.text("uprn", "UPRN")
                    .max(12)
                    .hint("The Unique Property Reference Number, up to 12 digits."),
            ],
        ),
        Section::new("Address", f.address(&ADDRESS))
            .hint("If the unit has its own postal address."),
    ]
}

/// The unit as typed, and the floor name to find or make.
fn parse_unit(values: &FormData) -> Result<(UnitInput, Option<String>), FieldErrors> {
    let mut errors = FieldErrors::default();
    let building_raw = values.get("building").trim();
    // Any building id is taken here; that it is on the unit's own site is checked on saving.
    let building_id = if building_raw.is_empty() {
        None
    } else {
        errors.take(
            "building",
            Uuid::parse_str(building_raw)
                .map(Some)
                .map_err(|_| "Choose the building from the list.".to_owned()),
        )
    };
    let floor = errors.take(
        "floor",
        records::optional(values.get("floor"), 40, "The floor"),
    );
    if floor.is_some() && building_id.is_none() {
        errors.add(
            "floor",
            "Choose the building the floor is in, or clear the floor.",
        );
    }
    let area = values.get("area");
    let uprn = values.get("uprn");
    let input = UnitInput {
        reference: errors.take(
            "reference",
            records::reference(values.get("reference"), 30, " ./-", "The unit reference"),
        ),
        name: errors.take(
            "name",
            records::required(values.get("name"), 200, "The name"),
        ),
        building_id,
        floor_id: None,
        unit_type: errors.take(
            "unit_type",
            UnitType::parse(values.get("unit_type"))
                .map(|t| t.key().to_owned())
                .map_err(|e| format!("{e}.")),
        ),
        status: match STATUSES.iter().find(|(k, _)| *k == values.get("status")) {
            Some((k, _)) => (*k).to_owned(),
            None if values.get("status").is_empty() => "active".to_owned(),
            None => {
                errors.add("status", "Choose a status from the list.");
                String::new()
            }
        },
        address: records::address(values, &ADDRESS, &mut errors),
        uprn: if uprn.trim().is_empty() {
            None
        } else {
            errors.take(
                "uprn",
                Uprn::parse(uprn)
                    .map(|u| Some(u.to_string()))
                    .map_err(|e| format!("{e}.")),
            )
        },
        area_cm2: if area.trim().is_empty() {
            None
        } else {
            errors.take(
                "area",
                parse_square_metres(area)
                    .map(Some)
                    .map_err(|e| format!("{e}.")),
            )
        },
        parking_spaces: errors.take(
            "parking_spaces",
            records::whole_number(values.get("parking_spaces"), 0, 99, "Parking spaces"),
        ),
    };
    errors.or((input, floor))
}

fn render_unit_form(
    state: &AppState,
    member: &Member,
    site: &Site,
    existing: Option<Uuid>,
    values: &FormData,
    errors: FieldErrors,
    buildings: &[Building],
) -> Response {
    let (title, action, cancel) = match existing {
        Some(id) => (
            "Edit unit".to_owned(),
            format!("/units/{id}/edit"),
            format!("/units/{id}"),
        ),
        None => (
            format!("Add a unit to {}", site.name),
            format!("/sites/{}/units/new", site.id),
            format!("/sites/{}", site.id),
        ),
    };
    let sections = unit_sections(values, &errors, buildings);
    FormPage::new(Shell::new(member, "/units"), title, action, cancel)
        .address_lookup(state)
        .submit("Save unit")
        .sections(errors, sections)
        .respond()
}

/// GET /sites/{id}/units/new (`unit.create`).
pub async fn new_unit(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = site_for(&mut tx, &member, id, "unit.create").await?;
    let buildings = portfolio::buildings(&mut tx, id, Showing::Live).await?;
    tx.commit().await?;
    let values = FormData::from_pairs([("unit_type", "flat"), ("status", "active")]);
    Ok(render_unit_form(
        &state,
        &member,
        &site,
        None,
        &values,
        FieldErrors::default(),
        &buildings,
    ))
}

/// POST /sites/{id}/units/new (`unit.create`).
pub async fn create_unit(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = site_for(&mut tx, &member, id, "unit.create").await?;
    save_unit(&state, tx, &member, &site, None, FormData::parse(&body)).await
}

/// GET /units/{id}/edit (`unit.update`).
pub async fn edit_unit(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let unit = unit_for(&mut tx, &member, id, "unit.update").await?;
    let site = portfolio::site(&mut tx, unit.site_id)
        .await?
        .ok_or(WebError::NotFound)?;
    let buildings = portfolio::buildings(&mut tx, site.id, Showing::Live).await?;
    tx.commit().await?;
    Ok(render_unit_form(
        &state,
        &member,
        &site,
        Some(id),
        &unit_values(&unit),
        FieldErrors::default(),
        &buildings,
    ))
}

/// POST /units/{id}/edit (`unit.update`).
pub async fn update_unit(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let unit = unit_for(&mut tx, &member, id, "unit.update").await?;
    let site = portfolio::site(&mut tx, unit.site_id)
        .await?
        .ok_or(WebError::NotFound)?;
    save_unit(&state, tx, &member, &site, Some(id), FormData::parse(&body)).await
}

/// Saves the unit; any refusal re-shows the form and the transaction is dropped, so a floor
/// made on the way is not kept either.
async fn save_unit(
    state: &AppState,
    mut tx: TenantTx,
    member: &Member,
    site: &Site,
    existing: Option<Uuid>,
    values: FormData,
) -> Page {
    let buildings = portfolio::buildings(&mut tx, site.id, Showing::Live).await?;
    let refuse = |field: &'static str, message: String| {
        let mut errors = FieldErrors::default();
        errors.add(field, message);
        render_unit_form(state, member, site, existing, &values, errors, &buildings)
    };
    let (mut input, floor) = match parse_unit(&values) {
        Ok(parsed) => parsed,
        Err(errors) => {
            return Ok(render_unit_form(
                state, member, site, existing, &values, errors, &buildings,
            ));
        }
    };
    if let Some(building) = input.building_id {
        // Checked before a floor is named, so that nothing is made in another site's building.
        match portfolio::building(&mut tx, building).await? {
            Some(b) if b.site_id == site.id => {}
            Some(_) => {
                return Ok(refuse(
                    "building",
                    UnitError::BuildingOnAnotherSite.to_string(),
                ));
            }
            None => {
                return Ok(refuse(
                    "building",
                    "Choose the building from the list.".to_owned(),
                ));
            }
        }
        if let Some(floor) = &floor {
            input.floor_id = Some(portfolio::floor_named(&mut tx, building, floor).await?);
        }
    }
    match portfolio::save_unit(&mut tx, existing, site.id, &input).await {
        Ok(id) => {
            tx.commit().await?;
            let done = if existing.is_some() {
                "saved"
            } else {
                "created"
            };
            Ok(Redirect::to(&format!("/units/{id}?done={done}")).into_response())
        }
        Err(e @ UnitError::DuplicateReference(_)) => {
            drop(tx);
            Ok(refuse("reference", e.to_string()))
        }
        Err(e @ UnitError::BuildingOnAnotherSite) => {
            drop(tx);
            Ok(refuse("building", e.to_string()))
        }
        Err(UnitError::Db(e)) => Err(e.into()),
    }
}

/// POST /units/{id}/archive (`unit.archive`).
pub async fn archive_unit(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    set_archived(&state, &member, &id, true).await
}

/// POST /units/{id}/restore (`unit.restore`).
pub async fn restore_unit(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    set_archived(&state, &member, &id, false).await
}

async fn set_archived(state: &AppState, member: &Member, id: &str, archived: bool) -> Page {
    let id = parse_id(id)?;
    let key = if archived {
        "unit.archive"
    } else {
        "unit.restore"
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    unit_for(&mut tx, member, id, key).await?;
    portfolio::set_archived(&mut tx, Archivable::Unit, id, archived).await?;
    tx.commit().await?;
    let done = if archived { "archived" } else { "restored" };
    Ok(Redirect::to(&format!("/units/{id}?done={done}")).into_response())
}
