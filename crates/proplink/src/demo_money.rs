//! The demo's money (issue 6): on the first site, half-yearly service charge demands with a
//! reserve contribution for a dozen flats — most paid, some part paid, some in arrears — the
//! next half's demands just issued, a ground rent demand in the prescribed notice form, a
//! goodwill credit note, a draft and a demand awaiting approval, a manual journal waiting for
//! its approver, and an approval chain for large demands. Issue 7's payables: the site's client
//! bank account, suppliers' bank details, the locksmith's bill coded to its work order and paid
//! in a payment run (with its remittance advice), and the plumber's approved bill waiting for
//! the next run.

use proplink_auth::seal::DataKey;
use proplink_db::approvals::{self, Approver, ChainInput, Signer, StepInput};
use proplink_db::bank_accounts::{self as banks, AccountType, BankAccountInput, FileFormat};
use proplink_db::bills::{self, BillInput, BillLineInput};
use proplink_db::ledger;
use proplink_db::manual_journals as mj;
use proplink_db::organisation::Organisation;
use proplink_db::payments::{self, RunInput};
use proplink_db::people::{self, BankDetails, VendorInput};
use proplink_db::portfolio::Address;
use proplink_db::receipt_batches;
use proplink_db::receivables::{
    self as rx, Allocate, CreditInput, DraftLine, InvoiceInput, ReceiptInput,
};
use proplink_db::{Actor, AppPool, TenantContext, TenantTx};
use proplink_domain::ledger::FundKind;
use proplink_domain::receivables::{InvoiceKind, PaymentMethod, parse_batch_rows};
use proplink_domain::uk::{AccountNumber, SortCode};
use proplink_domain::{ActorKind, Channel};
use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

fn e<E: std::fmt::Display>(err: E) -> String {
    format!("the demo's money: {err}")
}

/// The site's ledger accounts, funds and tax rates the demo's demands and receipts use.
pub(crate) struct Codes {
    pub(crate) income: Uuid,
    reserve_income: Uuid,
    ground_rent: Uuid,
    pub(crate) sc_fund: Uuid,
    reserve_fund: Uuid,
    ground_rent_fund: Uuid,
    pub(crate) exempt: Uuid,
    outside: Uuid,
    pub(crate) bank: Uuid,
}

pub(crate) async fn codes(tx: &mut TenantTx, site: Uuid) -> Result<Codes, String> {
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

/// The first day of the half year the demo's service charge demands are for.
pub(crate) fn half_year_start(today: Date) -> Date {
    today - Duration::days(75)
}

pub(crate) fn half_year(c: &Codes, from: Date, to: Date) -> Vec<DraftLine> {
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
pub(crate) async fn issue(
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

/// Loads the money demo into `org`, whose portfolio is already loaded. Bank numbers are sealed
/// with `key`, the server's data key, so payment files can be made from them.
pub async fn load(app: &AppPool, org: &Organisation, key: &DataKey) -> Result<(), String> {
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
    let first_from = half_year_start(today);
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
    payables(&mut tx, site, &c, key, now).await?;
    tx.commit().await.map_err(e)?;
    Ok(())
}

/// Gives a vendor bank details (sealed with the server's key), keeping everything else.
async fn bank_details(
    tx: &mut TenantTx,
    key: &DataKey,
    vendor: Uuid,
    sort_code: &str,
    account_number: &str,
) -> Result<String, String> {
    let v = people::vendor(tx, vendor)
        .await
        .map_err(e)?
        .ok_or_else(|| e("a vendor is missing"))?;
    people::save_vendor(
        tx,
        key,
        Some(vendor),
        &VendorInput {
            name: v.name.clone(),
            trade: v.trade.clone(),
            contact_name: v.contact_name.clone(),
            email: v.email.clone(),
            phone: v.phone.clone(),
            company_number: v.company_number.clone(),
            vat_number: v.vat_number.clone(),
            address: Address {
                line_1: v.address_line_1.clone(),
                line_2: v.address_line_2.clone(),
                city: v.city.clone(),
                postcode: v.postcode.clone(),
            },
            bank_account_name: Some(format!("{} Ltd", v.name)),
            bank: Some(BankDetails {
                sort_code: sort_code.into(),
                account_number: account_number.into(),
            }),
            notes: v.notes.clone(),
        },
    )
    .await
    .map_err(e)?;
    Ok(v.name)
}

/// The site's client account (its existing bank ledger account, so the receipts are in it),
/// the locksmith paid for the lock job in a payment run, the plumber's bill waiting for the
/// next run.
async fn payables(
    tx: &mut TenantTx,
    site: Uuid,
    c: &Codes,
    key: &DataKey,
    now: OffsetDateTime,
) -> Result<(), String> {
    let today = now.date();
    let bank = banks::create(
        tx,
        key,
        &BankAccountInput {
            name: "Goldcrest House Client Account".into(),
            bank_name: Some("Barclays".into()),
            account_type: AccountType::Client,
            sort_code: SortCode::parse("20-32-06").map_err(e)?,
            account_number: AccountNumber::parse("43987612").map_err(e)?,
            holder_name: "Goldcrest PM Ltd Client Account".into(),
            service_user_number: Some("654321".into()),
            file_format: FileFormat::BacsStandard18,
            fund_kind: None,
            sites: vec![site],
            ledger_account_id: Some(c.bank),
        },
    )
    .await
    .map_err(e)?;
    let vendor_named = async |tx: &mut TenantTx, name: &str| -> Result<Option<Uuid>, String> {
        sqlx::query_scalar("select id from vendor where name = $1")
            .bind(name)
            .fetch_optional(tx.conn())
            .await
            .map_err(e)
    };
    let (Some(locksmith), Some(plumber)) = (
        vendor_named(tx, "Keyworth Locksmiths").await?,
        vendor_named(tx, "Bright Spark Plumbing").await?,
    ) else {
        return Ok(());
    };
    bank_details(tx, key, locksmith, "309634", "21764409").await?;
    bank_details(tx, key, plumber, "404784", "70872490").await?;
    let repairs = ledger::control_account(tx, site, "repairs")
        .await
        .map_err(e)?
        .map(|a| a.id)
        .ok_or_else(|| e("no repairs account"))?;
    let standard = ledger::tax_rates(tx)
        .await
        .map_err(e)?
        .into_iter()
        .find(|r| r.treatment == "standard")
        .map(|r| r.id)
        .ok_or_else(|| e("no standard rate"))?;
    let lock_job: Option<Uuid> = sqlx::query_scalar(
        "select id from work_order where vendor_id = $1 and site_id = $2 order by created_at limit 1",
    )
    .bind(locksmith)
    .bind(site)
    .fetch_optional(tx.conn())
    .await
    .map_err(e)?;
    let entered_by = Signer::unchained("Priya Patel");
    let approver = Signer::unchained("Olivia Owner");
    let bill = async |tx: &mut TenantTx,
                      vendor: Uuid,
                      reference: &str,
                      description: &str,
                      net: i64,
                      issued: Date,
                      work_order: Option<Uuid>|
           -> Result<Uuid, String> {
        let id = bills::save_draft(
            tx,
            None,
            &BillInput {
                site_id: site,
                vendor_id: vendor,
                work_order_id: work_order,
                supplier_reference: reference.into(),
                issue_date: issued,
                due_date: Some(issued + Duration::days(30)),
                incurred_on: Some(issued),
                description: None,
                lines: vec![BillLineInput {
                    description: description.into(),
                    account_id: repairs,
                    fund_id: c.sc_fund,
                    tax_rate_id: standard,
                    net_pence: net,
                    vat_pence: None,
                    vat_recoverable: false,
                }],
                total_pence: None,
                source: "admin",
                document: None,
            },
            &entered_by,
        )
        .await
        .map_err(e)?;
        bills::submit(tx, id, &entered_by, now).await.map_err(e)?;
        bills::approve(tx, id, &approver, now).await.map_err(e)?;
        Ok(id)
    };
    let lock_bill = bill(
        tx,
        locksmith,
        "KL-2291",
        "Replace the front door lock cylinder, three keys",
        9_500,
        today - Duration::days(12),
        lock_job,
    )
    .await?;
    bill(
        tx,
        plumber,
        "BSP-5530",
        "Quarterly check of the booster pumps",
        18_000,
        today - Duration::days(5),
        None,
    )
    .await?;
    let run = payments::schedule_run(
        tx,
        key,
        &RunInput {
            bank_account_id: bank,
            payment_date: today,
            due_by: today + Duration::days(30),
            bill_ids: vec![lock_bill],
            override_: None,
        },
        &entered_by,
        now,
    )
    .await
    .map_err(e)?;
    payments::approve_run(tx, run, &approver, now)
        .await
        .map_err(e)?;
    payments::mark_run_paid(tx, run, "Olivia Owner", now)
        .await
        .map_err(e)?;
    Ok(())
}
