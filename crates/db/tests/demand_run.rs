//! Bulk demand runs (issue 6): many demands issued as approved in one transaction, numbered
//! without gaps and posted exactly as one demand issued on its own; refused whole, with nothing
//! written, when any demand fails a check of the single path or an approval chain covers any.

#![allow(clippy::unwrap_used, reason = "tests")]

use proplink_db::TenantTx;
use proplink_db::approvals::{self, Approver, ChainInput, Signer, StepInput};
use proplink_db::demand_run::issue_demands;
use proplink_db::ledger::{self, LedgerError};
use proplink_db::people::{self, ContactInput, LeaseInput};
use proplink_db::portfolio::{self, Address, Landlord, SiteInput, UnitInput};
use proplink_db::receivables::{self as rx, DraftLine, InvoiceInput};
use proplink_domain::ledger::FundKind;
use proplink_domain::receivables::{InvoiceKind, InvoiceStatus};
use proplink_test_support::TestDb;
use time::macros::date;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

#[derive(Clone, Copy)]
struct Site {
    id: Uuid,
    unit: Uuid,
    holder: Uuid,
    income: Uuid,
    ground_rent_income: Uuid,
    reserve_income: Uuid,
    sc_fund: Uuid,
    reserve_fund: Uuid,
    ground_rent_fund: Uuid,
    exempt: Uuid,
    standard: Uuid,
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// A site with a landlord in England, one flat and its leaseholder, and its books.
async fn site(tx: &mut TenantTx, reference: &str, landlord: bool) -> Site {
    let id = portfolio::save_site(
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
            landlord: landlord.then(|| Landlord {
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
        id,
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
            title: Some("Ms".into()),
            first_name: Some("Amara".into()),
            last_name: Some("Okafor".into()),
            correspondence: "email".into(),
            emails: vec![format!("amara.{reference}@example.com").to_lowercase()],
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
    ledger::ensure_books(tx, id).await.unwrap();
    ledger::ensure_tax_rates(tx).await.unwrap();
    let control = async |tx: &mut TenantTx, c: &str| {
        ledger::control_account(tx, id, c)
            .await
            .unwrap()
            .unwrap()
            .id
    };
    let fund = async |tx: &mut TenantTx, k: FundKind| {
        ledger::fund_of_kind(tx, id, k).await.unwrap().unwrap().id
    };
    let rates = ledger::tax_rates(tx).await.unwrap();
    let rate = |t: &str| rates.iter().find(|r| r.treatment == t).unwrap().id;
    Site {
        id,
        unit,
        holder,
        income: control(tx, "service_charge_income").await,
        ground_rent_income: control(tx, "ground_rent_income").await,
        reserve_income: control(tx, "reserve_contributions").await,
        sc_fund: fund(tx, FundKind::ServiceCharge).await,
        reserve_fund: fund(tx, FundKind::Reserve).await,
        ground_rent_fund: fund(tx, FundKind::GroundRent).await,
        exempt: rate("exempt"),
        standard: rate("standard"),
    }
}

/// A quarter's on-account demand: service charge, a reserve contribution and a VAT-able
/// admin charge (two lines in one fund, so the debtors line sums them).
fn quarterly(s: &Site, issued: Date, pence: i64) -> InvoiceInput {
    let line = |description: &str, account, fund, rate, net| DraftLine {
        description: description.into(),
        account_id: account,
        fund_id: fund,
        tax_rate_id: rate,
        net_pence: net,
        period_from: Some(date!(2026 - 04 - 01)),
        period_to: Some(date!(2026 - 06 - 30)),
    };
    InvoiceInput {
        unit_id: s.unit,
        contact_id: s.holder,
        kind: InvoiceKind::ServiceCharge,
        reference: Some("  Service charge on account, April to June 2026 ".into()),
        issue_date: Some(issued),
        due_date: Some(date!(2026 - 04 - 01)),
        lines: vec![
            line(
                "Service charge on account",
                s.income,
                s.sc_fund,
                s.exempt,
                pence,
            ),
            line(
                "Reserve fund contribution",
                s.reserve_income,
                s.reserve_fund,
                s.exempt,
                pence / 5,
            ),
            line(" Management fee ", s.income, s.sc_fund, s.standard, 1_999),
        ],
    }
}

fn ground_rent(s: &Site, issued: Date, due: Date) -> InvoiceInput {
    InvoiceInput {
        unit_id: s.unit,
        contact_id: s.holder,
        kind: InvoiceKind::GroundRent,
        reference: None,
        issue_date: Some(issued),
        due_date: Some(due),
        lines: vec![DraftLine {
            description: "Ground rent".into(),
            account_id: s.ground_rent_income,
            fund_id: s.ground_rent_fund,
            tax_rate_id: s.exempt,
            net_pence: 25_000,
            period_from: Some(date!(2026 - 06 - 24)),
            period_to: Some(date!(2027 - 06 - 23)),
        }],
    }
}

fn refusal<T: std::fmt::Debug>(r: Result<T, LedgerError>) -> String {
    match r {
        Err(LedgerError::Refused(msg)) => msg,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Invoices, their lines, journals, journal lines and the invoice counter, as the tenant sees
/// them.
async fn counts(tx: &mut TenantTx) -> [i64; 5] {
    let mut out = [0; 5];
    for (i, sql) in [
        "select count(*) from debtor_invoice",
        "select count(*) from debtor_invoice_line",
        "select count(*) from journal",
        "select count(*) from journal_line",
        "select coalesce(sum(last_number), 0)::int8 from reference_counter where kind = 'debtor_invoice'",
    ]
    .into_iter()
    .enumerate()
    {
        out[i] = sqlx::query_scalar(sql)
            .fetch_one(tx.conn())
            .await
            .unwrap();
    }
    out
}

/// An invoice as issued, without what differs between two issues of the same demand (ids,
/// number, times).
async fn issued_shape(tx: &mut TenantTx, id: Uuid) -> (String, Vec<String>, Vec<String>) {
    let inv = rx::find_invoice(tx, id).await.unwrap().unwrap();
    let number = inv.number.clone().unwrap();
    let header = format!(
        "{:?} {} {:?} {:?} {:?} net {} vat {} total {} paid {} {:?} {:?} {:?} {:?} unit {} contact {} site {}",
        inv.status(),
        inv.kind,
        inv.reference,
        inv.issue_date,
        inv.due_date,
        inv.net_pence,
        inv.vat_pence,
        inv.total_pence,
        inv.paid_pence,
        inv.jurisdiction,
        inv.statutory_text_id,
        inv.landlord_name,
        inv.landlord_address,
        inv.unit_id,
        inv.contact_id,
        inv.site_id,
    );
    let lines = rx::invoice_lines(tx, id)
        .await
        .unwrap()
        .into_iter()
        .map(|l| {
            format!(
                "{} {} {} {} {} {} {} {} {} {:?} {:?}",
                l.line_no,
                l.description,
                l.account_id,
                l.fund_id,
                l.tax_rate_id,
                l.basis_points,
                l.net_pence,
                l.vat_pence,
                l.gross_pence,
                l.period_from,
                l.period_to
            )
        })
        .collect();
    let journal = ledger::find_journal(tx, inv.journal_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    let mut posting = vec![format!(
        "{} {} {} {:?}",
        journal.journal_date,
        journal.description.replace(&number, "INV-#"),
        journal.source_type,
        journal.source_id == Some(id),
    )];
    posting.extend(
        ledger::lines(tx, journal.id)
            .await
            .unwrap()
            .into_iter()
            .map(|l| {
                format!(
                    "{} {} {} {} {:?} {:?} {:?}",
                    l.line_no,
                    l.account_id,
                    l.fund_id,
                    l.amount_pence,
                    l.unit_id,
                    l.contact_id,
                    l.description
                )
            }),
    );
    (header, lines, posting)
}

async fn issue_singly(tx: &mut TenantTx, input: &InvoiceInput) -> (Uuid, String) {
    let id = rx::save_invoice_draft(tx, None, input, "Ann Accountant")
        .await
        .unwrap();
    rx::submit_invoice(tx, id, &Signer::unchained("Ann Accountant"), now())
        .await
        .unwrap();
    let number = rx::approve_invoice(tx, id, &Signer::unchained("Ann Accountant"), now())
        .await
        .unwrap()
        .posted()
        .unwrap();
    (id, number)
}

#[tokio::test]
async fn a_run_numbers_its_demands_in_order_and_posts_each_as_the_single_path_would() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Ann")).await.unwrap();
    let a = site(&mut tx, "GC-001", true).await;
    let b = site(&mut tx, "GC-002", true).await;

    // One demand issued on its own first: the run continues its numbering.
    let (single, number) =
        issue_singly(&mut tx, &quarterly(&a, date!(2026 - 03 - 01), 45_000)).await;
    assert_eq!(number, "INV-2026-000001");

    // 48 demands alternating between the two sites, the first the same as the one above, and
    // two ground-rent notices.
    let mut demands: Vec<InvoiceInput> = (0..48)
        .map(|i| {
            let s = if i % 2 == 0 { &a } else { &b };
            quarterly(s, date!(2026 - 03 - 01), 45_000 + 100 * (i / 2))
        })
        .collect();
    demands.push(ground_rent(
        &a,
        date!(2026 - 05 - 01),
        date!(2026 - 06 - 24),
    ));
    demands.push(ground_rent(
        &b,
        date!(2026 - 05 - 01),
        date!(2026 - 06 - 24),
    ));
    let issued = issue_demands(&mut tx, &demands, "Ann Accountant", now())
        .await
        .unwrap();
    assert_eq!(issued.len(), 50);
    let numbers: Vec<&str> = issued.iter().map(|(_, n)| n.as_str()).collect();
    let expected: Vec<String> = (2..=51).map(|n| format!("INV-2026-{n:06}")).collect();
    assert_eq!(numbers, expected, "consecutive, in the run's order");

    // The first demand of the run is the single demand again, field for field and line for
    // line, journal included.
    let (s_header, s_lines, s_posting) = issued_shape(&mut tx, single).await;
    let (r_header, r_lines, r_posting) = issued_shape(&mut tx, issued[0].0).await;
    assert_eq!(r_header, s_header);
    assert_eq!(r_lines, s_lines);
    assert_eq!(r_posting, s_posting);
    // Dr debtors per fund (service charge: 450.00 + 19.99 + VAT 4.00), Cr three lines, Cr VAT.
    assert_eq!(r_posting.len(), 1 + 2 + 3 + 1, "{r_posting:#?}");
    let first = rx::find_invoice(&mut tx, issued[0].0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (first.status(), first.net_pence, first.vat_pence),
        (InvoiceStatus::Approved, 45_000 + 9_000 + 1_999, 400)
    );
    assert_eq!(
        first.reference.as_deref(),
        Some("Service charge on account, April to June 2026")
    );
    assert_eq!(first.approved_by.as_deref(), Some("Ann Accountant"));

    // The ground-rent notice carries the prescribed form, filled.
    let notice = rx::find_invoice(&mut tx, issued[48].0)
        .await
        .unwrap()
        .unwrap();
    let (text, filled) = rx::demand_statutory_text(&mut tx, &notice)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text.kind, "ground_rent_notice");
    assert!(
        filled.contains("It requires you to pay rent of £250.00 which is due on 24 June 2026."),
        "{filled}"
    );

    // Every site's books balance, and debtors control is what its unit's statement says.
    for s in [&a, &b] {
        let tb = ledger::trial_balance(&mut tx, s.id, date!(2026 - 01 - 01), date!(2026 - 12 - 31))
            .await
            .unwrap();
        assert_eq!(tb.iter().map(|r| r.balance_pence).sum::<i64>(), 0);
        let debtors = ledger::control_account(&mut tx, s.id, "debtors")
            .await
            .unwrap()
            .unwrap()
            .id;
        let control = ledger::account_balance(&mut tx, debtors, None, date!(2026 - 12 - 31))
            .await
            .unwrap();
        let st = rx::statement(
            &mut tx,
            s.unit,
            date!(2026 - 01 - 01),
            date!(2026 - 12 - 31),
        )
        .await
        .unwrap();
        assert_eq!(st.closing_pence, control);
        let invoiced: i64 = rx::unit_invoices(&mut tx, s.unit)
            .await
            .unwrap()
            .iter()
            .map(|i| i.total_pence)
            .sum();
        assert_eq!(control, invoiced);
    }
    // One journal per demand.
    assert_eq!(counts(&mut tx).await[..3], [51, 49 * 3 + 2, 51]);
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_run_with_one_bad_demand_is_refused_whole_and_writes_nothing() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Ann")).await.unwrap();
    let a = site(&mut tx, "GC-001", true).await;
    let b = site(&mut tx, "GC-002", true).await;
    let bare = site(&mut tx, "GC-003", false).await;
    issue_singly(&mut tx, &quarterly(&a, date!(2026 - 03 - 01), 45_000)).await;
    let good = || -> Vec<InvoiceInput> {
        (0..10)
            .map(|i| {
                quarterly(
                    if i % 2 == 0 { &a } else { &b },
                    date!(2026 - 03 - 01),
                    45_000,
                )
            })
            .collect()
    };
    let before = counts(&mut tx).await;

    // Demand 7 (at site GC-001) is addressed to GC-002's leaseholder.
    let mut run = good();
    run[6].contact_id = b.holder;
    let msg = refusal(issue_demands(&mut tx, &run, "Ann", now()).await);
    assert!(msg.starts_with("Demand 7 (unit 1): "), "{msg}");
    assert!(
        msg.contains("has never held a lease of or occupied 1"),
        "{msg}"
    );
    assert_eq!(counts(&mut tx).await, before);

    // A line coded to the VAT control account, priced with the others of its site.
    let mut run = good();
    run[3].lines[1].account_id = ledger::control_account(&mut tx, b.id, "vat")
        .await
        .unwrap()
        .unwrap()
        .id;
    let msg = refusal(issue_demands(&mut tx, &run, "Ann", now()).await);
    assert!(msg.starts_with("Demand 4 (unit 1): Line 2: "), "{msg}");
    assert!(msg.contains("is posted to automatically"), "{msg}");
    assert_eq!(counts(&mut tx).await, before);

    // A ground-rent notice due too soon.
    let mut run = good();
    run.push(ground_rent(
        &b,
        date!(2026 - 05 - 01),
        date!(2026 - 05 - 10),
    ));
    let msg = refusal(issue_demands(&mut tx, &run, "Ann", now()).await);
    assert!(msg.starts_with("Demand 11 (unit 1): "), "{msg}");
    assert!(msg.contains("30 to 60 days after the notice"), "{msg}");
    assert_eq!(counts(&mut tx).await, before);

    // A site with no landlord on record.
    let mut run = good();
    run.insert(2, quarterly(&bare, date!(2026 - 03 - 01), 45_000));
    let msg = refusal(issue_demands(&mut tx, &run, "Ann", now()).await);
    assert!(msg.starts_with("Demand 3 (unit 1): "), "{msg}");
    assert!(
        msg.contains("add the landlord's name, address and postcode to site GC-003"),
        "{msg}"
    );
    assert_eq!(counts(&mut tx).await, before);

    // A demand without lines, and one in a locked period (refused when posting).
    let mut run = good();
    run[9].lines.clear();
    let msg = refusal(issue_demands(&mut tx, &run, "Ann", now()).await);
    assert_eq!(msg, "Demand 10 (unit 1): Add at least one line.");
    let period = ledger::add_period(&mut tx, b.id, date!(2026 - 01 - 01), date!(2026 - 03 - 31))
        .await
        .unwrap();
    ledger::set_period_locked(&mut tx, period, true, "Ann", now())
        .await
        .unwrap();
    let msg = refusal(issue_demands(&mut tx, &good(), "Ann", now()).await);
    assert!(msg.contains("is locked"), "{msg}");
    assert_eq!(counts(&mut tx).await, before);

    // The transaction is still good, and the next run carries on without a gap.
    ledger::set_period_locked(&mut tx, period, false, "Ann", now())
        .await
        .unwrap();
    let issued = issue_demands(&mut tx, &good(), "Ann", now()).await.unwrap();
    assert_eq!(issued[0].1, "INV-2026-000002");
    assert_eq!(issued[9].1, "INV-2026-000011");
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_run_an_approval_chain_would_cover_is_refused() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Ann")).await.unwrap();
    let a = site(&mut tx, "GC-001", true).await;
    let b = site(&mut tx, "GC-002", true).await;
    // Demands over £5,000 need an accountant's signature.
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
            steps: vec![StepInput {
                approver: Approver::Role("accountant".into()),
                amount_over_pence: None,
            }],
        },
    )
    .await
    .unwrap();
    let before = counts(&mut tx).await;

    let mut run: Vec<InvoiceInput> = (0..6)
        .map(|i| {
            quarterly(
                if i % 2 == 0 { &a } else { &b },
                date!(2026 - 03 - 01),
                45_000,
            )
        })
        .collect();
    run.push(quarterly(&b, date!(2026 - 03 - 01), 600_000));
    run.push(quarterly(&a, date!(2026 - 03 - 01), 700_000));
    let msg = refusal(issue_demands(&mut tx, &run, "Ann", now()).await);
    assert_eq!(
        msg,
        "2 demands need approval through the chain \"Large demands\": issue them one by one."
    );
    assert_eq!(counts(&mut tx).await, before);

    // Below the chain's amount, the run goes through.
    run.truncate(6);
    let issued = issue_demands(&mut tx, &run, "Ann", now()).await.unwrap();
    assert_eq!(issued.len(), 6);
    tx.commit().await.unwrap();
}
