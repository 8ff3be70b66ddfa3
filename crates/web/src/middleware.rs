//! The middleware every request passes through, outermost first: request id, trace span,
//! request-id echo, security headers, compression, body limit, timeout, CSRF, request context.

use crate::error::REQUEST_ID;
use crate::state::AppState;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;
use tower_http::compression::CompressionLayer;
use tower_http::csrf::CsrfLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

/// The largest request body any route accepts: the data import's file (50 MiB) and its form.
/// Every other route reads at most `WebSettings::body_limit`; see [`stack`].
pub(crate) const LARGEST_BODY: usize = proplink_domain::import::MAX_FILE_BYTES + 2 * 1024 * 1024;

/// The content security policy. Forms may post to this origin only, but a form's redirect may
/// continue to another PropLink admin host (the sign-in hand-off, switching organisation,
/// signing out to the login host): browsers apply `form-action` to redirects too.
fn csp(settings: &crate::state::WebSettings) -> String {
    let scheme = if settings.tls { "https" } else { "http" };
    format!(
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self' {scheme}://*.{}:*; frame-ancestors 'none'",
        settings.domains.admin
    )
}

/// The body limit is in two parts so that one route can accept more than the rest: axum's
/// `DefaultBodyLimit` caps what every extractor reads at `body_limit` (a route raises it with
/// its own `DefaultBodyLimit` layer, as the data import's upload does), and tower-http's
/// `RequestBodyLimitLayer` refuses outright any body over [`LARGEST_BODY`].
pub fn stack(router: Router, state: &AppState) -> Router {
    let settings = state.settings();
    let mut router = router
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            request_context,
        ))
        .layer(CsrfLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            settings.request_timeout,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(settings.body_limit))
        .layer(RequestBodyLimitLayer::new(
            LARGEST_BODY.max(settings.body_limit),
        ))
        .layer(CompressionLayer::new());
    let csp = HeaderValue::from_str(&csp(settings))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"));
    router = router.layer(SetResponseHeaderLayer::if_not_present(
        HeaderName::from_static("content-security-policy"),
        csp,
    ));
    let headers: [(&str, &str); 5] = [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "strict-origin-when-cross-origin"),
        ("cross-origin-opener-policy", "same-origin"),
        (
            "permissions-policy",
            "camera=(), microphone=(), geolocation=()",
        ),
    ];
    for (name, value) in headers {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
    }
    if settings.tls {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("strict-transport-security"),
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        ));
    }
    router
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        path = %req.uri().path(),
                        request_id = %id,
                        door = tracing::field::Empty,
                        org = tracing::field::Empty,
                    )
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(axum::middleware::map_request(drop_odd_request_id))
}

/// A request id from a client or proxy is kept only if it looks like one (at most 64 letters,
/// digits, `-`, `_` or `.`); otherwise a fresh one is made. It ends up in the audit log.
async fn drop_odd_request_id(mut req: Request) -> Request {
    let odd = req.headers().get("x-request-id").is_some_and(|v| {
        let b = v.as_bytes();
        b.is_empty()
            || b.len() > 64
            || !b
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
    });
    if odd {
        req.headers_mut().remove("x-request-id");
    }
    req
}

/// Makes the request id available to error pages and records the request's metrics.
async fn request_context(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let door = crate::host::request_host(&req)
        .and_then(|h| state.domains().parse(&h))
        .map(|d| d.label())
        .unwrap_or("other");
    let started = Instant::now();
    let response = REQUEST_ID.scope(id, next.run(req)).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "door" => door, "status" => status).increment(1);
    metrics::histogram!("http_request_duration_seconds", "door" => door)
        .record(started.elapsed().as_secs_f64());
    response
}
