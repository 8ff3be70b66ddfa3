//! An HTTP client for route tests: requests go straight into the app (no socket), on one host
//! with one cookie, as a browser on that host would send them (a same-origin form post, the
//! client's address as the connecting peer).

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use std::net::SocketAddr;
use tower::ServiceExt;

/// What came back.
pub struct Reply {
    pub status: StatusCode,
    pub location: String,
    pub set_cookie: String,
    pub content_type: String,
    pub body: String,
}

/// A client on one host with one cookie.
#[derive(Clone)]
pub struct Client {
    pub app: Router,
    pub host: String,
    pub cookie: String,
}

/// A request's body: none, a urlencoded form, or a multipart form with files.
pub enum Form<'a> {
    None,
    Url(&'a [(&'a str, &'a str)]),
    Multipart(&'a [(&'a str, &'a str)], &'a [(&'a str, &'a str, Vec<u8>)]),
}

impl Client {
    pub async fn send(&self, method: &str, path: &str, form: Form<'_>) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.host)
            .header(header::COOKIE, &self.cookie)
            .header("sec-fetch-site", "same-origin");
        let body = match form {
            Form::None => Body::empty(),
            Form::Url(pairs) => {
                req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(
                    form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(pairs)
                        .finish(),
                )
            }
            Form::Multipart(fields, files) => {
                let boundary = "----proplinktestboundary";
                let mut b = Vec::new();
                for (k, v) in fields {
                    b.extend_from_slice(
                        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                            .as_bytes(),
                    );
                }
                for (k, name, bytes) in files {
                    b.extend_from_slice(
                        format!(
                            "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                        )
                        .as_bytes(),
                    );
                    b.extend_from_slice(bytes);
                    b.extend_from_slice(b"\r\n");
                }
                b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
                req = req.header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                );
                Body::from(b)
            }
        };
        let mut req = req.body(body).expect("a test request");
        let peer: SocketAddr = "203.0.113.20:40000".parse().expect("a test request");
        req.extensions_mut().insert(ConnectInfo(peer));
        let resp = self.app.clone().oneshot(req).await.expect("a test request");
        let status = resp.status();
        let h = |name| {
            resp.headers()
                .get(name)
                .map(|v: &header::HeaderValue| v.to_str().expect("a test request").to_owned())
                .unwrap_or_default()
        };
        let (location, set_cookie, content_type) = (
            h(header::LOCATION),
            h(header::SET_COOKIE),
            h(header::CONTENT_TYPE),
        );
        let bytes = axum::body::to_bytes(resp.into_body(), 32 << 20)
            .await
            .expect("a test request");
        Reply {
            status,
            location,
            set_cookie,
            content_type,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, Form::None).await
    }

    pub async fn post(&self, path: &str, pairs: &[(&str, &str)]) -> Reply {
        self.send("POST", path, Form::Url(pairs)).await
    }
}
