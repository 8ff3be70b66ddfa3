//! The organisation's own settings: company details printed on documents, branding, and which
//! product modules are switched on (Settings → Organisation and Modules, the set-up wizard).
//! One row per organisation, created on first use.

use crate::error::DbError;
use crate::tenant::TenantTx;
use time::OffsetDateTime;

/// The product modules, in navigation order: (key, name).
pub const MODULES: [(&str, &str); 4] = [
    ("block", "Block management"),
    ("facilities", "Facilities"),
    ("hrb", "Building safety (HRB)"),
    ("lettings", "Lettings"),
];

#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Profile {
    pub trading_name: Option<String>,
    pub registered_name: Option<String>,
    pub company_number: Option<String>,
    pub vat_number: Option<String>,
    pub registered_office: Option<String>,
    pub brand_colour: Option<String>,
    pub email_footer: Option<String>,
    pub modules: Vec<String>,
    pub setup_completed_at: Option<OffsetDateTime>,
    /// The logo's object-store key and media type.
    pub logo_key: Option<String>,
    pub logo_media_type: Option<String>,
}

impl Profile {
    pub fn module_on(&self, key: &str) -> bool {
        self.modules.iter().any(|m| m == key)
    }
}

async fn ensure(tx: &mut TenantTx) -> Result<(), DbError> {
    sqlx::query(
        "insert into organisation_profile (organisation_id, id) values ($1, $1) on conflict do nothing",
    )
    .bind(tx.org().0)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The profile; an organisation that has never saved one gets the defaults (every module on,
/// set-up not done) without anything being written.
pub async fn get(tx: &mut TenantTx) -> Result<Profile, DbError> {
    let found: Option<Profile> = sqlx::query_as(
        "select trading_name, registered_name, company_number, vat_number, registered_office,
                brand_colour, email_footer, modules, setup_completed_at, logo_key, logo_media_type
           from organisation_profile where organisation_id = $1",
    )
    .bind(tx.org().0)
    .fetch_optional(tx.conn())
    .await?;
    Ok(found.unwrap_or_else(|| Profile {
        modules: MODULES.iter().map(|(k, _)| (*k).to_owned()).collect(),
        ..Profile::default()
    }))
}

#[derive(Debug, Clone, Default)]
pub struct CompanyDetails {
    pub trading_name: Option<String>,
    pub registered_name: Option<String>,
    pub company_number: Option<String>,
    pub vat_number: Option<String>,
    pub registered_office: Option<String>,
}

pub async fn save_company(tx: &mut TenantTx, d: &CompanyDetails) -> Result<(), DbError> {
    ensure(tx).await?;
    sqlx::query(
        "update organisation_profile set trading_name = $2, registered_name = $3, company_number = $4,
                vat_number = $5, registered_office = $6
          where organisation_id = $1",
    )
    .bind(tx.org().0)
    .bind(&d.trading_name)
    .bind(&d.registered_name)
    .bind(&d.company_number)
    .bind(&d.vat_number)
    .bind(&d.registered_office)
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub async fn save_branding(
    tx: &mut TenantTx,
    brand_colour: Option<&str>,
    email_footer: Option<&str>,
) -> Result<(), DbError> {
    ensure(tx).await?;
    sqlx::query(
        "update organisation_profile set brand_colour = $2, email_footer = $3 where organisation_id = $1",
    )
    .bind(tx.org().0)
    .bind(brand_colour)
    .bind(email_footer)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Switches modules: `on` lists the keys to have on (unknown keys are refused by the table).
pub async fn save_modules(tx: &mut TenantTx, on: &[String]) -> Result<(), DbError> {
    ensure(tx).await?;
    sqlx::query("update organisation_profile set modules = $2 where organisation_id = $1")
        .bind(tx.org().0)
        .bind(on)
        .execute(tx.conn())
        .await?;
    Ok(())
}

pub async fn complete_setup(tx: &mut TenantTx, now: OffsetDateTime) -> Result<(), DbError> {
    ensure(tx).await?;
    sqlx::query(
        "update organisation_profile set setup_completed_at = coalesce(setup_completed_at, $2)
          where organisation_id = $1",
    )
    .bind(tx.org().0)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Sets (or with None, removes) the organisation's logo.
pub async fn save_logo(tx: &mut TenantTx, logo: Option<(&str, &str)>) -> Result<(), DbError> {
    ensure(tx).await?;
    sqlx::query(
        "update organisation_profile set logo_key = $2, logo_media_type = $3 where organisation_id = $1",
    )
    .bind(tx.org().0)
    .bind(logo.map(|l| l.0))
    .bind(logo.map(|l| l.1))
    .execute(tx.conn())
    .await?;
    Ok(())
}
