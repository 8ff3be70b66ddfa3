//! The Gotenberg client against a wiremock stand-in answering as Gotenberg 8's documentation
//! says, errors included.

use super::gotenberg::{GotenbergClient, GotenbergError, TRACE_HEADER};
use std::time::Duration;
use wiremock::matchers::{header_exists, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const ROUTE: &str = "/forms/chromium/convert/html";
const PAGE: &str = "<!DOCTYPE html><html><body><h1>Service charge demand</h1>\
                    <p>Amount due: £450.00 &amp; more</p></body></html>";
const PDF: &[u8] = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n";

fn client(server: &MockServer) -> GotenbergClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    GotenbergClient::new(&server.uri()).unwrap()
}

/// One part of a multipart/form-data body: its headers (names lower-cased) and its bytes.
struct FormPart {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl FormPart {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn disposition(&self) -> &str {
        self.header("content-disposition").unwrap_or_default()
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

/// Splits a multipart/form-data request at its boundary (RFC 7578), as Gotenberg's server does.
fn form_parts(request: &Request) -> Vec<FormPart> {
    let content_type = request
        .headers
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("multipart/form-data"),
        "{content_type}"
    );
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let body = String::from_utf8(request.body.clone()).unwrap();
    let (_, rest) = body.split_once(&delimiter).unwrap();
    let mut parts = Vec::new();
    for chunk in rest.split(&format!("\r\n{delimiter}")) {
        if chunk.starts_with("--") {
            break; // the closing delimiter
        }
        let chunk = chunk.strip_prefix("\r\n").unwrap();
        let (head, content) = chunk.split_once("\r\n\r\n").unwrap();
        let headers = head
            .split("\r\n")
            .map(|line| {
                let (name, value) = line.split_once(':').unwrap();
                (name.trim().to_ascii_lowercase(), value.trim().to_owned())
            })
            .collect();
        parts.push(FormPart {
            headers,
            body: content.as_bytes().to_vec(),
        });
    }
    parts
}

fn field(parts: &[FormPart], name: &str) -> Option<String> {
    let wanted = format!("name=\"{name}\"");
    parts
        .iter()
        .find(|p| p.disposition().split(';').any(|s| s.trim() == wanted))
        .map(FormPart::text)
}

#[tokio::test]
async fn the_page_is_sent_as_index_html_and_the_pdf_comes_back() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(ROUTE))
        .and(header_exists(TRACE_HEADER))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Content-Type", "application/pdf")
                .insert_header("Content-Disposition", "attachment; filename=index.pdf")
                .set_body_bytes(PDF),
        )
        .expect(1)
        .mount(&server)
        .await;

    let pdf = client(&server).html_to_pdf(PAGE).await.unwrap();
    assert_eq!(pdf, PDF);

    let requests = server.received_requests().await.unwrap();
    let parts = form_parts(&requests[0]);
    let files: Vec<&FormPart> = parts
        .iter()
        .filter(|p| p.disposition().contains("name=\"files\""))
        .collect();
    assert_eq!(files.len(), 1, "one file part");
    let index = files[0];
    assert!(
        index.disposition().contains("filename=\"index.html\""),
        "{}",
        index.disposition()
    );
    assert!(
        index
            .header("content-type")
            .unwrap()
            .starts_with("text/html"),
        "{:?}",
        index.header("content-type")
    );
    assert_eq!(index.text(), PAGE, "the HTML arrives byte for byte");

    assert_eq!(field(&parts, "paperWidth").as_deref(), Some("8.27"));
    assert_eq!(field(&parts, "paperHeight").as_deref(), Some("11.7"));
    for margin in ["marginTop", "marginBottom", "marginLeft", "marginRight"] {
        let inches: f64 = field(&parts, margin).unwrap().parse().unwrap();
        assert!((0.5..1.0).contains(&inches), "{margin} {inches}");
    }
    assert_eq!(field(&parts, "printBackground").as_deref(), Some("true"));

    let trace = requests[0]
        .headers
        .get(TRACE_HEADER)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(uuid::Uuid::parse_str(trace).is_ok(), "{trace}");
}

#[tokio::test]
async fn each_request_has_its_own_trace() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(ROUTE))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(PDF))
        .mount(&server)
        .await;
    let client = client(&server);
    client.html_to_pdf(PAGE).await.unwrap();
    client.html_to_pdf(PAGE).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    assert_ne!(
        requests[0].headers.get(TRACE_HEADER),
        requests[1].headers.get(TRACE_HEADER)
    );
}

#[tokio::test]
async fn a_busy_gotenberg_is_a_transient_error_with_its_reason() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(ROUTE))
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("Content-Type", "text/plain; charset=UTF-8")
                .set_body_string("Service Unavailable"),
        )
        .mount(&server)
        .await;
    let error = client(&server).html_to_pdf(PAGE).await.unwrap_err();
    assert_eq!(
        error,
        GotenbergError::Status {
            status: 503,
            body: "Service Unavailable".into()
        }
    );
    assert!(error.is_transient());
    assert_eq!(
        error.to_string(),
        "Gotenberg answered 503: Service Unavailable"
    );
}

#[tokio::test]
async fn a_refused_form_is_permanent_and_a_long_reason_is_shortened() {
    let server = MockServer::start().await;
    let reason = format!(
        "Invalid form data: form field 'paperWidth' is invalid {}",
        "x".repeat(2000)
    );
    Mock::given(method("POST"))
        .and(path(ROUTE))
        .respond_with(ResponseTemplate::new(400).set_body_string(reason))
        .mount(&server)
        .await;
    let error = client(&server).html_to_pdf(PAGE).await.unwrap_err();
    let GotenbergError::Status { status, body } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(*status, 400);
    assert!(
        body.starts_with("Invalid form data: form field 'paperWidth'"),
        "{body}"
    );
    assert!(
        body.chars().count() <= 301,
        "{} characters",
        body.chars().count()
    );
    assert!(!error.is_transient());
}

#[tokio::test]
async fn a_200_that_is_not_a_pdf_is_refused() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(ROUTE))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw("<html>proxy login</html>", "text/html"),
        )
        .mount(&server)
        .await;
    let error = client(&server).html_to_pdf(PAGE).await.unwrap_err();
    assert_eq!(
        error,
        GotenbergError::NotPdf {
            content_type: "text/html".into()
        }
    );
    assert!(error.to_string().contains("not with a PDF"), "{error}");
}

#[tokio::test]
async fn a_slow_gotenberg_times_out() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(ROUTE))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_bytes(PDF)
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let client = client(&server).with_timeout(Duration::from_millis(200));
    let error = client.html_to_pdf(PAGE).await.unwrap_err();
    assert_eq!(error, GotenbergError::Timeout(Duration::from_millis(200)));
    assert!(error.is_transient());
    assert_eq!(error.to_string(), "Gotenberg did not answer within 0.2 s");
}

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    // A port that was free a moment ago and has nobody on it now.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = GotenbergClient::new(&format!("http://127.0.0.1:{port}/")).unwrap();
    let error = client.html_to_pdf(PAGE).await.unwrap_err();
    let GotenbergError::Unreachable(detail) = &error else {
        panic!("{error:?}");
    };
    assert!(detail.to_lowercase().contains("refused"), "{detail}");
    assert!(!detail.contains(&port.to_string()), "no URL in {detail}");
    assert!(error.is_transient());
}

#[test]
fn base_urls_must_be_http() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    assert!(matches!(
        GotenbergClient::new("ftp://gotenberg"),
        Err(GotenbergError::BadBaseUrl(_))
    ));
    assert!(matches!(
        GotenbergClient::new("not a url"),
        Err(GotenbergError::BadBaseUrl(_))
    ));
    let client = GotenbergClient::new("http://gotenberg:3000/").unwrap();
    assert!(
        format!("{client:?}").contains("http://gotenberg:3000/forms/chromium/convert/html"),
        "{client:?}"
    );
}
