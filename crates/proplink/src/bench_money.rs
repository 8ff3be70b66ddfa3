//! `proplink bench money`: the ledger and receivables at scale (issue 6: "on one organisation
//! with 100,000 units and ten years of history (≈ 2,400,000 invoices and receipts,
//! ≈ 10,000,000 journal lines): a unit statement p99 (target < 30 ms); a site trial balance for
//! a year (target < 200 ms); bulk posting of 10,000 invoices in one transaction compared with
//! a raw COPY of the same rows into the same tables (target ≤ 3× the raw COPY time); PDF
//! statements rendered per second on one core (target ≥ 50/s)").
//!
//! Builds a private throwaway cluster with one organisation: `--sites` sites with their
//! landlords, `--units` flats each with a leaseholder (written through the server role with
//! every trigger on), then `--years` years of history generated as rows and COPYed in as the
//! superuser, one transaction per year and block of sites, every journal balanced. Each unit
//! is billed a yearly service-charge demand (service charge and reserve fund; one unit in four
//! a VAT-able management fee too) and one unit in five a ground-rent notice, each paid by one
//! receipt allocated to its lines (the last year leaves one service charge in ten unpaid):
//! 100,000 units over ten years make ≈ 2.4 million documents and ≈ 9–10 million journal lines,
//! the issue's figures (quarterly demands would make over three times as many).
//!
//! Then times, through the code a request runs (`TenantTx` as the server role, row-level
//! security on): `receivables::statement` of random units over the last full year,
//! `ledger::trial_balance` of random sites over that year, and `demand_run::issue_demands` of
//! `--demands` new demands in one transaction against a raw COPY of as many invoice, line,
//! journal and journal-line rows (in a tenant session with every trigger on; as the superuser,
//! since PostgreSQL refuses COPY under row-level security, which binds the owner too). Prints
//! figures; asserts nothing (machines are shared and noisy: compare within one run).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use proplink_db::cluster::{Cluster, Durability, PgBinaries, SUPERUSER};
use proplink_db::demand_run;
use proplink_db::ledger;
use proplink_db::organisation::{self, Organisation};
use proplink_db::pools::{APP_ROLE, OWNER_ROLE, PLATFORM_ROLE, PoolSettings};
use proplink_db::receivables::{self, DraftLine, InvoiceInput};
use proplink_db::{Actor, AppPool, PlatformPool, TenantContext, setup};
use proplink_domain::ledger::vat_pence;
use proplink_domain::receivables::InvoiceKind;
use proplink_domain::uk::format_pence;
use proplink_domain::{ActorKind, Channel, OrgSlug};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use time::{Date, Month, OffsetDateTime};
use uuid::Uuid;

pub struct Options {
    pub units: usize,
    pub years: usize,
    pub sites: usize,
    /// Measured calls per case.
    pub samples: usize,
    /// Demands in the bulk run.
    pub demands: usize,
    pub dir: Option<PathBuf>,
    pub keep: bool,
}

const STATEMENT_TARGET: Duration = Duration::from_millis(30);
const TRIAL_BALANCE_TARGET: Duration = Duration::from_millis(200);
const BULK_TARGET_RATIO: f64 = 3.0;
/// Rows per `unnest` insert of the portfolio.
const BATCH: usize = 10_000;
/// Sites per history transaction (with all their units' documents of one year).
const SITES_PER_BLOCK: usize = 20;
/// Unmeasured calls before each measured case.
const WARM_UP: usize = 20;
/// Statements rendered to PDF a second on one core.
const PDF_TARGET_PER_SECOND: f64 = 50.0;
/// The tables the history is COPYed into, in foreign-key order.
const MONEY_TABLES: [&str; 6] = [
    "journal",
    "journal_line",
    "debtor_invoice",
    "debtor_invoice_line",
    "receipt",
    "allocation",
];

const SERVICE_CHARGE_PENCE: i64 = 150_000;
const MANAGEMENT_FEE_PENCE: i64 = 18_000;
const GROUND_RENT_PENCE: i64 = 25_000;
const STANDARD_RATE_BP: i32 = 2_000;

fn e<E: std::fmt::Display>(err: E) -> String {
    err.to_string()
}

pub async fn run(options: Options) -> Result<(), String> {
    let dir = options.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("proplink-bench-money-{}", std::process::id()))
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

/// A property manager's request.
fn staff(org: &Organisation) -> TenantContext {
    TenantContext {
        org: org.id,
        actor: Actor {
            id: Some(Uuid::now_v7()),
            kind: ActorKind::Staff,
            name: Some("Bench Accountant".into()),
        },
        channel: Channel::Admin,
        request_id: None,
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
    ] {
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
    let last_year = today.year() - 1;
    let first_year = last_year + 1 - i32::try_from(o.years.max(1)).map_err(e)?;

    println!(
        "Loading the portfolio: {} sites, {} units, a leaseholder each (server role, every \
         trigger on) …",
        o.sites, o.units
    );
    let started = Instant::now();
    let plan = load_portfolio(&app, &org, o.sites.max(1), o.units.max(1), first_year).await?;
    println!("  done in {:.1} s", started.elapsed().as_secs_f64());

    load_history(cluster, db, &plan, first_year, last_year).await?;

    measure_statements(&app, &org, &plan, o.samples, last_year).await?;
    measure_trial_balance(&app, &org, &plan, o.samples, last_year).await?;
    measure_bulk(cluster, db, &app, &org, &plan, o.demands, today).await?;
    // A year's statement (what a leaseholder is usually sent) and the whole history.
    measure_pdf(&app, &org, &plan, o.samples.min(500), last_year, last_year).await?;
    measure_pdf(&app, &org, &plan, o.samples.min(500), first_year, last_year).await?;
    app.close().await;
    platform.close().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The portfolio

/// A site's books: the accounts and funds the postings use, and its landlord as a demand
/// records it.
struct Books {
    id: Uuid,
    debtors: Uuid,
    bank: Uuid,
    vat: Uuid,
    service_charge_income: Uuid,
    reserve_income: Uuid,
    management_fee_income: Uuid,
    ground_rent_income: Uuid,
    service_charge_fund: Uuid,
    reserve_fund: Uuid,
    ground_rent_fund: Uuid,
    landlord_name: String,
    landlord_address: String,
}

struct Unit {
    id: Uuid,
    site: usize,
    contact: Uuid,
}

/// What the history and the measurements are generated from.
struct Plan {
    org: Uuid,
    books: Vec<Books>,
    units: Vec<Unit>,
    exempt: Uuid,
    standard: Uuid,
    summary_text: Uuid,
    ground_rent_text: Uuid,
}

/// Sites with their landlords, units, leaseholders and leases, written as an import would
/// write them (server role, audit and search triggers on); then each site's books.
async fn load_portfolio(
    app: &AppPool,
    org: &Organisation,
    sites: usize,
    units: usize,
    first_year: i32,
) -> Result<Plan, String> {
    let o = org.id.0;
    let mut tx = app.begin(&staff(org)).await.map_err(e)?;
    let site_ids: Vec<Uuid> = (0..sites).map(|_| Uuid::now_v7()).collect();
    let landlords: Vec<String> = (0..sites)
        .map(|s| format!("{} Freehold Ltd", LAST[s % LAST.len()]))
        .collect();
    sqlx::query(
        "insert into site (organisation_id, id, reference, name, address_line_1, city, postcode,
                           landlord_name, landlord_address_line_1, landlord_city, landlord_postcode)
         select $1, x.id, x.reference, x.name, x.street, 'Leeds', 'LS2 7AB', x.landlord,
                '1 Park Row', 'Leeds', 'LS1 5HD'
           from unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[])
                as x(id, reference, name, street, landlord)",
    )
    .bind(o)
    .bind(&site_ids)
    .bind(
        (0..sites)
            .map(|s| format!("LG-{:05}", s + 1))
            .collect::<Vec<_>>(),
    )
    .bind(
        (0..sites)
            .map(|s| format!("{} Court", LAST[(s * 7) % LAST.len()]))
            .collect::<Vec<_>>(),
    )
    .bind(
        (0..sites)
            .map(|s| format!("{} Mill Lane", s + 1))
            .collect::<Vec<_>>(),
    )
    .bind(&landlords)
    .execute(tx.conn())
    .await
    .map_err(e)?;

    let per_site = units.div_ceil(sites);
    let mut plan_units = Vec::with_capacity(units);
    for u in 0..units {
        plan_units.push(Unit {
            id: Uuid::now_v7(),
            site: (u / per_site).min(sites - 1),
            contact: Uuid::now_v7(),
        });
    }
    let lease_start = Date::from_calendar_date(first_year - 1, Month::January, 1).map_err(e)?;
    for from in (0..units).step_by(BATCH) {
        let part = &plan_units[from..(from + BATCH).min(units)];
        sqlx::query(
            "insert into unit (organisation_id, id, site_id, reference, name, area_cm2)
             select $1, x.id, x.site, x.reference, 'Flat ' || x.reference, x.area
               from unnest($2::uuid[], $3::uuid[], $4::text[], $5::int8[]) as x(id, site, reference, area)",
        )
        .bind(o)
        .bind(part.iter().map(|u| u.id).collect::<Vec<_>>())
        .bind(part.iter().map(|u| site_ids[u.site]).collect::<Vec<_>>())
        .bind(
            (from..from + part.len())
                .map(|u| format!("F{}", u % per_site + 1))
                .collect::<Vec<_>>(),
        )
        .bind(
            (from..from + part.len())
                .map(|u| 400_000 + (u as i64 * 37 % 60) * 10_000)
                .collect::<Vec<_>>(),
        )
        .execute(tx.conn())
        .await
        .map_err(e)?;
        let first: Vec<&str> = (from..from + part.len())
            .map(|u| FIRST[u % FIRST.len()])
            .collect();
        let last: Vec<&str> = (from..from + part.len())
            .map(|u| LAST[(u / FIRST.len()) % LAST.len()])
            .collect();
        sqlx::query(
            "insert into contact (organisation_id, id, kind, first_name, last_name, display_name)
             select $1, x.id, 'person', x.first, x.last, x.first || ' ' || x.last
               from unnest($2::uuid[], $3::text[], $4::text[]) as x(id, first, last)",
        )
        .bind(o)
        .bind(part.iter().map(|u| u.contact).collect::<Vec<_>>())
        .bind(&first)
        .bind(&last)
        .execute(tx.conn())
        .await
        .map_err(e)?;
        let leases: Vec<Uuid> = part.iter().map(|_| Uuid::now_v7()).collect();
        sqlx::query(
            "insert into lease (organisation_id, id, unit_id, starts_on)
             select $1, x.id, x.unit, $4 from unnest($2::uuid[], $3::uuid[]) as x(id, unit)",
        )
        .bind(o)
        .bind(&leases)
        .bind(part.iter().map(|u| u.id).collect::<Vec<_>>())
        .bind(lease_start)
        .execute(tx.conn())
        .await
        .map_err(e)?;
        sqlx::query(
            "insert into lease_holder (organisation_id, id, lease_id, contact_id)
             select $1, x.id, x.lease, x.contact
               from unnest($2::uuid[], $3::uuid[], $4::uuid[]) as x(id, lease, contact)",
        )
        .bind(o)
        .bind(part.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
        .bind(&leases)
        .bind(part.iter().map(|u| u.contact).collect::<Vec<_>>())
        .execute(tx.conn())
        .await
        .map_err(e)?;
    }
    for site in &site_ids {
        ledger::ensure_books(&mut tx, *site).await.map_err(e)?;
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
    let (exempt, standard) = (rate("exempt")?, rate("standard")?);
    let controls: Vec<(Uuid, String, Uuid)> = sqlx::query_as(
        "select site_id, control, id from ledger_account
          where organisation_id = $1 and control is not null and archived_at is null",
    )
    .bind(o)
    .fetch_all(tx.conn())
    .await
    .map_err(e)?;
    let funds: Vec<(Uuid, String, Uuid)> =
        sqlx::query_as("select site_id, kind, id from fund where organisation_id = $1")
            .bind(o)
            .fetch_all(tx.conn())
            .await
            .map_err(e)?;
    let texts: Vec<(String, Uuid)> = sqlx::query_as(
        "select kind, id from statutory_text where jurisdiction = 'england' and valid_to is null",
    )
    .fetch_all(tx.conn())
    .await
    .map_err(e)?;
    tx.commit().await.map_err(e)?;

    let controls: HashMap<(Uuid, &str), Uuid> = controls
        .iter()
        .map(|(site, role, id)| ((*site, role.as_str()), *id))
        .collect();
    let funds: HashMap<(Uuid, &str), Uuid> = funds
        .iter()
        .map(|(site, kind, id)| ((*site, kind.as_str()), *id))
        .collect();
    let mut books = Vec::with_capacity(sites);
    for (site, landlord) in site_ids.iter().zip(landlords) {
        let account = |role: &str| {
            controls
                .get(&(*site, role))
                .copied()
                .ok_or_else(|| format!("site without a {role} account"))
        };
        let fund = |kind: &str| {
            funds
                .get(&(*site, kind))
                .copied()
                .ok_or_else(|| format!("site without a {kind} fund"))
        };
        books.push(Books {
            id: *site,
            debtors: account("debtors")?,
            bank: account("bank")?,
            vat: account("vat")?,
            service_charge_income: account("service_charge_income")?,
            reserve_income: account("reserve_contributions")?,
            management_fee_income: account("admin_fee_income")?,
            ground_rent_income: account("ground_rent_income")?,
            service_charge_fund: fund("service_charge")?,
            reserve_fund: fund("reserve")?,
            ground_rent_fund: fund("ground_rent")?,
            landlord_name: landlord,
            landlord_address: "1 Park Row, Leeds, LS1 5HD".to_owned(),
        });
    }
    let text = |kind: &str| {
        texts
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, id)| *id)
            .ok_or_else(|| format!("no {kind} text for England"))
    };
    Ok(Plan {
        org: o,
        books,
        units: plan_units,
        exempt,
        standard,
        summary_text: text("service_charge_summary")?,
        ground_rent_text: text("ground_rent_notice")?,
    })
}

const FIRST: &[&str] = &[
    "Oliver", "Amelia", "Ravi", "Priya", "Chen", "Fatima", "James", "Grace", "Tomasz", "Aisha",
    "Daniel", "Sophie", "Kwame", "Emily", "Hassan", "Olivia",
];
const LAST: &[&str] = &[
    "Smith", "Patel", "Jones", "Okafor", "Williams", "Khan", "Taylor", "Brown", "Kowalski", "Chen",
    "Wright", "Begum", "Evans", "Thompson", "Harris", "O'Brien", "Walker", "Hughes", "Green",
    "Clarke",
];

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
        let escaped: String = value
            .chars()
            .flat_map(|c| match c {
                '\\' => vec!['\\', '\\'],
                '\t' => vec!['\\', 't'],
                '\n' => vec!['\\', 'n'],
                '\r' => vec!['\\', 'r'],
                c => vec![c],
            })
            .collect();
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

/// The rows of the money tables for one batch, in `MONEY_TABLES` order.
#[derive(Default)]
struct Batch {
    journals: Rows,
    journal_lines: Rows,
    invoices: Rows,
    invoice_lines: Rows,
    receipts: Rows,
    allocations: Rows,
}

const JOURNAL_COLUMNS: &str = "journal (organisation_id, id, site_id, reference, journal_date, \
    description, source_type, source_id, posted_by, posted_at)";
const JOURNAL_LINE_COLUMNS: &str = "journal_line (organisation_id, id, journal_id, site_id, \
    journal_date, line_no, account_id, fund_id, amount_pence, unit_id, contact_id, description)";
const INVOICE_COLUMNS: &str = "debtor_invoice (organisation_id, id, site_id, unit_id, contact_id, \
    kind, number, reference, issue_date, due_date, status, net_pence, vat_pence, total_pence, \
    paid_pence, jurisdiction, statutory_text_id, landlord_name, landlord_address, journal_id, \
    created_by, submitted_by, submitted_at, approved_by, approved_at)";
const INVOICE_LINE_COLUMNS: &str = "debtor_invoice_line (organisation_id, id, invoice_id, site_id, \
    line_no, description, account_id, fund_id, tax_rate_id, basis_points, net_pence, vat_pence, \
    period_from, period_to, paid_pence)";
const RECEIPT_COLUMNS: &str = "receipt (organisation_id, id, site_id, unit_id, contact_id, number, \
    received_on, amount_pence, method, reference, bank_account_id, fund_id, allocated_pence, \
    journal_id, recorded_by)";
const ALLOCATION_COLUMNS: &str = "allocation (organisation_id, id, site_id, unit_id, allocated_on, \
    amount_pence, receipt_id, invoice_line_id, fund_id, created_by)";

impl Batch {
    fn tables(&self) -> [(&'static str, &Rows); 6] {
        [
            (JOURNAL_COLUMNS, &self.journals),
            (JOURNAL_LINE_COLUMNS, &self.journal_lines),
            (INVOICE_COLUMNS, &self.invoices),
            (INVOICE_LINE_COLUMNS, &self.invoice_lines),
            (RECEIPT_COLUMNS, &self.receipts),
            (ALLOCATION_COLUMNS, &self.allocations),
        ]
    }

    /// COPYs each table's rows, journals first.
    async fn copy(&self, conn: &mut PgConnection) -> Result<(), String> {
        for (columns, rows) in self.tables() {
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

/// A document line as priced: description, account, fund, rate, basis points, net, VAT.
#[derive(Clone)]
struct Priced {
    description: &'static str,
    account: Uuid,
    fund: Uuid,
    rate: Uuid,
    basis_points: i32,
    net: i64,
    vat: i64,
}

impl Priced {
    fn gross(&self) -> i64 {
        self.net + self.vat
    }
}

/// The lines of a unit's yearly service-charge demand.
fn service_charge_lines(plan: &Plan, u: usize) -> Vec<Priced> {
    let b = &plan.books[plan.units[u].site];
    let charge = SERVICE_CHARGE_PENCE + (u as i64 * 37 % 60) * 1_000;
    let mut lines = vec![
        Priced {
            description: "Service charge on account",
            account: b.service_charge_income,
            fund: b.service_charge_fund,
            rate: plan.exempt,
            basis_points: 0,
            net: charge,
            vat: 0,
        },
        Priced {
            description: "Reserve fund contribution",
            account: b.reserve_income,
            fund: b.reserve_fund,
            rate: plan.exempt,
            basis_points: 0,
            net: charge / 5,
            vat: 0,
        },
    ];
    if u.is_multiple_of(4) {
        lines.push(Priced {
            description: "Management fee",
            account: b.management_fee_income,
            fund: b.service_charge_fund,
            rate: plan.standard,
            basis_points: STANDARD_RATE_BP,
            net: MANAGEMENT_FEE_PENCE,
            vat: vat_pence(MANAGEMENT_FEE_PENCE, STANDARD_RATE_BP.unsigned_abs()),
        });
    }
    lines
}

fn ground_rent_lines(plan: &Plan, u: usize) -> Vec<Priced> {
    let b = &plan.books[plan.units[u].site];
    vec![Priced {
        description: "Ground rent",
        account: b.ground_rent_income,
        fund: b.ground_rent_fund,
        rate: plan.exempt,
        basis_points: 0,
        net: GROUND_RENT_PENCE,
        vat: 0,
    }]
}

/// One demand to write: its unit, kind, dates, numbers and lines.
struct Demand {
    unit: usize,
    kind: InvoiceKind,
    reference: String,
    issue: Date,
    due: Date,
    period: (Date, Date),
    number: String,
    journal_reference: String,
    /// `paid` (with its paid totals) for the history, `draft` for the raw COPY (the database
    /// refuses lines under an issued invoice from a tenant session).
    status: &'static str,
    lines: Vec<Priced>,
}

const POSTED_BY: &str = "Bench Accountant";

/// Adds a demand's invoice, lines and journal (as `post_invoice` posts it) to the batch.
/// Returns the invoice line ids.
fn add_demand(batch: &mut Batch, plan: &Plan, d: &Demand) -> Vec<Uuid> {
    let unit = &plan.units[d.unit];
    let b = &plan.books[unit.site];
    let o = plan.org;
    let invoice = Uuid::now_v7();
    let journal = Uuid::now_v7();
    let net: i64 = d.lines.iter().map(|l| l.net).sum();
    let vat: i64 = d.lines.iter().map(|l| l.vat).sum();
    let paid = if d.status == "paid" { net + vat } else { 0 };
    let approved_at = format!("{} 09:00:00+00", d.issue);
    batch
        .journals
        .field(o)
        .field(journal)
        .field(b.id)
        .field(&d.journal_reference)
        .field(d.issue)
        .text(&format!("{} {}: {}", d.kind.label(), d.number, d.reference))
        .field("debtor_invoice")
        .field(invoice)
        .field(POSTED_BY)
        .field(&approved_at)
        .end();
    let mut per_fund: Vec<(Uuid, i64)> = Vec::new();
    let mut vat_per_fund: Vec<(Uuid, i64)> = Vec::new();
    for l in &d.lines {
        add_to(&mut per_fund, l.fund, l.gross());
        if l.vat > 0 {
            add_to(&mut vat_per_fund, l.fund, l.vat);
        }
    }
    let mut n = 0;
    let mut journal_line = |batch: &mut Batch,
                            account,
                            fund,
                            amount: i64,
                            contact: bool,
                            description: Option<&str>| {
        n += 1;
        batch
            .journal_lines
            .field(o)
            .field(Uuid::now_v7())
            .field(journal)
            .field(b.id)
            .field(d.issue)
            .field(n)
            .field(account)
            .field(fund)
            .field(amount)
            .field(unit.id)
            .opt(contact.then_some(unit.contact))
            .opt(description)
            .end();
    };
    for (fund, gross) in &per_fund {
        journal_line(batch, b.debtors, *fund, *gross, true, None);
    }
    for l in &d.lines {
        journal_line(batch, l.account, l.fund, -l.net, false, Some(l.description));
    }
    for (fund, v) in &vat_per_fund {
        journal_line(batch, b.vat, *fund, -v, false, None);
    }
    let text = match d.kind {
        InvoiceKind::GroundRent => Some(plan.ground_rent_text),
        InvoiceKind::ServiceCharge => Some(plan.summary_text),
        InvoiceKind::Other => None,
    };
    batch
        .invoices
        .field(o)
        .field(invoice)
        .field(b.id)
        .field(unit.id)
        .field(unit.contact)
        .field(d.kind.as_str())
        .field(&d.number)
        .text(&d.reference)
        .field(d.issue)
        .field(d.due)
        .field(d.status)
        .field(net)
        .field(vat)
        .field(net + vat)
        .field(paid)
        .field("england")
        .opt(text)
        .text(&b.landlord_name)
        .text(&b.landlord_address)
        .field(journal)
        .field(POSTED_BY)
        .field(POSTED_BY)
        .field(&approved_at)
        .field(POSTED_BY)
        .field(&approved_at)
        .end();
    let mut line_ids = Vec::with_capacity(d.lines.len());
    for (i, l) in d.lines.iter().enumerate() {
        let id = Uuid::now_v7();
        line_ids.push(id);
        batch
            .invoice_lines
            .field(o)
            .field(id)
            .field(invoice)
            .field(b.id)
            .field(i + 1)
            .field(l.description)
            .field(l.account)
            .field(l.fund)
            .field(l.rate)
            .field(l.basis_points)
            .field(l.net)
            .field(l.vat)
            .field(d.period.0)
            .field(d.period.1)
            .field(if d.status == "paid" { l.gross() } else { 0 })
            .end();
    }
    line_ids
}

/// Adds a receipt paying the whole demand (Dr bank / Cr debtors per fund, as
/// `record_receipt` posts it) and its allocations to the demand's lines.
fn add_receipt(
    batch: &mut Batch,
    plan: &Plan,
    d: &Demand,
    line_ids: &[Uuid],
    on: Date,
    number: &str,
    journal_reference: &str,
) {
    let unit = &plan.units[d.unit];
    let b = &plan.books[unit.site];
    let o = plan.org;
    let receipt = Uuid::now_v7();
    let journal = Uuid::now_v7();
    let amount: i64 = d.lines.iter().map(Priced::gross).sum();
    batch
        .journals
        .field(o)
        .field(journal)
        .field(b.id)
        .field(journal_reference)
        .field(on)
        .text(&format!(
            "Receipt {number}: {} by bank transfer",
            format_pence(amount)
        ))
        .field("receipt")
        .field(receipt)
        .field(POSTED_BY)
        .field(format!("{on} 12:00:00+00"))
        .end();
    let mut per_fund: Vec<(Uuid, i64)> = Vec::new();
    for l in &d.lines {
        add_to(&mut per_fund, l.fund, l.gross());
    }
    let mut n = 0;
    for (fund, amount) in &per_fund {
        for (account, signed, contact) in [
            (b.bank, *amount, None),
            (b.debtors, -amount, Some(unit.contact)),
        ] {
            n += 1;
            batch
                .journal_lines
                .field(o)
                .field(Uuid::now_v7())
                .field(journal)
                .field(b.id)
                .field(on)
                .field(n)
                .field(account)
                .field(fund)
                .field(signed)
                .field(unit.id)
                .opt(contact)
                .null()
                .end();
        }
    }
    batch
        .receipts
        .field(o)
        .field(receipt)
        .field(b.id)
        .field(unit.id)
        .field(unit.contact)
        .field(number)
        .field(on)
        .field(amount)
        .field("bank_transfer")
        .text(&format!("FLAT {}", d.unit + 1))
        .field(b.bank)
        .field(b.service_charge_fund)
        .field(amount)
        .field(journal)
        .field(POSTED_BY)
        .end();
    for (l, id) in d.lines.iter().zip(line_ids) {
        batch
            .allocations
            .field(o)
            .field(Uuid::now_v7())
            .field(b.id)
            .field(unit.id)
            .field(on)
            .field(l.gross())
            .field(receipt)
            .field(id)
            .field(l.fund)
            .field(POSTED_BY)
            .end();
    }
}

fn add_to(sums: &mut Vec<(Uuid, i64)>, key: Uuid, amount: i64) {
    match sums.iter_mut().find(|(k, _)| *k == key) {
        Some((_, total)) => *total += amount,
        None => sums.push((key, amount)),
    }
}

// ---------------------------------------------------------------------------------------------
// The history

/// Gap-free numbers for one year's documents, by unit: service-charge demands first, then
/// ground-rent notices; receipts in the same order; journals for demands, then receipts.
struct Numbering {
    units: usize,
    ground_rents: usize,
    final_year: bool,
}

impl Numbering {
    fn ground_rent(u: usize) -> Option<usize> {
        u.is_multiple_of(5).then_some(u / 5)
    }

    /// The last year leaves one service charge in ten unpaid (arrears for the statements).
    fn service_charge_paid(&self, u: usize) -> bool {
        !(self.final_year && u % 10 == 3)
    }

    /// Service-charge receipts before unit `u`'s.
    fn receipts_before(&self, u: usize) -> usize {
        if self.final_year { u - (u + 6) / 10 } else { u }
    }

    fn service_charge_receipts(&self) -> usize {
        self.receipts_before(self.units)
    }

    fn demands(&self) -> usize {
        self.units + self.ground_rents
    }

    fn receipts(&self) -> usize {
        self.service_charge_receipts() + self.ground_rents
    }
}

/// Rows loaded into each money table, for the summary.
#[derive(Default, Clone, Copy)]
struct Loaded {
    rows: [usize; 6],
}

impl Loaded {
    fn add(&mut self, batch: &Batch) {
        for (total, (_, rows)) in self.rows.iter_mut().zip(batch.tables()) {
            *total += rows.count;
        }
    }
}

/// COPYs the history in as the superuser, two connections at once (odd and even years), one
/// transaction per year and block of sites. The audit triggers of the six money tables are off
/// for the load only; every other trigger stays on (journals balanced per COPY statement, no
/// posting into a locked period, every journal with its lines, the draft-only line guards) and
/// so do the foreign keys.
async fn load_history(
    cluster: &Cluster,
    db: &str,
    plan: &Plan,
    first_year: i32,
    last_year: i32,
) -> Result<(), String> {
    let mut su = PgConnection::connect(&cluster.url(SUPERUSER, db))
        .await
        .map_err(e)?;
    let kept: Vec<(String, String)> = sqlx::query_as(
        "select c.relname::text, string_agg(t.tgname::text, ', ' order by t.tgname)
           from pg_trigger t join pg_class c on c.oid = t.tgrelid
          where not t.tgisinternal and c.relname::text = any($1) and t.tgname not like 'audit%'
          group by c.relname order by c.relname",
    )
    .bind(MONEY_TABLES.map(str::to_owned).to_vec())
    .fetch_all(&mut su)
    .await
    .map_err(e)?;
    println!(
        "\nLoading {} years of history ({first_year}–{last_year}) as COPYed rows, as the \
         superuser. The six money tables' audit triggers are off for this load only: an \
         audit event per row would take longer than the rest of the bench and double the disk \
         it needs. Every other trigger stays on, and every foreign key:",
        last_year - first_year + 1
    );
    for (table, triggers) in &kept {
        println!("  {table}: {triggers}");
    }
    let disable: String = MONEY_TABLES
        .iter()
        .map(|t| format!("alter table {t} disable trigger audit;"))
        .collect();
    exec(&mut su, &disable).await?;
    let started = Instant::now();
    let years: Vec<i32> = (first_year..=last_year).collect();
    let (even, odd): (Vec<i32>, Vec<i32>) = years.iter().partition(|y| (*y - first_year) % 2 == 0);
    let url = cluster.url(SUPERUSER, db);
    let loaded = async {
        let (a, b) = tokio::join!(
            load_years(&url, plan, &even, last_year, started),
            load_years(&url, plan, &odd, last_year, started),
        );
        let (a, b) = (a?, b?);
        let mut total = Loaded::default();
        for (t, (x, y)) in total.rows.iter_mut().zip(a.rows.iter().zip(b.rows)) {
            *t = x + y;
        }
        Ok::<Loaded, String>(total)
    }
    .await;
    // After a failed load, only switch the triggers back on.
    let enable: String = MONEY_TABLES
        .iter()
        .map(|t| format!("alter table {t} enable trigger audit;"))
        .collect();
    exec(&mut su, &enable).await?;
    let loaded = loaded?;
    let load_time = started.elapsed();
    // Each year's counters continue from its last number.
    for year in &years {
        let n = numbering(plan, *year == last_year);
        for (kind, last) in [
            ("debtor_invoice", n.demands()),
            ("receipt", n.receipts()),
            ("journal", n.demands() + n.receipts()),
        ] {
            sqlx::query(
                "insert into reference_counter (organisation_id, kind, year, last_number)
                 values ($1, $2, $3, $4)",
            )
            .bind(plan.org)
            .bind(kind)
            .bind(year)
            .bind(i32::try_from(last).map_err(e)?)
            .execute(&mut su)
            .await
            .map_err(e)?;
        }
    }
    let total: usize = loaded.rows.iter().sum();
    println!(
        "  {total} rows in {:.1} s ({:.0} rows/s):",
        load_time.as_secs_f64(),
        total as f64 / load_time.as_secs_f64()
    );
    for (table, rows) in MONEY_TABLES.iter().zip(loaded.rows) {
        println!("    {table:<20} {rows:>10}");
    }
    println!(
        "  documents: {} invoices and receipts",
        loaded.rows[2] + loaded.rows[4]
    );
    let started = Instant::now();
    exec(&mut su, "vacuum analyze").await?;
    println!(
        "  vacuum analyze (statistics and visibility for index-only scans) {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let size: String =
        sqlx::query_scalar("select pg_size_pretty(pg_database_size(current_database()))")
            .fetch_one(&mut su)
            .await
            .map_err(e)?;
    println!("  database size {size}");
    su.close().await.map_err(e)?;
    Ok(())
}

fn numbering(plan: &Plan, final_year: bool) -> Numbering {
    Numbering {
        units: plan.units.len(),
        ground_rents: plan.units.len().div_ceil(5),
        final_year,
    }
}

async fn load_years(
    url: &str,
    plan: &Plan,
    years: &[i32],
    last_year: i32,
    started: Instant,
) -> Result<Loaded, String> {
    let mut conn = PgConnection::connect(url).await.map_err(e)?;
    let mut loaded = Loaded::default();
    let per_block = {
        let sites = plan.books.len();
        let per_site = plan.units.len().div_ceil(sites);
        per_site * SITES_PER_BLOCK
    };
    for year in years {
        let n = numbering(plan, *year == last_year);
        for from in (0..plan.units.len()).step_by(per_block) {
            let to = (from + per_block).min(plan.units.len());
            let batch = history_batch(plan, *year, &n, from..to)?;
            let mut tx = conn.begin().await.map_err(e)?;
            batch.copy(&mut tx).await?;
            tx.commit().await.map_err(e)?;
            loaded.add(&batch);
        }
        println!(
            "  {year} loaded ({:.0} s since the start)",
            started.elapsed().as_secs_f64()
        );
    }
    conn.close().await.map_err(e)?;
    Ok(loaded)
}

fn date(year: i32, month: Month, day: u8) -> Result<Date, String> {
    Date::from_calendar_date(year, month, day).map_err(e)
}

/// One year's documents for units `range`.
fn history_batch(
    plan: &Plan,
    year: i32,
    n: &Numbering,
    range: std::ops::Range<usize>,
) -> Result<Batch, String> {
    let mut batch = Batch::default();
    let sc_issue = date(year, Month::March, 1)?;
    let sc_due = date(year, Month::April, 1)?;
    let sc_period = (sc_due, date(year + 1, Month::March, 31)?);
    let gr_issue = date(year, Month::May, 1)?;
    let gr_due = date(year, Month::June, 24)?;
    let gr_period = (gr_due, date(year + 1, Month::June, 23)?);
    let number = |prefix: &str, i: usize| format!("{prefix}-{year}-{:06}", i + 1);
    for u in range {
        let demand = Demand {
            unit: u,
            kind: InvoiceKind::ServiceCharge,
            reference: format!("Service charge {year}/{:02}", (year + 1) % 100),
            issue: sc_issue,
            due: sc_due,
            period: sc_period,
            number: number("INV", u),
            journal_reference: number("JNL", u),
            status: if n.service_charge_paid(u) {
                "paid"
            } else {
                "sent"
            },
            lines: service_charge_lines(plan, u),
        };
        let lines = add_demand(&mut batch, plan, &demand);
        if n.service_charge_paid(u) {
            let r = n.receipts_before(u);
            let on = sc_due + time::Duration::days((u * 7 % 45) as i64);
            add_receipt(
                &mut batch,
                plan,
                &demand,
                &lines,
                on,
                &number("RCT", r),
                &number("JNL", n.demands() + r),
            );
        }
        if let Some(g) = Numbering::ground_rent(u) {
            let demand = Demand {
                unit: u,
                kind: InvoiceKind::GroundRent,
                reference: format!("Ground rent {year}/{:02}", (year + 1) % 100),
                issue: gr_issue,
                due: gr_due,
                period: gr_period,
                number: number("INV", n.units + g),
                journal_reference: number("JNL", n.units + g),
                status: "paid",
                lines: ground_rent_lines(plan, u),
            };
            let lines = add_demand(&mut batch, plan, &demand);
            let r = n.service_charge_receipts() + g;
            add_receipt(
                &mut batch,
                plan,
                &demand,
                &lines,
                gr_due + time::Duration::days((u % 20) as i64),
                &number("RCT", r),
                &number("JNL", n.demands() + r),
            );
        }
    }
    Ok(batch)
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

fn verdict(p99: Duration, target: Duration) -> &'static str {
    if p99 < target { "met" } else { "MISSED" }
}

/// A small deterministic generator, so runs sample the same units.
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

async fn measure_statements(
    app: &AppPool,
    org: &Organisation,
    plan: &Plan,
    samples: usize,
    year: i32,
) -> Result<(), String> {
    let from = date(year, Month::January, 1)?;
    let to = date(year, Month::December, 31)?;
    println!(
        "\nUnit statement over {year} (receivables::statement; one tenant transaction each, as \
         a request makes it; target p99 < {} ms):",
        STATEMENT_TARGET.as_millis()
    );
    let mut rng = Rng(0x005e_ed0f_57a7_e3e7);
    let mut times = Vec::with_capacity(samples);
    let mut rows = 0;
    for i in 0..samples + WARM_UP {
        let unit = plan.units[rng.below(plan.units.len())].id;
        let t = Instant::now();
        let mut tx = app.begin(&staff(org)).await.map_err(e)?;
        let st = receivables::statement(&mut tx, unit, from, to)
            .await
            .map_err(e)?;
        tx.end_reading();
        if i >= WARM_UP {
            times.push(t.elapsed());
            rows += st.rows.len();
        }
    }
    let p99 = percentiles(
        &format!(
            "random unit ({:.1} rows each)",
            rows as f64 / samples.max(1) as f64
        ),
        times,
    );
    println!("  target: {}", verdict(p99, STATEMENT_TARGET));
    Ok(())
}

/// Renders the statements of random units, over their whole history, to PDF one after another
/// on this thread (one core), the statements read first so only the typesetting is timed.
async fn measure_pdf(
    app: &AppPool,
    org: &Organisation,
    plan: &Plan,
    samples: usize,
    first_year: i32,
    last_year: i32,
) -> Result<(), String> {
    use proplink_pdf::{Document, Party, Statement, StatementRow};
    let from = date(first_year, Month::January, 1)?;
    let to = date(last_year, Month::December, 31)?;
    println!(
        "\nPDF statements per second on one core (proplink_pdf::render of {samples} random \
         units' statements {first_year}–{last_year}; target ≥ {PDF_TARGET_PER_SECOND:.0}/s):"
    );
    let mut rng = Rng(0x0bd7_5eed_0f00_d1e5);
    let mut documents = Vec::with_capacity(samples);
    let mut tx = app.begin(&staff(org)).await.map_err(e)?;
    for i in 0..samples.max(1) {
        let unit = plan.units[rng.below(plan.units.len())].id;
        let st = receivables::statement(&mut tx, unit, from, to)
            .await
            .map_err(e)?;
        documents.push(Document::Statement(Statement {
            org: proplink_pdf::Organisation {
                name: org.name.clone(),
                address_lines: vec!["1 Bench Street".into(), "Bristol BS1 4RN".into()],
                logo_png: None,
            },
            to: Party {
                name: format!("Leaseholder {i}"),
                address_lines: vec![format!("Flat {i}"), "Bristol BS8 1AA".into()],
            },
            unit: format!("Unit {i}"),
            site: "Bench site".into(),
            from,
            to_date: to,
            opening_pence: st.opening_pence,
            rows: st
                .rows
                .iter()
                .map(|r| StatementRow {
                    date: r.date,
                    description: r.description.clone(),
                    debit_pence: r.amount_pence.max(0),
                    credit_pence: (-r.amount_pence).max(0),
                    balance_pence: r.balance_pence,
                })
                .collect(),
            closing_pence: st.closing_pence,
            overdue_pence: st.overdue_pence,
        }));
    }
    tx.end_reading();
    let started = Instant::now();
    proplink_pdf::warm_up().map_err(e)?;
    println!(
        "  fonts and template loaded in {:.0} ms",
        ms(started.elapsed())
    );
    let (mut pages, mut rows) = (0, 0);
    let mut times = Vec::with_capacity(documents.len());
    let started = Instant::now();
    for doc in &documents {
        let t = Instant::now();
        let rendered = proplink_pdf::render(doc).map_err(e)?;
        times.push(t.elapsed());
        pages += rendered.pages;
        if let Document::Statement(s) = doc {
            rows += s.rows.len();
        }
    }
    let took = started.elapsed();
    let rate = documents.len() as f64 / took.as_secs_f64();
    println!(
        "  {} statements ({:.1} rows, {:.2} pages each) in {:.0} ms",
        documents.len(),
        rows as f64 / documents.len() as f64,
        pages as f64 / documents.len() as f64,
        ms(took)
    );
    percentiles("one statement", times);
    println!(
        "  {rate:.1} statements a second: target {}",
        if rate >= PDF_TARGET_PER_SECOND {
            "met"
        } else {
            "MISSED"
        }
    );
    Ok(())
}

async fn measure_trial_balance(
    app: &AppPool,
    org: &Organisation,
    plan: &Plan,
    samples: usize,
    year: i32,
) -> Result<(), String> {
    let from = date(year, Month::January, 1)?;
    let to = date(year, Month::December, 31)?;
    let lines: i64 = {
        let mut tx = app.begin(&staff(org)).await.map_err(e)?;
        let n = sqlx::query_scalar(
            "select count(*) from journal_line where site_id = $1 and journal_date between $2 and $3",
        )
        .bind(plan.books[0].id)
        .bind(from)
        .bind(to)
        .fetch_one(tx.conn())
        .await
        .map_err(e)?;
        tx.end_reading();
        n
    };
    println!(
        "\nSite trial balance for {year} (ledger::trial_balance; ≈ {lines} journal lines a site \
         that year; target p99 < {} ms):",
        TRIAL_BALANCE_TARGET.as_millis()
    );
    let mut rng = Rng(0x7b_a1a7_ce5e_ed01);
    let mut times = Vec::with_capacity(samples);
    for i in 0..samples + WARM_UP {
        let site = plan.books[rng.below(plan.books.len())].id;
        let t = Instant::now();
        let mut tx = app.begin(&staff(org)).await.map_err(e)?;
        let tb = ledger::trial_balance(&mut tx, site, from, to)
            .await
            .map_err(e)?;
        tx.end_reading();
        if i >= WARM_UP {
            times.push(t.elapsed());
        }
        if tb.iter().map(|r| r.balance_pence).sum::<i64>() != 0 {
            return Err("a trial balance does not sum to zero".into());
        }
    }
    let p99 = percentiles("random site", times);
    println!("  target: {}", verdict(p99, TRIAL_BALANCE_TARGET));
    Ok(())
}

/// The run's demands: a service-charge demand for `count` units spread over every site.
fn run_demands(plan: &Plan, count: usize) -> Vec<(usize, Vec<Priced>)> {
    let count = count.clamp(1, plan.units.len());
    let step = plan.units.len() / count;
    (0..count)
        .map(|i| {
            let u = i * step;
            (u, service_charge_lines(plan, u))
        })
        .collect()
}

async fn measure_bulk(
    cluster: &Cluster,
    db: &str,
    app: &AppPool,
    org: &Organisation,
    plan: &Plan,
    count: usize,
    today: Date,
) -> Result<(), String> {
    let due = today + time::Duration::days(30);
    let period = (due, due + time::Duration::days(364));
    let chosen = run_demands(plan, count);
    let inputs: Vec<InvoiceInput> = chosen
        .iter()
        .map(|(u, lines)| InvoiceInput {
            unit_id: plan.units[*u].id,
            contact_id: plan.units[*u].contact,
            kind: InvoiceKind::ServiceCharge,
            reference: Some(format!(
                "Service charge {}/{:02}",
                today.year(),
                (today.year() + 1) % 100
            )),
            issue_date: Some(today),
            due_date: Some(due),
            lines: lines
                .iter()
                .map(|l| DraftLine {
                    description: l.description.to_owned(),
                    account_id: l.account,
                    fund_id: l.fund,
                    tax_rate_id: l.rate,
                    net_pence: l.net,
                    period_from: Some(period.0),
                    period_to: Some(period.1),
                })
                .collect(),
        })
        .collect();

    // The same rows, COPYed: dated a year on so their numbers are free.
    let batch = copied_demands(plan, &chosen, today.year() + 1, period)?;
    println!(
        "\nBulk posting of {} demands in one transaction ({} invoices, {} invoice lines, {} \
         journals, {} journal lines; target ≤ {BULK_TARGET_RATIO}× the raw COPY):",
        inputs.len(),
        batch.invoices.count,
        batch.invoice_lines.count,
        batch.journals.count,
        batch.journal_lines.count
    );
    let url = cluster.url(SUPERUSER, db);
    let raw = raw_copy(&url, plan, &batch, Audit::On).await?;
    println!(
        "  raw COPY of the same rows (superuser in a tenant session, triggers on) {:>8.0} ms",
        ms(raw)
    );

    let t = Instant::now();
    let mut tx = app.begin(&staff(org)).await.map_err(e)?;
    let issued = demand_run::issue_demands(&mut tx, &inputs, POSTED_BY, OffsetDateTime::now_utc())
        .await
        .map_err(e)?;
    let run_time = t.elapsed();
    tx.commit().await.map_err(e)?;
    let bulk = t.elapsed();
    println!(
        "  demand_run::issue_demands, commit included                  {:>8.0} ms   \
         ({:.0} ms to issue, {:.0} ms to commit; {} … {})",
        ms(bulk),
        ms(run_time),
        ms(bulk - run_time),
        issued.first().map(|(_, n)| n.as_str()).unwrap_or("-"),
        issued.last().map(|(_, n)| n.as_str()).unwrap_or("-"),
    );
    let ratio = bulk.as_secs_f64() / raw.as_secs_f64();
    println!(
        "  ratio {ratio:.2}× the raw COPY: target {}",
        if ratio <= BULK_TARGET_RATIO {
            "met"
        } else {
            "MISSED"
        }
    );
    // For scale: how much of both is the audit trail.
    let batch = copied_demands(plan, &chosen, today.year() + 2, period)?;
    let unaudited = raw_copy(&url, plan, &batch, Audit::Off).await?;
    println!(
        "  for scale: the raw COPY with the audit triggers off (rolled back)  {:>8.0} ms",
        ms(unaudited)
    );
    Ok(())
}

/// The demands of the run as rows, numbered in `year` (free numbers), as drafts: the
/// database refuses lines under an issued invoice from a tenant session, and the status is
/// the only difference from the run's rows.
fn copied_demands(
    plan: &Plan,
    chosen: &[(usize, Vec<Priced>)],
    year: i32,
    period: (Date, Date),
) -> Result<Batch, String> {
    let issue = date(year, Month::January, 15)?;
    let mut batch = Batch::default();
    for (i, (u, lines)) in chosen.iter().enumerate() {
        let number = |prefix: &str| format!("{prefix}-{year}-{:06}", i + 1);
        add_demand(
            &mut batch,
            plan,
            &Demand {
                unit: *u,
                kind: InvoiceKind::ServiceCharge,
                reference: format!("Service charge {year}/{:02}", (year + 1) % 100),
                issue,
                due: issue + time::Duration::days(30),
                period,
                number: number("INV"),
                journal_reference: number("JNL"),
                status: "draft",
                lines: lines.clone(),
            },
        );
    }
    Ok(batch)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Audit {
    /// Every trigger on, committed.
    On,
    /// The audit triggers off inside the transaction, rolled back (triggers and rows).
    Off,
}

/// COPYs `batch` in a tenant session as the server's would be (the organisation, actor and
/// channel set), commit included. PostgreSQL refuses COPY into a table under row-level
/// security, which binds the owner too (FORCE), so it runs as the superuser, whom row-level
/// security does not bind; every trigger still fires.
async fn raw_copy(url: &str, plan: &Plan, batch: &Batch, audit: Audit) -> Result<Duration, String> {
    let mut copier = PgConnection::connect(url).await.map_err(e)?;
    let mut tx = copier.begin().await.map_err(e)?;
    if audit == Audit::Off {
        exec(
            &mut tx,
            "alter table journal disable trigger audit;
             alter table journal_line disable trigger audit;
             alter table debtor_invoice disable trigger audit;
             alter table debtor_invoice_line disable trigger audit",
        )
        .await?;
    }
    let t = Instant::now();
    sqlx::query(
        "select set_config('app.organisation_id', $1, true),
                set_config('app.actor_kind', 'staff', true),
                set_config('app.actor_name', $2, true), set_config('app.channel', 'admin', true)",
    )
    .bind(plan.org.to_string())
    .bind(POSTED_BY)
    .execute(&mut *tx)
    .await
    .map_err(e)?;
    batch.copy(&mut tx).await?;
    let took = match audit {
        Audit::On => {
            tx.commit().await.map_err(e)?;
            t.elapsed()
        }
        Audit::Off => {
            let took = t.elapsed();
            tx.rollback().await.map_err(e)?;
            took
        }
    };
    copier.close().await.map_err(e)?;
    Ok(took)
}
