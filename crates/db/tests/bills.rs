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
use proplink_db::payments::{self as pay, ManualPayment, Method, RunInput};
use proplink_db::people::{self, BankDetails, VendorInput};
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
    key: DataKey,
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
        bank_account_name: Some(format!("{name} Ltd")),
        bank: Some(BankDetails {
            sort_code: "404040".into(),
            account_number: if trade == "Plumbing" {
                "11112222"
            } else {
                "33334444"
            }
            .into(),
        }),
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
        key,
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
        "update bill set journal_id = null, number = null where number = 'BIL-2026-000001'",
    ] {
        sqlx::query("savepoint s").execute(tx.conn()).await.unwrap();
        let e = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(tx.conn())
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("no longer change")
                || e.to_string().contains("only a draft")
                || e.to_string().contains("journal does not change"),
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

// ---------------------------------------------------------------------------------------------
// Payments out

/// A pooled BACS client account for both sites, with `pence` of the first site's service
/// charge money in it. Returns (bank account, the site's ledger account for it).
async fn funded_bank(tx: &mut TenantTx, w: &World, pence: i64) -> (Uuid, Uuid) {
    let bank = banks::create(
        tx,
        &w.key,
        &BankAccountInput {
            name: "Goldcrest Client Account".into(),
            bank_name: Some("Barclays".into()),
            account_type: AccountType::Client,
            sort_code: SortCode::parse("20-00-00").unwrap(),
            account_number: AccountNumber::parse("55779911").unwrap(),
            holder_name: "Goldcrest PM Client".into(),
            service_user_number: Some("123456".into()),
            file_format: FileFormat::BacsStandard18,
            fund_kind: None,
            sites: vec![w.site, w.other_site],
            ledger_account_id: None,
        },
    )
    .await
    .unwrap();
    let ledger_account = banks::for_site(tx, w.site)
        .await
        .unwrap()
        .into_iter()
        .find(|(b, _)| b.id == bank)
        .unwrap()
        .1;
    if pence > 0 {
        fund(tx, w, ledger_account, pence).await;
    }
    (bank, ledger_account)
}

/// Puts `pence` of service charge money into the site's ledger account for a bank.
async fn fund(tx: &mut TenantTx, w: &World, bank_ledger: Uuid, pence: i64) {
    fund_in(tx, w, bank_ledger, w.sc_fund, pence).await;
}

async fn fund_in(tx: &mut TenantTx, w: &World, bank_ledger: Uuid, fund: Uuid, pence: i64) {
    let suspense = ledger::control_account(tx, w.site, "suspense")
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
        tx,
        &ledger::NewJournal {
            site_id: w.site,
            date: date!(2026 - 05 - 01),
            description: "Service charges received".into(),
            source_type: "manual_journal".into(),
            source_id: None,
            lines: vec![mk(bank_ledger, pence), mk(suspense, -pence)],
        },
        "Ann",
        now(),
    )
    .await
    .unwrap();
}

/// An approved bill of `net` + 20% VAT (irrecoverable) from `vendor` on the first site.
async fn approved_bill(
    tx: &mut TenantTx,
    w: &World,
    vendor: Uuid,
    reference: &str,
    net: i64,
    work_order: Option<Uuid>,
) -> Uuid {
    let ann = signer("Ann Accountant");
    let input = BillInput {
        vendor_id: vendor,
        work_order_id: work_order,
        ..bill(w, reference, vec![line(w, net, false)])
    };
    let id = bills::save_draft(tx, None, &input, &ann).await.unwrap();
    bills::submit(tx, id, &ann, now()).await.unwrap();
    bills::approve(tx, id, &signer("Bob Manager"), now())
        .await
        .unwrap();
    id
}

/// A journal's lines as (pence, description), in line order.
async fn journal_lines(tx: &mut TenantTx, journal: Uuid) -> Vec<(i64, String)> {
    ledger::lines(tx, journal)
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.amount_pence, l.description.unwrap_or_default()))
        .collect()
}

/// For each payment of a run, its lines' posting and reversal journals (the lines do not store
/// them: `proplink.supplier_payment_line_journals` finds them by the journals' source).
async fn run_journals(tx: &mut TenantTx, run: Uuid) -> Vec<(Uuid, Option<Uuid>, Option<Uuid>)> {
    sqlx::query_as(
        "select distinct l.payment_id, j.journal_id, j.reversal_journal_id
           from supplier_payment_line l
           join supplier_payment p on p.id = l.payment_id
          cross join lateral proplink.supplier_payment_line_journals(
                l.organisation_id, l.payment_id, l.site_id) j
          where p.payment_run_id = $1 order by 1",
    )
    .bind(run)
    .fetch_all(tx.conn())
    .await
    .unwrap()
}

/// A record's status; a bill's as the product reads it (scheduled while a run holds it).
async fn status_of(tx: &mut TenantTx, table: &str, id: Uuid) -> String {
    if table == "bill" {
        return bills::find(tx, id)
            .await
            .unwrap()
            .unwrap()
            .status()
            .as_str()
            .to_owned();
    }
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select status from {table} where id = $1"
    )))
    .bind(id)
    .fetch_one(tx.conn())
    .await
    .unwrap()
}

/// What the database says refusing a raw statement (bound to `binds`), which is rolled back to a
/// savepoint so the test's transaction goes on.
async fn raw_error(tx: &mut TenantTx, sql: &str, binds: &[Uuid]) -> String {
    sqlx::query("savepoint raw")
        .execute(tx.conn())
        .await
        .unwrap();
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
    for b in binds {
        query = query.bind(*b);
    }
    let err = query.execute(tx.conn()).await.unwrap_err().to_string();
    sqlx::query("rollback to savepoint raw")
        .execute(tx.conn())
        .await
        .unwrap();
    err
}

async fn count(tx: &mut TenantTx, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
        .fetch_one(tx.conn())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_run_sent_as_csv_credits_the_bank_payment_by_payment() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Ann")).await.unwrap();
    let w = world(&mut tx).await;
    let (bank, _) = funded_bank(&mut tx, &w, 100_000).await;
    sqlx::query("update bank_account set file_format = 'csv' where id = $1")
        .bind(bank)
        .execute(tx.conn())
        .await
        .unwrap();
    let plumbing = approved_bill(&mut tx, &w, w.plumber, "INV-2001", 10_000, None).await;
    let roofing = approved_bill(&mut tx, &w, w.roofer, "R-90", 5_000, None).await;
    let run = pay::schedule_run(
        &mut tx,
        &w.key,
        &RunInput {
            bank_account_id: bank,
            payment_date: now().date(),
            due_by: date!(2026 - 06 - 30),
            bill_ids: vec![plumbing, roofing],
            override_: None,
        },
        &signer("Ann Accountant"),
        now(),
    )
    .await
    .unwrap();
    pay::approve_run(&mut tx, run, &signer("Olivia Owner"), now())
        .await
        .unwrap();
    let file = pay::payment_file(&mut tx, &w.key, run, "Ann", now())
        .await
        .unwrap();
    assert!(file.filename.ends_with(".csv"));
    pay::mark_run_paid(&mut tx, run, "Ann", now())
        .await
        .unwrap();
    let r = pay::find_run(&mut tx, run).await.unwrap().unwrap();
    assert_eq!(r.file_format.as_deref(), Some("csv"));
    let journals = run_journals(&mut tx, run).await;
    let [(_, Some(journal), None), (_, Some(same), None)] = journals.as_slice() else {
        panic!("two payments posted, not reversed: {journals:?}");
    };
    assert_eq!(journal, same, "one journal for the run's site");
    let payments = pay::run_payments(&mut tx, run).await.unwrap();
    assert_eq!(
        journal_lines(&mut tx, *journal).await,
        vec![
            (12_000, "Bright Spark Plumbing BIL-2026-000001".to_owned()),
            (6_000, "Top Roofing BIL-2026-000002".to_owned()),
            (
                -12_000,
                format!("{} to Bright Spark Plumbing", payments[0].number)
            ),
            (-6_000, format!("{} to Top Roofing", payments[1].number)),
        ]
    );
    // The format the run was posted for stays as it was.
    let err = raw_error(
        &mut tx,
        "update payment_run set file_format = 'bacs_std18' where id = $1",
        &[run],
    )
    .await;
    assert!(err.contains("does not change"), "{err}");
    // No new file is made for the paid run, in either format.
    sqlx::query("update bank_account set file_format = 'bacs_std18' where id = $1")
        .bind(bank)
        .execute(tx.conn())
        .await
        .unwrap();
    assert!(
        refusal(pay::payment_file(&mut tx, &w.key, run, "Ann", now()).await)
            .contains("could pay it twice")
    );
    let r = pay::find_run(&mut tx, run).await.unwrap().unwrap();
    assert_eq!(r.file_format.as_deref(), Some("csv"));
}

#[tokio::test]
async fn a_payment_run_is_approved_by_someone_else_filed_paid_and_reversed() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Ann")).await.unwrap();
    let w = world(&mut tx).await;
    let wo = completed_work_order(&mut tx, &w).await;
    let (bank, bank_ledger) = funded_bank(&mut tx, &w, 100_000).await;
    // £450 for the job, and two roofing bills of £120 and £60.
    let plumbing = approved_bill(&mut tx, &w, w.plumber, "INV-1042", 37_500, Some(wo)).await;
    let roof_a = approved_bill(&mut tx, &w, w.roofer, "R-77", 10_000, None).await;
    let roof_b = approved_bill(&mut tx, &w, w.roofer, "R-78", 5_000, None).await;
    let today = now().date();
    let due_by = date!(2026 - 06 - 30);

    let payable = pay::payable_bills(&mut tx, bank, due_by).await.unwrap();
    assert_eq!(payable.len(), 3);
    assert!(payable.iter().all(|b| b.vendor_has_bank));

    let ann = signer("Ann Accountant");
    let run = pay::schedule_run(
        &mut tx,
        &w.key,
        &RunInput {
            bank_account_id: bank,
            payment_date: today,
            due_by,
            bill_ids: vec![plumbing, roof_a, roof_b],
            override_: None,
        },
        &ann,
        now(),
    )
    .await
    .unwrap();
    let r = pay::find_run(&mut tx, run).await.unwrap().unwrap();
    // One payment per supplier: the roofer's two bills are one payment of £180.
    assert_eq!(
        (
            r.status.as_str(),
            r.payment_count,
            r.bill_count,
            r.total_pence
        ),
        ("scheduled", 2, 3, 45_000 + 18_000)
    );
    let payments = pay::run_payments(&mut tx, run).await.unwrap();
    let amounts: Vec<(String, i64)> = payments
        .iter()
        .map(|p| (p.vendor_name.clone(), p.amount_pence))
        .collect();
    assert_eq!(
        amounts,
        vec![
            ("Bright Spark Plumbing".to_owned(), 45_000),
            ("Top Roofing".to_owned(), 18_000)
        ]
    );
    assert_eq!(payments[0].reference.as_deref(), Some("INV-1042"));
    assert_eq!(
        payments[1].reference.as_deref(),
        Some(payments[1].number.as_str())
    );
    for b in [plumbing, roof_a, roof_b] {
        assert_eq!(status_of(&mut tx, "bill", b).await, "scheduled");
    }
    // Scheduling wrote no bill: the run's lines are what makes them scheduled (migration
    // 0046). They are offered for no other run, and each bill's history says it went in.
    let stored: Vec<String> =
        sqlx::query_scalar("select distinct status from bill where id = any($1)")
            .bind(vec![plumbing, roof_a, roof_b])
            .fetch_all(tx.conn())
            .await
            .unwrap();
    assert_eq!(stored, vec!["approved".to_owned()]);
    let offered = pay::payable_bills(&mut tx, bank, due_by).await.unwrap();
    assert!(
        offered
            .iter()
            .all(|b| ![plumbing, roof_a, roof_b].contains(&b.id))
    );
    let history = proplink_db::audit::bill_history(&mut tx, plumbing)
        .await
        .unwrap();
    assert_eq!(history[0].table_name, "supplier_payment_line");
    assert!(
        proplink_db::money_history::bill_history_sentence(&history[0])
            .contains("put it in a payment run to pay £450.00 via "),
        "{}",
        proplink_db::money_history::bill_history_sentence(&history[0])
    );
    // Nothing posts before the bank confirms; no file before approval.
    assert_eq!(balance(&mut tx, w.site, "creditors").await, -63_000);
    assert!(
        refusal(pay::payment_file(&mut tx, &w.key, run, "Ann", now()).await)
            .contains("once the run is approved")
    );
    assert!(
        refusal(pay::mark_run_paid(&mut tx, run, "Ann", now()).await).contains("not approved yet")
    );
    // The scheduler does not approve it; someone else does.
    assert_eq!(
        refusal(pay::approve_run(&mut tx, run, &ann, now()).await),
        "You scheduled this run: someone else must approve it."
    );
    let approved = pay::approve_run(&mut tx, run, &signer("Olivia Owner"), now())
        .await
        .unwrap();
    assert!(matches!(approved, Approval::Posted(ref n) if n == &r.number));

    // The BACS file: two credits and the contra for £630.
    let file = pay::payment_file(&mut tx, &w.key, run, "Ann", now())
        .await
        .unwrap();
    let text = String::from_utf8(file.bytes.clone()).unwrap();
    assert!(file.filename.ends_with(".txt") && text.starts_with("VOL1"));
    let records: Vec<&str> = text.split("\r\n").collect();
    let credits: Vec<&&str> = records
        .iter()
        .filter(|l| l.get(15..17) == Some("99"))
        .collect();
    assert_eq!(credits.len(), 2);
    assert!(credits.iter().any(|l| l.contains("00000045000")));
    assert!(
        records
            .iter()
            .any(|l| l.get(15..17) == Some("17") && l.contains("00000063000"))
    );

    let paid = pay::mark_run_paid(&mut tx, run, "Ann", now())
        .await
        .unwrap();
    assert_eq!(paid.len(), 2);
    for b in [plumbing, roof_a, roof_b] {
        assert_eq!(status_of(&mut tx, "bill", b).await, "paid");
    }
    assert_eq!(status_of(&mut tx, "payment_run", run).await, "paid");
    assert_eq!(balance(&mut tx, w.site, "creditors").await, 0);
    let in_bank = ledger::account_balance(&mut tx, bank_ledger, None, date!(2100 - 01 - 01))
        .await
        .unwrap();
    assert_eq!(in_bank, 100_000 - 63_000);
    assert_eq!(trial_balance_total(&mut tx, w.site).await, 0);
    // The site's journal for the run: creditors debited bill by bill, and the bank credited
    // once for the fund, as the one contra of the Standard 18 file debits the account. Every
    // line of the run finds it (the lines do not store it).
    let journals = run_journals(&mut tx, run).await;
    let [(_, Some(run_journal), None), (_, Some(same), None)] = journals.as_slice() else {
        panic!("two payments posted, not reversed: {journals:?}");
    };
    assert_eq!(run_journal, same, "one journal for the run's site");
    let bank_name: String = sqlx::query_scalar("select name from bank_account where id = $1")
        .bind(bank)
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(
        journal_lines(&mut tx, *run_journal).await,
        vec![
            (45_000, "Bright Spark Plumbing BIL-2026-000001".to_owned()),
            (12_000, "Top Roofing BIL-2026-000002".to_owned()),
            (6_000, "Top Roofing BIL-2026-000003".to_owned()),
            (
                -63_000,
                format!("Payment run {} from {bank_name}", r.number)
            ),
        ]
    );
    // The job's only bill is paid: the work order closes (the manager may still rate it).
    assert_eq!(status_of(&mut tx, "work_order", wo).await, "closed");
    ops::close_work_order(&mut tx, wo, 5, Some("Quick and tidy"), None, now())
        .await
        .unwrap();
    let rating: Option<i16> = sqlx::query_scalar("select rating from work_order where id = $1")
        .bind(wo)
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(rating, Some(5));
    // Paid twice? No: the run is paid and the bills are no longer payable.
    assert!(refusal(pay::mark_run_paid(&mut tx, run, "Ann", now()).await).contains("already paid"));

    // The plumber's payment comes back: its bill is owed again and the job re-opens.
    let plumber_payment = payments[0].id;
    pay::reverse_payment(
        &mut tx,
        plumber_payment,
        today,
        "Returned by the bank: account closed",
        "Ann",
        now(),
    )
    .await
    .unwrap();
    let b = bills::find(&mut tx, plumbing).await.unwrap().unwrap();
    assert_eq!((b.status(), b.paid_pence), (BillStatus::Approved, 0));
    assert_eq!(status_of(&mut tx, "work_order", wo).await, "invoiced");
    assert_eq!(balance(&mut tx, w.site, "creditors").await, -45_000);
    assert_eq!(trial_balance_total(&mut tx, w.site).await, 0);
    // The reversal posts the plumber's own lines back; the roofer's payment stands.
    let journals = run_journals(&mut tx, run).await;
    assert_eq!(journals.len(), 2);
    assert!(journals.iter().all(|(_, j, _)| *j == Some(*run_journal)));
    let reversal = journals
        .iter()
        .find(|(p, ..)| *p == plumber_payment)
        .and_then(|(_, _, r)| *r)
        .expect("the plumber's lines have their reversal");
    assert!(
        journals
            .iter()
            .all(|(p, _, r)| (*p == plumber_payment) == r.is_some())
    );
    assert_eq!(
        journal_lines(&mut tx, reversal).await,
        vec![
            (-45_000, "Bright Spark Plumbing BIL-2026-000001".to_owned()),
            (
                45_000,
                format!("{} to Bright Spark Plumbing", payments[0].number)
            ),
        ]
    );
    assert!(
        refusal(pay::reverse_payment(&mut tx, plumber_payment, today, "Again", "Ann", now()).await)
            .contains("only a paid payment is reversed")
    );

    // The supplier's statement and the creditors list agree with the ledger.
    let st = pay::vendor_statement(&mut tx, w.plumber, None, date!(2026 - 01 - 01), today)
        .await
        .unwrap();
    assert_eq!(
        (st.opening_pence, st.closing_pence, st.moves.len()),
        (0, 45_000, 3)
    );
    let list = pay::creditors(&mut tx, Some(w.site), None, today)
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (
            list[0].vendor_name.as_str(),
            list[0].outstanding_pence,
            list[0].overdue_pence
        ),
        ("Bright Spark Plumbing", 45_000, 45_000)
    );

    // The database keeps a posted payment line's figures and journal.
    for sql in [
        "update supplier_payment_line set amount_pence = amount_pence + 1",
        "update supplier_payment_line set fund_id = fund_id",
        "delete from supplier_payment_line",
    ] {
        let err = raw_error(&mut tx, sql, &[]).await;
        assert!(
            err.contains("do not change") || err.contains("only a line"),
            "{sql}: {err}"
        );
    }
    let err = sqlx::query("delete from supplier_payment where id = $1")
        .bind(plumber_payment)
        .execute(tx.conn())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is not deleted"), "{err}");
}

#[tokio::test]
async fn payments_that_break_a_rule_are_refused_and_change_nothing() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Ann")).await.unwrap();
    let w = world(&mut tx).await;
    // £100 in the bank for the site; bills of £120 and £60.
    let (bank, bank_ledger) = funded_bank(&mut tx, &w, 10_000).await;
    let big = approved_bill(&mut tx, &w, w.roofer, "R-1", 10_000, None).await;
    let small = approved_bill(&mut tx, &w, w.roofer, "R-2", 5_000, None).await;
    let ann = signer("Ann Accountant");
    let today = now().date();
    let input = |bills: Vec<Uuid>| RunInput {
        bank_account_id: bank,
        payment_date: today,
        due_by: date!(2026 - 12 - 31),
        bill_ids: bills,
        override_: None,
    };
    let before = (
        count(&mut tx, "payment_run").await,
        count(&mut tx, "journal").await,
    );

    // A run that would overdraw the site's service charge money.
    let msg =
        refusal(pay::schedule_run(&mut tx, &w.key, &input(vec![big, small]), &ann, now()).await);
    assert_eq!(
        msg,
        "Goldcrest House's Service charge fund holds £100.00 in Goldcrest Client Account, less \
         than the £180.00 to pay: client money of another site or fund cannot pay it."
    );
    // An override is for office accounts only.
    let o = Override {
        by: "Olivia Owner".into(),
        reason: "Float".into(),
    };
    assert!(
        refusal(
            pay::schedule_run(
                &mut tx,
                &w.key,
                &RunInput {
                    override_: Some(o.clone()),
                    ..input(vec![big])
                },
                &ann,
                now()
            )
            .await
        )
        .contains("takes no override")
    );
    // A bill on hold, a bill not approved, a payment date passed, no bills.
    bills::hold(&mut tx, small, "Disputed: gutter not cleared")
        .await
        .unwrap();
    let msg = refusal(pay::schedule_run(&mut tx, &w.key, &input(vec![small]), &ann, now()).await);
    assert!(
        msg.contains("is on hold (Disputed: gutter not cleared)"),
        "{msg}"
    );
    let draft = bills::save_draft(
        &mut tx,
        None,
        &bill(&w, "D-1", vec![line(&w, 100, false)]),
        &ann,
    )
    .await
    .unwrap();
    assert!(
        refusal(pay::schedule_run(&mut tx, &w.key, &input(vec![draft]), &ann, now()).await)
            .contains("is not approved")
    );
    assert!(
        refusal(
            pay::schedule_run(
                &mut tx,
                &w.key,
                &RunInput {
                    payment_date: today - time::Duration::days(1),
                    ..input(vec![big])
                },
                &ann,
                now()
            )
            .await
        )
        .contains("has passed")
    );
    assert_eq!(
        refusal(pay::schedule_run(&mut tx, &w.key, &input(vec![]), &ann, now()).await),
        "Tick at least one bill to pay."
    );
    // A supplier without bank details is not in a bank file.
    sqlx::query("update vendor set bank_sealed = null, bank_last_digits = null where id = $1")
        .bind(w.roofer)
        .execute(tx.conn())
        .await
        .unwrap();
    assert!(
        refusal(pay::schedule_run(&mut tx, &w.key, &input(vec![big]), &ann, now()).await)
            .contains("Top Roofing has no bank details")
    );
    // A held bill is not paid on its own either; nor more than a bill owes.
    let single = |bill: Uuid, amount: Option<i64>| ManualPayment {
        bill_id: bill,
        bank_account_id: bank,
        payment_date: today,
        method: Method::Cheque,
        reference: Some("000123".into()),
        amount_pence: amount,
        override_: None,
    };
    assert!(
        refusal(pay::pay_bill(&mut tx, &single(small, None), &ann, now()).await)
            .contains("release it before paying it")
    );
    assert!(
        refusal(pay::pay_bill(&mut tx, &single(big, Some(12_001)), &ann, now()).await)
            .contains("owes £120.00")
    );
    assert_eq!(
        refusal(
            pay::pay_bill(
                &mut tx,
                &ManualPayment {
                    reference: None,
                    ..single(big, Some(100))
                },
                &ann,
                now()
            )
            .await
        ),
        "Give the cheque number as the reference."
    );
    assert!(
        refusal(pay::pay_bill(&mut tx, &single(big, None), &ann, now()).await)
            .contains("less than the £120.00")
    );
    assert_eq!(
        (
            count(&mut tx, "payment_run").await,
            count(&mut tx, "journal").await
        ),
        before
    );
    assert_eq!(status_of(&mut tx, "bill", big).await, "approved");

    // A part payment by cheque: £70 of the £120, then the rest once money arrives.
    let part = pay::pay_bill(&mut tx, &single(big, Some(7_000)), &ann, now())
        .await
        .unwrap();
    let b = bills::find(&mut tx, big).await.unwrap().unwrap();
    assert_eq!((b.status(), b.paid_pence), (BillStatus::Approved, 7_000));
    let p = pay::find_payment(&mut tx, part).await.unwrap().unwrap();
    assert_eq!((p.method_label(), p.status.as_str()), ("Cheque", "paid"));
    fund(&mut tx, &w, bank_ledger, 2_000).await;
    pay::pay_bill(
        &mut tx,
        &ManualPayment {
            reference: Some("000124".into()),
            ..single(big, None)
        },
        &ann,
        now(),
    )
    .await
    .unwrap();
    let b = bills::find(&mut tx, big).await.unwrap().unwrap();
    assert_eq!((b.status(), b.paid_pence), (BillStatus::Paid, 12_000));
    assert_eq!(balance(&mut tx, w.site, "creditors").await, -6_000);
    assert_eq!(trial_balance_total(&mut tx, w.site).await, 0);
    // A paid bill is not voided.
    assert!(
        refusal(bills::void(&mut tx, big, "Wrong", today, "Ann", now()).await)
            .contains("reverse its payment first")
    );
}

#[tokio::test]
async fn a_run_changes_before_approval_a_held_bill_stops_it_and_cancelling_frees_its_bills() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Ann")).await.unwrap();
    let w = world(&mut tx).await;
    let (bank, _) = funded_bank(&mut tx, &w, 100_000).await;
    let a = approved_bill(&mut tx, &w, w.roofer, "R-1", 10_000, None).await;
    let b = approved_bill(&mut tx, &w, w.roofer, "R-2", 5_000, None).await;
    let c = approved_bill(&mut tx, &w, w.plumber, "P-1", 1_000, None).await;
    let ann = signer("Ann Accountant");
    let run = pay::schedule_run(
        &mut tx,
        &w.key,
        &RunInput {
            bank_account_id: bank,
            payment_date: now().date(),
            due_by: date!(2026 - 12 - 31),
            bill_ids: vec![a, b, c],
            override_: None,
        },
        &ann,
        now(),
    )
    .await
    .unwrap();
    // A bill in a run is not voided, and is not scheduled twice.
    assert!(
        refusal(bills::void(&mut tx, a, "Wrong", now().date(), "Ann", now()).await)
            .contains("payment run")
    );
    assert!(
        refusal(
            pay::schedule_run(
                &mut tx,
                &w.key,
                &RunInput {
                    bank_account_id: bank,
                    payment_date: now().date(),
                    due_by: date!(2026 - 12 - 31),
                    bill_ids: vec![a],
                    override_: None,
                },
                &ann,
                now()
            )
            .await
        )
        .contains("already in a payment run")
    );
    // Taking the plumber's only bill out drops the plumber's payment.
    pay::remove_bill(&mut tx, run, c, &ann).await.unwrap();
    let r = pay::find_run(&mut tx, run).await.unwrap().unwrap();
    assert_eq!(
        (r.payment_count, r.bill_count, r.total_pence),
        (1, 2, 18_000)
    );
    assert_eq!(status_of(&mut tx, "bill", c).await, "approved");
    let words: Vec<String> = proplink_db::audit::bill_history(&mut tx, c)
        .await
        .unwrap()
        .iter()
        .map(proplink_db::money_history::bill_history_sentence)
        .collect();
    assert!(
        words[0].contains("took it out of a payment run"),
        "{words:?}"
    );
    assert!(words[1].contains("put it in a payment run"), "{words:?}");
    // A bill held in the run and released is scheduled again, in the same run.
    bills::hold(&mut tx, a, "Checking the VAT").await.unwrap();
    assert_eq!(status_of(&mut tx, "bill", a).await, "held");
    bills::release(&mut tx, a).await.unwrap();
    assert_eq!(status_of(&mut tx, "bill", a).await, "scheduled");
    // A bill put on hold in the run stops its approval, and is not voided while in the run.
    bills::hold(&mut tx, b, "Query on the invoice")
        .await
        .unwrap();
    assert!(
        refusal(bills::void(&mut tx, b, "Wrong", now().date(), "Ann", now()).await)
            .contains("payment run")
    );
    let msg = refusal(pay::approve_run(&mut tx, run, &signer("Olivia Owner"), now()).await);
    assert!(msg.contains("is on hold (Query on the invoice)"), "{msg}");
    assert_eq!(status_of(&mut tx, "payment_run", run).await, "scheduled");
    // Cancelled: the bills go back to approved (the held one will, when released).
    assert!(
        refusal(pay::cancel_run(&mut tx, run, " ", false, "Ann", now()).await)
            .contains("Give the reason")
    );
    pay::cancel_run(
        &mut tx,
        run,
        "Paying by cheque instead",
        false,
        "Ann",
        now(),
    )
    .await
    .unwrap();
    assert_eq!(status_of(&mut tx, "bill", a).await, "approved");
    assert_eq!(status_of(&mut tx, "bill", b).await, "held");
    bills::release(&mut tx, b).await.unwrap();
    assert_eq!(status_of(&mut tx, "bill", b).await, "approved");
    let cancelled: Vec<String> =
        sqlx::query_scalar("select status from supplier_payment where payment_run_id = $1")
            .bind(run)
            .fetch_all(tx.conn())
            .await
            .unwrap();
    assert_eq!(cancelled, vec!["cancelled".to_owned()]);
    assert!(
        refusal(pay::approve_run(&mut tx, run, &signer("Olivia Owner"), now()).await)
            .contains("only a scheduled run is approved")
    );
}

#[tokio::test]
async fn runs_commit_their_money_and_a_filed_run_is_not_undone_lightly() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Ann")).await.unwrap();
    let w = world(&mut tx).await;
    // £1,000 in the bank; a run of £450 approved, and a bill of £600 to pay by hand.
    let (bank, _) = funded_bank(&mut tx, &w, 100_000).await;
    let first = approved_bill(&mut tx, &w, w.plumber, "P-1", 37_500, None).await;
    let second = approved_bill(&mut tx, &w, w.roofer, "R-1", 50_000, None).await;
    let ann = signer("Ann Accountant");
    let olivia = signer("Olivia Owner");
    let run = pay::schedule_run(
        &mut tx,
        &w.key,
        &RunInput {
            bank_account_id: bank,
            payment_date: now().date(),
            due_by: date!(2026 - 12 - 31),
            bill_ids: vec![first],
            override_: None,
        },
        &ann,
        now(),
    )
    .await
    .unwrap();
    pay::approve_run(&mut tx, run, &olivia, now())
        .await
        .unwrap();
    // The run's £450 is spoken for: £550 is left, not enough for £600.
    let by_hand = ManualPayment {
        bill_id: second,
        bank_account_id: bank,
        payment_date: now().date(),
        method: Method::FasterPayment,
        reference: None,
        amount_pence: None,
        override_: None,
    };
    assert_eq!(
        refusal(pay::pay_bill(&mut tx, &by_hand, &ann, now()).await),
        "Goldcrest House's Service charge fund holds £1,000.00 in Goldcrest Client Account, of \
         which £450.00 is already committed to payment runs not yet paid, leaving less than the \
         £600.00 to pay: client money of another site or fund cannot pay it."
    );
    pay::pay_bill(
        &mut tx,
        &ManualPayment {
            amount_pence: Some(55_000),
            ..by_hand.clone()
        },
        &ann,
        now(),
    )
    .await
    .unwrap();

    // The file is made: the bill is not held now, the run is not cancelled without saying the
    // bank never had it.
    pay::payment_file(&mut tx, &w.key, run, "Ann", now())
        .await
        .unwrap();
    assert!(
        refusal(bills::hold(&mut tx, first, "Query").await).contains("ask the bank to stop it")
    );
    assert!(
        refusal(pay::cancel_run(&mut tx, run, "Wrong run", false, "Ann", now()).await)
            .contains("cancel the run only if the bank rejected the file")
    );
    // The supplier's bank details change after scheduling: the run is not paid to them.
    people::save_vendor(
        &mut tx,
        &w.key,
        Some(w.plumber),
        &VendorInput {
            name: "Bright Spark Plumbing".into(),
            trade: "Plumbing".into(),
            bank: Some(BankDetails {
                sort_code: "404040".into(),
                account_number: "99998888".into(),
            }),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for msg in [
        refusal(pay::payment_file(&mut tx, &w.key, run, "Ann", now()).await),
        refusal(pay::mark_run_paid(&mut tx, run, "Ann", now()).await),
    ] {
        assert!(
            msg.contains("The bank details of Bright Spark Plumbing changed after"),
            "{msg}"
        );
    }
    pay::cancel_run(
        &mut tx,
        run,
        "The bank rejected the file",
        true,
        "Ann",
        now(),
    )
    .await
    .unwrap();
    assert_eq!(status_of(&mut tx, "bill", first).await, "approved");

    // The database: a paid payment takes no new line, a cancelled run stays cancelled.
    let paid: Uuid = sqlx::query_scalar("select id from supplier_payment where status = 'paid'")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    let err = raw_error(
        &mut tx,
        "insert into supplier_payment_line (organisation_id, id, payment_id, bill_id, site_id,
                fund_id, amount_pence)
         select organisation_id, gen_random_uuid(), payment_id, bill_id, site_id, $2, 1
           from supplier_payment_line where payment_id = $1 limit 1",
        &[paid, w.reserve_fund],
    )
    .await;
    assert!(err.contains("a line is added only"), "{err}");
    let err = sqlx::query("update payment_run set status = 'scheduled' where id = $1")
        .bind(run)
        .execute(tx.conn())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("does not go from cancelled"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Property: random sequences of bills, holds, single payments, runs and reversals keep the
// books whole and the client-money rule unbroken.

mod property {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    #[derive(Debug, Clone)]
    enum Op {
        /// An approved bill of `net` (+ 20% VAT) from one of two suppliers, partly in the
        /// reserve fund or not.
        Bill {
            roofer: bool,
            net: i64,
            reserve: bool,
        },
        /// Money received into the bank for the site's service charge or reserve fund.
        Fund {
            pence: i64,
            reserve: bool,
        },
        /// A single payment of a bill, in full or in part.
        Pay {
            bill: usize,
            part: Option<i64>,
        },
        Hold {
            bill: usize,
        },
        Release {
            bill: usize,
        },
        /// A run of some bills.
        Schedule {
            bills: Vec<usize>,
        },
        Approve {
            run: usize,
        },
        MarkPaid {
            run: usize,
        },
        Cancel {
            run: usize,
        },
        Reverse {
            payment: usize,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (any::<bool>(), 1..20_000i64, prop::bool::weighted(0.3))
                .prop_map(|(roofer, net, reserve)| Op::Bill { roofer, net, reserve }),
            2 => (1..100_000i64, prop::bool::weighted(0.3))
                .prop_map(|(pence, reserve)| Op::Fund { pence, reserve }),
            2 => (0..8usize, proptest::option::of(1..30_000i64))
                .prop_map(|(bill, part)| Op::Pay { bill, part }),
            1 => (0..8usize).prop_map(|bill| Op::Hold { bill }),
            1 => (0..8usize).prop_map(|bill| Op::Release { bill }),
            2 => prop::collection::vec(0..8usize, 1..4).prop_map(|bills| Op::Schedule { bills }),
            3 => (0..4usize).prop_map(|run| Op::Approve { run }),
            3 => (0..4usize).prop_map(|run| Op::MarkPaid { run }),
            1 => (0..4usize).prop_map(|run| Op::Cancel { run }),
            2 => (0..8usize).prop_map(|payment| Op::Reverse { payment }),
        ]
    }

    struct State {
        bills: Vec<Uuid>,
        runs: Vec<Uuid>,
        payments: Vec<Uuid>,
        n: usize,
    }

    async fn apply(
        tx: &mut TenantTx,
        w: &World,
        bank: (Uuid, Uuid),
        s: &mut State,
        op: &Op,
    ) -> bool {
        let ann = signer("Ann Accountant");
        let t = now();
        let pick = |v: &Vec<Uuid>, i: usize| v.get(i % v.len().max(1)).copied();
        // Runs counted from the newest: most steps act on the run just scheduled.
        let recent = |v: &Vec<Uuid>, i: usize| {
            v.len()
                .checked_sub(1 + i % v.len().max(1))
                .and_then(|k| v.get(k))
                .copied()
        };
        let result: Result<(), LedgerError> = match op {
            Op::Bill {
                roofer,
                net,
                reserve,
            } => {
                s.n += 1;
                let mut lines = vec![line(w, *net, false)];
                if *reserve {
                    lines.push(BillLineInput {
                        fund_id: w.reserve_fund,
                        ..line(w, net / 2 + 1, false)
                    });
                }
                let input = BillInput {
                    vendor_id: if *roofer { w.roofer } else { w.plumber },
                    ..bill(w, &format!("B-{}", s.n), lines)
                };
                let id = bills::save_draft(tx, None, &input, &ann).await.unwrap();
                bills::submit(tx, id, &ann, t).await.unwrap();
                bills::approve(tx, id, &signer("Bob Manager"), t)
                    .await
                    .unwrap();
                s.bills.push(id);
                Ok(())
            }
            Op::Fund { pence, reserve } => {
                let into = if *reserve { w.reserve_fund } else { w.sc_fund };
                fund_in(tx, w, bank.1, into, *pence).await;
                Ok(())
            }
            Op::Pay { bill, part } => match pick(&s.bills, *bill) {
                None => return true,
                Some(b) => pay::pay_bill(
                    tx,
                    &ManualPayment {
                        bill_id: b,
                        bank_account_id: bank.0,
                        payment_date: t.date(),
                        method: Method::FasterPayment,
                        reference: None,
                        amount_pence: *part,
                        override_: None,
                    },
                    &ann,
                    t,
                )
                .await
                .map(|p| s.payments.push(p)),
            },
            Op::Hold { bill } => match pick(&s.bills, *bill) {
                None => return true,
                Some(b) => bills::hold(tx, b, "Query").await,
            },
            Op::Release { bill } => match pick(&s.bills, *bill) {
                None => return true,
                Some(b) => bills::release(tx, b).await,
            },
            Op::Schedule { bills: chosen } => {
                let ids: Vec<Uuid> = chosen.iter().filter_map(|i| pick(&s.bills, *i)).collect();
                pay::schedule_run(
                    tx,
                    &w.key,
                    &RunInput {
                        bank_account_id: bank.0,
                        payment_date: t.date(),
                        due_by: date!(2026 - 12 - 31),
                        bill_ids: ids,
                        override_: None,
                    },
                    &ann,
                    t,
                )
                .await
                .map(|r| s.runs.push(r))
            }
            Op::Approve { run } => match recent(&s.runs, *run) {
                None => return true,
                Some(r) => pay::approve_run(tx, r, &signer("Olivia Owner"), t)
                    .await
                    .map(|_| ()),
            },
            Op::MarkPaid { run } => match recent(&s.runs, *run) {
                None => return true,
                Some(r) => pay::mark_run_paid(tx, r, "Ann", t)
                    .await
                    .map(|p| s.payments.extend(p)),
            },
            Op::Cancel { run } => match recent(&s.runs, *run) {
                None => return true,
                Some(r) => pay::cancel_run(tx, r, "Changed our minds", true, "Ann", t).await,
            },
            Op::Reverse { payment } => match recent(&s.payments, *payment) {
                None => return true,
                Some(p) => pay::reverse_payment(tx, p, t.date(), "Returned", "Ann", t).await,
            },
        };
        match result {
            Ok(()) => false,
            Err(LedgerError::Refused(_)) => true,
            Err(e) => panic!("{op:?}: {e:?}"),
        }
    }

    /// What must always be true.
    async fn check(tx: &mut TenantTx, w: &World, bank_ledger: Uuid) {
        assert_eq!(trial_balance_total(tx, w.site).await, 0);
        // Each bill's paid amount is what its paid payments paid it, and it is paid exactly
        // when that is its total.
        let wrong: i64 = sqlx::query_scalar(
            "select count(*) from bill b
              where b.paid_pence <> coalesce((select sum(l.amount_pence) from supplier_payment_line l
                       join supplier_payment p on p.id = l.payment_id and p.status = 'paid'
                      where l.bill_id = b.id), 0)
                 or (b.status = 'paid') <> (b.paid_pence = b.total_pence and b.journal_id is not null
                                            and b.status <> 'voided')",
        )
        .fetch_one(tx.conn())
        .await
        .unwrap();
        assert_eq!(wrong, 0, "bills whose paid amount or status is off");
        // A payment is the sum of its lines; a scheduled one is in a scheduled or approved run.
        let wrong: i64 = sqlx::query_scalar(
            "select count(*) from supplier_payment p
              where p.amount_pence <> (select coalesce(sum(amount_pence), 0) from supplier_payment_line
                                        where payment_id = p.id)
                 or (p.status = 'scheduled' and not exists (select from payment_run r
                       where r.id = p.payment_run_id and r.status in ('scheduled', 'approved')))",
        )
        .fetch_one(tx.conn())
        .await
        .unwrap();
        assert_eq!(wrong, 0, "payments whose lines or run are off");
        // Every line of a paid or reversed payment has its site's posting journal, and a
        // reversal journal exactly when the payment was reversed; a scheduled one has neither.
        let wrong: i64 = sqlx::query_scalar(
            "select count(*) from supplier_payment_line l
               join supplier_payment p on p.id = l.payment_id
              cross join lateral proplink.supplier_payment_line_journals(
                    l.organisation_id, l.payment_id, l.site_id) j
              where (j.journal_id is not null) <> (p.status in ('paid', 'reversed'))
                 or (j.reversal_journal_id is not null) <> (p.status = 'reversed')",
        )
        .fetch_one(tx.conn())
        .await
        .unwrap();
        assert_eq!(wrong, 0, "payment lines whose journals are off");
        // Creditors control is what the posted bills still owe.
        let owed: i64 = sqlx::query_scalar(
            "select coalesce(sum(total_pence - paid_pence), 0)::bigint from bill
              where journal_id is not null and status <> 'voided'",
        )
        .fetch_one(tx.conn())
        .await
        .unwrap();
        assert_eq!(balance(tx, w.site, "creditors").await, -owed);
        // Client money never goes below zero in any fund.
        let negative: i64 = sqlx::query_scalar(
            "select count(*) from (select fund_id, sum(amount_pence) as b from journal_line
                                    where account_id = $1 group by fund_id) f where f.b < 0",
        )
        .bind(bank_ledger)
        .fetch_one(tx.conn())
        .await
        .unwrap();
        assert_eq!(negative, 0, "a fund overdrawn in the client account");
    }

    #[test]
    fn random_bill_and_payment_sequences_keep_the_books_whole() {
        let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
        else {
            panic!("a runtime");
        };
        let db = rt.block_on(TestDb::new());
        // A fixed seed: CI runs the same sequences every time, so the check below that every
        // kind of step went through cannot fail by chance.
        let mut runner = TestRunner::new_with_rng(
            Config {
                cases: 40,
                failure_persistence: None,
                ..Config::default()
            },
            TestRng::deterministic_rng(RngAlgorithm::ChaCha),
        );
        let case = std::sync::atomic::AtomicUsize::new(0);
        let done = std::sync::Mutex::new(std::collections::BTreeMap::<String, usize>::new());
        runner
            .run(&prop::collection::vec(op(), 5..30), |ops| {
                let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                rt.block_on(async {
                    let org = db.org(&format!("prop{n}"), &format!("Prop {n}")).await;
                    let mut tx = db.app.begin(&db.staff(&org, "Prop")).await.unwrap();
                    let w = world(&mut tx).await;
                    // Some service-charge money to start with, so that payments go through
                    // until the bills outgrow it.
                    let bank = funded_bank(&mut tx, &w, 100_000).await;
                    let mut s = State {
                        bills: vec![],
                        runs: vec![],
                        payments: vec![],
                        n: 0,
                    };
                    for op in &ops {
                        let journals = count(&mut tx, "journal").await;
                        let runs = count(&mut tx, "payment_run").await;
                        let refused = apply(&mut tx, &w, bank, &mut s, op).await;
                        if refused {
                            assert_eq!(count(&mut tx, "journal").await, journals, "{op:?}");
                            assert_eq!(count(&mut tx, "payment_run").await, runs, "{op:?}");
                        } else {
                            let kind = format!("{op:?}");
                            let kind = kind.split([' ', '{']).next().unwrap_or_default().to_owned();
                            *done.lock().unwrap().entry(kind).or_default() += 1;
                        }
                        check(&mut tx, &w, bank.1).await;
                    }
                    tx.rollback().await.unwrap();
                });
                Ok(())
            })
            .unwrap();
        // Every kind of step went through at least once across the cases.
        let done = done.into_inner().unwrap();
        for kind in [
            "Bill", "Fund", "Pay", "Hold", "Release", "Schedule", "Approve", "MarkPaid", "Cancel",
            "Reverse",
        ] {
            assert!(
                done.get(kind).copied().unwrap_or(0) > 0,
                "{kind} never succeeded: {done:?}"
            );
        }
    }
}
