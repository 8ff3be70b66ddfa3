//! ResidencePort's data (docs-spec §2.10): which units a resident may see, what they owe,
//! their card payments and Direct Debits, the notices for their buildings, messages on the
//! requests they raised, and changes to their details waiting for a manager.
//!
//! A resident is a portal account linked to a contact. What they see follows that contact's
//! holdings: each lease they hold (leaseholder) and each occupancy (tenant or occupier) that
//! has started. A current holding shows everything of its unit from its start; an ended one
//! shows the unit's money read-only, up to its end date.

use crate::email::{self, NewEmail};
use crate::error::DbError;
use crate::ledger::LedgerError;
use crate::portal::{self, Portal, PortalAccount};
use crate::receivables::{self, Allocate, Invoice, ReceiptInput};
use crate::tenant::TenantTx;
use proplink_domain::EmailAddress;
use proplink_domain::dates::long_date;
use proplink_domain::receivables::PaymentMethod;
use proplink_domain::uk::format_pence;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Holdings: what a resident may see

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leaseholder,
    Tenant,
    Occupier,
}

impl Role {
    fn parse(s: &str) -> Self {
        match s {
            "leaseholder" => Self::Leaseholder,
            "tenant" => Self::Tenant,
            _ => Self::Occupier,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Leaseholder => "Leaseholder",
            Self::Tenant => "Tenant",
            Self::Occupier => "Occupier",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Holding {
    pub unit_id: Uuid,
    pub site_id: Uuid,
    pub building_id: Option<Uuid>,
    pub unit_reference: String,
    pub unit_name: String,
    pub site_name: String,
    pub building_name: Option<String>,
    pub role_key: String,
    pub starts_on: Date,
    /// The first day it no longer applies (exclusive), if it has ended or will.
    pub ends_on: Option<Date>,
    /// A director of the site's management company (RMC or RTM).
    pub director: bool,
}

impl Holding {
    pub fn role(&self) -> Role {
        Role::parse(&self.role_key)
    }

    pub fn is_current(&self, today: Date) -> bool {
        self.ends_on.is_none_or(|end| end > today)
    }

    /// The last day it applied, for an ended holding.
    pub fn last_day(&self) -> Option<Date> {
        self.ends_on.and_then(|d| d.previous_day())
    }

    /// Whether a date falls within the holding.
    pub fn covers(&self, day: Date) -> bool {
        day >= self.starts_on && self.ends_on.is_none_or(|end| day < end)
    }

    /// "Flat 3, Riverside Court".
    pub fn place(&self) -> String {
        format!("{}, {}", self.unit_name, self.site_name)
    }
}

/// The contact's holdings that have started by `today`: current ones first, then ended ones,
/// newest first within each unit.
///
/// Two steps, so no plan can start from the organisation's units: the holding periods (by
/// the contact's index on leases held and occupancies), then those units by primary key.
pub async fn holdings(
    tx: &mut TenantTx,
    contact: Uuid,
    today: Date,
) -> Result<Vec<Holding>, DbError> {
    let held: Vec<(Uuid, String, Date, Option<Date>)> = sqlx::query_as(
        "select l.unit_id, 'leaseholder', l.starts_on, l.ends_on
           from lease_holder h
           join lease l on l.organisation_id = h.organisation_id and l.id = h.lease_id
          where h.organisation_id = $1 and h.contact_id = $2 and l.starts_on <= $3
         union all
         select o.unit_id, o.kind, o.starts_on, o.ends_on
           from occupancy o
          where o.organisation_id = $1 and o.contact_id = $2 and o.starts_on <= $3",
    )
    .bind(tx.org().0)
    .bind(contact)
    .bind(today)
    .fetch_all(tx.conn())
    .await?;
    if held.is_empty() {
        return Ok(Vec::new());
    }
    let mut units: Vec<Uuid> = held.iter().map(|h| h.0).collect();
    units.sort();
    units.dedup();
    type Place = (
        Uuid,
        Uuid,
        Option<Uuid>,
        String,
        String,
        String,
        Option<String>,
        bool,
    );
    let places: Vec<Place> = sqlx::query_as(
        "select u.id, u.site_id, u.building_id, u.reference, u.name, s.name, b.name,
                exists (select from company_officer co
                         where co.organisation_id = $1 and co.person_id = $3
                           and co.company_id = s.management_company_id and co.position = 'director'
                           and (co.appointed_on is null or co.appointed_on <= $4)
                           and (co.resigned_on is null or co.resigned_on > $4))
           from unit u
           join site s on s.organisation_id = u.organisation_id and s.id = u.site_id
           left join building b on b.organisation_id = u.organisation_id and b.id = u.building_id
          where u.organisation_id = $1 and u.id = any($2)",
    )
    .bind(tx.org().0)
    .bind(&units)
    .bind(contact)
    .bind(today)
    .fetch_all(tx.conn())
    .await?;
    let mut out: Vec<Holding> = held
        .into_iter()
        .filter_map(|(unit, role, starts_on, ends_on)| {
            let p = places.iter().find(|p| p.0 == unit)?;
            Some(Holding {
                unit_id: unit,
                site_id: p.1,
                building_id: p.2,
                unit_reference: p.3.clone(),
                unit_name: p.4.clone(),
                site_name: p.5.clone(),
                building_name: p.6.clone(),
                role_key: role,
                starts_on,
                ends_on,
                director: p.7,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.is_current(today)
            .cmp(&a.is_current(today))
            .then_with(|| a.site_name.cmp(&b.site_name))
            .then_with(|| a.unit_reference.cmp(&b.unit_reference))
            .then_with(|| b.starts_on.cmp(&a.starts_on))
    });
    Ok(out)
}

/// Whether a resident with these holdings may see an invoice: it is addressed to them, or it
/// was issued for a unit they hold as leaseholder within their holding. Drafts and voided
/// invoices are never shown.
pub fn may_see_invoice(holdings: &[Holding], contact: Uuid, invoice: &Invoice) -> bool {
    if matches!(
        invoice.status.as_str(),
        "draft" | "awaiting_approval" | "voided"
    ) {
        return false;
    }
    let Some(issued) = invoice.issue_date else {
        return false;
    };
    invoice.contact_id == contact && holdings.iter().any(|h| h.unit_id == invoice.unit_id)
        || holdings.iter().any(|h| {
            h.unit_id == invoice.unit_id && h.role() == Role::Leaseholder && h.covers(issued)
        })
}

/// The invoices a resident may see, newest first.
pub async fn visible_invoices(
    tx: &mut TenantTx,
    holdings: &[Holding],
    contact: Uuid,
) -> Result<Vec<Invoice>, DbError> {
    let mut units: Vec<Uuid> = holdings.iter().map(|h| h.unit_id).collect();
    units.sort();
    units.dedup();
    let mut out = Vec::new();
    for unit in units {
        for invoice in receivables::unit_invoices(tx, unit).await? {
            if may_see_invoice(holdings, contact, &invoice) {
                out.push(invoice);
            }
        }
    }
    out.sort_by(|a, b| {
        b.issue_date
            .cmp(&a.issue_date)
            .then_with(|| b.number.cmp(&a.number))
    });
    Ok(out)
}

/// The statement period a holding allows within `from..=to`: clamped to the holding's start
/// and (for an ended holding) its last day. None when nothing of it falls within the holding.
pub fn statement_window(holding: &Holding, from: Date, to: Date) -> Option<(Date, Date)> {
    let from = from.max(holding.starts_on);
    let to = match holding.last_day() {
        Some(last) => to.min(last),
        None => to,
    };
    (from <= to).then_some((from, to))
}

// ---------------------------------------------------------------------------------------------
// Accounts: invitations and requests for access

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteRefusal {
    #[error("{0} has no e-mail address. Add one to the contact first.")]
    NoEmail(String),
    #[error("{0} holds no lease or occupancy here. A resident needs at least one unit link.")]
    NoUnit(String),
    #[error("That contact has been merged or archived.")]
    NotLive,
    #[error("That e-mail address already belongs to another resident's account.")]
    EmailTaken,
}

#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    #[error(transparent)]
    Refused(#[from] InviteRefusal),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for InviteError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}

#[derive(sqlx::FromRow)]
struct InviteFacts {
    display_name: String,
    live: bool,
    email: Option<String>,
    has_unit: bool,
}

/// Invites a contact to ResidencePort: their account is made (or re-activated) under their
/// first e-mail address and an invitation e-mail names the portal's address. Refused without
/// an e-mail address or a current or future lease or occupancy.
pub async fn invite(
    tx: &mut TenantTx,
    contact: Uuid,
    portal_url: &str,
    organisation_name: &str,
    by: &str,
    now: OffsetDateTime,
) -> Result<Uuid, InviteError> {
    let today = now.date();
    let facts: Option<InviteFacts> = sqlx::query_as(
        "select c.display_name, c.merged_into_id is null and c.archived_at is null as live,
                (select e.email from contact_email e where e.organisation_id = c.organisation_id
                    and e.contact_id = c.id order by e.position, e.email limit 1) as email,
                exists (select from lease_holder h join lease l on l.organisation_id = h.organisation_id and l.id = h.lease_id
                         where h.organisation_id = c.organisation_id and h.contact_id = c.id
                           and (l.ends_on is null or l.ends_on > $3))
                or exists (select from occupancy o where o.organisation_id = c.organisation_id
                           and o.contact_id = c.id and (o.ends_on is null or o.ends_on > $3)) as has_unit
           from contact c where c.organisation_id = $1 and c.id = $2",
    )
    .bind(tx.org().0)
    .bind(contact)
    .bind(today)
    .fetch_optional(tx.conn())
    .await?;
    let Some(facts) = facts else {
        return Err(DbError::NotFound.into());
    };
    if !facts.live {
        return Err(InviteRefusal::NotLive.into());
    }
    let Some(email) = facts
        .email
        .as_deref()
        .and_then(|e| EmailAddress::parse(e).ok())
    else {
        return Err(InviteRefusal::NoEmail(facts.display_name).into());
    };
    if !facts.has_unit {
        return Err(InviteRefusal::NoUnit(facts.display_name).into());
    }
    let account = ensure_account(tx, contact, &email, &facts.display_name, now, Some(by)).await?;
    email::queue(
        tx,
        NewEmail {
            to_address: email.as_str().to_owned(),
            to_name: Some(facts.display_name.clone()),
            subject: format!("Your ResidencePort account with {organisation_name}"),
            body_text: format!(
                "Hello {},\n\n{organisation_name} has opened a ResidencePort account for you. There you can see your statement, pay, raise a request, read building notices and download shared documents.\n\nSign in at:\n\n    {portal_url}\n\nwith this e-mail address ({}). We will e-mail you a 6-digit code each time; there is no password.\n",
                facts.display_name,
                email.as_str()
            ),
            body_html: None,
            category: "residenceport_invitation".into(),
        },
    )
    .await?;
    Ok(account)
}

/// The contact's ResidencePort account, made or re-activated under `email`.
async fn ensure_account(
    tx: &mut TenantTx,
    contact: Uuid,
    email: &EmailAddress,
    name: &str,
    now: OffsetDateTime,
    invited_by: Option<&str>,
) -> Result<Uuid, InviteError> {
    let existing: Option<(Uuid, Option<Uuid>)> = sqlx::query_as(
        "select id, contact_id from portal_account
          where organisation_id = $1 and portal = 'residenceport'
            and (contact_id = $2 or lower(email) = lower($3))
          order by contact_id = $2 desc nulls last limit 1",
    )
    .bind(tx.org().0)
    .bind(contact)
    .bind(email.as_str())
    .fetch_optional(tx.conn())
    .await?;
    let id = match existing {
        Some((_, Some(other))) if other != contact => {
            return Err(InviteRefusal::EmailTaken.into());
        }
        Some((id, _)) => {
            let updated = sqlx::query(
                "update portal_account set contact_id = $3, email = $4, status = 'active',
                        invited_at = coalesce($5, invited_at), invited_by = coalesce($6, invited_by)
                  where organisation_id = $1 and id = $2",
            )
            .bind(tx.org().0)
            .bind(id)
            .bind(contact)
            .bind(email.as_str())
            .bind(invited_by.map(|_| now))
            .bind(invited_by)
            .execute(tx.conn())
            .await;
            match updated {
                Ok(_) => id,
                Err(e) => {
                    let e = DbError::from(e);
                    return Err(if matches!(e, DbError::Duplicate { .. }) {
                        InviteRefusal::EmailTaken.into()
                    } else {
                        e.into()
                    });
                }
            }
        }
        None => {
            let id = portal::create_account(tx, Portal::ResidencePort, email, name).await?;
            sqlx::query(
                "update portal_account set contact_id = $3, invited_at = $4, invited_by = $5
                  where organisation_id = $1 and id = $2",
            )
            .bind(tx.org().0)
            .bind(id)
            .bind(contact)
            .bind(invited_by.map(|_| now))
            .bind(invited_by)
            .execute(tx.conn())
            .await?;
            id
        }
    };
    Ok(id)
}

/// Every contact of a site holding a current lease or occupancy with an e-mail address and no
/// active account yet, for a bulk invitation.
pub async fn uninvited_on_site(
    tx: &mut TenantTx,
    site: Uuid,
    today: Date,
) -> Result<Vec<(Uuid, String)>, DbError> {
    Ok(sqlx::query_as(
        "select distinct c.id, c.display_name from contact c
           join (select h.contact_id, l.unit_id from lease_holder h
                   join lease l on l.organisation_id = h.organisation_id and l.id = h.lease_id
                  where h.organisation_id = $1 and (l.ends_on is null or l.ends_on > $3)
                 union
                 select o.contact_id, o.unit_id from occupancy o
                  where o.organisation_id = $1 and (o.ends_on is null or o.ends_on > $3)) held
             on held.contact_id = c.id
           join unit u on u.organisation_id = $1 and u.id = held.unit_id and u.site_id = $2
          where c.organisation_id = $1 and c.merged_into_id is null and c.archived_at is null
            and exists (select from contact_email e where e.organisation_id = $1 and e.contact_id = c.id)
            and not exists (select from portal_account a where a.organisation_id = $1
                             and a.portal = 'residenceport' and a.contact_id = c.id
                             and a.status = 'active')
          order by c.display_name",
    )
    .bind(tx.org().0)
    .bind(site)
    .bind(today)
    .fetch_all(tx.conn())
    .await?)
}

/// A resident asks for a sign-in code. With an account, a code is sent; without one, an
/// account is made only when the address is a live contact's holding a current lease or
/// occupancy here, and then a code is sent. The caller answers the same way whatever happened.
pub async fn request_code(
    tx: &mut TenantTx,
    key: &proplink_auth::codes::CodeKey,
    email: &EmailAddress,
    organisation_name: &str,
    now: OffsetDateTime,
) -> Result<bool, DbError> {
    if portal::find_account(tx, Portal::ResidencePort, email)
        .await?
        .is_none()
    {
        let today = now.date();
        let found: Option<(Uuid, String)> = sqlx::query_as(
            "select c.id, c.display_name from contact_email e
               join contact c on c.organisation_id = e.organisation_id and c.id = e.contact_id
              where e.organisation_id = $1 and e.email_key = lower($2)
                and c.merged_into_id is null and c.archived_at is null
                and (exists (select from lease_holder h join lease l on l.organisation_id = h.organisation_id and l.id = h.lease_id
                              where h.organisation_id = $1 and h.contact_id = c.id
                                and l.starts_on <= $3 and (l.ends_on is null or l.ends_on > $3))
                     or exists (select from occupancy o where o.organisation_id = $1 and o.contact_id = c.id
                                  and o.starts_on <= $3 and (o.ends_on is null or o.ends_on > $3)))
                and not exists (select from portal_account a where a.organisation_id = $1
                                 and a.portal = 'residenceport' and a.contact_id = c.id)
              order by c.created_at limit 1",
        )
        .bind(tx.org().0)
        .bind(email.as_str())
        .bind(today)
        .fetch_optional(tx.conn())
        .await?;
        let Some((contact, name)) = found else {
            return Ok(false);
        };
        match ensure_account(tx, contact, email, &name, now, None).await {
            Ok(_) => {}
            Err(InviteError::Db(e)) => return Err(e),
            Err(InviteError::Refused(_)) => return Ok(false),
        }
    }
    portal::request_sign_in_code(
        tx,
        key,
        Portal::ResidencePort,
        email,
        organisation_name,
        now,
    )
    .await
}

/// The contact a resident account belongs to.
pub async fn contact_of(tx: &mut TenantTx, account: Uuid) -> Result<Option<Uuid>, DbError> {
    Ok(sqlx::query_scalar(
        "select contact_id from portal_account where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(account)
    .fetch_optional(tx.conn())
    .await?
    .flatten())
}

/// The ResidencePort account of a contact, if any.
pub async fn account_of_contact(
    tx: &mut TenantTx,
    contact: Uuid,
) -> Result<Option<PortalAccount>, DbError> {
    Ok(sqlx::query_as(
        "select id, email, name, status from portal_account
          where organisation_id = $1 and portal = 'residenceport' and contact_id = $2",
    )
    .bind(tx.org().0)
    .bind(contact)
    .fetch_optional(tx.conn())
    .await?)
}

pub async fn set_account_status(
    tx: &mut TenantTx,
    account: Uuid,
    active: bool,
) -> Result<(), DbError> {
    sqlx::query(
        "update portal_account set status = $3 where organisation_id = $1 and id = $2 and portal = 'residenceport'",
    )
    .bind(tx.org().0)
    .bind(account)
    .bind(if active { "active" } else { "deactivated" })
    .execute(tx.conn())
    .await?;
    if !active {
        sqlx::query(
            "update portal_session set ended_at = now()
              where organisation_id = $1 and account_id = $2 and ended_at is null",
        )
        .bind(tx.org().0)
        .bind(account)
        .execute(tx.conn())
        .await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Payments by card and Direct Debit

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ResidentPayment {
    pub id: Uuid,
    pub site_id: Uuid,
    pub unit_id: Uuid,
    pub invoice_id: Uuid,
    pub account_id: Option<Uuid>,
    pub contact_id: Uuid,
    pub mandate_id: Option<Uuid>,
    pub method: String,
    pub provider: String,
    pub test_mode: bool,
    pub amount_pence: i64,
    pub provider_ref: String,
    pub provider_payment_ref: Option<String>,
    pub checkout_url: Option<String>,
    pub charge_date: Option<Date>,
    pub status: String,
    pub receipt_id: Option<Uuid>,
    pub failure_reason: Option<String>,
    pub created_at: OffsetDateTime,
    /// Who started it (the account's name), or the contact's for a collection.
    pub payer_name: String,
}

const PAYMENT_SELECT: &str = "select p.id, p.site_id, p.unit_id, p.invoice_id, p.account_id,
        p.contact_id, p.mandate_id, p.method, p.provider, p.test_mode, p.amount_pence,
        p.provider_ref, p.provider_payment_ref, p.checkout_url, p.charge_date, p.status,
        p.receipt_id, p.failure_reason, p.created_at,
        coalesce(a.name, c.display_name) as payer_name
   from resident_payment p
   join contact c on c.organisation_id = p.organisation_id and c.id = p.contact_id
   left join portal_account a on a.organisation_id = p.organisation_id and a.id = p.account_id";

/// A card payment about to be sent to the provider's checkout.
pub struct NewCardPayment<'a> {
    pub id: Uuid,
    pub invoice: &'a Invoice,
    pub account_id: Uuid,
    pub contact_id: Uuid,
    pub test_mode: bool,
    pub amount_pence: i64,
    pub session_ref: &'a str,
    pub checkout_url: &'a str,
}

/// What a resident may pay on an invoice now: its balance, unless a payment for it is already
/// on its way (a confirmed card payment not yet posted, or a Direct Debit collection).
pub async fn payable_pence(tx: &mut TenantTx, invoice: &Invoice) -> Result<i64, DbError> {
    let pending: Option<i64> = sqlx::query_scalar(
        "select sum(amount_pence)::int8 from resident_payment
          where organisation_id = $1 and invoice_id = $2
            and (status = 'submitted' or status = 'pending' and method = 'direct_debit')",
    )
    .bind(tx.org().0)
    .bind(invoice.id)
    .fetch_one(tx.conn())
    .await?;
    if !matches!(invoice.status.as_str(), "approved" | "sent" | "part_paid") {
        return Ok(0);
    }
    Ok((invoice.balance_pence() - pending.unwrap_or(0)).max(0))
}

/// A card payment this resident started on this invoice for this amount since `since` that
/// is still waiting: paying twice would take the money twice, so they are sent back to it.
pub async fn open_card_payment(
    tx: &mut TenantTx,
    invoice: Uuid,
    account: Uuid,
    amount_pence: i64,
    since: OffsetDateTime,
) -> Result<Option<ResidentPayment>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{PAYMENT_SELECT} where p.organisation_id = $1 and p.invoice_id = $2 and p.account_id = $3
            and p.method = 'card' and p.status = 'pending' and p.amount_pence = $4
            and p.created_at > $5 and p.checkout_url is not null
          order by p.created_at desc limit 1"
    )))
    .bind(tx.org().0)
    .bind(invoice)
    .bind(account)
    .bind(amount_pence)
    .bind(since)
    .fetch_optional(tx.conn())
    .await?)
}

pub async fn record_card_checkout(
    tx: &mut TenantTx,
    p: &NewCardPayment<'_>,
) -> Result<(), DbError> {
    sqlx::query(
        "insert into resident_payment (organisation_id, id, site_id, unit_id, invoice_id, account_id,
                contact_id, method, provider, test_mode, amount_pence, provider_ref, checkout_url)
         values ($1, $2, $3, $4, $5, $6, $7, 'card', 'stripe', $8, $9, $10, $11)",
    )
    .bind(tx.org().0)
    .bind(p.id)
    .bind(p.invoice.site_id)
    .bind(p.invoice.unit_id)
    .bind(p.invoice.id)
    .bind(p.account_id)
    .bind(p.contact_id)
    .bind(p.test_mode)
    .bind(p.amount_pence)
    .bind(p.session_ref)
    .bind(p.checkout_url)
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub async fn find_payment(tx: &mut TenantTx, id: Uuid) -> Result<Option<ResidentPayment>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{PAYMENT_SELECT} where p.organisation_id = $1 and p.id = $2"
    )))
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

/// The payment a provider's reference names.
pub async fn payment_by_ref(
    tx: &mut TenantTx,
    provider: &str,
    reference: &str,
) -> Result<Option<ResidentPayment>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{PAYMENT_SELECT} where p.organisation_id = $1 and p.provider = $2 and p.provider_ref = $3"
    )))
    .bind(tx.org().0)
    .bind(provider)
    .bind(reference)
    .fetch_optional(tx.conn())
    .await?)
}

pub async fn payments_of_invoice(
    tx: &mut TenantTx,
    invoice: Uuid,
) -> Result<Vec<ResidentPayment>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{PAYMENT_SELECT} where p.organisation_id = $1 and p.invoice_id = $2 order by p.created_at desc"
    )))
    .bind(tx.org().0)
    .bind(invoice)
    .fetch_all(tx.conn())
    .await?)
}

/// What a provider says happened to a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Submitted to the bank (a Direct Debit), to be collected on the date.
    Submitted {
        charge_date: Option<Date>,
    },
    /// The money was taken: post a receipt.
    Paid {
        amount_pence: i64,
        on: Date,
        payment_ref: Option<String>,
    },
    /// It did not go through (declined, insufficient funds, mandate cancelled…).
    Failed {
        reason: String,
    },
    /// The resident abandoned the checkout, or it timed out.
    Expired,
    Cancelled {
        reason: String,
    },
    /// Money taken and later returned (a Direct Debit indemnity claim, a late failure).
    ChargedBack {
        reason: String,
        on: Date,
    },
}

/// What applying an outcome did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// A receipt was posted and allocated.
    Receipted { receipt: Uuid, number: String },
    /// The payment's state moved.
    Moved,
    /// The posted receipt was reversed and the invoice re-opened.
    Reversed,
    /// Nothing to do: already applied, or superseded (an out-of-order delivery).
    Unchanged,
}

#[derive(sqlx::FromRow)]
struct Locked {
    status: String,
    receipt_id: Option<Uuid>,
}

/// Applies a provider's outcome to a payment, once: the row is locked and its state decides.
/// A payment that is paid stays paid whatever arrives later, except a charge-back; an expiry or
/// failure arriving after the money is recorded changes nothing.
pub async fn apply_outcome(
    tx: &mut TenantTx,
    payment: Uuid,
    outcome: &Outcome,
    now: OffsetDateTime,
) -> Result<Applied, LedgerError> {
    let locked: Option<Locked> = sqlx::query_as(
        "select status, receipt_id from resident_payment
          where organisation_id = $1 and id = $2 for update",
    )
    .bind(tx.org().0)
    .bind(payment)
    .fetch_optional(tx.conn())
    .await?;
    let Some(locked) = locked else {
        return Err(LedgerError::NotFound);
    };
    let p = find_payment(tx, payment)
        .await?
        .ok_or(LedgerError::NotFound)?;
    let open = matches!(locked.status.as_str(), "pending" | "submitted");
    match outcome {
        Outcome::Submitted { charge_date } => {
            if locked.status != "pending" {
                return Ok(Applied::Unchanged);
            }
            set_status(tx, payment, "submitted", None, None, *charge_date).await?;
            Ok(Applied::Moved)
        }
        Outcome::Paid {
            amount_pence,
            on,
            payment_ref,
        } => {
            if matches!(locked.status.as_str(), "paid" | "charged_back") {
                return Ok(Applied::Unchanged);
            }
            let invoice = receivables::find_invoice(tx, p.invoice_id)
                .await?
                .ok_or(LedgerError::NotFound)?;
            // Settle this invoice's open lines, oldest first; anything over is credit on account.
            let mut left = *amount_pence;
            let mut lines = Vec::new();
            for line in receivables::open_lines(tx, p.unit_id).await? {
                if line.invoice_id != invoice.id || left == 0 {
                    continue;
                }
                let take = left.min(line.outstanding_pence);
                if take > 0 {
                    lines.push((line.id, take));
                    left -= take;
                }
            }
            let method = if p.method == "card" {
                PaymentMethod::Card
            } else {
                PaymentMethod::DirectDebit
            };
            let reference = payment_ref
                .clone()
                .unwrap_or_else(|| p.provider_ref.clone());
            let reference: String = reference.chars().take(100).collect();
            let (receipt, number) = receivables::record_receipt(
                tx,
                &ReceiptInput {
                    unit_id: p.unit_id,
                    contact_id: Some(invoice.contact_id),
                    received_on: *on,
                    amount_pence: *amount_pence,
                    method,
                    reference: Some(reference),
                    bank_account_id: None,
                    fund_id: None,
                    allocate: if lines.is_empty() {
                        Allocate::None
                    } else {
                        Allocate::Lines(lines)
                    },
                    // A card payment is the resident's own act in ResidencePort; a Direct Debit
                    // is collected under their mandate.
                    channel: if p.provider == "stripe" {
                        "residenceport"
                    } else {
                        "gocardless"
                    },
                    batch_id: None,
                },
                &p.payer_name,
                now,
            )
            .await?;
            sqlx::query(
                "update resident_payment set status = 'paid', receipt_id = $3, failure_reason = null,
                        provider_payment_ref = coalesce($4, provider_payment_ref), updated_at = $5
                  where organisation_id = $1 and id = $2",
            )
            .bind(tx.org().0)
            .bind(payment)
            .bind(receipt)
            .bind(payment_ref.as_deref())
            .bind(now)
            .execute(tx.conn())
            .await?;
            tell_payer(
                tx,
                &p,
                &format!(
                    "Payment received: {} for {}",
                    format_pence(*amount_pence),
                    invoice.label()
                ),
                &format!(
                    "Thank you. We have received your payment of {} for {} (unit {}), on {}.\n\nReceipt number: {number}\n\nYou can see it on your statement in ResidencePort.{}",
                    format_pence(*amount_pence),
                    invoice.label(),
                    invoice.unit_reference,
                    long_date(*on),
                    if p.test_mode {
                        "\n\n(Test mode: no money moved.)"
                    } else {
                        ""
                    }
                ),
                "receipt_confirmation",
            )
            .await?;
            Ok(Applied::Receipted { receipt, number })
        }
        Outcome::Failed { reason } | Outcome::Cancelled { reason } => {
            if locked.status == "paid" {
                // A failure reported after the money was recorded is a charge-back.
                return reverse(tx, &p, locked.receipt_id, reason, now.date(), now).await;
            }
            if !open {
                return Ok(Applied::Unchanged);
            }
            let status = if matches!(outcome, Outcome::Failed { .. }) {
                "failed"
            } else {
                "cancelled"
            };
            set_status(tx, payment, status, Some(reason), None, None).await?;
            if p.method == "direct_debit" {
                tell_of_failure(tx, &p, reason).await?;
            }
            Ok(Applied::Moved)
        }
        Outcome::Expired => {
            if !open {
                return Ok(Applied::Unchanged);
            }
            set_status(tx, payment, "expired", None, None, None).await?;
            Ok(Applied::Moved)
        }
        Outcome::ChargedBack { reason, on } => {
            if locked.status != "paid" {
                if open {
                    set_status(tx, payment, "failed", Some(reason), None, None).await?;
                    tell_of_failure(tx, &p, reason).await?;
                    return Ok(Applied::Moved);
                }
                return Ok(Applied::Unchanged);
            }
            reverse(tx, &p, locked.receipt_id, reason, *on, now).await
        }
    }
}

async fn reverse(
    tx: &mut TenantTx,
    p: &ResidentPayment,
    receipt: Option<Uuid>,
    reason: &str,
    on: Date,
    now: OffsetDateTime,
) -> Result<Applied, LedgerError> {
    let Some(receipt) = receipt else {
        return Ok(Applied::Unchanged);
    };
    let found = receivables::find_receipt(tx, receipt)
        .await?
        .ok_or(LedgerError::NotFound)?;
    let reason: String = format!("Payment returned: {reason}")
        .chars()
        .filter(|c| !c.is_control())
        .take(300)
        .collect();
    // Staff may already have reversed it by hand (the bank told them first): then only the
    // payment is marked.
    if found.status == "posted" {
        receivables::reverse_receipt(
            tx,
            receipt,
            on.max(found.received_on),
            &reason,
            &p.payer_name,
            now,
        )
        .await?;
    }
    sqlx::query(
        "update resident_payment set status = 'charged_back', failure_reason = $3, updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(p.id)
    .bind(&reason)
    .execute(tx.conn())
    .await?;
    tell_of_failure(tx, p, &reason).await?;
    Ok(Applied::Reversed)
}

async fn set_status(
    tx: &mut TenantTx,
    payment: Uuid,
    status: &str,
    reason: Option<&str>,
    payment_ref: Option<&str>,
    charge_date: Option<Date>,
) -> Result<(), DbError> {
    let reason: Option<String> = reason.map(|r| r.chars().take(500).collect());
    sqlx::query(
        "update resident_payment set status = $3, failure_reason = coalesce($4, failure_reason),
                provider_payment_ref = coalesce($5, provider_payment_ref),
                charge_date = coalesce($6, charge_date), updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(payment)
    .bind(status)
    .bind(reason)
    .bind(payment_ref)
    .bind(charge_date)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The e-mail address a payer is told at: their account's, else the contact's first.
async fn payer_address(
    tx: &mut TenantTx,
    p: &ResidentPayment,
) -> Result<Option<(String, String)>, DbError> {
    Ok(sqlx::query_as(
        "select coalesce(a.email, (select e.email from contact_email e where e.organisation_id = c.organisation_id
                 and e.contact_id = c.id order by e.position, e.email limit 1)),
                coalesce(a.name, c.display_name)
           from contact c
           left join portal_account a on a.organisation_id = c.organisation_id and a.id = $3
          where c.organisation_id = $1 and c.id = $2",
    )
    .bind(tx.org().0)
    .bind(p.contact_id)
    .bind(p.account_id)
    .fetch_optional(tx.conn())
    .await?
    .and_then(|(email, name): (Option<String>, String)| email.map(|e| (e, name))))
}

async fn tell_payer(
    tx: &mut TenantTx,
    p: &ResidentPayment,
    subject: &str,
    body: &str,
    category: &str,
) -> Result<(), DbError> {
    let Some((address, name)) = payer_address(tx, p).await? else {
        return Ok(());
    };
    email::queue(
        tx,
        NewEmail {
            to_address: address,
            to_name: Some(name.clone()),
            subject: subject.to_owned(),
            body_text: format!("Hello {name},\n\n{body}\n"),
            body_html: None,
            category: category.to_owned(),
        },
    )
    .await?;
    Ok(())
}

/// A Direct Debit that failed or came back: the resident and the site's managers are told.
async fn tell_of_failure(
    tx: &mut TenantTx,
    p: &ResidentPayment,
    reason: &str,
) -> Result<(), DbError> {
    let invoice = receivables::find_invoice(tx, p.invoice_id).await?;
    let (label, unit) = invoice
        .map(|i| (i.label(), i.unit_reference))
        .unwrap_or_default();
    let what = if p.method == "direct_debit" {
        "Direct Debit"
    } else {
        "card payment"
    };
    tell_payer(
        tx,
        p,
        &format!("Your {what} for {label} did not go through"),
        &format!(
            "Your {what} of {} for {label} (unit {unit}) did not go through: {reason}.\n\nThe invoice is open again. Please pay it in ResidencePort, or contact us if you think this is a mistake.",
            format_pence(p.amount_pence)
        ),
        "payment_failed",
    )
    .await?;
    for (address, name) in site_managers(tx, p.site_id).await? {
        email::queue(
            tx,
            NewEmail {
                to_address: address,
                to_name: Some(name.clone()),
                subject: format!("{what} failed: {label}, unit {unit}"),
                body_text: format!(
                    "Hello {name},\n\nThe {what} of {} from {} for {label} (unit {unit}) did not go through: {reason}.\n\nThe invoice is open again and the resident has been told.\n",
                    format_pence(p.amount_pence),
                    p.payer_name
                ),
                body_html: None,
                category: "payment_failed".into(),
            },
        )
        .await?;
    }
    Ok(())
}

/// The active managers and accountants (and the owner) whose scope covers a site.
pub async fn site_managers(
    tx: &mut TenantTx,
    site: Uuid,
) -> Result<Vec<(String, String)>, DbError> {
    Ok(sqlx::query_as(
        "select u.email, u.name from membership m
           join staff_user u on u.id = m.user_id
          where m.organisation_id = $1 and m.status = 'active'
            and (m.is_owner or m.builtin_role in ('manager', 'accountant'))
            and (m.scope = 'all_sites' or m.scope is null or exists (
                   select from membership_scope ms
                     join site s on s.organisation_id = ms.organisation_id and s.id = $2
                    where ms.organisation_id = $1 and ms.membership_id = m.id
                      and (ms.site_id = s.id or ms.estate_id = s.estate_id)))
          order by u.name",
    )
    .bind(tx.org().0)
    .bind(site)
    .fetch_all(tx.conn())
    .await?)
}

// ---------------------------------------------------------------------------------------------
// Direct Debit mandates

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Mandate {
    pub id: Uuid,
    pub site_id: Uuid,
    pub unit_id: Uuid,
    pub contact_id: Uuid,
    pub account_id: Option<Uuid>,
    pub test_mode: bool,
    pub billing_request_ref: String,
    pub flow_url: Option<String>,
    pub mandate_ref: Option<String>,
    pub status: String,
    pub status_reason: Option<String>,
    pub created_at: OffsetDateTime,
}

impl Mandate {
    pub fn status_label(&self) -> &'static str {
        match self.status.as_str() {
            "pending_customer" => "Waiting for you to finish setting it up",
            "pending_submission" | "submitted" => "Being set up with your bank",
            "active" => "Active",
            "failed" => "Failed",
            "cancelled" => "Cancelled",
            _ => "Expired",
        }
    }
    pub fn is_live(&self) -> bool {
        matches!(
            self.status.as_str(),
            "pending_customer" | "pending_submission" | "submitted" | "active"
        )
    }
}

const MANDATE_SELECT: &str = "select id, site_id, unit_id, contact_id, account_id, test_mode,
        billing_request_ref, flow_url, mandate_ref, status, status_reason, created_at
   from dd_mandate";

pub struct NewMandate<'a> {
    pub site_id: Uuid,
    pub unit_id: Uuid,
    pub contact_id: Uuid,
    pub account_id: Uuid,
    pub test_mode: bool,
    pub billing_request_ref: &'a str,
    pub flow_url: &'a str,
}

/// Records a mandate being set up. A mandate still waiting for the resident is replaced (they
/// started again); one further on is refused by the database's one-live-mandate rule.
pub async fn start_mandate(tx: &mut TenantTx, m: &NewMandate<'_>) -> Result<Uuid, DbError> {
    sqlx::query(
        "update dd_mandate set status = 'expired', status_reason = 'Started again', updated_at = now()
          where organisation_id = $1 and contact_id = $2 and unit_id = $3 and status = 'pending_customer'",
    )
    .bind(tx.org().0)
    .bind(m.contact_id)
    .bind(m.unit_id)
    .execute(tx.conn())
    .await?;
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into dd_mandate (organisation_id, id, site_id, unit_id, contact_id, account_id,
                test_mode, billing_request_ref, flow_url)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(m.site_id)
    .bind(m.unit_id)
    .bind(m.contact_id)
    .bind(m.account_id)
    .bind(m.test_mode)
    .bind(m.billing_request_ref)
    .bind(m.flow_url)
    .execute(tx.conn())
    .await?;
    Ok(id)
}

pub async fn mandates_of_contact(
    tx: &mut TenantTx,
    contact: Uuid,
) -> Result<Vec<Mandate>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MANDATE_SELECT} where organisation_id = $1 and contact_id = $2 order by created_at desc"
    )))
    .bind(tx.org().0)
    .bind(contact)
    .fetch_all(tx.conn())
    .await?)
}

pub async fn find_mandate(tx: &mut TenantTx, id: Uuid) -> Result<Option<Mandate>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MANDATE_SELECT} where organisation_id = $1 and id = $2"
    )))
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

/// The mandate a billing request or a mandate reference names.
pub async fn mandate_by_ref(
    tx: &mut TenantTx,
    billing_request: Option<&str>,
    mandate: Option<&str>,
) -> Result<Option<Mandate>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MANDATE_SELECT} where organisation_id = $1
            and (billing_request_ref = $2 or mandate_ref = $3)
          order by mandate_ref = $3 desc nulls last limit 1"
    )))
    .bind(tx.org().0)
    .bind(billing_request)
    .bind(mandate)
    .fetch_optional(tx.conn())
    .await?)
}

/// Moves a mandate on from a provider event. Returns true when its state changed. Moves
/// backwards (an "active" arriving after "cancelled") are ignored.
pub async fn apply_mandate_status(
    tx: &mut TenantTx,
    mandate: Uuid,
    mandate_ref: Option<&str>,
    status: &str,
    reason: Option<&str>,
) -> Result<bool, DbError> {
    let rank = |s: &str| match s {
        "pending_customer" => 0,
        "pending_submission" => 1,
        "submitted" => 2,
        "active" => 3,
        _ => 4,
    };
    let current: Option<String> = sqlx::query_scalar(
        "select status from dd_mandate where organisation_id = $1 and id = $2 for update",
    )
    .bind(tx.org().0)
    .bind(mandate)
    .fetch_optional(tx.conn())
    .await?;
    let Some(current) = current else {
        return Ok(false);
    };
    if rank(status) <= rank(&current) && !(current == "active" && rank(status) == 4) {
        // Only a move forward, or an active mandate ending, changes anything.
        if mandate_ref.is_some() {
            sqlx::query(
                "update dd_mandate set mandate_ref = coalesce(mandate_ref, $3)
                  where organisation_id = $1 and id = $2",
            )
            .bind(tx.org().0)
            .bind(mandate)
            .bind(mandate_ref)
            .execute(tx.conn())
            .await?;
        }
        return Ok(false);
    }
    if rank(&current) == 4 {
        return Ok(false);
    }
    let reason: Option<String> = reason.map(|r| r.chars().take(500).collect());
    sqlx::query(
        "update dd_mandate set status = $3, mandate_ref = coalesce(mandate_ref, $4),
                status_reason = $5, updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(mandate)
    .bind(status)
    .bind(mandate_ref)
    .bind(reason)
    .execute(tx.conn())
    .await?;
    Ok(true)
}

/// Invoices an active mandate should collect: the unit's approved invoices addressed to the
/// mandate's contact, with a balance and no collection already on its way.
pub async fn collectable(
    tx: &mut TenantTx,
    mandate: &Mandate,
) -> Result<Vec<(Uuid, i64, Option<Date>, String)>, DbError> {
    Ok(sqlx::query_as(
        "select i.id, (i.total_pence - i.paid_pence)::int8, i.due_date, i.number
           from debtor_invoice i
          where i.organisation_id = $1 and i.unit_id = $2 and i.contact_id = $3
            and i.status in ('approved', 'sent', 'part_paid') and i.total_pence - i.paid_pence >= 100
            and not exists (select from resident_payment p where p.organisation_id = $1
                             and p.invoice_id = i.id and p.method = 'direct_debit'
                             and p.status in ('pending', 'submitted'))
          order by i.due_date, i.number",
    )
    .bind(tx.org().0)
    .bind(mandate.unit_id)
    .bind(mandate.contact_id)
    .fetch_all(tx.conn())
    .await?)
}

pub struct NewCollection<'a> {
    pub mandate: &'a Mandate,
    pub invoice_id: Uuid,
    pub amount_pence: i64,
    pub payment_ref: &'a str,
    pub charge_date: Option<Date>,
}

pub async fn record_collection(tx: &mut TenantTx, c: &NewCollection<'_>) -> Result<Uuid, DbError> {
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into resident_payment (organisation_id, id, site_id, unit_id, invoice_id, contact_id,
                mandate_id, method, provider, test_mode, amount_pence, provider_ref, charge_date)
         values ($1, $2, $3, $4, $5, $6, $7, 'direct_debit', 'gocardless', $8, $9, $10, $11)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(c.mandate.site_id)
    .bind(c.mandate.unit_id)
    .bind(c.invoice_id)
    .bind(c.mandate.contact_id)
    .bind(c.mandate.id)
    .bind(c.mandate.test_mode)
    .bind(c.amount_pence)
    .bind(c.payment_ref)
    .bind(c.charge_date)
    .execute(tx.conn())
    .await?;
    Ok(id)
}

/// A collection the provider has accepted: its payment's reference replaces the placeholder.
pub async fn collection_started(
    tx: &mut TenantTx,
    payment: Uuid,
    provider_ref: &str,
    charge_date: Option<Date>,
) -> Result<(), DbError> {
    sqlx::query(
        "update resident_payment set provider_ref = $3, charge_date = coalesce($4, charge_date),
                updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(payment)
    .bind(provider_ref)
    .bind(charge_date)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// A collection the provider refused to start: it is failed, so the next sweep tries afresh.
pub async fn collection_not_started(
    tx: &mut TenantTx,
    payment: Uuid,
    reason: &str,
) -> Result<(), DbError> {
    set_status(tx, payment, "failed", Some(reason), None, None).await
}

/// Every active mandate of the organisation, for the collection sweep.
pub async fn active_mandates(tx: &mut TenantTx) -> Result<Vec<Mandate>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MANDATE_SELECT} where organisation_id = $1 and status = 'active' order by created_at"
    )))
    .bind(tx.org().0)
    .fetch_all(tx.conn())
    .await?)
}

// ---------------------------------------------------------------------------------------------
// Building notices

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Notice {
    pub id: Uuid,
    pub site_id: Uuid,
    pub building_id: Option<Uuid>,
    pub site_name: String,
    pub building_name: Option<String>,
    pub title: String,
    pub body: String,
    pub email_copy: bool,
    pub published_by: String,
    pub published_at: OffsetDateTime,
    pub withdrawn_at: Option<OffsetDateTime>,
    /// Residents who have read it.
    pub reads: i64,
}

impl Notice {
    /// "Riverside Court" or "Block A, Riverside Court".
    pub fn place(&self) -> String {
        match &self.building_name {
            Some(b) => format!("{b}, {}", self.site_name),
            None => self.site_name.clone(),
        }
    }

    /// Whether residents with these current holdings are its audience.
    pub fn reaches(&self, holdings: &[Holding], today: Date) -> bool {
        self.withdrawn_at.is_none()
            && holdings.iter().any(|h| {
                h.is_current(today)
                    && h.site_id == self.site_id
                    && (self.building_id.is_none() || self.building_id == h.building_id)
            })
    }
}

const NOTICE_SELECT: &str = "select n.id, n.site_id, n.building_id, s.name as site_name,
        b.name as building_name, n.title, n.body, n.email_copy, n.published_by, n.published_at,
        n.withdrawn_at,
        (select count(*) from notice_read r where r.organisation_id = n.organisation_id
            and r.notice_id = n.id) as reads
   from notice n
   join site s on s.organisation_id = n.organisation_id and s.id = n.site_id
   left join building b on b.organisation_id = n.organisation_id and b.id = n.building_id";

pub struct NewNotice<'a> {
    pub site_id: Uuid,
    pub building_id: Option<Uuid>,
    pub title: &'a str,
    pub body: &'a str,
    pub email_copy: bool,
}

/// Publishes a notice; with an e-mail copy, every contact holding a current lease or
/// occupancy in its site (or building) with an e-mail address gets one.
pub async fn publish_notice(
    tx: &mut TenantTx,
    n: &NewNotice<'_>,
    by: &str,
    portal_url: &str,
    organisation_name: &str,
    now: OffsetDateTime,
) -> Result<Uuid, LedgerError> {
    let title = n.title.trim();
    let body = n.body.trim();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(LedgerError::Refused(
            "Give the notice a title of up to 200 characters.".into(),
        ));
    }
    if body.is_empty() || body.chars().count() > 10_000 {
        return Err(LedgerError::Refused(
            "Write the notice in up to 10,000 characters.".into(),
        ));
    }
    if let Some(building) = n.building_id {
        let on_site: bool = sqlx::query_scalar(
            "select exists (select from building where organisation_id = $1 and id = $2 and site_id = $3)",
        )
        .bind(tx.org().0)
        .bind(building)
        .bind(n.site_id)
        .fetch_one(tx.conn())
        .await?;
        if !on_site {
            return Err(LedgerError::Refused(
                "Choose one of this site's buildings, or the whole site.".into(),
            ));
        }
    }
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into notice (organisation_id, id, site_id, building_id, title, body, email_copy,
                             published_by, published_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(n.site_id)
    .bind(n.building_id)
    .bind(title)
    .bind(body)
    .bind(n.email_copy)
    .bind(by)
    .bind(now)
    .execute(tx.conn())
    .await?;
    if n.email_copy {
        let today = now.date();
        let recipients: Vec<(String, String)> = sqlx::query_as(
            "select distinct on (lower(e.email)) e.email, c.display_name
               from (select h.contact_id, l.unit_id from lease_holder h
                       join lease l on l.organisation_id = h.organisation_id and l.id = h.lease_id
                      where h.organisation_id = $1 and l.starts_on <= $4 and (l.ends_on is null or l.ends_on > $4)
                     union
                     select o.contact_id, o.unit_id from occupancy o
                      where o.organisation_id = $1 and o.starts_on <= $4 and (o.ends_on is null or o.ends_on > $4)) held
               join unit u on u.organisation_id = $1 and u.id = held.unit_id and u.site_id = $2
                          and ($3::uuid is null or u.building_id = $3)
               join contact c on c.organisation_id = $1 and c.id = held.contact_id
                             and c.merged_into_id is null and c.archived_at is null
               join lateral (select email from contact_email x where x.organisation_id = $1
                              and x.contact_id = c.id order by x.position, x.email limit 1) e on true
              order by lower(e.email)",
        )
        .bind(tx.org().0)
        .bind(n.site_id)
        .bind(n.building_id)
        .bind(today)
        .fetch_all(tx.conn())
        .await?;
        for (address, name) in recipients {
            email::queue(
                tx,
                NewEmail {
                    to_address: address,
                    to_name: Some(name.clone()),
                    subject: format!("Building notice: {title}"),
                    body_text: format!(
                        "Hello {name},\n\n{organisation_name} has published a notice for your building.\n\n{title}\n\n{body}\n\nYou can read all your building's notices in ResidencePort: {portal_url}\n"
                    ),
                    body_html: None,
                    category: "notice".into(),
                },
            )
            .await?;
        }
    }
    Ok(id)
}

pub async fn withdraw_notice(
    tx: &mut TenantTx,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<(), DbError> {
    sqlx::query(
        "update notice set withdrawn_at = $3 where organisation_id = $1 and id = $2 and withdrawn_at is null",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub async fn find_notice(tx: &mut TenantTx, id: Uuid) -> Result<Option<Notice>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{NOTICE_SELECT} where n.organisation_id = $1 and n.id = $2"
    )))
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

/// A site's notices, newest first.
pub async fn site_notices(tx: &mut TenantTx, site: Uuid) -> Result<Vec<Notice>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{NOTICE_SELECT} where n.organisation_id = $1 and n.site_id = $2 order by n.published_at desc"
    )))
    .bind(tx.org().0)
    .bind(site)
    .fetch_all(tx.conn())
    .await?)
}

/// The notices a resident's current holdings reach, newest first, with whether they read each.
pub async fn notices_for(
    tx: &mut TenantTx,
    holdings: &[Holding],
    account: Uuid,
    today: Date,
    limit: usize,
) -> Result<Vec<(Notice, bool)>, DbError> {
    let mut sites: Vec<Uuid> = holdings
        .iter()
        .filter(|h| h.is_current(today))
        .map(|h| h.site_id)
        .collect();
    sites.sort();
    sites.dedup();
    if sites.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<Notice> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{NOTICE_SELECT} where n.organisation_id = $1 and n.site_id = any($2) and n.withdrawn_at is null
          order by n.published_at desc limit 200"
    )))
    .bind(tx.org().0)
    .bind(&sites)
    .fetch_all(tx.conn())
    .await?;
    let read: Vec<Uuid> = sqlx::query_scalar(
        "select notice_id from notice_read where organisation_id = $1 and account_id = $2",
    )
    .bind(tx.org().0)
    .bind(account)
    .fetch_all(tx.conn())
    .await?;
    Ok(rows
        .into_iter()
        .filter(|n| n.reaches(holdings, today))
        .take(limit)
        .map(|n| {
            let seen = read.contains(&n.id);
            (n, seen)
        })
        .collect())
}

/// Notes a resident's first reading of a notice.
pub async fn mark_read(
    tx: &mut TenantTx,
    notice: Uuid,
    account: Uuid,
    now: OffsetDateTime,
) -> Result<(), DbError> {
    sqlx::query(
        "insert into notice_read (organisation_id, id, notice_id, account_id, read_at)
         values ($1, $2, $3, $4, $5) on conflict do nothing",
    )
    .bind(tx.org().0)
    .bind(Uuid::now_v7())
    .bind(notice)
    .bind(account)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Who has read a notice, first readers first.
pub async fn notice_reads(
    tx: &mut TenantTx,
    notice: Uuid,
) -> Result<Vec<(String, String, OffsetDateTime)>, DbError> {
    Ok(sqlx::query_as(
        "select a.name, a.email, r.read_at from notice_read r
           join portal_account a on a.organisation_id = r.organisation_id and a.id = r.account_id
          where r.organisation_id = $1 and r.notice_id = $2 order by r.read_at",
    )
    .bind(tx.org().0)
    .bind(notice)
    .fetch_all(tx.conn())
    .await?)
}

// ---------------------------------------------------------------------------------------------
// Messages on a resident's request

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IssueMessage {
    pub id: Uuid,
    pub author_kind: String,
    pub author_name: String,
    pub body: String,
    pub created_at: OffsetDateTime,
}

pub async fn add_message(
    tx: &mut TenantTx,
    issue: Uuid,
    author_kind: &str,
    author_name: &str,
    body: &str,
    now: OffsetDateTime,
) -> Result<Uuid, LedgerError> {
    let body = body.trim();
    if body.is_empty() || body.chars().count() > 5000 {
        return Err(LedgerError::Refused(
            "Write a message of up to 5,000 characters.".into(),
        ));
    }
    if body
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(LedgerError::Refused(
            "The message has characters that cannot be printed.".into(),
        ));
    }
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into issue_message (organisation_id, id, issue_id, author_kind, author_name, body, created_at)
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(issue)
    .bind(author_kind)
    .bind(author_name.trim())
    .bind(body)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(id)
}

pub async fn messages(tx: &mut TenantTx, issue: Uuid) -> Result<Vec<IssueMessage>, DbError> {
    Ok(sqlx::query_as(
        "select id, author_kind, author_name, body, created_at from issue_message
          where organisation_id = $1 and issue_id = $2 order by created_at, id",
    )
    .bind(tx.org().0)
    .bind(issue)
    .fetch_all(tx.conn())
    .await?)
}

// ---------------------------------------------------------------------------------------------
// Changes to a resident's details

/// A resident's contact details as they can change them.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow, serde::Serialize, serde::Deserialize,
)]
pub struct Details {
    pub title: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub address_line_1: Option<String>,
    pub address_line_2: Option<String>,
    pub city: Option<String>,
    pub postcode: Option<String>,
    pub correspondence: String,
    pub phone: Option<String>,
}

/// The fields that are part of the lease record: a manager accepts changes to them.
pub const NEEDS_ACCEPTANCE: [&str; 7] = [
    "title",
    "first_name",
    "last_name",
    "address_line_1",
    "address_line_2",
    "city",
    "postcode",
];

impl Details {
    fn get(&self, field: &str) -> Option<String> {
        match field {
            "title" => self.title.clone(),
            "first_name" => self.first_name.clone(),
            "last_name" => self.last_name.clone(),
            "address_line_1" => self.address_line_1.clone(),
            "address_line_2" => self.address_line_2.clone(),
            "city" => self.city.clone(),
            "postcode" => self.postcode.clone(),
            "correspondence" => Some(self.correspondence.clone()),
            "phone" => self.phone.clone(),
            _ => None,
        }
    }
}

pub async fn details(tx: &mut TenantTx, contact: Uuid) -> Result<Option<Details>, DbError> {
    Ok(sqlx::query_as(
        "select c.title, c.first_name, c.last_name, c.address_line_1, c.address_line_2, c.city,
                c.postcode, c.correspondence,
                (select p.phone from contact_phone p where p.organisation_id = c.organisation_id
                    and p.contact_id = c.id order by p.position, p.phone limit 1) as phone
           from contact c where c.organisation_id = $1 and c.id = $2",
    )
    .bind(tx.org().0)
    .bind(contact)
    .fetch_optional(tx.conn())
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProfileChange {
    pub id: Uuid,
    pub contact_id: Uuid,
    pub contact_name: String,
    pub account_email: String,
    pub changes: serde_json::Value,
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<OffsetDateTime>,
    pub reason: Option<String>,
    pub created_at: OffsetDateTime,
}

impl ProfileChange {
    /// ("Last name", "Patel", "Patel-Shah") for each changed field.
    pub fn lines(&self) -> Vec<(String, String, String)> {
        let Some(map) = self.changes.as_object() else {
            return Vec::new();
        };
        map.iter()
            .map(|(field, v)| {
                let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
                (field_label(field).to_owned(), text("old"), text("new"))
            })
            .collect()
    }
}

pub fn field_label(field: &str) -> &'static str {
    match field {
        "title" => "Title",
        "first_name" => "First name",
        "last_name" => "Last name",
        "address_line_1" => "Address line 1",
        "address_line_2" => "Address line 2",
        "city" => "Town or city",
        "postcode" => "Postcode",
        "correspondence" => "Send letters by",
        _ => "Phone",
    }
}

const CHANGE_SELECT: &str = "select p.id, p.contact_id, c.display_name as contact_name,
        a.email as account_email, p.changes, p.status, p.decided_by, p.decided_at, p.reason, p.created_at
   from profile_change p
   join contact c on c.organisation_id = p.organisation_id and c.id = p.contact_id
   join portal_account a on a.organisation_id = p.organisation_id and a.id = p.account_id";

/// What a resident's form changed: preferences and phone apply now; name and address wait for
/// a manager (a new request replaces one still waiting). Returns whether something waits.
pub async fn change_details(
    tx: &mut TenantTx,
    contact: Uuid,
    account: Uuid,
    new: &Details,
    now: OffsetDateTime,
) -> Result<bool, LedgerError> {
    let old = details(tx, contact).await?.ok_or(LedgerError::NotFound)?;
    if new.correspondence != old.correspondence {
        sqlx::query("update contact set correspondence = $3, updated_at = $4 where organisation_id = $1 and id = $2")
            .bind(tx.org().0)
            .bind(contact)
            .bind(&new.correspondence)
            .bind(now)
            .execute(tx.conn())
            .await?;
    }
    if new.phone != old.phone {
        sqlx::query("delete from contact_phone where organisation_id = $1 and contact_id = $2 and position = 0")
            .bind(tx.org().0)
            .bind(contact)
            .execute(tx.conn())
            .await?;
        if let Some(phone) = &new.phone {
            sqlx::query(
                "insert into contact_phone (organisation_id, id, contact_id, phone, position)
                 values ($1, $2, $3, $4, 0)
                 on conflict (organisation_id, contact_id, phone) do update set position = 0",
            )
            .bind(tx.org().0)
            .bind(Uuid::now_v7())
            .bind(contact)
            .bind(phone)
            .execute(tx.conn())
            .await?;
        }
    }
    let mut changes = serde_json::Map::new();
    for field in NEEDS_ACCEPTANCE {
        let (before, after) = (old.get(field), new.get(field));
        if before != after {
            changes.insert(
                field.to_owned(),
                serde_json::json!({ "old": before, "new": after }),
            );
        }
    }
    sqlx::query(
        "update profile_change set status = 'withdrawn', decided_at = $3, decided_by = 'the resident',
                reason = 'Replaced by a newer request'
          where organisation_id = $1 and contact_id = $2 and status = 'pending'",
    )
    .bind(tx.org().0)
    .bind(contact)
    .bind(now)
    .execute(tx.conn())
    .await?;
    if changes.is_empty() {
        return Ok(false);
    }
    sqlx::query(
        "insert into profile_change (organisation_id, id, contact_id, account_id, changes, created_at)
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tx.org().0)
    .bind(Uuid::now_v7())
    .bind(contact)
    .bind(account)
    .bind(serde_json::Value::Object(changes))
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(true)
}

pub async fn pending_change(
    tx: &mut TenantTx,
    contact: Uuid,
) -> Result<Option<ProfileChange>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{CHANGE_SELECT} where p.organisation_id = $1 and p.contact_id = $2 and p.status = 'pending'"
    )))
    .bind(tx.org().0)
    .bind(contact)
    .fetch_optional(tx.conn())
    .await?)
}

/// Every change waiting for a manager, oldest first.
pub async fn pending_changes(tx: &mut TenantTx) -> Result<Vec<ProfileChange>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{CHANGE_SELECT} where p.organisation_id = $1 and p.status = 'pending' order by p.created_at"
    )))
    .bind(tx.org().0)
    .fetch_all(tx.conn())
    .await?)
}

/// A manager accepts (the contact is updated) or rejects a waiting change.
pub async fn decide_change(
    tx: &mut TenantTx,
    id: Uuid,
    accept: bool,
    reason: Option<&str>,
    by: &str,
    now: OffsetDateTime,
) -> Result<(), LedgerError> {
    let change: Option<ProfileChange> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{CHANGE_SELECT} where p.organisation_id = $1 and p.id = $2 for update of p"
    )))
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    let Some(change) = change else {
        return Err(LedgerError::NotFound);
    };
    if change.status != "pending" {
        return Err(LedgerError::Refused(
            "This change has already been decided.".into(),
        ));
    }
    if accept {
        let Some(map) = change.changes.as_object() else {
            return Err(LedgerError::NotFound);
        };
        for (field, v) in map {
            if !NEEDS_ACCEPTANCE.contains(&field.as_str()) {
                continue;
            }
            let value = v.get("new").and_then(|x| x.as_str());
            // `field` is one of the fixed column names above, never input.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "update contact set {field} = $3, updated_at = $4 where organisation_id = $1 and id = $2"
            )))
            .bind(tx.org().0)
            .bind(change.contact_id)
            .bind(value)
            .bind(now)
            .execute(tx.conn())
            .await?;
        }
        sqlx::query(
            "update contact set display_name = coalesce(nullif(btrim(concat_ws(' ', title, first_name, last_name)), ''), display_name)
              where organisation_id = $1 and id = $2 and kind = 'person'",
        )
        .bind(tx.org().0)
        .bind(change.contact_id)
        .execute(tx.conn())
        .await?;
    }
    let reason: Option<String> = reason
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| r.chars().take(300).collect());
    sqlx::query(
        "update profile_change set status = $3, decided_by = $4, decided_at = $5, reason = $6
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(if accept { "accepted" } else { "rejected" })
    .bind(by)
    .bind(now)
    .bind(reason)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The contact who reported an issue, if a contact did.
pub async fn issue_reporter(tx: &mut TenantTx, issue: Uuid) -> Result<Option<Uuid>, DbError> {
    Ok(sqlx::query_scalar(
        "select reporter_contact_id from issue where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(issue)
    .fetch_optional(tx.conn())
    .await?
    .flatten())
}

/// A contact's ResidencePort account as the contact page shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountSummary {
    pub id: Uuid,
    pub email: String,
    pub status: String,
    pub invited_at: Option<OffsetDateTime>,
    pub invited_by: Option<String>,
    pub last_signed_in_at: Option<OffsetDateTime>,
}

pub async fn account_summary(
    tx: &mut TenantTx,
    contact: Uuid,
) -> Result<Option<AccountSummary>, DbError> {
    Ok(sqlx::query_as(
        "select id, email, status, invited_at, invited_by, last_signed_in_at from portal_account
          where organisation_id = $1 and portal = 'residenceport' and contact_id = $2",
    )
    .bind(tx.org().0)
    .bind(contact)
    .fetch_optional(tx.conn())
    .await?)
}
