//! A resident's journey through ResidencePort in Chromium (issue 8): a leaseholder signs in
//! with the code e-mailed to her, reads her statement, pays her open demand by card through
//! the embedded test-mode provider and sees her balance drop to £0.00, raises a request with
//! a photo, reads a building notice and downloads a document shared with residents (and not
//! one kept for staff).

#![allow(
    clippy::unwrap_used,
    reason = "a test fails by panicking, helpers included"
)]

use proplink_db::approvals::Signer;
use proplink_db::folders::{self, FolderFile};
use proplink_db::ledger;
use proplink_db::people::{self as db_people, ContactInput, LeaseInput};
use proplink_db::portfolio::{self, BuildingInput, SiteInput, UnitInput};
use proplink_db::receivables::{self as rx, DraftLine, InvoiceInput};
use proplink_db::resident::{self, NewNotice};
use proplink_db::{TenantTx, operations::NewFile};
use proplink_test_support::TestDb;
use proplink_test_support::browser::{Browser, TINY_PDF, UploadFiles, resident_signs_in};
use proplink_test_support::people::Server;
use uuid::Uuid;

const EMAIL: &str = "amelia.hughes@example.com";
const NAME: &str = "Mrs Amelia Hughes";

struct Place {
    site: Uuid,
    unit: Uuid,
    contact: Uuid,
}

/// Goldcrest House, Block A, Flat 3, leased to Mrs Hughes since 2018.
async fn flat_with_leaseholder(tx: &mut TenantTx) -> Place {
    let site = portfolio::save_site(
        tx,
        None,
        &SiteInput {
            reference: "GC-001".into(),
            name: "Goldcrest House".into(),
            // A demand names the landlord and an address for service in England or Wales.
            landlord: Some(portfolio::Landlord {
                name: "Goldcrest Freehold Ltd".into(),
                address: portfolio::Address {
                    line_1: Some("1 Park Row".into()),
                    city: Some("Leeds".into()),
                    postcode: Some("LS1 5HN".into()),
                    ..Default::default()
                },
            }),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let building = portfolio::save_building(
        tx,
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
        tx,
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
    let contact = db_people::save_contact(
        tx,
        None,
        &ContactInput {
            kind: "person".into(),
            title: Some("Mrs".into()),
            first_name: Some("Amelia".into()),
            last_name: Some("Hughes".into()),
            correspondence: "email".into(),
            emails: vec![EMAIL.into()],
            roles: vec!["leaseholder".into()],
            ..ContactInput::default()
        },
    )
    .await
    .unwrap();
    db_people::add_lease(
        tx,
        unit,
        &LeaseInput {
            starts_on: Some(time::macros::date!(2018 - 04 - 01)),
            term_years: Some(125),
            holders: vec![contact],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    Place {
        site,
        unit,
        contact,
    }
}

/// An approved £87.50 reserve fund demand to Mrs Hughes, due in a month.
async fn demand(tx: &mut TenantTx, p: &Place) {
    ledger::ensure_books(tx, p.site).await.unwrap();
    ledger::ensure_tax_rates(tx).await.unwrap();
    let income = ledger::control_account(tx, p.site, "service_charge_income")
        .await
        .unwrap()
        .unwrap()
        .id;
    let fund = ledger::fund_of_kind(tx, p.site, proplink_domain::ledger::FundKind::ServiceCharge)
        .await
        .unwrap()
        .unwrap()
        .id;
    let exempt = ledger::tax_rates(tx)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.treatment == "exempt")
        .unwrap()
        .id;
    let now = time::OffsetDateTime::now_utc();
    let id = rx::save_invoice_draft(
        tx,
        None,
        &InvoiceInput {
            unit_id: p.unit,
            contact_id: p.contact,
            kind: proplink_domain::receivables::InvoiceKind::ServiceCharge,
            reference: Some("Reserve top-up".into()),
            issue_date: Some(now.date()),
            due_date: Some(now.date() + time::Duration::days(30)),
            lines: vec![DraftLine {
                description: "Reserve fund top-up".into(),
                account_id: income,
                fund_id: fund,
                tax_rate_id: exempt,
                net_pence: 8_750,
                period_from: None,
                period_to: None,
            }],
        },
        "Loader",
    )
    .await
    .unwrap();
    rx::submit_invoice(tx, id, &Signer::unchained("Loader"), now)
        .await
        .unwrap();
    rx::approve_invoice(tx, id, &Signer::unchained("Approver"), now)
        .await
        .unwrap();
}

/// The year-end pack in its folder (open to all residents) and the fire risk assessment in
/// Compliance (staff only), stored where the server keeps uploads.
async fn shared_documents(tx: &mut TenantTx, server: &Server, org: Uuid, site: Uuid) {
    let store = server.state.settings().files.clone().unwrap();
    folders::ensure_defaults(tx, site).await.unwrap();
    let list = folders::folders(tx, site, false).await.unwrap();
    for (key, name) in [
        ("year_end_packs", "Year-end pack 2025.pdf"),
        ("compliance", "Fire risk assessment.pdf"),
    ] {
        let folder = list
            .iter()
            .find(|f| f.default_key.as_deref() == Some(key))
            .unwrap();
        let stored = store
            .put(
                org,
                name,
                TINY_PDF.to_vec().into(),
                proplink_files::MediaType::ALL,
            )
            .await
            .unwrap();
        folders::add_file(
            tx,
            folder.id,
            &NewFile {
                sha256: stored.sha256,
                size_bytes: stored.size,
                media_type: stored.media_type.mime().to_owned(),
                object_key: stored.key,
                thumbnail_key: stored.thumbnail_key,
                original_name: name.to_owned(),
                purpose: "document".to_owned(),
                uploaded_by: "Maria Lopez".to_owned(),
            },
            &FolderFile::default(),
            None,
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    }
}

async fn scalar<T>(db: &TestDb, sql: &str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    let mut su = db.superuser().await;
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut su)
        .await
        .unwrap()
}

#[tokio::test]
async fn browser_a_leaseholder_signs_in_pays_her_demand_raises_a_request_and_reads_what_is_shared()
{
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let server = Server::start(&db).await;
    let mut tx = db.app.begin(&db.staff(&org, "Maria Lopez")).await.unwrap();
    let place = flat_with_leaseholder(&mut tx).await;
    demand(&mut tx, &place).await;
    shared_documents(&mut tx, &server, org.id.0, place.site).await;
    let now = time::OffsetDateTime::now_utc();
    resident::publish_notice(
        &mut tx,
        &NewNotice {
            site_id: place.site,
            building_id: None,
            title: "Lift out of service on Monday",
            body: "The lift is being repaired on Monday from 8am.\n\nPlease use the stairs.",
            email_copy: false,
        },
        "Maria Lopez",
        "http://goldcrest.residenceport.localhost",
        &org.name,
        now,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let portal = "goldcrest.residenceport.localhost";
    let files = UploadFiles::new();
    let browser = Browser::launch().await;
    let page = browser.new_page().await;

    // Signing in: her e-mail, then the code e-mailed to her.
    page.goto(&server.url(portal, "/")).await;
    assert!(
        page.url().await.ends_with("/sign-in"),
        "{}",
        page.url().await
    );
    resident_signs_in(&page, &db, &server.url(portal, ""), EMAIL).await;
    page.wait_for_text("h1", &format!("Hello, {NAME}")).await;
    page.wait_for_text("#balance-due", "£87.50").await;
    page.wait_for_text("main", "Flat 3, Goldcrest House").await;
    page.wait_for_text("main", "Lift out of service on Monday")
        .await;

    // The statement: the demand, and what she owes.
    page.click_and_wait_navigation(&format!(r#"a[href="/units/{}/statement"]"#, place.unit))
        .await;
    page.wait_for_text("h1", "Statement: Flat 3").await;
    page.wait_for_text("#closing-balance", "£87.50").await;
    let pdf = page
        .fetch(&format!("/units/{}/statement.pdf", place.unit))
        .await;
    assert_eq!(
        (pdf.status, pdf.content_type.as_str()),
        (200, "application/pdf")
    );
    assert!(pdf.start.starts_with("%PDF"), "{pdf:?}");

    // Paying by card in test mode: the server's amount, confirmed by the signed webhook.
    page.click_and_wait_navigation(r#"main li a[href^="/invoices/"]:not([href$="/pdf"])"#)
        .await;
    page.wait_for_text("#invoice-balance", "£87.50").await;
    page.wait_for_text("main", "test mode").await;
    page.click_and_wait_navigation("#pay-by-card").await;
    assert!(
        page.url().await.contains("/test-mode/checkout/"),
        "{}",
        page.url().await
    );
    page.wait_for_text("main", "TEST MODE").await;
    page.wait_for_text("#test-pay", "Pay £87.50 (test card)")
        .await;
    page.click_and_wait_navigation("#test-pay").await;
    page.wait_for_url_containing("/payments/").await;
    page.wait_for_text("#payment-status", "Paid").await;
    page.wait_for_text("main", "Test mode: no money moved.")
        .await;
    page.click_and_wait_navigation(r#"main a[href^="/invoices/"]"#)
        .await;
    page.wait_for_text("#invoice-balance", "£0.00").await;
    page.wait_for_text("main", "Paid").await;
    page.goto(&server.url(portal, "/")).await;
    page.wait_for_text("#balance-due", "£0.00").await;
    page.wait_for_text("main", "Nothing to pay just now.").await;
    let (kind, who, channel): (String, String, String) = {
        let mut su = db.superuser().await;
        sqlx::query_as(
            "select actor_kind, actor_name, channel from audit_event
              where table_name = 'receipt' and operation = 'insert'",
        )
        .fetch_one(&mut su)
        .await
        .unwrap()
    };
    assert_eq!(
        (kind.as_str(), who.as_str(), channel.as_str()),
        ("leaseholder", NAME, "residenceport")
    );
    let receipts: i64 = scalar(
        &db,
        &format!(
            "select count(*) from email_message where category = 'receipt_confirmation'
              and to_address = '{EMAIL}'"
        ),
    )
    .await;
    assert_eq!(receipts, 1);

    // A request for her flat, with a photo.
    page.goto(&server.url(portal, "/requests/new")).await;
    page.evaluate_string(&format!(
        "document.getElementById('place').value = 'unit:{}'; \
         document.getElementById('category').value = 'structural'; 'ok'",
        place.unit
    ))
    .await;
    page.fill("#title", "Damp patch on the bedroom ceiling")
        .await;
    page.fill("#description", "It has grown since the rain last week.")
        .await;
    page.set_files("#photos", &[&files.png("damp.png")]).await;
    page.click_and_wait_navigation(r#"form[action="/requests"] [type=submit]"#)
        .await;
    page.wait_for_text("h1", "Damp patch on the bedroom ceiling")
        .await;
    page.wait_for_text("#request-status", "Open").await;
    page.wait_for_text("main", "Flat 3").await;
    let photo = page
        .evaluate_string(r#"document.querySelector('a[href*="/photos/"]').getAttribute('href')"#)
        .await;
    let fetched = page.fetch(&photo).await;
    assert_eq!(
        (fetched.status, fetched.content_type.as_str()),
        (200, "image/png")
    );
    assert!(fetched.start.starts_with("\u{89}PNG"), "{fetched:?}");
    let (reporter, channel, photos): (Option<Uuid>, String, i64) = {
        let mut su = db.superuser().await;
        sqlx::query_as(
            "select i.reporter_contact_id, i.channel,
                    (select count(*) from stored_file f where f.issue_id = i.id and f.purpose = 'photo')
               from issue i where i.title = 'Damp patch on the bedroom ceiling'",
        )
        .fetch_one(&mut su)
        .await
        .unwrap()
    };
    assert_eq!(
        (reporter, channel.as_str(), photos),
        (Some(place.contact), "residenceport", 1)
    );
    page.goto(&server.url(portal, "/requests")).await;
    page.wait_for_text("main", "Damp patch on the bedroom ceiling")
        .await;

    // A notice, read (and the read recorded for the manager).
    page.goto(&server.url(portal, "/notices")).await;
    page.wait_for_text("main", "New").await;
    page.click_and_wait_navigation(r#"main a[href^="/notices/"]"#)
        .await;
    page.wait_for_text("h1", "Lift out of service on Monday")
        .await;
    page.wait_for_text("main", "Please use the stairs.").await;
    let reads: i64 = scalar(&db, "select count(*) from notice_read").await;
    assert_eq!(reads, 1);

    // Documents: the year-end pack downloads; the staff-only assessment is not offered.
    page.goto(&server.url(portal, "/documents")).await;
    page.wait_for_text("main", "Year-end pack 2025.pdf").await;
    assert!(!page.text("main").await.contains("Fire risk assessment"));
    let href = page
        .evaluate_string(r#"document.querySelector('a[href^="/documents/"]').getAttribute('href')"#)
        .await;
    let pack = page.fetch(&href).await;
    assert_eq!(
        (pack.status, pack.content_type.as_str()),
        (200, "application/pdf")
    );
    assert!(pack.disposition.starts_with("attachment"), "{pack:?}");
    assert!(pack.start.starts_with("%PDF-1.4"), "{pack:?}");
    assert_eq!(pack.size, TINY_PDF.len() as u64);
    let staff_only: Uuid = scalar(
        &db,
        "select id from stored_file where original_name = 'Fire risk assessment.pdf'",
    )
    .await;
    assert_eq!(
        page.fetch(&format!("/documents/{staff_only}")).await.status,
        404
    );
    let downloads: Vec<String> = {
        let mut su = db.superuser().await;
        sqlx::query_scalar("select detail from file_access where action = 'download'")
            .fetch_all(&mut su)
            .await
            .unwrap()
    };
    assert_eq!(downloads, ["ResidencePort"]);
    browser.close().await;
}
