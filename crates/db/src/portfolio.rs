//! Estates, sites, buildings, floors, units and spaces (issue 4).
//!
//! Values arrive already parsed (postcodes, references) from `proplink_domain`; this module
//! stores them and answers lists scoped to what a member may see ([`SiteScope`]). The database
//! keeps the structural rules itself: a unit's building is on the unit's site and its floor in
//! that building (composite foreign keys), the higher-risk flag follows the legal test unless
//! overridden with a reason (a generated column), and references are unique per site.

use serde::Serialize;
use sqlx::types::time::OffsetDateTime;
use uuid::Uuid;

use crate::{DbError, TenantTx};

/// The sites a member may see, for list and search queries: everything, or these sites and
/// the sites of these estates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteScope {
    pub all: bool,
    pub sites: Vec<Uuid>,
    pub estates: Vec<Uuid>,
}

impl SiteScope {
    /// Whether a site (in an estate, or none) is within this scope.
    pub fn covers(&self, site: Uuid, estate: Option<Uuid>) -> bool {
        self.all || self.sites.contains(&site) || estate.is_some_and(|e| self.estates.contains(&e))
    }

    pub fn everything() -> Self {
        Self {
            all: true,
            ..Self::default()
        }
    }

    pub fn from_scope(scope: Option<&proplink_domain::permissions::Scope>) -> Self {
        use proplink_domain::permissions::Scope;
        match scope {
            Some(Scope::AllSites) => Self::everything(),
            Some(Scope::Sites(sites)) => Self {
                sites: sites.iter().copied().collect(),
                ..Self::default()
            },
            Some(Scope::Estates(estates)) => Self {
                estates: estates.iter().copied().collect(),
                ..Self::default()
            },
            None => Self::default(),
        }
    }
}

/// A postal address as stored (every part already checked; the postcode normalised).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Address {
    pub line_1: Option<String>,
    pub line_2: Option<String>,
    pub city: Option<String>,
    pub postcode: Option<String>,
}

impl Address {
    /// The address line by line ("1 High Street", "Leeds LS1 1AA"), skipping blanks.
    pub fn lines(&self) -> Vec<String> {
        let town = [self.city.as_deref(), self.postcode.as_deref()]
            .into_iter()
            .flatten()
            .filter(|s| !s.trim().is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        [self.line_1.clone(), self.line_2.clone(), Some(town)]
            .into_iter()
            .flatten()
            .filter(|s| !s.trim().is_empty())
            .collect()
    }

    /// "1 High Street, Leeds LS1 1AA", skipping blanks.
    pub fn one_line(&self) -> String {
        let town = [self.city.as_deref(), self.postcode.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        [
            self.line_1.as_deref(),
            self.line_2.as_deref(),
            Some(town.as_str()),
        ]
        .into_iter()
        .flatten()
        .filter(|s| !s.trim().is_empty())
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// One page of a list, and how many rows match in all.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub rows: Vec<T>,
    /// Matching rows; when `capped`, only this many were counted and there are more.
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
    pub capped: bool,
}

impl<T> Page<T> {
    pub fn pages(&self) -> i64 {
        ((self.total + self.per_page - 1) / self.per_page).max(1)
    }
}

/// Which records a list shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Showing {
    #[default]
    Live,
    Archived,
    All,
}

impl Showing {
    pub fn parse(value: &str) -> Self {
        match value {
            "archived" => Self::Archived,
            "all" => Self::All,
            _ => Self::Live,
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Archived => "archived",
            Self::All => "all",
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Archived => "archived",
            Self::All => "all",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Estates

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Estate {
    pub id: Uuid,
    pub reference: String,
    pub name: String,
    pub address_line_1: Option<String>,
    pub address_line_2: Option<String>,
    pub city: Option<String>,
    pub postcode: Option<String>,
    pub freeholder_id: Option<Uuid>,
    pub freeholder_name: Option<String>,
    pub site_count: i64,
    pub unit_count: i64,
    pub archived_at: Option<OffsetDateTime>,
}

impl Estate {
    pub fn address(&self) -> Address {
        Address {
            line_1: self.address_line_1.clone(),
            line_2: self.address_line_2.clone(),
            city: self.city.clone(),
            postcode: self.postcode.clone(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct EstateInput {
    pub reference: String,
    pub name: String,
    pub address: Address,
    pub freeholder_id: Option<Uuid>,
}

/// Estates with their live site and unit counts. A site-scoped member sees the estates their
/// sites are in.
pub async fn list_estates(
    tx: &mut TenantTx,
    scope: &SiteScope,
    showing: Showing,
) -> Result<Vec<Estate>, DbError> {
    Ok(sqlx::query_as(
        "select e.id, e.reference, e.name, e.address_line_1, e.address_line_2, e.city, e.postcode,
                e.freeholder_id, f.display_name as freeholder_name,
                (select count(*) from site s where s.organisation_id = e.organisation_id
                    and s.estate_id = e.id and s.archived_at is null) as site_count,
                (select count(*) from unit u join site s on s.organisation_id = u.organisation_id and s.id = u.site_id
                  where u.organisation_id = e.organisation_id and s.estate_id = e.id
                    and u.archived_at is null and s.archived_at is null) as unit_count,
                e.archived_at
           from estate e
           left join contact f on f.organisation_id = e.organisation_id and f.id = e.freeholder_id
          where e.organisation_id = $1
            and ($2 or e.id = any($4) or exists (select from site s where s.organisation_id = e.organisation_id
                                                   and s.estate_id = e.id and s.id = any($3)))
            and case $5 when 'live' then e.archived_at is null
                        when 'archived' then e.archived_at is not null else true end
          order by lower(e.reference)",
    )
    .bind(tx.org().0)
    .bind(scope.all)
    .bind(&scope.sites)
    .bind(&scope.estates)
    .bind(showing.sql())
    .fetch_all(tx.conn())
    .await?)
}

pub async fn estate(tx: &mut TenantTx, id: Uuid) -> Result<Option<Estate>, DbError> {
    Ok(sqlx::query_as(
        "select e.id, e.reference, e.name, e.address_line_1, e.address_line_2, e.city, e.postcode,
                e.freeholder_id, f.display_name as freeholder_name,
                (select count(*) from site s where s.organisation_id = e.organisation_id
                    and s.estate_id = e.id and s.archived_at is null) as site_count,
                (select count(*) from unit u join site s on s.organisation_id = u.organisation_id and s.id = u.site_id
                  where u.organisation_id = e.organisation_id and s.estate_id = e.id
                    and u.archived_at is null) as unit_count,
                e.archived_at
           from estate e
           left join contact f on f.organisation_id = e.organisation_id and f.id = e.freeholder_id
          where e.organisation_id = $1 and e.id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

pub async fn save_estate(
    tx: &mut TenantTx,
    id: Option<Uuid>,
    input: &EstateInput,
) -> Result<Uuid, DbError> {
    let id = id.unwrap_or_else(Uuid::now_v7);
    sqlx::query(
        "insert into estate (organisation_id, id, reference, name, address_line_1, address_line_2,
                             city, postcode, freeholder_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         on conflict (organisation_id, id) do update
            set reference = excluded.reference, name = excluded.name,
                address_line_1 = excluded.address_line_1, address_line_2 = excluded.address_line_2,
                city = excluded.city, postcode = excluded.postcode,
                freeholder_id = excluded.freeholder_id, updated_at = now()",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(input.reference.trim())
    .bind(input.name.trim())
    .bind(&input.address.line_1)
    .bind(&input.address.line_2)
    .bind(&input.address.city)
    .bind(&input.address.postcode)
    .bind(input.freeholder_id)
    .execute(tx.conn())
    .await?;
    Ok(id)
}

// ---------------------------------------------------------------------------------------------
// Sites

/// The landlord on record for a site (LTA 1987 ss.47–48).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Landlord {
    pub name: String,
    pub address: Address,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Site {
    pub id: Uuid,
    pub reference: String,
    pub name: String,
    pub estate_id: Option<Uuid>,
    pub estate_name: Option<String>,
    pub address_line_1: Option<String>,
    pub address_line_2: Option<String>,
    pub city: Option<String>,
    pub postcode: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub modules: Vec<String>,
    pub landlord_name: Option<String>,
    pub landlord_address_line_1: Option<String>,
    pub landlord_address_line_2: Option<String>,
    pub landlord_city: Option<String>,
    pub landlord_postcode: Option<String>,
    pub management_company_id: Option<Uuid>,
    pub management_company_name: Option<String>,
    pub management_company_kind: Option<String>,
    pub notes: Option<String>,
    pub building_count: i64,
    pub unit_count: i64,
    pub hrb_count: i64,
    pub archived_at: Option<OffsetDateTime>,
}

impl Site {
    pub fn address(&self) -> Address {
        Address {
            line_1: self.address_line_1.clone(),
            line_2: self.address_line_2.clone(),
            city: self.city.clone(),
            postcode: self.postcode.clone(),
        }
    }

    pub fn landlord_address(&self) -> Address {
        Address {
            line_1: self.landlord_address_line_1.clone(),
            line_2: self.landlord_address_line_2.clone(),
            city: self.landlord_city.clone(),
            postcode: self.landlord_postcode.clone(),
        }
    }

    pub fn placement(&self) -> proplink_domain::authorize::Placement {
        proplink_domain::authorize::Placement::Site {
            site: self.id,
            estate: self.estate_id,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SiteInput {
    pub reference: String,
    pub name: String,
    pub estate_id: Option<Uuid>,
    pub address: Address,
    pub modules: Vec<String>,
    pub landlord: Option<Landlord>,
    /// The RMC or RTM company (a company contact) and which it is (`rmc` | `rtm`).
    pub management_company: Option<(Uuid, String)>,
    pub notes: Option<String>,
}

const SITE_COLUMNS: &str = "s.id, s.reference, s.name, s.estate_id, e.name as estate_name,
    s.address_line_1, s.address_line_2, s.city, s.postcode, s.latitude, s.longitude, s.modules,
    s.landlord_name, s.landlord_address_line_1, s.landlord_address_line_2, s.landlord_city,
    s.landlord_postcode, s.management_company_id, m.display_name as management_company_name,
    s.management_company_kind, s.notes,
    (select count(*) from building b where b.organisation_id = s.organisation_id and b.site_id = s.id
        and b.archived_at is null) as building_count,
    (select count(*) from unit u where u.organisation_id = s.organisation_id and u.site_id = s.id
        and u.archived_at is null) as unit_count,
    (select count(*) from building b where b.organisation_id = s.organisation_id and b.site_id = s.id
        and b.archived_at is null and b.is_hrb) as hrb_count,
    s.archived_at";

/// Sites in reference order, within the scope; `q` matches reference, name or postcode.
pub async fn list_sites(
    tx: &mut TenantTx,
    scope: &SiteScope,
    showing: Showing,
    estate: Option<Uuid>,
    q: &str,
) -> Result<Vec<Site>, DbError> {
    // Sized for this organisation: see TenantTx::plan_for_this_organisation.
    tx.plan_for_this_organisation().await?;
    let sql = format!(
        "select {SITE_COLUMNS}
           from site s
           left join estate e on e.organisation_id = s.organisation_id and e.id = s.estate_id
           left join contact m on m.organisation_id = s.organisation_id and m.id = s.management_company_id
          where s.organisation_id = $1
            and ($2 or s.id = any($3) or s.estate_id = any($4))
            and case $5 when 'live' then s.archived_at is null
                        when 'archived' then s.archived_at is not null else true end
            and ($6::uuid is null or s.estate_id = $6)
            and ($7 = '' or s.reference ilike '%' || $7 || '%' or s.name ilike '%' || $7 || '%'
                 or s.postcode ilike '%' || $7 || '%')
          order by lower(s.reference)"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tx.org().0)
        .bind(scope.all)
        .bind(&scope.sites)
        .bind(&scope.estates)
        .bind(showing.sql())
        .bind(estate)
        .bind(like_escape(q))
        .fetch_all(tx.conn())
        .await?)
}

/// One site, whatever its state; the caller checks the member's scope with its placement.
pub async fn site(tx: &mut TenantTx, id: Uuid) -> Result<Option<Site>, DbError> {
    let sql = format!(
        "select {SITE_COLUMNS}
           from site s
           left join estate e on e.organisation_id = s.organisation_id and e.id = s.estate_id
           left join contact m on m.organisation_id = s.organisation_id and m.id = s.management_company_id
          where s.organisation_id = $1 and s.id = $2"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tx.org().0)
        .bind(id)
        .fetch_optional(tx.conn())
        .await?)
}

/// Creates (`id` None) or updates a site. A changed address clears the stored map position
/// so the geocoder places it again.
pub async fn save_site(
    tx: &mut TenantTx,
    id: Option<Uuid>,
    input: &SiteInput,
) -> Result<Uuid, DbError> {
    let id = id.unwrap_or_else(Uuid::now_v7);
    let landlord = input.landlord.clone().unwrap_or_default();
    let has_landlord = input.landlord.is_some();
    let (company, kind) = match &input.management_company {
        Some((company, kind)) => (Some(*company), Some(kind.as_str())),
        None => (None, None),
    };
    let modules = if input.modules.is_empty() {
        vec!["bm".to_owned()]
    } else {
        input.modules.clone()
    };
    sqlx::query(
        "insert into site (organisation_id, id, estate_id, reference, name, address_line_1,
                           address_line_2, city, postcode, modules, landlord_name,
                           landlord_address_line_1, landlord_address_line_2, landlord_city,
                           landlord_postcode, management_company_id, management_company_kind, notes)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
                 case when $11 then $12 end, case when $11 then $13 end, case when $11 then $14 end,
                 case when $11 then $15 end, case when $11 then $16 end, $17, $18, $19)
         on conflict (organisation_id, id) do update
            set estate_id = excluded.estate_id, reference = excluded.reference, name = excluded.name,
                address_line_1 = excluded.address_line_1, address_line_2 = excluded.address_line_2,
                city = excluded.city, postcode = excluded.postcode, modules = excluded.modules,
                landlord_name = excluded.landlord_name,
                landlord_address_line_1 = excluded.landlord_address_line_1,
                landlord_address_line_2 = excluded.landlord_address_line_2,
                landlord_city = excluded.landlord_city, landlord_postcode = excluded.landlord_postcode,
                management_company_id = excluded.management_company_id,
                management_company_kind = excluded.management_company_kind,
                notes = excluded.notes, updated_at = now(),
                latitude = case when site.postcode is distinct from excluded.postcode
                                  or site.address_line_1 is distinct from excluded.address_line_1
                                then null else site.latitude end,
                longitude = case when site.postcode is distinct from excluded.postcode
                                   or site.address_line_1 is distinct from excluded.address_line_1
                                 then null else site.longitude end",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(input.estate_id)
    .bind(input.reference.trim())
    .bind(input.name.trim())
    .bind(&input.address.line_1)
    .bind(&input.address.line_2)
    .bind(&input.address.city)
    .bind(&input.address.postcode)
    .bind(&modules)
    .bind(has_landlord)
    .bind(&landlord.name)
    .bind(&landlord.address.line_1)
    .bind(&landlord.address.line_2)
    .bind(&landlord.address.city)
    .bind(&landlord.address.postcode)
    .bind(company)
    .bind(kind)
    .bind(&input.notes)
    .execute(tx.conn())
    .await?;
    Ok(id)
}

/// Records where the geocoder placed a site.
pub async fn set_site_position(
    tx: &mut TenantTx,
    id: Uuid,
    latitude: f64,
    longitude: f64,
) -> Result<(), DbError> {
    sqlx::query(
        "update site set latitude = $3, longitude = $4, geocoded_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(latitude)
    .bind(longitude)
    .execute(tx.conn())
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Buildings, floors, spaces

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Building {
    pub id: Uuid,
    pub site_id: Uuid,
    pub reference: String,
    pub name: String,
    pub height_cm: Option<i32>,
    pub storeys: Option<i32>,
    pub residential_units: Option<i32>,
    pub build_year: Option<i32>,
    pub construction_type: Option<String>,
    pub hrb_override: Option<bool>,
    pub hrb_override_reason: Option<String>,
    pub is_hrb: bool,
    pub unit_count: i64,
    pub archived_at: Option<OffsetDateTime>,
}

impl Building {
    /// "18.50 m", or None when not recorded.
    pub fn height_label(&self) -> Option<String> {
        self.height_cm
            .map(|cm| format!("{}.{:02} m", cm / 100, cm % 100))
    }
}

#[derive(Debug, Clone, Default)]
pub struct BuildingInput {
    pub reference: String,
    pub name: String,
    pub height_cm: Option<i32>,
    pub storeys: Option<i32>,
    pub residential_units: Option<i32>,
    pub build_year: Option<i32>,
    pub construction_type: Option<String>,
    /// Some((is_hrb, reason)) overrides the legal test.
    pub hrb_override: Option<(bool, String)>,
}

pub async fn buildings(
    tx: &mut TenantTx,
    site: Uuid,
    showing: Showing,
) -> Result<Vec<Building>, DbError> {
    Ok(sqlx::query_as(
        "select b.id, b.site_id, b.reference, b.name, b.height_cm, b.storeys, b.residential_units,
                b.build_year, b.construction_type, b.hrb_override, b.hrb_override_reason, b.is_hrb,
                (select count(*) from unit u where u.organisation_id = b.organisation_id
                    and u.building_id = b.id and u.archived_at is null) as unit_count,
                b.archived_at
           from building b
          where b.organisation_id = $1 and b.site_id = $2
            and case $3 when 'live' then b.archived_at is null
                        when 'archived' then b.archived_at is not null else true end
          order by lower(b.reference)",
    )
    .bind(tx.org().0)
    .bind(site)
    .bind(showing.sql())
    .fetch_all(tx.conn())
    .await?)
}

pub async fn building(tx: &mut TenantTx, id: Uuid) -> Result<Option<Building>, DbError> {
    Ok(sqlx::query_as(
        "select b.id, b.site_id, b.reference, b.name, b.height_cm, b.storeys, b.residential_units,
                b.build_year, b.construction_type, b.hrb_override, b.hrb_override_reason, b.is_hrb,
                (select count(*) from unit u where u.organisation_id = b.organisation_id
                    and u.building_id = b.id and u.archived_at is null) as unit_count,
                b.archived_at
           from building b where b.organisation_id = $1 and b.id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

pub async fn save_building(
    tx: &mut TenantTx,
    id: Option<Uuid>,
    site: Uuid,
    input: &BuildingInput,
) -> Result<Uuid, DbError> {
    let id = id.unwrap_or_else(Uuid::now_v7);
    let (hrb_override, reason) = match &input.hrb_override {
        Some((value, reason)) => (Some(*value), Some(reason.trim())),
        None => (None, None),
    };
    sqlx::query(
        "insert into building (organisation_id, id, site_id, reference, name, height_cm, storeys,
                               residential_units, build_year, construction_type, hrb_override,
                               hrb_override_reason)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         on conflict (organisation_id, id) do update
            set reference = excluded.reference, name = excluded.name, height_cm = excluded.height_cm,
                storeys = excluded.storeys, residential_units = excluded.residential_units,
                build_year = excluded.build_year, construction_type = excluded.construction_type,
                hrb_override = excluded.hrb_override, hrb_override_reason = excluded.hrb_override_reason,
                updated_at = now()
          where building.site_id = excluded.site_id",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(site)
    .bind(input.reference.trim())
    .bind(input.name.trim())
    .bind(input.height_cm)
    .bind(input.storeys)
    .bind(input.residential_units)
    .bind(input.build_year)
    .bind(&input.construction_type)
    .bind(hrb_override)
    .bind(reason)
    .execute(tx.conn())
    .await?;
    Ok(id)
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Floor {
    pub id: Uuid,
    pub building_id: Uuid,
    pub name: String,
    pub position: i32,
}

pub async fn floors(tx: &mut TenantTx, building: Uuid) -> Result<Vec<Floor>, DbError> {
    Ok(sqlx::query_as(
        "select id, building_id, name, position from floor
          where organisation_id = $1 and building_id = $2 order by position, lower(name)",
    )
    .bind(tx.org().0)
    .bind(building)
    .fetch_all(tx.conn())
    .await?)
}

/// The floor of `building` called `name` (any case), made if it is new. "Ground" and "G" are
/// position 0, "Basement" -1, "Roof" last; a number is its own position.
pub async fn floor_named(tx: &mut TenantTx, building: Uuid, name: &str) -> Result<Uuid, DbError> {
    let name = name.trim();
    let position = floor_position(name);
    let id: Uuid = sqlx::query_scalar(
        "with found as (
             select id from floor where organisation_id = $1 and building_id = $2 and lower(name) = lower($3)
         ), made as (
             insert into floor (organisation_id, id, building_id, name, position)
             select $1, $4, $2, $3, $5 where not exists (select from found)
             on conflict do nothing
             returning id
         )
         select id from found union all select id from made",
    )
    .bind(tx.org().0)
    .bind(building)
    .bind(name)
    .bind(Uuid::now_v7())
    .bind(position)
    .fetch_one(tx.conn())
    .await?;
    Ok(id)
}

pub fn floor_position(name: &str) -> i32 {
    let lower = name.trim().to_lowercase();
    match lower.as_str() {
        "ground" | "g" | "gf" | "ground floor" | "0" => 0,
        "basement" | "b" | "lower ground" | "lg" => -1,
        "roof" => 1000,
        _ => lower
            .trim_end_matches(|c: char| c.is_alphabetic() || c == ' ')
            .trim_start_matches(|c: char| !c.is_ascii_digit() && c != '-')
            .parse()
            .unwrap_or(500),
    }
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Space {
    pub id: Uuid,
    pub site_id: Uuid,
    pub building_id: Option<Uuid>,
    pub building_name: Option<String>,
    pub floor_id: Option<Uuid>,
    pub floor_name: Option<String>,
    pub name: String,
    pub kind: String,
    pub notes: Option<String>,
    pub archived_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Default)]
pub struct SpaceInput {
    pub building_id: Option<Uuid>,
    pub floor_id: Option<Uuid>,
    pub name: String,
    pub kind: String,
    pub notes: Option<String>,
}

/// A site's spaces in use.
pub async fn spaces(tx: &mut TenantTx, site: Uuid) -> Result<Vec<Space>, DbError> {
    site_spaces(tx, site, false).await
}

/// A site's archived spaces, which can be restored.
pub async fn archived_spaces(tx: &mut TenantTx, site: Uuid) -> Result<Vec<Space>, DbError> {
    site_spaces(tx, site, true).await
}

async fn site_spaces(tx: &mut TenantTx, site: Uuid, archived: bool) -> Result<Vec<Space>, DbError> {
    Ok(sqlx::query_as(
        "select sp.id, sp.site_id, sp.building_id, b.name as building_name, sp.floor_id,
                f.name as floor_name, sp.name, sp.kind, sp.notes, sp.archived_at
           from space sp
           left join building b on b.organisation_id = sp.organisation_id and b.id = sp.building_id
           left join floor f on f.organisation_id = sp.organisation_id and f.id = sp.floor_id
          where sp.organisation_id = $1 and sp.site_id = $2 and (sp.archived_at is not null) = $3
          order by lower(sp.name)",
    )
    .bind(tx.org().0)
    .bind(site)
    .bind(archived)
    .fetch_all(tx.conn())
    .await?)
}

pub async fn save_space(
    tx: &mut TenantTx,
    site: Uuid,
    input: &SpaceInput,
) -> Result<Uuid, DbError> {
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into space (organisation_id, id, site_id, building_id, floor_id, name, kind, notes)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(site)
    .bind(input.building_id)
    .bind(input.floor_id)
    .bind(input.name.trim())
    .bind(&input.kind)
    .bind(&input.notes)
    .execute(tx.conn())
    .await?;
    Ok(id)
}

// ---------------------------------------------------------------------------------------------
// Units

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Unit {
    pub id: Uuid,
    pub site_id: Uuid,
    pub site_reference: String,
    pub site_name: String,
    pub estate_id: Option<Uuid>,
    pub building_id: Option<Uuid>,
    pub building_name: Option<String>,
    pub floor_id: Option<Uuid>,
    pub floor_name: Option<String>,
    pub reference: String,
    pub name: String,
    pub unit_type: String,
    pub status: String,
    pub address_line_1: Option<String>,
    pub address_line_2: Option<String>,
    pub city: Option<String>,
    pub postcode: Option<String>,
    pub uprn: Option<String>,
    pub area_cm2: Option<i64>,
    pub parking_spaces: Option<i32>,
    /// Names of the current leaseholders, joined ("A Smith & B Smith").
    pub holders: Option<String>,
    pub archived_at: Option<OffsetDateTime>,
}

impl Unit {
    pub fn placement(&self) -> proplink_domain::authorize::Placement {
        proplink_domain::authorize::Placement::Site {
            site: self.site_id,
            estate: self.estate_id,
        }
    }

    /// "64.50 m²", or None.
    pub fn area_label(&self) -> Option<String> {
        self.area_cm2
            .map(|a| format!("{}.{:02} m²", a / 100, a % 100))
    }

    pub fn address(&self) -> Address {
        Address {
            line_1: self.address_line_1.clone(),
            line_2: self.address_line_2.clone(),
            city: self.city.clone(),
            postcode: self.postcode.clone(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct UnitInput {
    pub reference: String,
    pub name: String,
    pub building_id: Option<Uuid>,
    pub floor_id: Option<Uuid>,
    pub unit_type: String,
    pub status: String,
    pub address: Address,
    pub uprn: Option<String>,
    pub area_cm2: Option<i64>,
    pub parking_spaces: Option<i32>,
}

/// What the unit list is asked for.
#[derive(Debug, Clone, Default)]
pub struct UnitQuery {
    pub site: Option<Uuid>,
    pub building: Option<Uuid>,
    pub unit_type: Option<String>,
    pub q: String,
    pub showing: Showing,
    /// `site` (site then reference, the default), `name`, `type`.
    pub sort: String,
    pub page: i64,
    pub per_page: i64,
}

const UNIT_COLUMNS: &str = "u.id, u.site_id, s.reference as site_reference, s.name as site_name,
    s.estate_id, u.building_id, b.name as building_name, u.floor_id, f.name as floor_name,
    u.reference, u.name, u.unit_type, u.status, u.address_line_1, u.address_line_2, u.city,
    u.postcode, u.uprn, u.area_cm2, u.parking_spaces,
    (select string_agg(c.display_name, ' & ' order by h.position)
       from lease l join lease_holder h on h.organisation_id = l.organisation_id and h.lease_id = l.id
       join contact c on c.organisation_id = h.organisation_id and c.id = h.contact_id
      where l.organisation_id = u.organisation_id and l.unit_id = u.id
        and l.starts_on <= current_date and (l.ends_on is null or l.ends_on > current_date)) as holders,
    u.archived_at";

const UNIT_FROM: &str = "from unit u
    join site s on s.organisation_id = u.organisation_id and s.id = u.site_id
    left join building b on b.organisation_id = u.organisation_id and b.id = u.building_id
    left join floor f on f.organisation_id = u.organisation_id and f.id = u.floor_id";

/// The unit list's filter over `unit` alone (so a page is found from the `unit_list_live`
/// index without joins); `showing` is spliced in as one of three fixed fragments so the
/// planner can use the partial index.
fn unit_filter(query: &UnitQuery) -> String {
    let archived = match query.showing {
        Showing::Live => "u.archived_at is null",
        Showing::Archived => "u.archived_at is not null",
        Showing::All => "true",
    };
    // Each filter is spliced in only when it is used (its parameter is still bound, and tested
    // once for null when it is not), so a prepared statement's plan can use the site index.
    let site = if query.site.is_some() {
        "u.site_id = $5"
    } else {
        "$5::uuid is null"
    };
    let building = if query.building.is_some() {
        "u.building_id = $6"
    } else {
        "$6::uuid is null"
    };
    let unit_type = if query.unit_type.is_some() {
        "u.unit_type = $7"
    } else {
        "$7::text is null"
    };
    let text = if query.q.trim().is_empty() {
        "$8 = ''"
    } else {
        "(u.reference ilike '%' || $8 || '%' or u.name ilike '%' || $8 || '%'
          or u.postcode ilike '%' || $8 || '%')"
    };
    format!(
        "where u.organisation_id = $1 and {archived}
           and ($2 or u.site_id in (select s.id from site s where s.organisation_id = $1
                                      and (s.id = any($3) or s.estate_id = any($4))))
           and {site} and {building} and {unit_type} and {text}"
    )
}

/// One page of units in the scope: the page's ids first (from the index), then their details
/// and current leaseholders for those rows only.
pub async fn list_units(
    tx: &mut TenantTx,
    scope: &SiteScope,
    query: &UnitQuery,
) -> Result<Page<Unit>, DbError> {
    // Sized for this organisation: see TenantTx::plan_for_this_organisation.
    tx.plan_for_this_organisation().await?;
    let per_page = query.per_page.clamp(1, 500);
    let page = query.page.max(1);
    let order = match query.sort.as_str() {
        "name" => "lower(u.name), u.id",
        "type" => "u.unit_type, u.list_key, u.id",
        _ => "u.list_key, u.id",
    };
    let filter = unit_filter(query);
    let sql = format!(
        "with page as (select u.id from unit u {filter} order by {order} limit $9 offset $10)
         select {UNIT_COLUMNS} from page p join unit u on u.organisation_id = $1 and u.id = p.id
         join site s on s.organisation_id = u.organisation_id and s.id = u.site_id
         left join building b on b.organisation_id = u.organisation_id and b.id = u.building_id
         left join floor f on f.organisation_id = u.organisation_id and f.id = u.floor_id
         order by {order}"
    );
    let q = like_escape(&query.q);
    let rows: Vec<Unit> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tx.org().0)
        .bind(scope.all)
        .bind(&scope.sites)
        .bind(&scope.estates)
        .bind(query.site)
        .bind(query.building)
        .bind(&query.unit_type)
        .bind(&q)
        .bind(per_page)
        .bind((page - 1) * per_page)
        .fetch_all(tx.conn())
        .await?;
    if let Some(total) = tallied_units(tx, scope, query).await? {
        return Ok(Page {
            rows,
            total,
            page,
            per_page,
            capped: false,
        });
    }
    // Text filters count at most TEXT_COUNT_CAP + 1 matches: a two-letter filter cannot use an
    // index, and counting all 11,000 of 100,000 units that contain "a1" took 110 ms a page.
    let cap = if query.q.trim().is_empty() {
        i64::MAX
    } else {
        TEXT_COUNT_CAP + 1
    };
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select count(*) from (select from unit u {filter} limit $9) counted"
    )))
    .bind(tx.org().0)
    .bind(scope.all)
    .bind(&scope.sites)
    .bind(&scope.estates)
    .bind(query.site)
    .bind(query.building)
    .bind(&query.unit_type)
    .bind(&q)
    .bind(cap)
    .fetch_one(tx.conn())
    .await?;
    Ok(Page {
        rows,
        total: total.min(cap - 1),
        page,
        per_page,
        capped: total >= cap,
    })
}

/// How many units a list without a text or building filter holds, from `unit_tally` (kept by
/// triggers, migration 0016) instead of counting them: at 100,000 units the count read the
/// whole table. `None` when the list has a filter the tallies do not keep.
async fn tallied_units(
    tx: &mut TenantTx,
    scope: &SiteScope,
    query: &UnitQuery,
) -> Result<Option<i64>, DbError> {
    if !query.q.trim().is_empty() || query.building.is_some() {
        return Ok(None);
    }
    let live = match query.showing {
        Showing::Live => "t.live",
        Showing::Archived => "not t.live",
        Showing::All => "true",
    };
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select coalesce(sum(t.units), 0)::bigint from unit_tally t
          where t.organisation_id = $1 and {live}
            and ($2 or t.site_id in (select s.id from site s where s.organisation_id = $1
                                       and (s.id = any($3) or s.estate_id = any($4))))
            and ($5::uuid is null or t.site_id = $5)
            and ($6::text is null or t.unit_type = $6)"
    )))
    .bind(tx.org().0)
    .bind(scope.all)
    .bind(&scope.sites)
    .bind(&scope.estates)
    .bind(query.site)
    .bind(&query.unit_type)
    .fetch_one(tx.conn())
    .await?;
    Ok(Some(total))
}

/// The most matches a text-filtered unit list counts ("1000+ units").
pub const TEXT_COUNT_CAP: i64 = 1_000;

/// Every unit in the scope matching the query, for CSV export (no paging).
pub async fn export_units(
    tx: &mut TenantTx,
    scope: &SiteScope,
    query: &UnitQuery,
) -> Result<Vec<Unit>, DbError> {
    let filter = unit_filter(query);
    let sql = format!("select {UNIT_COLUMNS} {UNIT_FROM} {filter} order by u.list_key, u.id");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tx.org().0)
        .bind(scope.all)
        .bind(&scope.sites)
        .bind(&scope.estates)
        .bind(query.site)
        .bind(query.building)
        .bind(&query.unit_type)
        .bind(like_escape(&query.q))
        .fetch_all(tx.conn())
        .await?)
}

pub async fn unit(tx: &mut TenantTx, id: Uuid) -> Result<Option<Unit>, DbError> {
    let sql =
        format!("select {UNIT_COLUMNS} {UNIT_FROM} where u.organisation_id = $1 and u.id = $2");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tx.org().0)
        .bind(id)
        .fetch_optional(tx.conn())
        .await?)
}

/// Why a unit could not be saved, in words for the form.
#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    #[error("Another unit on this site already has the reference {0}.")]
    DuplicateReference(String),
    #[error(
        "That building is on a different site. A unit can only be in a building on its own site."
    )]
    BuildingOnAnotherSite,
    #[error(transparent)]
    Db(#[from] DbError),
}

pub async fn save_unit(
    tx: &mut TenantTx,
    id: Option<Uuid>,
    site: Uuid,
    input: &UnitInput,
) -> Result<Uuid, UnitError> {
    let id = id.unwrap_or_else(Uuid::now_v7);
    let result = sqlx::query(
        "insert into unit (organisation_id, id, site_id, building_id, floor_id, reference, name,
                           unit_type, status, address_line_1, address_line_2, city, postcode, uprn,
                           area_cm2, parking_spaces)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         on conflict (organisation_id, id) do update
            set site_id = excluded.site_id, building_id = excluded.building_id,
                floor_id = excluded.floor_id, reference = excluded.reference, name = excluded.name,
                unit_type = excluded.unit_type, status = excluded.status,
                address_line_1 = excluded.address_line_1, address_line_2 = excluded.address_line_2,
                city = excluded.city, postcode = excluded.postcode, uprn = excluded.uprn,
                area_cm2 = excluded.area_cm2, parking_spaces = excluded.parking_spaces,
                updated_at = now()",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(site)
    .bind(input.building_id)
    .bind(input.floor_id)
    .bind(input.reference.trim())
    .bind(input.name.trim())
    .bind(&input.unit_type)
    .bind(if input.status.is_empty() {
        "active"
    } else {
        input.status.as_str()
    })
    .bind(&input.address.line_1)
    .bind(&input.address.line_2)
    .bind(&input.address.city)
    .bind(&input.address.postcode)
    .bind(&input.uprn)
    .bind(input.area_cm2)
    .bind(input.parking_spaces)
    .execute(tx.conn())
    .await;
    match result.map_err(DbError::from) {
        Ok(_) => Ok(id),
        Err(DbError::Duplicate { constraint }) if constraint == "unit_reference" => Err(
            UnitError::DuplicateReference(input.reference.trim().to_owned()),
        ),
        Err(DbError::MissingReference { constraint })
            if constraint.contains("building") || constraint.contains("floor") =>
        {
            Err(UnitError::BuildingOnAnotherSite)
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Archive, restore, force delete

/// The record types that archive and restore alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Archivable {
    Estate,
    Site,
    Building,
    Unit,
    Space,
    Contact,
    Vendor,
}

impl Archivable {
    fn table(self) -> &'static str {
        match self {
            Self::Estate => "estate",
            Self::Site => "site",
            Self::Building => "building",
            Self::Unit => "unit",
            Self::Space => "space",
            Self::Contact => "contact",
            Self::Vendor => "vendor",
        }
    }
}

/// Archives (`archived` true) or restores a record; false when there was no such record in
/// that state.
pub async fn set_archived(
    tx: &mut TenantTx,
    kind: Archivable,
    id: Uuid,
    archived: bool,
) -> Result<bool, DbError> {
    let sql = format!(
        "update {} set archived_at = case when $3 then now() end
          where organisation_id = $1 and id = $2 and (archived_at is null) = $3",
        kind.table()
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tx.org().0)
        .bind(id)
        .bind(archived)
        .execute(tx.conn())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Why a force delete was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error("Only an archived record can be deleted for good: archive it first.")]
    NotArchived,
    #[error(
        "Other records still refer to this one ({0}); archive it instead, or remove them first."
    )]
    InUse(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Deletes an archived site (with its buildings, floors, spaces, units and their leases) for
/// good. The audit log keeps a snapshot of every row removed.
pub async fn force_delete_site(tx: &mut TenantTx, id: Uuid) -> Result<(), DeleteError> {
    let archived: Option<bool> = sqlx::query_scalar(
        "select archived_at is not null from site where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await
    .map_err(DbError::from)?;
    match archived {
        None => return Err(DeleteError::Db(DbError::NotFound)),
        Some(false) => return Err(DeleteError::NotArchived),
        Some(true) => {}
    }
    let org = tx.org().0;
    for sql in [
        "delete from space where organisation_id = $1 and site_id = $2",
        "delete from unit where organisation_id = $1 and site_id = $2",
        "delete from unit_tally where organisation_id = $1 and site_id = $2",
        "delete from building where organisation_id = $1 and site_id = $2",
        "delete from membership_scope where organisation_id = $1 and site_id = $2",
        // Its document folders, if they hold no files (a site with files stays refused).
        "delete from site_folder f where organisation_id = $1 and site_id = $2
            and not exists (select from stored_file x where x.organisation_id = f.organisation_id
                              and x.folder_id = f.id)",
        "delete from site where organisation_id = $1 and id = $2",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(org)
            .bind(id)
            .execute(tx.conn())
            .await
            .map_err(|e| match DbError::from(e) {
                DbError::MissingReference { constraint } => DeleteError::InUse(constraint),
                other => DeleteError::Db(other),
            })?;
    }
    Ok(())
}

/// Escapes `%`, `_` and `\` so a search box's text is matched literally by ILIKE.
pub fn like_escape(q: &str) -> String {
    let mut out = String::with_capacity(q.len());
    for c in q.trim().chars().take(100) {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floors_sort_ground_first_and_roof_last() {
        assert_eq!(floor_position("Ground"), 0);
        assert_eq!(floor_position("Basement"), -1);
        assert_eq!(floor_position("3"), 3);
        assert_eq!(floor_position("12th"), 12);
        assert_eq!(floor_position("Roof"), 1000);
    }

    #[test]
    fn search_text_is_matched_literally() {
        assert_eq!(like_escape(" 50%_off\\ "), "50\\%\\_off\\\\");
    }

    #[test]
    fn an_address_reads_on_one_line() {
        let a = Address {
            line_1: Some("1 High Street".into()),
            line_2: None,
            city: Some("Leeds".into()),
            postcode: Some("LS1 1AA".into()),
        };
        assert_eq!(a.one_line(), "1 High Street, Leeds LS1 1AA");
    }
}
