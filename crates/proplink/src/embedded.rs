//! The embedded database: a private cluster under the data directory (DESIGN.md §1).

use proplink_db::cluster::{Cluster, Durability, PgBinaries, SUPERUSER};
use proplink_db::pools::{APP_ROLE, OWNER_ROLE, PLATFORM_ROLE};
use proplink_db::setup;
use sqlx::{Connection, PgConnection};
use std::path::Path;

pub const DATABASE: &str = "proplink";

pub struct Embedded {
    pub cluster: Cluster,
    /// Whether this process started the server (and so stops it when done).
    pub started_here: bool,
}

impl Embedded {
    /// Creates (first run) or reuses the cluster, starts it, and makes sure the roles and the
    /// database exist.
    pub async fn start(data_dir: &Path, durability: Durability) -> Result<Self, String> {
        let bins = PgBinaries::discover().map_err(|e| e.to_string())?;
        let cluster =
            Cluster::prepare(bins, &data_dir.join("db"), durability).map_err(|e| e.to_string())?;
        let started_here = !cluster.is_running();
        cluster.start().map_err(|e| e.to_string())?;
        let mut su = PgConnection::connect(&cluster.url(SUPERUSER, "postgres"))
            .await
            .map_err(|e| format!("cannot connect to the embedded database: {e}"))?;
        setup::ensure_roles(&mut su)
            .await
            .map_err(|e| e.to_string())?;
        setup::ensure_database(&mut su, DATABASE)
            .await
            .map_err(|e| e.to_string())?;
        let _ = su.close().await;
        Ok(Self {
            cluster,
            started_here,
        })
    }

    pub fn app_url(&self) -> String {
        self.cluster.url(APP_ROLE, DATABASE)
    }

    pub fn platform_url(&self) -> String {
        self.cluster.url(PLATFORM_ROLE, DATABASE)
    }

    pub fn owner_url(&self) -> String {
        self.cluster.url(OWNER_ROLE, DATABASE)
    }

    pub fn stop_if_started_here(&self) {
        if self.started_here
            && let Err(e) = self.cluster.stop()
        {
            eprintln!("warning: could not stop the embedded database: {e}");
        }
    }
}
