//! The demo's ResidencePort (issue 8), on the first site: John Smith, the leaseholder of
//! Penthouse 1 in Block A, is the demo resident. He paid last half year's service charge and
//! owes the balancing charge for the year just ended, so his portal has a statement, an invoice
//! to pay by card and the year-end pack explaining it. He and a few neighbours with demands to
//! pay have accounts (the invitations are in the development mailbox); two notices are
//! published, one for the site and one for Block A; and he has raised a request through
//! ResidencePort that the manager has answered.
//!
//! The folders the residents' Documents page lists (the EICR shown to residents, the year-end
//! pack) are the operations demo's. Staff actions are Priya Patel's; the request is Mr Smith's
//! own, through ResidencePort, so its history reads as it would in use.

use proplink_db::operations::{self as ops, IssueInput, IssueMove, Location};
use proplink_db::organisation::Organisation;
use proplink_db::receivables::{self as rx, Allocate, DraftLine, InvoiceInput, ReceiptInput};
use proplink_db::resident::{self, NewNotice};
use proplink_db::{Actor, AppPool, TenantContext, TenantTx};
use proplink_domain::operations::{IssueCategory, IssueStatus, Priority, ReporterKind};
use proplink_domain::receivables::{InvoiceKind, PaymentMethod};
use proplink_domain::{ActorKind, Channel, EmailAddress};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// The resident to sign in as (the README names him): his e-mail address.
pub const DEMO_RESIDENT_EMAIL: &str = "john.smith@example.com";

/// The manager who invites, publishes and answers.
const MANAGER: &str = "Priya Patel";

/// Neighbours of the demo resident given accounts too.
const NEIGHBOURS: i64 = 3;

fn e<E: std::fmt::Display>(err: E) -> String {
    format!("the demo's ResidencePort: {err}")
}

fn ctx(org: &Organisation, actor: Actor, channel: Channel) -> TenantContext {
    TenantContext {
        org: org.id,
        actor,
        channel,
        request_id: None,
    }
}

/// Loads the ResidencePort demo into `org`, whose portfolio, operations and money are already
/// loaded. `portal_url` is the organisation's ResidencePort address, for the e-mails.
pub async fn load(app: &AppPool, org: &Organisation, portal_url: &str) -> Result<(), String> {
    let now = OffsetDateTime::now_utc();
    let loader = Actor {
        id: None,
        kind: ActorKind::System,
        name: Some("the demo loader".into()),
    };
    let mut tx = app
        .begin(&ctx(org, loader, Channel::Platform))
        .await
        .map_err(e)?;
    let first: Option<(Uuid, Option<Uuid>)> = sqlx::query_as(
        "select s.id, (select b.id from building b where b.organisation_id = s.organisation_id
                          and b.site_id = s.id order by b.reference limit 1)
           from site s where s.organisation_id = $1 and s.archived_at is null
          order by s.reference limit 1",
    )
    .bind(org.id.0)
    .fetch_optional(tx.conn())
    .await
    .map_err(e)?;
    let Some((site, building)) = first else {
        return tx.commit().await.map_err(e);
    };
    let smith: Option<(Uuid, Uuid)> = sqlx::query_as(
        "select c.id, l.unit_id from contact_email x
           join contact c on c.organisation_id = x.organisation_id and c.id = x.contact_id
           join lease_holder h on h.organisation_id = c.organisation_id and h.contact_id = c.id
           join lease l on l.organisation_id = h.organisation_id and l.id = h.lease_id
                       and l.ends_on is null
           join unit u on u.organisation_id = l.organisation_id and u.id = l.unit_id
          where x.organisation_id = $1 and x.email_key = lower($2) and u.site_id = $3
          limit 1",
    )
    .bind(org.id.0)
    .bind(DEMO_RESIDENT_EMAIL)
    .bind(site)
    .fetch_optional(tx.conn())
    .await
    .map_err(e)?;
    if let Some((contact, unit)) = smith {
        demands(&mut tx, site, unit, contact, now).await?;
    }
    // The demo resident first, then neighbours with a demand still to pay.
    let owing: Vec<Uuid> = sqlx::query_scalar(
        "select i.contact_id from debtor_invoice i
           join unit u on u.organisation_id = i.organisation_id and u.id = i.unit_id
          where i.organisation_id = $1 and u.site_id = $2
            and i.status in ('approved', 'sent', 'part_paid') and i.total_pence > i.paid_pence
            and exists (select from lease_holder h join lease l on l.organisation_id = h.organisation_id
                                                             and l.id = h.lease_id
                         where h.organisation_id = i.organisation_id and h.contact_id = i.contact_id
                           and l.unit_id = i.unit_id and l.ends_on is null)
            and exists (select from contact_email x where x.organisation_id = i.organisation_id
                          and x.contact_id = i.contact_id)
          group by i.contact_id
          order by bool_or(i.contact_id = $3) desc, min(u.list_key)
          limit $4",
    )
    .bind(org.id.0)
    .bind(site)
    .bind(smith.map(|s| s.0))
    .bind(NEIGHBOURS + 1)
    .fetch_all(tx.conn())
    .await
    .map_err(e)?;
    for contact in owing {
        resident::invite(&mut tx, contact, portal_url, &org.name, MANAGER, now)
            .await
            .map_err(e)?;
    }
    notices(&mut tx, org, site, building, portal_url, now).await?;
    let account = match smith {
        Some((contact, _)) => resident::account_of_contact(&mut tx, contact)
            .await
            .map_err(e)?
            .map(|a| (contact, a)),
        None => None,
    };
    tx.commit().await.map_err(e)?;
    let Some((contact, account)) = account else {
        return Ok(());
    };

    // Mr Smith reports a problem in Block A's communal areas, as he would on his phone.
    let him = Actor {
        id: Some(account.id),
        kind: ActorKind::Leaseholder,
        name: Some(account.name.clone()),
    };
    let mut tx = app
        .begin(&ctx(org, him, Channel::ResidencePort))
        .await
        .map_err(e)?;
    let (issue, _) = ops::create_issue(
        &mut tx,
        &IssueInput {
            location: Location {
                site_id: site,
                building_id: building,
                unit_id: None,
                space_id: None,
            },
            title: "Bike store door does not lock".into(),
            description: Some(
                "The bike store door by the car park swings open: the lock does not catch.".into(),
            ),
            category: IssueCategory::Security,
            priority: Priority::Medium,
            reporter_kind: ReporterKind::Resident,
            reporter_contact_id: Some(contact),
            reporter_name: account.name.clone(),
            reporter_email: EmailAddress::parse(&account.email).ok(),
            channel: "residenceport".into(),
        },
        now,
    )
    .await
    .map_err(e)?;
    tx.commit().await.map_err(e)?;

    // The manager triages it and answers him.
    let priya = Actor {
        id: None,
        kind: ActorKind::Staff,
        name: Some(MANAGER.into()),
    };
    let mut tx = app
        .begin(&ctx(org, priya, Channel::Admin))
        .await
        .map_err(e)?;
    ops::move_issue(
        &mut tx,
        issue,
        &IssueMove {
            to: IssueStatus::Triaged,
            closed_reason: None,
            duplicate_of: None,
            note: Some("Keyworth Locksmiths will look at the lock this week.".into()),
        },
        now,
    )
    .await
    .map_err(e)?;
    resident::add_message(
        &mut tx,
        issue,
        "staff",
        MANAGER,
        "Thank you, Mr Smith. We have asked Keyworth Locksmiths to attend this week; until then the caretaker will check the door each evening.",
        now,
    )
    .await
    .map_err(e)?;
    tx.commit().await.map_err(e)
}

/// The demo resident's money: last half year's service charge paid by transfer, and the
/// balancing charge for the year just ended (its year-end pack is in Documents) still to pay.
async fn demands(
    tx: &mut TenantTx,
    site: Uuid,
    unit: Uuid,
    contact: Uuid,
    now: OffsetDateTime,
) -> Result<(), String> {
    use crate::demo_money::{codes, half_year, half_year_start, issue};
    let today = now.date();
    let c = codes(tx, site).await?;
    let from = half_year_start(today);
    let to = from + Duration::days(182);
    issue(
        tx,
        InvoiceInput {
            unit_id: unit,
            contact_id: contact,
            kind: InvoiceKind::ServiceCharge,
            reference: Some(format!(
                "Service charge {} to {}",
                proplink_domain::dates::long_date(from),
                proplink_domain::dates::long_date(to)
            )),
            issue_date: Some(from - Duration::days(30)),
            due_date: Some(from),
            lines: half_year(&c, from, to),
        },
        now,
    )
    .await?;
    rx::record_receipt(
        tx,
        &ReceiptInput {
            unit_id: unit,
            contact_id: Some(contact),
            received_on: from - Duration::days(4),
            amount_pence: 55_000,
            method: PaymentMethod::BankTransfer,
            reference: Some("SMITH PH1".into()),
            bank_account_id: Some(c.bank),
            fund_id: None,
            allocate: Allocate::OldestFirst,
            channel: "admin",
            batch_id: None,
        },
        "the demo loader",
        now,
    )
    .await
    .map_err(e)?;
    issue(
        tx,
        InvoiceInput {
            unit_id: unit,
            contact_id: contact,
            kind: InvoiceKind::ServiceCharge,
            reference: Some("Balancing charge for the year just ended".into()),
            issue_date: Some(today - Duration::days(5)),
            due_date: Some(today + Duration::days(25)),
            lines: vec![DraftLine {
                description:
                    "Balancing charge: actual costs over the budget (see the year-end pack)".into(),
                account_id: c.income,
                fund_id: c.sc_fund,
                tax_rate_id: c.exempt,
                net_pence: 18_450,
                period_from: None,
                period_to: None,
            }],
        },
        now,
    )
    .await?;
    Ok(())
}

/// Two notices: one for the whole site, one for its first building (no e-mail copies: the
/// demo's residents read them in the portal).
async fn notices(
    tx: &mut TenantTx,
    org: &Organisation,
    site: Uuid,
    building: Option<Uuid>,
    portal_url: &str,
    now: OffsetDateTime,
) -> Result<(), String> {
    let mut publish = async |building_id, title: &str, body: &str| {
        resident::publish_notice(
            tx,
            &NewNotice {
                site_id: site,
                building_id,
                title,
                body,
                email_copy: false,
            },
            MANAGER,
            portal_url,
            &org.name,
            now,
        )
        .await
        .map(drop)
        .map_err(e)
    };
    publish(
        None,
        "Lift out of service on Monday",
        "Northern Lifts will replace the lift's drive sheave bearings on Monday. The lift will be out of service from 8am until about 4pm.\n\nIf you need help with shopping or getting in and out that day, call the office and we will arrange it.",
    )
    .await?;
    if building.is_some() {
        publish(
            building,
            "Window cleaning on Thursday",
            "The window cleaners will do the communal windows and the outside of every flat's windows on Thursday from 9am.\n\nPlease keep balcony doors closed and move anything on a window sill away from the glass.",
        )
        .await?;
    }
    Ok(())
}
