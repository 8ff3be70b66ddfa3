//! Cookies and the facts about a request that sign-in records (address, browser).
//!
//! Every cookie is host-only (no `Domain` attribute: a cookie set by one organisation's host is
//! never sent to another), HttpOnly, SameSite=Lax, and Secure when the public URLs are https.
//! A cookie carries a 256-bit random token; the database keeps only its SHA-256.

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, header};
use cookie::{Cookie, SameSite};
use std::net::{IpAddr, SocketAddr};

/// The admin app's session, on `<org>.<admin base>`.
pub const ADMIN_SESSION: &str = "pl_session";
/// Sign-in in progress or done, on the login host.
pub const LOGIN_SESSION: &str = "pl_login";
/// A remembered device, on the login host.
pub const DEVICE: &str = "pl_device";

/// The value of cookie `name`, if the request sent one.
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// A `Set-Cookie` value. `max_age` None makes a browser-session cookie.
pub fn set(name: &str, value: &str, max_age: Option<time::Duration>, secure: bool) -> HeaderValue {
    let mut c = Cookie::build((name.to_owned(), value.to_owned()))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax);
    if let Some(age) = max_age {
        c = c.max_age(age);
    }
    HeaderValue::from_str(&c.build().to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A `Set-Cookie` value that removes cookie `name`.
pub fn clear(name: &str, secure: bool) -> HeaderValue {
    set(name, "", Some(time::Duration::ZERO), secure)
}

/// Who is at the other end, as sign-in events record it: the connecting peer's address
/// (forwarded headers are not trusted, because anyone can send them) and the browser.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl axum::extract::FromRequestParts<crate::state::AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &crate::state::AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let ip = peer.map(|p| client_ip(p, &parts.headers, &state.settings().trusted_proxies));
        Ok(Self {
            ip: ip.map(|ip| ip.to_string()),
            user_agent: user_agent(&parts.headers),
        })
    }
}

/// The client's address: the connecting peer, unless the peer is one of our own proxies, in
/// which case the right-most `X-Forwarded-For` address that is not one of our proxies (the
/// left part of that header is whatever the client chose to send).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().parse::<IpAddr>())
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer)
}

pub fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(300).collect())
}

/// "Chrome on Windows", "Safari on iPhone"…: how a device is named in the device list.
pub fn device_label(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent else {
        return "Unknown browser".to_owned();
    };
    let browser = if ua.contains("Edg/") {
        "Edge"
    } else if ua.contains("Firefox/") {
        "Firefox"
    } else if ua.contains("Chrome/") || ua.contains("Chromium/") || ua.contains("HeadlessChrome") {
        "Chrome"
    } else if ua.contains("Safari/") {
        "Safari"
    } else {
        "A browser"
    };
    let os = if ua.contains("iPhone") {
        "iPhone"
    } else if ua.contains("iPad") {
        "iPad"
    } else if ua.contains("Android") {
        "Android"
    } else if ua.contains("Windows") {
        "Windows"
    } else if ua.contains("Mac OS X") || ua.contains("Macintosh") {
        "macOS"
    } else if ua.contains("Linux") {
        "Linux"
    } else {
        "an unknown system"
    };
    format!("{browser} on {os}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_host_only_http_only_and_lax() {
        let v = set(ADMIN_SESSION, "abc", None, true);
        let s = v.to_str().unwrap();
        assert!(s.starts_with("pl_session=abc"), "{s}");
        assert!(s.contains("HttpOnly") && s.contains("SameSite=Lax") && s.contains("Secure"));
        assert!(!s.to_ascii_lowercase().contains("domain="), "{s}");
        let plain = set(ADMIN_SESSION, "abc", None, false);
        assert!(!plain.to_str().unwrap().contains("Secure"));
        assert!(
            clear(ADMIN_SESSION, false)
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
    }

    #[test]
    fn reads_one_cookie_among_several() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; pl_session=tok; b=2"),
        );
        assert_eq!(read(&h, ADMIN_SESSION).as_deref(), Some("tok"));
        assert_eq!(read(&h, LOGIN_SESSION), None);
    }

    #[test]
    fn a_forwarded_address_is_believed_only_from_our_own_proxies() {
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let client: IpAddr = "203.0.113.9".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("198.51.100.1, 203.0.113.9"),
        );
        // From a stranger, the header is ignored.
        assert_eq!(client_ip(client, &h, &[proxy]), client);
        // From our proxy: the right-most address it did not add itself.
        assert_eq!(client_ip(proxy, &h, &[proxy]), client);
        // Garbage in the header: the proxy's own address.
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("not an address"),
        );
        assert_eq!(client_ip(proxy, &h, &[proxy]), proxy);
    }

    #[test]
    fn devices_are_named_for_people() {
        assert_eq!(
            device_label(Some(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"
            )),
            "Chrome on Windows"
        );
        assert_eq!(
            device_label(Some(
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
            )),
            "Safari on iPhone"
        );
        assert_eq!(device_label(None), "Unknown browser");
    }
}
