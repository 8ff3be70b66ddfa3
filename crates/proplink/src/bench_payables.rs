//! `proplink bench payables`: supplier payments at scale (issue 7: "a payment run of 5,000
//! bills across 200 sites: select, validate, file and post in under 2 s; the creditors list on
//! 1,000,000 bills: p99 under 50 ms").
//!
//! Builds a private throwaway cluster with one organisation, set up through the server's own
//! functions (server role, row-level security and every trigger on): `--sites` sites
//! (`portfolio::save_site`) with their books (`ledger::ensure_books`), one pooled client bank
//! account across all of them (`bank_accounts::create`, BACS Standard 18 with a Service User
//! Number) and `--vendors` suppliers with bank details (`people::save_vendor`), everything
//! sealed with one data key.
//!
//! Then `--history` bills over `--years` years, COPYed in as the superuser as the code would
//! have written them: each bill with its line and its approval journal (expense against
//! creditors control); paid ones paid by monthly payment runs (one payment per supplier, a
//! journal per payment and site, creditors against the site's ledger account for the bank);
//! the site's money for them received into the bank beforehand. Bills due from today on are
//! still open (approved, not yet due) and one in forty of those due in the last four months is
//! held. Then `--runs` + 1 batches of `--run-bills` bills are entered, submitted and approved
//! by two people through `bills::save_draft`, `submit` and `approve`, each batch due a day
//! after the one before: all due and approved since the last history run.
//!
//! Measures, through the code a request runs (a `TenantTx` per step, committed as the
//! request would): each batch paid by one run, `payments::payable_bills` (select),
//! `schedule_run` (validate and write), `approve_run` (a second person), `payment_file` (BACS
//! Standard 18) and `mark_run_paid` (post); the last batch is left scheduled. Then
//! `payments::creditors` for random sites, for every site and for a member scoped to ten
//! sites. Prints figures; asserts nothing (machines are shared and noisy).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::ops::Range;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use proplink_auth::seal::DataKey;
use proplink_db::approvals::Signer;
use proplink_db::bank_accounts::{self, AccountType, BankAccountInput, FileFormat};
use proplink_db::bills::{self, BillInput, BillLineInput};
use proplink_db::cluster::{Cluster, Durability, PgBinaries, SUPERUSER};
use proplink_db::ledger;
use proplink_db::organisation::{self, Organisation};
use proplink_db::payments::{self, RunInput};
use proplink_db::people::{self, BankDetails, VendorInput};
use proplink_db::pools::{APP_ROLE, OWNER_ROLE, PLATFORM_ROLE, PoolSettings};
use proplink_db::portfolio::{self, SiteInput};
use proplink_db::receivables::Approval;
use proplink_db::{Actor, AppPool, PlatformPool, TenantContext, setup};
use proplink_domain::ledger::{FundKind, vat_pence};
use proplink_domain::uk::{AccountNumber, SortCode, format_pence};
use proplink_domain::{ActorKind, Channel, OrgSlug};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

pub struct Options {
    pub sites: usize,
    pub vendors: usize,
    /// Bills in each measured run.
    pub run_bills: usize,
    /// Measured runs (one more batch is left scheduled).
    pub runs: usize,
    /// Bills of history.
    pub history: usize,
    /// Years the history spans.
    pub years: usize,
    /// Measured calls per creditors case.
    pub samples: usize,
    pub dir: Option<PathBuf>,
    pub keep: bool,
    /// Print the statements the measured runs spent their time in.
    pub statements: bool,
}

/// Select, validate (schedule), file and post one run.
const RUN_TARGET: Duration = Duration::from_secs(2);
const CREDITORS_TARGET: Duration = Duration::from_millis(50);
/// Unmeasured calls before each measured creditors case.
const WARM_UP: usize = 20;
/// Sites per history transaction (all their bills, payments and receipts).
const SITES_PER_BLOCK: usize = 10;
/// Bills entered, submitted and approved per transaction when making the runs' bills.
const BILLS_PER_TX: usize = 250;
/// The history's payment runs: one every this many days, the last yesterday.
const RUN_EVERY_DAYS: i64 = 30;
/// One history bill in this many due in the last `HELD_WITHIN_DAYS` days is on hold.
const HELD_EVERY: usize = 40;
const HELD_WITHIN_DAYS: i64 = 120;
/// The regular suppliers of one site.
const VENDORS_PER_SITE: usize = 10;
const STANDARD_BP: u32 = 2_000;
/// Sites the scoped member of the creditors case may see.
const SCOPED_SITES: usize = 10;

/// Who enters, submits and schedules (and marks paid); who approves bills and runs.
const CLERK: &str = "Bench Accounts Clerk";
const APPROVER: &str = "Bench Finance Manager";
const HOLD_REASON: &str = "Disputed: awaiting the contractor's photographs of the work";

/// A supplier's trade: the expense head its bills are coded to, the line's description, and
/// whether it charges VAT.
struct Trade {
    code: &'static str,
    trade: &'static str,
    line: &'static str,
    vat: bool,
}

const TRADES: [Trade; 9] = [
    trade(
        "5000",
        "Repairs",
        "Repair to the communal entrance door",
        true,
    ),
    trade("5100", "Insurance", "Buildings insurance premium", false),
    trade("5200", "Cleaning", "Communal cleaning", true),
    trade("5300", "Gardening", "Grounds maintenance", true),
    trade("5400", "Management", "Managing agent's fee", true),
    trade("5500", "Utilities", "Communal electricity", true),
    trade("5600", "Accountancy", "Service charge accounts", true),
    trade("5700", "Lifts", "Lift service visit", true),
    trade("5800", "Fire Safety", "Fire alarm service", true),
];

const fn trade(code: &'static str, trade: &'static str, line: &'static str, vat: bool) -> Trade {
    Trade {
        code,
        trade,
        line,
        vat,
    }
}

const SURNAMES: [&str; 20] = [
    "Smith", "Patel", "Jones", "Okafor", "Williams", "Khan", "Taylor", "Brown", "Kowalski", "Chen",
    "Wright", "Begum", "Evans", "Thompson", "Harris", "O'Brien", "Walker", "Hughes", "Green",
    "Clarke",
];

fn e<E: std::fmt::Display>(err: E) -> String {
    err.to_string()
}

pub async fn run(options: Options) -> Result<(), String> {
    let dir = options.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("proplink-bench-payables-{}", std::process::id()))
    });
    let bins = PgBinaries::discover().map_err(e)?;
    let cluster = Cluster::prepare(bins, &dir, Durability::Durable).map_err(e)?;
    cluster.start().map_err(e)?;
    let result = bench(&cluster, &options).await;
    if options.keep {
        println!(
            "\nThe cluster is still running: {}\nStop it with: pg_ctl stop -D {}",
            cluster.psql_command(SUPERUSER, "bench"),
            cluster.data_dir.display()
        );
        return result;
    }
    let _ = cluster.stop();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn exec(conn: &mut PgConnection, sql: &str) -> Result<(), String> {
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(e)
}

/// A member of staff's request.
fn staff(org: &Organisation, name: &str) -> TenantContext {
    TenantContext {
        org: org.id,
        actor: Actor {
            id: Some(Uuid::now_v7()),
            kind: ActorKind::Staff,
            name: Some(name.into()),
        },
        channel: Channel::Admin,
        request_id: None,
    }
}

/// Two different people, as the approval rules tell them apart (by membership).
fn person(name: &str) -> Signer {
    Signer {
        membership_id: Some(Uuid::now_v7()),
        ..Signer::unchained(name)
    }
}

async fn bench(cluster: &Cluster, o: &Options) -> Result<(), String> {
    let db = "bench";
    let mut su = PgConnection::connect(&cluster.url(SUPERUSER, "postgres"))
        .await
        .map_err(e)?;
    setup::ensure_roles(&mut su).await.map_err(e)?;
    // Room for the history's writes between checkpoints, and a modest production cache.
    for setting in [
        "shared_buffers = '1GB'",
        "max_wal_size = '1GB'",
        "checkpoint_timeout = '30min'",
    ]
    .into_iter()
    .chain(
        o.statements
            .then_some("shared_preload_libraries = 'pg_stat_statements'"),
    ) {
        exec(&mut su, &format!("alter system set {setting}")).await?;
    }
    exec(
        &mut su,
        &format!("drop database if exists {db} with (force)"),
    )
    .await?;
    setup::ensure_database(&mut su, db).await.map_err(e)?;
    su.close().await.map_err(e)?;
    cluster.stop().map_err(e)?;
    cluster.start().map_err(e)?;
    setup::migrate(&cluster.url(OWNER_ROLE, db))
        .await
        .map_err(e)?;
    let settings = PoolSettings {
        max_connections: 4,
        ..PoolSettings::default()
    };
    let platform = PlatformPool::new(&cluster.url(PLATFORM_ROLE, db), &settings).map_err(e)?;
    let app = AppPool::new(&cluster.url(APP_ROLE, db), &settings).map_err(e)?;
    let org = organisation::create(
        &platform,
        &OrgSlug::parse("large").map_err(e)?,
        "Large Estates",
    )
    .await
    .map_err(e)?;
    let today = OffsetDateTime::now_utc().date();
    let shape = Shape {
        sites: o.sites.max(1),
        vendors: o.vendors.max(1),
        run_bills: o.run_bills.max(1),
        runs: o.runs.max(1),
    };

    println!(
        "Setting up: {} sites with their books, one pooled client bank account across them \
         (BACS Standard 18), {} suppliers with bank details (server role, every trigger on) …",
        shape.sites, shape.vendors
    );
    let started = Instant::now();
    let world = load_world(&app, &org, &shape).await?;
    println!("  done in {:.1} s", started.elapsed().as_secs_f64());

    let plan = HistoryPlan::new(&world, &shape, o.history, o.years.max(1), today)?;
    load_history(cluster, db, &world, &plan).await?;

    let started = Instant::now();
    let made = make_run_bills(&app, &org, &world, &shape, today).await?;
    let took = started.elapsed();
    println!(
        "\nThe runs' bills: {made} bills entered, submitted and approved by two people through \
         bills::save_draft, submit and approve ({BILLS_PER_TX} a transaction) in {:.1} s \
         ({:.1} ms a bill)",
        took.as_secs_f64(),
        ms(took) / made.max(1) as f64
    );
    analyze(cluster, db).await?;

    if o.statements {
        statements_reset(cluster, db).await?;
    }
    measure_runs(&app, &org, &world, &shape, today).await?;
    if o.statements {
        statements_print(cluster, db).await?;
    }
    leave_scheduled(&app, &org, &world, &shape, today).await?;
    check_books(cluster, db, &world).await?;
    analyze(cluster, db).await?;
    measure_creditors(cluster, db, &app, &org, &world, o.samples.max(1), today).await?;
    app.close().await;
    platform.close().await;
    Ok(())
}

/// Starts counting every statement, nested ones (inside triggers and functions) included.
pub(crate) async fn statements_reset(cluster: &Cluster, db: &str) -> Result<(), String> {
    let mut su = PgConnection::connect(&cluster.url(SUPERUSER, db))
        .await
        .map_err(e)?;
    for sql in [
        "create extension if not exists pg_stat_statements",
        "alter system set pg_stat_statements.track = 'all'",
        "select pg_reload_conf()",
        "select pg_stat_statements_reset()",
    ] {
        exec(&mut su, sql).await?;
    }
    su.close().await.map_err(e)
}

/// The statements that took longest since `statements_reset`. A statement's time includes
/// the triggers and functions it ran, whose own statements are listed too.
pub(crate) async fn statements_print(cluster: &Cluster, db: &str) -> Result<(), String> {
    let mut su = PgConnection::connect(&cluster.url(SUPERUSER, db))
        .await
        .map_err(e)?;
    let rows: Vec<(f64, i64, i64, String)> = sqlx::query_as(
        "select total_exec_time, calls, rows,
                left(regexp_replace(query, '\\s+', ' ', 'g'), 160)
           from pg_stat_statements order by total_exec_time desc limit 40",
    )
    .fetch_all(&mut su)
    .await
    .map_err(e)?;
    println!(
        "\nWhere the measured runs spent their time (pg_stat_statements, nested statements \
         included, so times overlap):"
    );
    println!(
        "  {:>10} {:>8} {:>8}  statement",
        "total ms", "calls", "rows"
    );
    for (ms, calls, rows, query) in rows {
        println!("  {ms:>10.1} {calls:>8} {rows:>8}  {query}");
    }
    su.close().await.map_err(e)
}

/// The scale of the runs.
struct Shape {
    sites: usize,
    vendors: usize,
    run_bills: usize,
    runs: usize,
}

impl Shape {
    /// The day batch `b` of the runs' bills falls due: a day apart, the last two days ago, all
    /// after the last history run (so each run selects its own batch).
    fn due(&self, b: usize, today: Date) -> Date {
        today - time::Duration::days(2 + (self.runs - b.min(self.runs)) as i64)
    }

    /// Bill `j` of batch `b`: its site, supplier and price.
    fn run_bill(&self, b: usize, j: usize) -> (usize, usize, Priced) {
        let site = j % self.sites;
        let vendor = vendor_for(site, j / self.sites + b, self.vendors);
        (
            site,
            vendor,
            price(vendor, 1_000_003 + b * self.run_bills + j),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The organisation

/// A site's books as the bills and payments use them.
struct Site {
    id: Uuid,
    /// Its ledger account for the pooled bank account.
    bank: Uuid,
    creditors: Uuid,
    service_charge_income: Uuid,
    service_charge_fund: Uuid,
    /// The expense account of each trade, in `TRADES` order.
    expenses: Vec<Uuid>,
}

struct Supplier {
    id: Uuid,
    name: String,
}

struct World {
    org: Uuid,
    key: DataKey,
    bank: Uuid,
    bank_name: String,
    sites: Vec<Site>,
    vendors: Vec<Supplier>,
    standard: Uuid,
    exempt: Uuid,
    outside_scope: Uuid,
}

/// "Smith Repairs Ltd": unique for as many suppliers as there are surnames and trades
/// together, numbered beyond.
fn vendor_name(v: usize) -> String {
    let name = format!(
        "{} {} Ltd",
        SURNAMES[v % SURNAMES.len()],
        TRADES[v % TRADES.len()].trade
    );
    match v / (SURNAMES.len() * TRADES.len()) {
        0 => name,
        n => format!("{name} {}", n + 1),
    }
}

/// Sites, books, suppliers and the bank account, through the server's functions.
async fn load_world(app: &AppPool, org: &Organisation, shape: &Shape) -> Result<World, String> {
    let key = DataKey::generate();
    let mut tx = app.begin(&staff(org, CLERK)).await.map_err(e)?;
    let mut site_ids = Vec::with_capacity(shape.sites);
    for s in 0..shape.sites {
        let id = portfolio::save_site(
            &mut tx,
            None,
            &SiteInput {
                reference: format!("LG-{:05}", s + 1),
                name: format!("{} Court {}", SURNAMES[(s * 7) % SURNAMES.len()], s + 1),
                ..Default::default()
            },
        )
        .await
        .map_err(e)?;
        ledger::ensure_books(&mut tx, id).await.map_err(e)?;
        site_ids.push(id);
    }
    ledger::ensure_tax_rates(&mut tx).await.map_err(e)?;
    let rates = ledger::tax_rates(&mut tx).await.map_err(e)?;
    let rate = |treatment: &str| {
        rates
            .iter()
            .find(|r| r.treatment == treatment)
            .map(|r| r.id)
            .ok_or_else(|| format!("no {treatment} tax rate"))
    };
    let (standard, exempt, outside_scope) =
        (rate("standard")?, rate("exempt")?, rate("outside_scope")?);

    let mut vendors = Vec::with_capacity(shape.vendors);
    for v in 0..shape.vendors {
        let name = vendor_name(v);
        let id = people::save_vendor(
            &mut tx,
            &key,
            None,
            &VendorInput {
                name: name.clone(),
                trade: TRADES[v % TRADES.len()].trade.into(),
                email: Some(format!("accounts{v}@supplier.example.co.uk")),
                bank_account_name: Some(name.clone()),
                bank: Some(BankDetails {
                    sort_code: format!("40{:04}", v % 10_000),
                    account_number: format!("{:08}", 10_000_000 + v * 7_919),
                }),
                ..Default::default()
            },
        )
        .await
        .map_err(e)?;
        vendors.push(Supplier { id, name });
    }

    let bank_name = "Large Estates Client Account".to_owned();
    let bank = bank_accounts::create(
        &mut tx,
        &key,
        &BankAccountInput {
            name: bank_name.clone(),
            bank_name: Some("Barclays".into()),
            account_type: AccountType::Client,
            sort_code: SortCode::parse("20-00-00").map_err(|_| "sort code")?,
            account_number: AccountNumber::parse("43218765").map_err(|_| "account number")?,
            holder_name: "Large Estates Client".into(),
            service_user_number: Some("123456".into()),
            file_format: FileFormat::BacsStandard18,
            fund_kind: None,
            sites: site_ids.clone(),
            ledger_account_id: None,
        },
    )
    .await
    .map_err(e)?;
    let bank_ledgers: HashMap<Uuid, Uuid> = sqlx::query_as::<_, (Uuid, Uuid)>(
        "select site_id, id from ledger_account where organisation_id = $1 and bank_account_id = $2",
    )
    .bind(org.id.0)
    .bind(bank)
    .fetch_all(tx.conn())
    .await
    .map_err(e)?
    .into_iter()
    .collect();

    let mut sites = Vec::with_capacity(shape.sites);
    for id in site_ids {
        let accounts = ledger::accounts(&mut tx, id).await.map_err(e)?;
        let control = |role: &str| {
            accounts
                .iter()
                .find(|a| a.control.as_deref() == Some(role))
                .map(|a| a.id)
                .ok_or_else(|| format!("a site without a {role} account"))
        };
        let mut expenses = Vec::with_capacity(TRADES.len());
        for t in &TRADES {
            expenses.push(
                accounts
                    .iter()
                    .find(|a| a.code == t.code)
                    .map(|a| a.id)
                    .ok_or_else(|| format!("a site without account {}", t.code))?,
            );
        }
        let fund = ledger::fund_of_kind(&mut tx, id, FundKind::ServiceCharge)
            .await
            .map_err(e)?
            .ok_or("a site without a service charge fund")?;
        sites.push(Site {
            id,
            bank: *bank_ledgers
                .get(&id)
                .ok_or("a site without a ledger account for the bank")?,
            creditors: control("creditors")?,
            service_charge_income: control("service_charge_income")?,
            service_charge_fund: fund.id,
            expenses,
        });
    }
    tx.commit().await.map_err(e)?;
    Ok(World {
        org: org.id.0,
        key,
        bank,
        bank_name,
        sites,
        vendors,
        standard,
        exempt,
        outside_scope,
    })
}

// ---------------------------------------------------------------------------------------------
// Bills as priced

/// One site's regular suppliers: up to ten, spread so every supplier serves many sites.
fn vendor_for(site: usize, nth: usize, vendors: usize) -> usize {
    (site * 7 + (nth % VENDORS_PER_SITE) * 11) % vendors.max(1)
}

/// A bill's single line: its trade (the supplier's), net and VAT.
#[derive(Clone, Copy)]
struct Priced {
    trade: usize,
    net: i64,
    vat: i64,
}

impl Priced {
    fn total(self) -> i64 {
        self.net + self.vat
    }
}

/// What supplier `vendor` bills, varied by `seed`: £20 to £1,520 net; VAT at the standard
/// rate unless the trade is exempt (insurance) or the supplier is too small to be registered
/// (one in four). The site cannot reclaim it.
fn price(vendor: usize, seed: usize) -> Priced {
    let trade = vendor % TRADES.len();
    let net = 2_000 + (seed as i64).wrapping_mul(7_919).rem_euclid(150_000);
    let vat = if TRADES[trade].vat && vendor % 4 != 1 {
        vat_pence(net, STANDARD_BP)
    } else {
        0
    };
    Priced { trade, net, vat }
}

/// The supplier's payment terms.
fn terms(vendor: usize) -> i64 {
    if vendor % 4 == 3 { 60 } else { 30 }
}

impl World {
    /// The tax rate of a priced line.
    fn rate(&self, p: Priced) -> Uuid {
        if p.vat > 0 {
            self.standard
        } else if TRADES[p.trade].vat {
            self.outside_scope
        } else {
            self.exempt
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The runs' bills, through the code

/// Enters, submits (the clerk) and approves (the manager) every batch of the runs' bills.
async fn make_run_bills(
    app: &AppPool,
    org: &Organisation,
    world: &World,
    shape: &Shape,
    today: Date,
) -> Result<usize, String> {
    let clerk = person(CLERK);
    let approver = person(APPROVER);
    let mut made = 0;
    for b in 0..=shape.runs {
        let due = shape.due(b, today);
        for chunk in (0..shape.run_bills).step_by(BILLS_PER_TX) {
            let mut tx = app.begin(&staff(org, CLERK)).await.map_err(e)?;
            for j in chunk..(chunk + BILLS_PER_TX).min(shape.run_bills) {
                let (s, v, p) = shape.run_bill(b, j);
                let site = &world.sites[s];
                let input = BillInput {
                    site_id: site.id,
                    vendor_id: world.vendors[v].id,
                    work_order_id: None,
                    supplier_reference: format!("INV-R{b}-{j:05}"),
                    issue_date: due - time::Duration::days(terms(v)),
                    due_date: Some(due),
                    incurred_on: None,
                    description: None,
                    lines: vec![BillLineInput {
                        description: TRADES[p.trade].line.into(),
                        account_id: site.expenses[p.trade],
                        fund_id: site.service_charge_fund,
                        tax_rate_id: world.rate(p),
                        net_pence: p.net,
                        vat_pence: Some(p.vat),
                        vat_recoverable: false,
                    }],
                    total_pence: Some(p.total()),
                    source: "admin",
                    document: None,
                };
                let now = OffsetDateTime::now_utc();
                let id = bills::save_draft(&mut tx, None, &input, &clerk)
                    .await
                    .map_err(e)?;
                bills::submit(&mut tx, id, &clerk, now).await.map_err(e)?;
                match bills::approve(&mut tx, id, &approver, now)
                    .await
                    .map_err(e)?
                {
                    Approval::Posted(_) => made += 1,
                    Approval::Waiting(_) => return Err("a bill waits on an approval chain".into()),
                }
            }
            tx.commit().await.map_err(e)?;
        }
    }
    Ok(made)
}

// ---------------------------------------------------------------------------------------------
// The history as planned

/// What became of a history bill.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fate {
    /// Paid by the history's run `m` (0 = the last, yesterday).
    Paid(usize),
    Held,
    /// Approved, not yet due.
    Open,
}

#[derive(Clone, Copy)]
struct HistoryBill {
    site: usize,
    vendor: usize,
    issue: Date,
    due: Date,
    price: Priced,
    fate: Fate,
}

struct PlannedRun {
    id: Uuid,
    number: String,
    date: Date,
    bills: usize,
    payments: usize,
    total: i64,
}

struct PlannedPayment {
    id: Uuid,
    number: String,
    total: i64,
    /// The bill it pays, when it pays one (its reference is the supplier's invoice number).
    only_bill: Option<usize>,
}

/// Money received into a site's bank ledger account before a run pays its bills.
struct PlannedReceipt {
    date: Date,
    amount: i64,
    number: String,
}

/// The history, planned before it is written so that every number is drawn gap-free in the
/// order the code would have drawn it: each year's bills (and their journals) by date, then its
/// receipts, then its payment journals.
struct HistoryPlan {
    bills: usize,
    sites: usize,
    vendors: usize,
    start: Date,
    span_days: i64,
    last_run: Date,
    runs: BTreeMap<usize, PlannedRun>,
    /// By (run, supplier).
    payments: HashMap<(usize, usize), PlannedPayment>,
    /// The first bill of each year (bills are numbered by date).
    first_of_year: BTreeMap<i32, usize>,
    /// Each site's receipts.
    receipts: Vec<Vec<PlannedReceipt>>,
    /// Each site's payment journals' numbers, by (run, supplier).
    payment_journals: Vec<HashMap<(usize, usize), String>>,
    /// (kind, year, last number) for the reference counters.
    counters: Vec<(&'static str, i32, i32)>,
}

fn number(prefix: &str, year: i32, n: i32) -> String {
    format!("{prefix}-{year}-{n:06}")
}

/// Gap-free numbers per year, handed out in the order asked.
#[derive(Default)]
struct Counter(BTreeMap<i32, i32>);

impl Counter {
    fn next(&mut self, year: i32) -> i32 {
        let n = self.0.entry(year).or_default();
        *n += 1;
        *n
    }
}

/// Rounds up to whole pounds, with a tenth more: what a site collects ahead of a run.
fn with_margin(pence: i64) -> i64 {
    (pence + pence / 10).div_euclid(100) * 100 + 100
}

impl HistoryPlan {
    fn new(
        world: &World,
        shape: &Shape,
        bills: usize,
        years: usize,
        today: Date,
    ) -> Result<Self, String> {
        let span_days = 365 * i64::try_from(years).map_err(e)?;
        let mut plan = Self {
            bills,
            sites: shape.sites,
            vendors: shape.vendors,
            start: today - time::Duration::days(span_days),
            span_days,
            last_run: today - time::Duration::days(1),
            runs: BTreeMap::new(),
            payments: HashMap::new(),
            first_of_year: BTreeMap::new(),
            receipts: (0..shape.sites).map(|_| Vec::new()).collect(),
            payment_journals: (0..shape.sites).map(|_| HashMap::new()).collect(),
            counters: Vec::new(),
        };
        // What each run, payment, payment journal and receipt adds up to.
        let mut bills_of_year: BTreeMap<i32, i32> = BTreeMap::new();
        let mut paid: BTreeMap<(usize, usize), (usize, i64, usize)> = BTreeMap::new();
        let mut per_journal: BTreeMap<(usize, usize, usize), i64> = BTreeMap::new();
        let mut per_site_run: BTreeMap<(usize, usize), i64> = BTreeMap::new();
        for k in 0..bills {
            let b = plan.bill(k);
            let year = b.issue.year();
            plan.first_of_year.entry(year).or_insert(k);
            *bills_of_year.entry(year).or_default() += 1;
            if let Fate::Paid(m) = b.fate {
                let total = b.price.total();
                let p = paid.entry((m, b.vendor)).or_insert((0, 0, k));
                p.0 += 1;
                p.1 += total;
                *per_journal.entry((m, b.vendor, b.site)).or_default() += total;
                *per_site_run.entry((b.site, m)).or_default() += total;
            }
        }
        // Runs oldest first, a supplier's payments in a run by name (as schedule_run does).
        let mut by_name: Vec<usize> = (0..shape.vendors).collect();
        by_name.sort_by(|a, b| world.vendors[*a].name.cmp(&world.vendors[*b].name));
        let rank: HashMap<usize, usize> =
            by_name.iter().enumerate().map(|(r, v)| (*v, r)).collect();
        let mut run_numbers = Counter::default();
        let mut payment_numbers = Counter::default();
        let mut runs_in_order: Vec<usize> = paid.keys().map(|(m, _)| *m).collect();
        runs_in_order.sort_unstable_by(|a, b| b.cmp(a));
        runs_in_order.dedup();
        for m in runs_in_order {
            let date = plan.run_date(m);
            let mut in_run: Vec<(usize, (usize, i64, usize))> = paid
                .range((m, 0)..(m + 1, 0))
                .map(|((_, v), p)| (*v, *p))
                .collect();
            in_run.sort_by_key(|(v, _)| rank.get(v).copied().unwrap_or(0));
            let run = PlannedRun {
                id: Uuid::now_v7(),
                number: number("PRN", date.year(), run_numbers.next(date.year())),
                date,
                bills: in_run.iter().map(|(_, p)| p.0).sum(),
                payments: in_run.len(),
                total: in_run.iter().map(|(_, p)| p.1).sum(),
            };
            plan.runs.insert(m, run);
            for (v, (count, total, first)) in in_run {
                plan.payments.insert(
                    (m, v),
                    PlannedPayment {
                        id: Uuid::now_v7(),
                        number: number("PAY", date.year(), payment_numbers.next(date.year())),
                        total,
                        only_bill: (count == 1).then_some(first),
                    },
                );
            }
        }
        // Journals: each year's bills first (a bill's journal has its number), then its
        // receipts, then its payments' journals.
        let mut journals = Counter(bills_of_year.clone());
        let funding = run_funding(shape);
        let mut receipts: Vec<(Date, usize, i64)> = per_site_run
            .iter()
            .map(|((s, m), total)| {
                (
                    plan.run_date(*m) - time::Duration::days(5),
                    *s,
                    with_margin(*total),
                )
            })
            .chain(
                funding
                    .iter()
                    .enumerate()
                    .map(|(s, total)| (today - time::Duration::days(2), s, with_margin(*total))),
            )
            .collect();
        receipts.sort_unstable();
        for (date, s, amount) in receipts {
            plan.receipts[s].push(PlannedReceipt {
                date,
                amount,
                number: number("JNL", date.year(), journals.next(date.year())),
            });
        }
        let mut payment_journals: Vec<(usize, usize, usize)> =
            per_journal.keys().copied().collect();
        payment_journals.sort_by_key(|(m, v, s)| {
            (std::cmp::Reverse(*m), rank.get(v).copied().unwrap_or(0), *s)
        });
        for (m, v, s) in payment_journals {
            let year = plan.run_date(m).year();
            plan.payment_journals[s].insert((m, v), number("JNL", year, journals.next(year)));
        }
        for (kind, counter) in [
            ("bill", Counter(bills_of_year)),
            ("journal", journals),
            ("supplier_payment", payment_numbers),
            ("payment_run", run_numbers),
        ] {
            for (year, last) in counter.0 {
                plan.counters.push((kind, year, last));
            }
        }
        Ok(plan)
    }

    fn run_date(&self, m: usize) -> Date {
        self.last_run - time::Duration::days(RUN_EVERY_DAYS * m as i64)
    }

    /// History bill `k`: bills are spread evenly over the years, site by site in turn, so `k`
    /// orders them by date.
    fn bill(&self, k: usize) -> HistoryBill {
        let site = k % self.sites;
        let vendor = vendor_for(site, k / self.sites, self.vendors);
        let offset = (k as i64 * self.span_days) / self.bills.max(1) as i64;
        let issue = self.start + time::Duration::days(offset);
        let due = issue + time::Duration::days(terms(vendor));
        let overdue_days = (self.last_run - due).whole_days();
        let fate = if due > self.last_run {
            Fate::Open
        } else if k % HELD_EVERY == 7 && overdue_days < HELD_WITHIN_DAYS {
            Fate::Held
        } else {
            Fate::Paid((overdue_days / RUN_EVERY_DAYS) as usize)
        };
        HistoryBill {
            site,
            vendor,
            issue,
            due,
            price: price(vendor, k),
            fate,
        }
    }

    fn bill_number(&self, k: usize, year: i32) -> String {
        let first = self.first_of_year.get(&year).copied().unwrap_or(k);
        number(
            "BIL",
            year,
            i32::try_from(k - first + 1).unwrap_or(i32::MAX),
        )
    }

    /// The payment runs and their payments (written before the bills they pay).
    fn add_runs(&self, batch: &mut Batch, world: &World) {
        let o = world.org;
        for (m, run) in &self.runs {
            let at = |days_before: i64, time: &str| {
                format!("{} {time}+00", run.date - time::Duration::days(days_before))
            };
            batch
                .payment_runs
                .field(o)
                .field(run.id)
                .field(&run.number)
                .field(world.bank)
                .field(run.date)
                .field(run.date)
                .field("paid")
                .field(run.payments)
                .field(run.bills)
                .field(run.total)
                .field(CLERK)
                .field(at(2, "10:00:00"))
                .field(APPROVER)
                .field(at(1, "11:00:00"))
                .field(CLERK)
                .field(at(1, "11:30:00"))
                .field(CLERK)
                .field(at(0, "15:00:00"))
                .field(at(2, "10:00:00"))
                .field(at(0, "15:00:00"))
                .end();
            let mut payments: Vec<(usize, &PlannedPayment)> = self
                .payments
                .iter()
                .filter(|((pm, _), _)| pm == m)
                .map(|((_, v), p)| (*v, p))
                .collect();
            payments.sort_by(|a, b| a.1.number.cmp(&b.1.number));
            for (v, p) in payments {
                let reference = match p.only_bill {
                    Some(k) => history_reference(k),
                    None => p.number.clone(),
                };
                batch
                    .payments
                    .field(o)
                    .field(p.id)
                    .field(&p.number)
                    .field(run.id)
                    .field(world.vendors[v].id)
                    .field(world.bank)
                    .field(run.date)
                    .field("bacs")
                    .field(reference)
                    .field(p.total)
                    .field("paid")
                    .field(at(0, "15:00:00"))
                    .field(CLERK)
                    .field(at(2, "10:00:00"))
                    .field(at(0, "15:00:00"))
                    .end();
            }
        }
    }

    /// Everything of one site: its bills with their lines and approval journals, its payment
    /// journals and payment lines, and its receipts.
    fn add_site(&self, batch: &mut Batch, world: &World, s: usize) {
        let o = world.org;
        let site = &world.sites[s];
        // (run, supplier) → the site's bills that payment paid.
        let mut paid: BTreeMap<(usize, usize), Vec<PaidBill>> = BTreeMap::new();
        for k in (s..self.bills).step_by(self.sites) {
            let b = self.bill(k);
            let vendor = &world.vendors[b.vendor];
            let bill = Uuid::now_v7();
            let journal = Uuid::now_v7();
            let year = b.issue.year();
            let number = self.bill_number(k, year);
            let reference = history_reference(k);
            let approved_at = format!("{} 15:00:00+00", b.issue);
            let total = b.price.total();
            let t = &TRADES[b.price.trade];
            batch
                .journals
                .field(o)
                .field(journal)
                .field(site.id)
                .field(number.replacen("BIL", "JNL", 1))
                .field(b.issue)
                .text(&format!(
                    "Bill {number}: {} invoice {reference}",
                    vendor.name
                ))
                .field("bill")
                .field(bill)
                .field(APPROVER)
                .field(&approved_at)
                .end();
            batch.journal_line(
                o,
                journal,
                site.id,
                b.issue,
                1,
                site.expenses[b.price.trade],
                site.service_charge_fund,
                total,
                t.line,
            );
            batch.journal_line(
                o,
                journal,
                site.id,
                b.issue,
                2,
                site.creditors,
                site.service_charge_fund,
                -total,
                &format!("{} {reference}", vendor.name),
            );
            let (status, paid_pence, updated_at) = match b.fate {
                Fate::Paid(m) => ("paid", total, format!("{} 15:00:00+00", self.run_date(m))),
                Fate::Held => ("held", 0, approved_at.clone()),
                Fate::Open => ("approved", 0, approved_at.clone()),
            };
            let held = b.fate == Fate::Held;
            batch
                .bills
                .field(o)
                .field(bill)
                .field(site.id)
                .field(vendor.id)
                .field(&reference)
                .field(&number)
                .field(b.issue)
                .field(b.due)
                .field(status)
                .opt(held.then_some("approved"))
                .opt(held.then_some(HOLD_REASON))
                .field(b.price.net)
                .field(b.price.vat)
                .field(total)
                .field(paid_pence)
                .field("admin")
                .field(journal)
                .field(CLERK)
                .field(CLERK)
                .field(format!("{} 09:05:00+00", b.issue))
                .field(APPROVER)
                .field(&approved_at)
                .field(format!("{} 09:00:00+00", b.issue))
                .field(updated_at)
                .end();
            batch
                .bill_lines
                .field(o)
                .field(Uuid::now_v7())
                .field(bill)
                .field(site.id)
                .field(1)
                .field(t.line)
                .field(site.expenses[b.price.trade])
                .field(site.service_charge_fund)
                .field(world.rate(b.price))
                .field(b.price.net)
                .field(b.price.vat)
                .field("f")
                .end();
            if let Fate::Paid(m) = b.fate {
                paid.entry((m, b.vendor)).or_default().push(PaidBill {
                    id: bill,
                    number,
                    amount: total,
                });
            }
        }
        // A journal per payment and site, with the payment as its source (as a single payment
        // posts; mark_run_paid posts one per run and site, and a line's journal is found from
        // either source): creditors debited bill by bill, the site's ledger account for the
        // bank credited.
        for ((m, v), bills) in &paid {
            let (Some(payment), Some(reference)) = (
                self.payments.get(&(*m, *v)),
                self.payment_journals[s].get(&(*m, *v)),
            ) else {
                continue;
            };
            let vendor = &world.vendors[*v];
            let date = self.run_date(*m);
            let journal = Uuid::now_v7();
            batch
                .journals
                .field(o)
                .field(journal)
                .field(site.id)
                .field(reference)
                .field(date)
                .text(&format!(
                    "Payment {} to {} from {}",
                    payment.number, vendor.name, world.bank_name
                ))
                .field("supplier_payment")
                .field(payment.id)
                .field(CLERK)
                .field(format!("{date} 15:00:00+00"))
                .end();
            let mut n = 0;
            for bill in bills {
                n += 1;
                batch.journal_line(
                    o,
                    journal,
                    site.id,
                    date,
                    n,
                    site.creditors,
                    site.service_charge_fund,
                    bill.amount,
                    &format!("{} {}", vendor.name, bill.number),
                );
                batch
                    .payment_lines
                    .field(o)
                    .field(Uuid::now_v7())
                    .field(payment.id)
                    .field(bill.id)
                    .field(site.id)
                    .field(site.service_charge_fund)
                    .field(bill.amount)
                    .end();
            }
            batch.journal_line(
                o,
                journal,
                site.id,
                date,
                n + 1,
                site.bank,
                site.service_charge_fund,
                -bills.iter().map(|b| b.amount).sum::<i64>(),
                &format!("{} to {}", payment.number, vendor.name),
            );
        }
        for r in &self.receipts[s] {
            let journal = Uuid::now_v7();
            batch
                .journals
                .field(o)
                .field(journal)
                .field(site.id)
                .field(&r.number)
                .field(r.date)
                .field("Service charges received")
                .field("manual_journal")
                .null()
                .field(CLERK)
                .field(format!("{} 12:00:00+00", r.date))
                .end();
            batch.journal_line(
                o,
                journal,
                site.id,
                r.date,
                1,
                site.bank,
                site.service_charge_fund,
                r.amount,
                "Service charges received",
            );
            batch.journal_line(
                o,
                journal,
                site.id,
                r.date,
                2,
                site.service_charge_income,
                site.service_charge_fund,
                -r.amount,
                "Service charges received",
            );
        }
    }
}

/// A history bill paid by a payment, as its payment journal names it.
struct PaidBill {
    id: Uuid,
    number: String,
    amount: i64,
}

fn history_reference(k: usize) -> String {
    format!("INV-{k:07}")
}

/// What the runs' bills (every batch) will cost each site, so it is received beforehand.
fn run_funding(shape: &Shape) -> Vec<i64> {
    let mut funding = vec![0; shape.sites];
    for b in 0..=shape.runs {
        for j in 0..shape.run_bills {
            let (s, _, p) = shape.run_bill(b, j);
            funding[s] += p.total();
        }
    }
    funding
}

// ---------------------------------------------------------------------------------------------
// Rows as COPY text

/// One table's rows in COPY's text format.
#[derive(Default)]
struct Rows {
    text: String,
    count: usize,
}

impl Rows {
    fn field(&mut self, value: impl std::fmt::Display) -> &mut Self {
        if !self.text.is_empty() && !self.text.ends_with('\n') {
            self.text.push('\t');
        }
        let _ = write!(self.text, "{value}");
        self
    }

    /// Text that may hold COPY's special characters.
    fn text(&mut self, value: &str) -> &mut Self {
        let escaped = value
            .replace('\\', "\\\\")
            .replace('\t', "\\t")
            .replace('\n', "\\n")
            .replace('\r', "\\r");
        self.field(escaped)
    }

    fn null(&mut self) -> &mut Self {
        self.field("\\N")
    }

    fn opt(&mut self, value: Option<impl std::fmt::Display>) -> &mut Self {
        match value {
            Some(v) => self.field(v),
            None => self.null(),
        }
    }

    fn end(&mut self) {
        self.text.push('\n');
        self.count += 1;
    }
}

/// The tables the history is COPYed into, in foreign-key order.
const TABLES: [&str; 7] = [
    "payment_run",
    "supplier_payment",
    "journal",
    "journal_line",
    "bill",
    "bill_line",
    "supplier_payment_line",
];

#[derive(Default)]
struct Batch {
    payment_runs: Rows,
    payments: Rows,
    journals: Rows,
    journal_lines: Rows,
    bills: Rows,
    bill_lines: Rows,
    payment_lines: Rows,
}

const COLUMNS: [&str; 7] = [
    "payment_run (organisation_id, id, number, bank_account_id, payment_date, due_by, status, \
     payment_count, bill_count, total_pence, scheduled_by, scheduled_at, approved_by, \
     approved_at, file_made_by, file_made_at, paid_by, paid_at, created_at, updated_at)",
    "supplier_payment (organisation_id, id, number, payment_run_id, vendor_id, bank_account_id, \
     payment_date, method, reference, amount_pence, status, paid_at, recorded_by, created_at, \
     updated_at)",
    "journal (organisation_id, id, site_id, reference, journal_date, description, source_type, \
     source_id, posted_by, posted_at)",
    "journal_line (organisation_id, id, journal_id, site_id, journal_date, line_no, account_id, \
     fund_id, amount_pence, description)",
    "bill (organisation_id, id, site_id, vendor_id, supplier_reference, number, issue_date, \
     due_date, status, held_from, hold_reason, net_pence, vat_pence, total_pence, paid_pence, \
     source, journal_id, created_by, submitted_by, submitted_at, approved_by, approved_at, \
     created_at, updated_at)",
    "bill_line (organisation_id, id, bill_id, site_id, line_no, description, account_id, \
     fund_id, tax_rate_id, net_pence, vat_pence, vat_recoverable)",
    "supplier_payment_line (organisation_id, id, payment_id, bill_id, site_id, fund_id, \
     amount_pence)",
];

impl Batch {
    fn tables(&self) -> [&Rows; 7] {
        [
            &self.payment_runs,
            &self.payments,
            &self.journals,
            &self.journal_lines,
            &self.bills,
            &self.bill_lines,
            &self.payment_lines,
        ]
    }

    #[expect(clippy::too_many_arguments, reason = "one journal line's columns")]
    fn journal_line(
        &mut self,
        org: Uuid,
        journal: Uuid,
        site: Uuid,
        date: Date,
        line_no: usize,
        account: Uuid,
        fund: Uuid,
        amount: i64,
        description: &str,
    ) {
        self.journal_lines
            .field(org)
            .field(Uuid::now_v7())
            .field(journal)
            .field(site)
            .field(date)
            .field(line_no)
            .field(account)
            .field(fund)
            .field(amount)
            .text(description)
            .end();
    }

    /// COPYs each table's rows, in foreign-key order.
    async fn copy(&self, conn: &mut PgConnection) -> Result<(), String> {
        for (columns, rows) in COLUMNS.iter().zip(self.tables()) {
            if rows.count == 0 {
                continue;
            }
            let mut copy = conn
                .copy_in_raw(&format!("copy {columns} from stdin"))
                .await
                .map_err(e)?;
            for chunk in rows.text.as_bytes().chunks(1 << 20) {
                copy.send(chunk).await.map_err(e)?;
            }
            copy.finish().await.map_err(e)?;
        }
        Ok(())
    }
}

/// Rows loaded into each table, for the summary.
#[derive(Default, Clone, Copy)]
struct Loaded([usize; 7]);

impl Loaded {
    fn add(&mut self, batch: &Batch) {
        for (total, rows) in self.0.iter_mut().zip(batch.tables()) {
            *total += rows.count;
        }
    }

    fn merge(mut self, other: Self) -> Self {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Loading the history

/// COPYs the history in as the superuser (PostgreSQL refuses COPY under row-level security,
/// which binds the owner too): the runs and payments first, then blocks of sites on two
/// connections. The seven tables' audit triggers are off for the load only; every other
/// trigger stays on (journals balanced per COPY statement, every journal with its lines, no
/// posting into a locked period) and so does every foreign key and check constraint.
async fn load_history(
    cluster: &Cluster,
    db: &str,
    world: &World,
    plan: &HistoryPlan,
) -> Result<(), String> {
    let url = cluster.url(SUPERUSER, db);
    let mut su = PgConnection::connect(&url).await.map_err(e)?;
    let kept: Vec<(String, String)> = sqlx::query_as(
        "select c.relname::text, string_agg(t.tgname::text, ', ' order by t.tgname)
           from pg_trigger t join pg_class c on c.oid = t.tgrelid
          where not t.tgisinternal and c.relname::text = any($1) and t.tgname not like 'audit%'
          group by c.relname order by c.relname",
    )
    .bind(TABLES.map(str::to_owned).to_vec())
    .fetch_all(&mut su)
    .await
    .map_err(e)?;
    println!(
        "\nLoading {} bills of history over {} years ({} to {}) as COPYed rows, as the \
         superuser: each with its line and approval journal, the paid ones paid by {} monthly \
         runs (a payment per supplier, a journal per payment and site), the money for them \
         received beforehand. The audit triggers of these tables are off for this load only (an \
         audit event per row would double its time and disk); every other trigger stays on, and \
         every foreign key:",
        plan.bills,
        plan.span_days / 365,
        plan.start,
        plan.last_run,
        plan.runs.len()
    );
    for (table, triggers) in &kept {
        println!("  {table}: {triggers}");
    }
    let switch = |on: bool| -> String {
        TABLES
            .iter()
            .map(|t| {
                format!(
                    "alter table {t} {} trigger audit;",
                    if on { "enable" } else { "disable" }
                )
            })
            .collect()
    };
    exec(&mut su, &switch(false)).await?;
    let started = Instant::now();
    let loaded = async {
        let mut first = Batch::default();
        plan.add_runs(&mut first, world);
        let mut tx = su.begin().await.map_err(e)?;
        first.copy(&mut tx).await?;
        tx.commit().await.map_err(e)?;
        let mut total = Loaded::default();
        total.add(&first);
        let blocks: Vec<Range<usize>> = (0..plan.sites)
            .step_by(SITES_PER_BLOCK)
            .map(|s| s..(s + SITES_PER_BLOCK).min(plan.sites))
            .collect();
        let (even, odd): (Vec<_>, Vec<_>) = blocks
            .into_iter()
            .enumerate()
            .partition(|(i, _)| i % 2 == 0);
        let strip = |v: Vec<(usize, Range<usize>)>| -> Vec<Range<usize>> {
            v.into_iter().map(|(_, r)| r).collect()
        };
        let (a, b) = tokio::join!(
            load_blocks(&url, world, plan, strip(even), started),
            load_blocks(&url, world, plan, strip(odd), started),
        );
        Ok::<Loaded, String>(total.merge(a?).merge(b?))
    }
    .await;
    // After a failed load, only switch the triggers back on.
    exec(&mut su, &switch(true)).await?;
    let loaded = loaded?;
    let load_time = started.elapsed();
    for (kind, year, last) in &plan.counters {
        sqlx::query(
            "insert into reference_counter (organisation_id, kind, year, last_number)
             values ($1, $2, $3, $4)",
        )
        .bind(world.org)
        .bind(kind)
        .bind(year)
        .bind(last)
        .execute(&mut su)
        .await
        .map_err(e)?;
    }
    let total: usize = loaded.0.iter().sum();
    println!(
        "  {total} rows in {:.1} s ({:.0} rows/s):",
        load_time.as_secs_f64(),
        total as f64 / load_time.as_secs_f64()
    );
    for (table, rows) in TABLES.iter().zip(loaded.0) {
        println!("    {table:<22} {rows:>10}");
    }
    let started = Instant::now();
    exec(&mut su, "vacuum analyze").await?;
    println!("  vacuum analyze {:.1} s", started.elapsed().as_secs_f64());
    let size: String =
        sqlx::query_scalar("select pg_size_pretty(pg_database_size(current_database()))")
            .fetch_one(&mut su)
            .await
            .map_err(e)?;
    println!("  database size {size}");
    su.close().await.map_err(e)?;
    Ok(())
}

async fn load_blocks(
    url: &str,
    world: &World,
    plan: &HistoryPlan,
    blocks: Vec<Range<usize>>,
    started: Instant,
) -> Result<Loaded, String> {
    let mut conn = PgConnection::connect(url).await.map_err(e)?;
    let mut loaded = Loaded::default();
    for block in blocks {
        let mut batch = Batch::default();
        for s in block.clone() {
            plan.add_site(&mut batch, world, s);
        }
        let mut tx = conn.begin().await.map_err(e)?;
        batch.copy(&mut tx).await?;
        tx.commit().await.map_err(e)?;
        loaded.add(&batch);
        println!(
            "  sites {}–{} loaded ({:.0} s since the start)",
            block.start + 1,
            block.end,
            started.elapsed().as_secs_f64()
        );
    }
    conn.close().await.map_err(e)?;
    Ok(loaded)
}

/// The loaded history and the measured runs agree with each other as the code keeps them:
/// every bill's paid amount is what paid payments paid it, each site's creditors control is
/// what its open bills owe, and no site's fund is overdrawn in the bank account.
async fn check_books(cluster: &Cluster, db: &str, world: &World) -> Result<(), String> {
    let mut su = PgConnection::connect(&cluster.url(SUPERUSER, db))
        .await
        .map_err(e)?;
    let (bills, sites, overdrawn): (i64, i64, i64) = sqlx::query_as(
        "select
           (select count(*) from bill b
             left join (select l.bill_id, sum(l.amount_pence) as paid
                          from supplier_payment_line l
                          join supplier_payment p on p.organisation_id = l.organisation_id
                               and p.id = l.payment_id and p.status = 'paid'
                         group by l.bill_id) x on x.bill_id = b.id
             where b.organisation_id = $1 and b.paid_pence <> coalesce(x.paid, 0)),
           (select count(*) from site s
             where s.organisation_id = $1
               and (select coalesce(sum(l.amount_pence), 0) from journal_line l
                      join ledger_account a on a.organisation_id = l.organisation_id
                           and a.id = l.account_id and a.control = 'creditors'
                     where l.organisation_id = s.organisation_id and l.site_id = s.id)
                   <> -(select coalesce(sum(b.total_pence - b.paid_pence), 0) from bill b
                         where b.organisation_id = s.organisation_id and b.site_id = s.id
                           and b.status in ('approved', 'scheduled', 'held'))),
           (select count(*) from (
              select l.site_id from journal_line l
                join ledger_account a on a.organisation_id = l.organisation_id
                     and a.id = l.account_id and a.bank_account_id = $2
               where l.organisation_id = $1
               group by l.site_id, l.fund_id having sum(l.amount_pence) < 0) o)",
    )
    .bind(world.org)
    .bind(world.bank)
    .fetch_one(&mut su)
    .await
    .map_err(e)?;
    su.close().await.map_err(e)?;
    if bills + sites + overdrawn > 0 {
        return Err(format!(
            "the books disagree: {bills} bills paid otherwise than their payments, {sites} sites \
             whose creditors control is not their open bills, {overdrawn} funds overdrawn"
        ));
    }
    println!(
        "  checked: every bill's paid amount is its paid payments', every site's creditors \
         control is what its open bills owe, no fund is overdrawn in the bank"
    );
    Ok(())
}

async fn analyze(cluster: &Cluster, db: &str) -> Result<(), String> {
    let mut su = PgConnection::connect(&cluster.url(SUPERUSER, db))
        .await
        .map_err(e)?;
    exec(&mut su, "analyze").await?;
    su.close().await.map_err(e)
}

// ---------------------------------------------------------------------------------------------
// Measuring

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Prints p50/p95/p99/max; returns p99.
fn percentiles(label: &str, mut times: Vec<Duration>) -> Duration {
    times.sort();
    let at = |p: f64| {
        let i = ((times.len() as f64 - 1.0) * p).round() as usize;
        times.get(i).copied().unwrap_or_default()
    };
    println!(
        "  {label:<40} n={:<5} p50 {:>7.2} ms   p95 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms",
        times.len(),
        ms(at(0.5)),
        ms(at(0.95)),
        ms(at(0.99)),
        ms(at(1.0))
    );
    at(0.99)
}

fn verdict(figure: Duration, target: Duration) -> &'static str {
    if figure < target { "met" } else { "MISSED" }
}

/// A small deterministic generator, so runs sample the same sites.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x % n.max(1) as u64) as usize
    }
}

/// The steps of one run, in order.
const STEPS: [&str; 5] = [
    "select (payable_bills)",
    "validate and schedule (schedule_run)",
    "approve (approve_run, a second person)",
    "BACS Standard 18 file (payment_file)",
    "post (mark_run_paid)",
];

/// Each batch paid by one run, step by step, each step a request of its own (its transaction
/// committed; the selection only reads).
async fn measure_runs(
    app: &AppPool,
    org: &Organisation,
    world: &World,
    shape: &Shape,
    today: Date,
) -> Result<(), String> {
    println!(
        "\nPayment runs of {} bills across {} sites out of one pooled account, {} runs, each a \
         fresh batch (target: select + validate + file + post < {} s; approval is a second \
         person's, timed apart):",
        shape.run_bills,
        shape.sites,
        shape.runs,
        RUN_TARGET.as_secs()
    );
    let scheduler = person(CLERK);
    let approver = person(APPROVER);
    let mut all: Vec<[Duration; 5]> = Vec::with_capacity(shape.runs);
    for b in 0..shape.runs {
        let due_by = shape.due(b, today);
        let mut times = [Duration::ZERO; 5];

        let t = Instant::now();
        let mut tx = app.begin(&staff(org, CLERK)).await.map_err(e)?;
        let payable = payments::payable_bills(&mut tx, world.bank, due_by)
            .await
            .map_err(e)?;
        tx.end_reading();
        times[0] = t.elapsed();
        if payable.len() != shape.run_bills || payable.iter().any(|p| !p.vendor_has_bank) {
            return Err(format!(
                "run {}: {} payable bills, expected {} with bank details",
                b + 1,
                payable.len(),
                shape.run_bills
            ));
        }

        let t = Instant::now();
        let mut tx = app.begin(&staff(org, CLERK)).await.map_err(e)?;
        let run = payments::schedule_run(
            &mut tx,
            &world.key,
            &RunInput {
                bank_account_id: world.bank,
                // Today as the run is made: a bench that passes midnight pays on the new day.
                payment_date: today.max(OffsetDateTime::now_utc().date()),
                due_by,
                bill_ids: payable.iter().map(|p| p.id).collect(),
                override_: None,
            },
            &scheduler,
            OffsetDateTime::now_utc(),
        )
        .await
        .map_err(e)?;
        tx.commit().await.map_err(e)?;
        times[1] = t.elapsed();

        let t = Instant::now();
        let mut tx = app.begin(&staff(org, APPROVER)).await.map_err(e)?;
        let approved = payments::approve_run(&mut tx, run, &approver, OffsetDateTime::now_utc())
            .await
            .map_err(e)?;
        tx.commit().await.map_err(e)?;
        times[2] = t.elapsed();
        if let Approval::Waiting(_) = approved {
            return Err("the run waits on an approval chain".into());
        }

        let t = Instant::now();
        let mut tx = app.begin(&staff(org, CLERK)).await.map_err(e)?;
        let file =
            payments::payment_file(&mut tx, &world.key, run, CLERK, OffsetDateTime::now_utc())
                .await
                .map_err(e)?;
        tx.commit().await.map_err(e)?;
        times[3] = t.elapsed();

        let t = Instant::now();
        let mut tx = app.begin(&staff(org, CLERK)).await.map_err(e)?;
        let paid = payments::mark_run_paid(&mut tx, run, CLERK, OffsetDateTime::now_utc())
            .await
            .map_err(e)?;
        tx.commit().await.map_err(e)?;
        times[4] = t.elapsed();

        let (number, journals, total): (String, i64, i64) = {
            let mut tx = app.begin(&staff(org, CLERK)).await.map_err(e)?;
            let row = sqlx::query_as(
                "select r.number,
                        (select count(*) from journal j
                          where j.organisation_id = r.organisation_id
                            and j.source_type = 'payment_run' and j.source_id = r.id),
                        r.total_pence
                   from payment_run r where r.organisation_id = $1 and r.id = $2",
            )
            .bind(world.org)
            .bind(run)
            .fetch_one(tx.conn())
            .await
            .map_err(e)?;
            tx.end_reading();
            row
        };
        let target: Duration = times[0] + times[1] + times[3] + times[4];
        println!(
            "  run {} ({number}, {}): {} payments, {} journals posted, a {} KB file with {} \
             notices; select {:.0} ms, validate {:.0} ms, approve {:.0} ms, file {:.0} ms, \
             post {:.0} ms; target steps {:.0} ms, all steps {:.0} ms",
            b + 1,
            format_pence(total),
            paid.len(),
            journals,
            file.bytes.len() / 1024,
            file.notices.len(),
            ms(times[0]),
            ms(times[1]),
            ms(times[2]),
            ms(times[3]),
            ms(times[4]),
            ms(target),
            ms(times.iter().sum())
        );
        all.push(times);
    }
    let median_worst = |pick: &dyn Fn(&[Duration; 5]) -> Duration| {
        let mut v: Vec<Duration> = all.iter().map(pick).collect();
        v.sort();
        (v[v.len() / 2], v[v.len() - 1])
    };
    println!(
        "  over {} runs:                              median      worst",
        all.len()
    );
    for (i, step) in STEPS.iter().enumerate() {
        let (median, worst) = median_worst(&|t: &[Duration; 5]| t[i]);
        println!(
            "    {step:<40} {:>8.0} ms  {:>8.0} ms",
            ms(median),
            ms(worst)
        );
    }
    let (median, worst) = median_worst(&|t: &[Duration; 5]| t[0] + t[1] + t[3] + t[4]);
    println!(
        "    {:<40} {:>8.0} ms  {:>8.0} ms   target < {} s: {} (median), {} (worst)",
        "select + validate + file + post",
        ms(median),
        ms(worst),
        RUN_TARGET.as_secs(),
        verdict(median, RUN_TARGET),
        verdict(worst, RUN_TARGET)
    );
    let (median, worst) = median_worst(&|t: &[Duration; 5]| t.iter().sum());
    println!(
        "    {:<40} {:>8.0} ms  {:>8.0} ms",
        "all five steps",
        ms(median),
        ms(worst)
    );
    Ok(())
}

/// The last batch goes into a run that is scheduled, not yet approved: open, scheduled bills
/// for the creditors list.
async fn leave_scheduled(
    app: &AppPool,
    org: &Organisation,
    world: &World,
    shape: &Shape,
    today: Date,
) -> Result<(), String> {
    let due_by = shape.due(shape.runs, today);
    let mut tx = app.begin(&staff(org, CLERK)).await.map_err(e)?;
    let payable = payments::payable_bills(&mut tx, world.bank, due_by)
        .await
        .map_err(e)?;
    let run = payments::schedule_run(
        &mut tx,
        &world.key,
        &RunInput {
            bank_account_id: world.bank,
            payment_date: today.max(OffsetDateTime::now_utc().date()),
            due_by,
            bill_ids: payable.iter().map(|p| p.id).collect(),
            override_: None,
        },
        &person(CLERK),
        OffsetDateTime::now_utc(),
    )
    .await
    .map_err(e)?;
    let found = payments::find_run(&mut tx, run)
        .await
        .map_err(e)?
        .ok_or("the scheduled run is missing")?;
    tx.commit().await.map_err(e)?;
    println!(
        "  left scheduled, awaiting approval: {} ({} bills, {})",
        found.number,
        found.bill_count,
        format_pence(found.total_pence)
    );
    Ok(())
}

async fn measure_creditors(
    cluster: &Cluster,
    db: &str,
    app: &AppPool,
    org: &Organisation,
    world: &World,
    samples: usize,
    today: Date,
) -> Result<(), String> {
    let mut su = PgConnection::connect(&cluster.url(SUPERUSER, db))
        .await
        .map_err(e)?;
    let statuses: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {} as status, count(*) from bill b group by 1 order by 1",
        proplink_db::bills::STATUS
    )))
    .fetch_all(&mut su)
    .await
    .map_err(e)?;
    su.close().await.map_err(e)?;
    let all: i64 = statuses.iter().map(|(_, n)| n).sum();
    let open: i64 = statuses
        .iter()
        .filter(|(s, _)| matches!(s.as_str(), "approved" | "scheduled" | "held"))
        .map(|(_, n)| n)
        .sum();
    println!(
        "\nCreditors list (payments::creditors, one tenant transaction each, as a request makes \
         it; target p99 < {} ms) over {all} bills, {open} open ({:.1}%): {}",
        CREDITORS_TARGET.as_millis(),
        open as f64 * 100.0 / all.max(1) as f64,
        statuses
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let sites: Vec<Uuid> = world.sites.iter().map(|s| s.id).collect();
    let mut rng = Rng(0x00c2_ed17_0125_eed5);
    for case in [Case::OneSite, Case::AllSites, Case::Scoped] {
        let mut times = Vec::with_capacity(samples);
        let mut rows = 0;
        for i in 0..samples + WARM_UP {
            let site = sites[rng.below(sites.len())];
            let scoped: Vec<Uuid> = (0..SCOPED_SITES.min(sites.len()))
                .map(|_| sites[rng.below(sites.len())])
                .collect();
            let t = Instant::now();
            let mut tx = app.begin(&staff(org, CLERK)).await.map_err(e)?;
            let list = match case {
                Case::OneSite => payments::creditors(&mut tx, Some(site), None, today).await,
                Case::AllSites => payments::creditors(&mut tx, None, None, today).await,
                Case::Scoped => {
                    payments::creditors(&mut tx, None, Some(scoped.as_slice()), today).await
                }
            }
            .map_err(e)?;
            tx.end_reading();
            if i >= WARM_UP {
                times.push(t.elapsed());
                rows += list.len();
            }
        }
        let p99 = percentiles(
            &format!(
                "{} ({:.0} rows)",
                case.label(),
                rows as f64 / samples as f64
            ),
            times,
        );
        println!("    target: {}", verdict(p99, CREDITORS_TARGET));
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Case {
    OneSite,
    AllSites,
    Scoped,
}

impl Case {
    fn label(self) -> &'static str {
        match self {
            Self::OneSite => "one random site",
            Self::AllSites => "every site",
            Self::Scoped => "a member scoped to 10 sites",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn world(shape: &Shape) -> World {
        let id = |_| Uuid::now_v7();
        World {
            org: Uuid::now_v7(),
            key: DataKey::generate(),
            bank: Uuid::now_v7(),
            bank_name: "Client Account".into(),
            sites: (0..shape.sites)
                .map(|_| Site {
                    id: Uuid::now_v7(),
                    bank: Uuid::now_v7(),
                    creditors: Uuid::now_v7(),
                    service_charge_income: Uuid::now_v7(),
                    service_charge_fund: Uuid::now_v7(),
                    expenses: (0..TRADES.len()).map(id).collect(),
                })
                .collect(),
            vendors: (0..shape.vendors)
                .map(|v| Supplier {
                    id: Uuid::now_v7(),
                    name: vendor_name(v),
                })
                .collect(),
            standard: Uuid::now_v7(),
            exempt: Uuid::now_v7(),
            outside_scope: Uuid::now_v7(),
        }
    }

    fn column(rows: &Rows, i: usize) -> Vec<String> {
        rows.text
            .lines()
            .map(|l| l.split('\t').nth(i).unwrap().to_owned())
            .collect()
    }

    #[test]
    fn history_numbers_run_without_gaps_and_its_journals_and_payments_add_up() {
        let shape = Shape {
            sites: 7,
            vendors: 12,
            run_bills: 30,
            runs: 2,
        };
        let w = world(&shape);
        let today = Date::from_calendar_date(2026, time::Month::March, 10).unwrap();
        let plan = HistoryPlan::new(&w, &shape, 3_000, 2, today).unwrap();
        let mut batch = Batch::default();
        plan.add_runs(&mut batch, &w);
        for s in 0..shape.sites {
            plan.add_site(&mut batch, &w, s);
        }
        assert_eq!(batch.bills.count, 3_000);

        // Every number once, and per year exactly 1 to the counter's last.
        for (rows, col, kind) in [
            (&batch.bills, 5, "bill"),
            (&batch.journals, 3, "journal"),
            (&batch.payments, 2, "supplier_payment"),
            (&batch.payment_runs, 2, "payment_run"),
        ] {
            let numbers: HashSet<String> = column(rows, col).into_iter().collect();
            assert_eq!(numbers.len(), rows.count, "{kind}");
            let expected: HashSet<String> = plan
                .counters
                .iter()
                .filter(|(k, ..)| *k == kind)
                .flat_map(|(_, year, last)| {
                    let prefix = numbers.iter().next().unwrap()[..3].to_owned();
                    (1..=*last).map(move |n| number(&prefix, *year, n))
                })
                .collect();
            assert_eq!(numbers, expected, "{kind}");
        }

        // Each journal has two lines or more and balances.
        let mut journals: HashMap<String, (usize, i64)> = HashMap::new();
        for (j, amount) in column(&batch.journal_lines, 2)
            .into_iter()
            .zip(column(&batch.journal_lines, 8))
        {
            let entry = journals.entry(j).or_default();
            entry.0 += 1;
            entry.1 += amount.parse::<i64>().unwrap();
        }
        assert_eq!(journals.len(), batch.journals.count);
        assert!(
            journals
                .values()
                .all(|(lines, sum)| *lines >= 2 && *sum == 0)
        );

        // A payment is what its lines pay; a paid bill is paid in full by one line.
        let mut paid: HashMap<String, i64> = HashMap::new();
        for (p, amount) in column(&batch.payment_lines, 2)
            .into_iter()
            .zip(column(&batch.payment_lines, 6))
        {
            *paid.entry(p).or_default() += amount.parse::<i64>().unwrap();
        }
        for (p, amount) in column(&batch.payments, 1)
            .into_iter()
            .zip(column(&batch.payments, 9))
        {
            assert_eq!(paid.get(&p).copied(), Some(amount.parse().unwrap()));
        }
        let statuses = column(&batch.bills, 8);
        let paid_bills = statuses.iter().filter(|s| *s == "paid").count();
        assert_eq!(paid_bills, batch.payment_lines.count);
        assert!(statuses.iter().any(|s| s == "approved") && statuses.iter().any(|s| s == "held"));
    }
}
