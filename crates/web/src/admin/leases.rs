//! A unit's leases and occupants: add a lease (holders chosen from contacts, UK dates, ground
//! rent in pounds), record a change of ownership (the current lease ends and its terms carry
//! on with the new holders, so the history is kept), and add an occupant.

use super::form::{FieldErrors, FormData};
use super::portfolio::contact_choices;
use super::records::{self, Fields, FormPage, Section, parse_id};
use super::units::unit_for;
use super::{Member, Shell};
use crate::error::WebError;
use crate::state::AppState;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use proplink_db::TenantTx;
use proplink_db::people::{self, LeaseError, LeaseInput};
use proplink_db::portfolio::Unit;
use proplink_domain::uk::parse_pounds_to_pence;
use uuid::Uuid;

type Page = Result<Response, WebError>;

const HOLDERS: [&str; 4] = ["holder_1", "holder_2", "holder_3", "holder_4"];

/// Beside each holder's list, a box for the e-mail address or reference of a contact the list
/// does not show (it shows the first 500 in name order; with scripts, a search box above the
/// list finds the others).
const HOLDER_KEYS: [&str; 4] = [
    "holder_1_key",
    "holder_2_key",
    "holder_3_key",
    "holder_4_key",
];

fn holder_fields(f: &Fields, contacts: &[(Uuid, String)]) -> Vec<super::records::Field> {
    let choices: Vec<(String, String)> = contacts
        .iter()
        .map(|(id, name)| (id.to_string(), name.clone()))
        .collect();
    HOLDERS
        .iter()
        .zip(HOLDER_KEYS)
        .enumerate()
        .flat_map(|(i, (name, key))| {
            let label = if i == 0 {
                "Leaseholder".to_owned()
            } else {
                format!("Joint leaseholder {}", i + 1)
            };
            [
                f.select(name, &label, records::with_none("None", choices.clone()))
                    .searchable("/contacts/choices"),
                f.text(key, &format!("{label}: or their e-mail or reference"))
                    .max(254)
                    .hint("For a contact not in the list."),
            ]
        })
        .collect()
}

/// Puts a contact named by e-mail or reference (in a holder's box) into the holder's list, so
/// the form reads as if they had been chosen there. Unknown names are reported on their box.
async fn resolve_typed_holders(
    tx: &mut TenantTx,
    member: &Member,
    values: &mut FormData,
    contacts: &mut Vec<(Uuid, String)>,
    errors: &mut FieldErrors,
) -> Result<(), WebError> {
    super::portfolio::add_chosen_contacts(tx, member, values, &HOLDERS, None, contacts).await?;
    let scope = records::site_scope(member);
    for (name, key) in HOLDERS.iter().zip(HOLDER_KEYS) {
        let typed = values.get(key).trim().to_owned();
        if typed.is_empty() || !values.get(name).is_empty() {
            continue;
        }
        match people::contact_by_key(tx, &scope, &typed).await? {
            Some((id, display)) => {
                if !contacts.iter().any(|(c, _)| *c == id) {
                    contacts.push((id, display));
                }
                values.set(name, id.to_string());
            }
            None => errors.add(
                key,
                "No contact you can see has that e-mail address or reference. Add them under People → Contacts first.",
            ),
        }
    }
    Ok(())
}

/// The holders chosen, in order, each once and each one of the contacts offered.
fn parse_holders(
    values: &FormData,
    contacts: &[(Uuid, String)],
    errors: &mut FieldErrors,
) -> Vec<Uuid> {
    let allowed: Vec<Uuid> = contacts.iter().map(|(id, _)| *id).collect();
    let mut holders = Vec::new();
    for name in HOLDERS {
        if let Some(id) = errors.take(
            name,
            records::chosen_id(values.get(name), &allowed, "The leaseholder"),
        ) {
            if holders.contains(&id) {
                errors.add(name, "The same contact is chosen twice.");
            } else {
                holders.push(id);
            }
        }
    }
    if holders.is_empty() && errors.get(HOLDERS[0]).is_none() {
        errors.add(HOLDERS[0], "Choose at least one leaseholder.");
    }
    holders
}

/// Where a lease refusal belongs on the form.
fn lease_error(e: LeaseError) -> Result<(&'static str, String), WebError> {
    let field = match &e {
        LeaseError::NoStart | LeaseError::Overlap => "starts_on",
        LeaseError::EndBeforeStart => "ends_on",
        LeaseError::Holders => HOLDERS[0],
        LeaseError::TooEarly(_) | LeaseError::NoCurrentLease => "effective",
        LeaseError::Db(_) => "",
    };
    match e {
        LeaseError::Db(db) => Err(db.into()),
        other => Ok((field, other.to_string())),
    }
}

// ---------------------------------------------------------------------------------------------
// Add a lease

fn lease_sections(
    values: &FormData,
    errors: &FieldErrors,
    contacts: &[(Uuid, String)],
) -> Vec<Section> {
    let f = Fields { values, errors };
    let date = |name: &'static str, label: &str| {
        f.text(name, label)
            .max(10)
            .hint("dd/mm/yyyy, such as 25/03/2026.")
    };
    vec![
        Section::new("Leaseholders", holder_fields(&f, contacts))
            .hint("Up to four joint leaseholders. Add a new person under People → Contacts first."),
        Section::new(
            "Lease",
            vec![
                date("starts_on", "Held from"),
                date("ends_on", "Held until (optional)"),
                date("term_start", "Term starts (optional)"),
                f.text("term_years", "Term in years (optional)").max(3),
                f.text("ground_rent", "Ground rent a year, in pounds (optional)")
                    .max(14)
                    .hint("Such as 250 or £1,250.50."),
                f.text("ground_rent_review", "Ground rent review (optional)")
                    .hint("Such as doubling every 25 years."),
                date("s48_notice_on", "Section 48 notice given on (optional)"),
                f.area("notes", "Notes"),
            ],
        ),
    ]
}

fn parse_lease(values: &FormData, contacts: &[(Uuid, String)]) -> Result<LeaseInput, FieldErrors> {
    let mut errors = FieldErrors::default();
    let holders = parse_holders(values, contacts, &mut errors);
    let rent = values.get("ground_rent");
    let input = LeaseInput {
        starts_on: records::required_date(
            values,
            "starts_on",
            "the date the lease is held from",
            &mut errors,
        ),
        ends_on: errors.take("ends_on", records::uk_date(values.get("ends_on"))),
        term_start: errors.take("term_start", records::uk_date(values.get("term_start"))),
        term_years: errors.take(
            "term_years",
            records::whole_number(values.get("term_years"), 1, 999, "The term"),
        ),
        ground_rent_pence: if rent.trim().is_empty() {
            None
        } else {
            errors.take(
                "ground_rent",
                parse_pounds_to_pence(rent)
                    .map(Some)
                    .map_err(|e| format!("{e}.")),
            )
        },
        ground_rent_review: errors.take(
            "ground_rent_review",
            records::optional(values.get("ground_rent_review"), 200, "The review"),
        ),
        s48_notice_on: errors.take(
            "s48_notice_on",
            records::uk_date(values.get("s48_notice_on")),
        ),
        notes: errors.take(
            "notes",
            records::optional(values.get("notes"), 2000, "The notes"),
        ),
        holders,
    };
    errors.or(input)
}

fn render_lease_form(
    member: &Member,
    unit: &Unit,
    values: &FormData,
    errors: FieldErrors,
    contacts: &[(Uuid, String)],
) -> Response {
    let sections = lease_sections(values, &errors, contacts);
    FormPage::new(
        Shell::new(member, "/units"),
        format!("Add a lease of {}", unit.name),
        format!("/units/{}/leases/new", unit.id),
        format!("/units/{}", unit.id),
    )
    .intro("For a sale, use “Record change of ownership” instead: it ends the current lease and keeps its terms.")
    .submit("Save lease")
    .sections(errors, sections)
    .respond()
}

/// GET /units/{id}/leases/new (`lease.create`).
pub async fn new_lease(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let unit = unit_for(&mut tx, &member, id, "lease.create").await?;
    let contacts = contact_choices(&mut tx, &member, None, None).await?;
    tx.commit().await?;
    let values = FormData::from_pairs(Vec::<(String, String)>::new());
    Ok(render_lease_form(
        &member,
        &unit,
        &values,
        FieldErrors::default(),
        &contacts,
    ))
}

/// POST /units/{id}/leases/new (`lease.create`).
pub async fn create_lease(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let mut values = FormData::parse(&body);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let unit = unit_for(&mut tx, &member, id, "lease.create").await?;
    let mut contacts = contact_choices(&mut tx, &member, None, None).await?;
    let mut typed = FieldErrors::default();
    resolve_typed_holders(&mut tx, &member, &mut values, &mut contacts, &mut typed).await?;
    let input = match parse_lease(&values, &contacts) {
        Ok(input) if typed.is_empty() => input,
        Ok(_) => {
            return Ok(render_lease_form(&member, &unit, &values, typed, &contacts));
        }
        Err(mut errors) => {
            errors.extend(typed);
            return Ok(render_lease_form(
                &member, &unit, &values, errors, &contacts,
            ));
        }
    };
    match people::add_lease(&mut tx, id, &input).await {
        Ok(_) => {
            tx.commit().await?;
            Ok(Redirect::to(&format!("/units/{id}?done=added")).into_response())
        }
        Err(e) => {
            drop(tx);
            let (field, message) = lease_error(e)?;
            let mut errors = FieldErrors::default();
            errors.add(field, message);
            Ok(render_lease_form(
                &member, &unit, &values, errors, &contacts,
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Change of ownership

fn ownership_sections(
    values: &FormData,
    errors: &FieldErrors,
    contacts: &[(Uuid, String)],
) -> Vec<Section> {
    let f = Fields { values, errors };
    vec![
        Section::new(
            "Change",
            vec![f
                .text("effective", "Takes effect on")
                .max(10)
                .hint("The completion date, dd/mm/yyyy. The current leaseholders hold the lease until then.")],
        ),
        Section::new("New leaseholders", holder_fields(&f, contacts)),
    ]
}

fn render_ownership_form(
    member: &Member,
    unit: &Unit,
    values: &FormData,
    errors: FieldErrors,
    contacts: &[(Uuid, String)],
) -> Response {
    let sections = ownership_sections(values, &errors, contacts);
    FormPage::new(
        Shell::new(member, "/units"),
        format!("Record a change of ownership of {}", unit.name),
        format!("/units/{}/ownership", unit.id),
        format!("/units/{}", unit.id),
    )
    .intro("The current lease ends on the date given and the same terms continue with the new leaseholders. The previous leaseholders stay in the unit's history.")
    .submit("Record change of ownership")
    .sections(errors, sections)
    .respond()
}

/// GET /units/{id}/ownership (`lease.update`).
pub async fn ownership_form(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let unit = unit_for(&mut tx, &member, id, "lease.update").await?;
    let contacts = contact_choices(&mut tx, &member, None, None).await?;
    tx.commit().await?;
    let values = FormData::from_pairs(Vec::<(String, String)>::new());
    Ok(render_ownership_form(
        &member,
        &unit,
        &values,
        FieldErrors::default(),
        &contacts,
    ))
}

/// POST /units/{id}/ownership (`lease.update`).
pub async fn change_ownership(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let mut values = FormData::parse(&body);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let unit = unit_for(&mut tx, &member, id, "lease.update").await?;
    let mut contacts = contact_choices(&mut tx, &member, None, None).await?;
    let mut errors = FieldErrors::default();
    resolve_typed_holders(&mut tx, &member, &mut values, &mut contacts, &mut errors).await?;
    let effective = records::required_date(
        &values,
        "effective",
        "the date the change takes effect",
        &mut errors,
    );
    let holders = parse_holders(&values, &contacts, &mut errors);
    let Some(effective) = effective.filter(|_| errors.is_empty()) else {
        return Ok(render_ownership_form(
            &member, &unit, &values, errors, &contacts,
        ));
    };
    match people::change_ownership(&mut tx, id, effective, &holders).await {
        Ok(_) => {
            tx.commit().await?;
            Ok(Redirect::to(&format!("/units/{id}?done=saved")).into_response())
        }
        Err(e) => {
            drop(tx);
            let (field, message) = lease_error(e)?;
            let mut errors = FieldErrors::default();
            errors.add(field, message);
            Ok(render_ownership_form(
                &member, &unit, &values, errors, &contacts,
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Occupants

fn occupant_sections(
    values: &FormData,
    errors: &FieldErrors,
    contacts: &[(Uuid, String)],
) -> Vec<Section> {
    let f = Fields { values, errors };
    let pairs = |items: &[(&str, &str)]| {
        items
            .iter()
            .map(|(k, l)| ((*k).to_owned(), (*l).to_owned()))
            .collect::<Vec<_>>()
    };
    vec![Section::new(
        "Occupant",
        vec![
            f.select(
                "contact",
                "Contact",
                records::with_none(
                    "Choose a contact",
                    contacts
                        .iter()
                        .map(|(id, name)| (id.to_string(), name.clone()))
                        .collect(),
                ),
            ),
            f.radios(
                "kind",
                "Lives there as",
                pairs(&[("tenant", "Tenant"), ("occupier", "Occupier")]),
            ),
            f.text("starts_on", "From").max(10).hint("dd/mm/yyyy."),
            f.text("ends_on", "Until (optional)")
                .max(10)
                .hint("dd/mm/yyyy."),
        ],
    )]
}

fn render_occupant_form(
    member: &Member,
    unit: &Unit,
    values: &FormData,
    errors: FieldErrors,
    contacts: &[(Uuid, String)],
) -> Response {
    let sections = occupant_sections(values, &errors, contacts);
    FormPage::new(
        Shell::new(member, "/units"),
        format!("Add an occupant of {}", unit.name),
        format!("/units/{}/occupants/new", unit.id),
        format!("/units/{}", unit.id),
    )
    .submit("Save occupant")
    .sections(errors, sections)
    .respond()
}

/// GET /units/{id}/occupants/new (`unit.update`).
pub async fn new_occupant(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let unit = unit_for(&mut tx, &member, id, "unit.update").await?;
    let contacts = contact_choices(&mut tx, &member, None, None).await?;
    tx.commit().await?;
    let values = FormData::from_pairs([("kind", "tenant")]);
    Ok(render_occupant_form(
        &member,
        &unit,
        &values,
        FieldErrors::default(),
        &contacts,
    ))
}

/// POST /units/{id}/occupants/new (`unit.update`).
pub async fn create_occupant(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let values = FormData::parse(&body);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let unit = unit_for(&mut tx, &member, id, "unit.update").await?;
    let contacts = contact_choices(&mut tx, &member, None, None).await?;
    let allowed: Vec<Uuid> = contacts.iter().map(|(id, _)| *id).collect();
    let mut errors = FieldErrors::default();
    let contact = errors.take(
        "contact",
        records::chosen_id(values.get("contact"), &allowed, "The contact"),
    );
    if contact.is_none() && errors.get("contact").is_none() {
        errors.add("contact", "Choose the contact who lives there.");
    }
    let kind = match values.get("kind") {
        "tenant" | "" => "tenant",
        "occupier" => "occupier",
        _ => {
            errors.add("kind", "Choose tenant or occupier.");
            "tenant"
        }
    };
    let starts_on =
        records::required_date(&values, "starts_on", "the date they moved in", &mut errors);
    let ends_on = errors.take("ends_on", records::uk_date(values.get("ends_on")));
    let (Some(contact), Some(starts_on), true) = (contact, starts_on, errors.is_empty()) else {
        return Ok(render_occupant_form(
            &member, &unit, &values, errors, &contacts,
        ));
    };
    match people::add_occupancy(&mut tx, id, contact, kind, starts_on, ends_on).await {
        Ok(_) => {
            tx.commit().await?;
            Ok(Redirect::to(&format!("/units/{id}?done=added")).into_response())
        }
        Err(e) => {
            drop(tx);
            let (field, message) = match lease_error(e)? {
                ("starts_on", _) => (
                    "starts_on",
                    "This contact already lives in the unit for some of these dates.".to_owned(),
                ),
                other => other,
            };
            let mut errors = FieldErrors::default();
            errors.add(field, message);
            Ok(render_occupant_form(
                &member, &unit, &values, errors, &contacts,
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// An occupant moves out

fn render_end_occupant_form(
    member: &Member,
    unit: &Unit,
    occupant: &people::Occupancy,
    values: &FormData,
    errors: FieldErrors,
) -> Response {
    let f = Fields {
        values,
        errors: &errors,
    };
    let sections = vec![Section::new(
        "Moving out",
        vec![
            f.text("ends_on", "Moved out on")
                .max(10)
                .hint("dd/mm/yyyy. Their time in the unit stays in its history."),
        ],
    )];
    FormPage::new(
        Shell::new(member, "/units"),
        format!("{} moves out of {}", occupant.contact_name, unit.name),
        format!("/units/{}/occupants/{}/end", unit.id, occupant.id),
        format!("/units/{}", unit.id),
    )
    .submit("Save")
    .sections(errors, sections)
    .respond()
}

async fn occupant_of(
    tx: &mut TenantTx,
    unit: Uuid,
    occupancy: Uuid,
) -> Result<people::Occupancy, WebError> {
    people::occupancies(tx, Some(unit), None)
        .await?
        .into_iter()
        .find(|o| o.id == occupancy)
        .ok_or(WebError::NotFound)
}

/// GET /units/{id}/occupants/{occupancy}/end (`unit.update`).
pub async fn end_occupant_form(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path((id, occupancy)): Path<(String, String)>,
) -> Page {
    let (id, occupancy) = (parse_id(&id)?, parse_id(&occupancy)?);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let unit = unit_for(&mut tx, &member, id, "unit.update").await?;
    let occupant = occupant_of(&mut tx, id, occupancy).await?;
    tx.commit().await?;
    let ends_on = occupant
        .ends_on
        .map(records::uk_date_text)
        .unwrap_or_default();
    let values = FormData::from_pairs([("ends_on", ends_on.as_str())]);
    Ok(render_end_occupant_form(
        &member,
        &unit,
        &occupant,
        &values,
        FieldErrors::default(),
    ))
}

/// POST /units/{id}/occupants/{occupancy}/end (`unit.update`).
pub async fn end_occupant(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path((id, occupancy)): Path<(String, String)>,
    body: Bytes,
) -> Page {
    let (id, occupancy) = (parse_id(&id)?, parse_id(&occupancy)?);
    let values = FormData::parse(&body);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let unit = unit_for(&mut tx, &member, id, "unit.update").await?;
    let occupant = occupant_of(&mut tx, id, occupancy).await?;
    let mut errors = FieldErrors::default();
    let ends_on =
        records::required_date(&values, "ends_on", "the date they moved out", &mut errors);
    let Some(ends_on) = ends_on else {
        return Ok(render_end_occupant_form(
            &member, &unit, &occupant, &values, errors,
        ));
    };
    match people::end_occupancy(&mut tx, id, occupancy, ends_on).await {
        Ok(()) => {
            tx.commit().await?;
            Ok(Redirect::to(&format!("/units/{id}?done=saved")).into_response())
        }
        Err(e) => {
            drop(tx);
            let message = match e {
                LeaseError::EndBeforeStart => format!(
                    "They moved in on {}: the day they moved out must be after it.",
                    proplink_domain::dates::long_date(occupant.starts_on)
                ),
                LeaseError::Overlap => {
                    "This would overlap another time they lived in the unit.".to_owned()
                }
                LeaseError::Db(db) => return Err(db.into()),
                other => other.to_string(),
            };
            let mut errors = FieldErrors::default();
            errors.add("ends_on", message);
            Ok(render_end_occupant_form(
                &member, &unit, &occupant, &values, errors,
            ))
        }
    }
}
