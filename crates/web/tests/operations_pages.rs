//! Operations end to end over HTTP (issue 5): a manager records an issue with a photo, converts
//! it to a work order and invites a contractor (blocked until the contractor's insurance is on
//! file); the contractor opens the signed link on ContractorPort, quotes with a PDF, is
//! approved, completes with photos; the manager rates and closes, and the issue resolves.
//! Bad input on each step (lying files, negative amounts, double approval, foreign and
//! tampered links, expired links) is refused with a sentence and changes nothing.

#![allow(clippy::unwrap_used, reason = "tests")]

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use proplink_auth::seal::DataKey;
use proplink_db::operations::{self as ops, DocumentInput};
use proplink_db::organisation::Organisation;
use proplink_db::people::{self, VendorInput};
use proplink_db::portfolio::{self, SiteInput, UnitInput};
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
    body: String,
}

/// A client on one host with one cookie.
struct Client {
    app: Router,
    host: String,
    cookie: String,
}

enum Form<'a> {
    None,
    Url(&'a [(&'a str, &'a str)]),
    Multipart(&'a [(&'a str, &'a str)], &'a [(&'a str, &'a str, Vec<u8>)]),
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
        let (location, set_cookie, content_type) = (
            h(header::LOCATION),
            h(header::SET_COOKIE),
            h(header::CONTENT_TYPE),
        );
        let bytes = axum::body::to_bytes(resp.into_body(), 32 << 20)
            .await
            .unwrap();
        Reply {
            status,
            location,
            set_cookie,
            content_type,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, Form::None).await
    }

    async fn post(&self, path: &str, pairs: &[(&str, &str)]) -> Reply {
        self.send("POST", path, Form::Url(pairs)).await
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

fn contractor(state: &AppState) -> Client {
    Client {
        app: proplink_web::app(state.clone()),
        host: "contractorport.localhost".into(),
        cookie: String::new(),
    }
}

fn id_after(location: &str, prefix: &str) -> Uuid {
    let rest = location
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{location}"));
    Uuid::parse_str(&rest[..36]).unwrap()
}

fn decoded(location: &str) -> String {
    let q = location.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

struct Fixture {
    site: Uuid,
    unit: Uuid,
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
    let unit = portfolio::save_unit(
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
    tx.commit().await.unwrap();
    Fixture { site, unit, vendor }
}

async fn latest_link(db: &TestDb, org: &Organisation, category: &str) -> String {
    let mut su = db.superuser().await;
    let body: String = sqlx::query_scalar(
        "select body_text from email_message where organisation_id = $1 and category = $2
          order by created_at desc, id desc limit 1",
    )
    .bind(org.id.0)
    .bind(category)
    .fetch_one(&mut su)
    .await
    .unwrap();
    let start = body.find("http://contractorport.localhost/").unwrap();
    body[start + "http://contractorport.localhost/".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    let mut su = db.superuser().await;
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut su)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_worked_example_from_issue_to_closed_work_order_over_both_front_doors() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Property").await;
    let f = fixture(&db, &org).await;
    let state = staff_people::state(&db, staff_people::web_settings()).await;
    let priya = staff_people::member(
        &db,
        &org,
        "priya@goldcrest.example",
        "Priya Patel",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let manager = staff(&state, &db, &org, &priya).await;

    // 1. The issue, with a photo; a file that lies about its type is refused first.
    let site = f.site.to_string();
    let place = format!("unit:{}", f.unit);
    let fields = [
        ("site", site.as_str()),
        ("place", place.as_str()),
        ("title", "Water through the kitchen ceiling"),
        ("description", "From the flat above"),
        ("category", "water_leak"),
        ("priority", "high"),
        ("reporter_kind", "resident"),
        ("reporter_name", "Mr Patel"),
        ("reporter_email", "patel@example.com"),
        ("channel", "phone"),
    ];
    let lying = manager
        .send(
            "POST",
            "/issues",
            Form::Multipart(&fields, &[("photos", "ceiling.jpg", PDF.to_vec())]),
        )
        .await;
    assert_eq!(lying.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(lying.body.contains("is not a JPEG image"), "{}", lying.body);
    assert_eq!(count(&db, "select count(*) from issue").await, 0);
    let made = manager
        .send(
            "POST",
            "/issues",
            Form::Multipart(&fields, &[("photos", "ceiling.png", png())]),
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let issue = id_after(&made.location, "/issues/");
    let page = manager.get(&format!("/issues/{issue}")).await;
    assert!(page.body.contains("Water through the kitchen ceiling"));
    assert!(page.body.contains("Convert to work order"));
    let photo: Uuid = {
        let mut su = db.superuser().await;
        sqlx::query_scalar("select id from stored_file where issue_id = $1")
            .bind(issue)
            .fetch_one(&mut su)
            .await
            .unwrap()
    };
    let more = manager
        .send(
            "POST",
            &format!("/issues/{issue}/photos"),
            Form::Multipart(&[], &[("photos", "second.png", png())]),
        )
        .await;
    assert!(
        decoded(&more.location).contains("Photos added"),
        "{}",
        more.location
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from stored_file where issue_id is not null"
        )
        .await,
        2
    );
    let thumb = manager.get(&format!("/files/{photo}/thumbnail")).await;
    assert_eq!(
        (thumb.status, thumb.content_type.as_str()),
        (StatusCode::OK, "image/jpeg")
    );
    assert!(manager.get("/issues").await.body.contains("ISS-"));
    assert!(
        manager
            .get(&format!("/sites/{}/issues", f.site))
            .await
            .body
            .contains("Water through the kitchen ceiling")
    );

    // 2. Convert to a work order (pre-filled), raise it.
    let form = manager
        .get(&format!("/work-orders/new?issue={issue}"))
        .await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.body
            .contains("value=\"Water through the kitchen ceiling\"")
    );
    let issue_id = issue.to_string();
    let raised = manager
        .post(
            "/work-orders",
            &[
                ("site", site.as_str()),
                ("issue", issue_id.as_str()),
                ("place", place.as_str()),
                ("title", "Repair leak above Flat 3"),
                ("scope", "Trace and repair the leak; make good the ceiling."),
                ("trade", "plumbing"),
                ("priority", "high"),
                ("target_start", "01/12/2026"),
                ("target_completion", "05/12/2026"),
                ("not_to_exceed", "1,000"),
                ("access_notes", "Keys with the concierge"),
            ],
        )
        .await;
    assert_eq!(raised.status, StatusCode::SEE_OTHER, "{}", raised.body);
    let wo = id_after(&raised.location, "/work-orders/");
    let wo_path = format!("/work-orders/{wo}");

    // 3. Inviting a contractor with no insurance on file is blocked and writes nothing.
    let vendor = f.vendor.to_string();
    let blocked = manager
        .post(&format!("{wo_path}/invite"), &[("vendor", vendor.as_str())])
        .await;
    assert!(
        decoded(&blocked.location).contains("cannot be instructed for Plumbing work"),
        "{}",
        blocked.location
    );
    assert_eq!(
        count(&db, "select count(*) from work_order_invitation").await,
        0
    );
    {
        let mut tx = db.app.begin(&db.staff(&org, "Loader")).await.unwrap();
        ops::add_vendor_document(
            &mut tx,
            f.vendor,
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
    }
    // Preferred for plumbing at this site: starred in the picker.
    let preferred = manager
        .post(
            &format!("/vendors/{}/preferences", f.vendor),
            &[("site", site.as_str()), ("trade", "plumbing")],
        )
        .await;
    assert!(
        decoded(&preferred.location).contains("preferred list"),
        "{}",
        preferred.location
    );
    assert!(
        manager
            .get(&wo_path)
            .await
            .body
            .contains("★ Bright Spark Plumbing")
    );
    let invited = manager
        .post(&format!("{wo_path}/invite"), &[("vendor", vendor.as_str())])
        .await;
    assert!(
        decoded(&invited.location).contains("Invitation sent"),
        "{}",
        invited.location
    );
    let token = latest_link(&db, &org, "contractor_invitation").await;

    // 4. ContractorPort: a tampered or unknown token opens nothing.
    let anon = contractor(&state);
    let mut tampered = token.clone();
    tampered.replace_range(0..1, if token.starts_with('A') { "B" } else { "A" });
    assert_eq!(
        anon.get(&format!("/{tampered}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(anon.get("/not-a-token").await.status, StatusCode::NOT_FOUND);
    assert_eq!(anon.get("/job").await.status, StatusCode::UNAUTHORIZED);
    let opened = anon.get(&format!("/{token}")).await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER);
    let cookie = opened.set_cookie.split(';').next().unwrap().to_owned();
    let spark = Client {
        cookie,
        ..contractor(&state)
    };
    let job = spark.get("/job").await;
    assert_eq!(job.status, StatusCode::OK);
    assert!(job.body.contains("Trace and repair the leak"));
    assert!(job.body.contains("Keys with the concierge"));
    assert!(job.body.contains("Goldcrest Property"));
    spark.post("/job/accept", &[]).await;

    // A quotation whose "PDF" is a PNG, or with a negative amount, is refused; nothing saved.
    let in_60_days = {
        let d = time::OffsetDateTime::now_utc().date() + time::Duration::days(60);
        format!("{:02}/{:02}/{}", d.day(), u8::from(d.month()), d.year())
    };
    let quote_fields = |net: &'static str| {
        [
            ("kind", "fixed"),
            ("net", net),
            ("vat", "75.00"),
            ("valid_until", in_60_days.as_str()),
            ("notes", "Parts included"),
        ]
    };
    let r = spark
        .send(
            "POST",
            "/job/quote",
            Form::Multipart(&quote_fields("375.00"), &[("document", "quote.pdf", png())]),
        )
        .await;
    assert!(
        decoded(&r.location).contains("is not a PDF"),
        "{}",
        r.location
    );
    let r = spark
        .send(
            "POST",
            "/job/quote",
            Form::Multipart(
                &quote_fields("-375"),
                &[("document", "quote.pdf", PDF.to_vec())],
            ),
        )
        .await;
    assert!(
        decoded(&r.location).contains("cannot be negative"),
        "{}",
        r.location
    );
    let r = spark
        .send(
            "POST",
            "/job/quote",
            Form::Multipart(
                &[
                    ("kind", "fixed"),
                    ("net", "375.00"),
                    ("vat", "75.00"),
                    ("valid_until", "31/12/2024"),
                ],
                &[],
            ),
        )
        .await;
    assert!(
        decoded(&r.location).contains("validity date has passed"),
        "{}",
        r.location
    );
    assert_eq!(count(&db, "select count(*) from quotation").await, 0);
    let r = spark
        .send(
            "POST",
            "/job/quote",
            Form::Multipart(
                &quote_fields("375.00"),
                &[("document", "quote.pdf", PDF.to_vec())],
            ),
        )
        .await;
    assert!(
        decoded(&r.location).contains("sent to the manager"),
        "{}",
        r.location
    );

    // 5. The manager approves (within their £5,000 limit); approving twice is refused.
    let quotation: Uuid = {
        let mut su = db.superuser().await;
        sqlx::query_scalar("select id from quotation where work_order_id = $1")
            .bind(wo)
            .fetch_one(&mut su)
            .await
            .unwrap()
    };
    // The contractor's own upload of a certificate is on file, but counts only once verified.
    let cert = spark
        .send(
            "POST",
            "/job/certificates",
            Form::Multipart(
                &[
                    ("doc_type", "gas_safe"),
                    ("reference_number", "GS-1"),
                    ("expires_on", in_60_days.as_str()),
                ],
                &[("file", "gas.pdf", PDF.to_vec())],
            ),
        )
        .await;
    assert!(
        decoded(&cert.location).contains("Certificate uploaded"),
        "{}",
        cert.location
    );
    assert_eq!(
        count(&db, "select count(*) from vendor_document where source = 'contractor' and verified_at is null").await,
        1
    );
    let page = manager.get(&wo_path).await;
    assert!(page.body.contains("£450.00"), "the gross amount is shown");
    let ok = manager
        .post(&format!("/quotations/{quotation}/approve"), &[])
        .await;
    assert!(
        decoded(&ok.location).contains("Quotation approved"),
        "{}",
        ok.location
    );
    let again = manager
        .post(&format!("/quotations/{quotation}/approve"), &[])
        .await;
    assert!(decoded(&again.location).contains("already been approved"));

    // 6. The contractor attends and completes with two photos and a certificate.
    assert!(spark.get("/job").await.body.contains("the work is yours"));
    spark
        .post(
            "/job/progress",
            &[("kind", "attendance"), ("body", "On site 09:10")],
        )
        .await;
    let done = spark
        .send(
            "POST",
            "/job/complete",
            Form::Multipart(
                &[("note", "Replaced the trap and made good")],
                &[
                    ("photos", "before.png", png()),
                    ("photos", "after.png", png()),
                    ("certificate", "works.pdf", PDF.to_vec()),
                ],
            ),
        )
        .await;
    assert!(
        decoded(&done.location).contains("marked complete"),
        "{}",
        done.location
    );
    let page = manager.get(&wo_path).await;
    assert!(page.body.contains("Completed, pending review"));
    assert!(page.body.contains("Bright Spark Plumbing"));

    // 7. The manager rates and closes; the issue is resolved and the reporter told.
    let closed = manager
        .post(
            &format!("{wo_path}/close"),
            &[("rating", "5"), ("note", "Tidy")],
        )
        .await;
    assert!(
        decoded(&closed.location).contains("closed"),
        "{}",
        closed.location
    );
    assert!(
        manager
            .get(&format!("/issues/{issue}"))
            .await
            .body
            .contains("Resolved")
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from email_message where to_address = 'patel@example.com'"
        )
        .await,
        2
    );
    // The contractor's record on the vendor page: one invitation, quoted, completed, rated 5.
    let vendor_page = manager.get(&format!("/vendors/{}", f.vendor)).await;
    assert!(
        vendor_page.body.contains("5.0 of 5"),
        "{}",
        vendor_page.body
    );
    assert!(vendor_page.body.contains("<dt>Quoted</dt><dd>100%</dd>"));
    // Completing again, on the contractor's side, is refused.
    let late = spark
        .send(
            "POST",
            "/job/complete",
            Form::Multipart(&[("note", "again")], &[]),
        )
        .await;
    assert!(
        decoded(&late.location).contains("already been marked complete"),
        "{}",
        late.location
    );

    // The contractor's actions are in the audit log as the contractor, via ContractorPort.
    assert!(
        count(
            &db,
            "select count(*) from audit_event where actor_kind = 'contractor' and channel = 'contractorport'
                and table_name = 'quotation'"
        )
        .await
            >= 1
    );
}

#[tokio::test]
async fn another_organisation_and_expired_links_reach_nothing() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Property").await;
    let other = db.org("rival", "Rival Estates").await;
    let f = fixture(&db, &org).await;
    let state = staff_people::state(&db, staff_people::web_settings()).await;
    let priya = staff_people::member(
        &db,
        &org,
        "priya@goldcrest.example",
        "Priya Patel",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let rival = staff_people::member(
        &db,
        &other,
        "boss@rival.example",
        "Rival Boss",
        BuiltInRole::OrganisationOwner,
        Scope::AllSites,
    )
    .await;
    let manager = staff(&state, &db, &org, &priya).await;
    let outsider = staff(&state, &db, &other, &rival).await;
    let site = f.site.to_string();
    let raised = manager
        .post(
            "/work-orders",
            &[
                ("site", site.as_str()),
                ("title", "Clear gutters"),
                ("scope", "Clear all gutters"),
                ("trade", "general_repairs"),
                ("priority", "low"),
            ],
        )
        .await;
    let wo = id_after(&raised.location, "/work-orders/");
    {
        let mut tx = db.app.begin(&db.staff(&org, "Loader")).await.unwrap();
        ops::add_vendor_document(
            &mut tx,
            f.vendor,
            &DocumentInput {
                doc_type: DocumentType::PublicLiability,
                reference_number: "PL-1".into(),
                issuer: None,
                sum_insured_pence: None,
                expires_on: time::OffsetDateTime::now_utc().date() + time::Duration::days(200),
            },
            time::OffsetDateTime::now_utc().date(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let vendor = f.vendor.to_string();
    manager
        .post(
            &format!("/work-orders/{wo}/invite"),
            &[("vendor", vendor.as_str())],
        )
        .await;
    let token = latest_link(&db, &org, "contractor_invitation").await;

    // Another organisation's staff: the work order does not exist for them.
    assert_eq!(
        outsider.get(&format!("/work-orders/{wo}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        outsider
            .post(&format!("/work-orders/{wo}/cancel"), &[("reason", "x")])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // A session cookie presented under another organisation's id finds nothing.
    let opened = contractor(&state).get(&format!("/{token}")).await;
    let value = opened.set_cookie.split(';').next().unwrap().to_owned();
    let (_, session_token) = value.split_once('.').unwrap();
    let forged = Client {
        cookie: format!("pl_contractor={}.{session_token}", other.id.0),
        ..contractor(&state)
    };
    assert_eq!(forged.get("/job").await.status, StatusCode::UNAUTHORIZED);

    // A month later the link has expired: the page offers a fresh link, sent to the same
    // address only, and the answer reveals nothing.
    state.advance_clock(time::Duration::days(31));
    let expired = contractor(&state).get(&format!("/{token}")).await;
    assert_eq!(expired.status, StatusCode::GONE);
    assert!(expired.body.contains("E-mail me a fresh link"));
    let before = count(
        &db,
        "select count(*) from email_message where category = 'contractor_link'",
    )
    .await;
    let resent = contractor(&state)
        .post(&format!("/{token}/resend"), &[])
        .await;
    assert_eq!(resent.status, StatusCode::OK);
    assert_eq!(
        count(&db, "select count(*) from email_message where category = 'contractor_link' and to_address = 'jobs@brightspark.example'").await,
        before + 1
    );
    let fresh = latest_link(&db, &org, "contractor_link").await;
    assert_eq!(
        contractor(&state).get(&format!("/{fresh}")).await.status,
        StatusCode::SEE_OTHER
    );

    // Cancelled: the link is revoked and a fresh one is not sent. (The manager's session
    // ended with the month that passed, so this is done directly.)
    let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
    ops::cancel_work_order(&mut tx, wo, "Done in-house", "Goldcrest", state.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let revoked = contractor(&state).get(&format!("/{fresh}")).await;
    assert_eq!(revoked.status, StatusCode::GONE);
    contractor(&state)
        .post(&format!("/{fresh}/resend"), &[])
        .await;
    assert_eq!(
        count(
            &db,
            "select count(*) from email_message where category = 'contractor_link'"
        )
        .await,
        before + 1
    );
}

#[tokio::test]
async fn a_quotation_above_the_members_limit_needs_someone_with_a_higher_one() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Property").await;
    let f = fixture(&db, &org).await;
    let state = staff_people::state(&db, staff_people::web_settings()).await;
    let sam = staff_people::member(
        &db,
        &org,
        "sam@goldcrest.example",
        "Sam Coordinator",
        BuiltInRole::MaintenanceCoordinator,
        Scope::AllSites,
    )
    .await;
    let owner = staff_people::member(
        &db,
        &org,
        "olu@goldcrest.example",
        "Olu Owner",
        BuiltInRole::OrganisationOwner,
        Scope::AllSites,
    )
    .await;
    let coordinator = staff(&state, &db, &org, &sam).await;
    let boss = staff(&state, &db, &org, &owner).await;
    let mut tx = db.app.begin(&db.staff(&org, "Loader")).await.unwrap();
    ops::add_vendor_document(
        &mut tx,
        f.vendor,
        &DocumentInput {
            doc_type: DocumentType::PublicLiability,
            reference_number: "PL-1".into(),
            issuer: None,
            sum_insured_pence: None,
            expires_on: time::OffsetDateTime::now_utc().date() + time::Duration::days(200),
        },
        time::OffsetDateTime::now_utc().date(),
    )
    .await
    .unwrap();
    let (wo, _) = ops::create_work_order(
        &mut tx,
        &ops::WorkOrderInput {
            location: ops::Location {
                site_id: f.site,
                ..Default::default()
            },
            title: "Replace boiler flue".into(),
            scope: "Replace".into(),
            trade: "plumbing".to_owned(),
            priority: proplink_domain::operations::Priority::Medium,
            cost_code: None,
            not_to_exceed_pence: None,
            target_start: None,
            target_completion: None,
            access_notes: None,
            manager_name: "Sam Coordinator".into(),
            manager_email: None,
        },
        &[],
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    let url = |t: &str| format!("http://contractorport.localhost/{t}");
    let invited = ops::invite_contractor(
        &mut tx,
        wo,
        &ops::InviteRequest {
            vendor_id: f.vendor,
            override_reason: None,
        },
        "Goldcrest",
        &url,
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    let q = ops::submit_quotation(
        &mut tx,
        invited.invitation_id,
        &ops::QuoteInput {
            kind: "fixed".into(),
            amounts: proplink_domain::operations::QuoteAmounts::parse("2000", "400").unwrap(),
            valid_until: time::OffsetDateTime::now_utc().date() + time::Duration::days(30),
            notes: None,
        },
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // £2,400 is above a maintenance coordinator's £1,000 default.
    let refused = coordinator
        .post(&format!("/quotations/{q}/approve"), &[])
        .await;
    assert!(
        decoded(&refused.location).contains("above your works-approval limit of £1,000.00"),
        "{}",
        refused.location
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from quotation where status = 'submitted'"
        )
        .await,
        1
    );
    // Only someone who may change users sets limits, and never their own.
    let own = coordinator
        .post(
            &format!("/settings/users/{}/approval-limit", sam.membership_id),
            &[("limit", "100000")],
        )
        .await;
    assert_eq!(own.status, StatusCode::FORBIDDEN);
    let junk = boss
        .post(
            &format!("/settings/users/{}/approval-limit", sam.membership_id),
            &[("limit", "lots")],
        )
        .await;
    assert_eq!(junk.status, StatusCode::UNPROCESSABLE_ENTITY);
    let raised = boss
        .post(
            &format!("/settings/users/{}/approval-limit", sam.membership_id),
            &[("limit", "3,000")],
        )
        .await;
    assert_eq!(raised.status, StatusCode::SEE_OTHER, "{}", raised.body);
    assert!(
        boss.get(&format!("/settings/users/{}", sam.membership_id))
            .await
            .body
            .contains("£3,000.00")
    );
    let approved = coordinator
        .post(&format!("/quotations/{q}/approve"), &[])
        .await;
    assert!(
        decoded(&approved.location).contains("Quotation approved"),
        "{}",
        approved.location
    );
}

#[tokio::test]
async fn planned_maintenance_feeds_the_compliance_matrix_and_completions_need_evidence_that_is_what_it_says()
 {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Property").await;
    let other = db.org("rival", "Rival Estates").await;
    let f = fixture(&db, &org).await;
    let state = staff_people::state(&db, staff_people::web_settings()).await;
    let priya = staff_people::member(
        &db,
        &org,
        "priya@goldcrest.example",
        "Priya Patel",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let rival = staff_people::member(
        &db,
        &other,
        "boss@rival.example",
        "Rival Boss",
        BuiltInRole::OrganisationOwner,
        Scope::AllSites,
    )
    .await;
    let manager = staff(&state, &db, &org, &priya).await;
    let outsider = staff(&state, &db, &other, &rival).await;
    let path = format!("/sites/{}/maintenance", f.site);
    let date = |days: i64| {
        let d = time::OffsetDateTime::now_utc().date() + time::Duration::days(days);
        format!("{:02}/{:02}/{}", d.day(), u8::from(d.month()), d.year())
    };
    // A bad first due date is refused with a sentence; nothing is added.
    let bad = manager
        .post(
            &path,
            &[("template", "gas_safety"), ("first_due", "31/02/2027")],
        )
        .await;
    assert!(
        decoded(&bad.location).contains("first due date"),
        "{}",
        bad.location
    );
    assert_eq!(
        count(&db, "select count(*) from maintenance_event").await,
        0
    );
    let overdue = date(-3);
    let later = date(200);
    for (template, due) in [("gas_safety", overdue.as_str()), ("eicr", later.as_str())] {
        let r = manager
            .post(&path, &[("template", template), ("first_due", due)])
            .await;
        assert!(decoded(&r.location).contains("added"), "{}", r.location);
    }
    let page = manager.get(&path).await;
    assert!(page.body.contains("Gas safety") && page.body.contains("Overdue"));
    let dashboard = manager.get("/maintenance").await;
    assert!(dashboard.body.contains("1 overdue"), "{}", dashboard.body);
    assert!(dashboard.body.contains("1 compliant"));
    // The calendar shows the overdue gas safety check in its month, in red; the other
    // organisation's calendar is empty.
    let due = time::OffsetDateTime::now_utc().date() - time::Duration::days(3);
    let month = format!("{}-{:02}", due.year(), u8::from(due.month()));
    let calendar = manager
        .get(&format!("/maintenance/calendar?month={month}"))
        .await;
    assert_eq!(calendar.status, StatusCode::OK);
    assert!(
        calendar.body.contains("pl-status-red\"><a href=\"/sites/")
            && calendar.body.contains("Goldcrest House</a>: Gas safety"),
        "{}",
        calendar.body
    );
    assert!(
        outsider
            .get(&format!("/maintenance/calendar?month={month}"))
            .await
            .body
            .contains("0 planned dates")
    );
    assert_eq!(
        manager
            .get("/maintenance/calendar?month=nonsense")
            .await
            .status,
        StatusCode::OK
    );
    // The other organisation sees none of it.
    assert_eq!(outsider.get(&path).await.status, StatusCode::NOT_FOUND);
    assert!(
        outsider
            .get("/maintenance")
            .await
            .body
            .contains("0 overdue")
    );

    // Evidence that lies about its type is refused, and nothing is recorded.
    let event: Uuid = {
        let mut su = db.superuser().await;
        sqlx::query_scalar("select id from maintenance_event where template_key = 'gas_safety'")
            .fetch_one(&mut su)
            .await
            .unwrap()
    };
    let today = date(0);
    let lying = manager
        .send(
            "POST",
            &format!("/maintenance/events/{event}/complete"),
            Form::Multipart(
                &[("completed_on", today.as_str())],
                &[("evidence", "cp12.pdf", png())],
            ),
        )
        .await;
    assert!(
        decoded(&lying.location).contains("is not a PDF"),
        "{}",
        lying.location
    );
    assert_eq!(
        count(&db, "select count(*) from maintenance_completion").await,
        0
    );
    let done = manager
        .send(
            "POST",
            &format!("/maintenance/events/{event}/complete"),
            Form::Multipart(
                &[("completed_on", today.as_str()), ("notes", "CP12 issued")],
                &[("evidence", "cp12.pdf", PDF.to_vec())],
            ),
        )
        .await;
    assert!(
        decoded(&done.location).contains("Next due"),
        "{}",
        done.location
    );
    let dashboard = manager.get("/maintenance").await;
    assert!(dashboard.body.contains("0 overdue"), "{}", dashboard.body);
    assert!(dashboard.body.contains("2 compliant"));

    // A service agreement with a renewal date.
    let vendor = f.vendor.to_string();
    let site = f.site.to_string();
    let start = date(-300);
    let end = date(40);
    let made = manager
        .post(
            "/service-agreements",
            &[
                ("vendor", vendor.as_str()),
                ("title", "Water hygiene monitoring"),
                ("site", site.as_str()),
                ("pricing_model", "recurring_fee"),
                ("annual_value", "2,400"),
                ("starts_on", start.as_str()),
                ("ends_on", end.as_str()),
                ("notice_days", "30"),
                ("auto_renew", "yes"),
            ],
        )
        .await;
    assert!(
        decoded(&made.location).contains("added"),
        "{}",
        made.location
    );
    let list = manager.get("/service-agreements").await;
    assert!(
        list.body.contains("Water hygiene monitoring")
            && list.body.contains("Renews automatically")
    );
    let backwards = manager
        .post(
            "/service-agreements",
            &[
                ("vendor", vendor.as_str()),
                ("title", "Backwards"),
                ("pricing_model", "fixed_fee"),
                ("starts_on", end.as_str()),
                ("ends_on", start.as_str()),
            ],
        )
        .await;
    assert!(decoded(&backwards.location).contains("ends before it starts"));
    // A monthly schedule from today: the sweep raises its work order for the vendor.
    let agreement: Uuid = {
        let mut su = db.superuser().await;
        sqlx::query_scalar("select id from service_agreement")
            .fetch_one(&mut su)
            .await
            .unwrap()
    };
    let scheduled = manager
        .post(
            &format!("/service-agreements/{agreement}/schedules"),
            &[
                ("site", site.as_str()),
                ("frequency", "monthly"),
                ("first_date", today.as_str()),
                ("trade", "cleaning"),
            ],
        )
        .await;
    assert!(
        decoded(&scheduled.location).contains("Schedule added"),
        "{}",
        scheduled.location
    );
    assert!(
        manager
            .get("/service-agreements")
            .await
            .body
            .contains("Schedule: Monthly")
    );
    let mut tx = db.app.begin(&db.staff(&org, "the sweep")).await.unwrap();
    let swept = proplink_db::maintenance::sweep(
        &mut tx,
        "Goldcrest Property",
        &|t: &str| format!("http://contractorport.localhost/{t}"),
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(swept.work_orders_raised, 1);
    assert_eq!(
        count(
            &db,
            "select count(*) from work_order where title like 'Water hygiene monitoring due %'"
        )
        .await,
        1
    );
    assert_eq!(
        count(&db, "select count(*) from service_agreement").await,
        1
    );
}

#[tokio::test]
async fn a_ticket_is_opened_answered_and_closed_and_stays_in_its_organisation() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Property").await;
    let other = db.org("rival", "Rival Estates").await;
    let f = fixture(&db, &org).await;
    let state = staff_people::state(&db, staff_people::web_settings()).await;
    let priya = staff_people::member(
        &db,
        &org,
        "priya@goldcrest.example",
        "Priya Patel",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let rival = staff_people::member(
        &db,
        &other,
        "boss@rival.example",
        "Rival Boss",
        BuiltInRole::OrganisationOwner,
        Scope::AllSites,
    )
    .await;
    let manager = staff(&state, &db, &org, &priya).await;
    let outsider = staff(&state, &db, &other, &rival).await;
    let site = f.site.to_string();
    let bad = manager
        .post(
            "/tickets",
            &[
                ("site", site.as_str()),
                ("category", "query"),
                ("priority", "medium"),
                ("reporter_name", "Mr Patel"),
                ("reporter_email", "not an address"),
                ("subject", "Service charge question"),
                ("message", "Why did it go up?"),
            ],
        )
        .await;
    assert!(decoded(&bad.location).contains("is not an e-mail address"));
    assert_eq!(count(&db, "select count(*) from ticket").await, 0);
    let made = manager
        .post(
            "/tickets",
            &[
                ("site", site.as_str()),
                ("category", "query"),
                ("priority", "medium"),
                ("reporter_name", "Mr Patel"),
                ("reporter_email", "patel@example.com"),
                ("subject", "Service charge question"),
                ("message", "Why did it go up?"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let id = id_after(&made.location, "/tickets/");
    let path = format!("/tickets/{id}");
    assert!(
        manager
            .get("/tickets")
            .await
            .body
            .contains("Service charge question")
    );
    manager
        .post(
            &format!("{path}/reply"),
            &[("body", "The insurance premium rose."), ("mode", "message")],
        )
        .await;
    let closed_without_reason = manager
        .post(&format!("{path}/status"), &[("to", "closed")])
        .await;
    assert!(decoded(&closed_without_reason.location).contains("why the ticket is closed"));
    manager
        .post(
            &format!("{path}/status"),
            &[("to", "closed"), ("reason", "resolved")],
        )
        .await;
    let page = manager.get(&path).await;
    assert!(page.body.contains("The insurance premium rose."));
    assert!(page.body.contains("data-status=\"closed\""));
    assert_eq!(outsider.get(&path).await.status, StatusCode::NOT_FOUND);
    assert!(
        !outsider
            .get("/tickets")
            .await
            .body
            .contains("Service charge question")
    );
}

#[tokio::test]
async fn a_regular_contractor_signs_in_with_a_code_and_sees_only_their_open_work_orders_here() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Property").await;
    let f = fixture(&db, &org).await;
    let state = staff_people::state(&db, staff_people::web_settings()).await;
    let priya = staff_people::member(
        &db,
        &org,
        "priya@goldcrest.example",
        "Priya Patel",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let manager = staff(&state, &db, &org, &priya).await;
    {
        let mut tx = db.app.begin(&db.staff(&org, "Loader")).await.unwrap();
        ops::add_vendor_document(
            &mut tx,
            f.vendor,
            &DocumentInput {
                doc_type: DocumentType::PublicLiability,
                reference_number: "PL-1".into(),
                issuer: None,
                sum_insured_pence: None,
                expires_on: time::OffsetDateTime::now_utc().date() + time::Duration::days(200),
            },
            time::OffsetDateTime::now_utc().date(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let site = f.site.to_string();
    let raised = manager
        .post(
            "/work-orders",
            &[
                ("site", site.as_str()),
                ("title", "Clear gutters"),
                ("scope", "Clear all gutters"),
                ("trade", "general_repairs"),
                ("priority", "low"),
            ],
        )
        .await;
    let wo = id_after(&raised.location, "/work-orders/");
    let vendor = f.vendor.to_string();
    manager
        .post(
            &format!("/work-orders/{wo}/invite"),
            &[("vendor", vendor.as_str())],
        )
        .await;
    let given = manager
        .post(&format!("/vendors/{}/contractor-account", f.vendor), &[])
        .await;
    assert!(
        decoded(&given.location).contains("account created"),
        "{}",
        given.location
    );
    let twice = manager
        .post(&format!("/vendors/{}/contractor-account", f.vendor), &[])
        .await;
    assert!(decoded(&twice.location).contains("already has"));

    // Signing in: an unknown address gets the same answer and no code.
    let door = contractor(&state);
    let unknown = door
        .post("/account/goldcrest", &[("email", "nobody@example.com")])
        .await;
    assert!(
        unknown
            .body
            .contains("If this address has a ContractorPort account here")
    );
    let asked = door
        .post(
            "/account/goldcrest",
            &[("email", "jobs@brightspark.example")],
        )
        .await;
    assert_eq!(asked.status, StatusCode::OK);
    let code: String = {
        let mut su = db.superuser().await;
        let body: String = sqlx::query_scalar(
            "select body_text from email_message where category = 'sign_in_code'
                and to_address = 'jobs@brightspark.example' order by created_at desc limit 1",
        )
        .fetch_one(&mut su)
        .await
        .unwrap();
        body.split_whitespace()
            .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
            .unwrap()
            .to_owned()
    };
    let wrong = door
        .post(
            "/account/goldcrest/verify",
            &[("email", "jobs@brightspark.example"), ("code", "000000")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    let signed_in = door
        .post(
            "/account/goldcrest/verify",
            &[
                ("email", "jobs@brightspark.example"),
                ("code", code.as_str()),
            ],
        )
        .await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    let account = Client {
        cookie: signed_in.set_cookie.split(';').next().unwrap().to_owned(),
        ..contractor(&state)
    };
    let jobs = account.get("/account/goldcrest/jobs").await;
    assert!(jobs.body.contains("Clear gutters"), "{}", jobs.body);
    let invitation: Uuid = {
        let mut su = db.superuser().await;
        sqlx::query_scalar("select id from work_order_invitation")
            .fetch_one(&mut su)
            .await
            .unwrap()
    };
    // Another invitation id, or another organisation's account page, opens nothing.
    assert_eq!(
        account
            .post(&format!("/account/goldcrest/jobs/{}", Uuid::now_v7()), &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        account.get("/account/nosuchorg").await.status,
        StatusCode::NOT_FOUND
    );
    let opened = account
        .post(&format!("/account/goldcrest/jobs/{invitation}"), &[])
        .await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER);
    let job = Client {
        cookie: opened.set_cookie.split(';').next().unwrap().to_owned(),
        ..contractor(&state)
    };
    assert!(job.get("/job").await.body.contains("Clear all gutters"));
}

#[tokio::test]
async fn an_administrator_adds_a_service_category_and_a_quotation_over_the_cap_needs_it_raised() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Property").await;
    let f = fixture(&db, &org).await;
    let state = staff_people::state(&db, staff_people::web_settings()).await;
    let owner = staff_people::member(
        &db,
        &org,
        "olu@goldcrest.example",
        "Olu Owner",
        BuiltInRole::OrganisationOwner,
        Scope::AllSites,
    )
    .await;
    let manager = staff_people::member(
        &db,
        &org,
        "priya@goldcrest.example",
        "Priya Patel",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let boss = staff(&state, &db, &org, &owner).await;
    let priya = staff(&state, &db, &org, &manager).await;

    let settings = boss.get("/settings").await;
    assert!(settings.body.contains("/settings/service-categories"));
    let page = boss.get("/settings/service-categories").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Heating and gas"));
    assert!(
        page.body
            .contains("Public liability insurance; Gas Safe registration")
    );

    // Bad input: a made-up document type, a default's name, no name. Nothing is added.
    for (form, expected) in [
        (
            vec![("name", "Rope access"), ("document", "tarot")],
            "Choose the documents from the list.",
        ),
        (
            vec![("name", "Lifts"), ("document", "public_liability")],
            "Lifts is already one of the standard categories",
        ),
        (vec![("name", "  ")], "Enter the category's name."),
    ] {
        let refused = boss.post("/settings/service-categories", &form).await;
        assert!(
            decoded(&refused.location).contains(expected),
            "{}",
            refused.location
        );
    }
    assert_eq!(
        count(&db, "select count(*) from vendor_service_category").await,
        0
    );
    // A manager may read the page but not change it.
    assert!(priya.get("/settings/service-categories").await.status == StatusCode::OK);
    let not_theirs = priya
        .post("/settings/service-categories", &[("name", "Rope access")])
        .await;
    assert!(
        matches!(
            not_theirs.status,
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
        ),
        "{}",
        not_theirs.status
    );

    let added = boss
        .post(
            "/settings/service-categories",
            &[
                ("name", "Rope access"),
                ("document", "public_liability"),
                ("document", "employers_liability"),
            ],
        )
        .await;
    assert!(
        decoded(&added.location).contains("Added the Rope access category."),
        "{}",
        added.location
    );
    let page = boss.get("/settings/service-categories").await;
    assert!(
        page.body
            .contains("Public liability insurance; Employers&#x27; liability insurance")
            || page
                .body
                .contains("Public liability insurance; Employers&#39; liability insurance"),
        "{}",
        page.body
    );

    // The new-work-order form offers it; a work order in it asks for its documents.
    assert!(
        priya
            .get(&format!("/work-orders/new?site={}", f.site))
            .await
            .body
            .contains("value=\"rope_access\"")
    );
    let site = f.site.to_string();
    let raised = priya
        .post(
            "/work-orders",
            &[
                ("site", site.as_str()),
                ("title", "Clean the atrium glazing"),
                ("scope", "Rope access clean of the atrium roof glazing"),
                ("trade", "rope_access"),
                ("priority", "low"),
                ("not_to_exceed", "500.00"),
            ],
        )
        .await;
    let wo = id_after(&raised.location, "/work-orders/");
    let wo_path = format!("/work-orders/{wo}");
    assert!(priya.get(&wo_path).await.body.contains("Rope access"));
    let vendor = f.vendor.to_string();
    let blocked = priya
        .post(&format!("{wo_path}/invite"), &[("vendor", vendor.as_str())])
        .await;
    assert!(
        decoded(&blocked.location).contains(
            "cannot be instructed for Rope access work: Public liability insurance is missing; Employers' liability insurance is missing"
        ),
        "{}",
        blocked.location
    );
    {
        let mut tx = db.app.begin(&db.staff(&org, "Loader")).await.unwrap();
        for kind in [
            DocumentType::PublicLiability,
            DocumentType::EmployersLiability,
        ] {
            ops::add_vendor_document(
                &mut tx,
                f.vendor,
                &DocumentInput {
                    doc_type: kind,
                    reference_number: "POL-9".into(),
                    issuer: None,
                    sum_insured_pence: None,
                    expires_on: time::OffsetDateTime::now_utc().date() + time::Duration::days(200),
                },
                time::OffsetDateTime::now_utc().date(),
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let invited = priya
        .post(&format!("{wo_path}/invite"), &[("vendor", vendor.as_str())])
        .await;
    assert!(
        !decoded(&invited.location).contains("problem="),
        "{}",
        invited.location
    );
    let q = {
        let mut tx = db.app.begin(&db.staff(&org, "Loader")).await.unwrap();
        let invitation = ops::invitations(&mut tx, wo).await.unwrap()[0].id;
        let q = ops::submit_quotation(
            &mut tx,
            invitation,
            &ops::QuoteInput {
                kind: "fixed".into(),
                amounts: proplink_domain::operations::QuoteAmounts::parse("500", "100").unwrap(),
                valid_until: time::OffsetDateTime::now_utc().date() + time::Duration::days(30),
                notes: None,
            },
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        q
    };
    // £600 including VAT is above the £500 cap: the page offers to raise it; without the tick
    // the approval is refused and nothing changes.
    assert!(
        priya
            .get(&wo_path)
            .await
            .body
            .contains("raise that amount to £600.00")
    );
    let refused = priya.post(&format!("/quotations/{q}/approve"), &[]).await;
    assert!(
        decoded(&refused.location).contains("above WO-"),
        "{}",
        refused.location
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from quotation where status = 'approved'"
        )
        .await,
        0
    );
    let approved = priya
        .post(
            &format!("/quotations/{q}/approve"),
            &[("raise_not_to_exceed", "yes")],
        )
        .await;
    assert!(
        decoded(&approved.location).contains("Quotation approved"),
        "{}",
        approved.location
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from work_order where status = 'approved' and not_to_exceed_pence = 60000"
        )
        .await,
        1
    );

    // Archived: no longer offered for new work; the work order keeps its category.
    let archived = boss
        .post("/settings/service-categories/rope_access/archive", &[])
        .await;
    assert!(decoded(&archived.location).contains("Archived Rope access"));
    assert!(
        !priya
            .get(&format!("/work-orders/new?site={}", f.site))
            .await
            .body
            .contains("value=\"rope_access\"")
    );
    assert!(priya.get(&wo_path).await.body.contains("Rope access"));
}

#[tokio::test]
async fn site_folders_keep_their_files_to_the_viewers_they_are_opened_to() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Property").await;
    let other = db.org("rival", "Rival Estates").await;
    let f = fixture(&db, &org).await;
    let state = staff_people::state(&db, staff_people::web_settings()).await;
    let priya = staff_people::member(
        &db,
        &org,
        "priya@goldcrest.example",
        "Priya Patel",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let rival = staff_people::member(
        &db,
        &other,
        "boss@rival.example",
        "Rival Boss",
        BuiltInRole::OrganisationOwner,
        Scope::AllSites,
    )
    .await;
    let manager = staff(&state, &db, &org, &priya).await;
    let outsider = staff(&state, &db, &other, &rival).await;

    // The seven default folders appear with their default permissions.
    let docs = manager.get(&format!("/sites/{}/documents", f.site)).await;
    assert_eq!(docs.status, StatusCode::OK);
    for name in [
        "Site documents",
        "Compliance",
        "Insurance",
        "Year-end packs",
        "Section 20",
        "Plans and drawings",
        "Photos",
    ] {
        assert!(docs.body.contains(name), "{name}");
    }
    assert!(docs.body.contains("Staff; all residents of the site"));
    assert_eq!(count(&db, "select count(*) from site_folder").await, 7);
    // Opening the tab again adds nothing.
    manager.get(&format!("/sites/{}/documents", f.site)).await;
    assert_eq!(count(&db, "select count(*) from site_folder").await, 7);

    // A new folder; a duplicate name or a slash is refused.
    let added = manager
        .post(
            &format!("/sites/{}/documents", f.site),
            &[("name", "Fire strategy")],
        )
        .await;
    let folder = id_after(&added.location, "/folders/");
    for (name, expected) in [
        ("fire STRATEGY", "already has a folder called fire STRATEGY"),
        ("a/b", "cannot contain slashes"),
    ] {
        let refused = manager
            .post(&format!("/sites/{}/documents", f.site), &[("name", name)])
            .await;
        assert!(
            decoded(&refused.location).contains(expected),
            "{}",
            refused.location
        );
    }
    assert_eq!(count(&db, "select count(*) from site_folder").await, 8);

    // Upload: a lying file is refused and nothing is recorded; a PDF goes in with an expiry.
    let folder_path = format!("/folders/{folder}");
    let lying = manager
        .send(
            "POST",
            &format!("{folder_path}/files"),
            Form::Multipart(&[], &[("file", "strategy.pdf", png())]),
        )
        .await;
    assert!(
        !decoded(&lying.location).contains("uploaded"),
        "{}",
        lying.location
    );
    let bad_date = manager
        .send(
            "POST",
            &format!("{folder_path}/files"),
            Form::Multipart(
                &[("expires_on", "31/02/2027")],
                &[("file", "strategy.pdf", PDF.to_vec())],
            ),
        )
        .await;
    assert!(
        decoded(&bad_date.location).contains("The expiry date"),
        "{}",
        bad_date.location
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from stored_file where folder_id is not null"
        )
        .await,
        0
    );
    let uploaded = manager
        .send(
            "POST",
            &format!("{folder_path}/files"),
            Form::Multipart(
                &[("expires_on", "01/01/2020")],
                &[("file", "strategy.pdf", PDF.to_vec())],
            ),
        )
        .await;
    assert!(
        decoded(&uploaded.location).contains("File uploaded."),
        "{}",
        uploaded.location
    );
    let first: Uuid = {
        let mut su = db.superuser().await;
        sqlx::query_scalar("select id from stored_file where folder_id is not null")
            .fetch_one(&mut su)
            .await
            .unwrap()
    };
    let page = manager.get(&folder_path).await;
    assert!(
        page.body.contains("Expired 1 January 2020"),
        "{}",
        page.body
    );
    // A new version replaces it; the old one stays listed; replacing the old one again is
    // refused.
    let first_s = first.to_string();
    let versioned = manager
        .send(
            "POST",
            &format!("{folder_path}/files"),
            Form::Multipart(
                &[("replaces", first_s.as_str()), ("expires_on", "01/01/2031")],
                &[("file", "strategy-v2.pdf", PDF.to_vec())],
            ),
        )
        .await;
    assert!(
        decoded(&versioned.location).contains("New version uploaded"),
        "{}",
        versioned.location
    );
    let again = manager
        .send(
            "POST",
            &format!("{folder_path}/files"),
            Form::Multipart(
                &[("replaces", first_s.as_str())],
                &[("file", "strategy-v3.pdf", PDF.to_vec())],
            ),
        )
        .await;
    assert!(
        decoded(&again.location).contains("already been replaced"),
        "{}",
        again.location
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from stored_file where folder_id is not null and replaced_at is null and version = 2"
        )
        .await,
        1
    );
    let page = manager.get(&folder_path).await;
    assert!(page.body.contains("Earlier version"));

    // Staff download it (recorded, and in the audit log); another organisation cannot.
    let current: Uuid = {
        let mut su = db.superuser().await;
        sqlx::query_scalar("select id from stored_file where version = 2")
            .fetch_one(&mut su)
            .await
            .unwrap()
    };
    assert_eq!(
        manager.get(&format!("/files/{current}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        outsider.get(&format!("/files/{current}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        outsider.get(&folder_path).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from audit_event where table_name = 'file_access' and actor_name = 'Priya Patel'"
        )
        .await,
        1
    );
    // The folder as a ZIP holds the current version only.
    let zipped = manager.get(&format!("{folder_path}/zip")).await;
    assert_eq!(zipped.status, StatusCode::OK);
    assert_eq!(zipped.content_type, "application/zip");
    assert!(zipped.body.contains("strategy-v2.pdf"));
    assert!(!zipped.body.contains("strategy.pdf"));

    // A contractor on a work order at the site sees the folder only once it is opened to
    // contractors.
    {
        let mut tx = db.app.begin(&db.staff(&org, "Loader")).await.unwrap();
        ops::add_vendor_document(
            &mut tx,
            f.vendor,
            &DocumentInput {
                doc_type: DocumentType::PublicLiability,
                reference_number: "PL-1".into(),
                issuer: None,
                sum_insured_pence: None,
                expires_on: time::OffsetDateTime::now_utc().date() + time::Duration::days(200),
            },
            time::OffsetDateTime::now_utc().date(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let site = f.site.to_string();
    let raised = manager
        .post(
            "/work-orders",
            &[
                ("site", site.as_str()),
                ("title", "Service the fire doors"),
                ("scope", "Adjust closers on all fire doors"),
                ("trade", "fire_safety"),
                ("priority", "low"),
                ("override_reason", ""),
            ],
        )
        .await;
    let wo = id_after(&raised.location, "/work-orders/");
    let vendor = f.vendor.to_string();
    manager
        .post(
            &format!("/work-orders/{wo}/invite"),
            &[
                ("vendor", vendor.as_str()),
                ("override_reason", "Fire door closers only; no BAFE work"),
            ],
        )
        .await;
    let token = latest_link(&db, &org, "contractor_invitation").await;
    let opened = contractor(&state).get(&format!("/{token}")).await;
    let spark = Client {
        cookie: opened.set_cookie.split(';').next().unwrap().to_owned(),
        ..contractor(&state)
    };
    let job = spark.get("/job").await;
    assert_eq!(job.status, StatusCode::OK);
    assert!(!job.body.contains("strategy-v2.pdf"));
    assert_eq!(
        spark.get(&format!("/job/files/{current}")).await.status,
        StatusCode::NOT_FOUND
    );
    let opened_up = manager
        .post(
            &folder_path,
            &[
                ("name", "Fire strategy"),
                ("residents", "none"),
                ("contractors", "yes"),
            ],
        )
        .await;
    assert!(
        decoded(&opened_up.location).contains("Staff; contractors on its work orders"),
        "{}",
        opened_up.location
    );
    let job = spark.get("/job").await;
    assert!(job.body.contains("Fire strategy: "), "{}", job.body);
    assert!(job.body.contains("strategy-v2.pdf"));
    assert_eq!(
        spark.get(&format!("/job/files/{current}")).await.status,
        StatusCode::OK
    );
    // Never the replaced version, nor another folder's file.
    assert_eq!(
        spark.get(&format!("/job/files/{first}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from audit_event where table_name = 'file_access' and actor_kind = 'contractor'"
        )
        .await,
        1
    );
    // Bad permission values are refused and change nothing.
    let bad = manager
        .post(
            &folder_path,
            &[("name", "Fire strategy"), ("residents", "everyone")],
        )
        .await;
    assert!(decoded(&bad.location).contains("Choose which residents"));
    // Archived: contractors lose it; staff still read it.
    manager.post(&format!("{folder_path}/archive"), &[]).await;
    assert!(!spark.get("/job").await.body.contains("strategy-v2.pdf"));
    assert_eq!(
        manager.get(&format!("/files/{current}")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn ticket_categories_and_routing_rules_set_new_tickets_priority_assignee_and_service_levels()
{
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Property").await;
    let f = fixture(&db, &org).await;
    let state = staff_people::state(&db, staff_people::web_settings()).await;
    let owner = staff_people::member(
        &db,
        &org,
        "olu@goldcrest.example",
        "Olu Owner",
        BuiltInRole::OrganisationOwner,
        Scope::AllSites,
    )
    .await;
    let sam = staff_people::member(
        &db,
        &org,
        "sam@goldcrest.example",
        "Sam Coordinator",
        BuiltInRole::MaintenanceCoordinator,
        Scope::AllSites,
    )
    .await;
    let boss = staff(&state, &db, &org, &owner).await;
    let coordinator = staff(&state, &db, &org, &sam).await;
    let page = boss.get("/settings/tickets").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Antisocial behaviour"));

    // Complaints: high priority, to Sam, resolved within 20 working days; bad targets refused.
    let sam_id = sam.membership_id.to_string();
    for (response, expected) in [
        ("4w", "write hours like 4h"),
        ("900h", "between 1 and 720 hours"),
    ] {
        let refused = boss
            .post(
                "/settings/tickets/categories/complaint",
                &[("name", "Complaint"), ("response", response)],
            )
            .await;
        assert!(
            decoded(&refused.location).contains(expected),
            "{}",
            refused.location
        );
    }
    assert_eq!(count(&db, "select count(*) from ticket_category").await, 0);
    let saved = boss
        .post(
            "/settings/tickets/categories/complaint",
            &[
                ("name", "Complaint"),
                ("default_priority", "high"),
                ("default_assignee", sam_id.as_str()),
                ("resolution", "20d"),
                ("on_residenceport", "yes"),
            ],
        )
        .await;
    assert!(decoded(&saved.location).contains("Saved the Complaint category."));
    // A category of the organisation's own; a second with the same name is refused.
    boss.post("/settings/tickets/categories", &[("name", "Parking")])
        .await;
    let twice = boss
        .post("/settings/tickets/categories", &[("name", "parking")])
        .await;
    assert!(decoded(&twice.location).contains("already a category called parking"));
    // A rule: anything from the council about this site is urgent and goes to Sam.
    let site = f.site.to_string();
    let no_action = boss
        .post(
            "/settings/tickets/rules",
            &[("sender_domain", "council.gov.uk")],
        )
        .await;
    assert!(decoded(&no_action.location).contains("Choose what the rule does"));
    let bad_domain = boss
        .post(
            "/settings/tickets/rules",
            &[
                ("sender_domain", "not a domain"),
                ("set_priority", "urgent"),
            ],
        )
        .await;
    assert!(decoded(&bad_domain.location).contains("like example.co.uk"));
    assert_eq!(
        count(&db, "select count(*) from ticket_routing_rule").await,
        0
    );
    boss.post(
        "/settings/tickets/rules",
        &[
            ("site", site.as_str()),
            ("sender_domain", "@Council.gov.uk"),
            ("set_priority", "urgent"),
            ("assign_to", sam_id.as_str()),
        ],
    )
    .await;
    let page = boss.get("/settings/tickets").await;
    assert!(
        page.body.contains("When site is Goldcrest House and sender is @council.gov.uk: assign to Sam Coordinator, set priority Urgent."),
        "{}",
        page.body
    );
    // Only those who may change organisation settings change these.
    let not_theirs = coordinator
        .post("/settings/tickets/categories", &[("name", "Lifts")])
        .await;
    assert!(matches!(
        not_theirs.status,
        StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
    ));

    // A complaint with the priority left to the category: high, to Sam, 20 working days.
    let made = boss
        .post(
            "/tickets",
            &[
                ("site", site.as_str()),
                ("category", "complaint"),
                ("priority", ""),
                ("reporter_name", "Mr Patel"),
                ("subject", "Noise from the gym"),
                ("message", "Every night after 11pm."),
            ],
        )
        .await;
    let ticket = id_after(&made.location, "/tickets/");
    let shown = boss.get(&format!("/tickets/{ticket}")).await;
    assert!(
        shown.body.contains("Assigned to Sam Coordinator"),
        "{}",
        shown.body
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from ticket where priority = 'high' and assignee_id is not null
               and resolution_due_at - created_at >= interval '26 days'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from email_message where category = 'ticket_assigned' and to_address = 'sam@goldcrest.example'"
        )
        .await,
        1
    );
    // From the council: the rule wins over the category's default.
    boss.post(
        "/tickets",
        &[
            ("site", site.as_str()),
            ("category", "query"),
            ("priority", ""),
            ("reporter_name", "Housing officer"),
            ("reporter_email", "officer@housing.council.gov.uk"),
            ("subject", "Inspection visit"),
            ("message", "We will inspect on Monday."),
        ],
    )
    .await;
    assert_eq!(
        count(
            &db,
            "select count(*) from ticket where priority = 'urgent' and subject = 'Inspection visit'"
        )
        .await,
        1
    );
    // Archived categories are not offered and refuse new tickets.
    boss.post("/settings/tickets/categories/parking/archive", &[])
        .await;
    assert!(
        !boss
            .get("/tickets/new")
            .await
            .body
            .contains("value=\"parking\"")
    );
    let refused = boss
        .post(
            "/tickets",
            &[
                ("category", "parking"),
                ("reporter_name", "Mr Patel"),
                ("subject", "Bay 4"),
                ("message", "Someone is in my bay."),
            ],
        )
        .await;
    assert!(
        decoded(&refused.location).contains("Choose a category."),
        "{}",
        refused.location
    );
}
