//! Mail delivery against local stand-ins that answer as the real services do: a wiremock
//! server speaking SendGrid's v3 mail-send API, and a minimal SMTP server.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails by panicking, helpers included"
)]

use proplink_domain::OrgId;
use proplink_integrations::mail::sendgrid::SendGrid;
use proplink_integrations::mail::smtp::{Smtp, SmtpSecurity, SmtpSettings};
use proplink_integrations::mail::{Accepted, Mailer, OutgoingEmail, SendError, Sender};
use secrecy::SecretString;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use uuid::Uuid;
use wiremock::matchers::{bearer_token, body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn email() -> OutgoingEmail {
    OutgoingEmail {
        message_id: Uuid::now_v7(),
        org: Some(OrgId(Uuid::now_v7())),
        from: Sender {
            address: "no-reply@goldcrest.example.co.uk".into(),
            name: "Goldcrest Estates".into(),
        },
        to_address: "patel@example.com".into(),
        to_name: Some("Mr Patel".into()),
        subject: "Your service charge demand".into(),
        body_text: "Dear Mr Patel, please find your demand attached.".into(),
        body_html: Some("<p>Dear Mr Patel</p>".into()),
        attachments: Vec::new(),
    }
}

fn with_pdf() -> OutgoingEmail {
    OutgoingEmail {
        attachments: vec![proplink_integrations::mail::OutgoingAttachment {
            filename: "INV-2026-000001.pdf".into(),
            media_type: "application/pdf".into(),
            bytes: b"%PDF-1.7 demand".to_vec(),
        }],
        ..email()
    }
}

#[tokio::test]
async fn sendgrid_carries_attachments_as_base64_per_its_api() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/mail/send"))
        .and(body_partial_json(serde_json::json!({
            "attachments": [{
                "content": "JVBERi0xLjcgZGVtYW5k",
                "filename": "INV-2026-000001.pdf",
                "type": "application/pdf",
                "disposition": "attachment"
            }]
        })))
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&server)
        .await;
    client(&server).send(&with_pdf()).await.unwrap();
}

#[tokio::test]
async fn smtp_sends_attachments_in_a_mixed_message() {
    let (port, server) = smtp_server("250 2.1.5 Ok\r\n").await;
    smtp(port).send(&with_pdf()).await.unwrap();
    let data = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
    assert!(data.contains("multipart/mixed"), "{data}");
    assert!(data.contains("filename=\"INV-2026-000001.pdf\""), "{data}");
    assert!(data.contains("Content-Type: application/pdf"), "{data}");
}

fn client(server: &MockServer) -> SendGrid {
    let _ = rustls::crypto::ring::default_provider().install_default();
    SendGrid::new(&server.uri(), SecretString::from("SG.test-key".to_owned())).unwrap()
}

#[tokio::test]
async fn sendgrid_accepts_with_202_and_returns_the_message_id() {
    let server = MockServer::start().await;
    let msg = email();
    Mock::given(method("POST"))
        .and(path("/v3/mail/send"))
        .and(bearer_token("SG.test-key"))
        .and(body_partial_json(serde_json::json!({
            "personalizations": [{ "to": [{ "email": "patel@example.com", "name": "Mr Patel" }] }],
            "from": { "email": "no-reply@goldcrest.example.co.uk", "name": "Goldcrest Estates" },
            "subject": "Your service charge demand",
            "content": [
                { "type": "text/plain", "value": "Dear Mr Patel, please find your demand attached." },
                { "type": "text/html", "value": "<p>Dear Mr Patel</p>" }
            ],
            "custom_args": { "proplink_message_id": msg.message_id.to_string(), "proplink_org": msg.org.map(|o| o.to_string()) }
        })))
        .respond_with(ResponseTemplate::new(202).insert_header("X-Message-Id", "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"))
        .expect(1)
        .mount(&server)
        .await;
    let accepted = client(&server).send(&msg).await.unwrap();
    assert_eq!(
        accepted,
        Accepted {
            provider_message_id: Some("14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0".into())
        }
    );
}

#[tokio::test]
async fn sendgrid_400_is_permanent_and_quotes_sendgrids_reasons() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/mail/send"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "errors": [{ "message": "Does not contain a valid address.", "field": "personalizations.0.to.0.email", "help": "http://sendgrid.com/docs" }]
        })))
        .expect(1)
        .mount(&server)
        .await;
    match client(&server).send(&email()).await {
        Err(SendError::Permanent(m)) => assert_eq!(
            m,
            "SendGrid rejected the message (400 Bad Request): Does not contain a valid address. (personalizations.0.to.0.email)"
        ),
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

#[tokio::test]
async fn sendgrid_401_is_a_configuration_problem() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({"errors": [{"message": "The provided authorization grant is invalid, expired, or revoked", "field": null}]})))
        .mount(&server)
        .await;
    match client(&server).send(&email()).await {
        Err(SendError::Permanent(m)) => assert!(m.contains("check mail.sendgrid.api_key"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn sendgrid_429_waits_for_the_rate_limit_reset_and_retries() {
    let server = MockServer::start().await;
    let reset = time::OffsetDateTime::now_utc().unix_timestamp() + 1;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("X-RateLimit-Limit", "600")
                .insert_header("X-RateLimit-Remaining", "0")
                .insert_header("X-RateLimit-Reset", reset.to_string().as_str())
                .set_body_json(serde_json::json!({"errors": [{"message": "too many requests", "field": null}]})),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202).insert_header("X-Message-Id", "after-the-wait"))
        .expect(1)
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    let accepted = client(&server).send(&email()).await.unwrap();
    assert_eq!(
        accepted.provider_message_id.as_deref(),
        Some("after-the-wait")
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "it did not wait for the reset"
    );
}

#[tokio::test]
async fn sendgrid_429_with_a_long_reset_hands_back_to_the_queue() {
    let server = MockServer::start().await;
    let reset = time::OffsetDateTime::now_utc().unix_timestamp() + 120;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("X-RateLimit-Reset", reset.to_string().as_str()),
        )
        .expect(1)
        .mount(&server)
        .await;
    match client(&server).send(&email()).await {
        Err(SendError::Transient {
            retry_after: Some(wait),
            ..
        }) => assert!(wait > Duration::from_secs(100)),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn sendgrid_5xx_is_retried_then_reported_as_transient() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("Service Unavailable"))
        .expect(3)
        .mount(&server)
        .await;
    match client(&server).send(&email()).await {
        Err(SendError::Transient { message, .. }) => assert_eq!(
            message,
            "SendGrid had a server error (503 Service Unavailable)"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn sendgrid_unreachable_is_transient() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sg = SendGrid::new("http://127.0.0.1:1", SecretString::from("k".to_owned()))
        .unwrap()
        .with_max_wait(Duration::from_millis(10));
    assert!(matches!(
        sg.send(&email()).await,
        Err(SendError::Transient { .. })
    ));
}

/// A minimal SMTP server: accepts one message, or refuses the recipient with `rcpt_reply`.
async fn smtp_server(rcpt_reply: &'static str) -> (u16, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read).lines();
        let mut data = String::new();
        write.write_all(b"220 mail.test ESMTP\r\n").await.unwrap();
        let mut in_data = false;
        while let Ok(Some(line)) = lines.next_line().await {
            if in_data {
                if line == "." {
                    in_data = false;
                    write.write_all(b"250 2.0.0 Ok: queued\r\n").await.unwrap();
                } else {
                    data.push_str(&line);
                    data.push('\n');
                }
                continue;
            }
            let upper = line.to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                b"250-mail.test\r\n250 8BITMIME\r\n"
            } else if upper.starts_with("MAIL FROM") {
                b"250 2.1.0 Ok\r\n"
            } else if upper.starts_with("RCPT TO") {
                rcpt_reply.as_bytes()
            } else if upper == "DATA" {
                in_data = true;
                b"354 End data with <CR><LF>.<CR><LF>\r\n"
            } else if upper == "QUIT" {
                write.write_all(b"221 2.0.0 Bye\r\n").await.unwrap();
                break;
            } else {
                b"250 Ok\r\n"
            };
            write.write_all(reply).await.unwrap();
        }
        data
    });
    (port, handle)
}

fn smtp(port: u16) -> Smtp {
    Smtp::new(&SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        security: SmtpSecurity::None,
        username: None,
        password: None,
    })
    .unwrap()
}

#[tokio::test]
async fn smtp_delivers_a_multipart_message() {
    let (port, server) = smtp_server("250 2.1.5 Ok\r\n").await;
    let msg = email();
    let accepted = smtp(port).send(&msg).await.unwrap();
    assert_eq!(
        accepted.provider_message_id,
        Some(format!("{}@proplink", msg.message_id))
    );
    let data = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
    assert!(
        data.contains("Subject: Your service charge demand"),
        "{data}"
    );
    assert!(
        data.contains("To: \"Mr Patel\" <patel@example.com>"),
        "{data}"
    );
    assert!(data.contains("multipart/alternative"), "{data}");
}

#[tokio::test]
async fn smtp_permanent_refusal_is_permanent() {
    let (port, _server) = smtp_server("550 5.1.1 No such user\r\n").await;
    match smtp(port).send(&email()).await {
        Err(SendError::Permanent(m)) => assert!(m.contains("No such user"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn smtp_temporary_refusal_is_transient() {
    let (port, _server) = smtp_server("451 4.3.0 Try again later\r\n").await;
    assert!(matches!(
        smtp(port).send(&email()).await,
        Err(SendError::Transient { .. })
    ));
}

#[tokio::test]
async fn an_invalid_recipient_address_is_permanent_before_any_connection() {
    let mut msg = email();
    msg.to_address = "not an address".into();
    assert!(matches!(
        smtp(1).send(&msg).await,
        Err(SendError::Permanent(_))
    ));
}
