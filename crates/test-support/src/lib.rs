//! The test harness of DESIGN.md §9.
//!
//! One private PostgreSQL cluster serves every test of a checkout (started on first use, kept
//! running between runs, fsync off). Its schema is migrated once into a template database named
//! after the schema's fingerprint, and every test gets its own database cloned from that
//! template, dropped when the test ends. Pools connect as the server's roles, so row-level
//! security is exercised exactly as in production.
//!
//! A missing PostgreSQL is a failure with the reason, never a skip.

#![expect(
    clippy::expect_used,
    reason = "test harness: failing loudly is the point"
)]

use proplink_db::cluster::{Cluster, Durability, PgBinaries, SUPERUSER};
use proplink_db::organisation::{self, Organisation};
use proplink_db::pools::{APP_ROLE, OWNER_ROLE, PLATFORM_ROLE, PoolSettings};
use proplink_db::setup;
use proplink_db::{Actor, AppPool, PlatformPool, TenantContext};
use proplink_domain::{ActorKind, Channel, OrgSlug};
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::OnceCell;
use uuid::Uuid;

struct Shared {
    cluster: Cluster,
    template: String,
}

static SHARED: OnceCell<Shared> = OnceCell::const_new();

/// Where this checkout's test cluster lives.
pub fn cluster_root() -> PathBuf {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    env!("CARGO_MANIFEST_DIR").hash(&mut h);
    std::env::temp_dir().join(format!(
        "proplink-test-{:012x}",
        h.finish() & 0xffff_ffff_ffff
    ))
}

async fn shared() -> &'static Shared {
    SHARED
        .get_or_init(|| async {
            let root = cluster_root();
            std::fs::create_dir_all(&root).expect("create the test cluster directory");
            // Serialise set-up across test processes (nextest runs one process per test).
            let lock = std::fs::File::create(root.join("setup.lock")).expect("create setup.lock");
            lock.lock().expect("lock setup.lock");
            let bins = PgBinaries::discover().unwrap_or_else(|e| panic!("{e}"));
            let cluster = Cluster::prepare(bins, &root, Durability::Throwaway)
                .unwrap_or_else(|e| panic!("test cluster: {e}"));
            cluster
                .start()
                .unwrap_or_else(|e| panic!("test cluster: {e}"));
            let mut su = PgConnection::connect(&cluster.url(SUPERUSER, "postgres"))
                .await
                .expect("connect to the test cluster as superuser");
            setup::ensure_roles(&mut su).await.expect("create roles");
            let template = format!("proplink_tpl_{}", setup::schema_fingerprint());
            let exists: bool =
                sqlx::query_scalar("select exists (select from pg_database where datname = $1)")
                    .bind(&template)
                    .fetch_one(&mut su)
                    .await
                    .expect("look for the template");
            if !exists {
                let wip = format!("{template}_wip");
                exec(
                    &mut su,
                    &format!("drop database if exists {wip} with (force)"),
                )
                .await;
                exec(
                    &mut su,
                    &format!("create database {wip} owner {OWNER_ROLE}"),
                )
                .await;
                setup::migrate(&cluster.url(OWNER_ROLE, &wip))
                    .await
                    .unwrap_or_else(|e| panic!("migrating the test template: {e}"));
                exec(
                    &mut su,
                    &format!("alter database {wip} rename to {template}"),
                )
                .await;
            }
            sweep_stale(&mut su).await;
            let _ = su.close().await;
            drop(lock);
            Shared { cluster, template }
        })
        .await
}

async fn exec(conn: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Drops test databases left behind by runs that were killed, and templates of old schemas.
async fn sweep_stale(su: &mut PgConnection) {
    let names: Vec<String> = sqlx::query_scalar(
        "select datname::text from pg_database where datname like 't\\_%' or datname like 'proplink\\_tpl\\_%'",
    )
    .fetch_all(&mut *su)
    .await
    .unwrap_or_default();
    let current = format!("proplink_tpl_{}", setup::schema_fingerprint());
    for name in names {
        let stale = match name.strip_prefix("t_").and_then(|r| r.split('_').next()) {
            Some(secs) => secs
                .parse::<u64>()
                .map(|s| now_secs().saturating_sub(s) > 3 * 3600)
                .unwrap_or(false),
            None => !name.starts_with(&current),
        };
        if stale {
            let _ = sqlx::raw_sql(AssertSqlSafe(format!(
                "drop database if exists {name} with (force)"
            )))
            .execute(&mut *su)
            .await;
        }
    }
}

/// A fresh database for one test.
pub struct TestDb {
    pub name: String,
    pub app: AppPool,
    pub platform: PlatformPool,
    /// The owner role: for tests that play an attacker with table-owner rights.
    pub owner: PgPool,
    cluster: Cluster,
}

impl TestDb {
    pub async fn new() -> Self {
        let shared = shared().await;
        let name = format!(
            "t_{}_{}",
            now_secs(),
            &Uuid::new_v4().simple().to_string()[..12]
        );
        let mut su = PgConnection::connect(&shared.cluster.url(SUPERUSER, "postgres"))
            .await
            .expect("connect as superuser");
        let sql = format!(
            "create database {name} template {} owner {OWNER_ROLE}",
            shared.template
        );
        let mut tries = 0;
        loop {
            match sqlx::raw_sql(AssertSqlSafe(sql.clone()))
                .execute(&mut su)
                .await
            {
                Ok(_) => break,
                // "source database is being accessed by other users": a clone in progress.
                Err(e) if tries < 50 && e.to_string().contains("being accessed") => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("{sql}: {e}"),
            }
        }
        let _ = su.close().await;
        let settings = PoolSettings {
            max_connections: 10,
            ..PoolSettings::default()
        };
        let cluster = shared.cluster.clone();
        // Database privileges are not cloned with the template: apply them as `migrate` does.
        let mut owner = PgConnection::connect(&cluster.url(OWNER_ROLE, &name))
            .await
            .expect("connect as owner");
        sqlx::raw_sql(setup::HARDEN_DATABASE_SQL)
            .execute(&mut owner)
            .await
            .expect("harden the test database");
        let _ = owner.close().await;
        Self {
            app: AppPool::new(&cluster.url(APP_ROLE, &name), &settings).expect("app pool"),
            platform: PlatformPool::new(&cluster.url(PLATFORM_ROLE, &name), &settings)
                .expect("platform pool"),
            owner: PgPool::connect_lazy(&cluster.url(OWNER_ROLE, &name)).expect("owner pool"),
            name,
            cluster,
        }
    }

    pub fn url(&self, role: &str) -> String {
        self.cluster.url(role, &self.name)
    }

    /// Starts the session cache's listener on [`Self::app`] (for the test's lifetime) and waits
    /// until it is connected.
    pub async fn listen_for_access_changes(&self) {
        if self.app.sessions().is_listening() {
            return;
        }
        let app = self.app.clone();
        tokio::spawn(async move {
            app.listen_for_access_changes(tokio_util::sync::CancellationToken::new())
                .await;
        });
        for _ in 0..500 {
            if self.app.sessions().is_listening() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the session cache's listener did not connect within 5 s");
    }

    /// A superuser connection to this test's database (for catalogue checks and sabotage).
    pub async fn superuser(&self) -> PgConnection {
        PgConnection::connect(&self.url(SUPERUSER))
            .await
            .expect("superuser connection")
    }

    /// Creates an organisation through the platform role, as `proplink org create` does.
    pub async fn org(&self, slug: &str, name: &str) -> Organisation {
        let slug = OrgSlug::parse(slug).expect("valid slug");
        organisation::create(&self.platform, &slug, name)
            .await
            .expect("create organisation")
    }

    /// A staff member's context in `org`, through the admin app.
    pub fn staff(&self, org: &Organisation, name: &str) -> TenantContext {
        TenantContext {
            org: org.id,
            actor: Actor {
                id: Some(Uuid::now_v7()),
                kind: ActorKind::Staff,
                name: Some(name.to_owned()),
            },
            channel: Channel::Admin,
            request_id: Some(format!("test-{}", Uuid::new_v4().simple())),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let url = self.cluster.url(SUPERUSER, "postgres");
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut su) = PgConnection::connect(&url).await {
                    let _ = sqlx::raw_sql(AssertSqlSafe(format!(
                        "drop database if exists {name} with (force)"
                    )))
                    .execute(&mut su)
                    .await;
                    let _ = su.close().await;
                }
            });
        })
        .join();
    }
}

pub mod browser;
pub mod http;
pub mod people;
pub mod probe;

/// A plain message to `to`, for tests that need some tenant data.
pub fn sample_email(to: &str) -> proplink_db::email::NewEmail {
    proplink_db::email::NewEmail {
        to_address: to.into(),
        to_name: Some("Mr Patel".into()),
        subject: "Your service charge demand".into(),
        body_text: "Your one-time code is 123456".into(),
        body_html: None,
        category: "general".into(),
    }
}

impl TestDb {
    /// A transaction as the owner role inside `org`'s context: what someone with the owner's
    /// rights working directly in SQL would have (FORCE makes RLS apply to the owner too).
    pub async fn owner_in(&self, org: &Organisation) -> sqlx::Transaction<'static, sqlx::Postgres> {
        let mut tx = self.owner.begin().await.expect("owner transaction");
        sqlx::query("select set_config('app.organisation_id', $1, true)")
            .bind(org.id.to_string())
            .execute(&mut *tx)
            .await
            .expect("set the organisation");
        tx
    }
}
