//! Bank accounts and supplier bills (issue 7): bank details sealed and masked, pooled accounts
//! with a ledger account per site, the client-money rule; bills drafted, coded to a work order,
//! refused for duplicate numbers and figures that do not add up, approved by someone else,
//! posted, held, released and voided; the database keeping a posted bill's figures.

#![allow(clippy::unwrap_used, reason = "tests")]

use proplink_auth::seal::DataKey;
use proplink_db::TenantTx;
use proplink_db::approvals::Signer;
use proplink_db::bank_accounts::{
    self as banks, AccountType, BankAccountInput, FileFormat, Override,
};
use proplink_db::bills::{self, BillInput, BillLineInput, BillStatus};
use proplink_db::ledger::{self, LedgerError};
use proplink_db::operations::{
    self as ops, Approver, DocumentInput, InviteRequest, Location, QuoteInput, WorkOrderInput,
};
use proplink_db::people::{self, VendorInput};
use proplink_db::portfolio::{self, SiteInput};
use proplink_db::receivables::Approval;
use proplink_domain::ledger::FundKind;
use proplink_domain::operations::{DocumentType, Priority, QuoteAmounts};
use proplink_domain::uk::{AccountNumber, SortCode};
use proplink_test_support::TestDb;
use time::OffsetDateTime;
use time::macros::date;
use uuid::Uuid;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn refusal<T: std::fmt::Debug>(r: Result<T, LedgerError>) -> String {
    match r {
        Err(LedgerError::Refused(msg)) => msg,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn signer(name: &str) -> Signer {
    Signer {
        membership_id: Some(Uuid::now_v7()),
        ..Signer::unchained(name)
    }
}

struct World {
    site: Uuid,
    other_site: Uuid,
    plumber: Uuid,
    roofer: Uuid,
    repairs: Uuid,
    sc_fund: Uuid,
    reserve_fund: Uuid,
    standard: Uuid,
    exempt: Uuid,
}

async fn world(tx: &mut TenantTx) -> World {
    let site = |reference: &str, name: &str| SiteInput {
        reference: reference.into(),
        name: name.into(),
        ..Default::default()
    };
    let s = portfolio::save_site(tx, None, &site("GC-001", "Goldcrest House"))
        .await
        .unwrap();
    let other_site = portfolio::save_site(tx, None, &site("GC-002", "Riverside Court"))
        .await
        .unwrap();
    let key = DataKey::generate();
    let vendor = |name: &str, trade: &str| VendorInput {
        name: name.into(),
        trade: trade.into(),
        email: Some(format!("{}@example.com", trade.to_lowercase())),
        ..Default::default()
    };
    let plumber = people::save_vendor(tx, &key, None, &vendor("Bright Spark Plumbing", "Plumbing"))
        .await
        .unwrap();
    let roofer = people::save_vendor(tx, &key, None, &vendor("Top Roofing", "Roofing"))
        .await
        .unwrap();
    ledger::ensure_books(tx, s).await.unwrap();
    ledger::ensure_books(tx, other_site).await.unwrap();
    ledger::ensure_tax_rates(tx).await.unwrap();
    let rates = ledger::tax_rates(tx).await.unwrap();
    let rate = |t: &str| rates.iter().find(|r| r.treatment == t).unwrap().id;
    let fund = async |tx: &mut TenantTx, k: FundKind| {
        ledger::fund_of_kind(tx, s, k).await.unwrap().unwrap().id
    };
    World {
        site: s,
        other_site,
        plumber,
        roofer,
        repairs: ledger::control_account(tx, s, "repairs")
            .await
            .unwrap()
            .unwrap()
            .id,
        sc_fund: fund(tx, FundKind::ServiceCharge).await,
        reserve_fund: fund(tx, FundKind::Reserve).await,
        standard: rate("standard"),
        exempt: rate("exempt"),
    }
}

/// A plumbing job at the site, quoted at £375 + £75 VAT by the plumber and done.
async fn completed_work_order(tx: &mut TenantTx, w: &World) -> Uuid {
    ops::add_vendor_document(
        tx,
        w.plumber,
        &DocumentInput {
            doc_type: DocumentType::PublicLiability,
            reference_number: "POL-123".into(),
            issuer: Some("Aviva".into()),
            sum_insured_pence: Some(500_000_000),
            expires_on: now().date() + time::Duration::days(200),
        },
        now().date(),
    )
    .await
    .unwrap();
    let (wo, _) = ops::create_work_order(
        tx,
        &WorkOrderInput {
            location: Location {
                site_id: w.site,
                ..Default::default()
            },
            title: "Leak in the plant room".into(),
            scope: "Trace and repair.".into(),
            trade: "plumbing".into(),
            priority: Priority::High,
            cost_code: None,
            not_to_exceed_pence: None,
            target_start: None,
            target_completion: None,
            access_notes: None,
            manager_name: "Priya Patel".into(),
            manager_email: None,
        },
        &[],
        now(),
    )
    .await
    .unwrap();
    let invited = ops::invite_contractor(
        tx,
        wo,
        &InviteRequest {
            vendor_id: w.plumber,
            override_reason: None,
        },
        "Goldcrest",
        &|t: &str| format!("http://contractorport.localhost/{t}"),
        now(),
    )
    .await
    .unwrap();
    ops::accept_invitation(tx, invited.invitation_id, now())
        .await
        .unwrap();
    let quote = ops::submit_quotation(
        tx,
        invited.invitation_id,
        &QuoteInput {
            kind: "fixed".into(),
            amounts: QuoteAmounts::parse("375", "75").unwrap(),
            valid_until: now().date() + time::Duration::days(30),
            notes: None,
        },
        now(),
    )
    .await
    .unwrap();
    ops::approve_quotation(
        tx,
        quote,
        &Approver {
            name: "Priya Patel".into(),
            limit_pence: None,
        },
        None,
        "Goldcrest",
        now(),
    )
    .await
    .unwrap();
    ops::complete_work(tx, wo, Some("Fixed"), "Bright Spark Plumbing", now())
        .await
        .unwrap();
    wo
}

fn line(w: &World, net: i64, recoverable: bool) -> BillLineInput {
    BillLineInput {
        description: "Repair to the plant room pipework".into(),
        account_id: w.repairs,
        fund_id: w.sc_fund,
        tax_rate_id: w.standard,
        net_pence: net,
        vat_pence: None,
        vat_recoverable: recoverable,
    }
}

fn bill(w: &World, reference: &str, lines: Vec<BillLineInput>) -> BillInput {
    BillInput {
        site_id: w.site,
        vendor_id: w.plumber,
        work_order_id: None,
        supplier_reference: reference.into(),
        issue_date: date!(2026 - 05 - 12),
        due_date: None,
        incurred_on: Some(date!(2026 - 05 - 10)),
        description: None,
        lines,
        total_pence: None,
        source: "admin",
        document: None,
    }
}

async fn balance(tx: &mut TenantTx, site: Uuid, role: &str) -> i64 {
    let account = ledger::control_account(tx, site, role)
        .await
        .unwrap()
        .unwrap()
        .id;
    ledger::account_balance(tx, account, None, date!(2100 - 01 - 01))
        .await
        .unwrap()
}

async fn trial_balance_total(tx: &mut TenantTx, site: Uuid) -> i64 {
    ledger::trial_balance(tx, site, date!(2000 - 01 - 01), date!(2100 - 12 - 31))
        .await
        .unwrap()
        .iter()
        .map(|r| r.balance_pence)
        .sum()
}

#[tokio::test]
async fn bank_accounts_are_sealed_pooled_per_site_and_guard_client_money() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Ann")).await.unwrap();
    let w = world(&mut tx).await;
    let key = DataKey::generate();
    let input = |name: &str, sites: Vec<Uuid>| BankAccountInput {
        name: name.into(),
        bank_name: Some("Barclays".into()),
        account_type: AccountType::Client,
        sort_code: SortCode::parse("20-00-00").unwrap(),
        account_number: AccountNumber::parse("55779911").unwrap(),
        holder_name: "Goldcrest PM Ltd Client Account".into(),
        service_user_number: Some("123456".into()),
        file_format: FileFormat::BacsStandard18,
        fund_kind: None,
        sites,
        ledger_account_id: None,
    };
    let pooled = banks::create(
        &mut tx,
        &key,
        &input("Goldcrest Client Account", vec![w.site, w.other_site]),
    )
    .await
    .unwrap();
    let found = banks::find(&mut tx, pooled).await.unwrap().unwrap();
    assert_eq!(
        (found.pooled, found.sites, found.masked().as_str()),
        (true, 2, "Sort code **-**-00, account ****9911")
    );
    let raw: Vec<u8> = sqlx::query_scalar("select sealed from bank_account where id = $1")
        .bind(pooled)
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains("55779911"));
    let numbers = banks::numbers(&mut tx, &key, pooled).await.unwrap();
    assert_eq!(
        (numbers.sort_code.as_str(), numbers.account_number.as_str()),
        ("200000", "55779911")
    );
    assert!(
        banks::numbers(&mut tx, &DataKey::generate(), pooled)
            .await
            .is_err()
    );
    // Each site has its own ledger account for it.
    let here = banks::for_site(&mut tx, w.site).await.unwrap();
    let there = banks::for_site(&mut tx, w.other_site).await.unwrap();
    assert_eq!((here.len(), there.len()), (1, 1));
    assert_ne!(here[0].1, there[0].1);

    // Clear refusals.
    let msg = refusal(
        banks::create(
            &mut tx,
            &key,
            &input("goldcrest client account", vec![w.site]),
        )
        .await,
    );
    assert!(msg.contains("already a bank account called"), "{msg}");
    let msg = refusal(
        banks::create(
            &mut tx,
            &key,
            &BankAccountInput {
                service_user_number: None,
                ..input("Reserve", vec![w.site])
            },
        )
        .await,
    );
    assert!(msg.contains("Service User Number"), "{msg}");
    let msg = refusal(
        banks::create(
            &mut tx,
            &key,
            &BankAccountInput {
                service_user_number: Some("12 45".into()),
                ..input("Reserve", vec![w.site])
            },
        )
        .await,
    );
    assert!(msg.contains("is not a Bacs Service User Number"), "{msg}");
    assert!(
        refusal(banks::create(&mut tx, &key, &input("Reserve", vec![])).await)
            .contains("Choose the site")
    );

    // The client-money rule: £100 received for this site's service charge pays up to £100 of
    // its bills out of the pooled account, never the other site's money.
    let fund = w.sc_fund;
    let bank_ledger = here[0].1;
    let suspense = ledger::control_account(&mut tx, w.site, "suspense")
        .await
        .unwrap()
        .unwrap()
        .id;
    let mk = |account: Uuid, amount: i64| ledger::NewLine {
        account_id: account,
        fund_id: fund,
        amount_pence: amount,
        unit_id: None,
        contact_id: None,
        work_order_id: None,
        description: None,
    };
    ledger::post(
        &mut tx,
        &ledger::NewJournal {
            site_id: w.site,
            date: date!(2026 - 05 - 01),
            description: "Opening balance".into(),
            source_type: "manual_journal".into(),
            source_id: None,
            lines: vec![mk(bank_ledger, 10_000), mk(suspense, -10_000)],
        },
        "Ann",
        now(),
    )
    .await
    .unwrap();
    let balances = banks::site_balances(&mut tx, pooled, w.site).await.unwrap();
    assert!(balances.iter().any(|(f, _, b)| *f == fund && *b == 10_000));
    banks::check_client_money(&mut tx, &found, w.site, fund, 10_000, None)
        .await
        .unwrap();
    let msg = refusal(banks::check_client_money(&mut tx, &found, w.site, fund, 10_001, None).await);
    assert!(
        msg.contains("Goldcrest House's Service charge fund holds £100.00 in Goldcrest Client Account, less than the £100.01 to pay"),
        "{msg}"
    );
    let other_fund = ledger::fund_of_kind(&mut tx, w.other_site, FundKind::ServiceCharge)
        .await
        .unwrap()
        .unwrap()
        .id;
    assert!(
        refusal(
            banks::check_client_money(&mut tx, &found, w.other_site, other_fund, 1, None).await
        )
        .contains("Riverside Court")
    );
    // An override does not move client money; an office account takes one with a reason.
    let o = Override {
        by: "Olivia Owner".into(),
        reason: "Float agreed with the client".into(),
    };
    assert!(
        refusal(banks::check_client_money(&mut tx, &found, w.site, fund, 10_001, Some(&o)).await)
            .contains("client money")
    );
    let office = banks::create(
        &mut tx,
        &key,
        &BankAccountInput {
            account_type: AccountType::Office,
            file_format: FileFormat::Csv,
            ..input("Goldcrest Office Account", vec![w.site])
        },
    )
    .await
    .unwrap();
    let office = banks::find(&mut tx, office).await.unwrap().unwrap();
    assert!(
        refusal(banks::check_client_money(&mut tx, &office, w.site, fund, 1, None).await)
            .contains("override")
    );
    banks::check_client_money(&mut tx, &office, w.site, fund, 1, Some(&o))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_bill_coded_to_a_work_order_is_approved_by_someone_else_and_posted() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Ann")).await.unwrap();
    let w = world(&mut tx).await;
    let wo = completed_work_order(&mut tx, &w).await;
    let ann = signer("Ann Accountant");
    let priya = signer("Priya Patel");

    // £375 + £75 VAT (irrecoverable: the site is not VAT-registered), coded to the job.
    let input = BillInput {
        work_order_id: Some(wo),
        total_pence: Some(45_000),
        ..bill(&w, "INV-1042", vec![line(&w, 37_500, false)])
    };
    let id = bills::save_draft(&mut tx, None, &input, &ann)
        .await
        .unwrap();
    let wo_status: String = sqlx::query_scalar("select status from work_order where id = $1")
        .bind(wo)
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(wo_status, "invoiced");
    let b = bills::find(&mut tx, id).await.unwrap().unwrap();
    assert_eq!(
        (
            b.status(),
            b.net_pence,
            b.vat_pence,
            b.total_pence,
            b.due_date
        ),
        (
            BillStatus::Draft,
            37_500,
            7_500,
            45_000,
            date!(2026 - 06 - 11)
        )
    );
    assert_eq!(
        b.work_order_reference
            .as_deref()
            .map(|r| r.starts_with("WO-")),
        Some(true)
    );

    // Refused, nothing saved: the same invoice number again, lines off the stated total, VAT
    // that is not the rate's, a work order of another contractor or site, a control account.
    let before: i64 = sqlx::query_scalar("select count(*) from bill")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    let msg = refusal(
        bills::save_draft(
            &mut tx,
            None,
            &bill(&w, " inv-1042 ", vec![line(&w, 100, false)]),
            &ann,
        )
        .await,
    );
    assert_eq!(
        msg,
        "Bright Spark Plumbing's invoice inv-1042 is already entered (Draft)."
    );
    let msg = refusal(
        bills::save_draft(
            &mut tx,
            None,
            &BillInput {
                total_pence: Some(45_001),
                ..bill(&w, "INV-1043", vec![line(&w, 37_500, false)])
            },
            &ann,
        )
        .await,
    );
    assert_eq!(
        msg,
        "The lines add up to £450.00 (net £375.00 + VAT £75.00), not the invoice's total of £450.01."
    );
    let msg = refusal(
        bills::save_draft(
            &mut tx,
            None,
            &bill(
                &w,
                "INV-1044",
                vec![BillLineInput {
                    vat_pence: Some(7_000),
                    ..line(&w, 37_500, false)
                }],
            ),
            &ann,
        )
        .await,
    );
    assert!(
        msg.contains("VAT at Standard 20% on £375.00 is £75.00, not £70.00"),
        "{msg}"
    );
    let msg = refusal(
        bills::save_draft(
            &mut tx,
            None,
            &BillInput {
                vendor_id: w.roofer,
                work_order_id: Some(wo),
                ..bill(&w, "R-1", vec![line(&w, 100, false)])
            },
            &ann,
        )
        .await,
    );
    assert!(
        msg.contains("was awarded to Bright Spark Plumbing, not Top Roofing"),
        "{msg}"
    );
    let creditors = ledger::control_account(&mut tx, w.site, "creditors")
        .await
        .unwrap()
        .unwrap()
        .id;
    let msg = refusal(
        bills::save_draft(
            &mut tx,
            None,
            &bill(
                &w,
                "INV-1045",
                vec![BillLineInput {
                    account_id: creditors,
                    ..line(&w, 100, false)
                }],
            ),
            &ann,
        )
        .await,
    );
    assert!(msg.contains("is posted to automatically"), "{msg}");
    let after: i64 = sqlx::query_scalar("select count(*) from bill")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(before, after);

    // A second bill from the plumber for the same amount on the same day is flagged.
    let twin = bills::save_draft(
        &mut tx,
        None,
        &bill(&w, "INV-1042A", vec![line(&w, 37_500, false)]),
        &ann,
    )
    .await
    .unwrap();
    let twin_bill = bills::find(&mut tx, twin).await.unwrap().unwrap();
    let warnings = bills::duplicate_warnings(&mut tx, &twin_bill)
        .await
        .unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].contains("also billed £450.00 on 12 May 2026 (invoice INV-1042, draft)"),
        "{}",
        warnings[0]
    );

    // Whoever entered or submitted it cannot approve it; someone else can.
    bills::submit(&mut tx, id, &ann, now()).await.unwrap();
    let msg = refusal(bills::approve(&mut tx, id, &ann, now()).await);
    assert!(msg.contains("someone else must approve it"), "{msg}");
    let posted = bills::approve(&mut tx, id, &priya, now()).await.unwrap();
    assert_eq!(posted, Approval::Posted("BIL-2026-000001".into()));
    let b = bills::find(&mut tx, id).await.unwrap().unwrap();
    assert_eq!(
        (b.status(), b.approved_by.as_deref()),
        (BillStatus::Approved, Some("Priya Patel"))
    );
    // Dr repairs £450 (VAT irrecoverable), Cr creditors £450, the job on each line.
    assert_eq!(balance(&mut tx, w.site, "repairs").await, 45_000);
    assert_eq!(balance(&mut tx, w.site, "creditors").await, -45_000);
    assert_eq!(trial_balance_total(&mut tx, w.site).await, 0);
    let journal_lines = ledger::lines(&mut tx, b.journal_id.unwrap()).await.unwrap();
    assert!(journal_lines.iter().all(|l| l.work_order_id == Some(wo)));

    // A VAT-registered supply: the VAT goes to the VAT account, split across two funds.
    let mut reserve_line = line(&w, 10_000, true);
    reserve_line.fund_id = w.reserve_fund;
    let split = bills::save_draft(
        &mut tx,
        None,
        &bill(&w, "INV-2000", vec![line(&w, 20_000, true), reserve_line]),
        &ann,
    )
    .await
    .unwrap();
    bills::submit(&mut tx, split, &ann, now()).await.unwrap();
    bills::approve(&mut tx, split, &priya, now()).await.unwrap();
    assert_eq!(balance(&mut tx, w.site, "vat").await, 6_000);
    assert_eq!(
        balance(&mut tx, w.site, "creditors").await,
        -45_000 - 36_000
    );
    assert_eq!(trial_balance_total(&mut tx, w.site).await, 0);

    // The database keeps a posted bill's figures and lines.
    for sql in [
        "update bill set total_pence = 1, net_pence = 1, vat_pence = 0 where number = 'BIL-2026-000001'",
        "update bill_line set net_pence = 1 where bill_id = (select id from bill where number = 'BIL-2026-000001')",
        "delete from bill where number = 'BIL-2026-000001'",
    ] {
        sqlx::query("savepoint s").execute(tx.conn()).await.unwrap();
        let e = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(tx.conn())
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("no longer change") || e.to_string().contains("only a draft"),
            "{sql}: {e}"
        );
        sqlx::query("rollback to savepoint s")
            .execute(tx.conn())
            .await
            .unwrap();
    }
    // …and a draft leaves draft only with lines matching its figures.
    sqlx::query("savepoint s").execute(tx.conn()).await.unwrap();
    let e =
        sqlx::query("update bill set net_pence = 1, vat_pence = 0, total_pence = 1 where id = $1")
            .bind(twin)
            .execute(tx.conn())
            .await;
    assert!(e.is_ok());
    let e = sqlx::query("update bill set status = 'awaiting_approval' where id = $1")
        .bind(twin)
        .execute(tx.conn())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("do not match its figures"), "{e}");
    sqlx::query("rollback to savepoint s")
        .execute(tx.conn())
        .await
        .unwrap();

    // Held and released; voided with its journal reversed and the job back to completed.
    let msg = refusal(bills::hold(&mut tx, twin, "Query").await);
    assert!(
        msg.contains("only an approved bill awaiting payment is held"),
        "{msg}"
    );
    bills::hold(&mut tx, id, "Query on the labour charge")
        .await
        .unwrap();
    assert_eq!(
        bills::find(&mut tx, id).await.unwrap().unwrap().status(),
        BillStatus::Held
    );
    bills::release(&mut tx, id).await.unwrap();
    assert_eq!(
        bills::find(&mut tx, id).await.unwrap().unwrap().status(),
        BillStatus::Approved
    );
    assert!(
        refusal(bills::void(&mut tx, id, "", date!(2026 - 05 - 20), "Ann", now()).await)
            .contains("reason")
    );
    bills::void(
        &mut tx,
        id,
        "Entered against the wrong site",
        date!(2026 - 05 - 20),
        "Ann",
        now(),
    )
    .await
    .unwrap();
    let b = bills::find(&mut tx, id).await.unwrap().unwrap();
    assert_eq!(b.status(), BillStatus::Voided);
    assert!(b.void_journal_id.is_some());
    assert_eq!(balance(&mut tx, w.site, "repairs").await, 20_000 + 10_000);
    assert_eq!(trial_balance_total(&mut tx, w.site).await, 0);
    // The twin still codes nothing to the job, so it is completed again; the voided number
    // may be entered afresh.
    let wo_status: String = sqlx::query_scalar("select status from work_order where id = $1")
        .bind(wo)
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(wo_status, "completed");
    bills::save_draft(
        &mut tx,
        None,
        &bill(&w, "INV-1042", vec![line(&w, 37_500, false)]),
        &ann,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn an_approval_chain_holds_a_large_bill_until_both_sign() {
    use proplink_db::approvals::{self, ChainInput, StepInput};
    use proplink_domain::permissions::{BuiltInRole, Scope};
    use proplink_test_support::people as staff;
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let person = async |email: &str, name: &str, role: BuiltInRole| {
        staff::member(&db, &org, email, name, role, Scope::AllSites).await
    };
    let ann = person(
        "ann@goldcrest.test",
        "Ann Accountant",
        BuiltInRole::Accountant,
    )
    .await;
    let priya = person("priya@goldcrest.test", "Priya Patel", BuiltInRole::Manager).await;
    let omar = person(
        "omar@goldcrest.test",
        "Omar Director",
        BuiltInRole::Administrator,
    )
    .await;
    let mut tx = db.app.begin(&db.staff(&org, "Ann")).await.unwrap();
    let w = world(&mut tx).await;
    let sign = async |tx: &mut TenantTx, m: &staff::TestMember| {
        Signer::member(tx, m.membership_id, &m.name).await.unwrap()
    };
    let (ann, priya, omar) = (
        sign(&mut tx, &ann).await,
        sign(&mut tx, &priya).await,
        sign(&mut tx, &omar).await,
    );
    approvals::save_chain(
        &mut tx,
        None,
        &ChainInput {
            name: "Bills over £5,000".into(),
            record_type: "bill".into(),
            amount_over_pence: Some(500_000),
            site_id: None,
            category: None,
            parallel: false,
            steps: [&priya, &omar]
                .iter()
                .map(|s| StepInput {
                    approver: approvals::Approver::Member(s.membership_id.unwrap()),
                    amount_over_pence: None,
                })
                .collect(),
        },
    )
    .await
    .unwrap();
    let exempt_line = |net: i64| BillLineInput {
        tax_rate_id: w.exempt,
        ..line(&w, net, false)
    };
    let large = bills::save_draft(
        &mut tx,
        None,
        &BillInput {
            vendor_id: w.roofer,
            ..bill(&w, "TR-77", vec![exempt_line(600_000)])
        },
        &ann,
    )
    .await
    .unwrap();
    bills::submit(&mut tx, large, &ann, now()).await.unwrap();
    // In order: the director cannot sign before the manager.
    assert!(bills::approve(&mut tx, large, &omar, now()).await.is_err());
    match bills::approve(&mut tx, large, &priya, now()).await.unwrap() {
        Approval::Waiting(left) => assert_eq!(left, ["Omar Director"]),
        other => panic!("expected to wait for the director, got {other:?}"),
    }
    let b = bills::find(&mut tx, large).await.unwrap().unwrap();
    assert_eq!((b.status(), b.number), (BillStatus::AwaitingApproval, None));
    assert_eq!(
        bills::approve(&mut tx, large, &omar, now()).await.unwrap(),
        Approval::Posted("BIL-2026-000001".into())
    );
    // Under the threshold no chain applies: any other approver posts it.
    let small = bills::save_draft(
        &mut tx,
        None,
        &BillInput {
            vendor_id: w.roofer,
            ..bill(&w, "TR-78", vec![exempt_line(10_000)])
        },
        &ann,
    )
    .await
    .unwrap();
    bills::submit(&mut tx, small, &ann, now()).await.unwrap();
    assert_eq!(
        bills::approve(&mut tx, small, &priya, now()).await.unwrap(),
        Approval::Posted("BIL-2026-000002".into())
    );
}
