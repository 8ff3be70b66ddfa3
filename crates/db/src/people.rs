//! Contacts (people and companies), their roles, e-mails and phones; company officers;
//! leases and occupancy; vendors with sealed bank details; merging duplicates; and the
//! subject-access export (issue 4).
//!
//! A contact belongs to the organisation's directory, not to a site: a site-scoped member sees
//! the contacts connected to their sites (`contact_site`: leases, occupancy, management
//! companies and their officers).

use proplink_auth::seal::DataKey;
use serde::Serialize;
use sqlx::types::time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::portfolio::{Address, Page, Showing, SiteScope, like_escape};
use crate::{DbError, TenantTx};

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Contact {
    pub id: Uuid,
    pub kind: String,
    pub reference: Option<String>,
    pub title: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company_name: Option<String>,
    pub company_number: Option<String>,
    pub display_name: String,
    pub address_line_1: Option<String>,
    pub address_line_2: Option<String>,
    pub city: Option<String>,
    pub postcode: Option<String>,
    pub country: String,
    pub correspondence: String,
    pub notes: Option<String>,
    pub merged_into_id: Option<Uuid>,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub roles: Vec<String>,
    pub created_at: OffsetDateTime,
    pub archived_at: Option<OffsetDateTime>,
    /// When their personal data was erased (UK GDPR Art. 17), if it was.
    pub erased_at: Option<OffsetDateTime>,
}

impl Contact {
    pub fn address(&self) -> Address {
        Address {
            line_1: self.address_line_1.clone(),
            line_2: self.address_line_2.clone(),
            city: self.city.clone(),
            postcode: self.postcode.clone(),
        }
    }

    pub fn primary_email(&self) -> Option<&str> {
        self.emails.first().map(String::as_str)
    }
}

/// A contact as entered (every value already parsed).
#[derive(Debug, Clone, Default)]
pub struct ContactInput {
    /// `person` or `company`.
    pub kind: String,
    pub reference: Option<String>,
    pub title: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company_name: Option<String>,
    pub company_number: Option<String>,
    pub address: Address,
    pub country: Option<String>,
    /// `email` or `post`.
    pub correspondence: String,
    pub notes: Option<String>,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub roles: Vec<String>,
}

impl ContactInput {
    /// "Mrs Jane Smith", or the company's name.
    pub fn display_name(&self) -> String {
        if self.kind == "company" {
            return self
                .company_name
                .clone()
                .unwrap_or_default()
                .trim()
                .to_owned();
        }
        [&self.title, &self.first_name, &self.last_name]
            .into_iter()
            .flatten()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

const CONTACT_COLUMNS: &str = "c.id, c.kind, c.reference, c.title, c.first_name, c.last_name,
    c.company_name, c.company_number, c.display_name, c.address_line_1, c.address_line_2, c.city,
    c.postcode, c.country, c.correspondence, c.notes, c.merged_into_id,
    array(select e.email from contact_email e where e.organisation_id = c.organisation_id
           and e.contact_id = c.id order by e.position) as emails,
    array(select p.phone from contact_phone p where p.organisation_id = c.organisation_id
           and p.contact_id = c.id order by p.position) as phones,
    array(select r.role from contact_role r where r.organisation_id = c.organisation_id
           and r.contact_id = c.id order by r.role) as roles,
    c.created_at, c.archived_at, c.erased_at";

/// Contacts a scope may see: everything, or those connected to the scope's sites.
const CONTACT_SCOPE: &str = "($2 or exists (select from contact_site cs
        join site s on s.organisation_id = cs.organisation_id and s.id = cs.site_id
       where cs.organisation_id = c.organisation_id and cs.contact_id = c.id
         and (s.id = any($3) or s.estate_id = any($4))))";

#[derive(Debug, Clone, Default)]
pub struct ContactQuery {
    pub q: String,
    pub role: Option<String>,
    pub site: Option<Uuid>,
    pub showing: Showing,
    pub page: i64,
    pub per_page: i64,
}

fn contact_where() -> String {
    format!(
        "where c.organisation_id = $1 and {CONTACT_SCOPE}
           and c.merged_into_id is null
           and case $5 when 'live' then c.archived_at is null
                       when 'archived' then c.archived_at is not null else true end
           and ($6::text is null or exists (select from contact_role r where r.organisation_id = c.organisation_id
                                               and r.contact_id = c.id and r.role = $6))
           and ($7::uuid is null or exists (select from contact_site cs where cs.organisation_id = c.organisation_id
                                               and cs.contact_id = c.id and cs.site_id = $7))
           and ($8 = '' or c.display_name ilike '%' || $8 || '%'
                or exists (select from contact_email e where e.organisation_id = c.organisation_id
                             and e.contact_id = c.id and e.email ilike '%' || $8 || '%'))"
    )
}

pub async fn list_contacts(
    tx: &mut TenantTx,
    scope: &SiteScope,
    query: &ContactQuery,
) -> Result<Page<Contact>, DbError> {
    // Sized for this organisation: see TenantTx::plan_for_this_organisation.
    tx.plan_for_this_organisation().await?;
    let per_page = query.per_page.clamp(1, 500);
    let page = query.page.max(1);
    let filter = contact_where();
    let q = like_escape(&query.q);
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {CONTACT_COLUMNS} from contact c {filter}
          order by lower(c.display_name), c.id limit $9 offset $10"
    )))
    .bind(tx.org().0)
    .bind(scope.all)
    .bind(&scope.sites)
    .bind(&scope.estates)
    .bind(query.showing.key())
    .bind(&query.role)
    .bind(query.site)
    .bind(&q)
    .bind(per_page)
    .bind((page - 1) * per_page)
    .fetch_all(tx.conn())
    .await?;
    let total = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select count(*) from contact c {filter}"
    )))
    .bind(tx.org().0)
    .bind(scope.all)
    .bind(&scope.sites)
    .bind(&scope.estates)
    .bind(query.showing.key())
    .bind(&query.role)
    .bind(query.site)
    .bind(&q)
    .fetch_one(tx.conn())
    .await?;
    Ok(Page {
        rows,
        total,
        page,
        per_page,
        capped: false,
    })
}

/// Every matching contact, for CSV export.
pub async fn export_contacts(
    tx: &mut TenantTx,
    scope: &SiteScope,
    query: &ContactQuery,
) -> Result<Vec<Contact>, DbError> {
    let filter = contact_where();
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {CONTACT_COLUMNS} from contact c {filter} order by lower(c.display_name), c.id"
    )))
    .bind(tx.org().0)
    .bind(scope.all)
    .bind(&scope.sites)
    .bind(&scope.estates)
    .bind(query.showing.key())
    .bind(&query.role)
    .bind(query.site)
    .bind(like_escape(&query.q))
    .fetch_all(tx.conn())
    .await?)
}

/// One contact if the scope may see it.
pub async fn contact(
    tx: &mut TenantTx,
    scope: &SiteScope,
    id: Uuid,
) -> Result<Option<Contact>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {CONTACT_COLUMNS} from contact c
          where c.organisation_id = $1 and c.id = $5 and {CONTACT_SCOPE}"
    )))
    .bind(tx.org().0)
    .bind(scope.all)
    .bind(&scope.sites)
    .bind(&scope.estates)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

/// The live contact the scope may see with this e-mail address or reference (any case):
/// how a form names a contact that is not in its list.
pub async fn contact_by_key(
    tx: &mut TenantTx,
    scope: &SiteScope,
    key: &str,
) -> Result<Option<(Uuid, String)>, DbError> {
    let key = key.trim().to_lowercase();
    if key.is_empty() {
        return Ok(None);
    }
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select c.id, c.display_name from contact c
          where c.organisation_id = $1 and c.merged_into_id is null and c.archived_at is null
            and {CONTACT_SCOPE}
            and (c.reference_key = $5
                 or exists (select from contact_email e where e.organisation_id = c.organisation_id
                              and e.contact_id = c.id and e.email_key = $5))
          order by c.created_at limit 1"
    )))
    .bind(tx.org().0)
    .bind(scope.all)
    .bind(&scope.sites)
    .bind(&scope.estates)
    .bind(&key)
    .fetch_optional(tx.conn())
    .await?)
}

/// Contacts holding any of these e-mail addresses (any case), for duplicate warnings and
/// import matching.
pub async fn contacts_by_email(
    tx: &mut TenantTx,
    emails: &[String],
) -> Result<Vec<(String, Uuid)>, DbError> {
    let lowered: Vec<String> = emails.iter().map(|e| e.to_lowercase()).collect();
    Ok(sqlx::query_as(
        "select e.email_key, e.contact_id from unnest($2::text[]) x(k)
           join contact_email e on e.organisation_id = $1 and e.email_key = x.k
           join contact c on c.organisation_id = e.organisation_id and c.id = e.contact_id
          where c.merged_into_id is null",
    )
    .bind(tx.org().0)
    .bind(&lowered)
    .fetch_all(tx.conn())
    .await?)
}

/// Creates (`id` None) or updates a contact; its e-mails, phones and roles are replaced by the
/// input's.
pub async fn save_contact(
    tx: &mut TenantTx,
    id: Option<Uuid>,
    input: &ContactInput,
) -> Result<Uuid, DbError> {
    let id = id.unwrap_or_else(Uuid::now_v7);
    let org = tx.org().0;
    sqlx::query(
        "insert into contact (organisation_id, id, kind, reference, title, first_name, last_name,
                              company_name, company_number, display_name, address_line_1,
                              address_line_2, city, postcode, country, correspondence, notes)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                 coalesce($15, 'United Kingdom'), $16, $17)
         on conflict (organisation_id, id) do update
            set kind = excluded.kind, reference = excluded.reference, title = excluded.title,
                first_name = excluded.first_name, last_name = excluded.last_name,
                company_name = excluded.company_name, company_number = excluded.company_number,
                display_name = excluded.display_name, address_line_1 = excluded.address_line_1,
                address_line_2 = excluded.address_line_2, city = excluded.city,
                postcode = excluded.postcode, country = excluded.country,
                correspondence = excluded.correspondence, notes = excluded.notes,
                updated_at = now()",
    )
    .bind(org)
    .bind(id)
    .bind(&input.kind)
    .bind(&input.reference)
    .bind(&input.title)
    .bind(&input.first_name)
    .bind(&input.last_name)
    .bind(&input.company_name)
    .bind(&input.company_number)
    .bind(input.display_name())
    .bind(&input.address.line_1)
    .bind(&input.address.line_2)
    .bind(&input.address.city)
    .bind(&input.address.postcode)
    .bind(&input.country)
    .bind(&input.correspondence)
    .bind(&input.notes)
    .execute(tx.conn())
    .await?;
    replace_details(tx, id, input).await?;
    Ok(id)
}

/// Replaces a contact's e-mails, phones and roles with the input's, touching only what
/// changed (so the audit log records real changes only).
async fn replace_details(tx: &mut TenantTx, id: Uuid, input: &ContactInput) -> Result<(), DbError> {
    let org = tx.org().0;
    let emails: Vec<String> = input.emails.iter().map(|e| e.trim().to_owned()).collect();
    let positions: Vec<i16> = (0..emails.len() as i16).collect();
    sqlx::query(
        "delete from contact_email where organisation_id = $1 and contact_id = $2
            and lower(email) <> all(select lower(x) from unnest($3::text[]) x)",
    )
    .bind(org)
    .bind(id)
    .bind(&emails)
    .execute(tx.conn())
    .await?;
    sqlx::query(
        "insert into contact_email (organisation_id, id, contact_id, email, position)
         select $1, gen_random_uuid(), $2, x.email, x.position
           from unnest($3::text[], $4::smallint[]) as x(email, position)
         on conflict (organisation_id, contact_id, lower(email)) do update
            set position = excluded.position where contact_email.position <> excluded.position",
    )
    .bind(org)
    .bind(id)
    .bind(&emails)
    .bind(&positions)
    .execute(tx.conn())
    .await?;
    let phones: Vec<String> = input.phones.clone();
    let positions: Vec<i16> = (0..phones.len() as i16).collect();
    sqlx::query(
        "delete from contact_phone where organisation_id = $1 and contact_id = $2
            and phone <> all($3::text[])",
    )
    .bind(org)
    .bind(id)
    .bind(&phones)
    .execute(tx.conn())
    .await?;
    sqlx::query(
        "insert into contact_phone (organisation_id, id, contact_id, phone, position)
         select $1, gen_random_uuid(), $2, x.phone, x.position
           from unnest($3::text[], $4::smallint[]) as x(phone, position)
         on conflict (organisation_id, contact_id, phone) do update
            set position = excluded.position where contact_phone.position <> excluded.position",
    )
    .bind(org)
    .bind(id)
    .bind(&phones)
    .bind(&positions)
    .execute(tx.conn())
    .await?;
    sqlx::query(
        "delete from contact_role where organisation_id = $1 and contact_id = $2
            and role <> all($3::text[])",
    )
    .bind(org)
    .bind(id)
    .bind(&input.roles)
    .execute(tx.conn())
    .await?;
    sqlx::query(
        "insert into contact_role (organisation_id, id, contact_id, role)
         select $1, gen_random_uuid(), $2, r from unnest($3::text[]) r
         on conflict (organisation_id, contact_id, role) do nothing",
    )
    .bind(org)
    .bind(id)
    .bind(&input.roles)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Adds a role to a contact if it lacks it.
pub async fn add_role(tx: &mut TenantTx, contact: Uuid, role: &str) -> Result<(), DbError> {
    sqlx::query(
        "insert into contact_role (organisation_id, id, contact_id, role)
         values ($1, gen_random_uuid(), $2, $3)
         on conflict (organisation_id, contact_id, role) do nothing",
    )
    .bind(tx.org().0)
    .bind(contact)
    .bind(role)
    .execute(tx.conn())
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Company officers (RMC/RTM directors)

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Officer {
    pub id: Uuid,
    pub company_id: Uuid,
    pub company_name: String,
    pub person_id: Uuid,
    pub person_name: String,
    pub position: String,
    pub appointed_on: Option<Date>,
    pub resigned_on: Option<Date>,
}

pub async fn add_officer(
    tx: &mut TenantTx,
    company: Uuid,
    person: Uuid,
    position: &str,
    appointed_on: Option<Date>,
) -> Result<Uuid, DbError> {
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into company_officer (organisation_id, id, company_id, person_id, position, appointed_on)
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(company)
    .bind(person)
    .bind(position)
    .bind(appointed_on)
    .execute(tx.conn())
    .await?;
    add_role(tx, person, "director").await?;
    Ok(id)
}

/// Officers of a company (as `company`) or positions a person holds (as `person`).
pub async fn officers(tx: &mut TenantTx, contact: Uuid) -> Result<Vec<Officer>, DbError> {
    Ok(sqlx::query_as(
        "select f.id, f.company_id, c.display_name as company_name, f.person_id,
                p.display_name as person_name, f.position, f.appointed_on, f.resigned_on
           from company_officer f
           join contact c on c.organisation_id = f.organisation_id and c.id = f.company_id
           join contact p on p.organisation_id = f.organisation_id and p.id = f.person_id
          where f.organisation_id = $1 and (f.company_id = $2 or f.person_id = $2)
          order by f.resigned_on nulls first, lower(p.display_name)",
    )
    .bind(tx.org().0)
    .bind(contact)
    .fetch_all(tx.conn())
    .await?)
}

// ---------------------------------------------------------------------------------------------
// Leases and occupancy

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Lease {
    pub id: Uuid,
    pub unit_id: Uuid,
    pub unit_reference: String,
    pub unit_name: String,
    pub site_id: Uuid,
    pub site_reference: String,
    pub starts_on: Date,
    pub ends_on: Option<Date>,
    pub term_start: Option<Date>,
    pub term_years: Option<i32>,
    pub ground_rent_pence: Option<i64>,
    pub ground_rent_review: Option<String>,
    pub s48_notice_on: Option<Date>,
    pub notes: Option<String>,
    pub holder_ids: Vec<Uuid>,
    pub holder_names: Vec<String>,
}

impl Lease {
    pub fn is_current(&self, today: Date) -> bool {
        self.starts_on <= today && self.ends_on.is_none_or(|end| end > today)
    }

    pub fn holders_label(&self) -> String {
        self.holder_names.join(" & ")
    }
}

#[derive(Debug, Clone, Default)]
pub struct LeaseInput {
    pub starts_on: Option<Date>,
    pub ends_on: Option<Date>,
    pub term_start: Option<Date>,
    pub term_years: Option<i32>,
    pub ground_rent_pence: Option<i64>,
    pub ground_rent_review: Option<String>,
    pub s48_notice_on: Option<Date>,
    pub notes: Option<String>,
    /// Joint holders, in order.
    pub holders: Vec<Uuid>,
}

const LEASE_SELECT: &str = "select l.id, l.unit_id, u.reference as unit_reference, u.name as unit_name,
    u.site_id, s.reference as site_reference, l.starts_on, l.ends_on, l.term_start, l.term_years,
    l.ground_rent_pence, l.ground_rent_review, l.s48_notice_on, l.notes,
    array(select h.contact_id from lease_holder h where h.organisation_id = l.organisation_id
           and h.lease_id = l.id order by h.position) as holder_ids,
    array(select c.display_name from lease_holder h join contact c
             on c.organisation_id = h.organisation_id and c.id = h.contact_id
           where h.organisation_id = l.organisation_id and h.lease_id = l.id order by h.position) as holder_names
    from lease l
    join unit u on u.organisation_id = l.organisation_id and u.id = l.unit_id
    join site s on s.organisation_id = u.organisation_id and s.id = u.site_id";

/// A unit's leases, newest first (the history of who held it).
pub async fn unit_leases(tx: &mut TenantTx, unit: Uuid) -> Result<Vec<Lease>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{LEASE_SELECT} where l.organisation_id = $1 and l.unit_id = $2 order by l.starts_on desc"
    )))
    .bind(tx.org().0)
    .bind(unit)
    .fetch_all(tx.conn())
    .await?)
}

/// Leases a contact holds or held.
pub async fn contact_leases(tx: &mut TenantTx, contact: Uuid) -> Result<Vec<Lease>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{LEASE_SELECT} where l.organisation_id = $1
            and exists (select from lease_holder h where h.organisation_id = l.organisation_id
                          and h.lease_id = l.id and h.contact_id = $2)
          order by l.starts_on desc"
    )))
    .bind(tx.org().0)
    .bind(contact)
    .fetch_all(tx.conn())
    .await?)
}

/// Why a lease could not be recorded, in words for the form.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("Enter the date the lease (or this ownership) starts.")]
    NoStart,
    #[error("A lease needs at least one leaseholder (and at most four joint leaseholders).")]
    Holders,
    #[error(
        "These dates overlap another lease of this unit. End the current lease first, or record a change of ownership."
    )]
    Overlap,
    #[error("The end date must be after the start date.")]
    EndBeforeStart,
    #[error("The change of ownership must take effect after the current lease started ({0}).")]
    TooEarly(String),
    #[error("This unit has no current lease to transfer; record a new lease instead.")]
    NoCurrentLease,
    #[error(transparent)]
    Db(#[from] DbError),
}

fn lease_db_error(e: sqlx::Error) -> LeaseError {
    match DbError::from(e) {
        DbError::Duplicate { constraint } if constraint == "lease_no_overlap" => {
            LeaseError::Overlap
        }
        DbError::Invalid { constraint } if constraint == "lease_ends_on_check" => {
            LeaseError::EndBeforeStart
        }
        other => LeaseError::Db(other),
    }
}

/// Records a lease of `unit` held by the input's holders.
pub async fn add_lease(
    tx: &mut TenantTx,
    unit: Uuid,
    input: &LeaseInput,
) -> Result<Uuid, LeaseError> {
    let starts_on = input.starts_on.ok_or(LeaseError::NoStart)?;
    if input.holders.is_empty() || input.holders.len() > 4 {
        return Err(LeaseError::Holders);
    }
    if input.ends_on.is_some_and(|end| end <= starts_on) {
        return Err(LeaseError::EndBeforeStart);
    }
    let id = Uuid::now_v7();
    let org = tx.org().0;
    sqlx::query(
        "insert into lease (organisation_id, id, unit_id, starts_on, ends_on, term_start, term_years,
                            ground_rent_pence, ground_rent_review, s48_notice_on, notes)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(org)
    .bind(id)
    .bind(unit)
    .bind(starts_on)
    .bind(input.ends_on)
    .bind(input.term_start)
    .bind(input.term_years)
    .bind(input.ground_rent_pence)
    .bind(&input.ground_rent_review)
    .bind(input.s48_notice_on)
    .bind(&input.notes)
    .execute(tx.conn())
    .await
    .map_err(lease_db_error)?;
    set_holders(tx, id, &input.holders).await?;
    Ok(id)
}

async fn set_holders(tx: &mut TenantTx, lease: Uuid, holders: &[Uuid]) -> Result<(), LeaseError> {
    let positions: Vec<i16> = (0..holders.len() as i16).collect();
    sqlx::query(
        "insert into lease_holder (organisation_id, id, lease_id, contact_id, position)
         select $1, gen_random_uuid(), $2, x.contact, x.position
           from unnest($3::uuid[], $4::smallint[]) as x(contact, position)",
    )
    .bind(tx.org().0)
    .bind(lease)
    .bind(holders)
    .bind(&positions)
    .execute(tx.conn())
    .await
    .map_err(lease_db_error)?;
    sqlx::query(
        "insert into contact_role (organisation_id, id, contact_id, role)
         select $1, gen_random_uuid(), c, 'leaseholder' from unnest($2::uuid[]) c
         on conflict (organisation_id, contact_id, role) do nothing",
    )
    .bind(tx.org().0)
    .bind(holders)
    .execute(tx.conn())
    .await
    .map_err(lease_db_error)?;
    Ok(())
}

/// A change of ownership: the current lease of `unit` ends on `effective` and the same lease
/// terms continue from that date with `new_holders`. The old holders stay in the history.
pub async fn change_ownership(
    tx: &mut TenantTx,
    unit: Uuid,
    effective: Date,
    new_holders: &[Uuid],
) -> Result<Uuid, LeaseError> {
    if new_holders.is_empty() || new_holders.len() > 4 {
        return Err(LeaseError::Holders);
    }
    let current: Option<(Uuid, Date)> = sqlx::query_as(
        "select id, starts_on from lease
          where organisation_id = $1 and unit_id = $2 and ends_on is null
          for update",
    )
    .bind(tx.org().0)
    .bind(unit)
    .fetch_optional(tx.conn())
    .await
    .map_err(lease_db_error)?;
    let (current, started) = current.ok_or(LeaseError::NoCurrentLease)?;
    if effective <= started {
        return Err(LeaseError::TooEarly(proplink_domain::dates::long_date(
            started,
        )));
    }
    sqlx::query("update lease set ends_on = $3 where organisation_id = $1 and id = $2")
        .bind(tx.org().0)
        .bind(current)
        .bind(effective)
        .execute(tx.conn())
        .await
        .map_err(lease_db_error)?;
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into lease (organisation_id, id, unit_id, starts_on, term_start, term_years,
                            ground_rent_pence, ground_rent_review, s48_notice_on, notes)
         select organisation_id, $3, unit_id, $4, term_start, term_years, ground_rent_pence,
                ground_rent_review, s48_notice_on, null
           from lease where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(current)
    .bind(id)
    .bind(effective)
    .execute(tx.conn())
    .await
    .map_err(lease_db_error)?;
    set_holders(tx, id, new_holders).await?;
    Ok(id)
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Occupancy {
    pub id: Uuid,
    pub unit_id: Uuid,
    pub unit_reference: String,
    pub contact_id: Uuid,
    pub contact_name: String,
    pub kind: String,
    pub starts_on: Date,
    pub ends_on: Option<Date>,
}

pub async fn add_occupancy(
    tx: &mut TenantTx,
    unit: Uuid,
    contact: Uuid,
    kind: &str,
    starts_on: Date,
    ends_on: Option<Date>,
) -> Result<Uuid, LeaseError> {
    if ends_on.is_some_and(|end| end <= starts_on) {
        return Err(LeaseError::EndBeforeStart);
    }
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into occupancy (organisation_id, id, unit_id, contact_id, kind, starts_on, ends_on)
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(unit)
    .bind(contact)
    .bind(kind)
    .bind(starts_on)
    .bind(ends_on)
    .execute(tx.conn())
    .await
    .map_err(|e| match DbError::from(e) {
        DbError::Duplicate { constraint } if constraint == "occupancy_no_overlap" => {
            LeaseError::Overlap
        }
        other => LeaseError::Db(other),
    })?;
    add_role(tx, contact, "tenant").await?;
    Ok(id)
}

/// Records the day an occupant moved out (or corrects it). Refused before they moved in, or
/// when the occupancy is not one of `unit`'s.
pub async fn end_occupancy(
    tx: &mut TenantTx,
    unit: Uuid,
    occupancy: Uuid,
    ends_on: Date,
) -> Result<(), LeaseError> {
    let starts_on: Option<Date> = sqlx::query_scalar(
        "select starts_on from occupancy where organisation_id = $1 and id = $2 and unit_id = $3
            for update",
    )
    .bind(tx.org().0)
    .bind(occupancy)
    .bind(unit)
    .fetch_optional(tx.conn())
    .await
    .map_err(DbError::from)?;
    let Some(starts_on) = starts_on else {
        return Err(LeaseError::Db(DbError::NotFound));
    };
    if ends_on <= starts_on {
        return Err(LeaseError::EndBeforeStart);
    }
    sqlx::query("update occupancy set ends_on = $3 where organisation_id = $1 and id = $2")
        .bind(tx.org().0)
        .bind(occupancy)
        .bind(ends_on)
        .execute(tx.conn())
        .await
        .map_err(|e| match DbError::from(e) {
            DbError::Duplicate { constraint } if constraint == "occupancy_no_overlap" => {
                LeaseError::Overlap
            }
            other => LeaseError::Db(other),
        })?;
    Ok(())
}

/// Records the day an officer of `company` resigned (or corrects it). `Err` with the
/// sentence to show when it is before their appointment; `NotFound` when the officer is not
/// one of the company's.
pub async fn resign_officer(
    tx: &mut TenantTx,
    company: Uuid,
    officer: Uuid,
    resigned_on: Date,
) -> Result<Result<(), String>, DbError> {
    let appointed: Option<(Option<Date>,)> = sqlx::query_as(
        "select appointed_on from company_officer
          where organisation_id = $1 and id = $2 and company_id = $3 for update",
    )
    .bind(tx.org().0)
    .bind(officer)
    .bind(company)
    .fetch_optional(tx.conn())
    .await?;
    let Some((appointed_on,)) = appointed else {
        return Err(DbError::NotFound);
    };
    if let Some(appointed_on) = appointed_on.filter(|a| resigned_on < *a) {
        return Ok(Err(format!(
            "They were appointed on {}: they cannot have resigned before that.",
            proplink_domain::dates::long_date(appointed_on)
        )));
    }
    sqlx::query(
        "update company_officer set resigned_on = $3 where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(officer)
    .bind(resigned_on)
    .execute(tx.conn())
    .await?;
    Ok(Ok(()))
}

/// Occupants of a unit (`unit` Some) or occupancies of a contact.
pub async fn occupancies(
    tx: &mut TenantTx,
    unit: Option<Uuid>,
    contact: Option<Uuid>,
) -> Result<Vec<Occupancy>, DbError> {
    Ok(sqlx::query_as(
        "select o.id, o.unit_id, u.reference as unit_reference, o.contact_id,
                c.display_name as contact_name, o.kind, o.starts_on, o.ends_on
           from occupancy o
           join unit u on u.organisation_id = o.organisation_id and u.id = o.unit_id
           join contact c on c.organisation_id = o.organisation_id and c.id = o.contact_id
          where o.organisation_id = $1 and ($2::uuid is null or o.unit_id = $2)
            and ($3::uuid is null or o.contact_id = $3)
          order by o.starts_on desc",
    )
    .bind(tx.org().0)
    .bind(unit)
    .bind(contact)
    .fetch_all(tx.conn())
    .await?)
}

// ---------------------------------------------------------------------------------------------
// Vendors

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Vendor {
    pub id: Uuid,
    pub name: String,
    pub trade: String,
    pub contact_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company_number: Option<String>,
    pub vat_number: Option<String>,
    pub address_line_1: Option<String>,
    pub address_line_2: Option<String>,
    pub city: Option<String>,
    pub postcode: Option<String>,
    pub bank_account_name: Option<String>,
    /// "56/5678": the sort code's last two digits and the account's last four, for masking.
    pub bank_last_digits: Option<String>,
    pub notes: Option<String>,
    pub archived_at: Option<OffsetDateTime>,
}

impl Vendor {
    /// "**-**-56 ****5678", or None without bank details.
    pub fn masked_bank(&self) -> Option<String> {
        let (sort, account) = self.bank_last_digits.as_deref()?.split_once('/')?;
        Some(format!("**-**-{sort} ****{account}"))
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

/// Bank details in the clear (only ever in memory).
#[derive(Clone, PartialEq, Eq)]
pub struct BankDetails {
    /// Six digits.
    pub sort_code: String,
    /// Eight digits.
    pub account_number: String,
}

impl std::fmt::Debug for BankDetails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BankDetails([redacted])")
    }
}

#[derive(Debug, Clone, Default)]
pub struct VendorInput {
    pub name: String,
    pub trade: String,
    pub contact_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company_number: Option<String>,
    pub vat_number: Option<String>,
    pub address: Address,
    pub bank_account_name: Option<String>,
    /// None keeps what is stored (an edit form never shows the numbers back).
    pub bank: Option<BankDetails>,
    pub notes: Option<String>,
}

const VENDOR_COLUMNS: &str = "id, name, trade, contact_name, email, phone, company_number,
    vat_number, address_line_1, address_line_2, city, postcode, bank_account_name,
    bank_last_digits, notes, archived_at";

fn seal_context(org: Uuid, vendor: Uuid) -> Vec<u8> {
    format!("vendor-bank/{org}/{vendor}").into_bytes()
}

pub async fn list_vendors(
    tx: &mut TenantTx,
    showing: Showing,
    q: &str,
) -> Result<Vec<Vendor>, DbError> {
    // Sized for this organisation: see TenantTx::plan_for_this_organisation.
    tx.plan_for_this_organisation().await?;
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {VENDOR_COLUMNS} from vendor
          where organisation_id = $1
            and case $2 when 'live' then archived_at is null
                        when 'archived' then archived_at is not null else true end
            and ($3 = '' or name ilike '%' || $3 || '%' or trade ilike '%' || $3 || '%')
          order by lower(name)"
    )))
    .bind(tx.org().0)
    .bind(showing.key())
    .bind(like_escape(q))
    .fetch_all(tx.conn())
    .await?)
}

pub async fn vendor(tx: &mut TenantTx, id: Uuid) -> Result<Option<Vendor>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {VENDOR_COLUMNS} from vendor where organisation_id = $1 and id = $2"
    )))
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

pub async fn save_vendor(
    tx: &mut TenantTx,
    key: &DataKey,
    id: Option<Uuid>,
    input: &VendorInput,
) -> Result<Uuid, DbError> {
    let id = id.unwrap_or_else(Uuid::now_v7);
    let org = tx.org().0;
    let (sealed, last) = match &input.bank {
        Some(bank) => {
            let plain = format!("{}/{}", bank.sort_code, bank.account_number);
            let last = format!(
                "{}/{}",
                &bank.sort_code[bank.sort_code.len().saturating_sub(2)..],
                &bank.account_number[bank.account_number.len().saturating_sub(4)..]
            );
            (
                Some(key.seal(plain.as_bytes(), &seal_context(org, id))),
                Some(last),
            )
        }
        None => (None, None),
    };
    sqlx::query(
        "insert into vendor (organisation_id, id, name, trade, contact_name, email, phone,
                             company_number, vat_number, address_line_1, address_line_2, city,
                             postcode, bank_account_name, bank_sealed, bank_last_digits, notes)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
         on conflict (organisation_id, id) do update
            set name = excluded.name, trade = excluded.trade, contact_name = excluded.contact_name,
                email = excluded.email, phone = excluded.phone,
                company_number = excluded.company_number, vat_number = excluded.vat_number,
                address_line_1 = excluded.address_line_1, address_line_2 = excluded.address_line_2,
                city = excluded.city, postcode = excluded.postcode,
                bank_account_name = excluded.bank_account_name,
                bank_sealed = coalesce(excluded.bank_sealed, vendor.bank_sealed),
                bank_last_digits = coalesce(excluded.bank_last_digits, vendor.bank_last_digits),
                notes = excluded.notes, updated_at = now()",
    )
    .bind(org)
    .bind(id)
    .bind(input.name.trim())
    .bind(input.trade.trim())
    .bind(&input.contact_name)
    .bind(&input.email)
    .bind(&input.phone)
    .bind(&input.company_number)
    .bind(&input.vat_number)
    .bind(&input.address.line_1)
    .bind(&input.address.line_2)
    .bind(&input.address.city)
    .bind(&input.address.postcode)
    .bind(&input.bank_account_name)
    .bind(sealed)
    .bind(last)
    .bind(&input.notes)
    .execute(tx.conn())
    .await?;
    Ok(id)
}

/// The vendor's bank details in the clear, for paying them (later issues) and for tests.
pub async fn vendor_bank_details(
    tx: &mut TenantTx,
    key: &DataKey,
    id: Uuid,
) -> Result<Option<BankDetails>, DbError> {
    let org = tx.org().0;
    let sealed: Option<Option<Vec<u8>>> =
        sqlx::query_scalar("select bank_sealed from vendor where organisation_id = $1 and id = $2")
            .bind(org)
            .bind(id)
            .fetch_optional(tx.conn())
            .await?;
    let Some(Some(sealed)) = sealed else {
        return Ok(None);
    };
    let plain = key
        .open(&sealed, &seal_context(org, id))
        .map_err(|e| DbError::Unavailable(e.to_string()))?;
    let text = String::from_utf8(plain).map_err(|e| DbError::Unavailable(e.to_string()))?;
    let (sort_code, account_number) = text
        .split_once('/')
        .ok_or_else(|| DbError::Unavailable("sealed bank details are malformed".into()))?;
    Ok(Some(BankDetails {
        sort_code: sort_code.to_owned(),
        account_number: account_number.to_owned(),
    }))
}

// ---------------------------------------------------------------------------------------------
// Merge and subject access

/// Why two contacts could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("A contact cannot be merged into itself.")]
    Same,
    #[error("One of these contacts was already merged into another; merge into that one instead.")]
    AlreadyMerged,
    #[error("A person and a company cannot be merged.")]
    DifferentKinds,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Merges `duplicate` into `keep`: its e-mails, phones, roles, leases, occupancies and
/// positions move to `keep`; the duplicate stays, marked merged, so its history (and the audit
/// trail of both) is preserved.
pub async fn merge_contacts(
    tx: &mut TenantTx,
    keep: Uuid,
    duplicate: Uuid,
) -> Result<(), MergeError> {
    if keep == duplicate {
        return Err(MergeError::Same);
    }
    let org = tx.org().0;
    let rows: Vec<(Uuid, String, Option<Uuid>)> = sqlx::query_as(
        "select id, kind, merged_into_id from contact
          where organisation_id = $1 and id = any($2) for update",
    )
    .bind(org)
    .bind([keep, duplicate])
    .fetch_all(tx.conn())
    .await
    .map_err(DbError::from)?;
    if rows.len() != 2 {
        return Err(MergeError::Db(DbError::NotFound));
    }
    if rows.iter().any(|(_, _, merged)| merged.is_some()) {
        return Err(MergeError::AlreadyMerged);
    }
    if rows[0].1 != rows[1].1 {
        return Err(MergeError::DifferentKinds);
    }
    for sql in [
        "insert into contact_email (organisation_id, id, contact_id, email, position)
         select organisation_id, gen_random_uuid(), $2, email, position + 100 from contact_email
          where organisation_id = $1 and contact_id = $3
         on conflict (organisation_id, contact_id, lower(email)) do nothing",
        "insert into contact_phone (organisation_id, id, contact_id, phone, position)
         select organisation_id, gen_random_uuid(), $2, phone, position + 100 from contact_phone
          where organisation_id = $1 and contact_id = $3
         on conflict (organisation_id, contact_id, phone) do nothing",
        "insert into contact_role (organisation_id, id, contact_id, role)
         select organisation_id, gen_random_uuid(), $2, role from contact_role
          where organisation_id = $1 and contact_id = $3
         on conflict (organisation_id, contact_id, role) do nothing",
        // A lease both held jointly keeps one holder line.
        "delete from lease_holder d where d.organisation_id = $1 and d.contact_id = $3
            and exists (select from lease_holder k where k.organisation_id = d.organisation_id
                          and k.lease_id = d.lease_id and k.contact_id = $2)",
        "update lease_holder set contact_id = $2 where organisation_id = $1 and contact_id = $3",
        "update occupancy set contact_id = $2 where organisation_id = $1 and contact_id = $3",
        "update company_officer set person_id = $2 where organisation_id = $1 and person_id = $3",
        "update company_officer set company_id = $2 where organisation_id = $1 and company_id = $3",
        "update site set management_company_id = $2 where organisation_id = $1 and management_company_id = $3",
        "update estate set freeholder_id = $2 where organisation_id = $1 and freeholder_id = $3",
        "delete from contact_email where organisation_id = $1 and contact_id = $3",
        "delete from contact_phone where organisation_id = $1 and contact_id = $3",
        "update contact set merged_into_id = $2, reference = null, updated_at = now()
          where organisation_id = $1 and id = $3",
        "update contact set updated_at = now() where organisation_id = $1 and id = $2",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(org)
            .bind(keep)
            .bind(duplicate)
            .execute(tx.conn())
            .await
            .map_err(DbError::from)?;
    }
    Ok(())
}

/// Possible duplicates of a contact: another live contact sharing an e-mail, or the same name
/// and postcode, or the same name and phone.
pub async fn possible_duplicates(
    tx: &mut TenantTx,
    id: Uuid,
) -> Result<Vec<(Uuid, String, String)>, DbError> {
    Ok(sqlx::query_as(
        "with me as (select * from contact where organisation_id = $1 and id = $2)
         select c.id, c.display_name,
                case when exists (select from contact_email a join contact_email b
                                    on b.organisation_id = a.organisation_id and lower(b.email) = lower(a.email)
                                   where a.organisation_id = $1 and a.contact_id = $2 and b.contact_id = c.id)
                     then 'same e-mail'
                     when c.postcode is not null and c.postcode = me.postcode then 'same name and postcode'
                     else 'same name and phone' end as reason
           from contact c, me
          where c.organisation_id = $1 and c.id <> $2 and c.merged_into_id is null
            and c.archived_at is null and c.kind = me.kind
            and (exists (select from contact_email a join contact_email b
                           on b.organisation_id = a.organisation_id and lower(b.email) = lower(a.email)
                          where a.organisation_id = $1 and a.contact_id = $2 and b.contact_id = c.id)
                 or (lower(c.display_name) = lower(me.display_name)
                     and ((c.postcode is not null and c.postcode = me.postcode)
                          or exists (select from contact_phone a join contact_phone b
                                       on b.organisation_id = a.organisation_id and b.phone = a.phone
                                      where a.organisation_id = $1 and a.contact_id = $2 and b.contact_id = c.id))))
          order by lower(c.display_name) limit 20",
    )
    .bind(tx.org().0)
    .bind(id)
    .fetch_all(tx.conn())
    .await?)
}

/// Everything held about one contact (UK GDPR Art. 15), as one JSON document: the record, its
/// e-mails, phones, roles, positions, leases, occupancies, the e-mails sent to its addresses,
/// and the audit events about any of those records.
pub async fn subject_access(tx: &mut TenantTx, id: Uuid) -> Result<serde_json::Value, DbError> {
    let value: Option<serde_json::Value> = sqlx::query_scalar(
        "select jsonb_build_object(
            'contact', to_jsonb(c) - 'organisation_id',
            'emails', coalesce((select jsonb_agg(e.email order by e.position) from contact_email e
                                 where e.organisation_id = c.organisation_id and e.contact_id = c.id), '[]'),
            'phones', coalesce((select jsonb_agg(p.phone order by p.position) from contact_phone p
                                 where p.organisation_id = c.organisation_id and p.contact_id = c.id), '[]'),
            'roles', coalesce((select jsonb_agg(r.role order by r.role) from contact_role r
                                where r.organisation_id = c.organisation_id and r.contact_id = c.id), '[]'),
            'positions', coalesce((select jsonb_agg(to_jsonb(f) - 'organisation_id') from company_officer f
                                    where f.organisation_id = c.organisation_id
                                      and (f.person_id = c.id or f.company_id = c.id)), '[]'),
            'leases', coalesce((select jsonb_agg((to_jsonb(l) - 'organisation_id')
                                       || jsonb_build_object('unit', u.reference, 'site', s.reference)
                                       order by l.starts_on)
                                  from lease l
                                  join lease_holder h on h.organisation_id = l.organisation_id and h.lease_id = l.id
                                  join unit u on u.organisation_id = l.organisation_id and u.id = l.unit_id
                                  join site s on s.organisation_id = u.organisation_id and s.id = u.site_id
                                 where h.organisation_id = c.organisation_id and h.contact_id = c.id), '[]'),
            'occupancies', coalesce((select jsonb_agg(to_jsonb(o) - 'organisation_id') from occupancy o
                                      where o.organisation_id = c.organisation_id and o.contact_id = c.id), '[]'),
            'merged_records', coalesce((select jsonb_agg(m.id) from contact m
                                         where m.organisation_id = c.organisation_id and m.merged_into_id = c.id), '[]'),
            'emails_sent', coalesce((select jsonb_agg(jsonb_build_object('to', m.to_address, 'subject', m.subject,
                                                                          'status', m.status, 'queued_at', m.created_at)
                                                       order by m.created_at)
                                       from email_message m
                                      where m.organisation_id = c.organisation_id
                                        and lower(m.to_address) in (select lower(e.email) from contact_email e
                                                                     where e.organisation_id = c.organisation_id
                                                                       and e.contact_id = c.id)), '[]'),
            'audit_events', coalesce((select jsonb_agg(jsonb_build_object('seq', a.seq, 'table', a.table_name,
                                                                           'record', a.record_id, 'operation', a.operation,
                                                                           'changes', a.changes, 'by', a.actor_name,
                                                                           'channel', a.channel, 'at', a.occurred_at)
                                                        order by a.seq)
                                        from audit_event a
                                       where a.organisation_id = c.organisation_id
                                         and (a.record_id = c.id::text
                                              or a.changes -> 'contact_id' ->> 'new' = c.id::text
                                              or a.changes -> 'contact_id' ->> 'old' = c.id::text
                                              or a.changes -> 'person_id' ->> 'new' = c.id::text)), '[]'))
           from contact c where c.organisation_id = $1 and c.id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    value.ok_or(DbError::NotFound)
}

/// Why a contact's personal data could not be erased, in words for the confirmation page.
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error("This contact's personal data was already erased.")]
    AlreadyErased,
    #[error(
        "This record was merged into another contact; erase that contact instead (its erasure covers this one)."
    )]
    Merged,
    #[error(
        "They hold a current or future lease or occupancy ({0}): their details are still needed to perform it (UK GDPR Art. 6(1)(b)), so they cannot be erased yet. Record the end of the lease or occupancy first."
    )]
    StillHolding(String),
    #[error("They are a serving director or officer of {0}. Record their resignation first.")]
    StillOfficer(String),
    #[error("Give the reason for the erasure (the request and its date), up to 500 characters.")]
    Reason,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    pub erasure_id: Uuid,
    /// Contact records erased: this one and any merged into it.
    pub contacts: usize,
    /// Audit events whose personal data was stripped.
    pub stripped_events: usize,
}

/// The contact columns an erasure replaces, in the record and in its audit events.
const ERASED_CONTACT_COLUMNS: [&str; 13] = [
    "title",
    "first_name",
    "last_name",
    "company_name",
    "company_number",
    "display_name",
    "address_line_1",
    "address_line_2",
    "city",
    "postcode",
    "notes",
    "reference",
    "reference_key",
];

/// Erases a contact's personal data (UK GDPR Art. 17), with every contact merged into it:
/// names, company details, address, notes and reference become placeholders or nothing, their
/// e-mail addresses and phone numbers are deleted, and the same values are stripped from every
/// audit event about those records (see migration 0017), leaving the chain verifiable. Leases,
/// occupancies, roles and positions are kept: they name the contact only by id. Refused while
/// they hold a current or future lease or occupancy, or serve as an officer.
pub async fn erase_contact(
    tx: &mut TenantTx,
    id: Uuid,
    reason: &str,
) -> Result<Erased, EraseError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(EraseError::Reason);
    }
    let org = tx.org().0;
    let row: Option<(Option<OffsetDateTime>, Option<Uuid>)> = sqlx::query_as(
        "select erased_at, merged_into_id from contact
          where organisation_id = $1 and id = $2 for update",
    )
    .bind(org)
    .bind(id)
    .fetch_optional(tx.conn())
    .await
    .map_err(DbError::from)?;
    match row {
        None => return Err(DbError::NotFound.into()),
        Some((Some(_), _)) => return Err(EraseError::AlreadyErased),
        Some((None, Some(_))) => return Err(EraseError::Merged),
        Some((None, None)) => {}
    }
    let holding: Option<String> = sqlx::query_scalar(
        "select string_agg(distinct s.reference || ' ' || u.reference, ', ')
           from (select l.unit_id, l.ends_on from lease l
                   join lease_holder h on h.organisation_id = l.organisation_id and h.lease_id = l.id
                  where l.organisation_id = $1 and h.contact_id = $2
                 union all
                 select o.unit_id, o.ends_on from occupancy o
                  where o.organisation_id = $1 and o.contact_id = $2) held
           join unit u on u.organisation_id = $1 and u.id = held.unit_id
           join site s on s.organisation_id = $1 and s.id = u.site_id
          where held.ends_on is null or held.ends_on > current_date",
    )
    .bind(org)
    .bind(id)
    .fetch_one(tx.conn())
    .await
    .map_err(DbError::from)?;
    if let Some(units) = holding {
        return Err(EraseError::StillHolding(units));
    }
    let serving: Option<String> = sqlx::query_scalar(
        "select string_agg(distinct c.display_name, ', ')
           from company_officer o
           join contact c on c.organisation_id = o.organisation_id and c.id = o.company_id
          where o.organisation_id = $1 and o.person_id = $2 and o.resigned_on is null",
    )
    .bind(org)
    .bind(id)
    .fetch_one(tx.conn())
    .await
    .map_err(DbError::from)?;
    if let Some(companies) = serving {
        return Err(EraseError::StillOfficer(companies));
    }

    let contacts: Vec<Uuid> = sqlx::query_scalar(
        "select id from contact where organisation_id = $1 and (id = $2 or merged_into_id = $2)",
    )
    .bind(org)
    .bind(id)
    .fetch_all(tx.conn())
    .await
    .map_err(DbError::from)?;
    let ids: Vec<String> = contacts.iter().map(Uuid::to_string).collect();
    // Every e-mail and phone row these contacts ever had, deleted ones included: the audit
    // events name the contact in their contact_id.
    let details: Vec<(String, String)> = sqlx::query_as(
        "select distinct table_name, record_id from audit_event
          where organisation_id = $1 and table_name in ('contact_email', 'contact_phone')
            and coalesce(changes -> 'contact_id' ->> 'new', changes -> 'contact_id' ->> 'old')
                = any($2)",
    )
    .bind(org)
    .bind(&ids)
    .fetch_all(tx.conn())
    .await
    .map_err(DbError::from)?;

    // Every word they were ever searchable by (their entries now, and every value their audit
    // events hold), to take out of the search vocabulary (typo corrections) once no entry holds
    // it any more.
    let records: Vec<String> = ids
        .iter()
        .cloned()
        .chain(details.iter().map(|(_, record)| record.clone()))
        .collect();
    let words: Vec<String> = sqlx::query_scalar(
        "select w.word from search_entry e, proplink.search_words(e.body) w(word)
          where e.organisation_id = $1 and e.id = any($2)
         union
         select w.word
           from audit_event a
          cross join lateral jsonb_each(a.changes) c
          cross join lateral jsonb_each_text(case jsonb_typeof(c.value) when 'object' then c.value
                                                  else '{}'::jsonb end) v
          cross join lateral (select proplink.search_words(v.value)
                              union select proplink.search_words(lower(v.value))) w(word)
          where a.organisation_id = $1 and a.record_id = any($3)
            and a.table_name in ('contact', 'contact_email', 'contact_phone')",
    )
    .bind(org)
    .bind(&contacts)
    .bind(&records)
    .fetch_all(tx.conn())
    .await
    .map_err(DbError::from)?;

    for sql in [
        "update contact
            set title = null, first_name = null,
                last_name = case when kind = 'person' then 'Erased' end,
                company_name = case when kind = 'company' then 'Erased company' end,
                company_number = null,
                display_name = case when kind = 'company' then 'Erased company' else 'Erased contact' end,
                address_line_1 = null, address_line_2 = null, city = null, postcode = null,
                notes = null, reference = null, erased_at = now(),
                archived_at = coalesce(archived_at, now()), updated_at = now()
          where organisation_id = $1 and id = any($2)",
        "delete from contact_email where organisation_id = $1 and contact_id = any($2)",
        "delete from contact_phone where organisation_id = $1 and contact_id = any($2)",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(org)
            .bind(&contacts)
            .execute(tx.conn())
            .await
            .map_err(DbError::from)?;
    }

    sqlx::query(
        "delete from search_word w
          where w.organisation_id = $1 and w.word = any($2)
            and not exists (select from search_posting p
                             where p.organisation_id = w.organisation_id and p.word = w.word)",
    )
    .bind(org)
    .bind(&words)
    .execute(tx.conn())
    .await
    .map_err(DbError::from)?;

    let mut targets: Vec<serde_json::Value> = ids
        .iter()
        .map(|record| {
            serde_json::json!({
                "table": "contact", "record": record, "columns": ERASED_CONTACT_COLUMNS,
            })
        })
        .collect();
    targets.extend(details.iter().map(|(table, record)| {
        let columns: &[&str] = if table == "contact_email" {
            &["email", "email_key"]
        } else {
            &["phone"]
        };
        serde_json::json!({ "table": table, "record": record, "columns": columns })
    }));
    let erasure_id = Uuid::now_v7();
    let stripped: serde_json::Value =
        sqlx::query_scalar("select proplink.strip_audit_events($1, $2)")
            .bind(erasure_id)
            .bind(serde_json::Value::Array(targets))
            .fetch_one(tx.conn())
            .await
            .map_err(DbError::from)?;
    let stripped_events = stripped.as_array().map_or(0, Vec::len);
    sqlx::query(
        "insert into contact_erasure (organisation_id, id, contact_id, reason, stripped_events)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(org)
    .bind(erasure_id)
    .bind(id)
    .bind(reason)
    .bind(&stripped)
    .execute(tx.conn())
    .await
    .map_err(DbError::from)?;
    Ok(Erased {
        erasure_id,
        contacts: contacts.len(),
        stripped_events,
    })
}
