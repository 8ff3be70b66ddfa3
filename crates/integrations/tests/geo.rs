//! Geocoding against wiremock stand-ins answering as Mapbox's Geocoding API v6 and Google's
//! Geocoding and Places Autocomplete APIs document, errors included.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails by panicking, helpers included"
)]

use proplink_integrations::geo::{
    self, AddressSuggestion, Coordinates, GeoError, GeoPoint, Geocoder, GoogleGeocoder, MapSize,
    MapboxGeocoder,
};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::time::Duration;
use wiremock::matchers::{method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const MAPBOX_TOKEN: &str = "pk.eyJ1IjoicHJvcGxpbmsiLCJhIjoidGVzdCJ9.secret-mapbox-token";
const GOOGLE_KEY: &str = "AIzaSyTEST-secret-google-key_0123456789";
const MAPBOX_PATH: &str = "/search/geocode/v6/forward";
const GOOGLE_GEOCODE_PATH: &str = "/maps/api/geocode/json";
const GOOGLE_AUTOCOMPLETE_PATH: &str = "/maps/api/place/autocomplete/json";

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn mapbox(server: &MockServer) -> MapboxGeocoder {
    install_crypto();
    MapboxGeocoder::new(
        SecretString::from(MAPBOX_TOKEN.to_owned()),
        Some(&server.uri()),
    )
    .unwrap()
}

fn google(server: &MockServer) -> GoogleGeocoder {
    install_crypto();
    GoogleGeocoder::new(
        SecretString::from(GOOGLE_KEY.to_owned()),
        Some(&server.uri()),
    )
    .unwrap()
}

/// A v6 address feature as Mapbox returns it for 10 Downing Street.
fn downing_street_feature() -> Value {
    json!({
        "type": "Feature",
        "id": "dXJuOm1ieGFkcjpkb3duaW5nLTEw",
        "geometry": { "type": "Point", "coordinates": [-0.127695, 51.503396] },
        "properties": {
            "mapbox_id": "dXJuOm1ieGFkcjpkb3duaW5nLTEw",
            "feature_type": "address",
            "full_address": "10 Downing Street, London, SW1A 2AA, United Kingdom",
            "name": "10 Downing Street",
            "name_preferred": "10 Downing Street",
            "coordinates": {
                "longitude": -0.127695,
                "latitude": 51.503396,
                "accuracy": "rooftop",
                "routable_points": [{ "name": "default", "latitude": 51.50328, "longitude": -0.12775 }]
            },
            "place_formatted": "London, SW1A 2AA, United Kingdom",
            "match_code": { "address_number": "matched", "street": "matched", "confidence": "exact" },
            "context": {
                "address": {
                    "mapbox_id": "dXJuOm1ieGFkcjpkb3duaW5nLTEw",
                    "address_number": "10",
                    "street_name": "Downing Street",
                    "name": "10 Downing Street"
                },
                "street": { "mapbox_id": "dXJuOm1ieGFkcjpzdHJlZXQ", "name": "Downing Street" },
                "postcode": { "mapbox_id": "dXJuOm1ieHBsYzpwb3N0Y29kZQ", "name": "SW1A 2AA" },
                "locality": { "mapbox_id": "dXJuOm1ieHBsYzpsb2NhbGl0eQ", "name": "Westminster" },
                "place": { "mapbox_id": "dXJuOm1ieHBsYzpwbGFjZQ", "name": "London", "wikidata_id": "Q84" },
                "region": {
                    "mapbox_id": "dXJuOm1ieHBsYzpyZWdpb24", "name": "England",
                    "region_code": "ENG", "region_code_full": "GB-ENG"
                },
                "country": {
                    "mapbox_id": "dXJuOm1ieHBsYzpjb3VudHJ5", "name": "United Kingdom",
                    "country_code": "GB", "country_code_alpha_3": "GBR"
                }
            }
        }
    })
}

/// A v6 postcode feature: the postcode is the feature's own name.
fn postcode_feature() -> Value {
    json!({
        "type": "Feature",
        "id": "dXJuOm1ieHBsYzpTVzFBMkFB",
        "geometry": { "type": "Point", "coordinates": [-0.12766, 51.50344] },
        "properties": {
            "mapbox_id": "dXJuOm1ieHBsYzpTVzFBMkFB",
            "feature_type": "postcode",
            "full_address": "SW1A 2AA, London, England, United Kingdom",
            "name": "SW1A 2AA",
            "place_formatted": "London, England, United Kingdom",
            "coordinates": { "longitude": -0.12766, "latitude": 51.50344 },
            "context": {
                "place": { "mapbox_id": "dXJuOm1ieHBsYzpwbGFjZQ", "name": "London" },
                "region": { "mapbox_id": "dXJuOm1ieHBsYzpyZWdpb24", "name": "England" },
                "country": { "mapbox_id": "dXJuOm1ieHBsYzpjb3VudHJ5", "name": "United Kingdom", "country_code": "GB" }
            }
        }
    })
}

fn feature_collection(features: Vec<Value>) -> Value {
    json!({
        "type": "FeatureCollection",
        "features": features,
        "attribution": "NOTICE: © 2025 Mapbox and its suppliers. All rights reserved."
    })
}

async fn mapbox_answers(server: &MockServer, response: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(MAPBOX_PATH))
        .respond_with(response)
        .mount(server)
        .await;
}

async fn google_answers(server: &MockServer, response: ResponseTemplate) {
    Mock::given(method("GET"))
        .respond_with(response)
        .mount(server)
        .await;
}

fn google_status(status: &str, error_message: Option<&str>) -> ResponseTemplate {
    let mut body = json!({ "status": status, "results": [] });
    if let Some(message) = error_message {
        body["error_message"] = message.into();
    }
    ResponseTemplate::new(200).set_body_json(body)
}

// ---- Mapbox ----

#[tokio::test]
async fn mapbox_geocode_sends_gb_restricted_query_and_reads_longitude_first() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MAPBOX_PATH))
        .and(query_param("q", "10 Downing Street, London"))
        .and(query_param("country", "gb"))
        .and(query_param("limit", "1"))
        .and(query_param("access_token", MAPBOX_TOKEN))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(feature_collection(vec![downing_street_feature()])),
        )
        .expect(1)
        .mount(&server)
        .await;

    let point = mapbox(&server)
        .geocode("  10 Downing Street, London ")
        .await
        .unwrap();

    assert_eq!(
        point,
        Some(GeoPoint {
            latitude: 51.503396,
            longitude: -0.127695,
            formatted: "10 Downing Street, London, SW1A 2AA, United Kingdom".into(),
        })
    );
}

#[tokio::test]
async fn mapbox_autocomplete_fills_the_address_form_from_addresses_and_postcodes() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MAPBOX_PATH))
        .and(query_param("q", "10 downing"))
        .and(query_param("autocomplete", "true"))
        .and(query_param("limit", "5"))
        .and(query_param("types", "address,postcode"))
        .and(query_param("country", "gb"))
        .and(query_param("access_token", MAPBOX_TOKEN))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(feature_collection(vec![
                downing_street_feature(),
                postcode_feature(),
            ])),
        )
        .expect(1)
        .mount(&server)
        .await;

    let suggestions = mapbox(&server).autocomplete("10 downing").await.unwrap();

    assert_eq!(
        suggestions,
        vec![
            AddressSuggestion {
                label: "10 Downing Street, London, SW1A 2AA, United Kingdom".into(),
                line_1: "10 Downing Street".into(),
                line_2: Some("Westminster".into()),
                city: Some("London".into()),
                postcode: Some("SW1A 2AA".into()),
                point: Some(Coordinates {
                    latitude: 51.503396,
                    longitude: -0.127695
                }),
                place_id: Some("dXJuOm1ieGFkcjpkb3duaW5nLTEw".into()),
            },
            AddressSuggestion {
                label: "SW1A 2AA, London, England, United Kingdom".into(),
                line_1: String::new(),
                line_2: None,
                city: Some("London".into()),
                postcode: Some("SW1A 2AA".into()),
                point: Some(Coordinates {
                    latitude: 51.50344,
                    longitude: -0.12766
                }),
                place_id: Some("dXJuOm1ieHBsYzpTVzFBMkFB".into()),
            },
        ]
    );
}

#[tokio::test]
async fn mapbox_with_no_features_finds_nothing() {
    let server = MockServer::start().await;
    mapbox_answers(
        &server,
        ResponseTemplate::new(200).set_body_json(feature_collection(vec![])),
    )
    .await;
    let client = mapbox(&server);
    assert_eq!(client.geocode("Nowhere Lane, Atlantis").await, Ok(None));
    assert_eq!(client.autocomplete("Nowhere La").await, Ok(vec![]));
}

#[tokio::test]
async fn blank_input_sends_no_request() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    assert_eq!(mapbox(&server).geocode("   ").await, Ok(None));
    assert_eq!(mapbox(&server).autocomplete("").await, Ok(vec![]));
    assert_eq!(google(&server).geocode("").await, Ok(None));
    assert_eq!(google(&server).autocomplete(" ").await, Ok(vec![]));
}

#[tokio::test]
async fn mapbox_429_is_quota_exceeded() {
    let server = MockServer::start().await;
    mapbox_answers(
        &server,
        ResponseTemplate::new(429)
            .insert_header("X-Rate-Limit-Limit", "600")
            .insert_header("X-Rate-Limit-Interval", "60")
            .set_body_json(json!({ "message": "Too Many Requests" })),
    )
    .await;
    let client = mapbox(&server);
    assert_eq!(
        client.geocode("1 High Street").await,
        Err(GeoError::QuotaExceeded)
    );
    assert_eq!(
        client.autocomplete("1 High").await,
        Err(GeoError::QuotaExceeded)
    );
}

#[tokio::test]
async fn mapbox_401_and_403_are_unauthorised() {
    let server = MockServer::start().await;
    mapbox_answers(
        &server,
        ResponseTemplate::new(401)
            .set_body_json(json!({ "message": "Not Authorized - Invalid Token" })),
    )
    .await;
    assert_eq!(
        mapbox(&server).geocode("1 High Street").await,
        Err(GeoError::Unauthorised)
    );

    let server = MockServer::start().await;
    mapbox_answers(
        &server,
        ResponseTemplate::new(403).set_body_json(json!({ "message": "Forbidden" })),
    )
    .await;
    assert_eq!(
        mapbox(&server).autocomplete("1 High").await,
        Err(GeoError::Unauthorised)
    );
}

#[tokio::test]
async fn mapbox_422_is_an_invalid_request_quoting_mapbox() {
    let server = MockServer::start().await;
    mapbox_answers(
        &server,
        ResponseTemplate::new(422)
            .set_body_json(json!({ "message": "Query too long - 300/256 characters" })),
    )
    .await;
    let error = mapbox(&server)
        .geocode(&"a ".repeat(150))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        GeoError::InvalidRequest("Query too long - 300/256 characters".into())
    );
    assert!(error.to_string().contains("Query too long"), "{error}");
}

#[tokio::test]
async fn mapbox_500_is_unavailable() {
    let server = MockServer::start().await;
    mapbox_answers(
        &server,
        ResponseTemplate::new(500).set_body_string("Internal Server Error"),
    )
    .await;
    let error = mapbox(&server).geocode("1 High Street").await.unwrap_err();
    assert!(matches!(error, GeoError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn mapbox_garbage_is_a_bad_response() {
    let server = MockServer::start().await;
    mapbox_answers(
        &server,
        ResponseTemplate::new(200).set_body_string("<html>captive portal</html>"),
    )
    .await;
    let client = mapbox(&server);
    let error = client.geocode("1 High Street").await.unwrap_err();
    assert!(matches!(error, GeoError::BadResponse(_)), "{error:?}");
    let error = client.autocomplete("1 High").await.unwrap_err();
    assert!(matches!(error, GeoError::BadResponse(_)), "{error:?}");
}

#[tokio::test]
async fn a_slow_provider_is_unavailable_after_the_timeout() {
    let server = MockServer::start().await;
    mapbox_answers(
        &server,
        ResponseTemplate::new(200)
            .set_body_json(feature_collection(vec![]))
            .set_delay(Duration::from_secs(2)),
    )
    .await;
    let client = mapbox(&server).with_timeout(Duration::from_millis(200));
    let error = client.geocode("1 High Street").await.unwrap_err();
    assert!(matches!(error, GeoError::Unavailable(_)), "{error:?}");
}

// ---- Google ----

#[tokio::test]
async fn google_geocode_sends_gb_restricted_query_and_reads_the_first_result() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(GOOGLE_GEOCODE_PATH))
        .and(query_param("address", "10 Downing Street, London"))
        .and(query_param("components", "country:GB"))
        .and(query_param("key", GOOGLE_KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "results": [{
                "address_components": [
                    { "long_name": "10", "short_name": "10", "types": ["street_number"] },
                    { "long_name": "Downing Street", "short_name": "Downing St", "types": ["route"] },
                    { "long_name": "London", "short_name": "London", "types": ["postal_town"] },
                    { "long_name": "United Kingdom", "short_name": "GB", "types": ["country", "political"] },
                    { "long_name": "SW1A 2AA", "short_name": "SW1A 2AA", "types": ["postal_code"] }
                ],
                "formatted_address": "10 Downing St, London SW1A 2AA, UK",
                "geometry": {
                    "location": { "lat": 51.5033635, "lng": -0.1276248 },
                    "location_type": "ROOFTOP",
                    "viewport": {
                        "northeast": { "lat": 51.5047, "lng": -0.1262 },
                        "southwest": { "lat": 51.5020, "lng": -0.1289 }
                    }
                },
                "place_id": "ChIJRxzRQcUEdkgRGVaKyzmkgvg",
                "types": ["street_address"]
            }],
            "status": "OK"
        })))
        .expect(1)
        .mount(&server)
        .await;

    let point = google(&server)
        .geocode("10 Downing Street, London")
        .await
        .unwrap();

    assert_eq!(
        point,
        Some(GeoPoint {
            latitude: 51.5033635,
            longitude: -0.1276248,
            formatted: "10 Downing St, London SW1A 2AA, UK".into(),
        })
    );
}

#[tokio::test]
async fn google_autocomplete_splits_predictions_for_the_form() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(GOOGLE_AUTOCOMPLETE_PATH))
        .and(query_param("input", "10 Downing"))
        .and(query_param("components", "country:gb"))
        .and(query_param("types", "address"))
        .and(query_param("key", GOOGLE_KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "predictions": [
                {
                    "description": "10 Downing Street, London, UK",
                    "matched_substrings": [{ "length": 10, "offset": 0 }],
                    "place_id": "ChIJRxzRQcUEdkgRGVaKyzmkgvg",
                    "reference": "ChIJRxzRQcUEdkgRGVaKyzmkgvg",
                    "structured_formatting": {
                        "main_text": "10 Downing Street",
                        "main_text_matched_substrings": [{ "length": 10, "offset": 0 }],
                        "secondary_text": "London, UK"
                    },
                    "terms": [
                        { "offset": 0, "value": "10" },
                        { "offset": 3, "value": "Downing Street" },
                        { "offset": 19, "value": "London" },
                        { "offset": 27, "value": "UK" }
                    ],
                    "types": ["premise", "geocode"]
                },
                {
                    "description": "10 Downing Road, Clifton, Bristol BS8 1AA, UK",
                    "place_id": "ChIJfake-second",
                    "structured_formatting": {
                        "main_text": "10 Downing Road",
                        "secondary_text": "Clifton, Bristol BS8 1AA, UK"
                    },
                    "types": ["street_address", "geocode"]
                }
            ],
            "status": "OK"
        })))
        .expect(1)
        .mount(&server)
        .await;

    let suggestions = google(&server).autocomplete("10 Downing").await.unwrap();

    assert_eq!(
        suggestions,
        vec![
            AddressSuggestion {
                label: "10 Downing Street, London, UK".into(),
                line_1: "10 Downing Street".into(),
                line_2: None,
                city: Some("London".into()),
                postcode: None,
                point: None,
                place_id: Some("ChIJRxzRQcUEdkgRGVaKyzmkgvg".into()),
            },
            AddressSuggestion {
                label: "10 Downing Road, Clifton, Bristol BS8 1AA, UK".into(),
                line_1: "10 Downing Road".into(),
                line_2: Some("Clifton".into()),
                city: Some("Bristol".into()),
                postcode: Some("BS8 1AA".into()),
                point: None,
                place_id: Some("ChIJfake-second".into()),
            },
        ]
    );
}

#[tokio::test]
async fn google_zero_results_finds_nothing() {
    let server = MockServer::start().await;
    google_answers(
        &server,
        ResponseTemplate::new(200)
            .set_body_json(json!({ "predictions": [], "results": [], "status": "ZERO_RESULTS" })),
    )
    .await;
    let client = google(&server);
    assert_eq!(client.geocode("Nowhere Lane, Atlantis").await, Ok(None));
    assert_eq!(client.autocomplete("Nowhere La").await, Ok(vec![]));
}

#[tokio::test]
async fn google_over_query_or_daily_limit_is_quota_exceeded() {
    for status in ["OVER_QUERY_LIMIT", "OVER_DAILY_LIMIT"] {
        let server = MockServer::start().await;
        google_answers(
            &server,
            google_status(
                status,
                Some("You have exceeded your daily request quota for this API."),
            ),
        )
        .await;
        let client = google(&server);
        assert_eq!(
            client.geocode("1 High Street").await,
            Err(GeoError::QuotaExceeded),
            "{status}"
        );
        assert_eq!(
            client.autocomplete("1 High").await,
            Err(GeoError::QuotaExceeded),
            "{status}"
        );
    }
}

#[tokio::test]
async fn google_http_429_is_quota_exceeded() {
    let server = MockServer::start().await;
    google_answers(&server, ResponseTemplate::new(429)).await;
    assert_eq!(
        google(&server).geocode("1 High Street").await,
        Err(GeoError::QuotaExceeded)
    );
}

#[tokio::test]
async fn google_request_denied_is_unauthorised_without_googles_wording() {
    let server = MockServer::start().await;
    google_answers(
        &server,
        google_status("REQUEST_DENIED", Some("The provided API key is invalid. ")),
    )
    .await;
    let client = google(&server);
    let error = client.geocode("1 High Street").await.unwrap_err();
    assert_eq!(error, GeoError::Unauthorised);
    assert!(!error.to_string().contains("API key is invalid"));
    assert_eq!(
        client.autocomplete("1 High").await,
        Err(GeoError::Unauthorised)
    );
}

#[tokio::test]
async fn google_invalid_request_quotes_google() {
    let server = MockServer::start().await;
    google_answers(
        &server,
        google_status(
            "INVALID_REQUEST",
            Some("Invalid request. Missing the 'address', 'components', 'latlng' or 'place_id' parameter."),
        ),
    )
    .await;
    let error = google(&server).geocode("1 High Street").await.unwrap_err();
    assert!(
        matches!(&error, GeoError::InvalidRequest(m) if m.starts_with("Invalid request. Missing")),
        "{error:?}"
    );
}

#[tokio::test]
async fn google_unknown_error_and_http_500_are_unavailable() {
    let server = MockServer::start().await;
    google_answers(&server, google_status("UNKNOWN_ERROR", None)).await;
    let error = google(&server).geocode("1 High Street").await.unwrap_err();
    assert!(matches!(error, GeoError::Unavailable(_)), "{error:?}");

    let server = MockServer::start().await;
    google_answers(
        &server,
        ResponseTemplate::new(500).set_body_string("Server Error"),
    )
    .await;
    let error = google(&server).autocomplete("1 High").await.unwrap_err();
    assert!(matches!(error, GeoError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn google_garbage_is_a_bad_response() {
    let server = MockServer::start().await;
    google_answers(
        &server,
        ResponseTemplate::new(200).set_body_string("not json {"),
    )
    .await;
    let error = google(&server).geocode("1 High Street").await.unwrap_err();
    assert!(matches!(error, GeoError::BadResponse(_)), "{error:?}");

    let server = MockServer::start().await;
    google_answers(&server, google_status("SOMETHING_NEW", None)).await;
    let error = google(&server).autocomplete("1 High").await.unwrap_err();
    assert!(matches!(error, GeoError::BadResponse(_)), "{error:?}");
}

// ---- Both ----

#[tokio::test]
async fn keys_never_appear_in_debug_or_errors() {
    install_crypto();
    // A port with nothing listening: reqwest's own error would print the URL, key and all.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let mapbox =
        MapboxGeocoder::new(SecretString::from(MAPBOX_TOKEN.to_owned()), Some(&closed)).unwrap();
    let google =
        GoogleGeocoder::new(SecretString::from(GOOGLE_KEY.to_owned()), Some(&closed)).unwrap();
    let clients: [&dyn Geocoder; 2] = [&mapbox, &google];

    let mut shown = vec![format!("{mapbox:?}"), format!("{google:?}")];
    for client in clients {
        for error in [
            client.geocode("1 High Street").await.unwrap_err(),
            client.autocomplete("1 High").await.unwrap_err(),
        ] {
            assert!(matches!(error, GeoError::Unavailable(_)), "{error:?}");
            shown.push(format!("{error}"));
            shown.push(format!("{error:?}"));
        }
    }
    // A provider that echoes the key back in its message.
    let server = MockServer::start().await;
    mapbox_answers(
        &server,
        ResponseTemplate::new(422)
            .set_body_json(json!({ "message": format!("bad token {MAPBOX_TOKEN}") })),
    )
    .await;
    let echoed = self::mapbox(&server).geocode("x").await.unwrap_err();
    shown.push(format!("{echoed}"));
    shown.push(format!("{echoed:?}"));

    for text in &shown {
        assert!(!text.contains(MAPBOX_TOKEN), "token shown in {text}");
        assert!(!text.contains(GOOGLE_KEY), "key shown in {text}");
        assert!(!text.contains("secret-"), "part of a key shown in {text}");
    }
}

#[test]
fn every_error_reads_as_advice_to_a_property_manager() {
    let errors = [
        GeoError::NotConfigured,
        GeoError::QuotaExceeded,
        GeoError::Unauthorised,
        GeoError::InvalidRequest("Query too long".into()),
        GeoError::Unavailable("tcp connect error: Connection refused".into()),
        GeoError::BadResponse("expected value at line 1 column 1".into()),
    ];
    for error in errors {
        let message = error.to_string();
        assert!(message.contains("by hand"), "{message}");
        assert!(!message.contains("column 1"), "{message}");
        assert!(!message.contains("tcp connect"), "{message}");
    }
    assert_eq!(
        GeoError::QuotaExceeded.to_string(),
        "The maps provider's usage limit has been reached; enter the address by hand or try again later"
    );
}

#[test]
fn configuration_names_the_provider_or_leaves_entry_manual() {
    install_crypto();
    let key = || Some(SecretString::from("k-123".to_owned()));
    assert!(geo::from_config(None, None).unwrap().is_none());
    assert_eq!(
        geo::from_config(Some("mapbox"), key())
            .unwrap()
            .unwrap()
            .provider(),
        "mapbox"
    );
    assert_eq!(
        geo::from_config(Some("Google"), key())
            .unwrap()
            .unwrap()
            .provider(),
        "google"
    );
    assert_eq!(
        geo::from_config(Some("bing"), key()).err(),
        Some(geo::ConfigError::UnknownProvider("bing".into()))
    );
}

/// The first bytes of every PNG file.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

fn downing_street() -> Coordinates {
    Coordinates {
        latitude: 51.503396,
        longitude: -0.127695,
    }
}

#[tokio::test]
async fn mapbox_static_map_asks_for_a_pinned_street_map_at_double_density() {
    let server = MockServer::start().await;
    // Mapbox puts the pin overlay, the centre (longitude first) and the size in the path.
    Mock::given(method("GET"))
        .and(path(
            "/styles/v1/mapbox/streets-v12/static/pin-l+1d4ed8(-0.12770,51.50340)/-0.12770,51.50340,16/600x300@2x",
        ))
        .and(query_param("access_token", MAPBOX_TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_raw(PNG, "image/png"))
        .expect(1)
        .mount(&server)
        .await;
    let map = mapbox(&server)
        .static_map(downing_street(), MapSize::new(600, 300).unwrap())
        .await
        .unwrap();
    assert_eq!(map.content_type, "image/png");
    assert_eq!(map.bytes, PNG);
}

#[tokio::test]
async fn mapbox_static_map_errors_read_as_the_geocoding_ones() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex("^/styles/v1/"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"message": "Not Authorized - Invalid Token"})),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/styles/v1/"))
        .respond_with(
            ResponseTemplate::new(429).set_body_json(json!({"message": "Too Many Requests"})),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    // A proxy's page instead of an image is not shown as a map.
    Mock::given(method("GET"))
        .and(path_regex("^/styles/v1/"))
        .respond_with(ResponseTemplate::new(200).set_body_raw("<html>hello</html>", "text/html"))
        .mount(&server)
        .await;
    let geocoder = mapbox(&server);
    let size = MapSize::new(600, 300).unwrap();
    assert_eq!(
        geocoder.static_map(downing_street(), size).await,
        Err(GeoError::Unauthorised)
    );
    assert_eq!(
        geocoder.static_map(downing_street(), size).await,
        Err(GeoError::QuotaExceeded)
    );
    assert!(matches!(
        geocoder.static_map(downing_street(), size).await,
        Err(GeoError::BadResponse(_))
    ));
}

#[tokio::test]
async fn google_static_map_centres_and_pins_by_latitude_first() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/maps/api/staticmap"))
        .and(query_param("center", "51.50340,-0.12770"))
        .and(query_param("zoom", "16"))
        .and(query_param("size", "600x300"))
        .and(query_param("scale", "2"))
        .and(query_param("markers", "color:0x1d4ed8|51.50340,-0.12770"))
        .and(query_param("key", GOOGLE_KEY))
        .respond_with(ResponseTemplate::new(200).set_body_raw(PNG, "image/png"))
        .expect(1)
        .mount(&server)
        .await;
    let map = google(&server)
        .static_map(downing_street(), MapSize::new(600, 300).unwrap())
        .await
        .unwrap();
    assert_eq!(map.bytes, PNG);
}

#[tokio::test]
async fn google_static_map_tells_a_refused_key_from_a_spent_quota() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/maps/api/staticmap"))
        .respond_with(ResponseTemplate::new(403).set_body_string(format!(
            "The Google Maps Platform server rejected your request. The provided API key is invalid. ({GOOGLE_KEY})"
        )))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/maps/api/staticmap"))
        .respond_with(ResponseTemplate::new(403).set_body_string(
            "The Google Maps Platform server rejected your request. You have exceeded your daily request quota for this API.",
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/maps/api/staticmap"))
        .respond_with(ResponseTemplate::new(400).set_body_string(
            "The Google Maps Platform server rejected your request. Invalid request. Invalid 'size' parameter.",
        ))
        .mount(&server)
        .await;
    let geocoder = google(&server);
    let size = MapSize::new(600, 300).unwrap();
    assert_eq!(
        geocoder.static_map(downing_street(), size).await,
        Err(GeoError::Unauthorised)
    );
    assert_eq!(
        geocoder.static_map(downing_street(), size).await,
        Err(GeoError::QuotaExceeded)
    );
    match geocoder.static_map(downing_street(), size).await {
        Err(GeoError::InvalidRequest(said)) => {
            assert!(said.contains("Invalid 'size' parameter"), "{said}");
            assert!(!said.contains(GOOGLE_KEY));
        }
        other => panic!("expected an invalid request, got {other:?}"),
    }
}
