//! Geocoding and address autocomplete (DESIGN.md §7). [`Geocoder`] has two real clients:
//! - [`mapbox::MapboxGeocoder`], Mapbox's Geocoding API v6;
//! - [`google::GoogleGeocoder`], Google's Geocoding API and (legacy) Places Autocomplete.
//!
//! The embedded default is no geocoder at all: [`from_config`] gives `None`, addresses are typed
//! in by hand and the map is hidden. Every search is restricted to the United Kingdom.
//!
//! Error policy: a [`GeoError`] displays as a sentence for the property manager looking at the
//! address form, always ending with what they can do instead (type the address in). Technical
//! detail stays in the variant's field ([`GeoError::detail`]) and in the log. Both providers take
//! the key in the query string, so no request URL ever reaches an error or a log line.

pub mod google;
pub mod mapbox;

pub use google::GoogleGeocoder;
pub use mapbox::MapboxGeocoder;

use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// How long one look-up may take. Someone is waiting at the address form; after this they are
/// better off typing.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How many suggestions autocomplete offers.
pub const SUGGESTION_LIMIT: usize = 5;

/// A position in WGS 84 degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Coordinates {
    pub latitude: f64,
    pub longitude: f64,
}

impl Coordinates {
    /// Refuses values outside the globe, which would mean a provider answer we misread.
    fn checked(latitude: f64, longitude: f64) -> Result<Self, GeoError> {
        if (-90.0..=90.0).contains(&latitude) && (-180.0..=180.0).contains(&longitude) {
            Ok(Self {
                latitude,
                longitude,
            })
        } else {
            Err(GeoError::BadResponse(format!(
                "coordinates out of range: latitude {latitude}, longitude {longitude}"
            )))
        }
    }
}

/// Where an address is, and the provider's full label for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    pub latitude: f64,
    pub longitude: f64,
    /// The whole address on one line, as the provider writes it.
    pub formatted: String,
}

impl GeoPoint {
    fn new(at: Coordinates, formatted: String) -> Self {
        Self {
            latitude: at.latitude,
            longitude: at.longitude,
            formatted,
        }
    }

    pub fn coordinates(&self) -> Coordinates {
        Coordinates {
            latitude: self.latitude,
            longitude: self.longitude,
        }
    }
}

/// One entry in the autocomplete list, split so that picking it fills a UK address form.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AddressSuggestion {
    /// The whole address on one line, shown in the list.
    pub label: String,
    /// Number and street, such as "10 Downing Street". Empty when the suggestion is a postcode
    /// rather than an address.
    pub line_1: String,
    /// The locality within the town, such as "Clifton", when the provider names one.
    pub line_2: Option<String>,
    /// The town or city.
    pub city: Option<String>,
    pub postcode: Option<String>,
    /// Where it is, when the provider says with the suggestion. Google's autocomplete does not:
    /// geocode the label once the suggestion is picked.
    pub point: Option<Coordinates>,
    /// The provider's id for the place (Mapbox `mapbox_id`, Google `place_id`).
    pub place_id: Option<String>,
}

/// A geocoding provider. Both look-ups search the United Kingdom only.
#[async_trait::async_trait]
pub trait Geocoder: Send + Sync {
    /// "mapbox" or "google".
    fn provider(&self) -> &'static str;

    /// The best match for an address, or `None` when the provider finds nothing.
    async fn geocode(&self, address: &str) -> Result<Option<GeoPoint>, GeoError>;

    /// Up to [`SUGGESTION_LIMIT`] addresses or postcodes matching what has been typed so far;
    /// empty when nothing matches.
    async fn autocomplete(&self, partial: &str) -> Result<Vec<AddressSuggestion>, GeoError>;

    /// A street map of `size` centred on `at`, with a pin there: the provider's static-image
    /// API, fetched by the server so the key never reaches a browser.
    async fn static_map(&self, at: Coordinates, size: MapSize) -> Result<MapImage, GeoError>;
}

/// The pixel size of a static map; both providers accept 1 to 640 on each side (Mapbox up to
/// 1,280).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapSize {
    width: u16,
    height: u16,
}

impl MapSize {
    /// The largest side both providers draw.
    pub const MAX_SIDE: u16 = 640;

    /// `None` when a side is 0 or over [`Self::MAX_SIDE`].
    pub fn new(width: u16, height: u16) -> Option<Self> {
        let fits = |side: u16| (1..=Self::MAX_SIDE).contains(&side);
        (fits(width) && fits(height)).then_some(Self { width, height })
    }

    pub fn width(self) -> u16 {
        self.width
    }

    pub fn height(self) -> u16 {
        self.height
    }
}

/// How far in the static map is: street level, a block and its neighbours.
pub const MAP_ZOOM: u8 = 16;

/// An image a provider drew, with its media type (`image/png`, `image/jpeg`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapImage {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Why a look-up failed. Displayed to the person filling in the address form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GeoError {
    /// No provider is set up. [`from_config`] gives `None` rather than this; callers holding an
    /// `Option<Arc<dyn Geocoder>>` return it when asked to look something up regardless.
    #[error("Address look-up is not set up; enter the address by hand")]
    NotConfigured,
    #[error(
        "The maps provider's usage limit has been reached; enter the address by hand or try again later"
    )]
    QuotaExceeded,
    #[error(
        "The maps provider did not accept PropLink's key; enter the address by hand, and ask an administrator to check the maps settings"
    )]
    Unauthorised,
    #[error(
        "The maps provider could not search for that ({0}); check what was typed or enter the address by hand"
    )]
    InvalidRequest(String),
    #[error(
        "The maps provider is not answering just now; enter the address by hand or try again in a minute"
    )]
    Unavailable(String),
    #[error("The maps provider sent an answer PropLink could not read; enter the address by hand")]
    BadResponse(String),
}

impl GeoError {
    /// The technical detail behind the message, for logs.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Self::InvalidRequest(d) | Self::Unavailable(d) | Self::BadResponse(d) => Some(d),
            Self::NotConfigured | Self::QuotaExceeded | Self::Unauthorised => None,
        }
    }
}

/// Why the configured provider cannot be set up. For the operator at start-up, not for users.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "unknown maps provider {0:?}: use \"mapbox\" or \"google\", or leave it unset for manual address entry"
    )]
    UnknownProvider(String),
    #[error("the {0} maps provider needs a key")]
    MissingKey(&'static str),
    #[error("the maps base URL {0:?} is not an http(s) URL")]
    BadBaseUrl(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// The geocoder the configuration names: "mapbox" or "google" with a key. No provider (or
/// "none") gives `None`: manual address entry, no map.
pub fn from_config(
    provider: Option<&str>,
    key: Option<SecretString>,
) -> Result<Option<Arc<dyn Geocoder>>, ConfigError> {
    let provider = provider
        .map(|p| p.trim().to_ascii_lowercase())
        .filter(|p| !p.is_empty() && p != "none");
    let key = key.filter(|k| !k.expose_secret().trim().is_empty());
    match (provider.as_deref(), key) {
        (None, key) => {
            if key.is_some() {
                tracing::warn!("a maps key is set but no maps provider; address look-up stays off");
            }
            Ok(None)
        }
        (Some(mapbox::PROVIDER), Some(key)) => Ok(Some(Arc::new(MapboxGeocoder::new(key, None)?))),
        (Some(google::PROVIDER), Some(key)) => Ok(Some(Arc::new(GoogleGeocoder::new(key, None)?))),
        (Some(mapbox::PROVIDER), None) => Err(ConfigError::MissingKey(mapbox::PROVIDER)),
        (Some(google::PROVIDER), None) => Err(ConfigError::MissingKey(google::PROVIDER)),
        (Some(other), _) => Err(ConfigError::UnknownProvider(other.to_owned())),
    }
}

/// What both clients share: an HTTP client, the key and the per-request time limit.
struct Http {
    client: reqwest::Client,
    key: SecretString,
    timeout: Duration,
}

impl Http {
    fn new(provider: &'static str, key: SecretString) -> Result<Self, ConfigError> {
        if key.expose_secret().trim().is_empty() {
            return Err(ConfigError::MissingKey(provider));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(DEFAULT_TIMEOUT)
            .build()
            .map_err(|e| ConfigError::Client(e.to_string()))?;
        Ok(Self {
            client,
            key,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// GETs `url` and reads the body, whatever the status.
    async fn get(&self, url: Url) -> Result<(StatusCode, String), GeoError> {
        let response = self
            .client
            .get(url)
            .timeout(self.timeout)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| self.transport_error(e))?;
        Ok((status, body))
    }

    /// GETs `url` for an image. Gives the status, the media type and the body.
    async fn get_image(&self, url: Url) -> Result<(StatusCode, String, Vec<u8>), GeoError> {
        let response = self
            .client
            .get(url)
            .timeout(self.timeout)
            .header(reqwest::header::ACCEPT, "image/png,image/*;q=0.8")
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        Ok((status, content_type, body.to_vec()))
    }

    /// reqwest's errors print the URL, and the URL carries the key: describe them without it.
    fn transport_error(&self, e: reqwest::Error) -> GeoError {
        if e.is_timeout() {
            return GeoError::Unavailable(format!(
                "no answer within {} ms",
                self.timeout.as_millis()
            ));
        }
        let e = e.without_url();
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(inner) = source {
            detail.push_str(": ");
            detail.push_str(&inner.to_string());
            source = inner.source();
        }
        GeoError::Unavailable(self.redact(&detail))
    }

    /// Text from elsewhere (a provider's message, an error chain) with the key blanked out, in
    /// case it was echoed back.
    fn redact(&self, text: &str) -> String {
        text.replace(self.key.expose_secret(), "[redacted]")
    }
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("key", &"[redacted]")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// `base_url` (or the provider's own) followed by `path`.
fn endpoint(base_url: Option<&str>, default: &str, path: &str) -> Result<Url, ConfigError> {
    let base = base_url.unwrap_or(default).trim().trim_end_matches('/');
    let bad = || ConfigError::BadBaseUrl(base.to_owned());
    let url = Url::parse(&format!("{base}{path}")).map_err(|_| bad())?;
    if matches!(url.scheme(), "http" | "https") {
        Ok(url)
    } else {
        Err(bad())
    }
}

/// A successful static-map answer, checked to be an image of a known kind.
fn map_image(provider: &str, content_type: &str, bytes: Vec<u8>) -> Result<MapImage, GeoError> {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if !matches!(media.as_str(), "image/png" | "image/jpeg" | "image/webp") {
        return Err(GeoError::BadResponse(format!(
            "{provider}: a map answered as {media:?}, not an image"
        )));
    }
    if bytes.is_empty() {
        return Err(GeoError::BadResponse(format!("{provider}: an empty map")));
    }
    Ok(MapImage {
        content_type: media,
        bytes,
    })
}

/// Operators need to hear of a bad key or an exhausted quota; users only see the message.
fn log_failure(provider: &'static str, lookup: &'static str, error: &GeoError) {
    tracing::warn!(
        provider,
        lookup,
        error = %error,
        detail = error.detail().unwrap_or_default(),
        "geocoding failed"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_provider_means_manual_entry() {
        assert!(from_config(None, None).unwrap().is_none());
        assert!(from_config(Some(" none "), None).unwrap().is_none());
        assert!(
            from_config(None, Some(SecretString::from("pk.x")))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_named_provider_needs_a_key() {
        assert_eq!(
            from_config(Some("mapbox"), Some(SecretString::from("  "))).err(),
            Some(ConfigError::MissingKey("mapbox"))
        );
        assert_eq!(
            from_config(Some("Google"), None).err(),
            Some(ConfigError::MissingKey("google"))
        );
        assert_eq!(
            from_config(Some("bing"), Some(SecretString::from("k"))).err(),
            Some(ConfigError::UnknownProvider("bing".into()))
        );
    }

    #[test]
    fn base_urls_must_be_http() {
        assert!(endpoint(Some("ftp://x"), "https://a", "/p").is_err());
        assert!(endpoint(Some("not a url"), "https://a", "/p").is_err());
        assert_eq!(
            endpoint(Some("http://127.0.0.1:9/"), "https://a", "/p")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9/p"
        );
    }

    #[test]
    fn map_sizes_stay_within_what_both_providers_draw() {
        assert!(MapSize::new(640, 320).is_some());
        assert!(MapSize::new(0, 320).is_none());
        assert!(MapSize::new(641, 320).is_none());
    }

    #[test]
    fn only_images_are_accepted_as_maps() {
        assert_eq!(
            map_image("Mapbox", "image/png; charset=binary", vec![1])
                .unwrap()
                .content_type,
            "image/png"
        );
        assert!(map_image("Mapbox", "text/html", vec![1]).is_err());
        assert!(map_image("Mapbox", "image/png", Vec::new()).is_err());
        assert!(map_image("Mapbox", "image/svg+xml", vec![1]).is_err());
    }

    #[test]
    fn coordinates_off_the_globe_are_refused() {
        assert!(Coordinates::checked(51.5, -0.12).is_ok());
        assert!(Coordinates::checked(-0.12, 181.0).is_err());
        assert!(Coordinates::checked(f64::NAN, 0.0).is_err());
    }
}
