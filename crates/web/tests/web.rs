//! The web server end to end against a real database: routing by host, error pages,
//! security headers, CSRF, limits, read-only organisations, database trouble and metrics.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails by panicking, helpers included"
)]

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use proplink_db::organisation::{self, OrgStatus};
use proplink_db::pools::PoolSettings;
use proplink_db::{AppPool, email};
use proplink_test_support::TestDb;
use proplink_web::{AppState, Domains, WebSettings};
use std::net::SocketAddr;
use tower::ServiceExt;

fn settings() -> WebSettings {
    let mut s = WebSettings::new(Domains::default());
    s.dev_mailbox = true;
    s
}

async fn app_with(pool: AppPool, settings: WebSettings) -> Router {
    proplink_web::app(AppState::new(pool, settings).await.unwrap())
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn send(app: &Router, req: Request<Body>) -> Reply {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 10 * 1024 * 1024)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn get(host: &str, path: &str) -> Request<Body> {
    Request::get(path)
        .header("host", host)
        .body(Body::empty())
        .unwrap()
}

fn post_form(host: &str, path: &str, form: &str) -> Request<Body> {
    Request::post(path)
        .header("host", host)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", format!("http://{host}"))
        .header("sec-fetch-site", "same-origin")
        .body(Body::from(form.to_owned()))
        .unwrap()
}

async fn message_count(db: &TestDb, org: &organisation::Organisation) -> usize {
    let mut tx = db.app.begin(&db.staff(org, "Checker")).await.unwrap();
    email::recent(&mut tx, 1000).await.unwrap().len()
}

#[tokio::test]
async fn each_organisation_is_served_on_its_own_host_and_unknown_hosts_reveal_nothing() {
    let db = TestDb::new().await;
    db.org("goldcrest", "Goldcrest Estates").await;
    let closed = db.org("oldco", "Old Co").await;
    organisation::set_status(&db.platform, closed.id, OrgStatus::Closed)
        .await
        .unwrap();
    let app = app_with(db.app.clone(), settings()).await;

    // Its host answers: anonymous visitors are sent to sign in, and its pages name it.
    let home = send(&app, get("goldcrest.proplink.localhost:8080", "/")).await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(
        home.headers.get("location").unwrap(),
        "http://login.proplink.localhost/"
    );
    let mailbox = send(
        &app,
        get("goldcrest.proplink.localhost:8080", "/dev/mailbox"),
    )
    .await;
    assert_eq!(mailbox.status, StatusCode::OK);
    assert!(mailbox.body.contains("Goldcrest Estates"));

    for host in [
        "nosuch.proplink.localhost",
        "oldco.proplink.localhost",
        "example.com",
        "Goldcrest_.proplink.localhost",
    ] {
        let reply = send(&app, get(host, "/")).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{host}");
        assert!(reply.body.contains("Page not found"));
        assert!(
            !reply.body.contains("Old Co")
                && !reply.body.contains("nosuch")
                && !reply.body.contains("oldco"),
            "{host}: the 404 names what it hides"
        );
    }
    // The 404 for an organisation that does not exist is byte-for-byte the 404 for one that is
    // closed, but for its reference.
    let a = send(&app, get("nosuch.proplink.localhost", "/")).await.body;
    let b = send(&app, get("oldco.proplink.localhost", "/")).await.body;
    let strip = |s: &str| s.split("Reference:").next().unwrap_or_default().to_owned();
    assert_eq!(strip(&a), strip(&b));
}

#[tokio::test]
async fn health_answers_on_any_host_and_readiness_checks_the_database() {
    let db = TestDb::new().await;
    let app = app_with(db.app.clone(), settings()).await;
    let health = send(&app, get("10.0.0.5", "/healthz")).await;
    assert_eq!(
        (health.status, health.body.as_str()),
        (StatusCode::OK, "ok")
    );
    let ready = send(&app, get("login.proplink.localhost", "/readyz")).await;
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (StatusCode::OK, "ready")
    );

    // A server whose database is unreachable is alive but not ready, and says so.
    let dead = AppPool::new(
        "postgres://proplink_app@localhost:1/nothing?host=/nonexistent",
        &PoolSettings {
            acquire_timeout: std::time::Duration::from_secs(1),
            ..PoolSettings::default()
        },
    )
    .unwrap();
    let app = proplink_web::app(
        AppState::with_code_key(dead, settings(), proplink_auth::codes::CodeKey::generate())
            .unwrap(),
    );
    assert_eq!(
        send(&app, get("x", "/healthz")).await.status,
        StatusCode::OK
    );
    let ready = send(&app, get("x", "/readyz")).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    let page = send(&app, get("goldcrest.proplink.localhost", "/")).await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        page.body.contains("Nothing you sent was saved"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("nonexistent"),
        "internals leaked: {}",
        page.body
    );
}

#[tokio::test]
async fn every_response_carries_security_headers_and_a_request_id() {
    let db = TestDb::new().await;
    db.org("goldcrest", "Goldcrest Estates").await;
    let app = app_with(db.app.clone(), settings()).await;
    let reply = send(&app, get("goldcrest.proplink.localhost", "/")).await;
    let h = &reply.headers;
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(
        h.get("strict-transport-security").is_none(),
        "no HSTS without TLS"
    );
    assert_eq!(h["x-request-id"].len(), 36);

    // A request id sent by a proxy is kept, and error pages quote it.
    let req = Request::get("/missing")
        .header("host", "goldcrest.proplink.localhost")
        .header("x-request-id", "req-abc-123")
        .body(Body::empty())
        .unwrap();
    let reply = send(&app, req).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.headers["x-request-id"], "req-abc-123");
    assert!(reply.body.contains("req-abc-123"));

    let mut tls = settings();
    tls.tls = true;
    let app = app_with(db.app.clone(), tls).await;
    let reply = send(&app, get("goldcrest.proplink.localhost", "/")).await;
    assert!(
        reply.headers["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
}

#[tokio::test]
async fn a_form_post_writes_through_the_tenant_transaction_and_bad_input_writes_nothing() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let app = app_with(db.app.clone(), settings()).await;
    let host = "goldcrest.proplink.localhost";

    for (form, expected) in [
        ("to=not-an-address&subject=Hi", "Enter an e-mail address"),
        ("to=jane%40example.co.uk&subject=", "Enter a subject."),
        (
            &format!("to=jane%40example.co.uk&subject={}", "x".repeat(201)) as &str,
            "200 characters or fewer",
        ),
        ("to=jane%40example.co.uk", "Enter a subject."),
    ] {
        let reply = send(&app, post_form(host, "/dev/mailbox", form)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{form}");
        assert!(reply.body.contains(expected), "{form}: {}", reply.body);
    }
    assert_eq!(message_count(&db, &org).await, 0);

    // A cross-site post is refused before any handler runs.
    let forged = Request::post("/dev/mailbox")
        .header("host", host)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", "https://attacker.example")
        .header("sec-fetch-site", "cross-site")
        .body(Body::from("to=jane%40example.co.uk&subject=Hi"))
        .unwrap();
    assert_eq!(send(&app, forged).await.status, StatusCode::FORBIDDEN);
    assert_eq!(message_count(&db, &org).await, 0);

    // An oversized body is refused.
    let huge = format!(
        "to=jane%40example.co.uk&subject=Hi&body={}",
        "x".repeat(3 * 1024 * 1024)
    );
    assert_eq!(
        send(&app, post_form(host, "/dev/mailbox", &huge))
            .await
            .status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(message_count(&db, &org).await, 0);

    let reply = send(
        &app,
        post_form(
            host,
            "/dev/mailbox",
            "to=jane%40example.co.uk&subject=Hello&body=Hi+Jane",
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    let mut tx = db.app.begin(&db.staff(&org, "Checker")).await.unwrap();
    let messages = email::recent(&mut tx, 10).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].subject, "Hello");
    let history =
        proplink_db::audit::history(&mut tx, "email_message", &messages[0].id.to_string())
            .await
            .unwrap();
    assert_eq!(history[0].channel, "admin");
    assert_eq!(
        history[0].request_id.as_ref().map(String::len),
        Some(36),
        "the request id reaches the audit log"
    );
    drop(tx);

    let page = send(&app, get(host, &format!("/dev/mailbox/{}", messages[0].id))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("Created by the development mailbox via admin on "),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn one_organisations_host_cannot_open_anothers_records() {
    let db = TestDb::new().await;
    let goldcrest = db.org("goldcrest", "Goldcrest Estates").await;
    let acme = db.org("acme", "Acme Property Group").await;
    proplink_test_support::probe::seed(&db, &acme).await;
    let mut tx = db.app.begin(&db.staff(&acme, "Checker")).await.unwrap();
    let acme_message = email::recent(&mut tx, 1).await.unwrap().remove(0).id;
    drop(tx);
    let app = app_with(db.app.clone(), settings()).await;
    let reply = send(
        &app,
        get(
            "goldcrest.proplink.localhost",
            &format!("/dev/mailbox/{acme_message}"),
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let list = send(&app, get("goldcrest.proplink.localhost", "/dev/mailbox")).await;
    assert!(!list.body.contains("smith@example.com"));
    assert_eq!(message_count(&db, &goldcrest).await, 0);
    let ok = send(
        &app,
        get(
            "acme.proplink.localhost",
            &format!("/dev/mailbox/{acme_message}"),
        ),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[tokio::test]
async fn the_mailbox_exists_only_with_the_embedded_mailer() {
    let db = TestDb::new().await;
    db.org("goldcrest", "Goldcrest Estates").await;
    let app = app_with(db.app.clone(), WebSettings::new(Domains::default())).await;
    assert_eq!(
        send(&app, get("goldcrest.proplink.localhost", "/dev/mailbox"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let reply = send(
        &app,
        post_form(
            "goldcrest.proplink.localhost",
            "/dev/mailbox",
            "to=a%40b.co&subject=x",
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_read_only_organisation_is_readable_and_refuses_changes_with_a_clear_message() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    organisation::set_status(&db.platform, org.id, OrgStatus::ReadOnly)
        .await
        .unwrap();
    let app = app_with(db.app.clone(), settings()).await;
    // Reading works (the signed-in banner is covered by the sign-in tests).
    let mailbox = send(&app, get("goldcrest.proplink.localhost", "/dev/mailbox")).await;
    assert_eq!(mailbox.status, StatusCode::OK);
    let reply = send(
        &app,
        post_form(
            "goldcrest.proplink.localhost",
            "/dev/mailbox",
            "to=jane%40example.co.uk&subject=Hi",
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert!(
        reply.body.contains(
            "The organisation &#34;goldcrest&#34; is read-only: nothing in it can be changed."
        ),
        "{}",
        reply.body
    );
    assert_eq!(message_count(&db, &org).await, 0);
}

#[tokio::test]
async fn a_dropped_database_connection_never_gives_a_500_and_the_server_recovers() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let app = app_with(db.app.clone(), settings()).await;
    let host = "goldcrest.proplink.localhost";
    assert_eq!(
        send(&app, get(host, "/dev/mailbox")).await.status,
        StatusCode::OK
    );

    // The database kills every server connection (a restart, a failover).
    let mut su = db.superuser().await;
    sqlx::query("select pg_terminate_backend(pid) from pg_stat_activity where usename = 'proplink_app' and datname = current_database()")
        .execute(&mut su)
        .await
        .unwrap();
    let reply = send(
        &app,
        post_form(
            host,
            "/dev/mailbox",
            "to=jane%40example.co.uk&subject=During",
        ),
    )
    .await;
    assert!(
        reply.status == StatusCode::SEE_OTHER || reply.status == StatusCode::SERVICE_UNAVAILABLE,
        "got {} {}",
        reply.status,
        reply.body
    );
    let written = message_count(&db, &org).await;
    assert_eq!(
        written,
        usize::from(reply.status == StatusCode::SEE_OTHER),
        "a refused write left nothing behind"
    );
    // And the next request works.
    assert_eq!(
        send(&app, get(host, "/dev/mailbox")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn metrics_are_for_loopback_or_the_token_holder() {
    let db = TestDb::new().await;
    let mut s = settings();
    s.metrics_token = Some("s3cret-token".to_owned().into());
    let app = app_with(db.app.clone(), s).await;
    let _ = send(&app, get("x", "/healthz")).await;
    let from = |ip: [u8; 4], auth: Option<&str>| {
        let mut req = get("api.proplink.localhost", "/metrics");
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((ip, 40000))));
        if let Some(a) = auth {
            req.headers_mut()
                .insert("authorization", a.parse().unwrap());
        }
        req
    };
    let local = send(&app, from([127, 0, 0, 1], None)).await;
    assert_eq!(local.status, StatusCode::OK);
    assert!(local.body.contains("http_requests_total"), "{}", local.body);
    assert_eq!(
        send(&app, from([203, 0, 113, 9], None)).await.status,
        StatusCode::NOT_FOUND
    );
    // Through a proxy on the same machine the peer is loopback, but the caller is not local.
    let mut proxied = from([127, 0, 0, 1], None);
    proxied
        .headers_mut()
        .insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
    assert_eq!(send(&app, proxied).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        send(&app, from([203, 0, 113, 9], Some("Bearer wrong")))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, from([203, 0, 113, 9], Some("Bearer s3cret-token")))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_nul_byte_is_refused_clearly_and_odd_request_ids_are_replaced() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let app = app_with(db.app.clone(), settings()).await;
    let host = "goldcrest.proplink.localhost";
    let reply = send(
        &app,
        post_form(
            host,
            "/dev/mailbox",
            "to=jane%40example.co.uk&subject=a%00b",
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reply.body.contains("cannot be stored"), "{}", reply.body);
    assert_eq!(message_count(&db, &org).await, 0);

    for odd in ["has spaces in it", &"x".repeat(65), "semi;colon"] {
        let req = Request::get("/healthz")
            .header("host", host)
            .header("x-request-id", odd)
            .body(Body::empty())
            .unwrap();
        let reply = send(&app, req).await;
        let id = reply.headers["x-request-id"].to_str().unwrap().to_owned();
        assert_ne!(id, odd);
        assert_eq!(id.len(), 36, "a fresh UUID: {id}");
    }
    let req = Request::get("/healthz")
        .header("host", host)
        .header("x-request-id", "lb-7f3a.42_x")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(&app, req).await.headers["x-request-id"],
        "lb-7f3a.42_x"
    );
}
