//! Payments against wiremock stand-ins answering as Stripe's and GoCardless's API references
//! say, errors included; and their webhook signatures, computed here from the published schemes
//! with hmac and sha2 rather than by the code under test.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails by panicking, helpers included"
)]

use hmac::{Hmac, Mac};
use secrecy::SecretString;
use sha2::Sha256;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// hex(HMAC-SHA256(secret, message)), straight from the definition.
fn hmac_hex(secret: &str, message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers.get(name).map(|v| v.to_str().unwrap())
}

/// The one request the stand-in received.
async fn only_request(server: &MockServer) -> Request {
    let mut requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "exactly one request");
    requests.remove(0)
}

/// A port nobody listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

mod stripe {
    use super::*;
    use proplink_integrations::payments::stripe::{
        self, CheckoutRequest, CheckoutSession, Stripe, WebhookSecret,
    };
    use proplink_integrations::payments::{Provider, ProviderError, SignatureError};
    use serde_json::json;
    use std::collections::BTreeMap;
    use wiremock::matchers::{bearer_token, method, path};

    const SECRET_KEY: &str = "sk_test_51PropLinkSecretKey0123456789abcdef";
    const WEBHOOK_SECRET: &str = "whsec_PropLinkTestEndpointSecret0123456789";
    const SESSION_ID: &str = "cs_test_a1B2c3D4e5F6g7H8i9J0";
    const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

    fn client(server: &MockServer) -> Stripe {
        install_crypto();
        Stripe::new(&server.uri(), SecretString::from(SECRET_KEY)).unwrap()
    }

    fn checkout_request() -> CheckoutRequest {
        CheckoutRequest {
            amount_pence: 45_000,
            description: "Service charge, Flat 4 Kingfisher Court, April 2026".into(),
            customer_email: Some("patel@example.com".into()),
            success_url:
                "https://goldcrest.proplink.example/pay/done?session={CHECKOUT_SESSION_ID}".into(),
            cancel_url: "https://goldcrest.proplink.example/pay/cancelled".into(),
            client_reference_id: "payreq_0192f7a8".into(),
            metadata: vec![
                ("org".into(), "0192f7a8-1111-7000-8000-000000000001".into()),
                ("payment_request".into(), "payreq_0192f7a8".into()),
            ],
        }
    }

    /// A Checkout Session as Stripe returns it: more fields than we read.
    fn session_json(
        status: &str,
        payment_status: &str,
        payment_intent: serde_json::Value,
    ) -> serde_json::Value {
        json!({
            "id": SESSION_ID,
            "object": "checkout.session",
            "after_expiration": null,
            "allow_promotion_codes": null,
            "amount_subtotal": 45000,
            "amount_total": 45000,
            "automatic_tax": { "enabled": false, "liability": null, "status": null },
            "billing_address_collection": null,
            "cancel_url": "https://goldcrest.proplink.example/pay/cancelled",
            "client_reference_id": "payreq_0192f7a8",
            "created": 1767225000,
            "currency": "gbp",
            "customer": null,
            "customer_creation": "if_required",
            "customer_details": null,
            "customer_email": "patel@example.com",
            "expires_at": 1767311400,
            "livemode": false,
            "locale": null,
            "metadata": {
                "org": "0192f7a8-1111-7000-8000-000000000001",
                "payment_request": "payreq_0192f7a8"
            },
            "mode": "payment",
            "payment_intent": payment_intent,
            "payment_method_types": ["card"],
            "payment_status": payment_status,
            "status": status,
            "success_url": "https://goldcrest.proplink.example/pay/done?session={CHECKOUT_SESSION_ID}",
            "total_details": { "amount_discount": 0, "amount_shipping": 0, "amount_tax": 0 },
            "url": if status == "open" {
                json!(format!("https://checkout.stripe.com/c/pay/{SESSION_ID}#fidkdWxOYHwnPyd1blpxYHZxWjA0"))
            } else {
                json!(null)
            }
        })
    }

    fn form_pairs(request: &Request) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = form_urlencoded::parse(&request.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        pairs.sort();
        pairs
    }

    fn stripe_error(status: u16, error: serde_json::Value) -> ResponseTemplate {
        ResponseTemplate::new(status)
            .insert_header("Request-Id", "req_8Xb2kLmN0pQr")
            .set_body_json(json!({ "error": error }))
    }

    /// "t=<t>,v1=<hex>" made by hand from Stripe's published scheme.
    fn stripe_header(secret: &str, timestamp: i64, body: &[u8]) -> String {
        let mut signed = format!("{timestamp}.").into_bytes();
        signed.extend_from_slice(body);
        format!("t={timestamp},v1={}", hmac_hex(secret, &signed))
    }

    fn webhook_secret() -> WebhookSecret {
        WebhookSecret::new(SecretString::from(WEBHOOK_SECRET))
    }

    fn completed_event() -> Vec<u8> {
        serde_json::to_vec(&json!({
            "id": "evt_1QabCDeFgHiJkLmN",
            "object": "event",
            "api_version": "2024-06-20",
            "created": NOW - 5,
            "data": { "object": session_json("complete", "paid", json!("pi_3QabCDeFgHiJkLmN0a1b2c3d")) },
            "livemode": false,
            "pending_webhooks": 1,
            "request": { "id": null, "idempotency_key": null },
            "type": "checkout.session.completed"
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_checkout_session_is_created_with_stripes_bracketed_form_fields() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/checkout/sessions"))
            .and(bearer_token(SECRET_KEY))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("Request-Id", "req_Create01")
                    .set_body_json(session_json("open", "unpaid", json!(null))),
            )
            .expect(1)
            .mount(&server)
            .await;

        let session = client(&server)
            .create_checkout_session(&checkout_request(), "payreq_0192f7a8:checkout:1")
            .await
            .unwrap();

        assert_eq!(
            session,
            CheckoutSession {
                id: SESSION_ID.into(),
                url: Some(format!(
                    "https://checkout.stripe.com/c/pay/{SESSION_ID}#fidkdWxOYHwnPyd1blpxYHZxWjA0"
                )),
                status: Some("open".into()),
                payment_status: "unpaid".into(),
                amount_total: Some(45_000),
                currency: Some("gbp".into()),
                payment_intent: None,
                client_reference_id: Some("payreq_0192f7a8".into()),
                metadata: BTreeMap::from([
                    ("org".into(), "0192f7a8-1111-7000-8000-000000000001".into()),
                    ("payment_request".into(), "payreq_0192f7a8".into()),
                ]),
            }
        );

        let request = only_request(&server).await;
        assert_eq!(
            header(&request, "authorization"),
            Some(format!("Bearer {SECRET_KEY}").as_str())
        );
        assert_eq!(
            header(&request, "idempotency-key"),
            Some("payreq_0192f7a8:checkout:1")
        );
        assert_eq!(
            header(&request, "content-type"),
            Some("application/x-www-form-urlencoded")
        );
        let mut expected: Vec<(String, String)> = [
            ("mode", "payment"),
            ("line_items[0][price_data][currency]", "gbp"),
            ("line_items[0][price_data][unit_amount]", "45000"),
            (
                "line_items[0][price_data][product_data][name]",
                "Service charge, Flat 4 Kingfisher Court, April 2026",
            ),
            ("line_items[0][quantity]", "1"),
            (
                "success_url",
                "https://goldcrest.proplink.example/pay/done?session={CHECKOUT_SESSION_ID}",
            ),
            (
                "cancel_url",
                "https://goldcrest.proplink.example/pay/cancelled",
            ),
            ("client_reference_id", "payreq_0192f7a8"),
            ("customer_email", "patel@example.com"),
            ("metadata[org]", "0192f7a8-1111-7000-8000-000000000001"),
            ("metadata[payment_request]", "payreq_0192f7a8"),
            (
                "payment_intent_data[metadata][org]",
                "0192f7a8-1111-7000-8000-000000000001",
            ),
            (
                "payment_intent_data[metadata][payment_request]",
                "payreq_0192f7a8",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        expected.sort();
        assert_eq!(form_pairs(&request), expected);
    }

    #[tokio::test]
    async fn an_unknown_email_and_empty_metadata_are_left_out_of_the_form() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/checkout/sessions"))
            .respond_with(ResponseTemplate::new(200).set_body_json(session_json(
                "open",
                "unpaid",
                json!(null),
            )))
            .mount(&server)
            .await;
        let request = CheckoutRequest {
            customer_email: None,
            metadata: Vec::new(),
            ..checkout_request()
        };
        client(&server)
            .create_checkout_session(&request, "k1")
            .await
            .unwrap();
        let keys: Vec<String> = form_pairs(&only_request(&server).await)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert!(!keys.iter().any(|k| k == "customer_email"), "{keys:?}");
        assert!(!keys.iter().any(|k| k.contains("metadata")), "{keys:?}");
        assert!(keys.iter().any(|k| k == "client_reference_id"), "{keys:?}");
    }

    #[tokio::test]
    async fn a_session_is_retrieved_by_its_id() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(format!("/v1/checkout/sessions/{SESSION_ID}")))
            .and(bearer_token(SECRET_KEY))
            .respond_with(ResponseTemplate::new(200).set_body_json(session_json(
                "complete",
                "paid",
                json!("pi_3QabCDeFgHiJkLmN0a1b2c3d"),
            )))
            .expect(1)
            .mount(&server)
            .await;
        let session = client(&server)
            .retrieve_checkout_session(SESSION_ID)
            .await
            .unwrap();
        assert_eq!(session.status.as_deref(), Some("complete"));
        assert_eq!(session.payment_status, "paid");
        assert_eq!(session.url, None);
        assert_eq!(
            session.payment_intent.as_deref(),
            Some("pi_3QabCDeFgHiJkLmN0a1b2c3d")
        );
        let request = only_request(&server).await;
        assert!(request.body.is_empty());
        assert_eq!(header(&request, "idempotency-key"), None);
    }

    #[tokio::test]
    async fn an_expanded_payment_intent_is_read_as_its_id() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(format!("/v1/checkout/sessions/{SESSION_ID}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(session_json(
                "complete",
                "paid",
                json!({ "id": "pi_3Expanded", "object": "payment_intent", "amount": 45000 }),
            )))
            .mount(&server)
            .await;
        let session = client(&server)
            .retrieve_checkout_session(SESSION_ID)
            .await
            .unwrap();
        assert_eq!(session.payment_intent.as_deref(), Some("pi_3Expanded"));
    }

    #[tokio::test]
    async fn a_declined_card_is_stripes_402_card_error_in_its_own_words() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/checkout/sessions"))
            .respond_with(stripe_error(
                402,
                json!({
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": "insufficient_funds",
                    "doc_url": "https://stripe.com/docs/error-codes/card-declined",
                    "message": "Your card has insufficient funds.",
                    "param": ""
                }),
            ))
            .mount(&server)
            .await;
        let error = client(&server)
            .create_checkout_session(&checkout_request(), "k1")
            .await
            .unwrap_err();
        assert_eq!(
            error,
            ProviderError::Api {
                provider: Provider::Stripe,
                status: 402,
                kind: "card_error".into(),
                code: Some("card_declined".into()),
                message: "Your card has insufficient funds.".into(),
                request_id: Some("req_8Xb2kLmN0pQr".into()),
            }
        );
        assert_eq!(
            error.to_string(),
            "Stripe refused the request: Your card has insufficient funds. (card_declined)"
        );
        assert!(!error.is_retryable());
    }

    #[tokio::test]
    async fn an_invalid_request_names_the_parameter_stripe_refused() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/checkout/sessions"))
            .respond_with(stripe_error(
                400,
                json!({
                    "type": "invalid_request_error",
                    "code": "url_invalid",
                    "message": "Not a valid URL",
                    "param": "success_url",
                    "request_log_url": "https://dashboard.stripe.com/test/logs/req_8Xb2kLmN0pQr"
                }),
            ))
            .mount(&server)
            .await;
        let error = client(&server)
            .create_checkout_session(&checkout_request(), "k1")
            .await
            .unwrap_err();
        let ProviderError::Api {
            status,
            kind,
            code,
            message,
            request_id,
            ..
        } = &error
        else {
            panic!("{error:?}");
        };
        assert_eq!(*status, 400);
        assert_eq!(kind, "invalid_request_error");
        assert_eq!(code.as_deref(), Some("url_invalid"));
        assert_eq!(message, "Not a valid URL (parameter success_url)");
        assert_eq!(request_id.as_deref(), Some("req_8Xb2kLmN0pQr"));
        assert!(!error.is_retryable());
    }

    #[tokio::test]
    async fn a_refused_key_is_reported_without_the_key() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(format!("/v1/checkout/sessions/{SESSION_ID}")))
            .respond_with(stripe_error(
                401,
                json!({
                    "type": "invalid_request_error",
                    "message": format!("Invalid API Key provided: {SECRET_KEY}")
                }),
            ))
            .mount(&server)
            .await;
        let error = client(&server)
            .retrieve_checkout_session(SESSION_ID)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, ProviderError::Api { status: 401, kind, code: None, .. } if kind == "invalid_request_error"),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "Stripe refused the request: Invalid API Key provided: [redacted]"
        );
        assert!(!format!("{error:?}").contains(SECRET_KEY));
        assert!(!format!("{:?}", client(&server)).contains(SECRET_KEY));
    }

    #[tokio::test]
    async fn too_many_requests_is_a_retryable_rate_limit() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/checkout/sessions"))
            .respond_with(stripe_error(
                429,
                json!({
                    "type": "invalid_request_error",
                    "code": "rate_limit",
                    "message": "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests."
                }),
            ))
            .mount(&server)
            .await;
        let error = client(&server)
            .create_checkout_session(&checkout_request(), "k1")
            .await
            .unwrap_err();
        assert_eq!(
            error,
            ProviderError::RateLimited {
                provider: Provider::Stripe,
                retry_after_secs: None
            }
        );
        assert!(error.is_retryable());
        assert_eq!(
            error.to_string(),
            "Stripe is limiting how often PropLink may call it; try again shortly"
        );
    }

    #[tokio::test]
    async fn a_stripe_server_error_is_unavailable_and_retryable() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/checkout/sessions"))
            .respond_with(stripe_error(
                500,
                json!({ "type": "api_error", "message": "An unknown error occurred" }),
            ))
            .mount(&server)
            .await;
        let error = client(&server)
            .create_checkout_session(&checkout_request(), "k1")
            .await
            .unwrap_err();
        assert_eq!(
            error,
            ProviderError::Unavailable("Stripe answered 500 Internal Server Error".into())
        );
        assert!(error.is_retryable());
        assert_eq!(
            error.to_string(),
            "Payments are unavailable just now (Stripe answered 500 Internal Server Error); try again in a few minutes"
        );
    }

    #[tokio::test]
    async fn a_success_that_is_not_a_session_is_a_decode_error() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(format!("/v1/checkout/sessions/{SESSION_ID}")))
            .respond_with(ResponseTemplate::new(200).set_body_string("<html>captive portal</html>"))
            .mount(&server)
            .await;
        let error = client(&server)
            .retrieve_checkout_session(SESSION_ID)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, ProviderError::Decode(d) if d.starts_with("Stripe: ")),
            "{error:?}"
        );
        assert!(!error.is_retryable());
    }

    #[tokio::test]
    async fn less_than_thirty_pence_never_reaches_stripe() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&server)
            .await;
        let request = CheckoutRequest {
            amount_pence: 29,
            ..checkout_request()
        };
        let error = client(&server)
            .create_checkout_session(&request, "k1")
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "PropLink did not send the request: Stripe takes card payments of £0.30 or more, and this one is £0.29"
        );
        assert!(!error.is_retryable());
    }

    #[tokio::test]
    async fn a_malformed_session_id_or_missing_idempotency_key_never_reaches_stripe() {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&server)
            .await;
        let stripe = client(&server);
        for id in ["pi_123", "cs_", "cs_test_1/../../v1/charges", ""] {
            let error = stripe.retrieve_checkout_session(id).await.unwrap_err();
            assert!(
                matches!(error, ProviderError::Invalid(_)),
                "{id}: {error:?}"
            );
        }
        let error = stripe
            .create_checkout_session(&checkout_request(), " ")
            .await
            .unwrap_err();
        assert!(matches!(error, ProviderError::Invalid(_)), "{error:?}");
    }

    #[tokio::test]
    async fn an_unreachable_stripe_is_unavailable_without_the_url() {
        install_crypto();
        let port = closed_port();
        let stripe = Stripe::new(
            &format!("http://127.0.0.1:{port}"),
            SecretString::from(SECRET_KEY),
        )
        .unwrap();
        let error = stripe
            .retrieve_checkout_session(SESSION_ID)
            .await
            .unwrap_err();
        let ProviderError::Unavailable(detail) = &error else {
            panic!("{error:?}");
        };
        assert!(
            detail.starts_with("Stripe could not be reached"),
            "{detail}"
        );
        assert!(!detail.contains(&port.to_string()), "no URL in {detail}");
        assert!(error.is_retryable());
    }

    #[test]
    fn an_empty_key_or_a_bad_base_url_is_refused_at_start_up() {
        install_crypto();
        assert!(Stripe::new(stripe::DEFAULT_BASE_URL, SecretString::from(" ")).is_err());
        assert!(Stripe::new("api.stripe.com", SecretString::from(SECRET_KEY)).is_err());
        assert!(Stripe::new(stripe::DEFAULT_BASE_URL, SecretString::from(SECRET_KEY)).is_ok());
    }

    // Webhooks.

    #[test]
    fn a_correctly_signed_event_verifies() {
        let body = completed_event();
        let header = stripe_header(WEBHOOK_SECRET, NOW - 5, &body);
        assert_eq!(webhook_secret().verify(Some(&header), &body, NOW), Ok(()));
    }

    #[test]
    fn a_signature_made_with_another_secret_is_refused() {
        let body = completed_event();
        let header = stripe_header("whsec_SomeoneElsesSecret", NOW, &body);
        assert_eq!(
            webhook_secret().verify(Some(&header), &body, NOW),
            Err(SignatureError::Mismatch(Provider::Stripe))
        );
    }

    #[test]
    fn a_body_changed_by_one_byte_is_refused() {
        let body = completed_event();
        let header = stripe_header(WEBHOOK_SECRET, NOW, &body);
        let mut tampered = body.clone();
        let at = tampered.len() / 2;
        tampered[at] ^= 0x01;
        assert_eq!(
            webhook_secret().verify(Some(&header), &tampered, NOW),
            Err(SignatureError::Mismatch(Provider::Stripe))
        );
    }

    #[test]
    fn a_missing_header_is_refused() {
        let body = completed_event();
        let error = webhook_secret().verify(None, &body, NOW).unwrap_err();
        assert_eq!(error, SignatureError::Missing(Provider::Stripe));
        assert_eq!(error.to_string(), "the Stripe-Signature header is missing");
        assert_eq!(
            webhook_secret().verify(Some("  "), &body, NOW),
            Err(SignatureError::Missing(Provider::Stripe))
        );
        assert_eq!(stripe::SIGNATURE_HEADER, "stripe-signature");
    }

    #[test]
    fn a_header_not_in_stripes_format_is_malformed() {
        let body = completed_event();
        let good = stripe_header(WEBHOOK_SECRET, NOW, &body);
        let v1 = good.split_once(",v1=").unwrap().1;
        for header in [
            "garbage".to_owned(),
            format!("v1={v1}"),
            format!("t=yesterday,v1={v1}"),
            format!("t={NOW}"),
            format!("t={NOW},v0={v1}"),
            format!("t={NOW},v1=not-hex"),
            format!("t={NOW},t={NOW},v1={v1}"),
        ] {
            assert_eq!(
                webhook_secret().verify(Some(&header), &body, NOW),
                Err(SignatureError::Malformed(Provider::Stripe)),
                "{header}"
            );
        }
    }

    #[test]
    fn a_signature_older_than_five_minutes_is_stale() {
        let body = completed_event();
        let at_limit = stripe_header(WEBHOOK_SECRET, NOW - 300, &body);
        assert_eq!(webhook_secret().verify(Some(&at_limit), &body, NOW), Ok(()));
        let stale = stripe_header(WEBHOOK_SECRET, NOW - 301, &body);
        let error = webhook_secret()
            .verify(Some(&stale), &body, NOW)
            .unwrap_err();
        assert_eq!(error, SignatureError::Stale { age_secs: 301 });
        assert_eq!(
            error.to_string(),
            "the Stripe-Signature header was made 301 seconds ago, more than the 300 allowed"
        );
    }

    #[test]
    fn a_signature_from_the_future_is_stale() {
        let body = completed_event();
        let future = stripe_header(WEBHOOK_SECRET, NOW + 301, &body);
        assert_eq!(
            webhook_secret().verify(Some(&future), &body, NOW),
            Err(SignatureError::Stale { age_secs: -301 })
        );
        let slightly_ahead = stripe_header(WEBHOOK_SECRET, NOW + 60, &body);
        assert_eq!(
            webhook_secret().verify(Some(&slightly_ahead), &body, NOW),
            Ok(())
        );
    }

    #[test]
    fn the_signature_is_checked_before_the_age() {
        let body = completed_event();
        let forged_and_old = stripe_header("whsec_forger", NOW - 3_600, &body);
        assert_eq!(
            webhook_secret().verify(Some(&forged_and_old), &body, NOW),
            Err(SignatureError::Mismatch(Provider::Stripe))
        );
    }

    #[test]
    fn one_matching_v1_among_several_is_enough() {
        // While a secret is rolled, Stripe signs with both the old and the new one.
        let body = completed_event();
        let ours = stripe_header(WEBHOOK_SECRET, NOW, &body);
        let theirs = stripe_header("whsec_TheRolledSecret", NOW, &body);
        let v1_ours = ours.split_once(",v1=").unwrap().1;
        let v1_theirs = theirs.split_once(",v1=").unwrap().1;
        let v0 = "6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39";
        let header = format!("t={NOW},v1={v1_theirs},v1={v1_ours},v0={v0}");
        assert_eq!(webhook_secret().verify(Some(&header), &body, NOW), Ok(()));
        let neither = format!("t={NOW},v1={v1_theirs},v0={v0}");
        assert_eq!(
            webhook_secret().verify(Some(&neither), &body, NOW),
            Err(SignatureError::Mismatch(Provider::Stripe))
        );
    }

    #[test]
    fn a_replayed_event_still_verifies_so_the_caller_must_store_each_id_once() {
        let body = completed_event();
        let header = stripe_header(WEBHOOK_SECRET, NOW - 10, &body);
        let secret = webhook_secret();
        assert_eq!(secret.verify(Some(&header), &body, NOW), Ok(()));
        assert_eq!(secret.verify(Some(&header), &body, NOW + 60), Ok(()));
        let first = stripe::parse_event(&body).unwrap();
        let again = stripe::parse_event(&body).unwrap();
        assert_eq!(
            first.id, again.id,
            "the id is what the store de-duplicates on"
        );
    }

    #[test]
    fn sign_makes_a_header_that_verifies_and_matches_the_published_scheme() {
        let body = completed_event();
        let secret = webhook_secret();
        let header = secret.sign(&body, NOW);
        assert_eq!(header, stripe_header(WEBHOOK_SECRET, NOW, &body));
        assert_eq!(secret.verify(Some(&header), &body, NOW), Ok(()));
        assert!(!format!("{secret:?}").contains(WEBHOOK_SECRET));
    }

    #[test]
    fn a_completed_checkout_event_gives_its_session_and_metadata() {
        let event = stripe::parse_event(&completed_event()).unwrap();
        assert_eq!(event.id, "evt_1QabCDeFgHiJkLmN");
        assert_eq!(event.kind, "checkout.session.completed");
        assert_eq!(event.created, NOW - 5);
        assert!(!event.livemode);
        assert_eq!(event.account, None);
        assert_eq!(event.metadata("payment_request"), Some("payreq_0192f7a8"));
        assert_eq!(event.metadata("absent"), None);
        let session = event.checkout_session().unwrap();
        assert_eq!(session.id, SESSION_ID);
        assert_eq!(session.payment_status, "paid");
        assert_eq!(session.amount_total, Some(45_000));
        assert_eq!(
            session.payment_intent.as_deref(),
            Some("pi_3QabCDeFgHiJkLmN0a1b2c3d")
        );
    }

    #[test]
    fn only_checkout_events_give_a_session() {
        for kind in [
            "checkout.session.async_payment_succeeded",
            "checkout.session.async_payment_failed",
            "checkout.session.expired",
        ] {
            let body = json!({
                "id": "evt_1Other", "object": "event", "created": NOW, "livemode": true,
                "account": "acct_1Connected",
                "type": kind,
                "data": { "object": session_json("expired", "unpaid", json!(null)) }
            });
            let event = stripe::parse_event(&serde_json::to_vec(&body).unwrap()).unwrap();
            assert!(event.checkout_session().is_some(), "{kind}");
            assert_eq!(event.account.as_deref(), Some("acct_1Connected"));
        }
        let refund = json!({
            "id": "evt_1Refund", "object": "event", "created": NOW, "livemode": false,
            "type": "charge.refunded",
            "data": { "object": { "id": "ch_1", "object": "charge", "metadata": { "org": "o1" } } }
        });
        let event = stripe::parse_event(&serde_json::to_vec(&refund).unwrap()).unwrap();
        assert_eq!(event.checkout_session(), None);
        assert_eq!(event.metadata("org"), Some("o1"));
    }

    #[test]
    fn a_body_that_is_not_a_stripe_event_is_refused_with_a_reason() {
        let not_json = stripe::parse_event(b"hello").unwrap_err();
        assert!(
            not_json.starts_with("the body is not a Stripe event"),
            "{not_json}"
        );
        let bad_id = json!({
            "id": "ev_1", "created": NOW, "livemode": false, "type": "x",
            "data": { "object": {} }
        });
        let error = stripe::parse_event(&serde_json::to_vec(&bad_id).unwrap()).unwrap_err();
        assert!(error.contains("not a Stripe event id"), "{error}");
        let no_object = json!({
            "id": "evt_1", "created": NOW, "livemode": false, "type": "x",
            "data": { "object": null }
        });
        let error = stripe::parse_event(&serde_json::to_vec(&no_object).unwrap()).unwrap_err();
        assert_eq!(error, "event evt_1 has no data.object");
    }
}

mod gocardless {
    use super::*;
    use proplink_integrations::payments::gocardless::{
        self, BillingRequestInput, GoCardless, PaymentInput, WebhookSecret,
    };
    use proplink_integrations::payments::{Provider, ProviderError, SignatureError};
    use serde_json::{Value, json};
    use std::collections::BTreeMap;
    use wiremock::matchers::{bearer_token, header as header_is, method, path};

    const ACCESS_TOKEN: &str = "sandbox_PropLinkTestAccessToken-0123456789";
    const WEBHOOK_SECRET: &str = "PropLinkGoCardlessWebhookSecret0123456789";
    const MANDATE: &str = "MD000ABCDEF123";

    fn client(server: &MockServer) -> GoCardless {
        install_crypto();
        GoCardless::new(&server.uri(), SecretString::from(ACCESS_TOKEN)).unwrap()
    }

    fn body_json(request: &Request) -> Value {
        serde_json::from_slice(&request.body).unwrap()
    }

    /// The headers GoCardless asks for on every call.
    fn assert_gocardless_headers(request: &Request) {
        assert_eq!(
            header(request, "authorization"),
            Some(format!("Bearer {ACCESS_TOKEN}").as_str())
        );
        assert_eq!(header(request, "gocardless-version"), Some("2015-07-06"));
        assert_eq!(header(request, "content-type"), Some("application/json"));
        assert_eq!(header(request, "accept"), Some("application/json"));
    }

    fn metadata(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn payment_input() -> PaymentInput {
        PaymentInput {
            amount_pence: 45_000,
            charge_date: Some(time::macros::date!(2026 - 05 - 01)),
            reference: Some("KC4-2604".into()),
            description: "Service charge, Flat 4 Kingfisher Court".into(),
            metadata: metadata(&[("org", "o1"), ("demand", "INV-2026-000041")]),
            mandate_id: MANDATE.into(),
        }
    }

    fn gocardless_error(status: u16, error: Value) -> ResponseTemplate {
        ResponseTemplate::new(status)
            .insert_header("Content-Type", "application/json")
            .set_body_json(json!({ "error": error }))
    }

    fn mandate_json(status: &str) -> Value {
        json!({
            "mandates": {
                "id": MANDATE,
                "created_at": "2026-04-02T09:14:07.000Z",
                "reference": "GOLDCREST-7C2X9J",
                "status": status,
                "scheme": "bacs",
                "next_possible_charge_date": "2026-04-08",
                "payments_require_approval": false,
                "metadata": {},
                "links": {
                    "customer_bank_account": "BA000XYZ789",
                    "creditor": "CR000PROPLINK",
                    "customer": "CU000QRS456"
                }
            }
        })
    }

    fn events_body(events: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({ "events": events })).unwrap()
    }

    fn three_events() -> Vec<u8> {
        events_body(json!([
            {
                "id": "EV000PAYCONF1",
                "created_at": "2026-05-06T08:00:12.123Z",
                "resource_type": "payments",
                "action": "confirmed",
                "links": { "payment": "PM000AAA111" },
                "details": {
                    "origin": "gocardless",
                    "cause": "payment_confirmed",
                    "description": "Enough time has passed since the payment was submitted for the banks to return an error, so this payment is now confirmed."
                },
                "metadata": {},
                "resource_metadata": { "org": "o1", "demand": "INV-2026-000041" }
            },
            {
                "id": "EV000PAYFAIL2",
                "created_at": "2026-05-06T08:00:13.456Z",
                "resource_type": "payments",
                "action": "failed",
                "links": { "payment": "PM000BBB222" },
                "details": {
                    "origin": "bank",
                    "cause": "insufficient_funds",
                    "scheme": "bacs",
                    "reason_code": "ARUDD-0",
                    "description": "The customer's account had insufficient funds to make this payment."
                },
                "metadata": {}
            },
            {
                "id": "EV000MANDCAN3",
                "created_at": "2026-05-06T08:00:14.789Z",
                "resource_type": "mandates",
                "action": "cancelled",
                "links": { "mandate": MANDATE, "organisation": "OR000PROPLINK" },
                "details": {
                    "origin": "bank",
                    "cause": "bank_account_closed",
                    "scheme": "bacs",
                    "reason_code": "ADDACS-B",
                    "description": "The customer's bank account was closed."
                },
                "metadata": {},
                "resource_metadata": {}
            }
        ]))
    }

    fn webhook_secret() -> WebhookSecret {
        WebhookSecret::new(SecretString::from(WEBHOOK_SECRET))
    }

    #[tokio::test]
    async fn a_billing_request_asks_for_a_bacs_mandate_in_pounds() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/billing_requests"))
            .and(bearer_token(ACCESS_TOKEN))
            .and(header_is("GoCardless-Version", "2015-07-06"))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({
                "billing_requests": {
                    "id": "BRQ000ABC123",
                    "created_at": "2026-04-02T09:10:00.000Z",
                    "status": "pending",
                    "mandate_request": {
                        "currency": "GBP", "scheme": "bacs", "verify": "when_available",
                        "links": {}
                    },
                    "payment_request": null,
                    "metadata": { "org": "o1", "leaseholder": "lh_42" },
                    "links": {
                        "customer": "CU000QRS456",
                        "customer_billing_detail": "CBD000XYZ",
                        "creditor": "CR000PROPLINK",
                        "mandate_request": "MRQ000DEF"
                    },
                    "fallback_enabled": false,
                    "actions": [{ "type": "collect_customer_details", "required": true }]
                }
            })))
            .expect(1)
            .mount(&server)
            .await;

        let input = BillingRequestInput {
            metadata: metadata(&[("org", "o1"), ("leaseholder", "lh_42")]),
        };
        let billing_request = client(&server)
            .create_billing_request(&input, "mandate:lh_42:1")
            .await
            .unwrap();
        assert_eq!(billing_request.id, "BRQ000ABC123");
        assert_eq!(billing_request.status, "pending");
        assert_eq!(
            billing_request.links.customer.as_deref(),
            Some("CU000QRS456")
        );
        assert_eq!(billing_request.links.mandate_request_mandate, None);
        assert_eq!(billing_request.metadata, input.metadata);

        let request = only_request(&server).await;
        assert_gocardless_headers(&request);
        assert_eq!(header(&request, "idempotency-key"), Some("mandate:lh_42:1"));
        assert_eq!(
            body_json(&request),
            json!({
                "billing_requests": {
                    "mandate_request": { "scheme": "bacs", "currency": "GBP" },
                    "metadata": { "org": "o1", "leaseholder": "lh_42" }
                }
            })
        );
    }

    #[tokio::test]
    async fn a_flow_links_the_billing_request_and_prefills_the_payer() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/billing_request_flows"))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({
                "billing_request_flows": {
                    "id": "BRF000GHI789",
                    "authorisation_url": "https://pay-sandbox.gocardless.com/billing/static/flow?id=BRF000GHI789",
                    "lock_customer_details": false,
                    "lock_bank_account": false,
                    "auto_fulfil": true,
                    "created_at": "2026-04-02T09:10:01.000Z",
                    "expires_at": "2026-04-09T09:10:01.000Z",
                    "redirect_uri": "https://goldcrest.proplink.example/dd/done",
                    "exit_uri": "https://goldcrest.proplink.example/dd",
                    "links": { "billing_request": "BRQ000ABC123" }
                }
            })))
            .expect(1)
            .mount(&server)
            .await;

        let flow = client(&server)
            .create_billing_request_flow(
                "BRQ000ABC123",
                "https://goldcrest.proplink.example/dd/done",
                "https://goldcrest.proplink.example/dd",
                Some("patel@example.com"),
                Some(("Ravi", "Patel")),
                "flow:BRQ000ABC123",
            )
            .await
            .unwrap();
        assert_eq!(flow.id, "BRF000GHI789");
        assert_eq!(
            flow.authorisation_url,
            "https://pay-sandbox.gocardless.com/billing/static/flow?id=BRF000GHI789"
        );

        let request = only_request(&server).await;
        assert_gocardless_headers(&request);
        assert_eq!(
            header(&request, "idempotency-key"),
            Some("flow:BRQ000ABC123")
        );
        assert_eq!(
            body_json(&request),
            json!({
                "billing_request_flows": {
                    "redirect_uri": "https://goldcrest.proplink.example/dd/done",
                    "exit_uri": "https://goldcrest.proplink.example/dd",
                    "links": { "billing_request": "BRQ000ABC123" },
                    "prefilled_customer": {
                        "email": "patel@example.com",
                        "given_name": "Ravi",
                        "family_name": "Patel"
                    }
                }
            })
        );
    }

    #[tokio::test]
    async fn a_flow_without_prefill_sends_no_prefilled_customer() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/billing_request_flows"))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({
                "billing_request_flows": {
                    "id": "BRF000JKL",
                    "authorisation_url": "https://pay.gocardless.com/billing/static/flow?id=BRF000JKL"
                }
            })))
            .mount(&server)
            .await;
        client(&server)
            .create_billing_request_flow(
                "BRQ000ABC123",
                "https://goldcrest.proplink.example/dd/done",
                "https://goldcrest.proplink.example/dd",
                None,
                None,
                "flow:2",
            )
            .await
            .unwrap();
        let body = body_json(&only_request(&server).await);
        assert_eq!(
            body["billing_request_flows"].get("prefilled_customer"),
            None
        );
    }

    #[tokio::test]
    async fn a_payment_is_collected_against_the_mandate() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/payments"))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({
                "payments": {
                    "id": "PM000AAA111",
                    "created_at": "2026-04-20T10:00:00.000Z",
                    "charge_date": "2026-05-01",
                    "amount": 45000,
                    "description": "Service charge, Flat 4 Kingfisher Court",
                    "currency": "GBP",
                    "status": "pending_submission",
                    "reference": "KC4-2604",
                    "metadata": { "org": "o1", "demand": "INV-2026-000041" },
                    "amount_refunded": 0,
                    "fx": { "fx_currency": null, "fx_amount": null, "exchange_rate": null, "estimated_exchange_rate": null },
                    "links": { "mandate": MANDATE, "creditor": "CR000PROPLINK" },
                    "retry_if_possible": false
                }
            })))
            .expect(1)
            .mount(&server)
            .await;

        let payment = client(&server)
            .create_payment(&payment_input(), "demand:INV-2026-000041:collect")
            .await
            .unwrap();
        assert_eq!(payment.id, "PM000AAA111");
        assert_eq!(payment.status, "pending_submission");
        assert_eq!(payment.amount, 45_000);
        assert_eq!(payment.charge_date, time::macros::date!(2026 - 05 - 01));
        assert_eq!(payment.links.mandate, MANDATE);
        assert_eq!(payment.reference.as_deref(), Some("KC4-2604"));

        let request = only_request(&server).await;
        assert_gocardless_headers(&request);
        assert_eq!(
            header(&request, "idempotency-key"),
            Some("demand:INV-2026-000041:collect")
        );
        assert_eq!(
            body_json(&request),
            json!({
                "payments": {
                    "amount": 45000,
                    "currency": "GBP",
                    "charge_date": "2026-05-01",
                    "reference": "KC4-2604",
                    "description": "Service charge, Flat 4 Kingfisher Court",
                    "metadata": { "org": "o1", "demand": "INV-2026-000041" },
                    "links": { "mandate": MANDATE }
                }
            })
        );
    }

    #[tokio::test]
    async fn without_a_charge_date_or_reference_gocardless_chooses() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/payments"))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({
                "payments": {
                    "id": "PM000CCC333", "status": "pending_submission", "amount": 100,
                    "currency": "GBP", "charge_date": "2026-04-08",
                    "links": { "mandate": MANDATE }
                }
            })))
            .mount(&server)
            .await;
        let input = PaymentInput {
            amount_pence: 100,
            charge_date: None,
            reference: None,
            description: String::new(),
            metadata: BTreeMap::new(),
            ..payment_input()
        };
        let payment = client(&server).create_payment(&input, "k2").await.unwrap();
        assert_eq!(payment.charge_date, time::macros::date!(2026 - 04 - 08));
        let body = body_json(&only_request(&server).await);
        let sent = body["payments"].as_object().unwrap();
        for absent in ["charge_date", "reference", "description"] {
            assert!(!sent.contains_key(absent), "{absent} in {sent:?}");
        }
    }

    #[tokio::test]
    async fn what_gocardless_would_refuse_is_refused_without_calling_it() {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(ResponseTemplate::new(201))
            .expect(0)
            .mount(&server)
            .await;
        let gc = client(&server);

        let long_reference = PaymentInput {
            reference: Some("KINGFISHER-4".into()),
            ..payment_input()
        };
        let error = gc.create_payment(&long_reference, "k").await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "PropLink did not send the request: the reference \"KINGFISHER-4\" is longer than the 10 characters Bacs allows"
        );

        let four_keys = PaymentInput {
            metadata: metadata(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]),
            ..payment_input()
        };
        let error = gc.create_payment(&four_keys, "k").await.unwrap_err();
        assert!(matches!(error, ProviderError::Invalid(_)), "{error:?}");

        let long_key = BillingRequestInput {
            metadata: metadata(&[(&"k".repeat(51), "v")]),
        };
        let error = gc.create_billing_request(&long_key, "k").await.unwrap_err();
        assert!(matches!(error, ProviderError::Invalid(_)), "{error:?}");

        let long_value = BillingRequestInput {
            metadata: metadata(&[("k", &"v".repeat(501))]),
        };
        let error = gc
            .create_billing_request(&long_value, "k")
            .await
            .unwrap_err();
        assert!(matches!(error, ProviderError::Invalid(_)), "{error:?}");

        let nothing = PaymentInput {
            amount_pence: 0,
            ..payment_input()
        };
        assert!(gc.create_payment(&nothing, "k").await.is_err());

        let bad_mandate = PaymentInput {
            mandate_id: "MD1/../../payouts".into(),
            ..payment_input()
        };
        assert!(gc.create_payment(&bad_mandate, "k").await.is_err());
        assert!(gc.get_mandate("PM000AAA111").await.is_err());
        assert!(gc.cancel_mandate(MANDATE, "").await.is_err());
        assert!(
            gc.create_billing_request_flow("BRF1", "https://a/", "https://a/", None, None, "k")
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_mandate_is_read_with_its_next_possible_charge_date() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(format!("/mandates/{MANDATE}")))
            .and(bearer_token(ACCESS_TOKEN))
            .respond_with(ResponseTemplate::new(200).set_body_json(mandate_json("active")))
            .expect(1)
            .mount(&server)
            .await;
        let mandate = client(&server).get_mandate(MANDATE).await.unwrap();
        assert_eq!(mandate.id, MANDATE);
        assert_eq!(mandate.status, "active");
        assert_eq!(
            mandate.next_possible_charge_date,
            Some(time::macros::date!(2026 - 04 - 08))
        );
        assert_eq!(mandate.links.customer.as_deref(), Some("CU000QRS456"));
        assert_eq!(
            mandate.links.customer_bank_account.as_deref(),
            Some("BA000XYZ789")
        );
        let request = only_request(&server).await;
        assert_gocardless_headers(&request);
        assert_eq!(header(&request, "idempotency-key"), None);
    }

    #[tokio::test]
    async fn a_mandate_is_cancelled_through_its_action() {
        let server = MockServer::start().await;
        let mut cancelled = mandate_json("cancelled");
        cancelled["mandates"]["next_possible_charge_date"] = Value::Null;
        Mock::given(method("POST"))
            .and(path(format!("/mandates/{MANDATE}/actions/cancel")))
            .respond_with(ResponseTemplate::new(200).set_body_json(cancelled))
            .expect(1)
            .mount(&server)
            .await;
        let mandate = client(&server)
            .cancel_mandate(MANDATE, "cancel:MD000ABCDEF123")
            .await
            .unwrap();
        assert_eq!(mandate.status, "cancelled");
        assert_eq!(mandate.next_possible_charge_date, None);
        let request = only_request(&server).await;
        assert_gocardless_headers(&request);
        assert_eq!(
            header(&request, "idempotency-key"),
            Some("cancel:MD000ABCDEF123")
        );
        assert_eq!(body_json(&request), json!({ "data": {} }));
    }

    #[tokio::test]
    async fn a_validation_failure_carries_the_first_field_error() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/payments"))
            .respond_with(gocardless_error(
                422,
                json!({
                    "message": "Validation failed",
                    "documentation_url": "https://developer.gocardless.com/api-reference#validation_failed",
                    "type": "validation_failed",
                    "request_id": "0AB1C2D3E4F5G6H7",
                    "code": 422,
                    "errors": [
                        {
                            "field": "charge_date",
                            "message": "must be on or after mandate's next_possible_charge_date",
                            "request_pointer": "/payments/charge_date"
                        },
                        {
                            "field": "amount",
                            "message": "is greater than the permitted scheme maximum",
                            "request_pointer": "/payments/amount"
                        }
                    ]
                }),
            ))
            .mount(&server)
            .await;
        let error = client(&server)
            .create_payment(&payment_input(), "k")
            .await
            .unwrap_err();
        assert_eq!(
            error,
            ProviderError::Api {
                provider: Provider::GoCardless,
                status: 422,
                kind: "validation_failed".into(),
                code: None,
                message: "Validation failed: charge_date must be on or after mandate's next_possible_charge_date".into(),
                request_id: Some("0AB1C2D3E4F5G6H7".into()),
            }
        );
        assert_eq!(
            error.to_string(),
            "GoCardless refused the request: Validation failed: charge_date must be on or after mandate's next_possible_charge_date"
        );
        assert!(!error.is_retryable());
    }

    #[tokio::test]
    async fn an_inactive_mandate_is_an_invalid_state_with_its_reason() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/payments"))
            .respond_with(gocardless_error(
                409,
                json!({
                    "message": "Mandate is cancelled",
                    "documentation_url": "https://developer.gocardless.com/api-reference#mandate_is_inactive",
                    "type": "invalid_state",
                    "request_id": "1BC2D3E4F5G6H7I8",
                    "code": 409,
                    "errors": [
                        { "reason": "mandate_is_inactive", "message": "Mandate is cancelled" }
                    ]
                }),
            ))
            .mount(&server)
            .await;
        let error = client(&server)
            .create_payment(&payment_input(), "k")
            .await
            .unwrap_err();
        assert_eq!(
            error,
            ProviderError::Api {
                provider: Provider::GoCardless,
                status: 409,
                kind: "invalid_state".into(),
                code: Some("mandate_is_inactive".into()),
                message: "Mandate is cancelled".into(),
                request_id: Some("1BC2D3E4F5G6H7I8".into()),
            }
        );
        assert_eq!(
            error.to_string(),
            "GoCardless refused the request: Mandate is cancelled (mandate_is_inactive)"
        );
        assert_eq!(error.request_id(), Some("1BC2D3E4F5G6H7I8"));
    }

    #[tokio::test]
    async fn a_rate_limit_says_when_it_resets_by_gocardlesss_own_clock() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(format!("/mandates/{MANDATE}")))
            .respond_with(
                gocardless_error(
                    429,
                    json!({
                        "message": "Rate limit exceeded",
                        "documentation_url": "https://developer.gocardless.com/api-reference#rate_limit_exceeded",
                        "type": "invalid_api_usage",
                        "request_id": "2CD3E4F5G6H7I8J9",
                        "code": 429,
                        "errors": [{ "reason": "rate_limit_exceeded", "message": "Rate limit exceeded" }]
                    }),
                )
                .insert_header("RateLimit-Limit", "1000")
                .insert_header("RateLimit-Remaining", "0")
                .insert_header("RateLimit-Reset", "Thu, 30 Apr 2026 10:01:00 GMT")
                .insert_header("Date", "Thu, 30 Apr 2026 10:00:15 GMT"),
            )
            .mount(&server)
            .await;
        let error = client(&server).get_mandate(MANDATE).await.unwrap_err();
        assert_eq!(
            error,
            ProviderError::RateLimited {
                provider: Provider::GoCardless,
                retry_after_secs: Some(45)
            }
        );
        assert!(error.is_retryable());
        assert_eq!(
            error.to_string(),
            "GoCardless is limiting how often PropLink may call it; try again in 45 seconds"
        );
    }

    #[tokio::test]
    async fn a_gocardless_outage_is_unavailable_and_retryable() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/billing_requests"))
            .respond_with(gocardless_error(
                503,
                json!({
                    "message": "Service temporarily unavailable",
                    "type": "gocardless",
                    "code": 503,
                    "errors": []
                }),
            ))
            .mount(&server)
            .await;
        let error = client(&server)
            .create_billing_request(&BillingRequestInput::default(), "k")
            .await
            .unwrap_err();
        assert_eq!(
            error,
            ProviderError::Unavailable("GoCardless answered 503 Service Unavailable".into())
        );
        assert!(error.is_retryable());
    }

    #[tokio::test]
    async fn an_answer_without_its_envelope_is_a_decode_error() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(format!("/mandates/{MANDATE}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "payments": {} })))
            .mount(&server)
            .await;
        let error = client(&server).get_mandate(MANDATE).await.unwrap_err();
        assert_eq!(
            error,
            ProviderError::Decode("GoCardless: the answer has no \"mandates\"".into())
        );
    }

    #[tokio::test]
    async fn an_echoed_token_never_reaches_the_error() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(format!("/mandates/{MANDATE}")))
            .respond_with(gocardless_error(
                401,
                json!({
                    "message": format!("Invalid access token {ACCESS_TOKEN}"),
                    "type": "invalid_api_usage",
                    "code": 401,
                    "errors": [{ "reason": "unauthorized", "message": "Invalid access token" }]
                }),
            ))
            .mount(&server)
            .await;
        let error = client(&server).get_mandate(MANDATE).await.unwrap_err();
        assert!(!error.to_string().contains(ACCESS_TOKEN), "{error}");
        assert!(!format!("{error:?}").contains(ACCESS_TOKEN));
        assert!(!format!("{:?}", client(&server)).contains(ACCESS_TOKEN));
    }

    #[test]
    fn an_empty_token_or_a_bad_base_url_is_refused_at_start_up() {
        install_crypto();
        assert!(GoCardless::new(gocardless::SANDBOX_BASE_URL, SecretString::from("")).is_err());
        assert!(GoCardless::new("not a url", SecretString::from(ACCESS_TOKEN)).is_err());
        assert!(
            GoCardless::new(
                gocardless::DEFAULT_BASE_URL,
                SecretString::from(ACCESS_TOKEN)
            )
            .is_ok()
        );
    }

    // Webhooks.

    #[test]
    fn a_correctly_signed_batch_verifies() {
        let body = three_events();
        let signature = hmac_hex(WEBHOOK_SECRET, &body);
        assert_eq!(webhook_secret().verify(Some(&signature), &body), Ok(()));
        assert_eq!(gocardless::SIGNATURE_HEADER, "webhook-signature");
    }

    #[test]
    fn a_signature_made_with_another_secret_is_refused() {
        let body = three_events();
        let signature = hmac_hex("SomeoneElsesSecret", &body);
        assert_eq!(
            webhook_secret().verify(Some(&signature), &body),
            Err(SignatureError::Mismatch(Provider::GoCardless))
        );
    }

    #[test]
    fn a_body_changed_by_one_byte_is_refused() {
        let body = three_events();
        let signature = hmac_hex(WEBHOOK_SECRET, &body);
        let mut tampered = body.clone();
        let last = tampered.len() - 2;
        tampered[last] ^= 0x20;
        assert_eq!(
            webhook_secret().verify(Some(&signature), &tampered),
            Err(SignatureError::Mismatch(Provider::GoCardless))
        );
    }

    #[test]
    fn a_missing_or_malformed_signature_is_refused() {
        let body = three_events();
        let error = webhook_secret().verify(None, &body).unwrap_err();
        assert_eq!(error, SignatureError::Missing(Provider::GoCardless));
        assert_eq!(error.to_string(), "the Webhook-Signature header is missing");
        for header in ["not-hex-at-all", "abcd", &"f".repeat(66)] {
            assert_eq!(
                webhook_secret().verify(Some(header), &body),
                Err(SignatureError::Malformed(Provider::GoCardless)),
                "{header}"
            );
        }
    }

    #[test]
    fn a_replayed_delivery_still_verifies_so_the_caller_must_store_each_id_once() {
        let body = three_events();
        let signature = hmac_hex(WEBHOOK_SECRET, &body);
        let secret = webhook_secret();
        assert_eq!(secret.verify(Some(&signature), &body), Ok(()));
        assert_eq!(secret.verify(Some(&signature), &body), Ok(()));
    }

    #[test]
    fn sign_makes_a_signature_that_verifies_and_matches_the_published_scheme() {
        let body = three_events();
        let secret = webhook_secret();
        let signature = secret.sign(&body);
        assert_eq!(signature, hmac_hex(WEBHOOK_SECRET, &body));
        assert_eq!(secret.verify(Some(&signature), &body), Ok(()));
        assert!(!format!("{secret:?}").contains(WEBHOOK_SECRET));
    }

    #[test]
    fn a_batch_of_three_events_is_read_in_order() {
        let events = gocardless::parse_events(&three_events()).unwrap();
        let summary: Vec<(&str, &str, &str)> = events
            .iter()
            .map(|e| (e.id.as_str(), e.resource_type.as_str(), e.action.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                ("EV000PAYCONF1", "payments", "confirmed"),
                ("EV000PAYFAIL2", "payments", "failed"),
                ("EV000MANDCAN3", "mandates", "cancelled"),
            ]
        );

        let confirmed = &events[0];
        assert_eq!(confirmed.created_at, "2026-05-06T08:00:12.123Z");
        assert_eq!(confirmed.link("payment"), Some("PM000AAA111"));
        assert_eq!(confirmed.details.origin, "gocardless");
        assert_eq!(confirmed.details.cause, "payment_confirmed");
        assert_eq!(confirmed.details.reason_code, None);
        assert_eq!(
            confirmed.resource_metadata,
            metadata(&[("org", "o1"), ("demand", "INV-2026-000041")])
        );
        assert_eq!(confirmed.raw["id"], "EV000PAYCONF1");

        let failed = &events[1];
        assert_eq!(failed.details.cause, "insufficient_funds");
        assert_eq!(failed.details.reason_code.as_deref(), Some("ARUDD-0"));
        assert_eq!(failed.details.scheme.as_deref(), Some("bacs"));
        assert!(failed.resource_metadata.is_empty(), "absent means empty");

        let cancelled = &events[2];
        assert_eq!(cancelled.link("mandate"), Some(MANDATE));
        assert_eq!(cancelled.link("organisation"), Some("OR000PROPLINK"));
        assert_eq!(cancelled.details.reason_code.as_deref(), Some("ADDACS-B"));
    }

    #[test]
    fn a_body_not_in_gocardless_shape_is_refused_naming_the_problem() {
        assert_eq!(
            gocardless::parse_events(b"{\"event\": []}").unwrap_err(),
            "the webhook body has no \"events\" list"
        );
        assert_eq!(
            gocardless::parse_events(&events_body(json!([]))).unwrap_err(),
            "the webhook body's \"events\" list is empty"
        );
        assert!(
            gocardless::parse_events(b"not json")
                .unwrap_err()
                .starts_with("the webhook body is not JSON")
        );
        let no_action = events_body(json!([
            { "id": "EV1", "resource_type": "payments", "action": "created", "created_at": "2026-05-06T08:00:00.000Z" },
            { "id": "EV2", "resource_type": "payments", "created_at": "2026-05-06T08:00:00.000Z" }
        ]));
        assert_eq!(
            gocardless::parse_events(&no_action).unwrap_err(),
            "events[1] (EV2) has no action"
        );
        let no_id = events_body(json!([{ "resource_type": "payments", "action": "created" }]));
        assert_eq!(
            gocardless::parse_events(&no_id).unwrap_err(),
            "events[0] has no id"
        );
        let no_type = events_body(json!([{ "id": "EV3", "action": "created" }]));
        assert_eq!(
            gocardless::parse_events(&no_type).unwrap_err(),
            "events[0] (EV3) has no resource_type"
        );
        let not_object = events_body(json!(["EV4"]));
        assert_eq!(
            gocardless::parse_events(&not_object).unwrap_err(),
            "events[0] is not a JSON object"
        );
    }
}
