use crate::host::Domains;
use metrics_exporter_prometheus::PrometheusHandle;
use proplink_db::AppPool;
use proplink_integrations::mail::sendgrid::WebhookKey;
use secrecy::SecretString;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

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
    pub body_limit: usize,
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
        }
    }
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    db: AppPool,
    settings: WebSettings,
    metrics: PrometheusHandle,
}

impl AppState {
    pub fn new(db: AppPool, settings: WebSettings) -> Self {
        Self(Arc::new(Inner {
            db,
            settings,
            metrics: metrics_handle(),
        }))
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
