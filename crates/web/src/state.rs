use crate::host::Domains;
use metrics_exporter_prometheus::PrometheusHandle;
use proplink_auth::codes::CodeKey;
use proplink_auth::password::{HashParams, PasswordHasherPool};
use proplink_auth::seal::DataKey;
use proplink_db::organisation::Organisation;
use proplink_db::{AppPool, DbError};
use proplink_integrations::geo::Geocoder;
use proplink_integrations::mail::sendgrid::WebhookKey;
use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Settings the web layer needs, built by the binary from its configuration.
#[derive(Clone)]
pub struct WebSettings {
    pub domains: Domains,
    /// Public URLs are https: send HSTS and mark cookies Secure.
    pub tls: bool,
    /// Bearer token for `/metrics` from other hosts (loopback needs none).
    pub metrics_token: Option<SecretString>,
    /// The development mailbox page is mounted only with the embedded outbox mailer.
    pub dev_mailbox: bool,
    pub sendgrid_webhook_key: Option<WebhookKey>,
    pub request_timeout: Duration,
    /// The most of a request body a route reads (the data import's upload reads more:
    /// `middleware::LARGEST_BODY`).
    pub body_limit: usize,
    /// Argon2id cost (production unless a test asks for its fast parameters).
    pub password_params: HashParams,
    /// The port that public URLs carry (demo and tests listen on one; None behind a proxy).
    pub public_port: Option<u16>,
    /// Our own reverse proxies / load balancers: only from these is `X-Forwarded-For` believed
    /// (for rate limits and the addresses in sign-in records).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Seals vendors' bank details at rest. The binary loads it from configuration or the
    /// embedded data directory; `new` makes a throwaway one (tests).
    pub data_key: DataKey,
    /// Address lookup and maps; None means manual address entry and no map.
    pub geocoder: Option<Arc<dyn Geocoder>>,
    /// Uploaded photos, quotations and certificates (DESIGN.md §8). None: uploads are refused
    /// with "file storage is not set up" (a test that does not need them).
    pub files: Option<proplink_files::FileStore>,
    /// Money documents go to Gotenberg (HTML to PDF) when set; otherwise typst renders them
    /// in-process (the embedded default).
    pub gotenberg: Option<proplink_integrations::pdf::GotenbergClient>,
    /// Card payments and Direct Debits for ResidencePort (DESIGN.md §7).
    pub payments: PaymentSettings,
}

/// The payment providers. With no Stripe (or GoCardless) account configured, the embedded
/// test-mode provider completes the same flows locally and signs its events with the test
/// secret, so they go through the same webhook handlers.
#[derive(Clone)]
pub struct PaymentSettings {
    pub stripe: Option<Arc<proplink_integrations::payments::stripe::Stripe>>,
    pub stripe_webhook: proplink_integrations::payments::stripe::WebhookSecret,
    pub gocardless: Option<Arc<proplink_integrations::payments::gocardless::GoCardless>>,
    pub gocardless_webhook: proplink_integrations::payments::gocardless::WebhookSecret,
}

impl PaymentSettings {
    /// Test mode for both, with secrets made for this process.
    pub fn test_mode() -> Self {
        let secret = |prefix: &str| {
            let (token, _) = proplink_auth::links::new_token();
            SecretString::from(format!("{prefix}{token}"))
        };
        Self {
            stripe: None,
            stripe_webhook: proplink_integrations::payments::stripe::WebhookSecret::new(secret(
                "whsec_test_",
            )),
            gocardless: None,
            gocardless_webhook: proplink_integrations::payments::gocardless::WebhookSecret::new(
                secret("gc_test_"),
            ),
        }
    }

    pub fn card_test_mode(&self) -> bool {
        self.stripe.is_none()
    }

    pub fn direct_debit_test_mode(&self) -> bool {
        self.gocardless.is_none()
    }
}

impl WebSettings {
    pub fn new(domains: Domains) -> Self {
        Self {
            domains,
            tls: false,
            metrics_token: None,
            dev_mailbox: false,
            sendgrid_webhook_key: None,
            request_timeout: Duration::from_secs(30),
            body_limit: 2 * 1024 * 1024,
            password_params: HashParams::PRODUCTION,
            public_port: None,
            trusted_proxies: Vec::new(),
            data_key: DataKey::generate(),
            geocoder: None,
            files: None,
            gotenberg: None,
            payments: PaymentSettings::test_mode(),
        }
    }

    /// An absolute URL on another host (front doors hand people to each other by URL).
    pub fn url(&self, host: &str, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        match self.public_port {
            Some(port) => format!("{scheme}://{host}:{port}{path}"),
            None => format!("{scheme}://{host}{path}"),
        }
    }

    pub fn login_host(&self) -> String {
        format!("login.{}", self.domains.admin)
    }

    pub fn admin_host(&self, slug: &str) -> String {
        format!("{slug}.{}", self.domains.admin)
    }
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    db: AppPool,
    settings: WebSettings,
    metrics: PrometheusHandle,
    hasher: PasswordHasherPool,
    code_key: CodeKey,
    /// Seconds added to the wall clock (tests move time forward to expire things).
    clock_offset: AtomicI64,
    /// Organisations by subdomain, each kept for [`ORG_CACHE_TTL`].
    orgs: Mutex<HashMap<String, (Organisation, Instant)>>,
    /// Verified payment events, applied in batches per organisation.
    payment_events: crate::payment_events::PaymentEvents,
}

/// How long a resolved organisation is reused before it is read again. A status change (read-only,
/// closed) reaches the pages within this time; the database refuses writes at once whatever.
pub const ORG_CACHE_TTL: Duration = Duration::from_secs(2);

impl AppState {
    /// Builds the state, reading the database's one-time-code key.
    pub async fn new(db: AppPool, settings: WebSettings) -> Result<Self, DbError> {
        let code_key = proplink_db::setup::code_key(&db).await?;
        Self::with_code_key(db, settings, code_key)
    }

    /// Builds the state with a given code key (tests whose database is unreachable).
    pub fn with_code_key(
        db: AppPool,
        settings: WebSettings,
        code_key: CodeKey,
    ) -> Result<Self, DbError> {
        let hasher = PasswordHasherPool::new(settings.password_params)
            .map_err(|e| DbError::Unavailable(e.to_string()))?;
        Ok(Self(Arc::new(Inner {
            db,
            settings,
            metrics: metrics_handle(),
            hasher,
            code_key,
            clock_offset: AtomicI64::new(0),
            orgs: Mutex::new(HashMap::new()),
            payment_events: crate::payment_events::PaymentEvents::default(),
        })))
    }

    /// Now, by the server's clock (every expiry and timeout is measured against this).
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
            + time::Duration::seconds(self.0.clock_offset.load(Ordering::Relaxed))
    }

    /// Moves the clock forward (tests of expiry and timeouts).
    pub fn advance_clock(&self, by: time::Duration) {
        self.0
            .clock_offset
            .fetch_add(by.whole_seconds(), Ordering::Relaxed);
    }

    /// A recently resolved organisation, if still fresh.
    pub(crate) fn cached_org(&self, slug: &str) -> Option<Organisation> {
        let orgs = self.0.orgs.lock().ok()?;
        orgs.get(slug)
            .filter(|(_, at)| at.elapsed() < ORG_CACHE_TTL)
            .map(|(org, _)| org.clone())
    }

    pub(crate) fn cache_org(&self, org: &Organisation) {
        if let Ok(mut orgs) = self.0.orgs.lock() {
            orgs.insert(org.slug.clone(), (org.clone(), Instant::now()));
        }
    }

    pub(crate) fn payment_events(&self) -> &crate::payment_events::PaymentEvents {
        &self.0.payment_events
    }

    pub fn hasher(&self) -> &PasswordHasherPool {
        &self.0.hasher
    }

    pub fn code_key(&self) -> &CodeKey {
        &self.0.code_key
    }

    pub fn db(&self) -> &AppPool {
        &self.0.db
    }

    pub fn settings(&self) -> &WebSettings {
        &self.0.settings
    }

    pub fn domains(&self) -> &Domains {
        &self.0.settings.domains
    }

    pub(crate) fn metrics(&self) -> &PrometheusHandle {
        &self.0.metrics
    }
}

/// The process-wide Prometheus recorder (installed once; later apps share it).
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
                .map(|b| b.build_recorder())
                .unwrap_or_else(|_| {
                    metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder()
                });
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
