//! Configuration: built-in defaults, then an optional TOML file, then `PROPLINK_*` environment
//! variables (nested keys joined by `__`, e.g. `PROPLINK_MAIL__PROVIDER=smtp`). Database URLs
//! come from `DATABASE_URL` (server role), `DATABASE_PLATFORM_URL` and `DATABASE_OWNER_URL`.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use proplink_auth::seal::DataKey;
use proplink_integrations::mail::sendgrid::{self, WebhookKey};
use proplink_integrations::mail::smtp::{SmtpSecurity, SmtpSettings};
use proplink_web::{Domains, WebSettings};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the web server listens on.
    pub listen: SocketAddr,
    /// Public URLs use https (sends HSTS).
    pub tls: bool,
    pub domains: Domains,
    pub mail: MailConfig,
    pub storage: StorageConfig,
    /// Bearer token that lets non-loopback callers read /metrics.
    pub metrics_token: Option<String>,
    /// Mount the development mailbox (it shows every message, one-time codes included):
    /// `demo` turns it on with the outbox mailer; never enable it on a public server.
    pub dev_mailbox: bool,
    /// The port public URLs carry (links in e-mails, hand-offs between hosts). None when a
    /// proxy serves the standard port.
    pub public_port: Option<u16>,
    /// Addresses of our own reverse proxies: only their `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub worker: WorkerConfig,
    /// The key vendors' bank details are sealed with: 32 bytes in base64. Unset, it is kept
    /// in `data.key` in the data directory (made on first use, readable by its owner only).
    /// Losing it loses the sealed details, so production sets it from its secret store.
    pub data_key: Option<String>,
    pub maps: MapsConfig,
    #[serde(default)]
    pub pdf: PdfConfig,
    #[serde(default)]
    pub payments: PaymentsConfig,
}

/// Card payments (Stripe) and Direct Debits (GoCardless) for ResidencePort. Each provider
/// unset means its embedded test-mode provider: the same flows completed locally, labelled
/// "test mode", no money moving.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentsConfig {
    pub stripe: Option<StripeConfig>,
    pub gocardless: Option<GoCardlessConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripeConfig {
    /// `sk_live_…` or `sk_test_…`.
    pub secret_key: String,
    /// The webhook endpoint's signing secret, `whsec_…`.
    pub webhook_secret: String,
    #[serde(default = "default_stripe_url")]
    pub base_url: String,
}

fn default_stripe_url() -> String {
    proplink_integrations::payments::stripe::DEFAULT_BASE_URL.to_owned()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoCardlessConfig {
    pub access_token: String,
    /// The webhook endpoint's secret from the GoCardless dashboard.
    pub webhook_secret: String,
    #[serde(default = "default_gocardless_url")]
    pub base_url: String,
}

fn default_gocardless_url() -> String {
    proplink_integrations::payments::gocardless::DEFAULT_BASE_URL.to_owned()
}

/// How money documents become PDFs: in-process with typst (the embedded default), or through
/// a Gotenberg server at `gotenberg_url` (HTML to PDF over its HTTP API).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PdfConfig {
    pub gotenberg_url: Option<String>,
}

/// Address look-up and maps: `provider` "mapbox" or "google" with its `key`; unset means
/// manual address entry and no map.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapsConfig {
    pub provider: Option<String>,
    pub key: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    pub provider: MailProvider,
    pub from_address: String,
    pub from_name: String,
    pub smtp: Option<SmtpConfig>,
    pub sendgrid: Option<SendGridConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailProvider {
    /// Embedded default: messages stay in the database, readable in the development mailbox.
    Outbox,
    Smtp,
    Sendgrid,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendGridConfig {
    pub api_key: String,
    #[serde(default = "default_sendgrid_url")]
    pub base_url: String,
    /// The event webhook's verification key (base64 DER), from SendGrid's Mail Settings.
    pub webhook_verification_key: Option<String>,
}

fn default_sendgrid_url() -> String {
    sendgrid::DEFAULT_BASE_URL.to_owned()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `local` (a directory) is the embedded default; S3-compatible stores arrive with files.
    pub kind: StorageKind,
    pub path: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    Local,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    pub concurrency: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls: false,
            public_port: None,
            trusted_proxies: Vec::new(),
            domains: Domains::default(),
            mail: MailConfig {
                provider: MailProvider::Outbox,
                from_address: "no-reply@proplink.localhost".into(),
                from_name: "PropLink".into(),
                smtp: None,
                sendgrid: None,
            },
            storage: StorageConfig {
                kind: StorageKind::Local,
                path: PathBuf::from(".proplink/files"),
            },
            metrics_token: None,
            dev_mailbox: false,
            worker: WorkerConfig { concurrency: 4 },
            data_key: None,
            maps: MapsConfig::default(),
            pdf: PdfConfig::default(),
            payments: PaymentsConfig::default(),
        }
    }
}

impl Config {
    /// Loads and checks the configuration. The error is one readable paragraph.
    pub fn load(file: Option<&Path>) -> Result<Self, String> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(format!(
                    "the configuration file {} does not exist",
                    path.display()
                ));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let config: Config = figment
            .merge(
                Env::prefixed("PROPLINK_")
                    // Variables that are not configuration keys: read by clap and the cluster.
                    .filter(|k| {
                        !["config", "pg_bindir"]
                            .iter()
                            .any(|n| k.as_str().eq_ignore_ascii_case(n))
                    })
                    .split("__"),
            )
            .extract()
            .map_err(|e| format!("the configuration is not valid: {e}"))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        let d = &self.domains;
        let bases = [
            ("admin", &d.admin),
            ("residence", &d.residence),
            ("contractor", &d.contractor),
            ("building", &d.building),
        ];
        for (name, value) in bases {
            let ok = !value.is_empty()
                && value.split('.').all(|l| {
                    !l.is_empty()
                        && l.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                });
            if !ok {
                return Err(format!(
                    "the configuration is not valid: domains.{name} \"{value}\" is not a lower-case domain name"
                ));
            }
        }
        // A host must belong to exactly one front door: no base may sit under another.
        for (a, x) in bases {
            for (b, y) in bases {
                if a != b && (x == y || x.ends_with(&format!(".{y}"))) {
                    return Err(format!(
                        "the configuration is not valid: domains.{a} \"{x}\" is the same as, or under, domains.{b} \"{y}\"; each front door needs its own domain"
                    ));
                }
            }
        }
        proplink_domain::EmailAddress::parse(&self.mail.from_address)
            .map_err(|e| format!("the configuration is not valid: mail.from_address: {e}"))?;
        match self.mail.provider {
            MailProvider::Smtp if self.mail.smtp.is_none() => {
                return Err("the configuration is not valid: mail.provider is smtp but there is no [mail.smtp] section (host, port, security)".into());
            }
            MailProvider::Sendgrid if self.mail.sendgrid.is_none() => {
                return Err("the configuration is not valid: mail.provider is sendgrid but mail.sendgrid.api_key is not set".into());
            }
            _ => {}
        }
        if let Some(key) = self
            .mail
            .sendgrid
            .as_ref()
            .and_then(|s| s.webhook_verification_key.as_deref())
        {
            WebhookKey::parse(key).map_err(|e| format!("the configuration is not valid: {e}"))?;
        }
        if self.worker.concurrency == 0 || self.worker.concurrency > 64 {
            return Err(
                "the configuration is not valid: worker.concurrency must be between 1 and 64"
                    .into(),
            );
        }
        Ok(())
    }

    pub fn web_settings(&self) -> WebSettings {
        let mut s = WebSettings::new(self.domains.clone());
        s.tls = self.tls;
        s.metrics_token = self.metrics_token.clone().map(SecretString::from);
        s.dev_mailbox = self.dev_mailbox && self.mail.provider == MailProvider::Outbox;
        s.public_port = self.public_port;
        s.trusted_proxies = self.trusted_proxies.clone();
        s.sendgrid_webhook_key = self
            .mail
            .sendgrid
            .as_ref()
            .and_then(|sg| sg.webhook_verification_key.as_deref())
            .and_then(|k| WebhookKey::parse(k).ok());
        s
    }

    /// The web settings with the data key (configured, or the data directory's file) and the
    /// configured geocoder.
    pub fn web_settings_with_secrets(&self, data_dir: &Path) -> Result<WebSettings, String> {
        let mut s = self.web_settings();
        s.data_key = self.data_key(data_dir)?;
        s.geocoder = proplink_integrations::geo::from_config(
            self.maps.provider.as_deref(),
            self.maps.key.clone().map(SecretString::from),
        )
        .map_err(|e| format!("the maps configuration is not valid: {e}"))?;
        s.gotenberg = match &self.pdf.gotenberg_url {
            Some(url) => Some(
                proplink_integrations::pdf::GotenbergClient::new(url)
                    .map_err(|e| format!("pdf.gotenberg_url is not valid: {e}"))?,
            ),
            None => None,
        };
        s.payments = self.payment_settings()?;
        let files = data_dir.join("files");
        s.files = Some(
            proplink_files::FileStore::local(&files)
                .map_err(|e| format!("cannot use {} for uploaded files: {e}", files.display()))?,
        );
        Ok(s)
    }

    /// The configured payment providers; each one unset stays in test mode.
    pub fn payment_settings(&self) -> Result<proplink_web::PaymentSettings, String> {
        use proplink_integrations::payments::{gocardless, stripe};
        let mut p = proplink_web::PaymentSettings::test_mode();
        if let Some(c) = &self.payments.stripe {
            let client = stripe::Stripe::new(&c.base_url, SecretString::from(c.secret_key.clone()))
                .map_err(|e| format!("payments.stripe is not valid: {e}"))?;
            p.stripe = Some(std::sync::Arc::new(client));
            p.stripe_webhook =
                stripe::WebhookSecret::new(SecretString::from(c.webhook_secret.clone()));
        }
        if let Some(c) = &self.payments.gocardless {
            let client = gocardless::GoCardless::new(
                &c.base_url,
                SecretString::from(c.access_token.clone()),
            )
            .map_err(|e| format!("payments.gocardless is not valid: {e}"))?;
            p.gocardless = Some(std::sync::Arc::new(client));
            p.gocardless_webhook =
                gocardless::WebhookSecret::new(SecretString::from(c.webhook_secret.clone()));
        }
        Ok(p)
    }

    pub fn data_key(&self, data_dir: &Path) -> Result<DataKey, String> {
        if let Some(text) = &self.data_key {
            return DataKey::from_base64(text).map_err(|e| format!("data_key: {e}"));
        }
        let path = data_dir.join("data.key");
        match std::fs::read_to_string(&path) {
            Ok(text) => DataKey::from_base64(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir)
                    .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
                let key = DataKey::generate();
                write_private(&path, &key.to_base64())?;
                Ok(key)
            }
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    pub fn smtp_settings(&self) -> Option<SmtpSettings> {
        self.mail.smtp.as_ref().map(|s| SmtpSettings {
            host: s.host.clone(),
            port: s.port,
            security: s.security,
            username: s.username.clone(),
            password: s.password.clone().map(SecretString::from),
        })
    }
}

/// Writes a new file only its owner can read (create-new: an existing key is never replaced).
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_data_key_is_made_once_in_the_data_directory_unless_configured() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("proplink-key-{}", uuid::Uuid::new_v4()));
        let config = Config::default();
        let first = config.data_key(&dir).map(|k| k.to_base64());
        let again = config.data_key(&dir).map(|k| k.to_base64());
        assert!(first.is_ok());
        assert_eq!(first, again, "the file's key is reused");
        let mode = std::fs::metadata(dir.join("data.key")).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o600));
        let configured = Config {
            data_key: Some("not a key".into()),
            ..Config::default()
        };
        assert!(
            configured
                .data_key(&dir)
                .is_err_and(|e| e.contains("data_key"))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    use super::*;

    #[test]
    fn a_production_server_never_shows_the_development_mailbox_by_default() {
        let config = Config::default();
        assert!(!config.web_settings().dev_mailbox);
        let mut demo = Config {
            dev_mailbox: true,
            ..Config::default()
        };
        assert!(demo.web_settings().dev_mailbox);
        // Not even when asked, if mail really leaves the machine.
        demo.mail.provider = MailProvider::Sendgrid;
        assert!(!demo.web_settings().dev_mailbox);
    }

    #[test]
    fn the_defaults_are_valid_and_use_localhost_hosts() {
        let config = Config::default();
        assert!(config.check().is_ok());
        assert_eq!(config.domains.admin, "proplink.localhost");
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn front_door_domains_may_not_overlap() {
        let mut config = Config::default();
        config.domains.admin = "example.com".into();
        config.domains.residence = "residents.example.com".into();
        assert_eq!(
            config.check(),
            Err("the configuration is not valid: domains.residence \"residents.example.com\" is the same as, or under, domains.admin \"example.com\"; each front door needs its own domain".into())
        );
    }

    #[test]
    fn domains_must_be_lower_case_host_names() {
        let mut config = Config::default();
        config.domains.residence = "Residence Port".into();
        assert_eq!(
            config.check(),
            Err("the configuration is not valid: domains.residence \"Residence Port\" is not a lower-case domain name".into())
        );
    }
}
