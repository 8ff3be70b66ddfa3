//! The worked example in Chromium (issue 5): the manager records an issue with a photo,
//! converts it to a work order and invites a contractor; the contractor opens the e-mailed link
//! on ContractorPort, accepts, quotes with a PDF and uploads a certificate; the manager
//! approves; the contractor completes with two photos; the manager sees it pending review.
//! And the money (issue 7): the manager enters the plumber's bill coded to the job, an
//! accountant approves it, the manager schedules a payment run, the accountant approves it and
//! marks it paid, and the work order is closed.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails by panicking, helpers included"
)]

use proplink_auth::seal::DataKey;
use proplink_db::operations::{self as ops, DocumentInput};
use proplink_db::people::{self as db_people, VendorInput};
use proplink_db::portfolio::{self, SiteInput, UnitInput};
use proplink_domain::operations::DocumentType;
use proplink_domain::permissions::{BuiltInRole, Scope};
use proplink_test_support::TestDb;
use proplink_test_support::browser::Browser;
use proplink_test_support::people::{self, Server};
use std::path::PathBuf;

/// A 2 × 1 pixel PNG, so the server has a real image to decode and thumbnail.
const TINY_PNG: [u8; 72] = [
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 2, 0, 0, 0, 1, 8, 2, 0,
    0, 0, 123, 64, 232, 221, 0, 0, 0, 15, 73, 68, 65, 84, 120, 156, 99, 144, 245, 187, 241, 255,
    255, 127, 0, 11, 149, 4, 65, 239, 129, 131, 79, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
];
const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n";

/// Files on disk for the browser to upload.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("proplink-browser-files-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in [
            ("leak.png", &TINY_PNG[..]),
            ("before.png", &TINY_PNG[..]),
            ("after.png", &TINY_PNG[..]),
            ("quote.pdf", PDF),
            ("gas-safe.pdf", PDF),
        ] {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn in_days(days: i64) -> String {
    let d = time::OffsetDateTime::now_utc().date() + time::Duration::days(days);
    format!("{:02}/{:02}/{}", d.day(), u8::from(d.month()), d.year())
}

#[tokio::test]
async fn browser_manager_and_contractor_take_a_leak_from_issue_to_completed_work() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let maria = people::member(
        &db,
        &org,
        "maria@goldcrest.example",
        "Maria Lopez",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let mut tx = db.app.begin(&db.staff(&org, "Loader")).await.unwrap();
    let site = portfolio::save_site(
        &mut tx,
        None,
        &SiteInput {
            reference: "GC-001".into(),
            name: "Goldcrest House".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    portfolio::save_unit(
        &mut tx,
        None,
        site,
        &UnitInput {
            reference: "3".into(),
            name: "Flat 3".into(),
            unit_type: "flat".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let vendor = db_people::save_vendor(
        &mut tx,
        &DataKey::generate(),
        None,
        &VendorInput {
            name: "Bright Spark Plumbing".into(),
            trade: "Plumbing".into(),
            email: Some("jobs@brightspark.example".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    ops::add_vendor_document(
        &mut tx,
        vendor,
        &DocumentInput {
            doc_type: DocumentType::PublicLiability,
            reference_number: "PL-778".into(),
            issuer: Some("Aviva".into()),
            sum_insured_pence: Some(500_000_000),
            expires_on: time::OffsetDateTime::now_utc().date() + time::Duration::days(200),
        },
        time::OffsetDateTime::now_utc().date(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let files = Files::new();
    let server = Server::start(&db).await;
    let admin = "goldcrest.proplink.localhost";
    let browser = Browser::launch().await;
    let manager = browser.new_page().await;
    let token = people::session(&db, &org, &maria).await;
    manager
        .set_cookie(&server.url(admin, "/"), "pl_session", &token)
        .await;

    // The manager records the issue with a photo.
    manager
        .goto(&server.url(admin, &format!("/issues/new?site={site}")))
        .await;
    manager
        .fill("#issue-title", "Water through the kitchen ceiling")
        .await;
    manager
        .evaluate_string(
            "document.getElementById('issue-place').selectedIndex = 1; \
             document.getElementById('issue-category').value = 'water_leak'; 'ok'",
        )
        .await;
    manager
        .set_files("#issue-photos", &[&files.path("leak.png")])
        .await;
    manager
        .click_and_wait_navigation(r#"form[action="/issues"] [type=submit]"#)
        .await;
    manager.wait_for_text(".pl-flash", "Issue recorded").await;
    manager.wait_for(r#"img[src$="/thumbnail"]"#).await;

    // Convert to a work order, then invite the plumber.
    manager
        .click_and_wait_navigation("a[href^=\"/work-orders/new?issue=\"]")
        .await;
    assert_eq!(
        manager
            .evaluate_string("document.getElementById('wo-title').value")
            .await,
        "Water through the kitchen ceiling"
    );
    manager
        .click_and_wait_navigation(r#"form[action="/work-orders"] [type=submit]"#)
        .await;
    manager
        .wait_for_text(".pl-flash", "Invite contractors")
        .await;
    manager
        .evaluate_string(&format!(
            "document.getElementById('wo-vendor').value = '{vendor}'; 'ok'"
        ))
        .await;
    manager
        .click_and_wait_navigation(r#"form[action$="/invite"] [type=submit]"#)
        .await;
    manager.wait_for_text(".pl-flash", "Invitation sent").await;
    let work_order_url = manager.url().await;

    // The contractor opens the e-mailed link.
    let mut su = db.superuser().await;
    let body: String = sqlx::query_scalar(
        "select body_text from email_message where category = 'contractor_invitation'",
    )
    .fetch_one(&mut su)
    .await
    .unwrap();
    let link = body
        .split_whitespace()
        .find(|w| w.starts_with("http://contractorport.localhost"))
        .unwrap()
        .to_owned();
    assert!(link.starts_with(&server.url("contractorport.localhost", "/")));
    let contractor = browser.new_page().await;
    contractor.goto(&link).await;
    contractor
        .wait_for_text("#invitation-status", "invited to quote")
        .await;
    assert!(
        contractor.url().await.ends_with("/job"),
        "the token leaves the address bar"
    );
    contractor.click_and_wait_navigation("#accept").await;
    contractor.wait_for_text(".pl-flash", "accepted").await;
    contractor.fill("#quote-net", "375.00").await;
    contractor.fill("#quote-vat", "75.00").await;
    contractor.fill("#quote-valid", &in_days(30)).await;
    contractor
        .set_files("#quote-document", &[&files.path("quote.pdf")])
        .await;
    contractor
        .click_and_wait_navigation("#quote-form [type=submit]")
        .await;
    contractor
        .wait_for_text(".pl-flash", "sent to the manager")
        .await;
    contractor.fill("#cert-number", "GS-123456").await;
    contractor
        .evaluate_string("document.getElementById('cert-type').value = 'gas_safe'; 'ok'")
        .await;
    contractor.fill("#cert-expires", &in_days(300)).await;
    contractor
        .set_files("#cert-file", &[&files.path("gas-safe.pdf")])
        .await;
    contractor
        .click_and_wait_navigation("#certificate-form [type=submit]")
        .await;
    contractor
        .wait_for_text(".pl-flash", "Certificate uploaded")
        .await;

    // The manager sees the quotation and approves it.
    manager.goto(&work_order_url).await;
    manager.wait_for_text("main", "£450.00").await;
    // (A synthetic mouse click on this button never returned from chromiumoxide; the form
    // is submitted as its button would.)
    manager
        .evaluate_string(
            r#"document.querySelector('form[action$="/approve"]').requestSubmit(); 'ok'"#,
        )
        .await;
    manager
        .wait_for_text(".pl-flash", "Quotation approved")
        .await;

    // The contractor completes the work with two photos.
    contractor
        .goto(&server.url("contractorport.localhost", "/job"))
        .await;
    contractor
        .wait_for_text("#invitation-status", "the work is yours")
        .await;
    contractor
        .set_files(
            "#complete-photos",
            &[&files.path("before.png"), &files.path("after.png")],
        )
        .await;
    contractor.fill("#complete-note", "Replaced the trap").await;
    contractor
        .click_and_wait_navigation("#complete-form [type=submit]")
        .await;
    contractor
        .wait_for_text(".pl-flash", "marked complete")
        .await;
    contractor
        .wait_for_text("#wo-status", "Completed, pending review")
        .await;

    // The manager sees it at once: same rows, no sync.
    manager.goto(&work_order_url).await;
    manager
        .wait_for_text("#wo-status", "Completed, pending review")
        .await;
    let photos: i64 = sqlx::query_scalar(
        "select count(*) from stored_file where work_order_id is not null and purpose = 'photo'
            and uploaded_by = 'Bright Spark Plumbing'",
    )
    .fetch_one(&mut su)
    .await
    .unwrap();
    assert_eq!(photos, 2);
    browser.close().await;
}

/// Sets form fields by id in the page (selects and date inputs included) and submits the
/// form that holds the first one, as its submit button would.
fn set_and_submit(fields: &[(&str, String)]) -> String {
    let sets: String = fields
        .iter()
        .map(|(id, v)| {
            format!(
                "document.getElementById('{id}').value = {};",
                serde_json::Value::String(v.clone())
            )
        })
        .collect();
    let first = fields.first().map_or("", |f| f.0);
    format!("{sets} document.getElementById('{first}').form.requestSubmit(); 'ok'")
}

fn submit(form_action_suffix: &str) -> String {
    format!(
        r#"document.querySelector('form[action$="{form_action_suffix}"]').requestSubmit(); 'ok'"#
    )
}

#[tokio::test]
async fn browser_a_bill_for_the_job_is_approved_by_a_second_person_paid_in_a_run_and_the_job_closes()
 {
    use proplink_db::bank_accounts::{self as banks, AccountType, BankAccountInput, FileFormat};
    use proplink_db::ledger;
    use proplink_db::operations::{Approver, InviteRequest, Location, QuoteInput, WorkOrderInput};
    use proplink_domain::operations::{Priority, QuoteAmounts};
    use proplink_domain::uk::{AccountNumber, SortCode};
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let maria = people::member(
        &db,
        &org,
        "maria@goldcrest.example",
        "Maria Lopez",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let olga = people::member(
        &db,
        &org,
        "olga@goldcrest.example",
        "Olga Finance",
        BuiltInRole::Accountant,
        Scope::AllSites,
    )
    .await;
    let server = Server::start(&db).await;
    let key = server.state.settings().data_key.clone();
    let now = time::OffsetDateTime::now_utc();
    let today = now.date();
    let iso = |d: time::Date| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day());

    let mut tx = db.app.begin(&db.staff(&org, "Loader")).await.unwrap();
    let site = portfolio::save_site(
        &mut tx,
        None,
        &SiteInput {
            reference: "GC-001".into(),
            name: "Goldcrest House".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let vendor = db_people::save_vendor(
        &mut tx,
        &key,
        None,
        &VendorInput {
            name: "Bright Spark Plumbing".into(),
            trade: "Plumbing".into(),
            email: Some("accounts@brightspark.example".into()),
            bank_account_name: Some("Bright Spark Plumbing Ltd".into()),
            bank: Some(db_people::BankDetails {
                sort_code: "404040".into(),
                account_number: "11112222".into(),
            }),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    ops::add_vendor_document(
        &mut tx,
        vendor,
        &DocumentInput {
            doc_type: DocumentType::PublicLiability,
            reference_number: "PL-778".into(),
            issuer: Some("Aviva".into()),
            sum_insured_pence: Some(500_000_000),
            expires_on: today + time::Duration::days(200),
        },
        today,
    )
    .await
    .unwrap();
    // The job: quoted at £375 + £75 VAT, approved and done.
    let (wo, _) = ops::create_work_order(
        &mut tx,
        &WorkOrderInput {
            location: Location {
                site_id: site,
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
            manager_name: "Maria Lopez".into(),
            manager_email: None,
        },
        &[],
        now,
    )
    .await
    .unwrap();
    let invited = ops::invite_contractor(
        &mut tx,
        wo,
        &InviteRequest {
            vendor_id: vendor,
            override_reason: None,
        },
        "Goldcrest",
        &|t: &str| format!("http://contractorport.localhost/{t}"),
        now,
    )
    .await
    .unwrap();
    ops::accept_invitation(&mut tx, invited.invitation_id, now)
        .await
        .unwrap();
    let quote = ops::submit_quotation(
        &mut tx,
        invited.invitation_id,
        &QuoteInput {
            kind: "fixed".into(),
            amounts: QuoteAmounts::parse("375", "75").unwrap(),
            valid_until: today + time::Duration::days(30),
            notes: None,
        },
        now,
    )
    .await
    .unwrap();
    ops::approve_quotation(
        &mut tx,
        quote,
        &Approver {
            name: "Maria Lopez".into(),
            limit_pence: None,
        },
        None,
        "Goldcrest",
        now,
    )
    .await
    .unwrap();
    ops::complete_work(&mut tx, wo, Some("Fixed"), "Bright Spark Plumbing", now)
        .await
        .unwrap();
    // The site's client account, with £1,000 of service charge money in it.
    ledger::ensure_books(&mut tx, site).await.unwrap();
    ledger::ensure_tax_rates(&mut tx).await.unwrap();
    let account = async |tx: &mut proplink_db::TenantTx, role: &str| {
        ledger::control_account(tx, site, role)
            .await
            .unwrap()
            .unwrap()
            .id
    };
    let (bank_ledger, suspense, repairs) = (
        account(&mut tx, "bank").await,
        account(&mut tx, "suspense").await,
        account(&mut tx, "repairs").await,
    );
    let fund = ledger::fund_of_kind(
        &mut tx,
        site,
        proplink_domain::ledger::FundKind::ServiceCharge,
    )
    .await
    .unwrap()
    .unwrap()
    .id;
    let standard = ledger::tax_rates(&mut tx)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.treatment == "standard")
        .unwrap()
        .id;
    let bank = banks::create(
        &mut tx,
        &key,
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
            sites: vec![site],
            ledger_account_id: Some(bank_ledger),
        },
    )
    .await
    .unwrap();
    let line = |a: uuid::Uuid, p: i64| ledger::NewLine {
        account_id: a,
        fund_id: fund,
        amount_pence: p,
        unit_id: None,
        contact_id: None,
        work_order_id: None,
        description: None,
    };
    ledger::post(
        &mut tx,
        &ledger::NewJournal {
            site_id: site,
            date: today - time::Duration::days(30),
            description: "Service charges received".into(),
            source_type: "manual_journal".into(),
            source_id: None,
            lines: vec![line(bank_ledger, 100_000), line(suspense, -100_000)],
        },
        "Loader",
        now,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let admin = "goldcrest.proplink.localhost";
    let browser = Browser::launch().await;
    // Pages share the browser's cookies, so one page changes hands by changing its session.
    let page = browser.new_page().await;
    let maria_session = people::session(&db, &org, &maria).await;
    let olga_session = people::session(&db, &org, &olga).await;
    let manager = &page;
    let accountant = &page;
    let sign_in_as = async |token: &str| {
        page.set_cookie(&server.url(admin, "/"), "pl_session", token)
            .await;
    };
    sign_in_as(&maria_session).await;

    // The manager enters the plumber's invoice, coded to the job, and submits it.
    manager
        .goto(&server.url(admin, &format!("/sites/{site}/bills/new")))
        .await;
    manager
        .evaluate_string(&set_and_submit(&[
            ("vendor", vendor.to_string()),
            ("supplier_reference", "INV-1042".into()),
            ("work_order", wo.to_string()),
            ("issue_date", iso(today)),
            ("description_1", "Repair to the plant room pipework".into()),
            ("account_1", repairs.to_string()),
            ("fund_1", fund.to_string()),
            ("tax_1", standard.to_string()),
            ("net_1", "375.00".into()),
            ("total", "450.00".into()),
        ]))
        .await;
    manager.wait_for_text(".pl-flash", "Draft bill saved").await;
    manager.wait_for_text("main", "matches the quotation").await;
    let bill_url = manager.url().await;
    manager.evaluate_string(&submit("/submit")).await;
    manager
        .wait_for_text(".pl-flash", "Submitted for approval")
        .await;

    // The accountant, a second person, approves it.
    sign_in_as(&olga_session).await;
    accountant.goto(&bill_url).await;
    accountant.evaluate_string(&submit("/approve")).await;
    accountant
        .wait_for_text(".pl-flash", "Approved and posted as BIL-")
        .await;

    // The manager schedules a payment run from the client account.
    sign_in_as(&maria_session).await;
    manager.goto(&server.url(admin, "/payments")).await;
    manager
        .evaluate_string(&set_and_submit(&[
            ("bank", bank.to_string()),
            ("due_by", iso(today + time::Duration::days(60))),
        ]))
        .await;
    manager
        .wait_for_text("main", "Bright Spark Plumbing — £450.00")
        .await;
    manager
        .evaluate_string(&set_and_submit(&[("payment_date", iso(today))]))
        .await;
    manager
        .wait_for_text(".pl-flash", "someone else now approves the run")
        .await;
    let run_url = manager.url().await;

    // The accountant approves the run and marks it paid once the bank confirms.
    sign_in_as(&olga_session).await;
    accountant.goto(&run_url).await;
    accountant.evaluate_string(&submit("/approve")).await;
    accountant
        .wait_for_text(".pl-flash", "Approved: download the bank file")
        .await;
    accountant.evaluate_string(&submit("/paid")).await;
    accountant
        .wait_for_text(".pl-flash", "Marked paid and posted")
        .await;

    // The work order is closed, and its page leads to the bill and the payment.
    sign_in_as(&maria_session).await;
    manager
        .goto(&server.url(admin, &format!("/work-orders/{wo}")))
        .await;
    manager.wait_for_text("#wo-status", "Closed").await;
    manager.wait_for_text("main", "PAY-").await;
    let mut su = db.superuser().await;
    let (status, closed_on_payment): (String, bool) =
        sqlx::query_as("select status, closed_on_payment from work_order where id = $1")
            .bind(wo)
            .fetch_one(&mut su)
            .await
            .unwrap();
    assert_eq!((status.as_str(), closed_on_payment), ("closed", true));
    browser.close().await;
}
