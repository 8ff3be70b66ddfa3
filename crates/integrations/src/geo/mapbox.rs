//! Mapbox Geocoding API v6.
//!
//! Both look-ups use forward geocoding, `GET /search/geocode/v6/forward?q=…&access_token=…`,
//! with `country=gb`; autocomplete adds `autocomplete=true` and `types=address,postcode`. The
//! answer is a GeoJSON FeatureCollection: `geometry.coordinates` is `[longitude, latitude]`
//! (GeoJSON order), `properties` holds `name` ("10 Downing Street"), `full_address`, `mapbox_id`,
//! `feature_type` and `context` (`postcode`, `place` = town, `locality`, `neighborhood`).
//! Errors come as an HTTP status with `{"message": …}`: 401 for a bad token, 403 for a token
//! without the scope or from a disallowed URL, 422 for a query Mapbox will not run (too long),
//! 429 for the rate limit.
//!
//! Static maps use the Static Images API,
//! `GET /styles/v1/mapbox/streets-v12/static/pin-s+<colour>(<lon>,<lat>)/<lon>,<lat>,<zoom>/<w>x<h>@2x?access_token=…`,
//! which answers a PNG, or a status with `{"message": …}` as above.

use super::{
    AddressSuggestion, ConfigError, Coordinates, GeoError, GeoPoint, Geocoder, Http, MAP_ZOOM,
    MapImage, MapSize, SUGGESTION_LIMIT, endpoint, log_failure, map_image,
};
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::time::Duration;

pub const PROVIDER: &str = "mapbox";
pub const DEFAULT_BASE_URL: &str = "https://api.mapbox.com";
const FORWARD_PATH: &str = "/search/geocode/v6/forward";
const STATIC_PATH: &str = "/styles/v1/mapbox/streets-v12/static";
/// The pin's colour: PropLink's primary.
const PIN: &str = "pin-l+1d4ed8";

pub struct MapboxGeocoder {
    http: Http,
    forward: Url,
    static_images: Url,
}

impl MapboxGeocoder {
    /// `base_url` defaults to [`DEFAULT_BASE_URL`]. Install the rustls crypto provider first.
    pub fn new(access_token: SecretString, base_url: Option<&str>) -> Result<Self, ConfigError> {
        Ok(Self {
            http: Http::new(PROVIDER, access_token)?,
            forward: endpoint(base_url, DEFAULT_BASE_URL, FORWARD_PATH)?,
            static_images: endpoint(base_url, DEFAULT_BASE_URL, STATIC_PATH)?,
        })
    }

    /// Replaces [`super::DEFAULT_TIMEOUT`] for each look-up.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.http.timeout = timeout;
        self
    }

    async fn forward(&self, params: &[(&str, &str)]) -> Result<Vec<Feature>, GeoError> {
        let mut url = self.forward.clone();
        url.query_pairs_mut()
            .extend_pairs(params)
            .append_pair("country", "gb")
            .append_pair("access_token", self.http.key.expose_secret());
        let (status, body) = self.http.get(url).await?;
        if !status.is_success() {
            return Err(self.status_error(status, &body));
        }
        serde_json::from_str::<FeatureCollection>(&body)
            .map(|collection| collection.features)
            .map_err(|e| GeoError::BadResponse(format!("Mapbox: {e}")))
    }

    fn status_error(&self, status: StatusCode, body: &str) -> GeoError {
        let message = || {
            let said = serde_json::from_str::<ErrorBody>(body)
                .ok()
                .and_then(|b| b.message)
                .filter(|m| !m.trim().is_empty())
                .unwrap_or_else(|| status.to_string());
            self.http.redact(&said)
        };
        match status.as_u16() {
            401 | 403 => GeoError::Unauthorised,
            429 => GeoError::QuotaExceeded,
            400..=499 => GeoError::InvalidRequest(message()),
            500..=599 => GeoError::Unavailable(format!("Mapbox answered {}", message())),
            _ => GeoError::BadResponse(format!("Mapbox answered {status}")),
        }
    }
}

impl std::fmt::Debug for MapboxGeocoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapboxGeocoder")
            .field("endpoint", &self.forward.as_str())
            .field("http", &self.http)
            .finish()
    }
}

#[async_trait::async_trait]
impl Geocoder for MapboxGeocoder {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    async fn geocode(&self, address: &str) -> Result<Option<GeoPoint>, GeoError> {
        let address = address.trim();
        if address.is_empty() {
            return Ok(None);
        }
        let found = async {
            let features = self.forward(&[("q", address), ("limit", "1")]).await?;
            features.into_iter().next().map(Feature::point).transpose()
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
        let limit = SUGGESTION_LIMIT.to_string();
        let features = self
            .forward(&[
                ("q", partial),
                ("autocomplete", "true"),
                ("limit", &limit),
                ("types", "address,postcode"),
            ])
            .await
            .inspect_err(|e| log_failure(PROVIDER, "autocomplete", e))?;
        Ok(features.into_iter().map(Feature::suggestion).collect())
    }

    async fn static_map(&self, at: Coordinates, size: MapSize) -> Result<MapImage, GeoError> {
        let drawn = async {
            let (lon, lat) = (at.longitude, at.latitude);
            let mut url = self.static_images.clone();
            url.path_segments_mut()
                .map_err(|()| GeoError::BadResponse("Mapbox: a base URL without a path".into()))?
                .push(&format!("{PIN}({lon:.5},{lat:.5})"))
                .push(&format!("{lon:.5},{lat:.5},{MAP_ZOOM}"))
                .push(&format!("{}x{}@2x", size.width(), size.height()));
            url.query_pairs_mut()
                .append_pair("access_token", self.http.key.expose_secret());
            let (status, content_type, body) = self.http.get_image(url).await?;
            if !status.is_success() {
                return Err(self.status_error(status, &String::from_utf8_lossy(&body)));
            }
            map_image("Mapbox", &content_type, body)
        };
        drawn
            .await
            .inspect_err(|e| log_failure(PROVIDER, "static map", e))
    }
}

#[derive(Deserialize)]
struct FeatureCollection {
    features: Vec<Feature>,
}

#[derive(Deserialize)]
struct Feature {
    geometry: Option<Geometry>,
    #[serde(default)]
    properties: Properties,
}

#[derive(Deserialize)]
struct Geometry {
    /// GeoJSON order: longitude first.
    coordinates: Vec<f64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Properties {
    mapbox_id: Option<String>,
    feature_type: Option<String>,
    name: Option<String>,
    full_address: Option<String>,
    place_formatted: Option<String>,
    coordinates: Option<PropertyCoordinates>,
    context: Context,
}

#[derive(Deserialize)]
struct PropertyCoordinates {
    latitude: f64,
    longitude: f64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Context {
    postcode: Option<Named>,
    place: Option<Named>,
    locality: Option<Named>,
    neighborhood: Option<Named>,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    message: Option<String>,
}

impl Feature {
    fn coordinates(&self) -> Result<Coordinates, GeoError> {
        match (&self.geometry, &self.properties.coordinates) {
            (Some(Geometry { coordinates }), _) if coordinates.len() >= 2 => {
                Coordinates::checked(coordinates[1], coordinates[0])
            }
            (_, Some(c)) => Coordinates::checked(c.latitude, c.longitude),
            _ => Err(GeoError::BadResponse(
                "Mapbox: a feature without coordinates".into(),
            )),
        }
    }

    fn label(&self) -> String {
        let p = &self.properties;
        if let Some(full) = p.full_address.as_deref().filter(|s| !s.is_empty()) {
            return full.to_owned();
        }
        [p.name.as_deref(), p.place_formatted.as_deref()]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn point(self) -> Result<GeoPoint, GeoError> {
        Ok(GeoPoint::new(self.coordinates()?, self.label()))
    }

    fn suggestion(self) -> AddressSuggestion {
        let point = self.coordinates().ok();
        let label = self.label();
        let p = self.properties;
        let name = p.name.unwrap_or_default();
        let is_postcode = p.feature_type.as_deref() == Some("postcode");
        let city = p.context.place.map(|n| n.name);
        // A locality named like the town adds nothing to the form.
        let line_2 = p
            .context
            .locality
            .or(p.context.neighborhood)
            .map(|n| n.name)
            .filter(|l| !l.is_empty() && Some(l) != city.as_ref());
        let (line_1, postcode) = if is_postcode {
            (String::new(), Some(name))
        } else {
            (name, p.context.postcode.map(|n| n.name))
        };
        AddressSuggestion {
            label,
            line_1,
            line_2,
            city,
            postcode,
            point,
            place_id: p.mapbox_id,
        }
    }
}
