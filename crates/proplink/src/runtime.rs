//! The production commands and operator commands, and the pieces `demo` shares with them.

use crate::config::{Config, MailProvider};
use crate::embedded::Embedded;
use proplink_db::cluster::Durability;
use proplink_db::jobs::{Worker, WorkerConfig};
use proplink_db::organisation::{self, OrgStatus};
use proplink_db::pools::PoolSettings;
use proplink_db::{Actor, AppPool, PlatformPool, TenantContext, audit, email, jobs, setup};
use proplink_domain::Channel;
use proplink_domain::OrgSlug;
use proplink_integrations::mail::platform::PlatformOutbox;
use proplink_integrations::mail::sendgrid::SendGrid;
use proplink_integrations::mail::smtp::Smtp;
use proplink_integrations::mail::{
    Mailer, PROVIDER_EVENT_JOB, ProviderEventJob, SendEmailJob, Sender, outbox::Outbox,
};
use secrecy::SecretString;
use std::path::Path;
use std::sync::Arc;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

pub fn init_logging(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn env_url(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| {
        format!("{name} is not set: it must hold the PostgreSQL URL (see README.md, Production)")
    })
}

/// Pools for the server role and the platform role, checked once so a wrong URL or a database
/// that is down gives one clear sentence at start-up.
pub async fn connect(
    app_url: &str,
    platform_url: Option<&str>,
) -> Result<(AppPool, Option<PlatformPool>), String> {
    let settings = PoolSettings::default();
    let app = AppPool::new(app_url, &settings).map_err(|e| e.to_string())?;
    app.verify()
        .await
        .map_err(|e| format!("cannot use DATABASE_URL: {e}"))?;
    let platform = match platform_url {
        Some(url) => {
            let p = PlatformPool::new(
                url,
                &PoolSettings {
                    max_connections: 8,
                    ..settings
                },
            )
            .map_err(|e| e.to_string())?;
            p.verify()
                .await
                .map_err(|e| format!("cannot use DATABASE_PLATFORM_URL: {e}"))?;
            Some(p)
        }
        None => None,
    };
    Ok((app, platform))
}

pub fn mailer(config: &Config) -> Result<Arc<dyn Mailer>, String> {
    Ok(match config.mail.provider {
        MailProvider::Outbox => Arc::new(Outbox),
        MailProvider::Smtp => {
            let settings = config
                .smtp_settings()
                .ok_or("mail.smtp is not configured")?;
            Arc::new(Smtp::new(&settings)?)
        }
        MailProvider::Sendgrid => {
            let sg = config
                .mail
                .sendgrid
                .as_ref()
                .ok_or("mail.sendgrid is not configured")?;
            Arc::new(SendGrid::new(
                &sg.base_url,
                SecretString::from(sg.api_key.clone()),
            )?)
        }
    })
}

/// The background work of one process: the job worker and the platform outbox sender.
pub struct Background {
    pub worker: Worker,
    pub outbox: PlatformOutbox,
    pub sweep: OperationsSweep,
}

impl Background {
    pub async fn run(self, shutdown: CancellationToken) {
        let outbox = tokio::spawn(self.outbox.run(shutdown.clone()));
        let sweep = tokio::spawn(self.sweep.run(shutdown.clone()));
        self.worker.run(shutdown).await;
        let _ = outbox.await;
        let _ = sweep.await;
    }
}

/// Once an hour, for each open organisation: raise the work orders of planned maintenance
/// falling due, and send contractor-document expiry and agreement renewal reminders
/// (`proplink_db::maintenance::sweep`, which records what it did so nothing happens twice).
pub struct OperationsSweep {
    pub app: AppPool,
    pub platform: PlatformPool,
    /// `http://contractorport.example:8080`: the start of the links invitations carry.
    pub contractor_base: String,
    pub every: std::time::Duration,
    /// Direct Debit collections of newly issued demands (GoCardless, or its test mode).
    pub payments: proplink_web::PaymentSettings,
}

impl OperationsSweep {
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.once().await {
                tracing::warn!(error = %e, "the operations sweep failed; it runs again later");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.every) => {}
            }
        }
    }

    async fn once(&self) -> Result<(), String> {
        let orgs = organisation::list(&self.platform)
            .await
            .map_err(|e| e.to_string())?;
        let base = self.contractor_base.clone();
        let link = move |token: &str| format!("{base}/{token}");
        for org in orgs.iter().filter(|o| o.status == OrgStatus::Active) {
            let ctx = TenantContext {
                org: org.id,
                actor: Actor::system(),
                channel: Channel::Worker,
                request_id: None,
            };
            // One organisation's trouble never stops the others' sweep.
            let mut tx = match self.app.begin(&ctx).await {
                Ok(tx) => tx,
                Err(e) => {
                    tracing::warn!(org = %org.slug, error = %e, "operations sweep could not start");
                    continue;
                }
            };
            match proplink_db::maintenance::sweep(
                &mut tx,
                &org.name,
                &link,
                OffsetDateTime::now_utc(),
            )
            .await
            {
                Ok(done) => {
                    if let Err(e) = tx.commit().await {
                        tracing::warn!(org = %org.slug, error = %e, "operations sweep not saved");
                        continue;
                    }
                    if done != proplink_db::maintenance::Swept::default() {
                        tracing::info!(org = %org.slug, ?done, "operations sweep");
                    }
                }
                Err(e) => tracing::warn!(org = %org.slug, error = %e, "operations sweep refused"),
            }
            match proplink_web::direct_debit::collect(
                &self.app,
                &self.payments,
                org,
                None,
                OffsetDateTime::now_utc(),
            )
            .await
            {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(org = %org.slug, collections = n, "Direct Debit collections started")
                }
                Err(e) => {
                    tracing::warn!(org = %org.slug, error = %e, "Direct Debit collections failed")
                }
            }
        }
        Ok(())
    }
}

pub fn build_worker(
    config: &Config,
    app: AppPool,
    platform: PlatformPool,
    files: Option<proplink_files::FileStore>,
) -> Result<Background, String> {
    let (app_for_sweep, platform_for_sweep) = (app.clone(), platform.clone());
    let mut worker = Worker::new(
        app.clone(),
        platform.clone(),
        WorkerConfig {
            concurrency: config.worker.concurrency,
            ..WorkerConfig::default()
        },
    );
    let sender = Sender {
        address: config.mail.from_address.clone(),
        name: config.mail.from_name.clone(),
    };
    let mailer = mailer(config)?;
    worker.register(
        email::SEND_JOB,
        Arc::new(SendEmailJob {
            mailer: mailer.clone(),
            sender: sender.clone(),
            files: files.clone(),
        }),
    );
    worker.register(PROVIDER_EVENT_JOB, Arc::new(ProviderEventJob));
    worker.register(
        proplink_db::import::COMMIT_JOB,
        Arc::new(proplink_db::import::CommitImportJob { pool: app }),
    );
    let outbox = PlatformOutbox {
        pool: platform,
        mailer,
        sender,
        poll: std::time::Duration::from_secs(1),
    };
    let sweep = OperationsSweep {
        app: app_for_sweep,
        platform: platform_for_sweep,
        contractor_base: config.web_settings().url(&config.domains.contractor, ""),
        every: std::time::Duration::from_secs(3600),
        payments: config.payment_settings()?,
    };
    Ok(Background {
        worker,
        outbox,
        sweep,
    })
}

/// Cancels the token on Ctrl-C or SIGTERM.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        t.cancel();
                        return;
                    }
                };
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        t.cancel();
    });
    token
}

pub async fn bind(config: &Config) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                format!(
                    "{} is already in use: stop the other program or choose another port",
                    config.listen
                )
            } else {
                format!("cannot listen on {}: {e}", config.listen)
            }
        })
}

pub async fn serve(config: Config, data_dir: &Path) -> Result<(), String> {
    init_logging("info");
    let (app, _) = connect(&env_url("DATABASE_URL")?, None).await?;
    let listener = bind(&config).await?;
    let shutdown = shutdown_on_signal();
    tracing::info!(listen = %config.listen, "serving");
    let state =
        proplink_web::AppState::new(app.clone(), config.web_settings_with_secrets(data_dir)?)
            .await
            .map_err(|e| format!("the web server could not start: {e}"))?;
    proplink_web::serve(listener, state, shutdown)
        .await
        .map_err(|e| format!("the server stopped: {e}"))?;
    app.close().await;
    Ok(())
}

pub async fn worker(config: Config, data_dir: &Path) -> Result<(), String> {
    init_logging("info");
    let (app, platform) = connect(
        &env_url("DATABASE_URL")?,
        Some(&env_url("DATABASE_PLATFORM_URL")?),
    )
    .await?;
    let platform = platform.ok_or("DATABASE_PLATFORM_URL is required")?;
    let files = config.web_settings_with_secrets(data_dir)?.files;
    let worker = build_worker(&config, app, platform, files)?;
    tracing::info!(worker = worker.worker.id(), "worker started");
    worker.run(shutdown_on_signal()).await;
    Ok(())
}

pub async fn migrate() -> Result<(), String> {
    let url = std::env::var("DATABASE_OWNER_URL").or_else(|_| env_url("DATABASE_URL"))?;
    setup::migrate(&url).await.map_err(|e| e.to_string())?;
    println!("The database schema is up to date.");
    Ok(())
}

/// The platform pool for operator commands: DATABASE_PLATFORM_URL, else the embedded cluster.
async fn platform_pool(data_dir: &Path) -> Result<(PlatformPool, Option<Embedded>), String> {
    if let Ok(url) = std::env::var("DATABASE_PLATFORM_URL") {
        let (_, p) = connect_platform_only(&url).await?;
        return Ok((p, None));
    }
    let embedded = Embedded::start(data_dir, Durability::Durable).await?;
    setup::migrate(&embedded.owner_url())
        .await
        .map_err(|e| e.to_string())?;
    let (_, p) = connect_platform_only(&embedded.platform_url()).await?;
    Ok((p, Some(embedded)))
}

async fn connect_platform_only(url: &str) -> Result<((), PlatformPool), String> {
    let p = PlatformPool::new(
        url,
        &PoolSettings {
            max_connections: 2,
            ..PoolSettings::default()
        },
    )
    .map_err(|e| e.to_string())?;
    p.verify()
        .await
        .map_err(|e| format!("cannot use the platform database role: {e}"))?;
    Ok(((), p))
}

async fn finish(pool: PlatformPool, embedded: Option<Embedded>) {
    pool.close().await;
    if let Some(e) = embedded {
        e.stop_if_started_here();
    }
}

pub async fn org_create(
    config: &Config,
    data_dir: &Path,
    slug: &str,
    name: &str,
    owner: Option<(String, String)>,
) -> Result<(), String> {
    let slug = OrgSlug::parse(slug)
        .map_err(|e| format!("{e}: a subdomain is 1–63 lower-case letters, digits or hyphens"))?;
    let owner = match owner {
        Some((email, name)) => {
            let email = proplink_domain::EmailAddress::parse(&email).map_err(|e| e.to_string())?;
            if name.trim().is_empty() || name.chars().count() > 200 {
                return Err("--owner-name must be 1–200 characters".into());
            }
            Some((email, name.trim().to_owned()))
        }
        None => None,
    };
    let (pool, embedded) = platform_pool(data_dir).await?;
    let result = organisation::create(&pool, &slug, name).await;
    let invited = match (&result, &owner) {
        (Ok(org), Some((email, owner_name))) => {
            let app_url = match &embedded {
                Some(e) => e.app_url(),
                None => env_url("DATABASE_URL")?,
            };
            Some(invite_owner(config, &app_url, org, email, owner_name).await)
        }
        _ => None,
    };
    finish(pool, embedded).await;
    let org = result.map_err(|e| e.to_string())?;
    println!(
        "Created organisation \"{}\" ({}) with id {}.",
        org.name, org.slug, org.id
    );
    if let Some(invited) = invited {
        let url = invited?;
        println!(
            "Invited its Organisation Owner; the invitation (valid 14 days) was e-mailed with this link:\n  {url}"
        );
    }
    Ok(())
}

/// Invites a new organisation's owner: the invitation e-mail goes through the organisation's
/// own queue; the link is also returned for the operator.
async fn invite_owner(
    config: &Config,
    app_url: &str,
    org: &organisation::Organisation,
    email: &proplink_domain::EmailAddress,
    name: &str,
) -> Result<String, String> {
    use proplink_db::access::{self, NewInvitation, RoleChoice};
    use proplink_domain::permissions::{BuiltInRole, Scope};
    let app = AppPool::new(
        app_url,
        &PoolSettings {
            max_connections: 2,
            ..PoolSettings::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let ctx = proplink_db::TenantContext {
        org: org.id,
        actor: proplink_db::Actor {
            id: None,
            kind: proplink_domain::ActorKind::Platform,
            name: Some("PropLink onboarding".into()),
        },
        channel: proplink_domain::Channel::Platform,
        request_id: None,
    };
    let (token, hash) = proplink_auth::links::new_token();
    let settings = config.web_settings();
    let url = settings.url(
        &settings.admin_host(&org.slug),
        &format!("/invitation/{token}"),
    );
    let mut tx = app.begin(&ctx).await.map_err(|e| e.to_string())?;
    let outcome = access::invite(
        &mut tx,
        &NewInvitation {
            email: email.as_str().to_owned(),
            name: name.to_owned(),
            role: RoleChoice::BuiltIn(BuiltInRole::OrganisationOwner),
            scope: Scope::AllSites,
            welcome_message: None,
            is_owner: true,
        },
        &hash,
        &url,
        &org.name,
        Some("PropLink"),
        time::OffsetDateTime::now_utc(),
    )
    .await
    .map_err(|e| e.to_string())?;
    outcome.map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    app.close().await;
    Ok(url)
}

pub async fn org_list(data_dir: &Path) -> Result<(), String> {
    let (pool, embedded) = platform_pool(data_dir).await?;
    let result = organisation::list(&pool).await;
    finish(pool, embedded).await;
    for org in result.map_err(|e| e.to_string())? {
        println!("{:<24} {:<10} {}", org.slug, org.status.as_str(), org.name);
    }
    Ok(())
}

pub async fn org_set_status(data_dir: &Path, slug: &str, status: &str) -> Result<(), String> {
    let status = OrgStatus::parse(status)
        .ok_or_else(|| format!("\"{status}\" is not a status: use active, read-only or closed"))?;
    let (pool, embedded) = platform_pool(data_dir).await?;
    let orgs = organisation::list(&pool).await;
    let result = match orgs.map(|o| o.into_iter().find(|o| o.slug == slug)) {
        Ok(Some(org)) => organisation::set_status(&pool, org.id, status)
            .await
            .map_err(|e| e.to_string()),
        Ok(None) => Err(format!(
            "there is no organisation with the subdomain \"{slug}\""
        )),
        Err(e) => Err(e.to_string()),
    };
    finish(pool, embedded).await;
    result?;
    println!("{slug} is now {}.", status.as_str().replace('_', "-"));
    Ok(())
}

pub async fn audit_verify(data_dir: &Path, only: Option<&str>) -> Result<(), String> {
    let (pool, embedded) = platform_pool(data_dir).await?;
    let outcome = verify_all(&pool, only).await;
    finish(pool, embedded).await;
    outcome
}

async fn verify_all(pool: &PlatformPool, only: Option<&str>) -> Result<(), String> {
    let orgs = organisation::list(pool).await.map_err(|e| e.to_string())?;
    let selected: Vec<_> = orgs
        .into_iter()
        .filter(|o| only.is_none_or(|s| s == o.slug))
        .collect();
    if let (Some(slug), true) = (only, selected.is_empty()) {
        return Err(format!(
            "there is no organisation with the subdomain \"{slug}\""
        ));
    }
    let mut broken = Vec::new();
    for org in selected {
        let report = audit::verify_chain(pool, org.id)
            .await
            .map_err(|e| e.to_string())?;
        match &report.broken {
            None => println!(
                "{}: {} event{}, chain intact",
                report.slug,
                report.events,
                if report.events == 1 { "" } else { "s" }
            ),
            Some(b) => {
                println!("{}: BROKEN: {}", report.slug, b.reason);
                broken.push(report.slug.clone());
            }
        }
    }
    if broken.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the audit chain is broken for: {}",
            broken.join(", ")
        ))
    }
}

pub async fn jobs_dead(data_dir: &Path, limit: i64) -> Result<(), String> {
    let (pool, embedded) = platform_pool(data_dir).await?;
    let result = jobs::dead_jobs(&pool, limit).await;
    finish(pool, embedded).await;
    let dead = result.map_err(|e| e.to_string())?;
    if dead.is_empty() {
        println!("No dead jobs.");
    }
    for j in dead {
        println!(
            "{} {} org {} after {} attempts: {}",
            j.id,
            j.kind,
            j.organisation_id,
            j.attempts,
            j.last_error.unwrap_or_default()
        );
    }
    Ok(())
}
