//! The demo's money (issue 6): on the first site, half-yearly service charge demands with a
//! reserve contribution for a dozen flats — most paid, some part paid, some in arrears — the
//! next half's demands just issued, a ground rent demand in the prescribed notice form, a
//! goodwill credit note, a draft and a demand awaiting approval, a manual journal waiting for
//! its approver, and an approval chain for large demands.

use proplink_db::approvals::{self, Approver, ChainInput, Signer, StepInput};
use proplink_db::ledger;
use proplink_db::manual_journals as mj;
use proplink_db::organisation::Organisation;
use proplink_db::receipt_batches;
use proplink_db::receivables::{
    self as rx, Allocate, CreditInput, DraftLine, InvoiceInput, ReceiptInput,
};
use proplink_db::{Actor, AppPool, TenantContext, TenantTx};
use proplink_domain::ledger::FundKind;
use proplink_domain::receivables::{InvoiceKind, PaymentMethod, parse_batch_rows};
use proplink_domain::{ActorKind, Channel};
use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

fn e<E: std::fmt::Display>(err: E) -> String {
    format!("the demo's money: {err}")
}

struct Codes {
    income: Uuid,
    reserve_income: Uuid,
    ground_rent: Uuid,
    sc_fund: Uuid,
    reserve_fund: Uuid,
    ground_rent_fund: Uuid,
    exempt: Uuid,
    outside: Uuid,
    bank: Uuid,
}

async fn codes(tx: &mut TenantTx, site: Uuid) -> Result<Codes, String> {
    ledger::ensure_books(tx, site).await.map_err(e)?;
    ledger::ensure_tax_rates(tx).await.map_err(e)?;
    let mut control = async |c: &str| -> Result<Uuid, String> {
        ledger::control_account(tx, site, c)
            .await
            .map_err(e)?
            .map(|a| a.id)
            .ok_or_else(|| e(format!("no {c} account")))
    };
    let (income, reserve_income, ground_rent, bank) = (
        control("service_charge_income").await?,
        control("reserve_contributions").await?,
        control("ground_rent_income").await?,
        control("bank").await?,
    );
    let mut fund = async |k: FundKind| -> Result<Uuid, String> {
        ledger::fund_of_kind(tx, site, k)
            .await
            .map_err(e)?
            .map(|f| f.id)
            .ok_or_else(|| e("a fund is missing"))
    };
    let (sc_fund, reserve_fund, ground_rent_fund) = (
        fund(FundKind::ServiceCharge).await?,
        fund(FundKind::Reserve).await?,
        fund(FundKind::GroundRent).await?,
    );
    let rates = ledger::tax_rates(tx).await.map_err(e)?;
    let rate = |t: &str| {
        rates
            .iter()
            .find(|r| r.treatment == t)
            .map(|r| r.id)
            .ok_or_else(|| e(format!("no {t} rate")))
    };
    Ok(Codes {
        income,
        reserve_income,
        ground_rent,
        sc_fund,
        reserve_fund,
        ground_rent_fund,
        exempt: rate("exempt")?,
        outside: rate("outside_scope")?,
        bank,
    })
}

fn half_year(c: &Codes, from: Date, to: Date) -> Vec<DraftLine> {
    vec![
        DraftLine {
            description: "Service charge on account".into(),
            account_id: c.income,
            fund_id: c.sc_fund,
            tax_rate_id: c.exempt,
            net_pence: 45_000,
            period_from: Some(from),
            period_to: Some(to),
        },
        DraftLine {
            description: "Reserve fund contribution".into(),
            account_id: c.reserve_income,
            fund_id: c.reserve_fund,
            tax_rate_id: c.exempt,
            net_pence: 10_000,
            period_from: Some(from),
            period_to: Some(to),
        },
    ]
}

/// Drafts, submits, approves and sends a demand as the loader.
async fn issue(
    tx: &mut TenantTx,
    input: InvoiceInput,
    now: OffsetDateTime,
) -> Result<Uuid, String> {
    let loader = Signer::unchained("the demo loader");
    let id = rx::save_invoice_draft(tx, None, &input, "the demo loader")
        .await
        .map_err(e)?;
    rx::submit_invoice(tx, id, &loader, now).await.map_err(e)?;
    rx::approve_invoice(tx, id, &loader, now).await.map_err(e)?;
    rx::mark_sent(tx, id, now).await.map_err(e)?;
    Ok(id)
}

/// Loads the money demo into `org`, whose portfolio is already loaded.
pub async fn load(app: &AppPool, org: &Organisation) -> Result<(), String> {
    let now = OffsetDateTime::now_utc();
    let today = now.date();
    let ctx = TenantContext {
        org: org.id,
        actor: Actor {
            id: None,
            kind: ActorKind::System,
            name: Some("the demo loader".into()),
        },
        channel: Channel::Platform,
        request_id: None,
    };
    let mut tx = app.begin(&ctx).await.map_err(e)?;
    // The first site's units with a current leaseholder.
    let units: Vec<(Uuid, Uuid, Uuid)> = sqlx::query_as(
        "select u.site_id, u.id, h.contact_id
           from unit u
           join site s on s.organisation_id = u.organisation_id and s.id = u.site_id
           join lease l on l.organisation_id = u.organisation_id and l.unit_id = u.id and l.ends_on is null
           join lease_holder h on h.organisation_id = l.organisation_id and h.lease_id = l.id and h.position = 0
          where u.organisation_id = $1 and u.archived_at is null
            and s.id = (select id from site where organisation_id = $1 and archived_at is null
                         order by reference limit 1)
          order by u.list_key limit 12",
    )
    .bind(org.id.0)
    .fetch_all(tx.conn())
    .await
    .map_err(e)?;
    let Some(&(site, _, _)) = units.first() else {
        tx.commit().await.map_err(e)?;
        return Ok(());
    };
    let c = codes(&mut tx, site).await?;
    let loader = Signer::unchained("the demo loader");
    let by = "the demo loader";
    // The half year that started about two months ago, and the next one just demanded.
    let first_from = today - Duration::days(75);
    let first_to = first_from + Duration::days(182);
    for (i, &(_, unit, holder)) in units.iter().enumerate() {
        let demand = |issued: Date, due: Date, from: Date, to: Date| InvoiceInput {
            unit_id: unit,
            contact_id: holder,
            kind: InvoiceKind::ServiceCharge,
            reference: Some(format!(
                "Service charge {} to {}",
                proplink_domain::dates::long_date(from),
                proplink_domain::dates::long_date(to)
            )),
            issue_date: Some(issued),
            due_date: Some(due),
            lines: half_year(&c, from, to),
        };
        issue(
            &mut tx,
            demand(
                first_from - Duration::days(30),
                first_from,
                first_from,
                first_to,
            ),
            now,
        )
        .await?;
        // Most pay in full a few days early; every fourth is in arrears; the next part pays.
        let paid = match i % 4 {
            0 => None,
            1 => Some(20_000),
            _ => Some(55_000),
        };
        if let Some(amount) = paid {
            rx::record_receipt(
                &mut tx,
                &ReceiptInput {
                    unit_id: unit,
                    contact_id: Some(holder),
                    received_on: first_from - Duration::days(3),
                    amount_pence: amount,
                    method: if i % 3 == 0 {
                        PaymentMethod::Card
                    } else {
                        PaymentMethod::BankTransfer
                    },
                    reference: Some(format!("FLAT {}", i + 1)),
                    bank_account_id: Some(c.bank),
                    fund_id: None,
                    allocate: Allocate::OldestFirst,
                    channel: "admin",
                    batch_id: None,
                },
                by,
                now,
            )
            .await
            .map_err(e)?;
        }
    }
    // Ground rent for the first flat, in the prescribed notice form.
    let (_, unit, holder) = units[0];
    let year_from = today - Duration::days(20);
    issue(
        &mut tx,
        InvoiceInput {
            unit_id: unit,
            contact_id: holder,
            kind: InvoiceKind::GroundRent,
            reference: Some("Ground rent".into()),
            issue_date: Some(today - Duration::days(5)),
            due_date: Some(today + Duration::days(35)),
            lines: vec![DraftLine {
                description: "Ground rent".into(),
                account_id: c.ground_rent,
                fund_id: c.ground_rent_fund,
                tax_rate_id: c.outside,
                net_pence: 25_000,
                period_from: Some(year_from),
                period_to: Some(year_from + Duration::days(364)),
            }],
        },
        now,
    )
    .await?;
    // Cheques paid in together two days ago by two of the flats in arrears: a receipt batch.
    let cheques: Vec<Uuid> = [4, 8]
        .iter()
        .filter_map(|i| units.get(*i).map(|u| u.1))
        .collect();
    if !cheques.is_empty() {
        let references: Vec<String> = sqlx::query_scalar(
            "select reference from unit where organisation_id = $1 and id = any($2)
              order by list_key",
        )
        .bind(org.id.0)
        .bind(&cheques)
        .fetch_all(tx.conn())
        .await
        .map_err(e)?;
        let rows: String = references
            .iter()
            .enumerate()
            .map(|(n, r)| format!("{r},300.00,CHQ {}\n", 100_231 + n))
            .collect();
        receipt_batches::record_batch(
            &mut tx,
            &receipt_batches::BatchInput {
                site_id: site,
                received_on: today - Duration::days(2),
                method: PaymentMethod::Cheque,
                bank_account_id: Some(c.bank),
                note: Some("Paying-in slip 004417".into()),
                rows: parse_batch_rows(&rows).map_err(|p| p.join(" "))?,
            },
            by,
            now,
        )
        .await
        .map_err(e)?;
    }
    // A goodwill credit on the third flat, a draft and a demand awaiting approval.
    if let Some(&(_, unit, holder)) = units.get(2) {
        let credit = rx::save_credit_draft(
            &mut tx,
            None,
            &CreditInput {
                unit_id: unit,
                contact_id: holder,
                invoice_id: None,
                reason: "Goodwill: lift out of service for two weeks".into(),
                issue_date: Some(today - Duration::days(10)),
                lines: vec![DraftLine {
                    description: "Goodwill credit".into(),
                    net_pence: 2_500,
                    ..half_year(&c, first_from, first_to).remove(0)
                }],
            },
            by,
        )
        .await
        .map_err(e)?;
        rx::submit_credit_note(&mut tx, credit, &loader, now)
            .await
            .map_err(e)?;
        rx::approve_credit_note(&mut tx, credit, &loader, now)
            .await
            .map_err(e)?;
    }
    if let Some(&(_, unit, holder)) = units.get(3) {
        let fees = |description: &str, pence: i64| DraftLine {
            description: description.into(),
            net_pence: pence,
            period_from: None,
            period_to: None,
            ..half_year(&c, first_from, first_to).remove(0)
        };
        let draft = InvoiceInput {
            unit_id: unit,
            contact_id: holder,
            kind: InvoiceKind::Other,
            reference: Some("Replacement fob".into()),
            issue_date: Some(today),
            due_date: Some(today + Duration::days(14)),
            lines: vec![fees("Replacement entry fob", 3_500)],
        };
        rx::save_invoice_draft(&mut tx, None, &draft, by)
            .await
            .map_err(e)?;
        let awaiting = rx::save_invoice_draft(
            &mut tx,
            None,
            &InvoiceInput {
                reference: Some("Balancing charge for last year".into()),
                kind: InvoiceKind::ServiceCharge,
                lines: vec![fees("Balancing charge", 18_750)],
                ..draft
            },
            by,
        )
        .await
        .map_err(e)?;
        rx::submit_invoice(&mut tx, awaiting, &loader, now)
            .await
            .map_err(e)?;
    }
    // Bank interest waiting for an approver.
    let interest = mj::save_draft(
        &mut tx,
        None,
        &mj::ManualInput {
            site_id: site,
            date: today - Duration::days(1),
            description: "Bank interest for the month".into(),
            lines: vec![
                mj::ManualLine {
                    account_id: c.bank,
                    fund_id: c.reserve_fund,
                    amount_pence: 1_234,
                    unit_id: None,
                    description: None,
                },
                mj::ManualLine {
                    account_id: c.reserve_income,
                    fund_id: c.reserve_fund,
                    amount_pence: -1_234,
                    unit_id: None,
                    description: Some("Interest on the reserve account".into()),
                },
            ],
        },
        by,
    )
    .await
    .map_err(e)?;
    mj::submit(&mut tx, interest, &loader, now)
        .await
        .map_err(e)?;
    // Large demands need an accountant's approval.
    approvals::save_chain(
        &mut tx,
        None,
        &ChainInput {
            name: "Demands over £5,000".into(),
            record_type: "debtor_invoice".into(),
            amount_over_pence: Some(500_000),
            site_id: None,
            category: None,
            parallel: false,
            steps: vec![StepInput {
                approver: Approver::Role("accountant".into()),
                amount_over_pence: None,
            }],
        },
    )
    .await
    .map_err(e)?;
    tx.commit().await.map_err(e)?;
    Ok(())
}
