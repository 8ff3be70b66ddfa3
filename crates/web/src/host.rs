//! Which front door a request is for, from its host (DESIGN.md §2).

use crate::error::WebError;
use crate::state::AppState;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use proplink_db::organisation::{self, OrgStatus, Organisation};
use proplink_domain::OrgSlug;

/// The base domain of each front door. The login, operator and API hosts are
/// `login.`, `admin.` and `api.` under the admin base.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Domains {
    pub admin: String,
    pub residence: String,
    pub contractor: String,
    pub building: String,
}

impl Default for Domains {
    fn default() -> Self {
        Self {
            admin: "proplink.localhost".into(),
            residence: "residenceport.localhost".into(),
            contractor: "contractorport.localhost".into(),
            building: "buildingthread.localhost".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontDoor {
    /// `login.<admin base>`: universal sign-in.
    Login,
    /// `admin.<admin base>`: PropLink's own operators.
    Platform,
    /// `api.<admin base>`: the JSON API and incoming webhooks.
    Api,
    /// `<org>.<admin base>`: the organisation's admin app.
    Admin(OrgSlug),
    /// `<org>.<residence base>`.
    ResidencePort(OrgSlug),
    /// `<contractor base>/<token>`.
    ContractorPort,
    /// `<org>.<building base>`.
    BuildingThread(OrgSlug),
}

impl FrontDoor {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Platform => "platform",
            Self::Api => "api",
            Self::Admin(_) => "admin",
            Self::ResidencePort(_) => "residenceport",
            Self::ContractorPort => "contractorport",
            Self::BuildingThread(_) => "buildingthread",
        }
    }
}

impl Domains {
    /// Reads a host (port and letter case ignored). None for hosts we do not serve.
    pub fn parse(&self, host: &str) -> Option<FrontDoor> {
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        let host = match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h.to_owned(),
            _ => host,
        };
        if host == self.contractor {
            return Some(FrontDoor::ContractorPort);
        }
        let sub = |base: &str| {
            host.strip_suffix(base)
                .and_then(|s| s.strip_suffix('.'))
                .map(str::to_owned)
        };
        if let Some(label) = sub(&self.admin) {
            return match label.as_str() {
                "login" => Some(FrontDoor::Login),
                "admin" => Some(FrontDoor::Platform),
                "api" => Some(FrontDoor::Api),
                other => OrgSlug::parse(other).ok().map(FrontDoor::Admin),
            };
        }
        if let Some(label) = sub(&self.residence) {
            return OrgSlug::parse(&label).ok().map(FrontDoor::ResidencePort);
        }
        if let Some(label) = sub(&self.building) {
            return OrgSlug::parse(&label).ok().map(FrontDoor::BuildingThread);
        }
        None
    }
}

/// The host a request was sent to: `Host`, or the URI's authority (HTTP/2).
pub fn request_host(req: &Request) -> Option<String> {
    req.headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
}

/// Resolves an organisation for a request: 404 (revealing nothing) when unknown or closed.
pub async fn resolve_org(state: &AppState, slug: &OrgSlug) -> Result<Organisation, Response> {
    if let Some(org) = state.cached_org(slug.as_str()) {
        return if org.status == OrgStatus::Closed {
            Err(WebError::NotFound.into_response())
        } else {
            Ok(org)
        };
    }
    let found = organisation::find_by_slug(state.db(), slug.as_str()).await;
    if let Ok(Some(org)) = &found {
        state.cache_org(org);
    }
    match found {
        Ok(Some(org)) if org.status != OrgStatus::Closed => Ok(org),
        Ok(_) => Err(WebError::NotFound.into_response()),
        Err(e) => Err(WebError::from(e).into_response()),
    }
}
