//! The browser harness itself: Chromium reaches a tenant host on loopback, fills and submits a
//! form, and the helpers read back the page, its URL and its cookies.

use axum::Router;
use axum::extract::Form;
use axum::http::header::{HOST, HeaderMap, SET_COOKIE};
use axum::response::{AppendHeaders, Html, IntoResponse};
use axum::routing::get;
use proplink_test_support::browser::Browser;
use std::collections::HashMap;
use std::time::Instant;

async fn form(headers: HeaderMap) -> impl IntoResponse {
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    (
        AppendHeaders([(SET_COOKIE, "visited=yes; Path=/; HttpOnly; SameSite=Lax")]),
        Html(format!(
            r#"<!doctype html><title>Form</title>
<h1>Hello {}</h1>
<form method="post" action="/echo">
  <label for="name">Name</label>
  <input id="name" name="name" value="placeholder">
  <button type="submit">Send</button>
</form>"#,
            escape(host)
        )),
    )
}

async fn echo(Form(fields): Form<HashMap<String, String>>) -> Html<String> {
    let name = fields.get("name").map(String::as_str).unwrap_or_default();
    Html(format!(
        r#"<!doctype html><title>Echo</title><p id="result">You said {}</p>"#,
        escape(name)
    ))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[tokio::test]
async fn browser_fills_and_submits_a_form_on_a_tenant_host() {
    let started = Instant::now();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local address: {e}"))
        .port();
    let app = Router::new()
        .route("/", get(form))
        .route("/echo", axum::routing::post(echo));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let browser = Browser::launch().await;
    let page = browser.new_page().await;
    let launched = started.elapsed();

    let home = format!("http://goldcrest.proplink.localhost:{port}/");
    page.goto(&home).await;
    assert_eq!(
        page.text("h1").await,
        format!("Hello goldcrest.proplink.localhost:{port}")
    );
    page.fill("#name", "Ada Lovelace & <Co>").await;
    page.click_and_wait_navigation("button[type=submit]").await;

    assert_eq!(page.text("#result").await, "You said Ada Lovelace & <Co>");
    assert_eq!(
        page.wait_for_text("#result", "Lovelace").await,
        "You said Ada Lovelace & <Co>"
    );
    assert_eq!(page.url().await, format!("{home}echo"));
    assert!(
        page.wait_for_url_containing("/echo")
            .await
            .ends_with("/echo")
    );
    assert!(page.html().await.contains("&lt;Co&gt;"));
    assert_eq!(page.evaluate_string("document.title").await, "Echo");

    let cookies = page.cookies().await;
    let visited = cookies
        .iter()
        .find(|c| c.name == "visited")
        .unwrap_or_else(|| panic!("no `visited` cookie in {cookies:?}"));
    assert_eq!(visited.value, "yes");
    assert!(visited.http_only);
    assert_eq!(visited.domain, "goldcrest.proplink.localhost");

    browser.close().await;
    server.abort();
    eprintln!(
        "launch + new_page: {launched:?}; whole test: {:?}",
        started.elapsed()
    );
}
