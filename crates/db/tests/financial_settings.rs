//! Financial settings (issue 6; docs-spec §2.6): the organisation's chart-of-accounts template
//! reaching every site's books, posting roles moved between accounts, tax rates archived and
//! restored; and receipt batches, recorded whole or not at all.

#![allow(clippy::unwrap_used, reason = "tests")]

use proplink_db::TenantTx;
use proplink_db::approvals::Signer;
use proplink_db::chart;
use proplink_db::ledger::{self, LedgerError};
use proplink_db::people::{self, ContactInput, LeaseInput};
use proplink_db::portfolio::{self, Address, Landlord, SiteInput, UnitInput};
use proplink_db::receipt_batches::{self as batches, BatchInput};
use proplink_db::receivables::{self as rx, DraftLine, InvoiceInput};
use proplink_domain::ledger::FundKind;
use proplink_domain::receivables::{InvoiceKind, InvoiceStatus, PaymentMethod, parse_batch_rows};
use proplink_test_support::TestDb;
use time::OffsetDateTime;
use time::macros::date;
use uuid::Uuid;

fn refusal<T: std::fmt::Debug>(r: Result<T, LedgerError>) -> String {
    match r {
        Err(LedgerError::Refused(msg)) => msg,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn site(tx: &mut TenantTx, reference: &str) -> Uuid {
    let address = |line: &str, city: &str, postcode: &str| Address {
        line_1: Some(line.into()),
        city: Some(city.into()),
        postcode: Some(postcode.into()),
        ..Default::default()
    };
    portfolio::save_site(
        tx,
        None,
        &SiteInput {
            reference: reference.into(),
            name: format!("Site {reference}"),
            address: address("10 Mill Lane", "Leeds", "LS2 7AB"),
            landlord: Some(Landlord {
                name: "Goldcrest Freehold Ltd".into(),
                address: address("1 Park Row", "Leeds", "LS1 5HD"),
            }),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

/// A unit of `site` let to a new leaseholder since 2015; returns (unit, leaseholder).
async fn let_unit(tx: &mut TenantTx, site: Uuid, reference: &str, surname: &str) -> (Uuid, Uuid) {
    let unit = portfolio::save_unit(
        tx,
        None,
        site,
        &UnitInput {
            reference: reference.into(),
            name: format!("Flat {reference}"),
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
            first_name: Some("Jo".into()),
            last_name: Some(surname.into()),
            correspondence: "email".into(),
            emails: vec![format!("{}@example.com", surname.to_lowercase())],
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
    (unit, holder)
}

fn line(account_id: Uuid, fund_id: Uuid, amount_pence: i64) -> ledger::NewLine {
    ledger::NewLine {
        account_id,
        fund_id,
        amount_pence,
        unit_id: None,
        contact_id: None,
        work_order_id: None,
        description: None,
    }
}

async fn account(tx: &mut TenantTx, site: Uuid, code: &str) -> ledger::Account {
    ledger::accounts(tx, site)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.code == code)
        .unwrap()
}

async fn template_id(tx: &mut TenantTx, code: &str) -> Uuid {
    chart::template(tx)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.code == code)
        .unwrap()
        .id
}

/// Issues a service-charge demand of `pence` on the site's service charge income account.
async fn demand(tx: &mut TenantTx, site: Uuid, unit: Uuid, holder: Uuid, pence: i64) -> Uuid {
    ledger::ensure_tax_rates(tx).await.unwrap();
    let exempt = ledger::tax_rates(tx)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.treatment == "exempt")
        .unwrap()
        .id;
    let income = ledger::control_account(tx, site, "service_charge_income")
        .await
        .unwrap()
        .unwrap()
        .id;
    let fund = ledger::fund_of_kind(tx, site, FundKind::ServiceCharge)
        .await
        .unwrap()
        .unwrap()
        .id;
    let input = InvoiceInput {
        unit_id: unit,
        contact_id: holder,
        kind: InvoiceKind::ServiceCharge,
        reference: Some("Service charge on account".into()),
        issue_date: Some(date!(2026 - 03 - 01)),
        due_date: Some(date!(2026 - 04 - 01)),
        lines: vec![DraftLine {
            description: "Service charge on account".into(),
            account_id: income,
            fund_id: fund,
            tax_rate_id: exempt,
            net_pence: pence,
            period_from: Some(date!(2026 - 04 - 01)),
            period_to: Some(date!(2026 - 09 - 30)),
        }],
    };
    let id = rx::save_invoice_draft(tx, None, &input, "Ann")
        .await
        .unwrap();
    let now = OffsetDateTime::now_utc();
    rx::submit_invoice(tx, id, &Signer::unchained("Ann"), now)
        .await
        .unwrap();
    rx::approve_invoice(tx, id, &Signer::unchained("Priya"), now)
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn the_template_opens_every_sites_books_and_its_changes_reach_them_all() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let other = db.org("other", "Other Agents").await;
    let mut tx = db.app.begin(&db.staff(&org, "Ann")).await.unwrap();
    let a = site(&mut tx, "GC-001").await;
    ledger::ensure_books(&mut tx, a).await.unwrap();
    assert_eq!(chart::template(&mut tx).await.unwrap().len(), 25);
    assert_eq!(ledger::accounts(&mut tx, a).await.unwrap().len(), 25);

    // An account added to the template reaches the open site now and a new site later.
    let added = chart::add_account(&mut tx, " 4150 ", "Car park income", "income")
        .await
        .unwrap();
    assert_eq!((added.code.as_str(), added.sites), ("4150", 1));
    assert_eq!(account(&mut tx, a, "4150").await.name, "Car park income");
    let b = site(&mut tx, "GC-002").await;
    ledger::ensure_books(&mut tx, b).await.unwrap();
    assert_eq!(account(&mut tx, b, "4150").await.kind, "income");

    // Clear refusals, nothing added.
    for (code, name, kind, why) in [
        (
            "4150",
            "Parking",
            "income",
            "The code 4150 is already used by Car park income.",
        ),
        (
            "41 50",
            "Parking",
            "income",
            "An account code is 1 to 10 letters",
        ),
        (
            "4160",
            "car park INCOME",
            "income",
            "There is already an account called",
        ),
        ("4160", "Parking", "cash", "Choose the account's type"),
        ("4160", "", "income", "Give the account a name"),
        ("4160", "Park\u{202E}ing", "income", "account name"),
    ] {
        let msg = refusal(chart::add_account(&mut tx, code, name, kind).await);
        assert!(msg.contains(why), "{code} {name}: {msg}");
    }
    assert_eq!(chart::template(&mut tx).await.unwrap().len(), 26);

    // Renaming reaches every site.
    let parking = template_id(&mut tx, "4150").await;
    chart::rename_account(&mut tx, parking, "Parking income")
        .await
        .unwrap();
    assert_eq!(account(&mut tx, b, "4150").await.name, "Parking income");

    // Archived: no new postings on any site; restored: usable again.
    assert_eq!(
        chart::set_archived(&mut tx, parking, true).await.unwrap(),
        2
    );
    assert!(account(&mut tx, a, "4150").await.archived_at.is_some());
    let park = account(&mut tx, a, "4150").await.id;
    let bank = account(&mut tx, a, "1000").await.id;
    let fund = ledger::fund_of_kind(&mut tx, a, FundKind::ServiceCharge)
        .await
        .unwrap()
        .unwrap()
        .id;
    let journal = ledger::NewJournal {
        site_id: a,
        date: date!(2026 - 05 - 01),
        description: "Parking takings".into(),
        source_type: "manual_journal".into(),
        source_id: None,
        lines: vec![line(bank, fund, 1_000), line(park, fund, -1_000)],
    };
    let msg = refusal(ledger::post(&mut tx, &journal, "Ann", OffsetDateTime::now_utc()).await);
    assert!(msg.contains("is archived"), "{msg}");
    // A site opened while the account is archived gets it archived, and its restore.
    let c = site(&mut tx, "GC-003").await;
    ledger::ensure_books(&mut tx, c).await.unwrap();
    assert!(account(&mut tx, c, "4150").await.archived_at.is_some());
    assert_eq!(
        chart::set_archived(&mut tx, parking, false).await.unwrap(),
        3
    );
    assert!(account(&mut tx, c, "4150").await.archived_at.is_none());
    ledger::post(&mut tx, &journal, "Ann", OffsetDateTime::now_utc())
        .await
        .unwrap();

    // An account holding a role cannot be archived (the database refuses it too).
    let debtors = template_id(&mut tx, "1100").await;
    let msg = refusal(chart::set_archived(&mut tx, debtors, true).await);
    assert!(msg.contains("is the debtors control account"), "{msg}");
    sqlx::query("savepoint s").execute(tx.conn()).await.unwrap();
    let e = sqlx::query(
        "update chart_template_account set archived_at = now() where control = 'debtors'",
    )
    .execute(tx.conn())
    .await
    .unwrap_err();
    assert!(
        e.to_string().contains("chart_template_account_check"),
        "{e}"
    );
    sqlx::query("rollback to savepoint s")
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // The other organisation's template is its own, untouched.
    let mut tx = db.app.begin(&db.staff(&other, "Olu")).await.unwrap();
    let theirs = chart::template(&mut tx).await.unwrap();
    assert_eq!(theirs.len(), 25);
    assert!(theirs.iter().all(|t| t.code != "4150"));
    assert!(matches!(
        chart::set_archived(&mut tx, parking, true).await,
        Err(LedgerError::NotFound)
    ));
}

#[tokio::test]
async fn a_posting_role_moves_to_another_account_for_postings_from_then_on() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Ann")).await.unwrap();
    let s = site(&mut tx, "GC-001").await;
    let (unit, holder) = let_unit(&mut tx, s, "1", "Patel").await;
    ledger::ensure_books(&mut tx, s).await.unwrap();
    let before = demand(&mut tx, s, unit, holder, 45_000).await;

    let added = chart::add_account(&mut tx, "4010", "Service charge: estate", "income")
        .await
        .unwrap();
    // The wrong type, an account that already holds a role, and an unknown role are refused.
    let repairs = template_id(&mut tx, "5000").await;
    let msg = refusal(chart::assign_role(&mut tx, repairs, "service_charge_income").await);
    assert!(msg.contains("must be an income account"), "{msg}");
    let ground_rent = template_id(&mut tx, "4100").await;
    let msg = refusal(chart::assign_role(&mut tx, ground_rent, "service_charge_income").await);
    assert!(
        msg.contains("already the ground rent income account"),
        "{msg}"
    );
    assert!(refusal(chart::assign_role(&mut tx, added.id, "treasure").await).contains("role"));

    assert_eq!(
        chart::assign_role(&mut tx, added.id, "service_charge_income")
            .await
            .unwrap(),
        1
    );
    let roles = chart::roles(&mut tx).await.unwrap();
    let (_, _, holders) = roles
        .iter()
        .find(|(k, ..)| *k == "service_charge_income")
        .unwrap();
    assert_eq!(
        holders.iter().map(|h| h.code.as_str()).collect::<Vec<_>>(),
        ["4010"]
    );
    assert_eq!(
        ledger::control_account(&mut tx, s, "service_charge_income")
            .await
            .unwrap()
            .unwrap()
            .code,
        "4010"
    );
    // The old account may now be archived; its posted demand stays where it was.
    let old = template_id(&mut tx, "4000").await;
    chart::set_archived(&mut tx, old, true).await.unwrap();
    let after = demand(&mut tx, s, unit, holder, 10_000).await;
    let old_income = account(&mut tx, s, "4000").await.id;
    let new_income = account(&mut tx, s, "4010").await.id;
    let income_of = async |tx: &mut TenantTx, id: Uuid| {
        let inv = rx::find_invoice(tx, id).await.unwrap().unwrap();
        assert_eq!(inv.status(), InvoiceStatus::Approved);
        let lines = ledger::lines(tx, inv.journal_id.unwrap()).await.unwrap();
        lines
            .iter()
            .find(|l| l.amount_pence < 0)
            .map(|l| l.account_id)
            .unwrap()
    };
    assert_eq!(income_of(&mut tx, before).await, old_income);
    assert_eq!(income_of(&mut tx, after).await, new_income);

    // Debtors control has postings now: it stays where it is (statements read it).
    let other_debtors = chart::add_account(&mut tx, "1150", "Debtors: estate", "asset")
        .await
        .unwrap();
    let msg = refusal(chart::assign_role(&mut tx, other_debtors.id, "debtors").await);
    assert!(msg.contains("already has postings"), "{msg}");

    // Banks: a second can be added; the last one cannot be removed.
    let first_bank = template_id(&mut tx, "1000").await;
    let msg = refusal(chart::remove_bank(&mut tx, first_bank).await);
    assert!(msg.contains("Receipts need a bank account"), "{msg}");
    let reserve_bank = chart::add_account(&mut tx, "1010", "Bank: reserve account", "asset")
        .await
        .unwrap();
    chart::assign_role(&mut tx, reserve_bank.id, "bank")
        .await
        .unwrap();
    let banks: Vec<String> = ledger::accounts(&mut tx, s)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.control.as_deref() == Some("bank"))
        .map(|a| a.code)
        .collect();
    assert_eq!(banks, ["1000", "1010"]);
    chart::remove_bank(&mut tx, first_bank).await.unwrap();
    assert_eq!(account(&mut tx, s, "1000").await.control, None);
    let msg = refusal(chart::remove_bank(&mut tx, reserve_bank.id).await);
    assert!(msg.contains("Receipts need a bank account"), "{msg}");
}

#[tokio::test]
async fn tax_rates_are_archived_and_restored() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Ann")).await.unwrap();
    ledger::ensure_tax_rates(&mut tx).await.unwrap();
    let id = ledger::add_tax_rate(
        &mut tx,
        "Temporary 12.5%",
        1250,
        date!(2026 - 01 - 01),
        None,
    )
    .await
    .unwrap();
    ledger::set_tax_rate_archived(&mut tx, id, true)
        .await
        .unwrap();
    let rate = ledger::tax_rates(&mut tx)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.id == id)
        .unwrap();
    assert!(!rate.applies_on(date!(2026 - 06 - 01)));
    ledger::set_tax_rate_archived(&mut tx, id, false)
        .await
        .unwrap();
    let rate = ledger::tax_rates(&mut tx)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.id == id)
        .unwrap();
    assert!(rate.applies_on(date!(2026 - 06 - 01)));
    assert!(matches!(
        ledger::set_tax_rate_archived(&mut tx, Uuid::now_v7(), true).await,
        Err(LedgerError::NotFound)
    ));
}

async fn count(tx: &mut TenantTx, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
        .fetch_one(tx.conn())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_receipt_batch_is_recorded_whole_or_not_at_all() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Ann")).await.unwrap();
    let s = site(&mut tx, "GC-001").await;
    let elsewhere = site(&mut tx, "GC-002").await;
    let (one, patel) = let_unit(&mut tx, s, "F1", "Patel").await;
    let (two, _) = let_unit(&mut tx, s, "F2", "Okafor").await;
    let_unit(&mut tx, elsewhere, "F9", "Jones").await;
    ledger::ensure_books(&mut tx, s).await.unwrap();
    let owed = demand(&mut tx, s, one, patel, 45_000).await;
    let batch = |text: &str| BatchInput {
        site_id: s,
        received_on: date!(2026 - 03 - 20),
        method: PaymentMethod::Cheque,
        bank_account_id: None,
        note: Some("Paying-in slip 000123".into()),
        rows: parse_batch_rows(text).unwrap(),
    };
    let now = OffsetDateTime::now_utc();

    // A unit of another site, and one that does not exist: both named; nothing recorded.
    let msg = refusal(
        batches::record_batch(&mut tx, &batch("F1,450\nF9,10\nF2,5\nNOPE,1"), "Ann", now).await,
    );
    assert_eq!(
        msg,
        "Row 2: there is no unit F9 on this site.\nRow 4: there is no unit NOPE on this site."
    );
    assert_eq!(count(&mut tx, "receipt").await, 0);
    assert_eq!(count(&mut tx, "receipt_batch").await, 0);

    // Two rows (units matched whatever their case): each a receipt, oldest charges first,
    // paid by the leaseholder on the day, in one batch.
    let done = batches::record_batch(
        &mut tx,
        &batch("Unit\tAmount\tReference\nf1\t£500.00\tPATEL F1\nF2\t25\t"),
        "Ann",
        now,
    )
    .await
    .unwrap();
    assert_eq!(done.numbers, ["RCT-2026-000001", "RCT-2026-000002"]);
    assert_eq!(done.total_pence, 52_500);
    let inv = rx::find_invoice(&mut tx, owed).await.unwrap().unwrap();
    assert_eq!(inv.status(), InvoiceStatus::Paid);
    assert_eq!(rx::unit_credit(&mut tx, one).await.unwrap(), 5_000);
    assert_eq!(rx::unit_credit(&mut tx, two).await.unwrap(), 2_500);
    let receipts = batches::batch_receipts(&mut tx, done.id).await.unwrap();
    assert_eq!(
        receipts
            .iter()
            .map(|r| (
                r.unit_reference.as_str(),
                r.contact_id,
                r.method.as_str(),
                r.reference.as_deref()
            ))
            .collect::<Vec<_>>(),
        [
            ("F1", Some(patel), "cheque", Some("PATEL F1")),
            ("F2", receipts[1].contact_id, "cheque", None)
        ]
    );
    assert!(receipts[1].contact_id.is_some());
    let b = batches::find_batch(&mut tx, done.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (b.receipt_count, b.summary().as_str(), b.note.as_deref()),
        (
            2,
            "2 receipts totalling £525.00 by cheque",
            Some("Paying-in slip 000123")
        )
    );
    assert_eq!(
        batches::site_batches(&mut tx, s, 10).await.unwrap().len(),
        1
    );

    // A row refused by the receipt rules (a date in a locked period) refuses the batch.
    ledger::add_period(&mut tx, s, date!(2026 - 01 - 01), date!(2026 - 03 - 31))
        .await
        .unwrap();
    let period = ledger::periods(&mut tx, s).await.unwrap()[0].id;
    ledger::set_period_locked(&mut tx, period, true, "Ann", now)
        .await
        .unwrap();
    let msg = refusal(batches::record_batch(&mut tx, &batch("F2,10"), "Ann", now).await);
    assert!(msg.starts_with("Row 1: "), "{msg}");
    assert!(msg.contains("locked"), "{msg}");
    assert_eq!(count(&mut tx, "receipt_batch").await, 1);

    // The batch record is final: the server role cannot change or remove it.
    for sql in [
        "update receipt_batch set total_pence = 1",
        "delete from receipt_batch",
    ] {
        sqlx::query("savepoint s").execute(tx.conn()).await.unwrap();
        let e = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(tx.conn())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("permission denied"), "{sql}: {e}");
        sqlx::query("rollback to savepoint s")
            .execute(tx.conn())
            .await
            .unwrap();
    }
}
