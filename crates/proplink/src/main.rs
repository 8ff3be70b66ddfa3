//! `proplink`: one binary for the whole platform (DESIGN.md §1).

mod bench;
mod bench_money;
mod bench_operations;
mod bench_payables;
mod bench_portfolio;
mod bench_residence;
mod bench_web;
mod config;
mod demo;
mod demo_money;
mod demo_operations;
mod demo_people;
mod demo_portfolio;
mod demo_residence;
mod embedded;
mod runtime;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

// The server allocates many small, short-lived buffers per request across threads; mimalloc
// does that with less contention than the system allocator (figures in `proplink bench web`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "proplink",
    version,
    about = "PropLink: block management, facilities, building safety and lettings on one platform"
)]
struct Cli {
    /// Optional TOML configuration file (environment variables PROPLINK_* override it).
    #[arg(long, global = true, env = "PROPLINK_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory of the embedded database, used when DATABASE_URL is not set.
    #[arg(long, global = true, default_value = ".proplink")]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything on the embedded default: private PostgreSQL, demo data, server and worker.
    Demo {
        /// Port to listen on (127.0.0.1 only).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Goldcrest's portfolio this many times over (1: 12 sites, about 600 units), for a
        /// big demo; applies when the demo data is first loaded.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=500))]
        scale: u16,
    },
    /// Run the web server against DATABASE_URL.
    Serve,
    /// Run the background worker against DATABASE_URL and DATABASE_PLATFORM_URL.
    Worker,
    /// Bring the schema up to date (DATABASE_OWNER_URL, else DATABASE_URL, as the owner role).
    Migrate,
    /// Organisations (tenants).
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// The tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The job queue.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Benchmarks that print figures.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an organisation; its slug is its subdomain. With --owner-email, its Organisation
    /// Owner is invited (they accept, choose a password and set the organisation up).
    Create {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        #[arg(long, requires = "owner_name")]
        owner_email: Option<String>,
        #[arg(long, requires = "owner_email")]
        owner_name: Option<String>,
    },
    /// List organisations.
    List,
    /// Change an organisation's status: active, read-only or closed.
    SetStatus {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        status: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk each organisation's hash chain; exit non-zero naming the first broken event.
    Verify {
        #[arg(long)]
        org: Option<String>,
    },
}

#[derive(Subcommand)]
enum JobsCommand {
    /// Dead jobs, newest first.
    Dead {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

fn main() -> ExitCode {
    // One TLS crypto provider for the whole process (STACK-NOTES §2).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("proplink: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("proplink: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let config = || config::Config::load(cli.config.as_deref());
    match cli.command {
        Command::Demo { port, scale } => {
            demo::run(config()?, &cli.data_dir, port, usize::from(scale)).await
        }
        Command::Serve => runtime::serve(config()?, &cli.data_dir).await,
        Command::Worker => runtime::worker(config()?, &cli.data_dir).await,
        Command::Migrate => runtime::migrate().await,
        Command::Org { command } => match command {
            OrgCommand::Create {
                slug,
                name,
                owner_email,
                owner_name,
            } => {
                let owner = owner_email.zip(owner_name);
                runtime::org_create(&config()?, &cli.data_dir, &slug, &name, owner).await
            }
            OrgCommand::List => runtime::org_list(&cli.data_dir).await,
            OrgCommand::SetStatus { slug, status } => {
                runtime::org_set_status(&cli.data_dir, &slug, &status).await
            }
        },
        Command::Audit {
            command: AuditCommand::Verify { org },
        } => runtime::audit_verify(&cli.data_dir, org.as_deref()).await,
        Command::Jobs {
            command: JobsCommand::Dead { limit },
        } => runtime::jobs_dead(&cli.data_dir, limit).await,
        Command::Bench { command } => bench::run(command).await,
    }
}
