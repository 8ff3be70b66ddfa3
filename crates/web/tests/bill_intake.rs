//! Bills arriving with their supplier's invoice (issue 7; docs-spec §2.6 "Creditor invoices
//! (bills)"): the contractor who completed a work order sends their invoice through
//! ContractorPort and it becomes a draft bill coded to the work order, with the file, audited
//! as the contractor; a manager uploads the invoice with a bill they enter and downloads it
//! again (no other organisation can); a draft, including one sent back by its approver, is
//! corrected on its edit page and a bill past draft is not. Each refusal says why and saves
//! nothing.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails by panicking, helpers included"
)]

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use proplink_auth::seal::DataKey;
use proplink_db::operations::{self as ops, DocumentInput};
use proplink_db::organisation::Organisation;
use proplink_db::people::{self, VendorInput};
use proplink_db::portfolio::{self, SiteInput};
use proplink_domain::operations::DocumentType;
use proplink_domain::permissions::{BuiltInRole, Scope};
use proplink_test_support::TestDb;
use proplink_test_support::people::{self as staff_people, TestMember};
use proplink_web::AppState;
use std::net::SocketAddr;
use tower::ServiceExt;
use uuid::Uuid;

/// A 1×1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n";

fn png() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(PNG)
        .unwrap()
}

struct Reply {
    status: StatusCode,
    location: String,
    set_cookie: String,
    content_type: String,
    disposition: String,
    bytes: Vec<u8>,
    body: String,
}

/// A client on one host with one cookie.
struct Client {
    app: Router,
    host: String,
    cookie: String,
}

/// A file field of a form: (field, file name, content).
type Upload<'a> = (&'a str, &'a str, Vec<u8>);

/// A form sent that must be refused: its fields, its files, and what the refusal says.
type Refusal<'a> = (&'a [(&'a str, &'a str)], Vec<Upload<'a>>, &'a str);

enum Form<'a> {
    None,
    Url(&'a [(&'a str, &'a str)]),
    Multipart(&'a [(&'a str, &'a str)], &'a [Upload<'a>]),
}

impl Client {
    async fn send(&self, method: &str, path: &str, form: Form<'_>) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.host)
            .header(header::COOKIE, &self.cookie)
            .header("sec-fetch-site", "same-origin");
        let body = match form {
            Form::None => Body::empty(),
            Form::Url(pairs) => {
                req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(
                    form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(pairs)
                        .finish(),
                )
            }
            Form::Multipart(fields, files) => {
                let boundary = "----proplinktestboundary";
                let mut b = Vec::new();
                for (k, v) in fields {
                    b.extend_from_slice(
                        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                            .as_bytes(),
                    );
                }
                for (k, name, bytes) in files {
                    b.extend_from_slice(
                        format!(
                            "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                        )
                        .as_bytes(),
                    );
                    b.extend_from_slice(bytes);
                    b.extend_from_slice(b"\r\n");
                }
                b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
                req = req.header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                );
                Body::from(b)
            }
        };
        let mut req = req.body(body).unwrap();
        let peer: SocketAddr = "203.0.113.20:40000".parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(peer));
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let h = |name| {
            resp.headers()
                .get(name)
                .map(|v: &header::HeaderValue| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        let (location, set_cookie, content_type, disposition) = (
            h(header::LOCATION),
            h(header::SET_COOKIE),
            h(header::CONTENT_TYPE),
            h(header::CONTENT_DISPOSITION),
        );
        let bytes = axum::body::to_bytes(resp.into_body(), 32 << 20)
            .await
            .unwrap()
            .to_vec();
        Reply {
            status,
            location,
            set_cookie,
            content_type,
            disposition,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, Form::None).await
    }

    async fn post(&self, path: &str, pairs: &[(&str, &str)]) -> Reply {
        self.send("POST", path, Form::Url(pairs)).await
    }

    async fn multipart(&self, path: &str, fields: &[(&str, &str)], files: &[Upload<'_>]) -> Reply {
        self.send("POST", path, Form::Multipart(fields, files))
            .await
    }
}

async fn staff(state: &AppState, db: &TestDb, org: &Organisation, m: &TestMember) -> Client {
    let token = staff_people::session(db, org, m).await;
    Client {
        app: proplink_web::app(state.clone()),
        host: format!("{}.proplink.localhost", org.slug),
        cookie: format!("pl_session={token}"),
    }
}

fn id_after(location: &str, prefix: &str) -> Uuid {
    let rest = location
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{location}"));
    Uuid::parse_str(&rest[..36]).unwrap()
}

/// The redirect's query, decoded: where the flash or the problem is.
fn decoded(location: &str) -> String {
    let q = location.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
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

async fn bills(db: &TestDb) -> i64 {
    scalar(db, "select count(*) from bill").await
}

/// The hex SHA-256 of `bytes`, as PostgreSQL works it out.
async fn sha256(db: &TestDb, bytes: &[u8]) -> String {
    let mut su = db.superuser().await;
    sqlx::query_scalar("select encode(sha256($1), 'hex')")
        .bind(bytes)
        .fetch_one(&mut su)
        .await
        .unwrap()
}

struct Fixture {
    site: Uuid,
    vendor: Uuid,
}

async fn fixture(db: &TestDb, org: &Organisation) -> Fixture {
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
    let vendor = people::save_vendor(
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
    let today = time::OffsetDateTime::now_utc().date();
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
    tx.commit().await.unwrap();
    Fixture { site, vendor }
}

async fn latest_link(db: &TestDb, org: &Organisation) -> String {
    let body: String = {
        let mut su = db.superuser().await;
        sqlx::query_scalar(
            "select body_text from email_message where organisation_id = $1
                and category = 'contractor_invitation' order by created_at desc, id desc limit 1",
        )
        .bind(org.id.0)
        .fetch_one(&mut su)
        .await
        .unwrap()
    };
    let start = body.find("http://contractorport.localhost/").unwrap();
    body[start + "http://contractorport.localhost/".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

fn uk(d: time::Date) -> String {
    format!("{:02}/{:02}/{}", d.day(), u8::from(d.month()), d.year())
}

/// A work order at the fixture's site, raised by `manager`, with Bright Spark's quotation
/// approved: the contractor's ContractorPort client and the work order's id.
async fn awarded_job(
    state: &AppState,
    db: &TestDb,
    org: &Organisation,
    f: &Fixture,
    manager: &Client,
) -> (Client, Uuid) {
    let site = f.site.to_string();
    let raised = manager
        .post(
            "/work-orders",
            &[
                ("site", site.as_str()),
                ("title", "Repair leak in the plant room"),
                ("scope", "Trace and repair the leak."),
                ("trade", "plumbing"),
                ("priority", "high"),
            ],
        )
        .await;
    assert_eq!(raised.status, StatusCode::SEE_OTHER, "{}", raised.body);
    let wo = id_after(&raised.location, "/work-orders/");
    let vendor = f.vendor.to_string();
    let invited = manager
        .post(
            &format!("/work-orders/{wo}/invite"),
            &[("vendor", vendor.as_str())],
        )
        .await;
    assert!(
        decoded(&invited.location).contains("Invitation sent"),
        "{}",
        invited.location
    );
    let token = latest_link(db, org).await;
    let anon = Client {
        app: proplink_web::app(state.clone()),
        host: "contractorport.localhost".into(),
        cookie: String::new(),
    };
    let opened = anon.get(&format!("/{token}")).await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER);
    let spark = Client {
        cookie: opened.set_cookie.split(';').next().unwrap().to_owned(),
        ..anon
    };
    spark.post("/job/accept", &[]).await;
    let valid = uk(time::OffsetDateTime::now_utc().date() + time::Duration::days(60));
    let quoted = spark
        .multipart(
            "/job/quote",
            &[
                ("kind", "fixed"),
                ("net", "375.00"),
                ("vat", "75.00"),
                ("valid_until", valid.as_str()),
            ],
            &[("document", "quote.pdf", PDF.to_vec())],
        )
        .await;
    assert!(
        decoded(&quoted.location).contains("sent to the manager"),
        "{}",
        quoted.location
    );
    let quotation: Uuid = scalar(
        db,
        &format!("select id from quotation where work_order_id = '{wo}'"),
    )
    .await;
    let approved = manager
        .post(&format!("/quotations/{quotation}/approve"), &[])
        .await;
    assert!(
        decoded(&approved.location).contains("Quotation approved"),
        "{}",
        approved.location
    );
    (spark, wo)
}

async fn manager_of(state: &AppState, db: &TestDb, org: &Organisation) -> Client {
    let priya = staff_people::member(
        db,
        org,
        "priya@goldcrest.example",
        "Priya Patel",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    staff(state, db, org, &priya).await
}

/// The invoice form's fields.
fn invoice_fields<'a>(
    number: &'a str,
    date: &'a str,
    net: &'a str,
    vat: &'a str,
    total: &'a str,
) -> [(&'a str, &'a str); 5] {
    [
        ("invoice_number", number),
        ("invoice_date", date),
        ("net", net),
        ("vat", vat),
        ("total", total),
    ]
}

#[tokio::test]
async fn a_contractor_invoices_completed_work_as_a_draft_bill_coded_to_the_work_order() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Property").await;
    let f = fixture(&db, &org).await;
    let state = staff_people::state(&db, staff_people::web_settings()).await;
    let manager = manager_of(&state, &db, &org).await;
    let (spark, wo) = awarded_job(&state, &db, &org, &f, &manager).await;
    let today = uk(time::OffsetDateTime::now_utc().date());
    let good = invoice_fields("INV-2001", &today, "375.00", "75.00", "450.00");

    // Before the work is complete there is no invoice form, and an invoice sent anyway is
    // refused with nothing stored.
    let job = spark.get("/job").await;
    assert!(!job.body.contains("Submit invoice"), "{}", job.body);
    let early = spark
        .multipart(
            "/job/invoice",
            &good,
            &[("document", "inv.pdf", PDF.to_vec())],
        )
        .await;
    assert!(
        decoded(&early.location).contains("send your invoice once the work is marked complete"),
        "{}",
        early.location
    );
    assert_eq!(bills(&db).await, 0);

    let done = spark
        .multipart("/job/complete", &[("note", "Replaced the joint")], &[])
        .await;
    assert!(
        decoded(&done.location).contains("marked complete"),
        "{}",
        done.location
    );
    let job = spark.get("/job").await;
    assert!(job.body.contains("Submit invoice"), "{}", job.body);

    // Refusals: each says why, and no bill or e-mail is made.
    let refusals: [Refusal<'_>; 7] = [
        // A PNG pretending to be a PDF: the content decides.
        (&good, vec![("document", "inv.pdf", png())], "is not a PDF"),
        // A type the bill does not take, whatever its name says.
        (
            &good,
            vec![("document", "inv.txt", b"INVOICE 2001: 450.00".to_vec())],
            "is not a file type we accept",
        ),
        (&good, vec![], "Attach your invoice"),
        (
            &invoice_fields("INV-2001", &today, "375.00", "75.00", "460.00"),
            vec![("document", "inv.pdf", PDF.to_vec())],
            "is not the net £375.00 plus the VAT £75.00",
        ),
        (
            &invoice_fields("INV-2001", &today, "0.00", "0", "0.00"),
            vec![("document", "inv.pdf", PDF.to_vec())],
            "The net amount must be more than £0.00",
        ),
        (
            &invoice_fields("INV-2001", &today, "-375.00", "0", "-375.00"),
            vec![("document", "inv.pdf", PDF.to_vec())],
            "is negative",
        ),
        (
            &invoice_fields("INV-2001", &today, "lots", "75.00", "450.00"),
            vec![("document", "inv.pdf", PDF.to_vec())],
            "The net amount",
        ),
    ];
    for (fields, files, expected) in &refusals {
        let r = spark.multipart("/job/invoice", fields, files).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert!(
            decoded(&r.location).contains(expected),
            "{expected}: {}",
            decoded(&r.location)
        );
        let page = spark.get(&r.location).await;
        assert!(page.body.contains("id=\"problem\""), "{}", page.body);
    }
    assert_eq!(bills(&db).await, 0);
    assert_eq!(
        scalar::<i64>(
            &db,
            "select count(*) from email_message where category = 'contractor_invoice'"
        )
        .await,
        0
    );

    // The invoice: a draft bill for the site and contractor, coded to the work order.
    let sent = spark
        .multipart(
            "/job/invoice",
            &good,
            &[("document", "INV-2001.pdf", PDF.to_vec())],
        )
        .await;
    assert!(
        decoded(&sent.location).contains("invoice INV-2001 has been sent to the manager"),
        "{}",
        decoded(&sent.location)
    );
    assert_eq!(bills(&db).await, 1);
    let bill: Uuid = scalar(&db, "select id from bill").await;
    let (site, vendor, work_order, status, source, total, created_by): (
        Uuid,
        Uuid,
        Option<Uuid>,
        String,
        String,
        i64,
        String,
    ) = {
        let mut su = db.superuser().await;
        sqlx::query_as(
            "select site_id, vendor_id, work_order_id, status, source, total_pence, created_by
               from bill",
        )
        .fetch_one(&mut su)
        .await
        .unwrap()
    };
    assert_eq!(
        (site, vendor, work_order, status.as_str(), source.as_str()),
        (f.site, f.vendor, Some(wo), "draft", "contractorport")
    );
    assert_eq!(
        (total, created_by.as_str()),
        (45_000, "Bright Spark Plumbing")
    );
    let (doc_type, doc_sha, doc_name): (String, String, String) = {
        let mut su = db.superuser().await;
        sqlx::query_as("select document_type, document_sha256, document_name from bill")
            .fetch_one(&mut su)
            .await
            .unwrap()
    };
    assert_eq!(doc_type, "application/pdf");
    assert_eq!(doc_sha, sha256(&db, PDF).await);
    assert_eq!(doc_name, "INV-2001.pdf");
    // One line from the work order: repairs and maintenance, the service charge fund, VAT at
    // the standard rate as invoiced.
    let (description, control, fund, treatment, net, vat): (
        String,
        Option<String>,
        String,
        String,
        i64,
        i64,
    ) = {
        let mut su = db.superuser().await;
        sqlx::query_as(
            "select l.description, a.control, f.kind, t.treatment, l.net_pence, l.vat_pence
               from bill_line l
               join ledger_account a on a.id = l.account_id
               join fund f on f.id = l.fund_id
               join tax_rate t on t.id = l.tax_rate_id",
        )
        .fetch_one(&mut su)
        .await
        .unwrap()
    };
    let reference: String = scalar(
        &db,
        &format!("select reference from work_order where id = '{wo}'"),
    )
    .await;
    assert_eq!(
        description,
        format!("{reference} Repair leak in the plant room")
    );
    assert_eq!(
        (control.as_deref(), fund.as_str(), treatment.as_str()),
        (Some("repairs"), "service_charge", "standard")
    );
    assert_eq!((net, vat), (37_500, 7_500));
    // The work order moved to invoiced; the manager was told.
    assert_eq!(
        scalar::<String>(
            &db,
            &format!("select status from work_order where id = '{wo}'")
        )
        .await,
        "invoiced"
    );
    let (to, subject): (String, String) = {
        let mut su = db.superuser().await;
        sqlx::query_as(
            "select to_address, subject from email_message where category = 'contractor_invoice'",
        )
        .fetch_one(&mut su)
        .await
        .unwrap()
    };
    assert_eq!(to, "priya@goldcrest.example");
    assert!(
        subject.contains("INV-2001") && subject.contains(&reference),
        "{subject}"
    );
    // Audited as the contractor, through ContractorPort.
    let (kind, name, channel): (String, Option<String>, String) = {
        let mut su = db.superuser().await;
        sqlx::query_as(
            "select actor_kind, actor_name, channel from audit_event
              where table_name = 'bill' and record_id = $1 and operation = 'insert'",
        )
        .bind(bill.to_string())
        .fetch_one(&mut su)
        .await
        .unwrap()
    };
    assert_eq!(
        (kind.as_str(), name.as_deref(), channel.as_str()),
        (
            "contractor",
            Some("Bright Spark Plumbing"),
            "contractorport"
        )
    );
    assert_eq!(
        scalar::<i64>(
            &db,
            "select count(*) from audit_event where table_name = 'bill_line'
                and actor_kind = 'contractor' and channel = 'contractorport'"
        )
        .await,
        1
    );

    // The contractor sees it and where it is, and can fetch their file back.
    let job = spark.get("/job").await;
    assert!(
        job.body.contains("Invoice INV-2001 dated")
            && job
                .body
                .contains("£450.00: <strong>received: the manager is checking it"),
        "{}",
        job.body
    );
    let own = spark.get(&format!("/job/invoices/{bill}/document")).await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(own.bytes, PDF);
    // The manager's view of the bill: who sent it, how, and the file.
    let page = manager.get(&format!("/bills/{bill}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("From the contractor, through ContractorPort")
    );
    assert!(
        page.body.contains(
            "Bright Spark Plumbing submitted invoice INV-2001 for £450.00 via ContractorPort on "
        ),
        "{}",
        page.body
    );
    assert!(page.body.contains(&format!("/bills/{bill}/document")));
    assert!(page.body.contains(&format!("/bills/{bill}/edit")));
    let file = manager.get(&format!("/bills/{bill}/document")).await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.content_type, "application/pdf");
    assert!(
        file.disposition.starts_with("attachment"),
        "{}",
        file.disposition
    );
    assert_eq!(file.bytes, PDF);

    // The same invoice number again (the work order now invoiced) is refused.
    let again = spark
        .multipart(
            "/job/invoice",
            &good,
            &[("document", "again.pdf", PDF.to_vec())],
        )
        .await;
    assert!(
        decoded(&again.location).contains("invoice INV-2001 is already entered"),
        "{}",
        decoded(&again.location)
    );
    assert_eq!(bills(&db).await, 1);
    // Another invoice for extra work, without VAT, from a contractor not VAT registered:
    // outside the scope of VAT, sent as a photo.
    let extra = spark
        .multipart(
            "/job/invoice",
            &invoice_fields("INV-2002", &today, "40.00", "", "40.00"),
            &[("document", "INV-2002.png", png())],
        )
        .await;
    assert!(
        decoded(&extra.location).contains("INV-2002 has been sent"),
        "{}",
        decoded(&extra.location)
    );
    let (treatment, doc_type): (String, String) = {
        let mut su = db.superuser().await;
        sqlx::query_as(
            "select t.treatment, b.document_type from bill b
               join bill_line l on l.bill_id = b.id
               join tax_rate t on t.id = l.tax_rate_id
              where b.supplier_reference = 'INV-2002'",
        )
        .fetch_one(&mut su)
        .await
        .unwrap()
    };
    assert_eq!(
        (treatment.as_str(), doc_type.as_str()),
        ("outside_scope", "image/png")
    );
    // VAT that no rate gives is refused.
    let odd = spark
        .multipart(
            "/job/invoice",
            &invoice_fields("INV-2003", &today, "100.00", "33.00", "133.00"),
            &[("document", "INV-2003.pdf", PDF.to_vec())],
        )
        .await;
    assert!(
        decoded(&odd.location).contains("matches no VAT rate"),
        "{}",
        decoded(&odd.location)
    );
    assert_eq!(bills(&db).await, 2);
    // Another contractor's session never reaches these invoices' files.
    let stranger = Client {
        cookie: String::new(),
        ..spark
    };
    assert_eq!(
        stranger
            .get(&format!("/job/invoices/{bill}/document"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

/// The new-bill form's fields for one line of £375 + VAT at the standard rate.
async fn bill_fields(
    db: &TestDb,
    org: &Organisation,
    f: &Fixture,
    reference: &str,
    total: &str,
) -> Vec<(&'static str, String)> {
    let mut tx = db.app.begin(&db.staff(org, "Loader")).await.unwrap();
    proplink_db::ledger::ensure_books(&mut tx, f.site)
        .await
        .unwrap();
    proplink_db::ledger::ensure_tax_rates(&mut tx)
        .await
        .unwrap();
    let repairs = proplink_db::ledger::control_account(&mut tx, f.site, "repairs")
        .await
        .unwrap()
        .unwrap()
        .id;
    let fund = proplink_db::ledger::fund_of_kind(
        &mut tx,
        f.site,
        proplink_domain::ledger::FundKind::ServiceCharge,
    )
    .await
    .unwrap()
    .unwrap()
    .id;
    let standard = proplink_db::ledger::tax_rates(&mut tx)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.treatment == "standard")
        .unwrap()
        .id;
    tx.commit().await.unwrap();
    vec![
        ("vendor", f.vendor.to_string()),
        ("supplier_reference", reference.to_owned()),
        ("issue_date", "2026-05-12".to_owned()),
        ("description_1", "Repair to plant room pipework".to_owned()),
        ("account_1", repairs.to_string()),
        ("fund_1", fund.to_string()),
        ("tax_1", standard.to_string()),
        ("net_1", "375.00".to_owned()),
        ("total", total.to_owned()),
    ]
}

fn as_refs<'a>(f: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    f.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn a_manager_uploads_the_suppliers_invoice_and_only_readers_of_the_bill_download_it() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Property").await;
    let other = db.org("rival", "Rival Estates").await;
    let f = fixture(&db, &org).await;
    let state = staff_people::state(&db, staff_people::web_settings()).await;
    let manager = manager_of(&state, &db, &org).await;
    let rival = staff_people::member(
        &db,
        &other,
        "boss@rival.example",
        "Rival Boss",
        BuiltInRole::OrganisationOwner,
        Scope::AllSites,
    )
    .await;
    let outsider = staff(&state, &db, &other, &rival).await;
    let sid = staff_people::member(
        &db,
        &org,
        "sid@goldcrest.example",
        "Sid Site",
        BuiltInRole::SiteManager,
        Scope::AllSites,
    )
    .await;
    let site_manager = staff(&state, &db, &org, &sid).await;
    let path = format!("/sites/{}/bills/new", f.site);
    let form = manager.get(&path).await;
    assert!(form.body.contains("enctype=\"multipart/form-data\""));
    assert!(form.body.contains("name=\"document\" type=\"file\""));

    // A file that is not a PDF, JPEG or PNG is refused, the form kept as typed.
    let fields = bill_fields(&db, &org, &f, "INV-1042", "450.00").await;
    let r = manager
        .multipart(
            &path,
            &as_refs(&fields),
            &[("document", "invoice.png", PDF.to_vec())],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("is not a PNG image"), "{}", r.body);
    assert!(r.body.contains(r#"value="INV-1042""#));
    assert!(r.body.contains(r#"value="375.00""#));
    assert_eq!(bills(&db).await, 0);

    let r = manager
        .multipart(
            &path,
            &as_refs(&fields),
            &[("document", "invoice.png", png())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let bill = id_after(&r.location, "/bills/");
    let (source, doc_type, sha): (String, String, String) = {
        let mut su = db.superuser().await;
        sqlx::query_as("select source, document_type, document_sha256 from bill where id = $1")
            .bind(bill)
            .fetch_one(&mut su)
            .await
            .unwrap()
    };
    assert_eq!(
        (source.as_str(), doc_type.as_str()),
        ("upload", "image/png")
    );
    assert_eq!(sha, sha256(&db, &png()).await);
    let page = manager.get(&format!("/bills/{bill}")).await;
    assert!(
        page.body
            .contains(&format!("href=\"/bills/{bill}/document\""))
    );
    assert!(page.body.contains("invoice.png"));
    let file = manager.get(&format!("/bills/{bill}/document")).await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.content_type, "image/png");
    assert!(
        file.disposition
            .starts_with("attachment; filename=\"invoice.png\""),
        "{}",
        file.disposition
    );
    assert_eq!(file.bytes, png());

    // Another organisation's member, or a member who may not read bills, gets nothing.
    for (who, client) in [
        ("another organisation", &outsider),
        ("a site manager", &site_manager),
    ] {
        let r = client.get(&format!("/bills/{bill}/document")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{who}");
        assert!(r.bytes != png(), "{who}");
    }
    // A bill without a file has no document to download; a form sent without one (or
    // URL-encoded, as before) is entered by hand.
    let plain = bill_fields(&db, &org, &f, "INV-1043", "450.00").await;
    let r = manager.post(&path, &as_refs(&plain)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let by_hand = id_after(&r.location, "/bills/");
    assert_eq!(
        scalar::<String>(
            &db,
            &format!("select source from bill where id = '{by_hand}'")
        )
        .await,
        "admin"
    );
    assert_eq!(
        manager
            .get(&format!("/bills/{by_hand}/document"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Two files for one bill are refused.
    let two = bill_fields(&db, &org, &f, "INV-1044", "450.00").await;
    let r = manager
        .multipart(
            &path,
            &as_refs(&two),
            &[
                ("document", "a.pdf", PDF.to_vec()),
                ("document", "b.png", png()),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Attach one file"), "{}", r.body);
    assert_eq!(bills(&db).await, 2);
}

#[tokio::test]
async fn a_draft_is_corrected_on_its_edit_page_and_a_bill_past_draft_is_not() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Property").await;
    let f = fixture(&db, &org).await;
    let state = staff_people::state(&db, staff_people::web_settings()).await;
    let manager = manager_of(&state, &db, &org).await;
    let ann = staff_people::member(
        &db,
        &org,
        "ann@goldcrest.example",
        "Ann Accountant",
        BuiltInRole::Accountant,
        Scope::AllSites,
    )
    .await;
    let accountant = staff(&state, &db, &org, &ann).await;
    let rita = staff_people::member(
        &db,
        &org,
        "rita@goldcrest.example",
        "Rita Reader",
        BuiltInRole::ReadOnly,
        Scope::AllSites,
    )
    .await;
    let reader = staff(&state, &db, &org, &rita).await;
    let path = format!("/sites/{}/bills/new", f.site);
    let fields = bill_fields(&db, &org, &f, "INV-1042", "450.00").await;
    let r = manager
        .multipart(
            &path,
            &as_refs(&fields),
            &[("document", "INV-1042.pdf", PDF.to_vec())],
        )
        .await;
    let bill = id_after(&r.location, "/bills/");
    let edit = format!("/bills/{bill}/edit");

    // The form holds the draft as saved.
    let form = manager.get(&edit).await;
    assert_eq!(form.status, StatusCode::OK);
    for expected in [
        r#"value="INV-1042""#,
        r#"value="2026-05-12""#,
        r#"value="Repair to plant room pipework""#,
        r#"value="375.00""#,
        r#"value="75.00""#,
        r#"value="450.00""#,
        "INV-1042.pdf is attached",
        &format!(r#"action="/bills/{bill}/edit""#),
    ] {
        assert!(form.body.contains(expected), "{expected}: {}", form.body);
    }
    // Someone who may read bills but not change them is refused.
    assert_eq!(reader.get(&edit).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reader.post(&edit, &as_refs(&fields)).await.status,
        StatusCode::FORBIDDEN
    );

    // A refused change keeps what was typed and changes nothing.
    let mut wrong = fields.clone();
    wrong[1].1 = "INV-1042A".into();
    wrong[7].1 = "400.00".into();
    let r = manager.post(&edit, &as_refs(&wrong)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("not the invoice&#39;s total of £450.00"),
        "{}",
        r.body
    );
    assert!(r.body.contains(r#"value="INV-1042A""#) && r.body.contains(r#"value="400.00""#));
    assert_eq!(
        scalar::<String>(&db, "select supplier_reference from bill").await,
        "INV-1042"
    );

    // The change saved: figures, lines and reference; the document and its source stay.
    let mut right = wrong.clone();
    right.push(("description_2", "Call-out".into()));
    right.push(("account_2", right[4].1.clone()));
    right.push(("fund_2", right[5].1.clone()));
    right.push(("tax_2", right[6].1.clone()));
    right.push(("net_2", "50.00".into()));
    right[8].1 = "540.00".into();
    let r = manager.post(&edit, &as_refs(&right)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(decoded(&r.location).contains("Changes to the draft saved."));
    let (reference, total, source, doc): (String, i64, String, Option<String>) = {
        let mut su = db.superuser().await;
        sqlx::query_as("select supplier_reference, total_pence, source, document_name from bill")
            .fetch_one(&mut su)
            .await
            .unwrap()
    };
    assert_eq!(
        (reference.as_str(), total, source.as_str(), doc.as_deref()),
        ("INV-1042A", 54_000, "upload", Some("INV-1042.pdf"))
    );
    let nets: Vec<i64> = {
        let mut su = db.superuser().await;
        sqlx::query_scalar("select net_pence from bill_line order by line_no")
            .fetch_all(&mut su)
            .await
            .unwrap()
    };
    assert_eq!(nets, vec![40_000, 5_000]);

    // Submitted, it is no longer edited: the form and the save are both refused.
    let r = manager.post(&format!("/bills/{bill}/submit"), &[]).await;
    assert!(
        decoded(&r.location).contains("Submitted for approval"),
        "{}",
        r.location
    );
    let r = manager.get(&edit).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        decoded(&r.location).contains("is awaiting approval: only a draft is changed"),
        "{}",
        decoded(&r.location)
    );
    let mut late = right.clone();
    late[1].1 = "INV-LATE".into();
    let r = manager.post(&edit, &as_refs(&late)).await;
    assert!(
        decoded(&r.location).contains("only a draft is changed"),
        "{}",
        decoded(&r.location)
    );
    assert_eq!(
        scalar::<String>(&db, "select supplier_reference from bill").await,
        "INV-1042A"
    );
    assert!(
        !manager
            .get(&format!("/bills/{bill}"))
            .await
            .body
            .contains(&format!("href=\"{edit}\""))
    );

    // Sent back by the approver, it is a draft again and corrected the same way.
    let r = accountant
        .post(
            &format!("/bills/{bill}/reject"),
            &[("reason", "The call-out was not agreed")],
        )
        .await;
    assert!(
        decoded(&r.location).contains("Sent back to draft"),
        "{}",
        decoded(&r.location)
    );
    let form = manager.get(&edit).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.body
            .contains("Sent back because: The call-out was not agreed")
    );
    let mut corrected = right.clone();
    corrected.retain(|(k, _)| !k.ends_with("_2"));
    corrected[8].1 = "480.00".into();
    let r = manager.post(&edit, &as_refs(&corrected)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        scalar::<i64>(&db, "select total_pence from bill").await,
        48_000
    );
    assert_eq!(
        scalar::<i64>(&db, "select count(*) from bill_line").await,
        1
    );
}
