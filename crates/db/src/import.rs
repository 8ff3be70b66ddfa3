//! CSV imports (issue 4): rows already checked by `proplink_domain::import` are matched with
//! what the organisation holds and written in one transaction, all or nothing.
//!
//! - References name records: a unit's site by its reference, a lease's holders by contact
//!   reference or e-mail. A reference to nothing is a line error, like a bad postcode.
//! - Re-importing the same file changes nothing: rows match existing records on their
//!   reference (units and buildings within their site; contacts on reference, else e-mail;
//!   leases on unit and start date) and an update only happens when a value differs, so no
//!   audit event is written for an unchanged row.
//! - Rows are written in batches of [`BATCH`] through `unnest` arrays: one statement per batch
//!   per table, with the audit and search triggers still firing for every row.

use std::collections::HashMap;

use proplink_domain::import::{
    BuildingRow, ContactRow, Holder, LeaseRow, LineError, ParsedImport, SiteRow, UnitRow,
};
use sqlx::types::time::Date;
use uuid::Uuid;

use crate::portfolio::floor_position;
use crate::{DbError, TenantTx};

/// Rows written per statement.
pub const BATCH: usize = 5_000;

/// What an import did (or, in a preview, would do).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Lines that refer to records that do not exist, or clash with what is stored.
    #[error("{} line(s) need fixing", .0.len())]
    Lines(Vec<LineError>),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for ApplyError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(DbError::from(e))
    }
}

/// Writes every row of a clean file. `progress` is told how many rows are done after each
/// batch. Nothing is committed here: the caller commits the transaction, or drops it.
pub async fn apply(
    tx: &mut TenantTx,
    parsed: &ParsedImport,
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<Outcome, ApplyError> {
    let outcome = write(tx, parsed, progress).await?;
    // After a large import the planner's statistics still describe the tables as they were, and
    // the next import's lookups by reference were planned as scans of a near-empty table (a
    // statement timeout on 150,000 contacts). Refreshing them costs well under a second.
    if outcome.created + outcome.updated >= REFRESH_STATISTICS_AFTER {
        let tables: &[&str] = match parsed {
            ParsedImport::Sites(_) => &["site", "estate"],
            ParsedImport::Buildings(_) => &["building", "floor"],
            ParsedImport::Units(_) => &["unit", "floor"],
            ParsedImport::Contacts(_) => {
                &["contact", "contact_email", "contact_phone", "contact_role"]
            }
            ParsedImport::Leases(_) => &["lease", "lease_holder", "contact_role"],
        };
        sqlx::query("select proplink.refresh_statistics($1)")
            .bind(tables)
            .execute(tx.conn())
            .await?;
    }
    Ok(outcome)
}

/// Rows written by one import above which the planner's statistics are refreshed.
const REFRESH_STATISTICS_AFTER: usize = 1_000;

async fn write(
    tx: &mut TenantTx,
    parsed: &ParsedImport,
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<Outcome, ApplyError> {
    if !parsed.errors().is_empty() {
        return Err(ApplyError::Lines(parsed.errors().to_vec()));
    }
    match parsed {
        ParsedImport::Sites(f) => sites(tx, &f.rows, progress).await,
        ParsedImport::Buildings(f) => buildings(tx, &f.rows, progress).await,
        ParsedImport::Units(f) => units(tx, &f.rows, progress).await,
        ParsedImport::Contacts(f) => contacts(tx, &f.rows, progress).await,
        ParsedImport::Leases(f) => leases(tx, &f.rows, progress).await,
    }
}

/// Applies the file inside a savepoint and rolls it back: the exact counts and any line
/// errors, with nothing kept.
pub async fn preview(tx: &mut TenantTx, parsed: &ParsedImport) -> Result<Outcome, ApplyError> {
    sqlx::query("savepoint import_preview")
        .execute(tx.conn())
        .await?;
    let result = write(tx, parsed, &mut |_| {}).await;
    sqlx::query("rollback to savepoint import_preview")
        .execute(tx.conn())
        .await?;
    result
}

fn line_error(line: usize, column: &'static str, message: String) -> LineError {
    LineError {
        line,
        column: Some(column),
        message,
    }
}

/// Site references (lower case) → (id, estate).
async fn site_ids(
    tx: &mut TenantTx,
    references: &[String],
) -> Result<HashMap<String, Uuid>, DbError> {
    let lowered: Vec<String> = references.iter().map(|r| r.to_lowercase()).collect();
    let rows: Vec<(String, Uuid)> = sqlx::query_as(
        "select x.r, s.id from (select distinct unnest($2::text[]) as r) x
           join site s on s.organisation_id = $1 and lower(s.reference) = x.r",
    )
    .bind(tx.org().0)
    .bind(&lowered)
    .fetch_all(tx.conn())
    .await?;
    Ok(rows.into_iter().collect())
}

// Lookups by a list of keys join the list (`unnest`) rather than test `= any($2)`: a prepared
// statement's generic plan compares each row with every element of an array parameter, which
// at 5,000 keys against 100,000 rows ran past the statement timeout. Contacts are matched on
// their stored lower-case keys (`reference_key`, `email_key`), which row-level security lets
// the index serve (see migration 0013).

/// Live (unmerged) contacts by lower-case reference.
async fn contacts_by_reference(
    tx: &mut TenantTx,
    references: &[String],
) -> Result<HashMap<String, Uuid>, DbError> {
    let rows: Vec<(String, Uuid)> = sqlx::query_as(
        "select x.r, c.id from (select distinct unnest($2::text[]) as r) x
           join contact c on c.organisation_id = $1 and c.reference_key = x.r
          where c.merged_into_id is null",
    )
    .bind(tx.org().0)
    .bind(references)
    .fetch_all(tx.conn())
    .await?;
    Ok(rows.into_iter().collect())
}

/// Live contacts by lower-case e-mail; where two share an address, the older one.
async fn contacts_by_first_match_email(
    tx: &mut TenantTx,
    emails: &[String],
) -> Result<HashMap<String, Uuid>, DbError> {
    let rows: Vec<(String, Uuid)> = sqlx::query_as(
        "select distinct on (x.r) x.r, e.contact_id
           from (select distinct unnest($2::text[]) as r) x
           join contact_email e on e.organisation_id = $1 and e.email_key = x.r
           join contact c on c.organisation_id = e.organisation_id and c.id = e.contact_id
          where c.merged_into_id is null
          order by x.r, c.created_at",
    )
    .bind(tx.org().0)
    .bind(emails)
    .fetch_all(tx.conn())
    .await?;
    Ok(rows.into_iter().collect())
}

fn count(created: &[bool], total: usize) -> Outcome {
    let made = created.iter().filter(|c| **c).count();
    let updated = created.len() - made;
    Outcome {
        created: made,
        updated,
        unchanged: total - created.len(),
    }
}

fn add(a: Outcome, b: Outcome) -> Outcome {
    Outcome {
        created: a.created + b.created,
        updated: a.updated + b.updated,
        unchanged: a.unchanged + b.unchanged,
    }
}

// ---------------------------------------------------------------------------------------------

async fn sites(
    tx: &mut TenantTx,
    rows: &[SiteRow],
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<Outcome, ApplyError> {
    let estate_refs: Vec<String> = rows
        .iter()
        .filter_map(|r| r.estate_reference.as_ref().map(|e| e.to_lowercase()))
        .collect();
    let estates: HashMap<String, Uuid> = sqlx::query_as::<_, (String, Uuid)>(
        "select x.r, e.id from (select distinct unnest($2::text[]) as r) x
           join estate e on e.organisation_id = $1 and lower(e.reference) = x.r",
    )
    .bind(tx.org().0)
    .bind(&estate_refs)
    .fetch_all(tx.conn())
    .await?
    .into_iter()
    .collect();
    let mut errors = Vec::new();
    for r in rows {
        if let Some(e) = &r.estate_reference
            && !estates.contains_key(&e.to_lowercase())
        {
            errors.push(line_error(
                r.line,
                "estate_reference",
                format!("There is no estate with the reference {e}. Create it first, or leave this blank."),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApplyError::Lines(errors));
    }
    let mut outcome = Outcome::default();
    let mut done = 0;
    for chunk in rows.chunks(BATCH) {
        let col = |f: &dyn Fn(&SiteRow) -> Option<String>| -> Vec<Option<String>> {
            chunk.iter().map(f).collect()
        };
        let ids: Vec<Uuid> = chunk.iter().map(|_| Uuid::now_v7()).collect();
        let estate_ids: Vec<Option<Uuid>> = chunk
            .iter()
            .map(|r| {
                r.estate_reference
                    .as_ref()
                    .and_then(|e| estates.get(&e.to_lowercase()).copied())
            })
            .collect();
        let created: Vec<bool> = sqlx::query_scalar(
            "insert into site (organisation_id, id, reference, name, address_line_1, address_line_2,
                               city, postcode, estate_id, landlord_name, landlord_address_line_1,
                               landlord_address_line_2, landlord_city, landlord_postcode)
             select $1, x.* from unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                                        $7::text[], $8::text[], $9::uuid[], $10::text[], $11::text[],
                                        $12::text[], $13::text[], $14::text[]) as x
             on conflict (organisation_id, lower(reference)) do update
                set name = excluded.name, address_line_1 = excluded.address_line_1,
                    address_line_2 = excluded.address_line_2, city = excluded.city,
                    postcode = excluded.postcode, estate_id = excluded.estate_id,
                    landlord_name = coalesce(excluded.landlord_name, site.landlord_name),
                    landlord_address_line_1 = coalesce(excluded.landlord_address_line_1, site.landlord_address_line_1),
                    landlord_address_line_2 = case when excluded.landlord_name is null then site.landlord_address_line_2
                                                   else excluded.landlord_address_line_2 end,
                    landlord_city = case when excluded.landlord_name is null then site.landlord_city
                                         else excluded.landlord_city end,
                    landlord_postcode = coalesce(excluded.landlord_postcode, site.landlord_postcode),
                    updated_at = now()
              where (site.name, site.address_line_1, site.address_line_2, site.city, site.postcode,
                     site.estate_id)
                    is distinct from
                    (excluded.name, excluded.address_line_1, excluded.address_line_2, excluded.city,
                     excluded.postcode, excluded.estate_id)
                 or (excluded.landlord_name is not null
                     and (site.landlord_name, site.landlord_address_line_1, site.landlord_address_line_2,
                          site.landlord_city, site.landlord_postcode)
                         is distinct from
                         (excluded.landlord_name, excluded.landlord_address_line_1,
                          excluded.landlord_address_line_2, excluded.landlord_city,
                          excluded.landlord_postcode))
             returning xmax = 0",
        )
        .bind(tx.org().0)
        .bind(&ids)
        .bind(col(&|r| Some(r.reference.clone())))
        .bind(col(&|r| Some(r.name.clone())))
        .bind(col(&|r| Some(r.address_line_1.clone())))
        .bind(col(&|r| r.address_line_2.clone()))
        .bind(col(&|r| Some(r.city.clone())))
        .bind(col(&|r| Some(r.postcode.as_str().to_owned())))
        .bind(&estate_ids)
        .bind(col(&|r| r.landlord.as_ref().map(|l| l.name.clone())))
        .bind(col(&|r| r.landlord.as_ref().map(|l| l.address_line_1.clone())))
        .bind(col(&|r| r.landlord.as_ref().and_then(|l| l.address_line_2.clone())))
        .bind(col(&|r| r.landlord.as_ref().and_then(|l| l.city.clone())))
        .bind(col(&|r| r.landlord.as_ref().map(|l| l.postcode.as_str().to_owned())))
        .fetch_all(tx.conn())
        .await?;
        outcome = add(outcome, count(&created, chunk.len()));
        done += chunk.len();
        progress(done);
    }
    Ok(outcome)
}

// ---------------------------------------------------------------------------------------------

fn missing_site(line: usize, reference: &str) -> LineError {
    line_error(
        line,
        "site_reference",
        format!(
            "There is no site with the reference {reference}. Import or create the site first."
        ),
    )
}

async fn buildings(
    tx: &mut TenantTx,
    rows: &[BuildingRow],
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<Outcome, ApplyError> {
    let refs: Vec<String> = rows.iter().map(|r| r.site_reference.clone()).collect();
    let sites = site_ids(tx, &refs).await?;
    let errors: Vec<LineError> = rows
        .iter()
        .filter(|r| !sites.contains_key(&r.site_reference.to_lowercase()))
        .map(|r| missing_site(r.line, &r.site_reference))
        .collect();
    if !errors.is_empty() {
        return Err(ApplyError::Lines(errors));
    }
    let mut outcome = Outcome::default();
    let mut done = 0;
    for chunk in rows.chunks(BATCH) {
        let ids: Vec<Uuid> = chunk.iter().map(|_| Uuid::now_v7()).collect();
        let site: Vec<Uuid> = chunk
            .iter()
            .map(|r| {
                sites
                    .get(&r.site_reference.to_lowercase())
                    .copied()
                    .unwrap_or_default()
            })
            .collect();
        let reference: Vec<&str> = chunk.iter().map(|r| r.reference.as_str()).collect();
        let name: Vec<&str> = chunk.iter().map(|r| r.name.as_str()).collect();
        let height: Vec<Option<i32>> = chunk.iter().map(|r| r.facts.height_cm).collect();
        let storeys: Vec<Option<i32>> = chunk.iter().map(|r| r.facts.storeys).collect();
        let residential: Vec<Option<i32>> =
            chunk.iter().map(|r| r.facts.residential_units).collect();
        let year: Vec<Option<i32>> = chunk.iter().map(|r| r.build_year).collect();
        let construction: Vec<Option<&str>> = chunk
            .iter()
            .map(|r| r.construction_type.map(|c| c.key()))
            .collect();
        let hrb: Vec<Option<bool>> = chunk
            .iter()
            .map(|r| r.hrb_override.as_ref().map(|o| o.is_hrb))
            .collect();
        let reason: Vec<Option<&str>> = chunk
            .iter()
            .map(|r| r.hrb_override.as_ref().map(|o| o.reason.as_str()))
            .collect();
        let created: Vec<bool> = sqlx::query_scalar(
            "insert into building (organisation_id, id, site_id, reference, name, height_cm, storeys,
                                   residential_units, build_year, construction_type, hrb_override,
                                   hrb_override_reason)
             select $1, x.* from unnest($2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::int[],
                                        $7::int[], $8::int[], $9::int[], $10::text[], $11::bool[],
                                        $12::text[]) as x
             on conflict (organisation_id, site_id, lower(reference)) do update
                set name = excluded.name, height_cm = excluded.height_cm, storeys = excluded.storeys,
                    residential_units = excluded.residential_units, build_year = excluded.build_year,
                    construction_type = excluded.construction_type,
                    hrb_override = excluded.hrb_override,
                    hrb_override_reason = excluded.hrb_override_reason, updated_at = now()
              where (building.name, building.height_cm, building.storeys, building.residential_units,
                     building.build_year, building.construction_type, building.hrb_override,
                     building.hrb_override_reason)
                    is distinct from
                    (excluded.name, excluded.height_cm, excluded.storeys, excluded.residential_units,
                     excluded.build_year, excluded.construction_type, excluded.hrb_override,
                     excluded.hrb_override_reason)
             returning xmax = 0",
        )
        .bind(tx.org().0)
        .bind(&ids)
        .bind(&site)
        .bind(&reference)
        .bind(&name)
        .bind(&height)
        .bind(&storeys)
        .bind(&residential)
        .bind(&year)
        .bind(&construction)
        .bind(&hrb)
        .bind(&reason)
        .fetch_all(tx.conn())
        .await?;
        outcome = add(outcome, count(&created, chunk.len()));
        done += chunk.len();
        progress(done);
    }
    Ok(outcome)
}

// ---------------------------------------------------------------------------------------------

async fn units(
    tx: &mut TenantTx,
    rows: &[UnitRow],
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<Outcome, ApplyError> {
    let org = tx.org().0;
    let refs: Vec<String> = rows.iter().map(|r| r.site_reference.clone()).collect();
    let sites = site_ids(tx, &refs).await?;
    let site_list: Vec<Uuid> = sites.values().copied().collect();
    let buildings: HashMap<(Uuid, String), Uuid> = sqlx::query_as::<_, (Uuid, String, Uuid)>(
        "select b.site_id, lower(b.reference), b.id from unnest($2::uuid[]) x(site_id)
           join building b on b.organisation_id = $1 and b.site_id = x.site_id",
    )
    .bind(org)
    .bind(&site_list)
    .fetch_all(tx.conn())
    .await?
    .into_iter()
    .map(|(s, r, id)| ((s, r), id))
    .collect();
    let mut errors = Vec::new();
    // (site, building) per row, resolved.
    let mut placed: Vec<(Uuid, Option<Uuid>)> = Vec::with_capacity(rows.len());
    for r in rows {
        let Some(site) = sites.get(&r.site_reference.to_lowercase()).copied() else {
            errors.push(missing_site(r.line, &r.site_reference));
            continue;
        };
        let building = match &r.building_reference {
            None => None,
            Some(b) => match buildings.get(&(site, b.to_lowercase())) {
                Some(id) => Some(*id),
                None => {
                    errors.push(line_error(
                        r.line,
                        "building_reference",
                        format!(
                            "Site {} has no building with the reference {b}. Import the building first.",
                            r.site_reference
                        ),
                    ));
                    continue;
                }
            },
        };
        if r.floor.is_some() && building.is_none() {
            errors.push(line_error(
                r.line,
                "floor",
                "A floor needs a building: fill in building_reference too.".into(),
            ));
            continue;
        }
        placed.push((site, building));
    }
    if !errors.is_empty() {
        return Err(ApplyError::Lines(errors));
    }

    // Floors named in the file, made where missing.
    let mut wanted: HashMap<(Uuid, String), String> = HashMap::new();
    for (r, (_, building)) in rows.iter().zip(&placed) {
        if let (Some(floor), Some(building)) = (&r.floor, building) {
            wanted
                .entry((*building, floor.trim().to_lowercase()))
                .or_insert_with(|| floor.trim().to_owned());
        }
    }
    let mut floors: HashMap<(Uuid, String), Uuid> = HashMap::new();
    if !wanted.is_empty() {
        let (keys, names): (Vec<_>, Vec<_>) = wanted.into_iter().unzip();
        let building_ids: Vec<Uuid> = keys.iter().map(|(b, _)| *b).collect();
        let positions: Vec<i32> = names.iter().map(|n| floor_position(n)).collect();
        let ids: Vec<Uuid> = names.iter().map(|_| Uuid::now_v7()).collect();
        sqlx::query(
            "insert into floor (organisation_id, id, building_id, name, position)
             select $1, x.* from unnest($2::uuid[], $3::uuid[], $4::text[], $5::int[]) as x
             on conflict (organisation_id, building_id, lower(name)) do nothing",
        )
        .bind(org)
        .bind(&ids)
        .bind(&building_ids)
        .bind(&names)
        .bind(&positions)
        .execute(tx.conn())
        .await?;
        let mut distinct = building_ids.clone();
        distinct.sort();
        distinct.dedup();
        floors = sqlx::query_as::<_, (Uuid, String, Uuid)>(
            "select f.building_id, lower(f.name), f.id from unnest($2::uuid[]) x(building_id)
               join floor f on f.organisation_id = $1 and f.building_id = x.building_id",
        )
        .bind(org)
        .bind(&distinct)
        .fetch_all(tx.conn())
        .await?
        .into_iter()
        .map(|(b, n, id)| ((b, n), id))
        .collect();
    }

    let mut outcome = Outcome::default();
    let mut done = 0;
    for (chunk, places) in rows.chunks(BATCH).zip(placed.chunks(BATCH)) {
        let ids: Vec<Uuid> = chunk.iter().map(|_| Uuid::now_v7()).collect();
        let site: Vec<Uuid> = places.iter().map(|(s, _)| *s).collect();
        let building: Vec<Option<Uuid>> = places.iter().map(|(_, b)| *b).collect();
        let floor: Vec<Option<Uuid>> = chunk
            .iter()
            .zip(places)
            .map(|(r, (_, b))| {
                let b = (*b)?;
                let name = r.floor.as_ref()?.trim().to_lowercase();
                floors.get(&(b, name)).copied()
            })
            .collect();
        let reference: Vec<&str> = chunk.iter().map(|r| r.reference.as_str()).collect();
        let name: Vec<&str> = chunk.iter().map(|r| r.name.as_str()).collect();
        let unit_type: Vec<&str> = chunk.iter().map(|r| r.unit_type.key()).collect();
        let line_1: Vec<Option<&str>> = chunk.iter().map(|r| r.address_line_1.as_deref()).collect();
        let line_2: Vec<Option<&str>> = chunk.iter().map(|r| r.address_line_2.as_deref()).collect();
        let city: Vec<Option<&str>> = chunk.iter().map(|r| r.city.as_deref()).collect();
        let postcode: Vec<Option<&str>> = chunk
            .iter()
            .map(|r| r.postcode.as_ref().map(|p| p.as_str()))
            .collect();
        let uprn: Vec<Option<String>> = chunk
            .iter()
            .map(|r| r.uprn.map(|u| u.get().to_string()))
            .collect();
        let area: Vec<Option<i64>> = chunk.iter().map(|r| r.square_metres_hundredths).collect();
        let parking: Vec<Option<i32>> = chunk.iter().map(|r| r.parking_spaces).collect();
        let created: Vec<bool> = sqlx::query_scalar(
            "insert into unit (organisation_id, id, site_id, building_id, floor_id, reference, name,
                               unit_type, address_line_1, address_line_2, city, postcode, uprn,
                               area_cm2, parking_spaces)
             select $1, x.* from unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::text[],
                                        $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
                                        $12::text[], $13::text[], $14::int8[], $15::int[]) as x
             on conflict (organisation_id, site_id, lower(reference)) do update
                set building_id = excluded.building_id, floor_id = excluded.floor_id,
                    name = excluded.name, unit_type = excluded.unit_type,
                    address_line_1 = excluded.address_line_1, address_line_2 = excluded.address_line_2,
                    city = excluded.city, postcode = excluded.postcode, uprn = excluded.uprn,
                    area_cm2 = excluded.area_cm2, parking_spaces = excluded.parking_spaces,
                    updated_at = now()
              where (unit.building_id, unit.floor_id, unit.name, unit.unit_type, unit.address_line_1,
                     unit.address_line_2, unit.city, unit.postcode, unit.uprn, unit.area_cm2,
                     unit.parking_spaces)
                    is distinct from
                    (excluded.building_id, excluded.floor_id, excluded.name, excluded.unit_type,
                     excluded.address_line_1, excluded.address_line_2, excluded.city,
                     excluded.postcode, excluded.uprn, excluded.area_cm2, excluded.parking_spaces)
             returning xmax = 0",
        )
        .bind(org)
        .bind(&ids)
        .bind(&site)
        .bind(&building)
        .bind(&floor)
        .bind(&reference)
        .bind(&name)
        .bind(&unit_type)
        .bind(&line_1)
        .bind(&line_2)
        .bind(&city)
        .bind(&postcode)
        .bind(&uprn)
        .bind(&area)
        .bind(&parking)
        .fetch_all(tx.conn())
        .await?;
        outcome = add(outcome, count(&created, chunk.len()));
        done += chunk.len();
        progress(done);
    }
    Ok(outcome)
}

// ---------------------------------------------------------------------------------------------

async fn contacts(
    tx: &mut TenantTx,
    rows: &[ContactRow],
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<Outcome, ApplyError> {
    let org = tx.org().0;
    // Existing contacts matched on reference, else on their first e-mail.
    let refs: Vec<String> = rows
        .iter()
        .filter_map(|r| r.reference.as_ref().map(|s| s.to_lowercase()))
        .collect();
    let by_reference = contacts_by_reference(tx, &refs).await?;
    let emails: Vec<String> = rows
        .iter()
        .filter(|r| r.reference.is_none())
        .filter_map(|r| r.emails.first().map(|e| e.as_str().to_lowercase()))
        .collect();
    let by_email = contacts_by_first_match_email(tx, &emails).await?;

    let mut outcome = Outcome::default();
    let mut done = 0;
    for chunk in rows.chunks(BATCH) {
        // The batch is indexed for search once, after its three statements (see
        // `proplink.index_contacts`).
        sqlx::query("select set_config('proplink.contact_index', 'batch', true)")
            .execute(tx.conn())
            .await?;
        let ids: Vec<Uuid> = chunk
            .iter()
            .map(|r| match &r.reference {
                Some(reference) => by_reference.get(&reference.to_lowercase()).copied(),
                None => r
                    .emails
                    .first()
                    .and_then(|e| by_email.get(&e.as_str().to_lowercase()).copied()),
            })
            .map(|found| found.unwrap_or_else(Uuid::now_v7))
            .collect();
        let kind: Vec<&str> = chunk.iter().map(|r| r.kind.key()).collect();
        let opt = |f: &dyn Fn(&ContactRow) -> Option<String>| -> Vec<Option<String>> {
            chunk.iter().map(f).collect()
        };
        let display: Vec<String> = chunk.iter().map(|r| r.display_name()).collect();
        let country: Vec<&str> = chunk.iter().map(|r| r.country.as_str()).collect();
        let correspondence: Vec<&str> = chunk.iter().map(|r| r.correspondence.key()).collect();
        let created: Vec<bool> = sqlx::query_scalar(
            "insert into contact (organisation_id, id, kind, reference, title, first_name, last_name,
                                  company_name, display_name, address_line_1, address_line_2, city,
                                  postcode, country, correspondence, notes)
             select $1, x.* from unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                                        $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
                                        $12::text[], $13::text[], $14::text[], $15::text[], $16::text[]) as x
             on conflict (organisation_id, id) do update
                set kind = excluded.kind, reference = coalesce(excluded.reference, contact.reference),
                    title = excluded.title, first_name = excluded.first_name,
                    last_name = excluded.last_name, company_name = excluded.company_name,
                    display_name = excluded.display_name, address_line_1 = excluded.address_line_1,
                    address_line_2 = excluded.address_line_2, city = excluded.city,
                    postcode = excluded.postcode, country = excluded.country,
                    correspondence = excluded.correspondence,
                    notes = coalesce(excluded.notes, contact.notes), updated_at = now()
              where (contact.kind, contact.title, contact.first_name, contact.last_name,
                     contact.company_name, contact.address_line_1, contact.address_line_2,
                     contact.city, contact.postcode, contact.country, contact.correspondence)
                    is distinct from
                    (excluded.kind, excluded.title, excluded.first_name, excluded.last_name,
                     excluded.company_name, excluded.address_line_1, excluded.address_line_2,
                     excluded.city, excluded.postcode, excluded.country, excluded.correspondence)
                 or (excluded.notes is not null and excluded.notes is distinct from contact.notes)
                 or (excluded.reference is not null and contact.reference is null)
             returning xmax = 0",
        )
        .bind(org)
        .bind(&ids)
        .bind(&kind)
        .bind(opt(&|r| r.reference.clone()))
        .bind(opt(&|r| r.title.clone()))
        .bind(opt(&|r| r.first_name.clone()))
        .bind(opt(&|r| r.last_name.clone()))
        .bind(opt(&|r| r.company_name.clone()))
        .bind(&display)
        .bind(opt(&|r| r.address_line_1.clone()))
        .bind(opt(&|r| r.address_line_2.clone()))
        .bind(opt(&|r| r.city.clone()))
        .bind(opt(&|r| r.postcode.clone()))
        .bind(&country)
        .bind(&correspondence)
        .bind(opt(&|r| r.notes.clone()))
        .fetch_all(tx.conn())
        .await?;
        // E-mails, phones and roles: added when new (an import never removes them).
        let mut owner = Vec::new();
        let mut email = Vec::new();
        let mut position = Vec::new();
        for (id, r) in ids.iter().zip(chunk) {
            for (i, e) in r.emails.iter().enumerate() {
                owner.push(*id);
                email.push(e.as_str().to_owned());
                position.push(i as i16);
            }
        }
        sqlx::query(
            "insert into contact_email (organisation_id, id, contact_id, email, position)
             select $1, gen_random_uuid(), x.* from unnest($2::uuid[], $3::text[], $4::int2[]) as x
             on conflict (organisation_id, contact_id, lower(email)) do nothing",
        )
        .bind(org)
        .bind(&owner)
        .bind(&email)
        .bind(&position)
        .execute(tx.conn())
        .await?;
        let (mut owner, mut phone, mut position) = (Vec::new(), Vec::new(), Vec::new());
        for (id, r) in ids.iter().zip(chunk) {
            for (i, p) in r.phones.iter().enumerate() {
                owner.push(*id);
                phone.push(p.as_str().to_owned());
                position.push(i as i16);
            }
        }
        sqlx::query(
            "insert into contact_phone (organisation_id, id, contact_id, phone, position)
             select $1, gen_random_uuid(), x.* from unnest($2::uuid[], $3::text[], $4::int2[]) as x
             on conflict (organisation_id, contact_id, phone) do nothing",
        )
        .bind(org)
        .bind(&owner)
        .bind(&phone)
        .bind(&position)
        .execute(tx.conn())
        .await?;
        let (mut owner, mut role) = (Vec::new(), Vec::new());
        for (id, r) in ids.iter().zip(chunk) {
            for x in &r.roles {
                owner.push(*id);
                role.push(x.key());
            }
        }
        sqlx::query(
            "insert into contact_role (organisation_id, id, contact_id, role)
             select $1, gen_random_uuid(), x.* from unnest($2::uuid[], $3::text[]) as x
             on conflict (organisation_id, contact_id, role) do nothing",
        )
        .bind(org)
        .bind(&owner)
        .bind(&role)
        .execute(tx.conn())
        .await?;
        sqlx::query(
            "select set_config('proplink.contact_index', '', true), proplink.index_contact_ids($1)",
        )
        .bind(&ids)
        .execute(tx.conn())
        .await?;
        outcome = add(outcome, count(&created, chunk.len()));
        done += chunk.len();
        progress(done);
    }
    Ok(outcome)
}

// ---------------------------------------------------------------------------------------------

/// The file's end date is the last day the holders held the lease; a stored lease ends on the
/// day the next one may start.
fn exclusive_end(row: &LeaseRow) -> Option<Date> {
    row.end_date.and_then(|d| d.next_day())
}

async fn leases(
    tx: &mut TenantTx,
    rows: &[LeaseRow],
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<Outcome, ApplyError> {
    let org = tx.org().0;
    let refs: Vec<String> = rows.iter().map(|r| r.site_reference.clone()).collect();
    let sites = site_ids(tx, &refs).await?;
    let site_list: Vec<Uuid> = sites.values().copied().collect();
    let units: HashMap<(Uuid, String), Uuid> = sqlx::query_as::<_, (Uuid, String, Uuid)>(
        "select u.site_id, lower(u.reference), u.id from unnest($2::uuid[]) x(site_id)
           join unit u on u.organisation_id = $1 and u.site_id = x.site_id",
    )
    .bind(org)
    .bind(&site_list)
    .fetch_all(tx.conn())
    .await?
    .into_iter()
    .map(|(s, r, id)| ((s, r), id))
    .collect();
    let mut holder_refs = Vec::new();
    let mut holder_emails = Vec::new();
    for r in rows {
        for h in &r.holders {
            match h {
                Holder::Reference(x) => holder_refs.push(x.to_lowercase()),
                Holder::Email(e) => holder_emails.push(e.as_str().to_lowercase()),
            }
        }
    }
    let by_reference = contacts_by_reference(tx, &holder_refs).await?;
    let by_email = contacts_by_first_match_email(tx, &holder_emails).await?;

    let mut errors = Vec::new();
    let mut resolved: Vec<(Uuid, Vec<Uuid>)> = Vec::with_capacity(rows.len());
    for r in rows {
        let Some(site) = sites.get(&r.site_reference.to_lowercase()).copied() else {
            errors.push(missing_site(r.line, &r.site_reference));
            continue;
        };
        let Some(unit) = units.get(&(site, r.unit_reference.to_lowercase())).copied() else {
            errors.push(line_error(
                r.line,
                "unit_reference",
                format!(
                    "Site {} has no unit with the reference {}. Import the unit first.",
                    r.site_reference, r.unit_reference
                ),
            ));
            continue;
        };
        let mut holders = Vec::new();
        for h in &r.holders {
            let found = match h {
                Holder::Reference(x) => by_reference.get(&x.to_lowercase()),
                Holder::Email(e) => by_email.get(&e.as_str().to_lowercase()),
            };
            match found {
                Some(id) if !holders.contains(id) => holders.push(*id),
                Some(_) => {}
                None => errors.push(line_error(
                    r.line,
                    "holders",
                    format!(
                        "No contact has the {} {}. Import the contacts first.",
                        match h {
                            Holder::Reference(_) => "reference",
                            Holder::Email(_) => "e-mail address",
                        },
                        match h {
                            Holder::Reference(x) => x.clone(),
                            Holder::Email(e) => e.as_str().to_owned(),
                        }
                    ),
                )),
            }
        }
        resolved.push((unit, holders));
    }
    if !errors.is_empty() {
        return Err(ApplyError::Lines(errors));
    }

    // Leases already stored that a row would overlap (other than the row's own lease, which
    // matches on unit and start date).
    let unit_ids: Vec<Uuid> = resolved.iter().map(|(u, _)| *u).collect();
    let starts: Vec<Date> = rows.iter().map(|r| r.start_date).collect();
    let ends: Vec<Option<Date>> = rows.iter().map(exclusive_end).collect();
    let lines: Vec<i32> = rows.iter().map(|r| r.line as i32).collect();
    let clashes: Vec<(i32, Date)> = sqlx::query_as(
        "select x.line, l.starts_on
           from unnest($2::uuid[], $3::date[], $4::date[], $5::int[]) as x(unit, starts, ends, line)
           join lease l on l.organisation_id = $1 and l.unit_id = x.unit
          where l.starts_on <> x.starts
            and daterange(l.starts_on, l.ends_on, '[)') && daterange(x.starts, x.ends, '[)')
          order by x.line",
    )
    .bind(org)
    .bind(&unit_ids)
    .bind(&starts)
    .bind(&ends)
    .bind(&lines)
    .fetch_all(tx.conn())
    .await?;
    if !clashes.is_empty() {
        return Err(ApplyError::Lines(
            clashes
                .into_iter()
                .map(|(line, other)| {
                    line_error(
                        line as usize,
                        "start_date",
                        format!(
                            "These dates overlap the lease of this unit that starts on {}. End that lease first (give it an end date), or correct the dates.",
                            proplink_domain::dates::long_date(other)
                        ),
                    )
                })
                .collect(),
        ));
    }

    let mut outcome = Outcome::default();
    let mut done = 0;
    for (chunk, places) in rows.chunks(BATCH).zip(resolved.chunks(BATCH)) {
        let ids: Vec<Uuid> = chunk.iter().map(|_| Uuid::now_v7()).collect();
        let unit: Vec<Uuid> = places.iter().map(|(u, _)| *u).collect();
        let start: Vec<Date> = chunk.iter().map(|r| r.start_date).collect();
        let end: Vec<Option<Date>> = chunk.iter().map(exclusive_end).collect();
        let term: Vec<Option<i32>> = chunk.iter().map(|r| r.term_years).collect();
        let rent: Vec<Option<i64>> = chunk.iter().map(|r| r.ground_rent_pence).collect();
        let review: Vec<Option<&str>> = chunk
            .iter()
            .map(|r| r.ground_rent_review.as_deref())
            .collect();
        let s48: Vec<Option<Date>> = chunk.iter().map(|r| r.s48_notice_date).collect();
        // Upsert on (unit, start date): no unique index can say that (the exclusion
        // constraint covers it), so match first and insert the rest.
        let written: Vec<(Uuid, bool)> = sqlx::query_as(
            "with x as (
                 select * from unnest($2::uuid[], $3::uuid[], $4::date[], $5::date[], $6::int[],
                                      $7::int8[], $8::text[], $9::date[])
                          as x(id, unit, starts, ends, term, rent, review, s48)
             ), matched as (
                 select x.*, l.id as existing from x
                   left join lease l on l.organisation_id = $1 and l.unit_id = x.unit and l.starts_on = x.starts
             ), changed as (
                 update lease l set ends_on = m.ends, term_years = m.term, ground_rent_pence = m.rent,
                                    ground_rent_review = m.review, s48_notice_on = m.s48
                   from matched m
                  where l.organisation_id = $1 and l.id = m.existing
                    and (l.ends_on, l.term_years, l.ground_rent_pence, l.ground_rent_review, l.s48_notice_on)
                        is distinct from (m.ends, m.term, m.rent, m.review, m.s48)
                 returning l.id, false as created
             ), made as (
                 insert into lease (organisation_id, id, unit_id, starts_on, ends_on, term_years,
                                    ground_rent_pence, ground_rent_review, s48_notice_on)
                 select $1, m.id, m.unit, m.starts, m.ends, m.term, m.rent, m.review, m.s48
                   from matched m where m.existing is null
                 returning id, true as created
             )
             select * from changed union all select * from made",
        )
        .bind(org)
        .bind(&ids)
        .bind(&unit)
        .bind(&start)
        .bind(&end)
        .bind(&term)
        .bind(&rent)
        .bind(&review)
        .bind(&s48)
        .fetch_all(tx.conn())
        .await
        .map_err(|e| match DbError::from(e) {
            DbError::Duplicate { constraint } if constraint == "lease_no_overlap" => {
                DbError::Invalid {
                    constraint: "two leases in the file overlap on one unit".into(),
                }
            }
            other => other,
        })?;
        let created: Vec<bool> = written.iter().map(|(_, c)| *c).collect();
        // Holders of the new leases, in the file's order.
        let made: std::collections::HashSet<Uuid> = written
            .iter()
            .filter(|(_, c)| *c)
            .map(|(id, _)| *id)
            .collect();
        let (mut lease, mut holder, mut position) = (Vec::new(), Vec::new(), Vec::new());
        for (id, (_, holders)) in ids.iter().zip(places) {
            if made.contains(id) {
                for (i, h) in holders.iter().enumerate() {
                    lease.push(*id);
                    holder.push(*h);
                    position.push(i as i16);
                }
            }
        }
        sqlx::query(
            "insert into lease_holder (organisation_id, id, lease_id, contact_id, position)
             select $1, gen_random_uuid(), x.* from unnest($2::uuid[], $3::uuid[], $4::int2[]) as x",
        )
        .bind(org)
        .bind(&lease)
        .bind(&holder)
        .bind(&position)
        .execute(tx.conn())
        .await?;
        sqlx::query(
            "insert into contact_role (organisation_id, id, contact_id, role)
             select distinct on (c) $1, gen_random_uuid(), c, 'leaseholder' from unnest($2::uuid[]) c
             on conflict (organisation_id, contact_id, role) do nothing",
        )
        .bind(org)
        .bind(&holder)
        .execute(tx.conn())
        .await?;
        outcome = add(outcome, count(&created, chunk.len()));
        done += chunk.len();
        progress(done);
    }
    Ok(outcome)
}

// ---------------------------------------------------------------------------------------------
// Import runs: the uploaded file from preview to outcome, and the job that commits large ones.

/// Files with more rows than this are committed by the worker, with progress shown, instead of
/// during the request.
pub const INLINE_ROWS: usize = 2_000;

/// The job that commits an import run (payload `{"run_id": …}`).
pub const COMMIT_JOB: &str = "import.commit";

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ImportRun {
    pub id: Uuid,
    pub kind: String,
    pub file_name: String,
    pub row_count: i32,
    /// previewed | queued | committed | failed | cancelled. A queued run stays queued while the
    /// worker commits it (`processed_rows` counts up); `running` is allowed by the schema but unused.
    pub status: String,
    pub created_count: i32,
    pub updated_count: i32,
    pub unchanged_count: i32,
    pub processed_rows: i32,
    pub error: Option<String>,
    pub created_by: String,
    pub created_at: sqlx::types::time::OffsetDateTime,
    pub finished_at: Option<sqlx::types::time::OffsetDateTime>,
}

const RUN_COLUMNS: &str = "id, kind, file_name, row_count, status, created_count, updated_count,
    unchanged_count, processed_rows, error, created_by, created_at, finished_at";

/// Keeps an uploaded file for its preview and commit.
pub async fn record_run(
    tx: &mut TenantTx,
    kind: proplink_domain::import::ImportKind,
    file_name: &str,
    bytes: &[u8],
    row_count: usize,
    created_by: &str,
) -> Result<Uuid, DbError> {
    let id = Uuid::now_v7();
    let name: String = file_name.chars().take(255).collect();
    sqlx::query(
        "insert into import_run (organisation_id, id, kind, file_name, file_bytes, row_count, created_by)
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(kind.key())
    .bind(if name.trim().is_empty() { "upload.csv".to_owned() } else { name })
    .bind(bytes)
    .bind(i32::try_from(row_count).unwrap_or(i32::MAX))
    .bind(created_by)
    .execute(tx.conn())
    .await?;
    Ok(id)
}

pub async fn run(tx: &mut TenantTx, id: Uuid) -> Result<Option<ImportRun>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {RUN_COLUMNS} from import_run where organisation_id = $1 and id = $2"
    )))
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

pub async fn recent_runs(tx: &mut TenantTx, limit: i64) -> Result<Vec<ImportRun>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {RUN_COLUMNS} from import_run where organisation_id = $1
          order by created_at desc limit $2"
    )))
    .bind(tx.org().0)
    .bind(limit)
    .fetch_all(tx.conn())
    .await?)
}

/// The file as it was uploaded: its name and bytes.
pub async fn original_file(
    tx: &mut TenantTx,
    id: Uuid,
) -> Result<Option<(String, Vec<u8>)>, DbError> {
    Ok(sqlx::query_as(
        "select file_name, file_bytes from import_run where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

/// The run's kind, file and status, the row held against a second confirmation.
async fn run_file(
    tx: &mut TenantTx,
    id: Uuid,
) -> Result<Option<(String, Vec<u8>, String)>, DbError> {
    Ok(sqlx::query_as(
        "select kind, file_bytes, status from import_run where organisation_id = $1 and id = $2
            for update",
    )
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

/// The same, without the lock: the worker's progress writer updates the row meanwhile.
async fn run_file_unlocked(
    tx: &mut TenantTx,
    id: Uuid,
) -> Result<Option<(String, Vec<u8>, String)>, DbError> {
    Ok(sqlx::query_as(
        "select kind, file_bytes, status from import_run where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

/// Records how a run ended (in the caller's transaction, with the rows it wrote).
pub async fn finish_run(
    tx: &mut TenantTx,
    id: Uuid,
    result: &Result<Outcome, String>,
) -> Result<(), DbError> {
    let (status, outcome, error) = match result {
        Ok(o) => ("committed", *o, None),
        Err(e) => ("failed", Outcome::default(), Some(e.as_str())),
    };
    sqlx::query(
        "update import_run set status = $3, created_count = $4, updated_count = $5,
                unchanged_count = $6, error = $7, finished_at = now(),
                processed_rows = case when $3 = 'committed' then row_count else processed_rows end
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(status)
    .bind(outcome.created as i32)
    .bind(outcome.updated as i32)
    .bind(outcome.unchanged as i32)
    .bind(error)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Why a run could not be started.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("This import was already confirmed or cancelled.")]
    NotPending,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Confirms a previewed run: a small file is committed now, in `tx`; a large one is queued for
/// the worker (its status then shows progress).
pub async fn confirm(tx: &mut TenantTx, id: Uuid) -> Result<ImportRun, RunError> {
    let Some((kind, bytes, status)) = run_file(tx, id).await? else {
        return Err(RunError::Db(DbError::NotFound));
    };
    if status != "previewed" {
        return Err(RunError::NotPending);
    }
    let parsed = proplink_domain::import::ImportKind::from_key(&kind)
        .ok_or(DbError::NotFound)
        .map(|k| k.parse_file(&bytes));
    let rows = match &parsed {
        Ok(Ok(p)) => p.row_count(),
        _ => 0,
    };
    if rows > INLINE_ROWS {
        sqlx::query(
            "update import_run set status = 'queued' where organisation_id = $1 and id = $2",
        )
        .bind(tx.org().0)
        .bind(id)
        .execute(tx.conn())
        .await
        .map_err(DbError::from)?;
        crate::jobs::enqueue(
            tx,
            crate::jobs::NewJob::new(COMMIT_JOB, serde_json::json!({ "run_id": id }))
                .idempotency_key(format!("import:{id}"))
                .max_attempts(3),
        )
        .await?;
    } else {
        let result = commit_parsed(tx, id, parsed, &mut |_| {}).await?;
        finish_run(tx, id, &result).await?;
    }
    run(tx, id).await?.ok_or(RunError::Db(DbError::NotFound))
}

/// How long after it finished an import can be reverted.
pub const REVERT_DAYS: i64 = 7;

/// Why an import could not be reverted, in words for the run page.
#[derive(Debug, thiserror::Error)]
pub enum RevertError {
    #[error("Only a finished import can be reverted; this one is {0}.")]
    NotCommitted(String),
    #[error("This import finished more than {REVERT_DAYS} days ago and can no longer be reverted.")]
    TooOld,
    #[error(
        "This import was made before imports could be reverted: its changes are not marked. Correct the records by hand or with another import."
    )]
    Unmarked,
    #[error(
        "Records this import wrote have changed since ({0}). Reverting would undo those later changes too, so nothing was reverted."
    )]
    ChangedSince(String),
    #[error(
        "A record this import created is now used by another record ({0}); remove that first. Nothing was reverted."
    )]
    InUse(String),
    #[error(
        "Putting the old values back would clash with records stored since ({0}). Nothing was reverted."
    )]
    Clash(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What a revert undid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reverted {
    pub removed: usize,
    pub restored: usize,
}

/// Undoes a committed import from its audit events (request "import:<run id>"), newest first:
/// records it created are deleted, records it changed get their old values back, records it
/// removed (e-mails replaced by a contact import) come back. All or nothing, refused when any of
/// those records was changed by anything else since; the revert's own writes are audited.
pub async fn revert(tx: &mut TenantTx, id: Uuid) -> Result<Reverted, RevertError> {
    let org = tx.org().0;
    let run: Option<(String, Option<sqlx::types::time::OffsetDateTime>, bool)> = sqlx::query_as(
        "select status, finished_at, finished_at > now() - make_interval(days => $3::int)
           from import_run where organisation_id = $1 and id = $2 for update",
    )
    .bind(org)
    .bind(id)
    .bind(i32::try_from(REVERT_DAYS).unwrap_or(7))
    .fetch_optional(tx.conn())
    .await
    .map_err(DbError::from)?;
    let Some((status, _, recent)) = run else {
        return Err(DbError::NotFound.into());
    };
    if status != "committed" {
        return Err(RevertError::NotCommitted(status));
    }
    if !recent {
        return Err(RevertError::TooOld);
    }
    let request = format!("import:{id}");
    let events: Vec<(i64, String, String, String, serde_json::Value)> = sqlx::query_as(
        "select seq, table_name, record_id, operation, changes from audit_event
          where organisation_id = $1 and request_id = $2 and request_id like 'import:%'
          order by seq desc",
    )
    .bind(org)
    .bind(&request)
    .fetch_all(tx.conn())
    .await
    .map_err(DbError::from)?;
    let (created, updated): (i32, i32) = sqlx::query_as(
        "select created_count, updated_count from import_run where organisation_id = $1 and id = $2",
    )
    .bind(org)
    .bind(id)
    .fetch_one(tx.conn())
    .await
    .map_err(DbError::from)?;
    if events.is_empty() && created + updated > 0 {
        return Err(RevertError::Unmarked);
    }
    // Anything else that wrote to these records after the import.
    let since: Option<String> = sqlx::query_scalar(
        "with mine as (select table_name, record_id, max(seq) as seq from audit_event
                        where organisation_id = $1 and request_id = $2 and request_id like 'import:%'
                        group by 1, 2),
              later as (select distinct m.table_name, m.record_id
                          from mine m
                          join audit_event e on e.organisation_id = $1
                           and e.table_name = m.table_name and e.record_id = m.record_id
                           and e.seq > m.seq)
         select string_agg(table_name || ' ' || record_id, ', ')
           from (select * from later order by 1, 2 limit 5) shown",
    )
    .bind(org)
    .bind(&request)
    .fetch_one(tx.conn())
    .await
    .map_err(DbError::from)?;
    if let Some(records) = since {
        return Err(RevertError::ChangedSince(records));
    }
    let mut outcome = Reverted {
        removed: 0,
        restored: 0,
    };
    for (_, table, record, operation, changes) in &events {
        let undone = sqlx::query("select proplink.undo_event($1, $2, $3, $4)")
            .bind(table)
            .bind(record)
            .bind(operation)
            .bind(changes)
            .execute(tx.conn())
            .await
            .map_err(DbError::from);
        match undone {
            Ok(_) => {}
            Err(DbError::MissingReference { constraint }) => {
                return Err(RevertError::InUse(constraint));
            }
            Err(DbError::Duplicate { constraint }) | Err(DbError::Invalid { constraint }) => {
                return Err(RevertError::Clash(constraint));
            }
            Err(e) => return Err(e.into()),
        }
        if operation == "insert" {
            outcome.removed += 1;
        } else {
            outcome.restored += 1;
        }
    }
    sqlx::query(
        "update import_run set status = 'reverted', reverted_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(org)
    .bind(id)
    .execute(tx.conn())
    .await
    .map_err(DbError::from)?;
    Ok(outcome)
}

/// Marks a previewed run as cancelled (nothing was written).
pub async fn cancel(tx: &mut TenantTx, id: Uuid) -> Result<bool, DbError> {
    let done = sqlx::query(
        "update import_run set status = 'cancelled', finished_at = now()
          where organisation_id = $1 and id = $2 and status = 'previewed'",
    )
    .bind(tx.org().0)
    .bind(id)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Applies a parsed file inside a savepoint: on line errors the rows are undone and the
/// errors returned as text (the run is marked failed; nothing half-imported).
async fn commit_parsed(
    tx: &mut TenantTx,
    run_id: Uuid,
    parsed: Result<Result<ParsedImport, proplink_domain::import::FileError>, DbError>,
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<Result<Outcome, String>, DbError> {
    let parsed = match parsed? {
        Ok(p) => p,
        Err(e) => return Ok(Err(e.to_string())),
    };
    sqlx::query("savepoint import_commit")
        .execute(tx.conn())
        .await?;
    // The import's writes are audited as request "import:<run id>", so a revert finds exactly
    // them; the transaction's own request id is put back afterwards.
    let request: String =
        sqlx::query_scalar("select coalesce(current_setting('app.request_id', true), '')")
            .fetch_one(tx.conn())
            .await?;
    sqlx::query("select set_config('app.request_id', $1, true)")
        .bind(format!("import:{run_id}"))
        .execute(tx.conn())
        .await?;
    let applied = apply(tx, &parsed, progress).await;
    sqlx::query("select set_config('app.request_id', $1, true)")
        .bind(&request)
        .execute(tx.conn())
        .await?;
    match applied {
        Ok(outcome) => Ok(Ok(outcome)),
        Err(ApplyError::Lines(lines)) => {
            sqlx::query("rollback to savepoint import_commit")
                .execute(tx.conn())
                .await?;
            Ok(Err(describe_lines(&lines)))
        }
        Err(ApplyError::Db(DbError::Duplicate { constraint }))
        | Err(ApplyError::Db(DbError::Invalid { constraint }))
        | Err(ApplyError::Db(DbError::MissingReference { constraint })) => {
            sqlx::query("rollback to savepoint import_commit")
                .execute(tx.conn())
                .await?;
            Ok(Err(format!(
                "Nothing was imported: the file clashes with records already stored ({constraint})."
            )))
        }
        Err(ApplyError::Db(e)) => Err(e),
    }
}

/// "Line 4, site_reference: …" for up to 50 lines, and how many more.
pub fn describe_lines(lines: &[LineError]) -> String {
    let mut text =
        String::from("Nothing was imported. Fix these lines and upload the file again:\n");
    for l in lines.iter().take(50) {
        match l.column {
            Some(c) => text.push_str(&format!("Line {}, {c}: {}\n", l.line, l.message)),
            None => text.push_str(&format!("Line {}: {}\n", l.line, l.message)),
        }
    }
    if lines.len() > 50 {
        text.push_str(&format!("… and {} more.\n", lines.len() - 50));
    }
    text
}

/// The worker's side of [`confirm`] for large files. Progress is written by a second
/// transaction after each batch, so the import page can show it while this one runs.
pub struct CommitImportJob {
    pub pool: crate::AppPool,
}

#[async_trait::async_trait]
impl crate::jobs::JobHandler for CommitImportJob {
    async fn run(
        &self,
        tx: &mut TenantTx,
        job: &crate::jobs::Job,
    ) -> Result<(), crate::jobs::JobError> {
        let id: Uuid = job
            .payload
            .get("run_id")
            .and_then(|v| v.as_str())
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| crate::jobs::JobError::permanent("the job names no import run"))?;
        let Some((kind, bytes, status)) = run_file_unlocked(tx, id).await? else {
            return Ok(());
        };
        if status != "queued" && status != "running" {
            return Ok(());
        }
        let parsed = proplink_domain::import::ImportKind::from_key(&kind)
            .ok_or(DbError::NotFound)
            .map(|k| k.parse_file(&bytes));
        // Progress: the callback is synchronous, so counts go through a channel to a task
        // that writes them in its own short transactions.
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<usize>();
        let pool = self.pool.clone();
        let ctx = crate::TenantContext {
            org: tx.org(),
            actor: crate::Actor::system(),
            channel: proplink_domain::Channel::Worker,
            request_id: None,
        };
        let writer = tokio::spawn(async move {
            while let Some(mut done) = receiver.recv().await {
                while let Ok(later) = receiver.try_recv() {
                    done = later;
                }
                let Ok(mut progress) = pool.begin(&ctx).await else {
                    continue;
                };
                // Only the count: a status change is audited, and the audit would wait for
                // the organisation lock the import itself holds until it commits.
                let _ = sqlx::query(
                    "update import_run set processed_rows = $3 where organisation_id = $1 and id = $2",
                )
                .bind(ctx.org.0)
                .bind(id)
                .bind(i32::try_from(done).unwrap_or(i32::MAX))
                .execute(progress.conn())
                .await;
                let _ = progress.commit().await;
            }
        });
        let _ = sender.send(0);
        let result = commit_parsed(tx, id, parsed, &mut |done| {
            let _ = sender.send(done);
        })
        .await;
        drop(sender);
        let _ = writer.await;
        let result = result?;
        finish_run(tx, id, &result).await?;
        Ok(())
    }
}
