//! PropLink's web server.
//!
//! One axum app serves every front door. [`host::FrontDoor`] is read from the `Host` header;
//! organisation-scoped doors resolve the organisation by subdomain before any handler runs
//! (unknown, or closed → a 404 that reveals nothing). Each door has its own router; a handful of
//! operational routes (`/healthz`, `/readyz`, `/metrics`, `/static/…`) answer on every host.

pub mod admin;
mod contractor;
pub mod direct_debit;
pub mod error;
pub mod host;
pub mod login;
mod middleware;
mod pages;
mod payment_events;
mod residence;
pub mod session;
mod state;
mod uploads;
mod webhooks;

pub use host::{Domains, FrontDoor};
pub use state::{AppState, PaymentSettings, WebSettings};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The per-door routers.
#[derive(Clone)]
struct Doors {
    admin: Router,
    login: Router,
    api: Router,
    contractor: Router,
    residence: Router,
}

/// Builds the whole application.
pub fn app(state: AppState) -> Router {
    let mut admin = admin::router(state.clone());
    if state.settings().dev_mailbox {
        // Development only (the embedded mailer): every e-mail the organisation sends.
        admin = admin
            .route(
                "/dev/mailbox",
                get(pages::mailbox).post(pages::send_test_email),
            )
            .route("/dev/mailbox/{id}", get(pages::mailbox_message));
    }
    let admin = admin.fallback(pages::not_found).with_state(state.clone());
    let api = Router::new()
        .route("/webhooks/sendgrid", post(webhooks::sendgrid))
        .route("/webhooks/stripe", post(webhooks::stripe_any))
        .route("/webhooks/stripe/{org}", post(webhooks::stripe))
        .route("/webhooks/gocardless/{org}", post(webhooks::gocardless))
        .fallback(pages::not_found)
        .with_state(state.clone());
    let login = login::router(&state)
        .fallback(pages::not_found)
        .with_state(state.clone());
    let contractor = contractor::router()
        .fallback(pages::not_found)
        .with_state(state.clone());
    let residence = residence::router()
        .fallback(pages::not_found)
        .with_state(state.clone());
    let doors = Doors {
        admin,
        login,
        api,
        contractor,
        residence,
    };

    let dispatch = Router::new()
        .fallback(dispatch)
        .with_state((state.clone(), doors));
    let operational = Router::new()
        .route("/healthz", get(pages::healthz))
        .route("/readyz", get(pages::readyz))
        .route("/metrics", get(pages::metrics))
        .route("/static/proplink.css", get(pages::stylesheet))
        .route("/static/htmx.min.js", get(pages::htmx))
        .route("/static/proplink.js", get(pages::script))
        .with_state(state.clone());
    middleware::stack(operational.merge(dispatch), &state)
}

/// Routes a request to its front door's router, after resolving the organisation.
async fn dispatch(State((state, doors)): State<(AppState, Doors)>, mut req: Request) -> Response {
    let host = host::request_host(&req);
    let door = host.as_deref().and_then(|h| state.domains().parse(h));
    tracing::Span::current().record(
        "door",
        door.as_ref().map(FrontDoor::label).unwrap_or("unknown"),
    );
    let router = match &door {
        Some(FrontDoor::Admin(slug)) => match host::resolve_org(&state, slug).await {
            Ok(org) => {
                tracing::Span::current().record("org", org.slug.as_str());
                req.extensions_mut().insert(org);
                doors.admin
            }
            Err(resp) => return resp,
        },
        Some(FrontDoor::ResidencePort(slug)) => match host::resolve_org(&state, slug).await {
            Ok(org) => {
                tracing::Span::current().record("org", org.slug.as_str());
                req.extensions_mut().insert(org);
                doors.residence
            }
            Err(resp) => return resp,
        },
        Some(FrontDoor::Api) => doors.api,
        Some(FrontDoor::Login) => doors.login,
        Some(FrontDoor::ContractorPort) => doors.contractor,
        // Sign-in, the operators' host and the portals arrive with their own issues: until then
        // they answer 404 like any unknown page.
        Some(_) | None => return pages::not_found().await.into_response(),
    };
    req.extensions_mut().insert(door.unwrap_or(FrontDoor::Api));
    match router.oneshot(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

/// Serves until `shutdown` is cancelled, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    // Signed-in sessions are cached between requests while this keeps the cache in step with
    // access changes made anywhere (see `proplink_db::session_cache`).
    let db = state.db().clone();
    let stop_listening = shutdown.child_token();
    let listening = tokio::spawn({
        let stop = stop_listening.clone();
        async move { db.listen_for_access_changes(stop).await }
    });
    let app = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    stop_listening.cancel();
    let _ = listening.await;
    served
}
