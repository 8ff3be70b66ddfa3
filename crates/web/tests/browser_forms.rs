//! Form conveniences that only a browser running PropLink's script can show: the address
//! look-up filling a form from a maps provider (a wiremock stand-in answering as Mapbox's
//! Geocoding and Static Images APIs document), and the site page's map drawn through our server.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails by panicking, helpers included"
)]

use proplink_domain::permissions::{BuiltInRole, Scope};
use proplink_integrations::geo::MapboxGeocoder;
use proplink_test_support::TestDb;
use proplink_test_support::browser::Browser;
use proplink_test_support::people::{self, Server};
use secrecy::SecretString;
use serde_json::json;
use std::sync::Arc;
use wiremock::matchers::{method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A 2 × 1 pixel PNG (one blue pixel, one white), so the browser has a real image to decode.
const TINY_PNG: [u8; 72] = [
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 2, 0, 0, 0, 1, 8, 2, 0,
    0, 0, 123, 64, 232, 221, 0, 0, 0, 15, 73, 68, 65, 84, 120, 156, 99, 144, 245, 187, 241, 255,
    255, 127, 0, 11, 149, 4, 65, 239, 129, 131, 79, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
];

/// Mapbox's answer for "10 Downing Street", to autocomplete and to geocoding alike.
fn downing_street() -> serde_json::Value {
    json!({
        "type": "FeatureCollection",
        "features": [{
            "type": "Feature",
            "geometry": { "type": "Point", "coordinates": [-0.127695, 51.503396] },
            "properties": {
                "mapbox_id": "dXJuOm1ieGFkcjpkb3duaW5nLTEw",
                "feature_type": "address",
                "full_address": "10 Downing Street, London, SW1A 2AA, United Kingdom",
                "name": "10 Downing Street",
                "place_formatted": "London, SW1A 2AA, United Kingdom",
                "context": {
                    "postcode": { "name": "SW1A 2AA" },
                    "locality": { "name": "Westminster" },
                    "place": { "name": "London" }
                }
            }
        }]
    })
}

async fn mapbox() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/search/geocode/v6/forward"))
        .respond_with(ResponseTemplate::new(200).set_body_json(downing_street()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/styles/v1/mapbox/streets-v12/static/"))
        .and(query_param("access_token", "pk.browser-test"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(TINY_PNG.to_vec(), "image/png"))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn browser_address_lookup_fills_the_site_form_and_the_site_page_shows_the_map() {
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
    let provider = mapbox().await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut settings = people::web_settings();
    settings.geocoder = Some(Arc::new(
        MapboxGeocoder::new(
            SecretString::from("pk.browser-test".to_owned()),
            Some(&provider.uri()),
        )
        .unwrap(),
    ));
    let server = Server::start_with(&db, settings).await;
    let host = "goldcrest.proplink.localhost";
    let browser = Browser::launch().await;
    let page = browser.new_page().await;
    let token = people::session(&db, &org, &maria).await;
    page.set_cookie(&server.url(host, "/"), "pl_session", &token)
        .await;

    page.goto(&server.url(host, "/sites/new")).await;
    // The script shows the look-up; without it the box stays hidden.
    page.wait_for(r#"[data-fill^="address_line_1"]:not([hidden])"#)
        .await;
    page.fill("#lookup-address_line_1", "10 Downing").await;
    page.wait_for_text("#lookup-list-address_line_1", "10 Downing Street, London")
        .await;
    page.click("#lookup-list-address_line_1 .pl-suggestion")
        .await;
    let filled = page
        .evaluate_string(
            "['address_line_1', 'address_line_2', 'city', 'postcode']\
             .map(n => document.getElementById('field-' + n).value).join('|')",
        )
        .await;
    assert_eq!(filled, "10 Downing Street|Westminster|London|SW1A 2AA");
    page.wait_for_text("#lookup-status-address_line_1", "Check the address")
        .await;
    // The look-up itself is never sent with the form.
    assert_eq!(
        page.evaluate_string("String(document.getElementById('lookup-address_line_1').name)")
            .await,
        ""
    );

    // The rest of the form by hand, then save: the site is geocoded and its page shows the map.
    page.fill("#field-reference", "GC-010").await;
    page.fill("#field-name", "Downing Court").await;
    page.click(r#"input[name="module"][value="bm"]"#).await;
    page.fill("#field-landlord_name", "Goldcrest Freehold Ltd")
        .await;
    page.fill("#field-landlord_line_1", "2 Park Row").await;
    page.fill("#field-landlord_postcode", "LS1 5AB").await;
    page.click_and_wait_navigation(r#"form[action="/sites/new"] [type=submit]"#)
        .await;
    page.wait_for("#site-map").await;
    let started = std::time::Instant::now();
    loop {
        let decoded = page
            .evaluate_string(
                "String(document.getElementById('site-map').complete && \
                 document.getElementById('site-map').naturalWidth)",
            )
            .await;
        if decoded == "2" {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the map image did not load: {decoded}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The provider's key stays on the server.
    assert!(!page.html().await.contains("pk.browser-test"));
    browser.close().await;
}

#[tokio::test]
async fn browser_a_lease_holder_beyond_the_first_500_is_found_with_the_pickers_search() {
    use proplink_db::portfolio::{self, SiteInput, UnitInput};
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
    let mut tx = db.app.begin(&db.staff(&org, "Loader")).await.unwrap();
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
            reference: "1".into(),
            name: "Flat 1".into(),
            unit_type: "flat".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    sqlx::query(
        "insert into contact (organisation_id, id, kind, first_name, last_name, display_name)
         select proplink.current_org(), gen_random_uuid(), 'person', 'Anna', 'Able ' || g,
                'Anna Able ' || lpad(g::text, 3, '0')
           from generate_series(1, 505) g
         union all
         select proplink.current_org(), gen_random_uuid(), 'person', 'Zed', 'Zimmerman',
                'Zed Zimmerman'",
    )
    .execute(tx.conn())
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let server = Server::start(&db).await;
    let host = "goldcrest.proplink.localhost";
    let browser = Browser::launch().await;
    let page = browser.new_page().await;
    let token = people::session(&db, &org, &maria).await;
    page.set_cookie(&server.url(host, "/"), "pl_session", &token)
        .await;
    page.goto(&server.url(host, &format!("/units/{unit}/leases/new")))
        .await;
    page.fill("#field-holder_1-search", "zimm").await;
    page.wait_for_text("#field-holder_1", "Zed Zimmerman").await;
    page.evaluate_string(
        "(() => { const s = document.getElementById('field-holder_1'); \
          s.value = [...s.options].find(o => o.textContent.includes('Zimmerman')).value; \
          return 'chosen'; })()",
    )
    .await;
    page.fill("#field-starts_on", "01/06/2024").await;
    page.click_and_wait_navigation(&format!(
        r#"form[action="/units/{unit}/leases/new"] [type=submit]"#
    ))
    .await;
    page.wait_for_text("main", "Zed Zimmerman").await;
    browser.close().await;
}
