//! A private PostgreSQL cluster run from the machine's server binaries.
//!
//! `proplink demo` keeps one under its data directory; the test harness keeps one per checkout.
//! The cluster listens on a unix socket only (no TCP), with `trust` authentication inside a
//! directory only its OS user can enter. `initdb` refuses to run as root, so when we are root
//! every server command runs as the `postgres` OS user.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The socket port. TCP is off, so it only names the socket file inside our own directory.
pub const PORT: u16 = 54329;
/// The cluster's superuser role (not an OS user).
pub const SUPERUSER: &str = "postgres";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL server programs (initdb, pg_ctl) were not found on PATH or under /usr/lib/postgresql/*/bin: install PostgreSQL 15 or newer (on Debian or Ubuntu: `sudo apt-get install postgresql`) or set DATABASE_URL"
    )]
    BinariesMissing,
    #[error(
        "PropLink is running as root, so PostgreSQL must run as the `postgres` OS user, which does not exist: install PostgreSQL from your distribution's packages (which create it)"
    )]
    NoPostgresUser,
    #[error(
        "the `postgres` OS user cannot reach {0}: choose a --data-dir under a directory every user can enter, such as /var/tmp/proplink"
    )]
    Unreachable(PathBuf),
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
}

/// Where the server programs are.
#[derive(Debug, Clone)]
pub struct PgBinaries {
    pub dir: PathBuf,
}

impl PgBinaries {
    /// `PROPLINK_PG_BINDIR` when set; else PATH, then the newest `/usr/lib/postgresql/<version>/bin`.
    pub fn discover() -> Result<Self, ClusterError> {
        let has_all = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
        if let Some(dir) = std::env::var_os("PROPLINK_PG_BINDIR") {
            let dir = PathBuf::from(dir);
            return if has_all(&dir) {
                Ok(Self { dir })
            } else {
                Err(ClusterError::BinariesMissing)
            };
        }
        if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path) {
                if has_all(&dir) {
                    return Ok(Self { dir });
                }
            }
        }
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let v: u32 = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                has_all(&bin).then_some((v, bin))
            })
            .collect();
        versions.sort();
        match versions.pop() {
            Some((v, dir)) if v >= 15 => Ok(Self { dir }),
            _ => Err(ClusterError::BinariesMissing),
        }
    }

    fn program(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Durability of the cluster: real data (the demo) or throwaway data (tests, benchmarks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Durable,
    Throwaway,
}

#[derive(Debug, Clone)]
pub struct Cluster {
    bins: PgBinaries,
    pub data_dir: PathBuf,
    pub socket_dir: PathBuf,
    log_file: PathBuf,
    run_as: Option<(u32, u32)>,
    durability: Durability,
}

impl Cluster {
    /// Lays out (and on first use initialises) a cluster under `root`: `root/pg` holds the data,
    /// `root/pg.log` the server log. The socket goes in `root/run`, or in a short directory
    /// under /tmp when `root` is too deep for a unix socket path.
    pub fn prepare(
        bins: PgBinaries,
        root: &Path,
        durability: Durability,
    ) -> Result<Self, ClusterError> {
        std::fs::create_dir_all(root).map_err(|e| io(format!("creating {}", root.display()), e))?;
        let root = root
            .canonicalize()
            .map_err(|e| io(format!("resolving {}", root.display()), e))?;
        let run_as = if nix::unistd::geteuid().is_root() {
            let user = nix::unistd::User::from_name("postgres")
                .ok()
                .flatten()
                .ok_or(ClusterError::NoPostgresUser)?;
            Some((user.uid.as_raw(), user.gid.as_raw()))
        } else {
            None
        };
        if let Some((uid, _)) = run_as {
            check_reachable(&root, uid)?;
        }
        let data_dir = root.join("pg");
        let log_file = root.join("pg.log");
        let mut socket_dir = root.join("run");
        // sun_path holds 107 bytes; leave room for "/.s.PGSQL.54329.lock".
        if socket_dir.as_os_str().len() > 80 {
            use std::hash::{DefaultHasher, Hash, Hasher};
            let mut h = DefaultHasher::new();
            root.hash(&mut h);
            socket_dir = std::env::temp_dir().join(format!("proplink-{:016x}", h.finish()));
        }
        let cluster = Self {
            bins,
            data_dir,
            socket_dir,
            log_file,
            run_as,
            durability,
        };
        cluster.make_private_dir(&cluster.socket_dir)?;
        if !cluster.data_dir.join("PG_VERSION").is_file() {
            cluster.make_private_dir(&cluster.data_dir)?;
            cluster.initdb()?;
        }
        Ok(cluster)
    }

    fn make_private_dir(&self, dir: &Path) -> Result<(), ClusterError> {
        std::fs::create_dir_all(dir).map_err(|e| io(format!("creating {}", dir.display()), e))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io(format!("setting permissions on {}", dir.display()), e))?;
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(dir, Some(uid), Some(gid))
                .map_err(|e| io(format!("handing {} to the postgres user", dir.display()), e))?;
        }
        Ok(())
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bins.program(program));
        // The server's OS user must be able to read its working directory.
        cmd.current_dir("/");
        cmd.env_remove("PGDATA")
            .env_remove("PGHOST")
            .env_remove("PGPORT");
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid).env("HOME", "/tmp");
        }
        cmd
    }

    fn run(&self, what: &str, mut cmd: Command) -> Result<Output, ClusterError> {
        let out = cmd
            .output()
            .map_err(|e| io(format!("starting {what}"), e))?;
        if out.status.success() {
            Ok(out)
        } else {
            let mut detail = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            if detail.is_empty() {
                detail = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            }
            Err(ClusterError::Command {
                what: what.to_owned(),
                detail,
            })
        }
    }

    fn initdb(&self) -> Result<(), ClusterError> {
        let mut cmd = self.command("initdb");
        cmd.arg("-D").arg(&self.data_dir).args([
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ]);
        if self.durability == Durability::Throwaway {
            cmd.arg("--no-sync");
        }
        self.run("initdb", cmd).map(|_| ())
    }

    pub fn is_running(&self) -> bool {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D").arg(&self.data_dir).arg("status");
        cmd.output().map(|o| o.status.success()).unwrap_or(false)
    }

    /// Starts the server unless it already runs; waits until it accepts connections.
    pub fn start(&self) -> Result<(), ClusterError> {
        if self.is_running() {
            return Ok(());
        }
        if !self.log_file.exists() {
            std::fs::write(&self.log_file, b"")
                .map_err(|e| io(format!("creating {}", self.log_file.display()), e))?;
        }
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(&self.log_file, Some(uid), Some(gid)).map_err(|e| {
                io(
                    format!("handing {} to the postgres user", self.log_file.display()),
                    e,
                )
            })?;
        }
        let mut options = format!(
            "-c listen_addresses='' -c unix_socket_directories='{}' -p {PORT} -c max_connections=200",
            self.socket_dir.display()
        );
        if self.durability == Durability::Throwaway {
            options.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D")
            .arg(&self.data_dir)
            .arg("-l")
            .arg(&self.log_file)
            .args(["-w", "-t", "60", "-o", &options, "start"]);
        self.run("starting PostgreSQL", cmd)
            .map(|_| ())
            .map_err(|e| match e {
                ClusterError::Command { what, detail } => ClusterError::Command {
                    what,
                    detail: format!("{detail} (see {})", self.log_file.display()),
                },
                other => other,
            })
    }

    /// Fast shutdown: open transactions roll back, committed data is safe.
    pub fn stop(&self) -> Result<(), ClusterError> {
        if !self.is_running() {
            return Ok(());
        }
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "fast", "-w", "stop"]);
        self.run("stopping PostgreSQL", cmd).map(|_| ())
    }

    /// A connection URL for `role` on `database` over the socket.
    pub fn url(&self, role: &str, database: &str) -> String {
        format!(
            "postgres://{role}@localhost:{PORT}/{database}?host={}",
            self.socket_dir.display()
        )
    }

    /// A `psql` command line that opens `database` as `role`.
    pub fn psql_command(&self, role: &str, database: &str) -> String {
        format!(
            "psql \"host={} port={PORT} user={role} dbname={database}\"",
            self.socket_dir.display()
        )
    }
}

fn io(what: String, e: std::io::Error) -> ClusterError {
    ClusterError::Io(what, e)
}

/// The postgres OS user must be able to traverse every ancestor of the data directory.
fn check_reachable(root: &Path, uid: u32) -> Result<(), ClusterError> {
    for dir in root.ancestors().skip(1) {
        let Ok(meta) = std::fs::metadata(dir) else {
            continue;
        };
        let mode = meta.mode();
        let ok = if meta.uid() == uid {
            mode & 0o100 != 0
        } else {
            mode & 0o001 != 0
        };
        if !ok {
            return Err(ClusterError::Unreachable(root.to_path_buf()));
        }
    }
    Ok(())
}
