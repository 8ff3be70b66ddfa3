//! The product's worked example across the front doors, in Chromium on one running server
//! (issues 5, 7 and 8): a leaseholder signs in to ResidencePort and reports a leak in the main
//! hallway ceiling with a photo; the manager finds it under the site's Issues tab, converts it
//! to a work order and invites the plumber; the plumber opens the e-mailed ContractorPort link,
//! accepts, quotes £450 with a PDF and attaches insurance and a Gas Safe certificate; the
//! manager approves; the plumber completes with two photos and a certificate of works and sends
//! the invoice; the manager submits the bill, an accountant approves it, the manager schedules a
//! payment run from the site's client account, the accountant approves it and marks it paid;
//! the work order closes, and the leaseholder sees the request resolved. The audit trails of
//! the issue, work order, bill and payment read as that story, each step in its actor's name
//! and through its front door.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails by panicking, helpers included"
)]

use proplink_db::bank_accounts::{self as banks, AccountType, BankAccountInput, FileFormat};
use proplink_db::ledger;
use proplink_db::operations::{self as ops, DocumentInput};
use proplink_db::people::{self as db_people, ContactInput, LeaseInput, VendorInput};
use proplink_db::portfolio::{self, BuildingInput, SiteInput, UnitInput};
use proplink_domain::operations::DocumentType;
use proplink_domain::permissions::{BuiltInRole, Scope};
use proplink_domain::uk::{AccountNumber, SortCode};
use proplink_test_support::TestDb;
use proplink_test_support::browser::{Browser, UploadFiles, resident_signs_in};
use proplink_test_support::people::{self, Server};
use uuid::Uuid;

const RESIDENT_EMAIL: &str = "ravi.patel@example.com";
const RESIDENT: &str = "Mr Ravi Patel";
const LEAK: &str = "Leak in the main hallway ceiling";

fn uk_date(d: time::Date) -> String {
    format!("{:02}/{:02}/{}", d.day(), u8::from(d.month()), d.year())
}

fn iso(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
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

/// Submits the form whose action ends with `suffix`, as its button would. (A synthetic mouse
/// click on some of these buttons never returned from chromiumoxide.)
fn submit(suffix: &str) -> String {
    format!(r#"document.querySelector('form[action$="{suffix}"]').requestSubmit(); 'ok'"#)
}

/// What the test set up: the place, the plumber and the money's accounts.
struct Fixture {
    site: Uuid,
    building: Uuid,
    vendor: Uuid,
    bank: Uuid,
}

/// Goldcrest House with Block A and Mr Patel's flat in it, Bright Spark Plumbing (insured, with
/// bank details) and the site's client account holding £1,000 of service charge money.
async fn goldcrest_house(
    db: &TestDb,
    org: &proplink_db::organisation::Organisation,
    server: &Server,
) -> Fixture {
    let key = server.state.settings().data_key.clone();
    let now = time::OffsetDateTime::now_utc();
    let today = now.date();
    let mut tx = db.app.begin(&db.staff(org, "Loader")).await.unwrap();
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
    let building = portfolio::save_building(
        &mut tx,
        None,
        site,
        &BuildingInput {
            reference: "A".into(),
            name: "Block A".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let unit = portfolio::save_unit(
        &mut tx,
        None,
        site,
        &UnitInput {
            reference: "3".into(),
            name: "Flat 3".into(),
            building_id: Some(building),
            unit_type: "flat".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let patel = db_people::save_contact(
        &mut tx,
        None,
        &ContactInput {
            kind: "person".into(),
            title: Some("Mr".into()),
            first_name: Some("Ravi".into()),
            last_name: Some("Patel".into()),
            correspondence: "email".into(),
            emails: vec![RESIDENT_EMAIL.into()],
            roles: vec!["leaseholder".into()],
            ..ContactInput::default()
        },
    )
    .await
    .unwrap();
    db_people::add_lease(
        &mut tx,
        unit,
        &LeaseInput {
            starts_on: Some(time::macros::date!(2016 - 09 - 01)),
            term_years: Some(125),
            holders: vec![patel],
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
            email: Some("jobs@brightspark.example".into()),
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
    let (bank_ledger, suspense) = (
        account(&mut tx, "bank").await,
        account(&mut tx, "suspense").await,
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
    let line = |a: Uuid, p: i64| ledger::NewLine {
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
    Fixture {
        site,
        building,
        vendor,
        bank,
    }
}

/// One audit event of a record: who, through which door, in which request, in what order.
#[derive(Debug, sqlx::FromRow)]
struct Event {
    seq: i64,
    actor_kind: String,
    actor_name: Option<String>,
    channel: String,
    request_id: Option<String>,
}

impl Event {
    fn by(&self) -> (&str, &str, &str) {
        (
            self.actor_kind.as_str(),
            self.actor_name.as_deref().unwrap_or_default(),
            self.channel.as_str(),
        )
    }
}

/// The first event of `table` for `record` matching `filter` (SQL on the event's columns).
async fn event(db: &TestDb, table: &str, record: Uuid, filter: &str) -> Event {
    let mut su = db.superuser().await;
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select seq, actor_kind, actor_name, channel, request_id from audit_event
          where table_name = $1 and record_id = $2 and {filter} order by seq limit 1"
    )))
    .bind(table)
    .bind(record.to_string())
    .fetch_optional(&mut su)
    .await
    .unwrap()
    .unwrap_or_else(|| panic!("no {table} event for {record} where {filter}"))
}

/// The id at the end of a page's URL (`…/bills/{id}`, ignoring any query).
fn id_in(url: &str) -> Uuid {
    let path = url.split('?').next().unwrap();
    Uuid::parse_str(path.rsplit('/').next().unwrap()).unwrap()
}

#[tokio::test]
async fn browser_the_worked_example_runs_from_a_residents_report_to_a_paid_bill_and_a_resolved_request()
 {
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
    let f = goldcrest_house(&db, &org, &server).await;
    let today = time::OffsetDateTime::now_utc().date();
    let files = UploadFiles::new();
    let (portal, admin, contractor_host) = (
        "goldcrest.residenceport.localhost",
        "goldcrest.proplink.localhost",
        "contractorport.localhost",
    );
    let browser = Browser::launch().await;
    let mut su = db.superuser().await;

    // 1. The leaseholder signs in to ResidencePort with an e-mailed code and reports the leak
    // in his building's hallway, with a photo.
    let resident = browser.new_page().await;
    resident_signs_in(&resident, &db, &server.url(portal, ""), RESIDENT_EMAIL).await;
    resident
        .wait_for_text("h1", &format!("Hello, {RESIDENT}"))
        .await;
    resident
        .click_and_wait_navigation(r#"main a[href="/requests/new"]"#)
        .await;
    let communal = format!("building:{}", f.building);
    assert_eq!(
        resident
            .evaluate_string(&format!(
                "document.querySelector('#place option[value=\"{communal}\"]').textContent"
            ))
            .await,
        "A communal area: Block A, Goldcrest House"
    );
    resident
        .evaluate_string(&format!(
            "document.getElementById('place').value = '{communal}'; \
             document.getElementById('category').value = 'water_leak'; 'ok'"
        ))
        .await;
    resident.fill("#title", LEAK).await;
    resident
        .fill(
            "#description",
            "Water is dripping from the ceiling by the lift on the ground floor.",
        )
        .await;
    resident
        .set_files("#photos", &[&files.png("hallway-leak.png")])
        .await;
    resident
        .click_and_wait_navigation(r#"form[action="/requests"] [type=submit]"#)
        .await;
    resident.wait_for_text("h1", LEAK).await;
    resident.wait_for_text("#request-status", "Open").await;
    resident.wait_for_text("main", "hallway-leak.png").await;
    let request_url = resident.url().await;
    let issue = id_in(&request_url);

    // 2. The manager finds it under the site's Issues tab and converts it to a work order.
    let office = browser.new_page().await;
    let maria_session = people::session(&db, &org, &maria).await;
    let olga_session = people::session(&db, &org, &olga).await;
    let sign_in_as = async |token: &str| {
        office
            .set_cookie(&server.url(admin, "/"), "pl_session", token)
            .await;
    };
    sign_in_as(&maria_session).await;
    office
        .goto(&server.url(admin, &format!("/sites/{}", f.site)))
        .await;
    office
        .click_and_wait_navigation(&format!(r#"nav a[href="/sites/{}/issues"]"#, f.site))
        .await;
    office.wait_for_text("main table", LEAK).await;
    office
        .click_and_wait_navigation(&format!(r#"main table a[href="/issues/{issue}"]"#))
        .await;
    office
        .wait_for_text("main", &format!("by {RESIDENT}"))
        .await;
    office.wait_for_text("main", "Block A").await;
    office
        .wait_for_text(
            "main",
            &format!("Created by {RESIDENT} via ResidencePort on "),
        )
        .await;
    office.wait_for(r#"img[src$="/thumbnail"]"#).await;
    office
        .click_and_wait_navigation(&format!(r#"a[href="/work-orders/new?issue={issue}"]"#))
        .await;
    assert_eq!(
        office
            .evaluate_string("document.getElementById('wo-title').value")
            .await,
        LEAK
    );
    office
        .click_and_wait_navigation(r#"form[action="/work-orders"] [type=submit]"#)
        .await;
    office
        .wait_for_text(".pl-flash", "Invite contractors")
        .await;
    let work_order_url = office.url().await;
    let wo = id_in(&work_order_url);
    office
        .evaluate_string(&format!(
            "document.getElementById('wo-vendor').value = '{}'; 'ok'",
            f.vendor
        ))
        .await;
    office
        .click_and_wait_navigation(r#"form[action$="/invite"] [type=submit]"#)
        .await;
    office.wait_for_text(".pl-flash", "Invitation sent").await;

    // 3. The plumber opens the e-mailed link, accepts, quotes with a PDF and attaches their
    // insurance and Gas Safe registration.
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
    assert!(link.starts_with(&server.url(contractor_host, "/")));
    let plumber = browser.new_page().await;
    plumber.goto(&link).await;
    plumber
        .wait_for_text("#invitation-status", "invited to quote")
        .await;
    assert!(
        plumber.url().await.ends_with("/job"),
        "the token leaves the address bar"
    );
    plumber.wait_for_text("main", LEAK).await;
    plumber.click_and_wait_navigation("#accept").await;
    plumber.wait_for_text(".pl-flash", "accepted").await;
    plumber.fill("#quote-net", "375.00").await;
    plumber.fill("#quote-vat", "75.00").await;
    plumber
        .fill("#quote-valid", &uk_date(today + time::Duration::days(30)))
        .await;
    plumber
        .set_files("#quote-document", &[&files.pdf("quote.pdf")])
        .await;
    plumber
        .click_and_wait_navigation("#quote-form [type=submit]")
        .await;
    plumber
        .wait_for_text(".pl-flash", "sent to the manager")
        .await;
    for (kind, number, file) in [
        ("public_liability", "PL-2026-0091", "public-liability.pdf"),
        ("gas_safe", "GS-123456", "gas-safe.pdf"),
    ] {
        plumber.fill("#cert-number", number).await;
        plumber
            .evaluate_string(&format!(
                "document.getElementById('cert-type').value = '{kind}'; 'ok'"
            ))
            .await;
        if kind == "public_liability" {
            plumber.fill("#cert-sum", "5000000").await;
        }
        plumber
            .fill("#cert-expires", &uk_date(today + time::Duration::days(300)))
            .await;
        plumber.set_files("#cert-file", &[&files.pdf(file)]).await;
        plumber
            .click_and_wait_navigation("#certificate-form [type=submit]")
            .await;
        plumber
            .wait_for_text(".pl-flash", "Certificate uploaded")
            .await;
        plumber.wait_for_text("main", number).await;
    }

    // 4. The manager approves the quotation.
    office.bring_to_front().await;
    office.goto(&work_order_url).await;
    office.wait_for_text("main", "£450.00").await;
    office.evaluate_string(&submit("/approve")).await;
    office
        .wait_for_text(".pl-flash", "Quotation approved")
        .await;

    // 5. The plumber completes the work with two photos and a certificate of works, then
    // sends the invoice.
    plumber.bring_to_front().await;
    plumber.goto(&server.url(contractor_host, "/job")).await;
    plumber
        .wait_for_text("#invitation-status", "the work is yours")
        .await;
    plumber
        .set_files(
            "#complete-photos",
            &[&files.png("before.png"), &files.png("after.png")],
        )
        .await;
    plumber
        .set_files(
            "#complete-certificate",
            &[&files.pdf("certificate-of-works.pdf")],
        )
        .await;
    plumber
        .fill(
            "#complete-note",
            "Replaced the joint on the riser; ceiling dried out.",
        )
        .await;
    plumber
        .click_and_wait_navigation("#complete-form [type=submit]")
        .await;
    plumber.wait_for_text(".pl-flash", "marked complete").await;
    plumber
        .wait_for_text("#wo-status", "Completed, pending review")
        .await;
    plumber.fill("#invoice-number", "INV-1042").await;
    plumber.fill("#invoice-net", "375.00").await;
    plumber.fill("#invoice-vat", "75.00").await;
    plumber.fill("#invoice-total", "450.00").await;
    plumber
        .set_files("#invoice-document", &[&files.pdf("INV-1042.pdf")])
        .await;
    plumber
        .click_and_wait_navigation("#invoice-form [type=submit]")
        .await;
    plumber.wait_for_text("main", "INV-1042").await;
    let photos: i64 = sqlx::query_scalar(
        "select count(*) from stored_file where work_order_id = $1 and purpose = 'photo'
            and uploaded_by = 'Bright Spark Plumbing'",
    )
    .bind(wo)
    .fetch_one(&mut su)
    .await
    .unwrap();
    assert_eq!(photos, 2);

    // 6. The bill, coded to the work order, is submitted by the manager and approved by an
    // accountant, a second person.
    office.bring_to_front().await;
    office.goto(&work_order_url).await;
    office.wait_for_text("#wo-status", "Invoiced").await;
    office
        .click_and_wait_navigation(r#"main a[href^="/bills/"]"#)
        .await;
    let bill_url = office.url().await;
    let bill = id_in(&bill_url);
    office
        .wait_for_text(
            "main",
            "Bright Spark Plumbing submitted invoice INV-1042 for £450.00 via ContractorPort on ",
        )
        .await;
    office.wait_for_text("main", "Coded to WO-").await;
    office.evaluate_string(&submit("/submit")).await;
    office
        .wait_for_text(".pl-flash", "Submitted for approval")
        .await;
    sign_in_as(&olga_session).await;
    office.goto(&bill_url).await;
    office.evaluate_string(&submit("/approve")).await;
    office
        .wait_for_text(".pl-flash", "Approved and posted as BIL-")
        .await;

    // 7. The manager schedules a payment run from the client account; the accountant approves
    // it and marks it paid once the bank confirms.
    sign_in_as(&maria_session).await;
    office.goto(&server.url(admin, "/payments")).await;
    office
        .evaluate_string(&set_and_submit(&[
            ("bank", f.bank.to_string()),
            ("due_by", iso(today + time::Duration::days(60))),
        ]))
        .await;
    office
        .wait_for_text("main", "Bright Spark Plumbing — £450.00")
        .await;
    office
        .evaluate_string(&set_and_submit(&[("payment_date", iso(today))]))
        .await;
    office
        .wait_for_text(".pl-flash", "someone else now approves the run")
        .await;
    let run_url = office.url().await;
    sign_in_as(&olga_session).await;
    office.goto(&run_url).await;
    office.evaluate_string(&submit("/approve")).await;
    office
        .wait_for_text(".pl-flash", "Approved: download the bank file")
        .await;
    office.evaluate_string(&submit("/paid")).await;
    office
        .wait_for_text(".pl-flash", "Marked paid and posted")
        .await;

    // 8. The work order closed when its bill was paid, and leads to the bill and the payment;
    // the issue is resolved.
    sign_in_as(&maria_session).await;
    office.goto(&work_order_url).await;
    office.wait_for_text("#wo-status", "Closed").await;
    office.wait_for_text("main", "PAY-").await;
    office
        .click_and_wait_navigation(r#"main a[href^="/supplier-payments/"]"#)
        .await;
    let payment = id_in(&office.url().await);
    office
        .wait_for_text("main", "Olga Finance marked it paid via admin")
        .await;
    office.goto(&bill_url).await;
    for said in [
        "Maria Lopez submitted it for approval via admin",
        "Olga Finance approved it as BIL-",
        "Maria Lopez put it in a payment run to pay £450.00 via admin",
        "recorded it paid in full via admin",
    ] {
        office.wait_for_text("main", said).await;
    }
    office
        .goto(&server.url(admin, &format!("/issues/{issue}")))
        .await;
    office.wait_for_text("#issue-status", "Resolved").await;

    // 9. The leaseholder, back in his own tab, sees his request resolved.
    resident.bring_to_front().await;
    resident.goto(&request_url).await;
    resident.wait_for_text("#request-status", "Resolved").await;
    resident
        .wait_for_text("main", "This has been resolved.")
        .await;
    resident.goto(&server.url(portal, "/requests")).await;
    resident.wait_for_text("main table", "Resolved").await;

    // The audit trails line up: each step in its actor's name, through its front door, in
    // order; the payment that closed the work resolved the issue in the same request.
    let reported = event(&db, "issue", issue, "operation = 'insert'").await;
    assert_eq!(reported.by(), ("leaseholder", RESIDENT, "residenceport"));
    let raised = event(&db, "work_order", wo, "operation = 'insert'").await;
    assert_eq!(raised.by(), ("staff", "Maria Lopez", "admin"));
    let quoted: Uuid = sqlx::query_scalar("select id from quotation where work_order_id = $1")
        .bind(wo)
        .fetch_one(&mut su)
        .await
        .unwrap();
    let quoted = event(&db, "quotation", quoted, "operation = 'insert'").await;
    assert_eq!(
        quoted.by(),
        ("contractor", "Bright Spark Plumbing", "contractorport")
    );
    let invoiced = event(&db, "bill", bill, "operation = 'insert'").await;
    assert_eq!(
        invoiced.by(),
        ("contractor", "Bright Spark Plumbing", "contractorport")
    );
    let approved = event(&db, "bill", bill, "changes->'status'->>'new' = 'approved'").await;
    assert_eq!(approved.by(), ("staff", "Olga Finance", "admin"));
    let paid = event(
        &db,
        "supplier_payment",
        payment,
        "changes->'status'->>'new' = 'paid'",
    )
    .await;
    assert_eq!(paid.by(), ("staff", "Olga Finance", "admin"));
    let resolved = event(
        &db,
        "issue",
        issue,
        "changes->'status'->>'new' = 'resolved'",
    )
    .await;
    assert_eq!(resolved.by(), ("staff", "Olga Finance", "admin"));
    assert!(
        paid.request_id.is_some() && resolved.request_id == paid.request_id,
        "{paid:?} {resolved:?}"
    );
    // (Within the paying request the order of its writes is the code's affair.)
    let order = [&reported, &raised, &quoted, &invoiced, &approved, &paid];
    assert!(
        order.windows(2).all(|w| w[0].seq < w[1].seq),
        "the story's events in its order: {order:?}"
    );
    browser.close().await;
}
