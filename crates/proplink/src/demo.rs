//! `proplink demo`: the embedded default, from a fresh machine to a running product.

use crate::config::Config;
use crate::embedded::Embedded;
use crate::runtime;
use proplink_db::cluster::Durability;
use proplink_db::email::{self, NewEmail};
use proplink_db::organisation::{self, Organisation};
use proplink_db::{Actor, AppPool, PlatformPool, TenantContext, setup};
use proplink_domain::{ActorKind, Channel, OrgSlug};
use std::io::Write;
use std::path::Path;

use crate::demo_residence;

/// The demo organisations: (slug, name).
pub const DEMO_ORGS: [(&str, &str); 2] = [
    ("goldcrest", "Goldcrest Estates"),
    ("acme", "Acme Property Group"),
];

/// Holds the data directory for one demo at a time.
struct DemoLock(#[expect(dead_code, reason = "held only for its lock")] std::fs::File);

fn lock(data_dir: &Path) -> Result<DemoLock, String> {
    std::fs::create_dir_all(data_dir).map_err(|e| {
        format!(
            "cannot create the data directory {}: {e}",
            data_dir.display()
        )
    })?;
    let path = data_dir.join("demo.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {
            let _ = file.set_len(0);
            let _ = writeln!(file, "{}", std::process::id());
            Ok(DemoLock(file))
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let pid = std::fs::read_to_string(&path).unwrap_or_default();
            Err(format!(
                "another `proplink demo` (process {}) is already running with the data directory {}: stop it first, or pass a different --data-dir",
                pid.trim(),
                data_dir.display()
            ))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display())),
    }
}

/// The three connection URLs the demo needs: owner (migrations), server role, platform role.
struct Urls {
    owner: String,
    app: String,
    platform: String,
    /// How to open the database with psql, for the banner.
    psql: Option<String>,
}

pub async fn run(
    mut config: Config,
    data_dir: &Path,
    port: u16,
    scale: usize,
) -> Result<(), String> {
    runtime::init_logging("warn");
    config.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    config.dev_mailbox = true;
    config.public_port = Some(port);
    if let Ok(app) = std::env::var("DATABASE_URL") {
        // An existing database: the demo data goes there and nothing is started.
        let need = |name: &str| {
            std::env::var(name).map_err(|_| {
                format!("DATABASE_URL is set, so the demo uses that database and also needs {name}")
            })
        };
        let urls = Urls {
            owner: need("DATABASE_OWNER_URL")?,
            app,
            platform: need("DATABASE_PLATFORM_URL")?,
            psql: None,
        };
        return run_with(&config, &urls, data_dir, scale).await;
    }
    let _lock = lock(data_dir)?;
    println!(
        "Starting the embedded PostgreSQL under {} …",
        data_dir.display()
    );
    let embedded = Embedded::start(data_dir, Durability::Durable).await?;
    let urls = Urls {
        owner: embedded.owner_url(),
        app: embedded.app_url(),
        platform: embedded.platform_url(),
        psql: Some(
            embedded
                .cluster
                .psql_command(proplink_db::pools::OWNER_ROLE, crate::embedded::DATABASE),
        ),
    };
    let result = run_with(&config, &urls, data_dir, scale).await;
    embedded
        .cluster
        .stop()
        .map_err(|e| format!("stopping the embedded database: {e}"))?;
    if result.is_ok() {
        println!("Stopped. Your data is kept in {}.", data_dir.display());
    }
    result
}

async fn run_with(
    config: &Config,
    urls: &Urls,
    data_dir: &Path,
    scale: usize,
) -> Result<(), String> {
    setup::migrate(&urls.owner)
        .await
        .map_err(|e| e.to_string())?;
    let (app, platform) = runtime::connect(&urls.app, Some(&urls.platform)).await?;
    let platform = platform.ok_or("the platform pool is missing")?;
    let secrets = config.web_settings_with_secrets(data_dir)?;
    let files = secrets.files;
    load_demo_data(
        &app,
        &platform,
        scale,
        DemoLinks::of(config),
        files.as_ref(),
        &secrets.data_key,
    )
    .await?;
    let listener = runtime::bind(config).await?;
    let worker = runtime::build_worker(config, app.clone(), platform.clone(), files)?;
    print_banner(config, urls.psql.as_deref());

    let shutdown = runtime::shutdown_on_signal();
    let worker_task = tokio::spawn(worker.run(shutdown.clone()));
    let state =
        proplink_web::AppState::new(app.clone(), config.web_settings_with_secrets(data_dir)?)
            .await
            .map_err(|e| format!("the web server could not start: {e}"))?;
    let served = proplink_web::serve(listener, state, shutdown.clone()).await;
    shutdown.cancel();
    let _ = worker_task.await;
    app.close().await;
    platform.close().await;
    println!("\nShutting down …");
    served.map_err(|e| format!("the server stopped: {e}"))
}

/// Where the demo's e-mails send people: ContractorPort, and each organisation's ResidencePort.
pub struct DemoLinks {
    /// `http://contractorport.localhost:8080`.
    contractor_base: String,
    /// `http://{org}.residenceport.localhost:8080`, `{org}` standing for the slug.
    residence_portal: String,
}

impl DemoLinks {
    /// The addresses the configured server answers on.
    fn of(config: &Config) -> Self {
        let web = config.web_settings();
        Self {
            contractor_base: web.url(&config.domains.contractor, ""),
            residence_portal: web.url(&format!("{{org}}.{}", config.domains.residence), ""),
        }
    }

    fn residence_portal(&self, slug: &str) -> String {
        self.residence_portal.replace("{org}", slug)
    }
}

/// ContractorPort's base address alone: ResidencePort on its default domain, same scheme and port.
impl From<&str> for DemoLinks {
    fn from(contractor_base: &str) -> Self {
        let domains = proplink_web::Domains::default();
        let residence = contractor_base.replacen(
            &domains.contractor,
            &format!("{{org}}.{}", domains.residence),
            1,
        );
        Self {
            contractor_base: contractor_base.to_owned(),
            residence_portal: residence,
        }
    }
}

/// Loads the demo organisations once; later runs find them and change nothing.
pub async fn load_demo_data(
    app: &AppPool,
    platform: &PlatformPool,
    scale: usize,
    links: impl Into<DemoLinks>,
    store: Option<&proplink_files::FileStore>,
    key: &proplink_auth::seal::DataKey,
) -> Result<(), String> {
    let links = links.into();
    for (slug, name) in DEMO_ORGS {
        if organisation::find_by_slug(app, slug)
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            continue;
        }
        let slug = OrgSlug::parse(slug).map_err(|e| e.to_string())?;
        let org = organisation::create(platform, &slug, name)
            .await
            .map_err(|e| e.to_string())?;
        welcome(app, &org).await?;
        crate::demo_people::load(app, &org).await?;
        let files = match org.slug.as_str() {
            "goldcrest" => crate::demo_portfolio::Generator::goldcrest(scale),
            _ => crate::demo_portfolio::Generator::acme(),
        };
        crate::demo_portfolio::load(app, &org, &files).await?;
        crate::demo_operations::load(app, &org, &links.contractor_base, store).await?;
        crate::demo_money::load(app, &org, key).await?;
        if org.slug.as_str() == "goldcrest" {
            demo_residence::load(app, &org, &links.residence_portal(org.slug.as_str())).await?;
        }
    }
    Ok(())
}

async fn welcome(app: &AppPool, org: &Organisation) -> Result<(), String> {
    let ctx = TenantContext {
        org: org.id,
        actor: Actor {
            id: None,
            kind: ActorKind::System,
            name: Some("the demo loader".into()),
        },
        channel: Channel::Platform,
        request_id: None,
    };
    let mut tx = app.begin(&ctx).await.map_err(|e| e.to_string())?;
    email::queue(
        &mut tx,
        NewEmail {
            to_address: format!("owner@{}.example.co.uk", org.slug),
            to_name: Some(format!("{} owner", org.name)),
            subject: format!("Welcome to PropLink, {}", org.name),
            body_text: format!(
                "Hello,\n\n{} is set up on PropLink at http://{}.proplink.localhost:8080/.\n\nThis message was kept in the development mailbox because the demo uses the embedded mailer.\n\nPropLink",
                org.name, org.slug
            ),
            body_html: None,
            category: "welcome".into(),
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())
}

fn print_banner(config: &Config, psql: Option<&str>) {
    let port = config.listen.port();
    let admin = &config.domains.admin;
    println!();
    println!("PropLink is running on the embedded default.");
    println!();
    println!("  Sign in:              http://login.{admin}:{port}/");
    println!("  Sign-in codes (mail): http://login.{admin}:{port}/dev/mailbox");
    for (slug, name) in DEMO_ORGS {
        println!(
            "  {name:<22}admin app: http://{slug}.{admin}:{port}/  ·  its mail: http://{slug}.{admin}:{port}/dev/mailbox"
        );
    }
    println!(
        "  ResidencePort:        http://goldcrest.{}:{port}/  ·  sign in as {} with the code from Goldcrest's mail",
        config.domains.residence,
        demo_residence::DEMO_RESIDENT_EMAIL
    );
    println!(
        "  Health:               http://login.{admin}:{port}/healthz  ·  readiness: /readyz  ·  metrics: /metrics"
    );
    println!();
    println!(
        "Demo sign-ins (password {} for all; the second step is a 6-digit code from the sign-in mailbox above):",
        crate::demo_people::DEMO_PASSWORD
    );
    for (org, name, email, role) in crate::demo_people::sign_ins() {
        println!("  {org:<10} {email:<42} {name:<14} {role}");
    }
    println!(
        "  Priya Patel belongs to both organisations: she picks one after signing in, and can switch."
    );
    println!();
    match psql {
        Some(psql) => {
            println!("Database (owner role): {psql}");
            println!("Press Ctrl-C to stop (the database stops too; data is kept).");
        }
        None => println!("Database: DATABASE_URL. Press Ctrl-C to stop."),
    }
}
