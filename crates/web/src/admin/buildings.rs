//! Buildings and spaces on a site (docs-spec §2.3): a building's page shows its floors, its
//! units and why it is (or is not) higher-risk; the forms take heights in metres and need a
//! reason for overriding the legal test.

use super::form::{FieldErrors, FormData};
use super::portfolio::{done_flash, site_for, unit_type_label};
use super::records::{
    self, Fields, FormPage, HistoryRow, Section, check, may, parse_id, site_scope,
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
use proplink_db::portfolio::{
    self, Archivable, Building, BuildingInput, Showing, Site, SpaceInput, UnitQuery,
};
use proplink_db::{DbError, TenantTx};
use proplink_domain::portfolio::{
    ConstructionType, HrbFacts, SpaceKind, format_height, hrb_status, parse_height_metres,
};
use uuid::Uuid;

type Page = Result<Response, WebError>;

/// The building and its site, if the member may do `key` to it.
async fn building_for(
    tx: &mut TenantTx,
    member: &Member,
    id: Uuid,
    key: &str,
) -> Result<(Building, Site), WebError> {
    let building = portfolio::building(tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    let site = portfolio::site(tx, building.site_id)
        .await?
        .ok_or(WebError::NotFound)?;
    check(member, key, site.placement())?;
    Ok((building, site))
}

/// "Higher-risk: 19.50 m, 7 storeys, 24 flats", or "Overridden: …" with the reason.
pub(super) fn hrb_summary(b: &Building) -> String {
    if let (Some(is_hrb), Some(reason)) = (b.hrb_override, b.hrb_override_reason.as_deref()) {
        let treated = if is_hrb {
            "treated as higher-risk"
        } else {
            "treated as not higher-risk"
        };
        return format!("Overridden ({treated}): {reason}");
    }
    let plural = |n: i32, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let facts = [
        b.height_cm
            .map_or("height not recorded".to_owned(), format_height),
        b.storeys.map_or("storeys not recorded".to_owned(), |s| {
            plural(s, "storey", "storeys")
        }),
        b.residential_units
            .map_or("residential units not recorded".to_owned(), |u| {
                plural(u, "flat", "flats")
            }),
    ]
    .join(", ");
    if b.is_hrb {
        format!("Higher-risk: {facts}")
    } else {
        format!("Not higher-risk: {facts}")
    }
}

pub struct FloorRow {
    name: String,
}

pub struct UnitRow {
    id: Uuid,
    reference: String,
    name: String,
    kind: String,
    floor: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "portfolio/building.html")]
struct BuildingPage {
    shell: Shell,
    id: Uuid,
    site_id: Uuid,
    site_name: String,
    reference: String,
    name: String,
    is_hrb: bool,
    hrb: String,
    facts: Vec<(String, String)>,
    floors: Vec<FloorRow>,
    units: Vec<UnitRow>,
    history: Vec<HistoryRow>,
    archived: bool,
    can_edit: bool,
    can_archive: bool,
    can_restore: bool,
}

/// GET /buildings/{id} (`building.read`).
pub async fn show(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    let query = FormData::parse(query.unwrap_or_default().as_bytes());
    let mut tx = state.db().begin(&member.ctx()).await?;
    let (b, site) = building_for(&mut tx, &member, id, "building.read").await?;
    let floors = portfolio::floors(&mut tx, id).await?;
    let units = portfolio::list_units(
        &mut tx,
        &site_scope(&member),
        &UnitQuery {
            site: Some(site.id),
            building: Some(id),
            page: 1,
            per_page: 500,
            ..UnitQuery::default()
        },
    )
    .await?;
    let history = records::history(&mut tx, "building", id).await?;
    tx.commit().await?;
    let placement = site.placement();
    let archived = b.archived_at.is_some();
    let text = |v: Option<String>| records::or_not_recorded(v);
    Ok(BuildingPage {
        shell: Shell::new(&member, "/sites").with_flash(done_flash(&query, "Building")),
        id,
        site_id: site.id,
        site_name: site.name.clone(),
        reference: b.reference.clone(),
        name: b.name.clone(),
        is_hrb: b.is_hrb,
        hrb: hrb_summary(&b),
        facts: vec![
            ("Height".to_owned(), text(b.height_label())),
            ("Storeys".to_owned(), text(b.storeys.map(|s| s.to_string()))),
            (
                "Residential units".to_owned(),
                text(b.residential_units.map(|s| s.to_string())),
            ),
            (
                "Build year".to_owned(),
                text(b.build_year.map(|s| s.to_string())),
            ),
            (
                "Construction".to_owned(),
                text(
                    b.construction_type
                        .as_deref()
                        .and_then(ConstructionType::from_key)
                        .map(|c| c.label().to_owned()),
                ),
            ),
        ],
        floors: floors
            .into_iter()
            .map(|f| FloorRow { name: f.name })
            .collect(),
        units: units
            .rows
            .iter()
            .map(|u| UnitRow {
                id: u.id,
                reference: u.reference.clone(),
                name: u.name.clone(),
                kind: unit_type_label(&u.unit_type),
                floor: u.floor_name.clone().unwrap_or_default(),
            })
            .collect(),
        history,
        archived,
        can_edit: may(&member, "building.update", placement),
        can_archive: !archived && may(&member, "building.archive", placement),
        can_restore: archived && may(&member, "building.restore", placement),
    }
    .into_response())
}

fn building_values(b: &Building) -> FormData {
    let num = |v: Option<i32>| v.map(|n| n.to_string()).unwrap_or_default();
    FormData::from_pairs([
        ("reference", b.reference.clone()),
        ("name", b.name.clone()),
        (
            "height",
            b.height_cm
                .map(|cm| format!("{}.{:02}", cm / 100, cm % 100))
                .unwrap_or_default(),
        ),
        ("storeys", num(b.storeys)),
        ("residential_units", num(b.residential_units)),
        ("build_year", num(b.build_year)),
        (
            "construction_type",
            b.construction_type.clone().unwrap_or_default(),
        ),
        (
            "hrb_override",
            match b.hrb_override {
                Some(true) => "yes",
                Some(false) => "no",
                None => "",
            }
            .to_owned(),
        ),
        (
            "hrb_reason",
            b.hrb_override_reason.clone().unwrap_or_default(),
        ),
    ])
}

fn building_sections(values: &FormData, errors: &FieldErrors) -> Vec<Section> {
    let f = Fields { values, errors };
    let pairs = |items: &[(&str, &str)]| {
        items
            .iter()
            .map(|(k, l)| ((*k).to_owned(), (*l).to_owned()))
            .collect::<Vec<_>>()
    };
    vec![
        Section::new(
            "Building",
            vec![
                f.text("reference", "Reference")
                    .max(30)
                    .hint("Such as A or Block-A: letters, digits, spaces and . / - up to 30 characters."),
                f.text("name", "Name").hint("Such as Block A."),
                f.text("build_year", "Build year").max(4),
                f.select(
                    "construction_type",
                    "Construction",
                    records::with_none(
                        "Not recorded",
                        records::choices(
                            ConstructionType::ALL,
                            ConstructionType::key,
                            ConstructionType::label,
                        ),
                    ),
                ),
            ],
        ),
        Section::new(
            "Higher-risk building test",
            vec![
                f.text("height", "Height in metres")
                    .max(10)
                    .hint("From ground level to the top storey's floor, to 2 decimal places, such as 18.5."),
                f.text("storeys", "Storeys").max(4),
                f.text("residential_units", "Residential units").max(6),
                f.radios(
                    "hrb_override",
                    "Is it higher-risk?",
                    pairs(&[
                        ("", "Follow the legal test (18 m or 7 storeys, and 2 or more residential units)"),
                        ("yes", "Higher-risk, whatever the facts say"),
                        ("no", "Not higher-risk, whatever the facts say"),
                    ]),
                ),
                f.area("hrb_reason", "Reason for overriding the test")
                    .max(500)
                    .hint("Required when overriding: the decision has legal consequences and will be asked about."),
            ],
        )
        .hint("Building Safety Act 2022, s.65."),
    ]
}

fn parse_building(values: &FormData) -> Result<BuildingInput, FieldErrors> {
    let mut errors = FieldErrors::default();
    let height = values.get("height");
    let height_cm = if height.trim().is_empty() {
        None
    } else {
        errors.take(
            "height",
            parse_height_metres(height)
                .map(Some)
                .map_err(|e| format!("{e}.")),
        )
    };
    let storeys = errors.take(
        "storeys",
        records::whole_number(values.get("storeys"), 1, 200, "Storeys"),
    );
    let residential_units = errors.take(
        "residential_units",
        records::whole_number(
            values.get("residential_units"),
            0,
            10_000,
            "Residential units",
        ),
    );
    let reason = errors
        .take(
            "hrb_reason",
            records::optional(values.get("hrb_reason"), 500, "The reason"),
        )
        .unwrap_or_default();
    let hrb_override = match values.get("hrb_override") {
        "" => None,
        "yes" => Some(true),
        "no" => Some(false),
        _ => {
            errors.add("hrb_override", "Choose one of the answers.");
            None
        }
    };
    let facts = HrbFacts {
        height_cm,
        storeys,
        residential_units,
    };
    if let Err(e) = hrb_status(&facts, hrb_override.map(|o| (o, reason.as_str()))) {
        errors.add("hrb_reason", format!("{e}."));
    }
    let construction_type = match values.get("construction_type") {
        "" => None,
        raw => errors.take(
            "construction_type",
            ConstructionType::parse(raw)
                .map(|c| Some(c.key().to_owned()))
                .map_err(|e| format!("{e}.")),
        ),
    };
    let input = BuildingInput {
        reference: errors.take(
            "reference",
            records::reference(
                values.get("reference"),
                30,
                " ./-",
                "The building reference",
            ),
        ),
        name: errors.take(
            "name",
            records::required(values.get("name"), 200, "The name"),
        ),
        height_cm,
        storeys,
        residential_units,
        build_year: errors.take(
            "build_year",
            records::whole_number(values.get("build_year"), 1600, 2100, "The build year"),
        ),
        construction_type,
        hrb_override: hrb_override.map(|o| (o, reason)),
    };
    errors.or(input)
}

fn render_building_form(
    member: &Member,
    site: &Site,
    existing: Option<Uuid>,
    values: &FormData,
    errors: FieldErrors,
) -> Response {
    let (title, action, cancel) = match existing {
        Some(id) => (
            "Edit building".to_owned(),
            format!("/buildings/{id}/edit"),
            format!("/buildings/{id}"),
        ),
        None => (
            format!("Add a building to {}", site.name),
            format!("/sites/{}/buildings/new", site.id),
            format!("/sites/{}", site.id),
        ),
    };
    let sections = building_sections(values, &errors);
    FormPage::new(Shell::new(member, "/sites"), title, action, cancel)
        .submit("Save building")
        .sections(errors, sections)
        .respond()
}

/// GET /sites/{id}/buildings/new (`building.create`).
pub async fn new_building(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = site_for(&mut tx, &member, id, "building.create").await?;
    tx.commit().await?;
    let values = FormData::from_pairs(Vec::<(String, String)>::new());
    Ok(render_building_form(
        &member,
        &site,
        None,
        &values,
        FieldErrors::default(),
    ))
}

/// POST /sites/{id}/buildings/new (`building.create`).
pub async fn create_building(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = site_for(&mut tx, &member, id, "building.create").await?;
    save_building(tx, &member, &site, None, FormData::parse(&body)).await
}

/// GET /buildings/{id}/edit (`building.update`).
pub async fn edit_building(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let (b, site) = building_for(&mut tx, &member, id, "building.update").await?;
    tx.commit().await?;
    Ok(render_building_form(
        &member,
        &site,
        Some(id),
        &building_values(&b),
        FieldErrors::default(),
    ))
}

/// POST /buildings/{id}/edit (`building.update`).
pub async fn update_building(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let (_, site) = building_for(&mut tx, &member, id, "building.update").await?;
    save_building(tx, &member, &site, Some(id), FormData::parse(&body)).await
}

async fn save_building(
    mut tx: TenantTx,
    member: &Member,
    site: &Site,
    existing: Option<Uuid>,
    values: FormData,
) -> Page {
    let input = match parse_building(&values) {
        Ok(input) => input,
        Err(errors) => {
            return Ok(render_building_form(
                member, site, existing, &values, errors,
            ));
        }
    };
    match portfolio::save_building(&mut tx, existing, site.id, &input).await {
        Ok(id) => {
            tx.commit().await?;
            let done = if existing.is_some() {
                "saved"
            } else {
                "created"
            };
            Ok(Redirect::to(&format!("/buildings/{id}?done={done}")).into_response())
        }
        Err(DbError::Duplicate { constraint }) if constraint == "building_reference" => {
            let mut errors = FieldErrors::default();
            errors.add(
                "reference",
                format!(
                    "Another building on this site already has the reference {}.",
                    input.reference
                ),
            );
            Ok(render_building_form(
                member, site, existing, &values, errors,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// POST /buildings/{id}/archive (`building.archive`).
pub async fn archive_building(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    set_archived(&state, &member, &id, true).await
}

/// POST /buildings/{id}/restore (`building.restore`).
pub async fn restore_building(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    set_archived(&state, &member, &id, false).await
}

async fn set_archived(state: &AppState, member: &Member, id: &str, archived: bool) -> Page {
    let id = parse_id(id)?;
    let key = if archived {
        "building.archive"
    } else {
        "building.restore"
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    building_for(&mut tx, member, id, key).await?;
    portfolio::set_archived(&mut tx, Archivable::Building, id, archived).await?;
    tx.commit().await?;
    let done = if archived { "archived" } else { "restored" };
    Ok(Redirect::to(&format!("/buildings/{id}?done={done}")).into_response())
}

// ---------------------------------------------------------------------------------------------
// Spaces

fn space_sections(values: &FormData, errors: &FieldErrors, buildings: &[Building]) -> Vec<Section> {
    let f = Fields { values, errors };
    vec![Section::new(
        "Space",
        vec![
            f.text("name", "Name")
                .hint("Such as Ground floor corridor or Bin store 2."),
            f.select(
                "kind",
                "Kind",
                records::choices(SpaceKind::ALL, SpaceKind::key, SpaceKind::label),
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
                "Such as Ground, 1, 2 or Roof. A new floor name adds the floor to the building.",
            ),
            f.area("notes", "Notes"),
        ],
    )]
}

/// The space as typed, and the floor name to find or make.
fn parse_space(
    values: &FormData,
    buildings: &[Building],
) -> Result<(SpaceInput, Option<String>), FieldErrors> {
    let mut errors = FieldErrors::default();
    let allowed: Vec<Uuid> = buildings.iter().map(|b| b.id).collect();
    let building_id = errors.take(
        "building",
        records::chosen_id(values.get("building"), &allowed, "The building"),
    );
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
    let input = SpaceInput {
        building_id,
        floor_id: None,
        name: errors.take(
            "name",
            records::required(values.get("name"), 200, "The name"),
        ),
        kind: errors.take(
            "kind",
            SpaceKind::parse(values.get("kind"))
                .map(|k| k.key().to_owned())
                .map_err(|e| format!("{e}.")),
        ),
        notes: errors.take(
            "notes",
            records::optional(values.get("notes"), 2000, "The notes"),
        ),
    };
    errors.or((input, floor))
}

fn render_space_form(
    member: &Member,
    site: &Site,
    values: &FormData,
    errors: FieldErrors,
    buildings: &[Building],
) -> Response {
    let sections = space_sections(values, &errors, buildings);
    FormPage::new(
        Shell::new(member, "/sites"),
        format!("Add a space to {}", site.name),
        format!("/sites/{}/spaces/new", site.id),
        format!("/sites/{}", site.id),
    )
    .intro("A space is a shared room or area that is not a unit: a corridor, a plant room, a bin store.")
    .submit("Save space")
    .sections(errors, sections)
    .respond()
}

/// GET /sites/{id}/spaces/new (`building.create`).
pub async fn new_space(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = site_for(&mut tx, &member, id, "building.create").await?;
    let buildings = portfolio::buildings(&mut tx, id, Showing::Live).await?;
    tx.commit().await?;
    let values = FormData::from_pairs([("kind", "corridor")]);
    Ok(render_space_form(
        &member,
        &site,
        &values,
        FieldErrors::default(),
        &buildings,
    ))
}

/// POST /sites/{id}/spaces/new (`building.create`).
pub async fn create_space(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let values = FormData::parse(&body);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = site_for(&mut tx, &member, id, "building.create").await?;
    let buildings = portfolio::buildings(&mut tx, id, Showing::Live).await?;
    let (mut input, floor) = match parse_space(&values, &buildings) {
        Ok(parsed) => parsed,
        Err(errors) => {
            return Ok(render_space_form(
                &member, &site, &values, errors, &buildings,
            ));
        }
    };
    if let (Some(building), Some(floor)) = (input.building_id, floor) {
        input.floor_id = Some(portfolio::floor_named(&mut tx, building, &floor).await?);
    }
    match portfolio::save_space(&mut tx, id, &input).await {
        Ok(_) => {
            tx.commit().await?;
            Ok(Redirect::to(&format!("/sites/{id}?done=added")).into_response())
        }
        Err(DbError::Duplicate { constraint }) if constraint == "space_name" => {
            drop(tx);
            let mut errors = FieldErrors::default();
            errors.add(
                "name",
                format!("This site already has a space called {}.", input.name),
            );
            Ok(render_space_form(
                &member, &site, &values, errors, &buildings,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// POST /sites/{id}/spaces/{space}/archive (`building.archive`).
pub async fn archive_space(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path((id, space)): Path<(String, String)>,
) -> Page {
    set_space_archived(&state, &member, &id, &space, true).await
}

/// POST /sites/{id}/spaces/{space}/restore (`building.restore`).
pub async fn restore_space(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path((id, space)): Path<(String, String)>,
) -> Page {
    set_space_archived(&state, &member, &id, &space, false).await
}

/// Archives or restores one of the site's spaces: the space must be one of this site's live
/// (to archive) or archived (to restore) spaces, since the permission check is the site's.
async fn set_space_archived(
    state: &AppState,
    member: &Member,
    id: &str,
    space: &str,
    archived: bool,
) -> Page {
    let (id, space) = (parse_id(id)?, parse_id(space)?);
    let (permission, done) = if archived {
        ("building.archive", "archived_space")
    } else {
        ("building.restore", "restored_space")
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    site_for(&mut tx, member, id, permission).await?;
    let candidates = if archived {
        portfolio::spaces(&mut tx, id).await?
    } else {
        portfolio::archived_spaces(&mut tx, id).await?
    };
    if !candidates.iter().any(|s| s.id == space) {
        return Err(WebError::NotFound);
    }
    portfolio::set_archived(&mut tx, Archivable::Space, space, archived).await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/sites/{id}?done={done}")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn building(
        height: Option<i32>,
        storeys: Option<i32>,
        units: Option<i32>,
        is_hrb: bool,
    ) -> Building {
        Building {
            id: Uuid::nil(),
            site_id: Uuid::nil(),
            reference: "A".into(),
            name: "Block A".into(),
            height_cm: height,
            storeys,
            residential_units: units,
            build_year: None,
            construction_type: None,
            hrb_override: None,
            hrb_override_reason: None,
            is_hrb,
            unit_count: 0,
            archived_at: None,
        }
    }

    #[test]
    fn the_higher_risk_derivation_reads_as_a_sentence() {
        assert_eq!(
            hrb_summary(&building(Some(1950), Some(7), Some(24), true)),
            "Higher-risk: 19.50 m, 7 storeys, 24 flats"
        );
        assert_eq!(
            hrb_summary(&building(None, Some(1), Some(1), false)),
            "Not higher-risk: height not recorded, 1 storey, 1 flat"
        );
        let mut b = building(Some(1000), None, None, true);
        b.hrb_override = Some(true);
        b.hrb_override_reason = Some("Surveyed at 18.2 m".into());
        assert_eq!(
            hrb_summary(&b),
            "Overridden (treated as higher-risk): Surveyed at 18.2 m"
        );
    }

    #[test]
    fn an_override_needs_a_reason() {
        let values = FormData::from_pairs([
            ("reference", "A"),
            ("name", "Block A"),
            ("hrb_override", "yes"),
        ]);
        let errors = parse_building(&values).unwrap_err();
        assert!(errors.get("hrb_reason").is_some());
    }
}
