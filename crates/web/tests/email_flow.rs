//! E-mail end to end: a message queued in a tenant transaction is sent by the worker through
//! SendGrid (a local stub answering as SendGrid does), and SendGrid's signed event webhook then
//! moves it to delivered or bounced — each event stored once, however often it is sent.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails by panicking, helpers included"
)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey;
use proplink_db::email::{self, NewEmail};
use proplink_db::jobs::{Outcome, Worker, WorkerConfig};
use proplink_integrations::mail::sendgrid::{SendGrid, WebhookKey};
use proplink_integrations::mail::{PROVIDER_EVENT_JOB, ProviderEventJob, SendEmailJob, Sender};
use proplink_test_support::TestDb;
use proplink_web::{AppState, Domains, WebSettings};
use secrecy::SecretString;
use std::sync::Arc;
use tower::ServiceExt;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

struct Signed {
    key: SigningKey,
}

impl Signed {
    fn new() -> Self {
        Self {
            key: SigningKey::random(&mut rand_core::OsRng),
        }
    }

    fn public_base64(&self) -> String {
        let der = self.key.verifying_key().to_public_key_der().unwrap();
        B64.encode(der.as_bytes())
    }

    fn request(&self, body: &str, timestamp: &str) -> Request<Body> {
        let mut signed = timestamp.as_bytes().to_vec();
        signed.extend_from_slice(body.as_bytes());
        let signature: Signature = self.key.sign(&signed);
        Request::post("/webhooks/sendgrid")
            .header("host", "api.proplink.localhost")
            .header("content-type", "application/json")
            .header(
                "x-twilio-email-event-webhook-signature",
                B64.encode(signature.to_der().as_bytes()),
            )
            .header("x-twilio-email-event-webhook-timestamp", timestamp)
            .body(Body::from(body.to_owned()))
            .unwrap()
    }
}

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

async fn drain(worker: &Worker) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    while let Some(o) = worker.run_once().await.unwrap() {
        outcomes.push(o);
    }
    outcomes
}

#[tokio::test]
async fn a_message_is_sent_through_sendgrid_and_its_delivery_events_are_recorded_once() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let sendgrid = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/mail/send"))
        .respond_with(ResponseTemplate::new(202).insert_header("X-Message-Id", "sg-abc"))
        .expect(2)
        .mount(&sendgrid)
        .await;

    let mut tx = db.app.begin(&db.staff(&org, "Jane Doe")).await.unwrap();
    let mut ids = Vec::new();
    for to in ["patel@example.com", "nobody@example.com"] {
        ids.push(
            email::queue(
                &mut tx,
                NewEmail {
                    to_address: to.into(),
                    to_name: None,
                    subject: "Demand".into(),
                    body_text: "Hello".into(),
                    body_html: None,
                    category: "demand".into(),
                },
            )
            .await
            .unwrap(),
        );
    }
    tx.commit().await.unwrap();

    let mut worker = Worker::new(db.app.clone(), db.platform.clone(), WorkerConfig::default());
    let client = SendGrid::new(&sendgrid.uri(), SecretString::from("SG.key".to_owned())).unwrap();
    worker.register(
        email::SEND_JOB,
        Arc::new(SendEmailJob {
            mailer: Arc::new(client),
            sender: Sender {
                address: "no-reply@proplink.localhost".into(),
                name: "PropLink".into(),
            },
            files: None,
        }),
    );
    worker.register(PROVIDER_EVENT_JOB, Arc::new(ProviderEventJob));
    assert_eq!(drain(&worker).await.len(), 2);

    let mut tx = db.app.begin(&db.staff(&org, "Checker")).await.unwrap();
    let sent = email::get(&mut tx, ids[0]).await.unwrap().unwrap();
    assert_eq!(
        (
            sent.status.as_str(),
            sent.provider.as_deref(),
            sent.provider_message_id.as_deref()
        ),
        ("sent", Some("sendgrid"), Some("sg-abc"))
    );
    drop(tx);

    // SendGrid reports: the first delivered, the second bounced, plus an open we do not track.
    let signer = Signed::new();
    let mut settings = WebSettings::new(Domains::default());
    settings.sendgrid_webhook_key = Some(WebhookKey::parse(&signer.public_base64()).unwrap());
    let app = proplink_web::app(AppState::new(db.app.clone(), settings).await.unwrap());
    let event = |id: &str, kind: &str, message: uuid::Uuid, extra: serde_json::Value| {
        let mut e = serde_json::json!({
            "email": "x@example.com", "timestamp": 1_763_900_000, "event": kind, "sg_event_id": id,
            "sg_message_id": "sg-abc.filter0001", "proplink_message_id": message.to_string(), "proplink_org": org.id.to_string()
        });
        e.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        e
    };
    let body = serde_json::json!([
        event("evt-1", "delivered", ids[0], serde_json::json!({"response": "250 OK"})),
        event("evt-2", "bounce", ids[1], serde_json::json!({"reason": "550 5.1.1 The email account does not exist", "type": "bounce"})),
        event("evt-3", "open", ids[0], serde_json::json!({})),
    ])
    .to_string();
    let (status, reply) = call(&app, signer.request(&body, "1763900000")).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply, serde_json::json!({"received": 3, "new": 3}));
    // SendGrid retries the same batch: nothing new.
    let (status, reply) = call(&app, signer.request(&body, "1763900000")).await;
    assert_eq!(
        (status, reply),
        (StatusCode::OK, serde_json::json!({"received": 3, "new": 0}))
    );

    let outcomes = drain(&worker).await;
    assert_eq!(outcomes.len(), 2, "one job per tracked event: {outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Done { .. })));

    let mut tx = db.app.begin(&db.staff(&org, "Checker")).await.unwrap();
    assert_eq!(
        email::get(&mut tx, ids[0]).await.unwrap().unwrap().status,
        "delivered"
    );
    let bounced = email::get(&mut tx, ids[1]).await.unwrap().unwrap();
    assert_eq!(bounced.status, "bounced");
    assert_eq!(
        bounced.status_detail.as_deref(),
        Some("550 5.1.1 The email account does not exist")
    );
    assert_eq!(email::events(&mut tx, ids[0]).await.unwrap().len(), 1);
    let history = proplink_db::audit::history(&mut tx, "email_message", &ids[1].to_string())
        .await
        .unwrap();
    assert!(
        history[0]
            .sentence()
            .starts_with("Status and status detail changed by PropLink via a background job"),
        "{}",
        history[0].sentence()
    );
    drop(tx);
    let mut su = db.superuser().await;
    let stored: i64 =
        sqlx::query_scalar("select count(*) from webhook_event where provider = 'sendgrid'")
            .fetch_one(&mut su)
            .await
            .unwrap();
    assert_eq!(stored, 3);
}

#[tokio::test]
async fn a_webhook_with_a_bad_signature_or_body_changes_nothing() {
    let db = TestDb::new().await;
    let signer = Signed::new();
    let mut settings = WebSettings::new(Domains::default());
    settings.sendgrid_webhook_key = Some(WebhookKey::parse(&signer.public_base64()).unwrap());
    let app = proplink_web::app(AppState::new(db.app.clone(), settings).await.unwrap());
    let body = r#"[{"sg_event_id":"evt-9","event":"delivered","timestamp":1}]"#;

    // Signed by someone else.
    let (status, reply) = call(&app, Signed::new().request(body, "1763900000")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply["error"],
        "the SendGrid signature does not match the request body"
    );
    // The body changed after signing.
    let mut req = signer.request(body, "1763900000");
    *req.body_mut() = Body::from(body.replace("delivered", "dropped"));
    assert_eq!(call(&app, req).await.0, StatusCode::UNAUTHORIZED);
    // The timestamp changed after signing.
    let mut req = signer.request(body, "1763900000");
    req.headers_mut().insert(
        "x-twilio-email-event-webhook-timestamp",
        "1763900001".parse().unwrap(),
    );
    assert_eq!(call(&app, req).await.0, StatusCode::UNAUTHORIZED);
    // No signature at all.
    let mut req = signer.request(body, "1763900000");
    req.headers_mut()
        .remove("x-twilio-email-event-webhook-signature");
    let (status, reply) = call(&app, req).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply["error"],
        "the request has no SendGrid signature or timestamp header"
    );
    // Properly signed, but not JSON.
    let (status, reply) = call(&app, signer.request("{not json", "1763900000")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .starts_with("the body is not a JSON array of SendGrid events")
    );

    let mut su = db.superuser().await;
    let stored: i64 = sqlx::query_scalar("select count(*) from webhook_event")
        .fetch_one(&mut su)
        .await
        .unwrap();
    assert_eq!(stored, 0);

    // Without a configured key the endpoint does not accept events at all.
    let app = proplink_web::app(
        AppState::new(db.app.clone(), WebSettings::new(Domains::default()))
            .await
            .unwrap(),
    );
    assert_eq!(
        call(&app, signer.request(body, "1763900000")).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn events_for_unknown_organisations_are_kept_but_not_applied() {
    let db = TestDb::new().await;
    let signer = Signed::new();
    let mut settings = WebSettings::new(Domains::default());
    settings.sendgrid_webhook_key = Some(WebhookKey::parse(&signer.public_base64()).unwrap());
    let app = proplink_web::app(AppState::new(db.app.clone(), settings).await.unwrap());
    let body = serde_json::json!([{
        "sg_event_id": "evt-x", "event": "delivered", "timestamp": 1,
        "proplink_org": uuid::Uuid::now_v7().to_string(), "proplink_message_id": uuid::Uuid::now_v7().to_string()
    }])
    .to_string();
    let (status, reply) = call(&app, signer.request(&body, "1")).await;
    assert_eq!(
        (status, reply),
        (StatusCode::OK, serde_json::json!({"received": 1, "new": 1}))
    );
    let mut su = db.superuser().await;
    let (routed, note): (Option<uuid::Uuid>, Option<String>) =
        sqlx::query_as("select routed_to, note from webhook_event where event_id = 'evt-x'")
            .fetch_one(&mut su)
            .await
            .unwrap();
    assert_eq!(routed, None);
    assert_eq!(
        note.as_deref(),
        Some("the organisation named by the event does not exist")
    );
    let jobs: i64 = sqlx::query_scalar("select count(*) from job")
        .fetch_one(&mut su)
        .await
        .unwrap();
    assert_eq!(jobs, 0);
}

/// Counts what it is asked to send.
struct Counting(std::sync::atomic::AtomicU32);

#[async_trait::async_trait]
impl proplink_integrations::mail::Mailer for Counting {
    fn provider(&self) -> &'static str {
        "counting"
    }

    async fn send(
        &self,
        _email: &proplink_integrations::mail::OutgoingEmail,
    ) -> Result<proplink_integrations::mail::Accepted, proplink_integrations::mail::SendError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(proplink_integrations::mail::Accepted {
            provider_message_id: None,
        })
    }
}

#[tokio::test]
async fn nothing_is_sent_for_an_organisation_that_became_read_only() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let mut tx = db.app.begin(&db.staff(&org, "Jane Doe")).await.unwrap();
    email::queue(
        &mut tx,
        proplink_test_support::sample_email("patel@example.com"),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    proplink_db::organisation::set_status(
        &db.platform,
        org.id,
        proplink_db::organisation::OrgStatus::ReadOnly,
    )
    .await
    .unwrap();

    let mailer = Arc::new(Counting(std::sync::atomic::AtomicU32::new(0)));
    let mut worker = Worker::new(db.app.clone(), db.platform.clone(), WorkerConfig::default());
    worker.register(
        email::SEND_JOB,
        Arc::new(SendEmailJob {
            mailer: mailer.clone(),
            sender: Sender {
                address: "no-reply@proplink.localhost".into(),
                name: "PropLink".into(),
            },
            files: None,
        }),
    );
    match drain(&worker).await.as_slice() {
        [Outcome::Dead { error, .. }] => {
            assert_eq!(error, "not sent: the organisation is read-only")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(mailer.0.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_event_that_cannot_be_stored_does_not_hold_back_its_batch() {
    let db = TestDb::new().await;
    let signer = Signed::new();
    let mut settings = WebSettings::new(Domains::default());
    settings.sendgrid_webhook_key = Some(WebhookKey::parse(&signer.public_base64()).unwrap());
    let app = proplink_web::app(AppState::new(db.app.clone(), settings).await.unwrap());
    // PostgreSQL's jsonb cannot hold \u0000: that event can never be stored.
    let body = r#"[{"sg_event_id":"evt-bad","event":"open","timestamp":1,"note":"a\u0000b"},{"sg_event_id":"evt-good","event":"open","timestamp":1}]"#;
    let (status, reply) = call(&app, signer.request(body, "1")).await;
    assert_eq!(
        (status, reply),
        (StatusCode::OK, serde_json::json!({"received": 2, "new": 1}))
    );
    let mut su = db.superuser().await;
    let stored: Vec<String> = sqlx::query_scalar("select event_id from webhook_event")
        .fetch_all(&mut su)
        .await
        .unwrap();
    assert_eq!(stored, vec!["evt-good".to_owned()]);
}
