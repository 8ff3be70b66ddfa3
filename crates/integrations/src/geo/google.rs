//! Google Maps Platform: the Geocoding API and the (legacy) Places Autocomplete API.
//!
//! Geocoding: `GET /maps/api/geocode/json?address=…&components=country:GB&key=…` answers
//! `{status, results: [{formatted_address, geometry: {location: {lat, lng}}}], error_message}`.
//! Autocomplete: `GET /maps/api/place/autocomplete/json?input=…&components=country:gb&types=address`
//! answers `{status, predictions: [{description, place_id, structured_formatting: {main_text,
//! secondary_text}}]}`; predictions carry no coordinates or separate postcode.
//!
//! Both answer HTTP 200 even for errors and put the outcome in `status`: `OK`, `ZERO_RESULTS`,
//! `OVER_QUERY_LIMIT`, `OVER_DAILY_LIMIT` (quota or billing), `REQUEST_DENIED` (key refused),
//! `INVALID_REQUEST`, `UNKNOWN_ERROR` (a passing server fault), with `error_message` to explain.
//!
//! Static maps use the Maps Static API, `GET /maps/api/staticmap?center=<lat>,<lng>&zoom=…&size=<w>x<h>&scale=2&markers=<lat>,<lng>&key=…`,
//! which answers a PNG, or an HTTP error status (400 for a request it cannot draw, 403 for a
//! refused key or an exhausted quota, 429 for too many requests) with a line of text saying why.

use super::{
    AddressSuggestion, ConfigError, Coordinates, GeoError, GeoPoint, Geocoder, Http, MAP_ZOOM,
    MapImage, MapSize, endpoint, log_failure, map_image,
};
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

pub const PROVIDER: &str = "google";
pub const DEFAULT_BASE_URL: &str = "https://maps.googleapis.com";
const GEOCODE_PATH: &str = "/maps/api/geocode/json";
const AUTOCOMPLETE_PATH: &str = "/maps/api/place/autocomplete/json";
const STATIC_MAP_PATH: &str = "/maps/api/staticmap";

pub struct GoogleGeocoder {
    http: Http,
    geocode: Url,
    autocomplete: Url,
    static_map: Url,
}

impl GoogleGeocoder {
    /// `base_url` defaults to [`DEFAULT_BASE_URL`]. Install the rustls crypto provider first.
    pub fn new(api_key: SecretString, base_url: Option<&str>) -> Result<Self, ConfigError> {
        Ok(Self {
            http: Http::new(PROVIDER, api_key)?,
            geocode: endpoint(base_url, DEFAULT_BASE_URL, GEOCODE_PATH)?,
            autocomplete: endpoint(base_url, DEFAULT_BASE_URL, AUTOCOMPLETE_PATH)?,
            static_map: endpoint(base_url, DEFAULT_BASE_URL, STATIC_MAP_PATH)?,
        })
    }

    /// Replaces [`super::DEFAULT_TIMEOUT`] for each look-up.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.http.timeout = timeout;
        self
    }

    /// Calls `endpoint` with `params` and the key; `None` for `ZERO_RESULTS`.
    async fn call<T: DeserializeOwned>(
        &self,
        endpoint: &Url,
        params: &[(&str, &str)],
    ) -> Result<Option<T>, GeoError> {
        let mut url = endpoint.clone();
        url.query_pairs_mut()
            .extend_pairs(params)
            .append_pair("key", self.http.key.expose_secret());
        let (status, body) = self.http.get(url).await?;
        let envelope = serde_json::from_str::<Envelope>(&body);
        if !status.is_success() {
            let message = envelope.ok().and_then(|e| e.error_message);
            return Err(self.http_error(status, message));
        }
        let envelope = envelope.map_err(|e| GeoError::BadResponse(format!("Google: {e}")))?;
        match envelope.status.as_str() {
            "OK" => serde_json::from_str(&body)
                .map(Some)
                .map_err(|e| GeoError::BadResponse(format!("Google: {e}"))),
            "ZERO_RESULTS" => Ok(None),
            "OVER_QUERY_LIMIT" | "OVER_DAILY_LIMIT" => Err(GeoError::QuotaExceeded),
            "REQUEST_DENIED" => {
                // Google says why (key invalid, API not enabled, referrer not allowed): the
                // operator needs that, the user does not.
                tracing::warn!(
                    provider = PROVIDER,
                    reason = self.explain(envelope.error_message.as_deref()),
                    "Google refused the API key"
                );
                Err(GeoError::Unauthorised)
            }
            "INVALID_REQUEST" => Err(GeoError::InvalidRequest(
                self.explain(envelope.error_message.as_deref()),
            )),
            "UNKNOWN_ERROR" => Err(GeoError::Unavailable(format!(
                "Google answered UNKNOWN_ERROR: {}",
                self.explain(envelope.error_message.as_deref())
            ))),
            other => Err(GeoError::BadResponse(format!(
                "Google: unknown status {other:?}"
            ))),
        }
    }

    fn http_error(&self, status: StatusCode, message: Option<String>) -> GeoError {
        let message = || match message.as_deref() {
            Some(m) if !m.trim().is_empty() => self.http.redact(m),
            _ => status.to_string(),
        };
        match status.as_u16() {
            401 | 403 => GeoError::Unauthorised,
            429 => GeoError::QuotaExceeded,
            400..=499 => GeoError::InvalidRequest(message()),
            500..=599 => GeoError::Unavailable(format!("Google answered {}", message())),
            _ => GeoError::BadResponse(format!("Google answered {status}")),
        }
    }

    fn explain(&self, error_message: Option<&str>) -> String {
        match error_message {
            Some(m) if !m.trim().is_empty() => self.http.redact(m),
            _ => "no reason given".into(),
        }
    }
}

impl std::fmt::Debug for GoogleGeocoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleGeocoder")
            .field("geocode", &self.geocode.as_str())
            .field("autocomplete", &self.autocomplete.as_str())
            .field("static_map", &self.static_map.as_str())
            .field("http", &self.http)
            .finish()
    }
}

#[async_trait::async_trait]
impl Geocoder for GoogleGeocoder {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    async fn geocode(&self, address: &str) -> Result<Option<GeoPoint>, GeoError> {
        let address = address.trim();
        if address.is_empty() {
            return Ok(None);
        }
        let found = async {
            let params = [("address", address), ("components", "country:GB")];
            let Some(answer) = self.call::<GeocodeAnswer>(&self.geocode, &params).await? else {
                return Ok(None);
            };
            let Some(best) = answer.results.into_iter().next() else {
                return Ok(None);
            };
            let at = best.geometry.location;
            Ok(Some(GeoPoint::new(
                Coordinates::checked(at.lat, at.lng)?,
                best.formatted_address,
            )))
        };
        found
            .await
            .inspect_err(|e| log_failure(PROVIDER, "geocode", e))
    }

    async fn autocomplete(&self, partial: &str) -> Result<Vec<AddressSuggestion>, GeoError> {
        let partial = partial.trim();
        if partial.is_empty() {
            return Ok(Vec::new());
        }
        let params = [
            ("input", partial),
            ("components", "country:gb"),
            ("types", "address"),
        ];
        let answer = self
            .call::<AutocompleteAnswer>(&self.autocomplete, &params)
            .await
            .inspect_err(|e| log_failure(PROVIDER, "autocomplete", e))?;
        Ok(answer
            .map(|a| a.predictions)
            .unwrap_or_default()
            .into_iter()
            .take(super::SUGGESTION_LIMIT)
            .map(Prediction::suggestion)
            .collect())
    }

    async fn static_map(&self, at: Coordinates, size: MapSize) -> Result<MapImage, GeoError> {
        let drawn = async {
            let centre = format!("{:.5},{:.5}", at.latitude, at.longitude);
            let mut url = self.static_map.clone();
            url.query_pairs_mut()
                .append_pair("center", &centre)
                .append_pair("zoom", &MAP_ZOOM.to_string())
                .append_pair("size", &format!("{}x{}", size.width(), size.height()))
                .append_pair("scale", "2")
                .append_pair("markers", &format!("color:0x1d4ed8|{centre}"))
                .append_pair("key", self.http.key.expose_secret());
            let (status, content_type, body) = self.http.get_image(url).await?;
            if status.is_success() {
                return map_image("Google", &content_type, body);
            }
            // The Static API explains itself in a line of text, not the JSON envelope.
            let said = self.http.redact(String::from_utf8_lossy(&body).trim());
            let over_quota = ["quota", "limit", "billing"]
                .iter()
                .any(|w| said.to_ascii_lowercase().contains(w));
            Err(match status.as_u16() {
                403 | 429 if over_quota => GeoError::QuotaExceeded,
                _ => self.http_error(status, Some(said)),
            })
        };
        drawn
            .await
            .inspect_err(|e| log_failure(PROVIDER, "static map", e))
    }
}

/// The part of every answer that says how it went.
#[derive(Deserialize)]
struct Envelope {
    status: String,
    error_message: Option<String>,
}

#[derive(Deserialize)]
struct GeocodeAnswer {
    results: Vec<GeocodeResult>,
}

#[derive(Deserialize)]
struct GeocodeResult {
    formatted_address: String,
    geometry: Geometry,
}

#[derive(Deserialize)]
struct Geometry {
    location: Location,
}

#[derive(Deserialize)]
struct Location {
    lat: f64,
    lng: f64,
}

#[derive(Deserialize)]
struct AutocompleteAnswer {
    predictions: Vec<Prediction>,
}

#[derive(Deserialize)]
struct Prediction {
    description: String,
    place_id: Option<String>,
    structured_formatting: Option<StructuredFormatting>,
}

#[derive(Deserialize)]
struct StructuredFormatting {
    main_text: String,
    secondary_text: Option<String>,
}

impl Prediction {
    fn suggestion(self) -> AddressSuggestion {
        let (line_1, rest) = match self.structured_formatting {
            Some(s) => (s.main_text, s.secondary_text.unwrap_or_default()),
            // Without the split, the description's first part is the street line.
            None => match self.description.split_once(',') {
                Some((first, rest)) => (first.trim().to_owned(), rest.to_owned()),
                None => (self.description.clone(), String::new()),
            },
        };
        let Secondary {
            line_2,
            city,
            postcode,
        } = Secondary::parse(&rest);
        AddressSuggestion {
            label: self.description,
            line_1,
            line_2,
            city,
            postcode,
            point: None,
            place_id: self.place_id,
        }
    }
}

/// Google's `secondary_text`, such as "Westminster, London SW1A 2AA, UK", read best-effort:
/// the country goes, a trailing postcode is taken off, the last part is the town and anything
/// before it the locality.
#[derive(Debug, PartialEq)]
struct Secondary {
    line_2: Option<String>,
    city: Option<String>,
    postcode: Option<String>,
}

const COUNTRY_PARTS: &[&str] = &[
    "uk",
    "united kingdom",
    "great britain",
    "england",
    "scotland",
    "wales",
    "northern ireland",
];

impl Secondary {
    fn parse(text: &str) -> Self {
        let mut parts: Vec<String> = text
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        while parts
            .last()
            .is_some_and(|p| COUNTRY_PARTS.contains(&p.to_lowercase().as_str()))
        {
            parts.pop();
        }
        let mut postcode = None;
        if let Some(last) = parts.last_mut()
            && let Some((rest, code)) = split_trailing_postcode(last)
        {
            postcode = Some(code);
            *last = rest;
        }
        parts.retain(|p| !p.is_empty());
        let city = parts.pop();
        let line_2 = (!parts.is_empty()).then(|| parts.join(", "));
        Self {
            line_2,
            city,
            postcode,
        }
    }
}

/// "London SW1A 2AA" → ("London", "SW1A 2AA"). Checks the shape only (outward code of two to
/// four characters starting with a letter, inward code digit-letter-letter).
fn split_trailing_postcode(text: &str) -> Option<(String, String)> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let [rest @ .., outward, inward] = words.as_slice() else {
        return None;
    };
    let outward_ok = (2..=4).contains(&outward.len())
        && outward.chars().all(|c| c.is_ascii_alphanumeric())
        && outward.starts_with(|c: char| c.is_ascii_alphabetic())
        && outward.contains(|c: char| c.is_ascii_digit());
    let inward_ok = matches!(inward.as_bytes(), [d, a, b]
        if d.is_ascii_digit() && a.is_ascii_alphabetic() && b.is_ascii_alphabetic());
    (outward_ok && inward_ok).then(|| {
        (
            rest.join(" "),
            format!(
                "{} {}",
                outward.to_ascii_uppercase(),
                inward.to_ascii_uppercase()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secondary(line_2: Option<&str>, city: Option<&str>, postcode: Option<&str>) -> Secondary {
        Secondary {
            line_2: line_2.map(Into::into),
            city: city.map(Into::into),
            postcode: postcode.map(Into::into),
        }
    }

    #[test]
    fn secondary_text_gives_town_locality_and_postcode() {
        assert_eq!(
            Secondary::parse("London, UK"),
            secondary(None, Some("London"), None)
        );
        assert_eq!(
            Secondary::parse("Westminster, London SW1A 2AA, UK"),
            secondary(Some("Westminster"), Some("London"), Some("SW1A 2AA"))
        );
        assert_eq!(
            Secondary::parse("Clifton, Bristol, England, United Kingdom"),
            secondary(Some("Clifton"), Some("Bristol"), None)
        );
        assert_eq!(
            Secondary::parse("m1 1ae, UK"),
            secondary(None, None, Some("M1 1AE"))
        );
        assert_eq!(Secondary::parse(""), secondary(None, None, None));
    }

    #[test]
    fn street_words_are_not_mistaken_for_postcodes() {
        assert_eq!(split_trailing_postcode("Flat 2B"), None);
        assert_eq!(split_trailing_postcode("Manchester"), None);
        assert_eq!(
            split_trailing_postcode("Leeds LS1 4AP"),
            Some(("Leeds".into(), "LS1 4AP".into()))
        );
    }
}
