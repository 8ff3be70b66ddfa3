//! Receivables (issue 6): demands through their lifecycle with the statutory content the law
//! requires, receipts allocated oldest first or to chosen lines, credit on account, credit
//! notes, refunds, bounced receipts, statements and aged debt; each document's journal posted
//! in the same transaction, and the database refusing what the Rust checks refuse.

#![allow(clippy::unwrap_used, reason = "tests")]

use proplink_db::TenantTx;
use proplink_db::approvals::Signer;
use proplink_db::ledger::{self, LedgerError};
use proplink_db::people::{self, ContactInput, LeaseInput};
use proplink_db::portfolio::{self, Address, Landlord, SiteInput, UnitInput};
use proplink_db::receivables::{self as rx, *};
use proplink_domain::ledger::FundKind;
use proplink_domain::receivables::{AgeBucket, InvoiceKind, InvoiceStatus, PaymentMethod};
use proplink_test_support::TestDb;
use time::macros::date;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

#[derive(Clone, Copy)]
struct Fixture {
    site: Uuid,
    unit: Uuid,
    holder: Uuid,
    income: Uuid,
    reserve_income: Uuid,
    sc_fund: Uuid,
    reserve_fund: Uuid,
    exempt: Uuid,
    standard: Uuid,
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

async fn fixture(tx: &mut TenantTx, reference: &str) -> Fixture {
    let site = portfolio::save_site(
        tx,
        None,
        &SiteInput {
            reference: reference.into(),
            name: format!("Site {reference}"),
            address: Address {
                line_1: Some("10 Mill Lane".into()),
                city: Some("Leeds".into()),
                postcode: Some("LS2 7AB".into()),
                ..Default::default()
            },
            landlord: Some(Landlord {
                name: "Goldcrest Freehold Ltd".into(),
                address: Address {
                    line_1: Some("1 Park Row".into()),
                    city: Some("Leeds".into()),
                    postcode: Some("LS1 5HD".into()),
                    ..Default::default()
                },
            }),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let unit = portfolio::save_unit(
        tx,
        None,
        site,
        &UnitInput {
            reference: "1".into(),
            name: "Flat 1".into(),
            unit_type: "flat".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let holder = people::save_contact(
        tx,
        None,
        &ContactInput {
            kind: "person".into(),
            title: Some("Mr".into()),
            first_name: Some("Ravi".into()),
            last_name: Some("Patel".into()),
            correspondence: "email".into(),
            emails: vec![format!("ravi.{reference}@example.com").to_lowercase()],
            roles: vec!["leaseholder".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    people::add_lease(
        tx,
        unit,
        &LeaseInput {
            starts_on: Some(date!(2015 - 03 - 01)),
            holders: vec![holder],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    ledger::ensure_books(tx, site).await.unwrap();
    ledger::ensure_tax_rates(tx).await.unwrap();
    let control = async |tx: &mut TenantTx, c: &str| {
        ledger::control_account(tx, site, c)
            .await
            .unwrap()
            .unwrap()
            .id
    };
    let fund = async |tx: &mut TenantTx, k: FundKind| {
        ledger::fund_of_kind(tx, site, k).await.unwrap().unwrap().id
    };
    let rates = ledger::tax_rates(tx).await.unwrap();
    let rate = |t: &str| rates.iter().find(|r| r.treatment == t).unwrap().id;
    Fixture {
        site,
        unit,
        holder,
        income: control(tx, "service_charge_income").await,
        reserve_income: control(tx, "reserve_contributions").await,
        sc_fund: fund(tx, FundKind::ServiceCharge).await,
        reserve_fund: fund(tx, FundKind::Reserve).await,
        exempt: rate("exempt"),
        standard: rate("standard"),
    }
}

fn sc_line(f: &Fixture, pence: i64) -> DraftLine {
    DraftLine {
        description: "Service charge on account".into(),
        account_id: f.income,
        fund_id: f.sc_fund,
        tax_rate_id: f.exempt,
        net_pence: pence,
        period_from: Some(date!(2026 - 04 - 01)),
        period_to: Some(date!(2026 - 09 - 30)),
    }
}

fn demand(f: &Fixture, issued: Date, due: Date, lines: Vec<DraftLine>) -> InvoiceInput {
    InvoiceInput {
        unit_id: f.unit,
        contact_id: f.holder,
        kind: InvoiceKind::ServiceCharge,
        reference: Some("Service charge 1 April to 30 September 2026".into()),
        issue_date: Some(issued),
        due_date: Some(due),
        lines,
    }
}

async fn issue(tx: &mut TenantTx, input: &InvoiceInput) -> (Uuid, String) {
    let id = rx::save_invoice_draft(tx, None, input, "Ann Accountant")
        .await
        .unwrap();
    rx::submit_invoice(tx, id, &Signer::unchained("Ann Accountant"), now())
        .await
        .unwrap();
    let number = rx::approve_invoice(tx, id, &Signer::unchained("Priya Patel"), now())
        .await
        .unwrap()
        .posted()
        .unwrap();
    (id, number)
}

fn receipt(f: &Fixture, on: Date, pence: i64, allocate: Allocate) -> ReceiptInput {
    ReceiptInput {
        unit_id: f.unit,
        contact_id: Some(f.holder),
        received_on: on,
        amount_pence: pence,
        method: PaymentMethod::Card,
        reference: Some("PATEL FLAT 1".into()),
        bank_account_id: None,
        fund_id: None,
        allocate,
        channel: "admin",
        batch_id: None,
    }
}

fn refusal<T: std::fmt::Debug>(r: Result<T, LedgerError>) -> String {
    match r {
        Err(LedgerError::Refused(msg)) => msg,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The site's trial balance over all time sums to zero, and debtors control equals the sum
/// of the units' statement balances.
async fn assert_books_agree(tx: &mut TenantTx, f: &Fixture) -> i64 {
    let tb = ledger::trial_balance(tx, f.site, date!(2000 - 01 - 01), date!(2100 - 12 - 31))
        .await
        .unwrap();
    assert_eq!(tb.iter().map(|r| r.balance_pence).sum::<i64>(), 0);
    let debtors = ledger::control_account(tx, f.site, "debtors")
        .await
        .unwrap()
        .unwrap()
        .id;
    let control = ledger::account_balance(tx, debtors, None, date!(2100 - 12 - 31))
        .await
        .unwrap();
    let st = rx::statement(tx, f.unit, date!(2000 - 01 - 01), date!(2100 - 12 - 31))
        .await
        .unwrap();
    assert_eq!(st.closing_pence, control, "debtors control = statement");
    control
}

#[tokio::test]
async fn a_demand_is_approved_numbered_posted_paid_and_stated() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Ann")).await.unwrap();
    let f = fixture(&mut tx, "GC-001").await;

    // A draft has no number; submitting checks the statutory content; approval numbers and
    // posts it.
    let input = demand(
        &f,
        date!(2026 - 03 - 01),
        date!(2026 - 04 - 01),
        vec![sc_line(&f, 45_000)],
    );
    let id = rx::save_invoice_draft(&mut tx, None, &input, "Ann")
        .await
        .unwrap();
    let draft = rx::find_invoice(&mut tx, id).await.unwrap().unwrap();
    assert_eq!(
        (draft.number.as_deref(), draft.status()),
        (None, InvoiceStatus::Draft)
    );
    rx::submit_invoice(&mut tx, id, &Signer::unchained("Ann"), now())
        .await
        .unwrap();
    let number = rx::approve_invoice(&mut tx, id, &Signer::unchained("Priya"), now())
        .await
        .unwrap();
    assert_eq!(number, Approval::Posted("INV-2026-000001".into()));
    let inv = rx::find_invoice(&mut tx, id).await.unwrap().unwrap();
    assert_eq!(inv.status(), InvoiceStatus::Approved);
    assert_eq!(inv.landlord_name.as_deref(), Some("Goldcrest Freehold Ltd"));
    assert_eq!(
        inv.landlord_address.as_deref(),
        Some("1 Park Row, Leeds, LS1 5HD")
    );
    let (text, filled) = rx::demand_statutory_text(&mut tx, &inv)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (text.kind.as_str(), text.version),
        ("service_charge_summary", 1)
    );
    assert!(filled.contains("Unless a summary is sent to you with a demand, you may withhold"));
    let journal = ledger::find_journal(&mut tx, inv.journal_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(journal.source_type, "debtor_invoice");
    assert_eq!(journal.journal_date, date!(2026 - 03 - 01));
    assert_eq!(assert_books_agree(&mut tx, &f).await, 45_000);

    rx::mark_sent(&mut tx, id, now()).await.unwrap();
    // £300 by card settles part; £200 more pays it and leaves £50 on account.
    rx::record_receipt(
        &mut tx,
        &receipt(&f, date!(2026 - 03 - 20), 30_000, Allocate::OldestFirst),
        "Ann",
        now(),
    )
    .await
    .unwrap();
    let inv = rx::find_invoice(&mut tx, id).await.unwrap().unwrap();
    assert_eq!(
        (inv.status(), inv.balance_pence()),
        (InvoiceStatus::PartPaid, 15_000)
    );
    let (second, _) = rx::record_receipt(
        &mut tx,
        &receipt(&f, date!(2026 - 03 - 25), 20_000, Allocate::OldestFirst),
        "Ann",
        now(),
    )
    .await
    .unwrap();
    let inv = rx::find_invoice(&mut tx, id).await.unwrap().unwrap();
    assert_eq!(
        (inv.status(), inv.balance_pence()),
        (InvoiceStatus::Paid, 0)
    );
    assert_eq!(
        rx::find_receipt(&mut tx, second)
            .await
            .unwrap()
            .unwrap()
            .available_pence(),
        5_000
    );
    assert_eq!(rx::unit_credit(&mut tx, f.unit).await.unwrap(), 5_000);
    assert_eq!(assert_books_agree(&mut tx, &f).await, -5_000);

    // The statement for March: opening nil, the demand, two payments, closing £50 in credit.
    let st = rx::statement(
        &mut tx,
        f.unit,
        date!(2026 - 03 - 01),
        date!(2026 - 03 - 31),
    )
    .await
    .unwrap();
    assert_eq!(st.opening_pence, 0);
    let amounts: Vec<i64> = st.rows.iter().map(|r| r.amount_pence).collect();
    assert_eq!(amounts, vec![45_000, -30_000, -20_000]);
    let balances: Vec<i64> = st.rows.iter().map(|r| r.balance_pence).collect();
    assert_eq!(balances, vec![45_000, 15_000, -5_000]);
    assert!(
        st.rows[0]
            .description
            .starts_with("Service charge demand INV-2026-000001")
    );
    assert!(st.rows[1].description.contains("£300.00 by card"));
    assert_eq!((st.closing_pence, st.overdue_pence), (-5_000, 0));
    // The statement from April opens with the credit.
    let april = rx::statement(
        &mut tx,
        f.unit,
        date!(2026 - 04 - 01),
        date!(2026 - 04 - 30),
    )
    .await
    .unwrap();
    assert_eq!((april.opening_pence, april.rows.len()), (-5_000, 0));

    // The next demand takes the next number.
    let (_, next) = issue(
        &mut tx,
        &demand(
            &f,
            date!(2026 - 09 - 01),
            date!(2026 - 10 - 01),
            vec![sc_line(&f, 45_000)],
        ),
    )
    .await;
    assert_eq!(next, "INV-2026-000002");
}

#[tokio::test]
async fn a_demand_cannot_be_issued_without_what_the_law_requires() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Ann")).await.unwrap();
    let f = fixture(&mut tx, "GC-001").await;
    let input = demand(
        &f,
        date!(2026 - 03 - 01),
        date!(2026 - 04 - 01),
        vec![sc_line(&f, 45_000)],
    );
    let id = rx::save_invoice_draft(&mut tx, None, &input, "Ann")
        .await
        .unwrap();

    // No landlord on record.
    sqlx::query("update site set landlord_name = null where id = $1")
        .bind(f.site)
        .execute(tx.conn())
        .await
        .unwrap();
    let msg = refusal(rx::submit_invoice(&mut tx, id, &Signer::unchained("Ann"), now()).await);
    assert!(
        msg.contains("landlord's name and an address in England and Wales"),
        "{msg}"
    );
    // A landlord in Edinburgh is not an address in England and Wales.
    sqlx::query(
        "update site set landlord_name = 'Goldcrest Freehold Ltd', landlord_postcode = 'EH1 1YZ' where id = $1",
    )
    .bind(f.site)
    .execute(tx.conn())
    .await
    .unwrap();
    let msg = refusal(rx::submit_invoice(&mut tx, id, &Signer::unchained("Ann"), now()).await);
    assert!(msg.contains("is not in England or Wales"), "{msg}");
    sqlx::query("update site set landlord_postcode = 'LS1 5HD' where id = $1")
        .bind(f.site)
        .execute(tx.conn())
        .await
        .unwrap();

    // A Welsh site: no Welsh summary is loaded, so no Welsh demand is issued.
    sqlx::query("update site set jurisdiction = 'wales' where id = $1")
        .bind(f.site)
        .execute(tx.conn())
        .await
        .unwrap();
    let msg = refusal(rx::submit_invoice(&mut tx, id, &Signer::unchained("Ann"), now()).await);
    assert!(
        msg.contains("No prescribed summary of tenants' rights and obligations for Wales is in force on 1 March 2026"),
        "{msg}"
    );
    tx.rollback().await.unwrap();

    // Loaded by the platform, the Welsh text is the one a Welsh demand records.
    let mut su = db.superuser().await;
    let welsh = Uuid::now_v7();
    sqlx::query(
        "insert into statutory_text (id, kind, jurisdiction, version, title, body, source, valid_from)
         values ($1, 'service_charge_summary', 'wales', 1, 'Summary (Wales)', 'Welsh text', 'SI (W.)', '2007-11-30')",
    )
    .bind(welsh)
    .execute(&mut su)
    .await
    .unwrap();
    let mut tx = db.app.begin(&db.staff(&org, "Ann")).await.unwrap();
    let f = fixture(&mut tx, "GC-002").await;
    sqlx::query("update site set jurisdiction = 'wales' where id = $1")
        .bind(f.site)
        .execute(tx.conn())
        .await
        .unwrap();
    let (id, _) = issue(
        &mut tx,
        &demand(
            &f,
            date!(2026 - 03 - 01),
            date!(2026 - 04 - 01),
            vec![sc_line(&f, 100)],
        ),
    )
    .await;
    let inv = rx::find_invoice(&mut tx, id).await.unwrap().unwrap();
    assert_eq!(
        (inv.jurisdiction.as_deref(), inv.statutory_text_id),
        (Some("wales"), Some(welsh))
    );

    // A ground-rent demand falls due 30 to 60 days after the notice, and states its period.
    let mut ground = demand(
        &f,
        date!(2026 - 03 - 01),
        date!(2026 - 03 - 20),
        vec![sc_line(&f, 25_000)],
    );
    ground.kind = InvoiceKind::GroundRent;
    sqlx::query("update site set jurisdiction = 'england' where id = $1")
        .bind(f.site)
        .execute(tx.conn())
        .await
        .unwrap();
    let gid = rx::save_invoice_draft(&mut tx, None, &ground, "Ann")
        .await
        .unwrap();
    let msg = refusal(rx::submit_invoice(&mut tx, gid, &Signer::unchained("Ann"), now()).await);
    assert!(msg.contains("30 to 60 days after the notice"), "{msg}");
    assert!(msg.contains("from 31 March 2026 to 30 April 2026"), "{msg}");
    ground.due_date = Some(date!(2026 - 04 - 15));
    rx::save_invoice_draft(&mut tx, Some(gid), &ground, "Ann")
        .await
        .unwrap();
    rx::submit_invoice(&mut tx, gid, &Signer::unchained("Ann"), now())
        .await
        .unwrap();
    rx::approve_invoice(&mut tx, gid, &Signer::unchained("Priya"), now())
        .await
        .unwrap();
    let inv = rx::find_invoice(&mut tx, gid).await.unwrap().unwrap();
    let (text, filled) = rx::demand_statutory_text(&mut tx, &inv)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text.kind, "ground_rent_notice");
    assert!(
        filled.contains("It requires you to pay rent of £250.00 which is due on 15 April 2026."),
        "{filled}"
    );
    assert!(filled.contains("To: Mr Ravi Patel"), "{filled}");
    assert!(
        filled.contains("1 April 2026 to 30 September 2026"),
        "{filled}"
    );
}

#[tokio::test]
async fn money_settles_chosen_lines_credit_moves_funds_and_bad_allocations_are_refused() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Ann")).await.unwrap();
    let f = fixture(&mut tx, "GC-001").await;
    let reserve = DraftLine {
        description: "Reserve fund contribution".into(),
        account_id: f.reserve_income,
        fund_id: f.reserve_fund,
        tax_rate_id: f.exempt,
        ..sc_line(&f, 10_000)
    };
    let (first, _) = issue(
        &mut tx,
        &demand(
            &f,
            date!(2026 - 03 - 01),
            date!(2026 - 04 - 01),
            vec![sc_line(&f, 45_000), reserve.clone()],
        ),
    )
    .await;
    let lines = rx::invoice_lines(&mut tx, first).await.unwrap();
    let (sc, res) = (lines[0].id, lines[1].id);

    // More than a line owes, more than the receipt: refused, nothing posted.
    let msg = refusal(
        rx::record_receipt(
            &mut tx,
            &receipt(
                &f,
                date!(2026 - 03 - 10),
                50_000,
                Allocate::Lines(vec![(res, 10_001)]),
            ),
            "Ann",
            now(),
        )
        .await,
    );
    assert_eq!(
        msg,
        "INV-2026-000001 line 2 has £100.00 outstanding: £100.01 is more than that."
    );
    let msg = refusal(
        rx::record_receipt(
            &mut tx,
            &receipt(
                &f,
                date!(2026 - 03 - 10),
                5_000,
                Allocate::Lines(vec![(sc, 6_000)]),
            ),
            "Ann",
            now(),
        )
        .await,
    );
    assert_eq!(msg, "£60.00 is allocated but only £50.00 is available.");
    assert!(rx::unit_receipts(&mut tx, f.unit).await.unwrap().is_empty());

    // £100 to the reserve line only; £200 held on account in the service charge fund.
    rx::record_receipt(
        &mut tx,
        &receipt(
            &f,
            date!(2026 - 03 - 10),
            10_000,
            Allocate::Lines(vec![(res, 10_000)]),
        ),
        "Ann",
        now(),
    )
    .await
    .unwrap();
    let (held, _) = rx::record_receipt(
        &mut tx,
        &receipt(&f, date!(2026 - 03 - 11), 20_000, Allocate::None),
        "Ann",
        now(),
    )
    .await
    .unwrap();
    let inv = rx::find_invoice(&mut tx, first).await.unwrap().unwrap();
    assert_eq!(
        (inv.status(), inv.balance_pence()),
        (InvoiceStatus::PartPaid, 45_000)
    );

    // A second demand with a reserve line; the held credit pays it and moves fund with it.
    let (second, _) = issue(
        &mut tx,
        &demand(
            &f,
            date!(2026 - 03 - 15),
            date!(2026 - 04 - 15),
            vec![reserve.clone()],
        ),
    )
    .await;
    let res2 = rx::invoice_lines(&mut tx, second).await.unwrap()[0].id;
    let settled = rx::allocate_credit(
        &mut tx,
        CreditSource::Receipt(held),
        &Allocate::Lines(vec![(res2, 10_000)]),
        date!(2026 - 03 - 16),
        "Ann",
        now(),
    )
    .await
    .unwrap();
    assert_eq!(settled, 10_000);
    let bank = ledger::control_account(&mut tx, f.site, "bank")
        .await
        .unwrap()
        .unwrap()
        .id;
    let on = date!(2026 - 12 - 31);
    assert_eq!(
        ledger::account_balance(&mut tx, bank, Some(f.reserve_fund), on)
            .await
            .unwrap(),
        20_000
    );
    assert_eq!(
        ledger::account_balance(&mut tx, bank, Some(f.sc_fund), on)
            .await
            .unwrap(),
        10_000
    );
    assert_eq!(
        rx::find_invoice(&mut tx, second)
            .await
            .unwrap()
            .unwrap()
            .status(),
        InvoiceStatus::Paid
    );
    assert_books_agree(&mut tx, &f).await;

    // A paid line takes no more; a voided invoice is never paid.
    let msg = refusal(
        rx::allocate_credit(
            &mut tx,
            CreditSource::Receipt(held),
            &Allocate::Lines(vec![(res2, 1)]),
            on,
            "Ann",
            now(),
        )
        .await,
    );
    assert_eq!(msg, "INV-2026-000002 line 1 is already paid in full.");
    let (third, _) = issue(
        &mut tx,
        &demand(
            &f,
            date!(2026 - 03 - 20),
            date!(2026 - 04 - 20),
            vec![sc_line(&f, 1_000)],
        ),
    )
    .await;
    let third_line = rx::invoice_lines(&mut tx, third).await.unwrap()[0].id;
    rx::void_invoice(
        &mut tx,
        third,
        date!(2026 - 03 - 21),
        "Raised in error",
        "Ann",
        now(),
    )
    .await
    .unwrap();
    let voided = rx::find_invoice(&mut tx, third).await.unwrap().unwrap();
    assert_eq!(
        (voided.status(), voided.balance_pence()),
        (InvoiceStatus::Voided, 0)
    );
    let msg = refusal(
        rx::allocate_credit(
            &mut tx,
            CreditSource::Receipt(held),
            &Allocate::Lines(vec![(third_line, 100)]),
            on,
            "Ann",
            now(),
        )
        .await,
    );
    assert_eq!(msg, "INV-2026-000003 was voided: it cannot be paid.");
    assert_books_agree(&mut tx, &f).await;
}

#[tokio::test]
async fn credit_notes_refunds_and_a_bounced_receipt() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Ann")).await.unwrap();
    let f = fixture(&mut tx, "GC-001").await;
    let (inv, number) = issue(
        &mut tx,
        &demand(
            &f,
            date!(2026 - 03 - 01),
            date!(2026 - 04 - 01),
            vec![sc_line(&f, 45_000)],
        ),
    )
    .await;
    // A credit note against the invoice (wrong amount: £50 too much) settles £50 of it.
    let credit = rx::save_credit_draft(
        &mut tx,
        None,
        &CreditInput {
            unit_id: f.unit,
            contact_id: f.holder,
            invoice_id: Some(inv),
            reason: "Overcharged".into(),
            issue_date: Some(date!(2026 - 03 - 05)),
            lines: vec![sc_line(&f, 5_000)],
        },
        "Ann",
    )
    .await
    .unwrap();
    rx::submit_credit_note(&mut tx, credit, &Signer::unchained("Ann"), now())
        .await
        .unwrap();
    let crn = rx::approve_credit_note(&mut tx, credit, &Signer::unchained("Priya"), now())
        .await
        .unwrap();
    assert_eq!(crn, Approval::Posted("CRN-2026-000001".into()));
    let i = rx::find_invoice(&mut tx, inv).await.unwrap().unwrap();
    assert_eq!(
        (i.status(), i.balance_pence()),
        (InvoiceStatus::PartPaid, 40_000)
    );
    assert_eq!(assert_books_agree(&mut tx, &f).await, 40_000);

    // The credit note's VAT: a standard-rated admin fee credited posts the VAT back.
    let fee = DraftLine {
        description: "Admin fee".into(),
        tax_rate_id: f.standard,
        ..sc_line(&f, 2_501)
    };
    let (fee_inv, _) = issue(
        &mut tx,
        &InvoiceInput {
            kind: InvoiceKind::Other,
            ..demand(&f, date!(2026 - 03 - 06), date!(2026 - 03 - 20), vec![fee])
        },
    )
    .await;
    let fee_inv = rx::find_invoice(&mut tx, fee_inv).await.unwrap().unwrap();
    assert_eq!(
        (fee_inv.net_pence, fee_inv.vat_pence, fee_inv.total_pence),
        (2_501, 500, 3_001)
    );
    assert_eq!(assert_books_agree(&mut tx, &f).await, 43_001);

    // £500 received: oldest first settles the demand (£400) then the fee (£30.01); the rest is
    // credit, of which £50 is refunded.
    let (paid, rct) = rx::record_receipt(
        &mut tx,
        &receipt(&f, date!(2026 - 04 - 02), 50_000, Allocate::OldestFirst),
        "Ann",
        now(),
    )
    .await
    .unwrap();
    assert_eq!(rct, "RCT-2026-000001");
    assert_eq!(
        rx::find_receipt(&mut tx, paid)
            .await
            .unwrap()
            .unwrap()
            .available_pence(),
        6_999
    );
    let msg = refusal(
        rx::refund(
            &mut tx,
            &RefundInput {
                source: CreditSource::Receipt(paid),
                amount_pence: 7_000,
                refunded_on: date!(2026 - 04 - 03),
                method: PaymentMethod::BankTransfer,
                reference: None,
                bank_account_id: None,
            },
            "Ann",
            now(),
        )
        .await,
    );
    assert_eq!(
        msg,
        "RCT-2026-000001 has £69.99 unallocated: a refund of £70.00 is more than that."
    );
    let rfd = rx::refund(
        &mut tx,
        &RefundInput {
            source: CreditSource::Receipt(paid),
            amount_pence: 5_000,
            refunded_on: date!(2026 - 04 - 03),
            method: PaymentMethod::BankTransfer,
            reference: None,
            bank_account_id: None,
        },
        "Ann",
        now(),
    )
    .await
    .unwrap();
    assert_eq!(rfd, "RFD-2026-000001");
    assert_eq!(assert_books_agree(&mut tx, &f).await, -1_999);
    // A receipt with a refund paid from it is not reversed.
    let msg = refusal(
        rx::reverse_receipt(
            &mut tx,
            paid,
            date!(2026 - 04 - 04),
            "Bounced",
            "Ann",
            now(),
        )
        .await,
    );
    assert!(msg.contains("has been refunded"), "{msg}");

    // A second demand paid by a cheque that bounces: the demand re-opens.
    let (again, _) = issue(
        &mut tx,
        &demand(
            &f,
            date!(2026 - 09 - 01),
            date!(2026 - 10 - 01),
            vec![sc_line(&f, 45_000)],
        ),
    )
    .await;
    let mut cheque = receipt(&f, date!(2026 - 09 - 10), 45_000, Allocate::OldestFirst);
    cheque.method = PaymentMethod::Cheque;
    let (bounced, _) = rx::record_receipt(&mut tx, &cheque, "Ann", now())
        .await
        .unwrap();
    assert_eq!(
        rx::find_invoice(&mut tx, again)
            .await
            .unwrap()
            .unwrap()
            .status(),
        InvoiceStatus::Paid
    );
    rx::reverse_receipt(
        &mut tx,
        bounced,
        date!(2026 - 09 - 20),
        "Cheque returned unpaid",
        "Ann",
        now(),
    )
    .await
    .unwrap();
    let reopened = rx::find_invoice(&mut tx, again).await.unwrap().unwrap();
    assert_eq!(
        (reopened.status(), reopened.balance_pence()),
        (InvoiceStatus::Approved, 45_000)
    );
    let msg = refusal(
        rx::reverse_receipt(
            &mut tx,
            bounced,
            date!(2026 - 09 - 20),
            "Again",
            "Ann",
            now(),
        )
        .await,
    );
    assert!(msg.ends_with("is already reversed."), "{msg}");
    let msg = refusal(
        rx::allocate_credit(
            &mut tx,
            CreditSource::Receipt(bounced),
            &Allocate::OldestFirst,
            date!(2026 - 09 - 21),
            "Ann",
            now(),
        )
        .await,
    );
    assert!(msg.contains("was reversed"), "{msg}");
    assert_eq!(assert_books_agree(&mut tx, &f).await, 43_001);

    // The aged debt at 1 December: £450 owed on the September demand (due 1 October, 61
    // days overdue), the £19.99 of credit held, and the last good receipt.
    let aged = rx::aged_debt(&mut tx, f.site, date!(2026 - 12 - 01))
        .await
        .unwrap();
    assert_eq!(aged.len(), 1);
    assert_eq!(aged[0].buckets[AgeBucket::Upto90.index()], 45_000);
    assert_eq!(
        (
            aged[0].total_pence,
            aged[0].credit_pence,
            aged[0].net_pence()
        ),
        (45_000, 1_999, 43_001)
    );
    assert_eq!(aged[0].last_receipt, Some(date!(2026 - 04 - 02)));
    assert_eq!(aged[0].contact_name.as_deref(), Some("Mr Ravi Patel"));
    // As at 15 September, the cheque had not bounced yet.
    let then = rx::aged_debt(&mut tx, f.site, date!(2026 - 09 - 15))
        .await
        .unwrap();
    assert_eq!((then[0].total_pence, then[0].credit_pence), (0, 1_999));
    let _ = number;
}

#[tokio::test]
async fn bad_input_and_locked_periods_change_nothing() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Ann")).await.unwrap();
    let f = fixture(&mut tx, "GC-001").await;
    let other = fixture(&mut tx, "GC-002").await;

    // Another site's account on a line; a control account; nothing to charge.
    let mut foreign = sc_line(&f, 100);
    foreign.account_id = other.income;
    let msg = refusal(
        rx::save_invoice_draft(
            &mut tx,
            None,
            &demand(
                &f,
                date!(2026 - 03 - 01),
                date!(2026 - 04 - 01),
                vec![foreign],
            ),
            "Ann",
        )
        .await,
    );
    assert_eq!(msg, "Line 1: choose one of this site's ledger accounts.");
    let debtors = ledger::control_account(&mut tx, f.site, "debtors")
        .await
        .unwrap()
        .unwrap();
    let mut control = sc_line(&f, 100);
    control.account_id = debtors.id;
    let msg = refusal(
        rx::save_invoice_draft(
            &mut tx,
            None,
            &demand(
                &f,
                date!(2026 - 03 - 01),
                date!(2026 - 04 - 01),
                vec![control],
            ),
            "Ann",
        )
        .await,
    );
    assert!(msg.contains("is posted to automatically"), "{msg}");
    let msg = refusal(
        rx::save_invoice_draft(
            &mut tx,
            None,
            &demand(&f, date!(2026 - 03 - 01), date!(2026 - 04 - 01), vec![]),
            "Ann",
        )
        .await,
    );
    assert_eq!(msg, "Add at least one line.");
    let mut stranger = demand(
        &f,
        date!(2026 - 03 - 01),
        date!(2026 - 04 - 01),
        vec![sc_line(&f, 100)],
    );
    stranger.contact_id = other.holder;
    let msg = refusal(rx::save_invoice_draft(&mut tx, None, &stranger, "Ann").await);
    assert!(
        msg.contains("has never held a lease of or occupied 1"),
        "{msg}"
    );

    // A locked March: approval refused, nothing numbered or posted; the draft stays submitted.
    let period = ledger::add_period(
        &mut tx,
        f.site,
        date!(2026 - 03 - 01),
        date!(2026 - 03 - 31),
    )
    .await
    .unwrap();
    ledger::set_period_locked(&mut tx, period, true, "Ann", now())
        .await
        .unwrap();
    let id = rx::save_invoice_draft(
        &mut tx,
        None,
        &demand(
            &f,
            date!(2026 - 03 - 10),
            date!(2026 - 04 - 10),
            vec![sc_line(&f, 100)],
        ),
        "Ann",
    )
    .await
    .unwrap();
    rx::submit_invoice(&mut tx, id, &Signer::unchained("Ann"), now())
        .await
        .unwrap();
    sqlx::query("savepoint before_approval")
        .execute(tx.conn())
        .await
        .unwrap();
    let msg = refusal(rx::approve_invoice(&mut tx, id, &Signer::unchained("Priya"), now()).await);
    assert!(msg.contains("locked"), "{msg}");
    sqlx::query("rollback to savepoint before_approval")
        .execute(tx.conn())
        .await
        .unwrap();
    ledger::set_period_locked(&mut tx, period, false, "Ann", now())
        .await
        .unwrap();
    // The refused approval drew no number: the first approved invoice is still 000001.
    assert_eq!(
        rx::approve_invoice(&mut tx, id, &Signer::unchained("Priya"), now())
            .await
            .unwrap(),
        Approval::Posted("INV-2026-000001".into())
    );
    tx.commit().await.unwrap();

    // The database refuses what the code refuses, when the code is bypassed.
    let mut tx = db.app.begin(&db.staff(&org, "Ann")).await.unwrap();
    let sql_refusal = async |tx: &mut TenantTx, sql: &str| -> String {
        sqlx::query("savepoint s").execute(tx.conn()).await.unwrap();
        let e = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(tx.conn())
            .await
            .unwrap_err();
        sqlx::query("rollback to savepoint s")
            .execute(tx.conn())
            .await
            .unwrap();
        e.as_database_error().unwrap().code().unwrap().into_owned()
    };
    // Settled amounts change only through allocations.
    assert_eq!(
        sql_refusal(&mut tx, "update debtor_invoice set paid_pence = 1").await,
        "23514"
    );
    // An approved invoice's lines and figures do not change.
    assert_eq!(
        sql_refusal(&mut tx, "update debtor_invoice_line set net_pence = 1").await,
        "23514"
    );
    assert_eq!(
        sql_refusal(
            &mut tx,
            "update debtor_invoice set net_pence = 1, total_pence = 1"
        )
        .await,
        "23514"
    );
    assert_eq!(
        sql_refusal(&mut tx, "delete from debtor_invoice").await,
        "23514"
    );
    // Allocations are final; a line is never paid beyond its gross.
    let line = rx::invoice_lines(&mut tx, id).await.unwrap()[0].id;
    let (r, _) = rx::record_receipt(
        &mut tx,
        &receipt(&f, date!(2026 - 04 - 01), 500, Allocate::None),
        "Ann",
        now(),
    )
    .await
    .unwrap();
    let over = format!(
        "insert into allocation (organisation_id, id, site_id, unit_id, allocated_on, amount_pence,
                receipt_id, invoice_line_id, fund_id, created_by)
         values ('{}', '{}', '{}', '{}', '2026-04-01', 200, '{r}', '{line}', '{}', 'x')",
        org.id.0,
        Uuid::now_v7(),
        f.site,
        f.unit,
        f.sc_fund
    );
    assert_eq!(sql_refusal(&mut tx, &over).await, "23514");
    assert_eq!(
        sql_refusal(&mut tx, "delete from allocation").await,
        "42501"
    );
    assert_eq!(sql_refusal(&mut tx, "delete from receipt").await, "42501");
    // A credit settles only its own fund's lines (the composite key carries the fund).
    let wrong_fund = over
        .replace(&f.sc_fund.to_string(), &f.reserve_fund.to_string())
        .replace("200", "50");
    assert_eq!(sql_refusal(&mut tx, &wrong_fund).await, "23503");
}

// ---------------------------------------------------------------------------------------------
// Property: random sequences of demands, receipts, allocations, credit notes, refunds, voids
// and bounced receipts keep the books whole.

mod property {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    #[derive(Debug, Clone)]
    enum Op {
        /// A demand of `pence` on unit `unit`, in the reserve fund or not, standard-rated or not.
        Demand {
            unit: usize,
            pence: i64,
            reserve: bool,
            vat: bool,
        },
        Receipt {
            unit: usize,
            pence: i64,
            oldest_first: bool,
        },
        /// Sets a held receipt's money against open lines, oldest first.
        Allocate {
            receipt: usize,
        },
        /// A credit note on account, or against an invoice.
        Credit {
            unit: usize,
            pence: i64,
            against: Option<usize>,
        },
        Refund {
            receipt: usize,
            pence: i64,
        },
        Bounce {
            receipt: usize,
        },
        Void {
            invoice: usize,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0..2usize, 1..60_000i64, any::<bool>(), any::<bool>())
                .prop_map(|(unit, pence, reserve, vat)| Op::Demand { unit, pence, reserve, vat }),
            3 => (0..2usize, 1..80_000i64, any::<bool>())
                .prop_map(|(unit, pence, oldest_first)| Op::Receipt { unit, pence, oldest_first }),
            1 => (0..8usize).prop_map(|receipt| Op::Allocate { receipt }),
            1 => (0..2usize, 1..20_000i64, proptest::option::of(0..8usize))
                .prop_map(|(unit, pence, against)| Op::Credit { unit, pence, against }),
            1 => (0..8usize, 1..20_000i64).prop_map(|(receipt, pence)| Op::Refund { receipt, pence }),
            1 => (0..8usize).prop_map(|receipt| Op::Bounce { receipt }),
            1 => (0..8usize).prop_map(|invoice| Op::Void { invoice }),
        ]
    }

    /// Runs one op; a refusal must leave the books as they were.
    async fn apply(
        tx: &mut TenantTx,
        f: &[Fixture; 2],
        op: &Op,
        invoices: &mut Vec<(usize, Uuid)>,
        receipts: &mut Vec<Uuid>,
        day: Date,
    ) -> bool {
        let by = "Prop";
        let t = now();
        let result: Result<(), LedgerError> = match op {
            Op::Demand {
                unit,
                pence,
                reserve,
                vat,
            } => {
                let fx = &f[*unit];
                let mut l = sc_line(fx, *pence);
                if *reserve {
                    l.account_id = fx.reserve_income;
                    l.fund_id = fx.reserve_fund;
                }
                if *vat {
                    l.tax_rate_id = fx.standard;
                }
                let input = demand(fx, day, day, vec![l]);
                async {
                    let id = rx::save_invoice_draft(tx, None, &input, by).await?;
                    rx::submit_invoice(tx, id, &Signer::unchained(by), t).await?;
                    rx::approve_invoice(tx, id, &Signer::unchained(by), t).await?;
                    invoices.push((*unit, id));
                    Ok(())
                }
                .await
            }
            Op::Receipt {
                unit,
                pence,
                oldest_first,
            } => {
                let how = if *oldest_first {
                    Allocate::OldestFirst
                } else {
                    Allocate::None
                };
                rx::record_receipt(tx, &receipt(&f[*unit], day, *pence, how), by, t)
                    .await
                    .map(|(id, _)| receipts.push(id))
            }
            Op::Allocate { receipt } => match receipts.get(*receipt) {
                Some(r) => rx::allocate_credit(
                    tx,
                    CreditSource::Receipt(*r),
                    &Allocate::OldestFirst,
                    day,
                    by,
                    t,
                )
                .await
                .map(|_| ()),
                None => Ok(()),
            },
            Op::Credit {
                unit,
                pence,
                against,
            } => {
                let fx = &f[*unit];
                let invoice = against
                    .and_then(|i| invoices.get(i))
                    .filter(|(u, _)| u == unit)
                    .map(|(_, id)| *id);
                let input = CreditInput {
                    unit_id: fx.unit,
                    contact_id: fx.holder,
                    invoice_id: invoice,
                    reason: "Property test".into(),
                    issue_date: Some(day),
                    lines: vec![sc_line(fx, *pence)],
                };
                async {
                    let id = rx::save_credit_draft(tx, None, &input, by).await?;
                    rx::submit_credit_note(tx, id, &Signer::unchained(by), t).await?;
                    rx::approve_credit_note(tx, id, &Signer::unchained(by), t).await?;
                    Ok(())
                }
                .await
            }
            Op::Refund { receipt, pence } => match receipts.get(*receipt) {
                Some(r) => rx::refund(
                    tx,
                    &RefundInput {
                        source: CreditSource::Receipt(*r),
                        amount_pence: *pence,
                        refunded_on: day,
                        method: PaymentMethod::BankTransfer,
                        reference: None,
                        bank_account_id: None,
                    },
                    by,
                    t,
                )
                .await
                .map(|_| ()),
                None => Ok(()),
            },
            Op::Bounce { receipt } => match receipts.get(*receipt) {
                Some(r) => rx::reverse_receipt(tx, *r, day, "Bounced", by, t).await,
                None => Ok(()),
            },
            Op::Void { invoice } => match invoices.get(*invoice) {
                Some((_, id)) => rx::void_invoice(tx, *id, day, "Property test", by, t)
                    .await
                    .map(|_| ()),
                None => Ok(()),
            },
        };
        match result {
            Ok(()) => false,
            Err(LedgerError::Refused(_)) => true,
            Err(e) => panic!("{op:?} failed: {e:?}"),
        }
    }

    /// The books of both units agree with every document and allocation.
    async fn check(tx: &mut TenantTx, f: &[Fixture; 2]) {
        let site = f[0].site;
        let tb = ledger::trial_balance(tx, site, date!(2000 - 01 - 01), date!(2100 - 12 - 31))
            .await
            .unwrap();
        assert_eq!(
            tb.iter().map(|r| r.balance_pence).sum::<i64>(),
            0,
            "trial balance"
        );
        let debtors = ledger::control_account(tx, site, "debtors")
            .await
            .unwrap()
            .unwrap()
            .id;
        let control = ledger::account_balance(tx, debtors, None, date!(2100 - 12 - 31))
            .await
            .unwrap();
        let mut statements = 0;
        let mut owed_less_credit = 0;
        for fx in f {
            let st = rx::statement(tx, fx.unit, date!(2000 - 01 - 01), date!(2100 - 12 - 31))
                .await
                .unwrap();
            statements += st.closing_pence;
            for inv in rx::unit_invoices(tx, fx.unit).await.unwrap() {
                assert!(
                    (0..=inv.total_pence).contains(&inv.paid_pence),
                    "{} over-allocated",
                    inv.label()
                );
                let lines = rx::invoice_lines(tx, inv.id).await.unwrap();
                assert_eq!(
                    inv.paid_pence,
                    lines.iter().map(|l| l.paid_pence).sum::<i64>()
                );
                for l in &lines {
                    let allocated: Option<i64> = sqlx::query_scalar(
                        "select sum(amount_pence)::int8 from allocation where invoice_line_id = $1",
                    )
                    .bind(l.id)
                    .fetch_one(tx.conn())
                    .await
                    .unwrap();
                    assert_eq!(l.paid_pence, allocated.unwrap_or(0));
                    assert!((0..=l.gross_pence).contains(&l.paid_pence));
                }
                if inv.status().is_open_or_settled() || inv.status() == InvoiceStatus::Voided {
                    owed_less_credit += inv.balance_pence();
                }
            }
            for r in rx::unit_receipts(tx, fx.unit).await.unwrap() {
                assert!((0..=r.amount_pence).contains(&r.allocated_pence));
            }
            owed_less_credit -= rx::unit_credit(tx, fx.unit).await.unwrap();
        }
        assert_eq!(
            control, statements,
            "debtors control = the sum of the statements"
        );
        assert_eq!(
            control, owed_less_credit,
            "debtors control = owed less credit held"
        );
    }

    #[test]
    fn random_sequences_keep_the_books_whole() {
        let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
        else {
            panic!("a runtime");
        };
        let (db, org) = rt.block_on(async {
            let db = TestDb::new().await;
            let org = db.org("goldcrest", "Goldcrest").await;
            (db, org)
        });
        let mut runner = TestRunner::new(Config {
            cases: 40,
            failure_persistence: None,
            ..Config::default()
        });
        let case = std::sync::atomic::AtomicUsize::new(0);
        // How many of each kind of op went through, so the test is seen to exercise them all.
        let done = std::sync::Mutex::new(std::collections::BTreeMap::<String, usize>::new());
        runner
            .run(&prop::collection::vec(op(), 1..30), |ops| {
                let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                rt.block_on(async {
                    let mut tx = db.app.begin(&db.staff(&org, "Prop")).await.unwrap();
                    let first = fixture(&mut tx, &format!("P{n}")).await;
                    // A second unit on the same site, held by someone else.
                    let second = second_unit(&mut tx, &first, n).await;
                    let f = [first, second];
                    let (mut invoices, mut receipts) = (Vec::new(), Vec::new());
                    let mut day = date!(2026 - 01 - 01);
                    let site = f[0].site;
                    let everything = async |tx: &mut TenantTx| {
                        ledger::trial_balance(
                            tx,
                            site,
                            date!(2000 - 01 - 01),
                            date!(2100 - 12 - 31),
                        )
                        .await
                    };
                    for op in &ops {
                        let before = everything(&mut tx).await.unwrap();
                        let journals_before = journal_count(&mut tx).await;
                        let refused =
                            apply(&mut tx, &f, op, &mut invoices, &mut receipts, day).await;
                        if !refused {
                            let kind = format!("{op:?}");
                            let kind = kind.split([' ', '{']).next().unwrap_or_default().to_owned();
                            *done.lock().unwrap().entry(kind).or_default() += 1;
                        }
                        if refused {
                            // A refusal posts nothing.
                            assert_eq!(everything(&mut tx).await.unwrap(), before, "{op:?}");
                            assert_eq!(journal_count(&mut tx).await, journals_before, "{op:?}");
                        }
                        check(&mut tx, &f).await;
                        day = day.next_day().unwrap_or(day);
                    }
                    tx.rollback().await.unwrap();
                });
                Ok(())
            })
            .unwrap();
        let done = done.into_inner().unwrap();
        for kind in [
            "Demand", "Receipt", "Allocate", "Credit", "Refund", "Bounce", "Void",
        ] {
            assert!(
                done.get(kind).is_some_and(|n| *n > 0),
                "no {kind} went through: {done:?}"
            );
        }
    }

    async fn journal_count(tx: &mut TenantTx) -> i64 {
        sqlx::query_scalar("select count(*) from journal")
            .fetch_one(tx.conn())
            .await
            .unwrap()
    }

    async fn second_unit(tx: &mut TenantTx, first: &Fixture, n: usize) -> Fixture {
        let unit = portfolio::save_unit(
            tx,
            None,
            first.site,
            &UnitInput {
                reference: "2".into(),
                name: "Flat 2".into(),
                unit_type: "flat".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let holder = people::save_contact(
            tx,
            None,
            &ContactInput {
                kind: "person".into(),
                first_name: Some("Sue".into()),
                last_name: Some("Okafor".into()),
                correspondence: "email".into(),
                emails: vec![format!("sue.{n}@example.com")],
                roles: vec!["leaseholder".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
        people::add_lease(
            tx,
            unit,
            &LeaseInput {
                starts_on: Some(date!(2015 - 03 - 01)),
                holders: vec![holder],
                ..Default::default()
            },
        )
        .await
        .unwrap();
        Fixture {
            unit,
            holder,
            ..*first
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Approval chains

mod chains {
    use super::*;
    use proplink_db::approvals::{self, Approver, ChainInput, StepInput};
    use proplink_db::manual_journals as mj;
    use proplink_domain::permissions::{BuiltInRole, Scope};
    use proplink_test_support::people::member;

    #[tokio::test]
    async fn records_post_only_when_their_chain_is_signed_in_order_with_delegation_rejection_and_bypass()
     {
        let db = TestDb::new().await;
        let org = db.org("goldcrest", "Goldcrest").await;
        let m = async |email: &str, name: &str, role: BuiltInRole| {
            member(&db, &org, email, name, role, Scope::AllSites).await
        };
        let maya = m(
            "maya@goldcrest.example",
            "Maya Manager",
            BuiltInRole::Manager,
        )
        .await;
        let otto = m("otto@goldcrest.example", "Otto Ops", BuiltInRole::Manager).await;
        let fiona = m(
            "fiona@goldcrest.example",
            "Fiona Finance",
            BuiltInRole::Accountant,
        )
        .await;
        let dan = m("dan@goldcrest.example", "Dan Deputy", BuiltInRole::Manager).await;
        let sid = m(
            "sid@goldcrest.example",
            "Sid Site",
            BuiltInRole::SiteManager,
        )
        .await;
        let olivia = m(
            "olivia@goldcrest.example",
            "Olivia Owner",
            BuiltInRole::OrganisationOwner,
        )
        .await;
        let mut tx = db.app.begin(&db.staff(&org, "Ann")).await.unwrap();
        let f = fixture(&mut tx, "GC-001").await;
        let signer = async |tx: &mut TenantTx, who: &proplink_test_support::people::TestMember| {
            Signer::member(tx, who.membership_id, &who.name)
                .await
                .unwrap()
        };
        let (maya_s, otto_s, fiona_s, dan_s, sid_s, olivia_s) = (
            signer(&mut tx, &maya).await,
            signer(&mut tx, &otto).await,
            signer(&mut tx, &fiona).await,
            signer(&mut tx, &dan).await,
            signer(&mut tx, &sid).await,
            signer(&mut tx, &olivia).await,
        );
        // Over £5,000: Maya then Otto; over £20,000 any accountant as well.
        approvals::save_chain(
            &mut tx,
            None,
            &ChainInput {
                name: "Large demands".into(),
                record_type: "debtor_invoice".into(),
                amount_over_pence: Some(500_000),
                site_id: None,
                category: None,
                parallel: false,
                steps: vec![
                    StepInput {
                        approver: Approver::Member(maya.membership_id),
                        amount_over_pence: None,
                    },
                    StepInput {
                        approver: Approver::Member(otto.membership_id),
                        amount_over_pence: None,
                    },
                    StepInput {
                        approver: Approver::Role("accountant".into()),
                        amount_over_pence: Some(2_000_000),
                    },
                ],
            },
        )
        .await
        .unwrap();
        let submit = async |tx: &mut TenantTx, pence: i64| {
            let id = rx::save_invoice_draft(
                tx,
                None,
                &demand(
                    &f,
                    date!(2026 - 03 - 01),
                    date!(2026 - 04 - 01),
                    vec![sc_line(&f, pence)],
                ),
                "Sid Site",
            )
            .await
            .unwrap();
            rx::submit_invoice(tx, id, &sid_s, now()).await.unwrap();
            id
        };

        // £4,000: no chain; the approver's permission is the whole check.
        let small = submit(&mut tx, 400_000).await;
        assert!(matches!(
            rx::approve_invoice(&mut tx, small, &sid_s, now())
                .await
                .unwrap(),
            Approval::Posted(_)
        ));

        // £6,000: Maya then Otto, in that order; the submitter cannot sign.
        let mid = submit(&mut tx, 600_000).await;
        let msg = refusal(rx::approve_invoice(&mut tx, mid, &otto_s, now()).await);
        assert_eq!(msg, "This is waiting for Maya Manager to approve it.");
        let msg = refusal(rx::approve_invoice(&mut tx, mid, &sid_s, now()).await);
        assert!(msg.starts_with("You submitted this for approval"), "{msg}");
        assert_eq!(
            rx::approve_invoice(&mut tx, mid, &maya_s, now())
                .await
                .unwrap(),
            Approval::Waiting(vec!["Otto Ops".into()])
        );
        let msg = refusal(rx::approve_invoice(&mut tx, mid, &maya_s, now()).await);
        assert!(msg.starts_with("You have already approved this"), "{msg}");
        assert_eq!(
            rx::find_invoice(&mut tx, mid)
                .await
                .unwrap()
                .unwrap()
                .status(),
            InvoiceStatus::AwaitingApproval,
            "nothing posts before the chain is complete"
        );
        assert!(matches!(
            rx::approve_invoice(&mut tx, mid, &otto_s, now())
                .await
                .unwrap(),
            Approval::Posted(_)
        ));

        // £25,000 while Maya is away: Dan signs for her; then Otto; then an accountant.
        let today = now().date();
        approvals::add_delegation(
            &mut tx,
            maya.membership_id,
            dan.membership_id,
            today,
            today + time::Duration::days(7),
        )
        .await
        .unwrap();
        // An expired delegation is not honoured.
        approvals::add_delegation(
            &mut tx,
            otto.membership_id,
            dan.membership_id,
            date!(2020 - 01 - 01),
            date!(2020 - 01 - 31),
        )
        .await
        .unwrap();
        let large = submit(&mut tx, 2_500_000).await;
        assert_eq!(
            rx::approve_invoice(&mut tx, large, &dan_s, now())
                .await
                .unwrap(),
            Approval::Waiting(vec!["Otto Ops".into()])
        );
        assert_eq!(
            rx::approve_invoice(&mut tx, large, &otto_s, now())
                .await
                .unwrap(),
            Approval::Waiting(vec!["any Accountant".into()])
        );
        assert!(matches!(
            rx::approve_invoice(&mut tx, large, &fiona_s, now())
                .await
                .unwrap(),
            Approval::Posted(_)
        ));
        let req = approvals::request(&mut tx, "debtor_invoice", large)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(req.status, "approved");
        assert_eq!(req.steps[0].signed_by.as_deref(), Some("Dan Deputy"));
        assert_eq!(req.steps[0].on_behalf_of.as_deref(), Some("Maya Manager"));

        // Sent back with a reason: a draft again, the reason kept; resubmitting starts afresh.
        let back = submit(&mut tx, 700_000).await;
        let msg = refusal(rx::reject_invoice(&mut tx, back, &fiona_s, "Wrong unit", now()).await);
        assert_eq!(msg, "Only an approver waited on can send this back.");
        rx::reject_invoice(&mut tx, back, &maya_s, "Wrong period", now())
            .await
            .unwrap();
        let inv = rx::find_invoice(&mut tx, back).await.unwrap().unwrap();
        assert_eq!(
            (inv.status(), inv.returned_reason.as_deref()),
            (InvoiceStatus::Draft, Some("Wrong period"))
        );
        rx::submit_invoice(&mut tx, back, &sid_s, now())
            .await
            .unwrap();
        let req = approvals::request(&mut tx, "debtor_invoice", back)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                req.status.as_str(),
                req.steps.iter().filter(|s| s.signed_at.is_some()).count()
            ),
            ("pending", 0)
        );

        // Only the Organisation Owner bypasses, with a reason; the chain's approvers are told.
        let msg = refusal(rx::bypass_invoice(&mut tx, back, &otto_s, "Urgent", now()).await);
        assert_eq!(
            msg,
            "Only the Organisation Owner can bypass an approval chain."
        );
        let msg = refusal(rx::bypass_invoice(&mut tx, back, &olivia_s, " ", now()).await);
        assert!(msg.starts_with("Say why"), "{msg}");
        rx::bypass_invoice(&mut tx, back, &olivia_s, "Year-end deadline", now())
            .await
            .unwrap();
        assert_eq!(
            rx::find_invoice(&mut tx, back)
                .await
                .unwrap()
                .unwrap()
                .status(),
            InvoiceStatus::Approved
        );
        let told: Vec<String> = sqlx::query_scalar(
            "select to_address from email_message where subject like 'Approval bypassed:%' order by to_address",
        )
        .fetch_all(tx.conn())
        .await
        .unwrap();
        assert_eq!(
            told,
            vec![
                "maya@goldcrest.example".to_owned(),
                "otto@goldcrest.example".to_owned()
            ]
        );

        // A parallel chain on credit notes: either order.
        approvals::save_chain(
            &mut tx,
            None,
            &ChainInput {
                name: "Credit notes".into(),
                record_type: "credit_note".into(),
                amount_over_pence: None,
                site_id: Some(f.site),
                category: None,
                parallel: true,
                steps: vec![
                    StepInput {
                        approver: Approver::Member(otto.membership_id),
                        amount_over_pence: None,
                    },
                    StepInput {
                        approver: Approver::Role("accountant".into()),
                        amount_over_pence: None,
                    },
                ],
            },
        )
        .await
        .unwrap();
        let credit = rx::save_credit_draft(
            &mut tx,
            None,
            &CreditInput {
                unit_id: f.unit,
                contact_id: f.holder,
                invoice_id: None,
                reason: "Goodwill".into(),
                issue_date: Some(date!(2026 - 03 - 02)),
                lines: vec![sc_line(&f, 1_000)],
            },
            "Sid Site",
        )
        .await
        .unwrap();
        rx::submit_credit_note(&mut tx, credit, &sid_s, now())
            .await
            .unwrap();
        assert_eq!(
            rx::approve_credit_note(&mut tx, credit, &fiona_s, now())
                .await
                .unwrap(),
            Approval::Waiting(vec!["Otto Ops".into()])
        );
        assert!(matches!(
            rx::approve_credit_note(&mut tx, credit, &otto_s, now())
                .await
                .unwrap(),
            Approval::Posted(_)
        ));

        // A manual journal: the person who drafted it does not approve it too.
        let bank = ledger::control_account(&mut tx, f.site, "bank")
            .await
            .unwrap()
            .unwrap()
            .id;
        let jid = mj::save_draft(
            &mut tx,
            None,
            &mj::ManualInput {
                site_id: f.site,
                date: date!(2026 - 03 - 31),
                description: "Bank interest for March".into(),
                lines: vec![
                    mj::ManualLine {
                        account_id: bank,
                        fund_id: f.sc_fund,
                        amount_pence: 1_234,
                        unit_id: None,
                        description: None,
                    },
                    mj::ManualLine {
                        account_id: f.income,
                        fund_id: f.sc_fund,
                        amount_pence: -1_234,
                        unit_id: None,
                        description: None,
                    },
                ],
            },
            "Fiona Finance",
        )
        .await
        .unwrap();
        mj::submit(&mut tx, jid, &fiona_s, now()).await.unwrap();
        let msg = refusal(mj::approve(&mut tx, jid, &fiona_s, now()).await);
        assert!(msg.starts_with("You drafted this journal"), "{msg}");
        mj::reject(&mut tx, jid, &maya_s, "Use the interest account", now())
            .await
            .unwrap();
        assert_eq!(
            mj::find(&mut tx, jid).await.unwrap().unwrap().status,
            "draft"
        );
        mj::submit(&mut tx, jid, &fiona_s, now()).await.unwrap();
        let Approval::Posted(reference) = mj::approve(&mut tx, jid, &maya_s, now()).await.unwrap()
        else {
            panic!("posted");
        };
        assert!(reference.starts_with("JNL-2026-"), "{reference}");
        let posted = mj::find(&mut tx, jid).await.unwrap().unwrap();
        assert_eq!(
            (posted.status.as_str(), posted.journal_reference.as_deref()),
            ("posted", Some(reference.as_str()))
        );
        // Unbalanced: refused with the figures.
        let mut bad = mj::ManualInput {
            site_id: f.site,
            date: date!(2026 - 03 - 31),
            description: "Unbalanced".into(),
            lines: vec![
                mj::ManualLine {
                    account_id: bank,
                    fund_id: f.sc_fund,
                    amount_pence: 1_000,
                    unit_id: None,
                    description: None,
                },
                mj::ManualLine {
                    account_id: f.income,
                    fund_id: f.sc_fund,
                    amount_pence: -999,
                    unit_id: None,
                    description: None,
                },
            ],
        };
        let msg = match mj::save_draft(&mut tx, None, &bad, "Fiona").await {
            Err(e) => e.to_string(),
            Ok(_) => panic!("refused"),
        };
        assert_eq!(
            msg,
            "The lines do not balance: debits £10.00 and credits £9.99 differ by £0.01."
        );
        bad.lines[1].account_id = ledger::control_account(&mut tx, f.site, "bank")
            .await
            .unwrap()
            .unwrap()
            .id;
        bad.lines[1].amount_pence = -1_000;
        bad.lines[1].unit_id = Some(Uuid::now_v7());
        let msg = refusal(mj::save_draft(&mut tx, None, &bad, "Fiona").await);
        assert_eq!(msg, "Line 2: that unit is not on this site.");
    }
}
