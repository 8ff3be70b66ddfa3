//! `proplink bench operations`: the issue queue and the work-order list at scale (issue 5:
//! "p99 under 50 ms for an organisation with 200,000 issues and 100,000 work orders").
//!
//! Builds a private throwaway cluster and loads one large organisation (`--sites` sites of 20
//! units, `--issues` issues and `--work-orders` work orders over three years, most of them long
//! finished) beside `--orgs` small ones, so row-level security and the per-organisation plans
//! have neighbours to keep apart. Then times `list_issues` and `list_work_orders` at the
//! repository level, each call in its own tenant transaction as the server role, as a request
//! makes it. Prints figures; asserts nothing (machines are shared and noisy: compare in one run).
//!
//! Then the compliance dashboard (issue 5: "the compliance dashboard across 1,000 sites with
//! 20,000 maintenance events (target < 100 ms)"): one more organisation with
//! [`Compliance::sites`] sites and [`Compliance::events`] compliance events over the UK
//! templates' obligations (the issue's figures unless given), and `compliance_matrix` timed for
//! the whole portfolio, one site and a member scoped to ten sites.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use proplink_db::cluster::{Cluster, Durability, PgBinaries, SUPERUSER};
use proplink_db::maintenance;
use proplink_db::operations::{self, IssueQuery, WorkOrderQuery};
use proplink_db::organisation;
use proplink_db::pools::{APP_ROLE, OWNER_ROLE, PLATFORM_ROLE, PoolSettings};
use proplink_db::portfolio::SiteScope;
use proplink_db::{Actor, AppPool, PlatformPool, TenantContext, setup};
use proplink_domain::schedule::{RecurUnit, Recurrence, templates};
use proplink_domain::{ActorKind, Channel, OrgId, OrgSlug};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

pub struct Options {
    pub sites: usize,
    pub issues: usize,
    pub work_orders: usize,
    pub orgs: usize,
    pub other_issues: usize,
    pub other_work_orders: usize,
    pub samples: usize,
    pub dir: Option<PathBuf>,
    pub keep: bool,
}

/// The compliance dashboard's organisation (`--compliance-sites`, `--events`).
pub struct Compliance {
    pub sites: usize,
    pub events: usize,
}

/// The issue's target for both lists.
const TARGET_P99: Duration = Duration::from_millis(50);
/// The issue's target for the compliance dashboard.
const COMPLIANCE_TARGET_P99: Duration = Duration::from_millis(100);
/// Roughly this share of the compliance events is overdue, and this share due within 30 days
/// (the rest are compliant).
const OVERDUE_PERCENT: f64 = 5.0;
const DUE_SOON_PERCENT: f64 = 10.0;
/// Unmeasured calls before each case: the server is warm in production.
const WARM_UP: usize = 10;
/// The page size of both lists in the admin pages.
const PER_PAGE: i64 = 50;
const UNITS_PER_SITE: usize = 20;
const SITES_PER_ESTATE: usize = 20;
const SMALL_ORG_SITES: usize = 10;
const VENDORS: usize = 40;
/// Rows per `unnest` insert.
const BATCH: usize = 10_000;
const THREE_YEARS_SECS: usize = 3 * 365 * 86_400;

fn e<E: std::fmt::Display>(err: E) -> String {
    err.to_string()
}

pub async fn run_with(options: Options, compliance: Compliance) -> Result<(), String> {
    let dir = options.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("proplink-bench-operations-{}", std::process::id()))
    });
    let bins = PgBinaries::discover().map_err(e)?;
    let cluster = Cluster::prepare(bins, &dir, Durability::Durable).map_err(e)?;
    cluster.start().map_err(e)?;
    let result = bench(&cluster, &options, &compliance).await;
    if options.keep {
        println!(
            "\nThe cluster is still running: psql \"{}\"\nStop it with: pg_ctl stop -D {}",
            cluster.url(SUPERUSER, "bench"),
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
fn staff(org: OrgId) -> TenantContext {
    TenantContext {
        org,
        actor: Actor {
            id: Some(Uuid::now_v7()),
            kind: ActorKind::Staff,
            name: Some("Bench Manager".into()),
        },
        channel: Channel::Admin,
        request_id: None,
    }
}

fn loader(org: OrgId) -> TenantContext {
    TenantContext {
        org,
        actor: Actor {
            id: None,
            kind: ActorKind::System,
            name: Some("the bench loader".into()),
        },
        channel: Channel::Platform,
        request_id: None,
    }
}

async fn bench(cluster: &Cluster, o: &Options, c: &Compliance) -> Result<(), String> {
    let db = "bench";
    let mut su = PgConnection::connect(&cluster.url(SUPERUSER, "postgres"))
        .await
        .map_err(e)?;
    setup::ensure_roles(&mut su).await.map_err(e)?;
    exec(
        &mut su,
        &format!("drop database if exists {db} with (force)"),
    )
    .await?;
    setup::ensure_database(&mut su, db).await.map_err(e)?;
    su.close().await.map_err(e)?;
    setup::migrate(&cluster.url(OWNER_ROLE, db))
        .await
        .map_err(e)?;
    let settings = PoolSettings {
        max_connections: 4,
        ..PoolSettings::default()
    };
    let platform = PlatformPool::new(&cluster.url(PLATFORM_ROLE, db), &settings).map_err(e)?;
    let app = AppPool::new(&cluster.url(APP_ROLE, db), &settings).map_err(e)?;
    let now = OffsetDateTime::now_utc();

    // The portfolios go in through the server role with every trigger on (audit, search index,
    // unit list keys): a few thousand rows, as an import would write them.
    println!(
        "Loading portfolios: 1 large organisation ({} sites × {UNITS_PER_SITE} units), {} small \
         ones ({SMALL_ORG_SITES} sites each) and 1 for the compliance dashboard ({} sites) …",
        o.sites, o.orgs, c.sites
    );
    let started = Instant::now();
    let mut rng = Rng(0x0b5e_55ed_1550_00e5);
    let big = organisation::create(
        &platform,
        &OrgSlug::parse("large").map_err(e)?,
        "Large Estates",
    )
    .await
    .map_err(e)?;
    let big_portfolio = load_portfolio(&app, big.id, "LG", o.sites, &mut rng).await?;
    let mut small = Vec::with_capacity(o.orgs);
    for i in 0..o.orgs {
        let org = organisation::create(
            &platform,
            &OrgSlug::parse(&format!("small{i}")).map_err(e)?,
            &format!("Small Agency {i}"),
        )
        .await
        .map_err(e)?;
        let portfolio =
            load_portfolio(&app, org.id, &format!("S{i}"), SMALL_ORG_SITES, &mut rng).await?;
        small.push((org.id, portfolio));
    }
    let compliance_org = organisation::create(
        &platform,
        &OrgSlug::parse("compliance").map_err(e)?,
        "Compliance Housing",
    )
    .await
    .map_err(e)?;
    let compliance_portfolio =
        load_portfolio(&app, compliance_org.id, "CP", c.sites.max(1), &mut rng).await?;
    let portfolio_rows: usize = [&big_portfolio, &compliance_portfolio]
        .into_iter()
        .chain(small.iter().map(|(_, p)| p))
        .map(Portfolio::rows)
        .sum();
    println!(
        "  {portfolio_rows} rows (estates, sites, buildings, units, spaces, vendors) in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Bench data only: issues, work orders and maintenance events go in as the owner with the
    // tables' user triggers (the audit trail) switched off for the load, hundreds of thousands
    // of rows in seconds.
    // No real path does this: every write the application makes is audited. Row-level security
    // still applies (the owner is subject to it: FORCE) and foreign keys are still checked (they
    // are system triggers, which `disable trigger user` leaves on).
    let mut owner = PgConnection::connect(&cluster.url(OWNER_ROLE, db))
        .await
        .map_err(e)?;
    let today = now.date();
    exec(
        &mut owner,
        "alter table issue disable trigger user; alter table work_order disable trigger user;
         alter table maintenance_event disable trigger user",
    )
    .await?;
    let loaded = load_operations(&mut owner, o, &big, &big_portfolio, &small, &mut rng, now).await;
    // After a failed load, only switch the triggers back on.
    let events = if loaded.is_ok() {
        load_events(
            &mut owner,
            compliance_org.id,
            &compliance_portfolio,
            c.events,
            &mut rng,
            today,
        )
        .await
    } else {
        Ok(EventMix::default())
    };
    exec(
        &mut owner,
        "alter table issue enable trigger user; alter table work_order enable trigger user;
         alter table maintenance_event enable trigger user",
    )
    .await?;
    owner.close().await.map_err(e)?;
    let shape = loaded?;
    let events = events?;

    let started = Instant::now();
    let mut su = PgConnection::connect(&cluster.url(SUPERUSER, db))
        .await
        .map_err(e)?;
    exec(&mut su, "vacuum analyze").await?;
    su.close().await.map_err(e)?;
    println!(
        "  vacuum analyze              {:>6.1} s",
        started.elapsed().as_secs_f64()
    );
    println!(
        "\nThe large organisation: {} issues ({} open: {:.1} %, {} urgent and open), {} work orders \
         ({} open: {:.1} %), created over three years.",
        shape.issues,
        shape.open_issues,
        percent(shape.open_issues, shape.issues),
        shape.urgent_open_issues,
        shape.work_orders,
        shape.open_work_orders,
        percent(shape.open_work_orders, shape.work_orders),
    );

    measure(&app, o, &big, &big_portfolio, &small).await?;
    measure_compliance(
        &app,
        o.samples,
        compliance_org.id,
        &compliance_portfolio,
        &events,
        today,
    )
    .await?;
    app.close().await;
    platform.close().await;
    Ok(())
}

fn percent(part: usize, whole: usize) -> f64 {
    100.0 * part as f64 / whole.max(1) as f64
}

// ---------------------------------------------------------------------------------------------
// Measuring

enum List {
    Issues(IssueQuery),
    WorkOrders(WorkOrderQuery),
}

/// The i-th call of a measured case: which organisation, and what it asks.
type CallMaker = Box<dyn Fn(usize) -> (OrgId, List)>;

struct Case {
    label: &'static str,
    scope: SiteScope,
    make: CallMaker,
}

/// One list call as a request makes it: open a tenant transaction, read, end it.
async fn call(app: &AppPool, scope: &SiteScope, org: OrgId, list: &List) -> Result<Shape, String> {
    let mut tx = app.begin(&staff(org)).await.map_err(e)?;
    let shape = match list {
        List::Issues(query) => {
            let page = operations::list_issues(&mut tx, scope, query)
                .await
                .map_err(e)?;
            Shape::of(page.rows.len(), page.total, page.capped)
        }
        List::WorkOrders(query) => {
            let page = operations::list_work_orders(&mut tx, scope, query)
                .await
                .map_err(e)?;
            Shape::of(page.rows.len(), page.total, page.capped)
        }
    };
    tx.end_reading();
    Ok(shape)
}

/// What a call returned: rows on the page, and the (capped) count.
#[derive(Default, Clone, Copy)]
struct Shape {
    rows: usize,
    total: i64,
    capped: bool,
}

impl Shape {
    fn of(rows: usize, total: i64, capped: bool) -> Self {
        Self {
            rows,
            total,
            capped,
        }
    }
}

async fn measure(
    app: &AppPool,
    o: &Options,
    big: &organisation::Organisation,
    portfolio: &Portfolio,
    small: &[(OrgId, Portfolio)],
) -> Result<(), String> {
    let big_id = big.id;
    let site_ids: Vec<Uuid> = portfolio.sites.iter().map(|s| s.id).collect();
    // Ten sites spread over busy and quiet ones (the generator makes low-numbered sites busier).
    let scoped = SiteScope {
        all: false,
        sites: site_ids
            .iter()
            .step_by((site_ids.len() / 10).max(1))
            .take(10)
            .copied()
            .collect(),
        estates: vec![],
    };
    let small_ids: Vec<OrgId> = small.iter().map(|(id, _)| *id).collect();
    let issue = |status: &str, page: i64| IssueQuery {
        status: status.into(),
        page,
        per_page: PER_PAGE,
        ..IssueQuery::default()
    };
    let work_order = |status: &str, page: i64| WorkOrderQuery {
        status: status.into(),
        page,
        per_page: PER_PAGE,
        ..WorkOrderQuery::default()
    };
    let random_page = |i: usize| 1 + (i * 37 % 200) as i64;
    let cases: Vec<Case> = vec![
        Case {
            label: "(1) issues: open (default), first page",
            scope: SiteScope::everything(),
            make: Box::new(move |_| (big_id, List::Issues(issue("", 1)))),
        },
        Case {
            label: "(2) issues: all states, random page 1–200",
            scope: SiteScope::everything(),
            make: Box::new(move |i| (big_id, List::Issues(issue("all", random_page(i))))),
        },
        Case {
            label: "(3) issues: one site, open",
            scope: SiteScope::everything(),
            make: Box::new({
                let ids = site_ids.clone();
                move |i| {
                    let mut q = issue("", 1);
                    q.site = ids.get(i * 7 % ids.len().max(1)).copied();
                    (big_id, List::Issues(q))
                }
            }),
        },
        Case {
            label: "(4) issues: open, urgent, one category",
            scope: SiteScope::everything(),
            make: Box::new(move |i| {
                let mut q = issue("", 1);
                q.priority = Some("urgent".into());
                q.category = Some(CATEGORIES[i % CATEGORIES.len()].0.into());
                (big_id, List::Issues(q))
            }),
        },
        Case {
            label: "(5) work orders: open (default), first page",
            scope: SiteScope::everything(),
            make: Box::new(move |_| (big_id, List::WorkOrders(work_order("", 1)))),
        },
        Case {
            label: "(6) work orders: all, random page 1–200",
            scope: SiteScope::everything(),
            make: Box::new(move |i| (big_id, List::WorkOrders(work_order("all", random_page(i))))),
        },
        Case {
            label: "(7) work orders: one site, open",
            scope: SiteScope::everything(),
            make: Box::new({
                let ids = site_ids.clone();
                move |i| {
                    let mut q = work_order("", 1);
                    q.site = ids.get(i * 7 % ids.len().max(1)).copied();
                    (big_id, List::WorkOrders(q))
                }
            }),
        },
        Case {
            label: "(8) issues: member on 10 sites, open",
            scope: scoped.clone(),
            make: Box::new(move |_| (big_id, List::Issues(issue("", 1)))),
        },
        Case {
            label: "(8) issues: member on 10 sites, all, page 1–3",
            scope: scoped.clone(),
            make: Box::new(move |i| (big_id, List::Issues(issue("all", 1 + (i % 3) as i64)))),
        },
        Case {
            label: "(8) work orders: member on 10 sites, open",
            scope: scoped.clone(),
            make: Box::new(move |_| (big_id, List::WorkOrders(work_order("", 1)))),
        },
        Case {
            label: "(8) work orders: member on 10 sites, all, p1–3",
            scope: scoped,
            make: Box::new(move |i| {
                (
                    big_id,
                    List::WorkOrders(work_order("all", 1 + (i % 3) as i64)),
                )
            }),
        },
        Case {
            label: "small organisations: issues, open",
            scope: SiteScope::everything(),
            make: Box::new({
                let ids = small_ids.clone();
                move |i| (ids[i % ids.len()], List::Issues(issue("", 1)))
            }),
        },
        Case {
            label: "small organisations: work orders, open",
            scope: SiteScope::everything(),
            make: Box::new({
                let ids = small_ids;
                move |i| (ids[i % ids.len()], List::WorkOrders(work_order("", 1)))
            }),
        },
    ];

    println!(
        "\nList pages ({PER_PAGE} rows and the count, capped at {}): one tenant transaction per call \
         as the server role; {WARM_UP} warm-up calls, then {} measured, per case. Target: p99 < {} ms.",
        operations::COUNT_CAP,
        o.samples,
        TARGET_P99.as_millis()
    );
    let mut met = 0;
    let mut measured = 0;
    for case in &cases {
        if case.label.starts_with("small") && small.is_empty() {
            continue;
        }
        for i in 0..WARM_UP {
            let (org, list) = (case.make)(i);
            call(app, &case.scope, org, &list).await?;
        }
        let mut times = Vec::with_capacity(o.samples);
        let mut rows = 0;
        let mut first = Shape::default();
        for i in 0..o.samples {
            let (org, list) = (case.make)(i);
            let t = Instant::now();
            let shape = call(app, &case.scope, org, &list).await?;
            times.push(t.elapsed());
            rows += shape.rows;
            if i == 0 {
                first = shape;
            }
        }
        let total = if first.capped {
            format!("{}+", first.total)
        } else {
            first.total.to_string()
        };
        let ok = report(
            case.label,
            &format!(
                "{:>4.1} rows, total {total}",
                rows as f64 / o.samples as f64
            ),
            times,
            TARGET_P99,
        );
        measured += 1;
        met += usize::from(ok);
    }
    println!("\n{met} of {measured} cases met the target.");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The compliance dashboard

/// The i-th call of a compliance case: the one site it asks for, if any.
type SiteMaker = Box<dyn Fn(usize) -> Option<Uuid>>;

/// One matrix call as the dashboard makes it: open a tenant transaction, read, end it.
async fn matrix_call(
    app: &AppPool,
    org: OrgId,
    scope: &SiteScope,
    site: Option<Uuid>,
    today: Date,
) -> Result<maintenance::Matrix, String> {
    let mut tx = app.begin(&staff(org)).await.map_err(e)?;
    let matrix = maintenance::compliance_matrix(&mut tx, scope, site, today)
        .await
        .map_err(e)?;
    tx.end_reading();
    Ok(matrix)
}

async fn measure_compliance(
    app: &AppPool,
    samples: usize,
    org: OrgId,
    portfolio: &Portfolio,
    mix: &EventMix,
    today: Date,
) -> Result<(), String> {
    let site_ids: Vec<Uuid> = portfolio.sites.iter().map(|s| s.id).collect();
    let scoped = SiteScope {
        all: false,
        sites: site_ids
            .iter()
            .step_by((site_ids.len() / 10).max(1))
            .take(10)
            .copied()
            .collect(),
        estates: vec![],
    };
    let cases: Vec<(&str, SiteScope, SiteMaker)> = vec![
        (
            "(C1) compliance: whole portfolio (all sites)",
            SiteScope::everything(),
            Box::new(|_| None),
        ),
        (
            "(C2) compliance: one site",
            SiteScope::everything(),
            Box::new({
                let ids = site_ids.clone();
                move |i| ids.get(i * 7 % ids.len().max(1)).copied()
            }),
        ),
        (
            "(C3) compliance: member on 10 sites",
            scoped,
            Box::new(|_| None),
        ),
    ];
    println!(
        "\nThe compliance dashboard (org {}): {} sites, {} compliance events over {} obligations: {} \
         overdue ({:.1} %), {} due within 30 days ({:.1} %), {} compliant.",
        org.0,
        site_ids.len(),
        mix.events,
        mix.obligations,
        mix.overdue,
        percent(mix.overdue, mix.events),
        mix.due_soon,
        percent(mix.due_soon, mix.events),
        mix.compliant,
    );
    println!(
        "compliance_matrix (the repository call; the page also renders up to 200 of its rows): one \
         tenant transaction per call as the server role; {WARM_UP} warm-up calls, then {samples} \
         measured, per case. Target: p99 < {} ms.",
        COMPLIANCE_TARGET_P99.as_millis()
    );
    let mut met = 0;
    for (label, scope, site) in &cases {
        for i in 0..WARM_UP {
            matrix_call(app, org, scope, site(i), today).await?;
        }
        let mut times = Vec::with_capacity(samples);
        let mut first = None;
        for i in 0..samples {
            let t = Instant::now();
            let matrix = matrix_call(app, org, scope, site(i), today).await?;
            times.push(t.elapsed());
            first.get_or_insert(matrix);
        }
        let detail = first.map_or_else(String::new, |m| {
            format!(
                "{}×{} cells, {} ev",
                m.rows.len(),
                m.columns.len(),
                m.overdue + m.due_soon + m.compliant
            )
        });
        met += usize::from(report(label, &detail, times, COMPLIANCE_TARGET_P99));
    }
    println!(
        "\n{met} of {} compliance cases met the target.",
        cases.len()
    );
    Ok(())
}

/// Prints one case's percentiles and whether its p99 met the target.
fn report(label: &str, detail: &str, mut times: Vec<Duration>, target: Duration) -> bool {
    times.sort();
    let at = |p: f64| {
        let i = ((times.len() as f64 - 1.0) * p).round() as usize;
        times.get(i).copied().unwrap_or_default()
    };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let ok = at(0.99) < target;
    println!(
        "  {label:<48} {detail:<26} p50 {:>6.2}   p95 {:>6.2}   p99 {:>6.2}   max {:>6.2} ms   {}",
        ms(at(0.5)),
        ms(at(0.95)),
        ms(at(0.99)),
        ms(at(1.0)),
        if ok { "met" } else { "MISSED" }
    );
    ok
}

// ---------------------------------------------------------------------------------------------
// Portfolios

/// A small deterministic generator (xorshift), so every run loads the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Uniform in [0, 1).
    fn fraction(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, percent: f64) -> bool {
        self.fraction() * 100.0 < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// One of `items`, in proportion to its weight.
    fn weighted_by<'a, T>(&mut self, items: &'a [T], weight: impl Fn(&T) -> u32) -> &'a T {
        let total: u32 = items.iter().map(&weight).sum();
        let mut at = self.below(total as usize) as u32;
        for item in items {
            if at < weight(item) {
                return item;
            }
            at -= weight(item);
        }
        &items[items.len() - 1]
    }

    fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        self.weighted_by(items, |item| item.1).0
    }

    /// Between `low` and `high` seconds later, but never after `now`.
    fn later(
        &mut self,
        from: OffsetDateTime,
        low: usize,
        high: usize,
        now: OffsetDateTime,
    ) -> OffsetDateTime {
        let secs = low + self.below(high.saturating_sub(low).max(1));
        (from + time::Duration::seconds(secs as i64)).min(now)
    }
}

const FIRST: &[&str] = &[
    "Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Noah", "Mia", "Jack", "Ivy", "Leo",
    "Freya", "Priya", "Ravi", "Aisha", "Tomasz", "Zofia", "Chidi", "Ngozi", "Wei", "Siobhan",
    "Callum", "Rhys", "Cerys", "Daniel", "Hannah", "Ahmed", "Fatima",
];
const LAST: &[&str] = &[
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall",
    "Khan", "Okafor", "Nowak", "Chen", "Hughes", "Begum", "Kowalski",
];
const TOWNS: &[(&str, &str)] = &[
    ("Leeds", "LS"),
    ("Bristol", "BS"),
    ("Manchester", "M"),
    ("Birmingham", "B"),
    ("Nottingham", "NG"),
    ("Cardiff", "CF"),
    ("London", "SE"),
    ("London", "N"),
    ("Reading", "RG"),
    ("Norwich", "NR"),
];
const STREETS: &[&str] = &[
    "High Street",
    "Station Road",
    "Church Lane",
    "Park Avenue",
    "Mill Lane",
    "Victoria Street",
    "Green Lane",
    "Manor Road",
    "King Street",
];
/// Communal spaces of every site: (name, kind, in block A?).
const SPACES: &[(&str, &str, bool)] = &[
    ("Bin store", "bin_store", false),
    ("Stairwell A", "stairwell", true),
    ("Roof", "roof", true),
    ("Car park", "car_park", false),
    ("Garden", "garden", false),
];

struct Site {
    id: Uuid,
    /// (unit, its building)
    units: Vec<(Uuid, Uuid)>,
    /// (space, its building)
    spaces: Vec<(Uuid, Option<Uuid>)>,
    buildings: Vec<Uuid>,
}

struct Portfolio {
    estates: usize,
    sites: Vec<Site>,
    vendors: Vec<Uuid>,
}

impl Portfolio {
    fn rows(&self) -> usize {
        self.estates
            + self.vendors.len()
            + self
                .sites
                .iter()
                .map(|s| 1 + s.units.len() + s.spaces.len() + s.buildings.len())
                .sum::<usize>()
    }

    /// A site, the busiest most often: a few large estates raise most of the work.
    fn busy_site(&self, rng: &mut Rng) -> &Site {
        let i = (rng.fraction().powf(1.6) * self.sites.len() as f64) as usize;
        &self.sites[i.min(self.sites.len() - 1)]
    }
}

/// Where on a site something was seen: (building, unit, space).
fn place(site: &Site, rng: &mut Rng) -> (Option<Uuid>, Option<Uuid>, Option<Uuid>) {
    match rng.below(100) {
        0..55 => {
            let (unit, building) = rng.pick(&site.units);
            (Some(building), Some(unit), None)
        }
        55..85 => {
            let (space, building) = rng.pick(&site.spaces);
            (building, None, Some(space))
        }
        85..92 => (Some(rng.pick(&site.buildings)), None, None),
        _ => (None, None, None),
    }
}

/// Estates, sites (two blocks of flats and five communal spaces each) and vendors, written
/// through the server role with every trigger on, in one transaction.
async fn load_portfolio(
    app: &AppPool,
    org: OrgId,
    tag: &str,
    sites: usize,
    rng: &mut Rng,
) -> Result<Portfolio, String> {
    let mut tx = app.begin(&loader(org)).await.map_err(e)?;
    let o = org.0;

    let estates: Vec<Uuid> = (0..sites.div_ceil(SITES_PER_ESTATE))
        .map(|_| Uuid::now_v7())
        .collect();
    let estate_refs: Vec<String> = (0..estates.len())
        .map(|i| format!("{tag}-E{:03}", i + 1))
        .collect();
    let estate_names: Vec<String> = (0..estates.len())
        .map(|_| format!("{} Estate", rng.pick(LAST)))
        .collect();
    sqlx::query(
        "insert into estate (organisation_id, id, reference, name)
         select $1, x.* from unnest($2::uuid[], $3::text[], $4::text[]) as x",
    )
    .bind(o)
    .bind(&estates)
    .bind(&estate_refs)
    .bind(&estate_names)
    .execute(tx.conn())
    .await
    .map_err(e)?;

    let mut portfolio = Portfolio {
        estates: estates.len(),
        sites: Vec::with_capacity(sites),
        vendors: Vec::new(),
    };
    let mut site_cols = SiteColumns::default();
    let mut buildings = BuildingColumns::default();
    let mut units = UnitColumns::default();
    let mut spaces = SpaceColumns::default();
    for s in 0..sites {
        let site = Uuid::now_v7();
        let (city, area) = rng.pick(TOWNS);
        let letters = b"ABDEFGHJLNPQRSTUWXYZ";
        site_cols.id.push(site);
        // One site in ten stands alone, outside any estate.
        site_cols
            .estate
            .push((s % 10 != 9).then(|| estates[s / SITES_PER_ESTATE]));
        site_cols.reference.push(format!("{tag}-{:05}", s + 1));
        site_cols.name.push(format!(
            "{} {}",
            rng.pick(LAST),
            rng.pick(&["House", "Court", "Place"])
        ));
        site_cols
            .street
            .push(format!("{} {}", 1 + rng.below(200), rng.pick(STREETS)));
        site_cols.city.push(city.to_owned());
        site_cols.postcode.push(format!(
            "{area}{} {}{}{}",
            1 + rng.below(20),
            rng.below(10),
            rng.pick(&letters[..]) as char,
            rng.pick(&letters[..]) as char
        ));
        let blocks = [Uuid::now_v7(), Uuid::now_v7()];
        for (b, block) in ["A", "B"].iter().enumerate() {
            buildings.id.push(blocks[b]);
            buildings.site.push(site);
            buildings.reference.push((*block).to_owned());
            buildings.name.push(format!("Block {block}"));
        }
        let mut here = Site {
            id: site,
            units: Vec::with_capacity(UNITS_PER_SITE),
            spaces: Vec::with_capacity(SPACES.len()),
            buildings: blocks.to_vec(),
        };
        for n in 0..UNITS_PER_SITE {
            let b = n % 2;
            let block = ["A", "B"][b];
            let unit = Uuid::now_v7();
            units.id.push(unit);
            units.site.push(site);
            units.building.push(blocks[b]);
            units.reference.push(format!("{block}-{}", n / 2 + 1));
            units.name.push(format!("Flat {block}{}", n / 2 + 1));
            units.area.push(3_800 + rng.below(6_000) as i64 * 100);
            here.units.push((unit, blocks[b]));
        }
        for (name, kind, in_block) in SPACES {
            let space = Uuid::now_v7();
            let building = in_block.then_some(blocks[0]);
            spaces.id.push(space);
            spaces.site.push(site);
            spaces.building.push(building);
            spaces.name.push((*name).to_owned());
            spaces.kind.push((*kind).to_owned());
            here.spaces.push((space, building));
        }
        portfolio.sites.push(here);
    }
    sqlx::query(
        "insert into site (organisation_id, id, estate_id, reference, name, address_line_1, city,
                           postcode, modules)
         select $1, x.*, '{bm,fm}' from unnest($2::uuid[], $3::uuid[], $4::text[], $5::text[],
                                             $6::text[], $7::text[], $8::text[]) as x",
    )
    .bind(o)
    .bind(&site_cols.id)
    .bind(&site_cols.estate)
    .bind(&site_cols.reference)
    .bind(&site_cols.name)
    .bind(&site_cols.street)
    .bind(&site_cols.city)
    .bind(&site_cols.postcode)
    .execute(tx.conn())
    .await
    .map_err(e)?;
    sqlx::query(
        "insert into building (organisation_id, id, site_id, reference, name, storeys,
                               residential_units, build_year, construction_type)
         select $1, x.*, 5, 10, 1975, 'masonry' from unnest($2::uuid[], $3::uuid[], $4::text[],
                                                             $5::text[]) as x",
    )
    .bind(o)
    .bind(&buildings.id)
    .bind(&buildings.site)
    .bind(&buildings.reference)
    .bind(&buildings.name)
    .execute(tx.conn())
    .await
    .map_err(e)?;
    for (from, to) in batches(units.id.len()) {
        sqlx::query(
            "insert into unit (organisation_id, id, site_id, building_id, reference, name, area_cm2)
             select $1, x.* from unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[],
                                        $7::int8[]) as x",
        )
        .bind(o)
        .bind(&units.id[from..to])
        .bind(&units.site[from..to])
        .bind(&units.building[from..to])
        .bind(&units.reference[from..to])
        .bind(&units.name[from..to])
        .bind(&units.area[from..to])
        .execute(tx.conn())
        .await
        .map_err(e)?;
    }
    sqlx::query(
        "insert into space (organisation_id, id, site_id, building_id, name, kind)
         select $1, x.* from unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[]) as x",
    )
    .bind(o)
    .bind(&spaces.id)
    .bind(&spaces.site)
    .bind(&spaces.building)
    .bind(&spaces.name)
    .bind(&spaces.kind)
    .execute(tx.conn())
    .await
    .map_err(e)?;

    let vendor_ids: Vec<Uuid> = (0..VENDORS).map(|_| Uuid::now_v7()).collect();
    // 25 surnames against 13 trades: the pairs are distinct for the first 325 vendors.
    let vendor_names: Vec<String> = (0..VENDORS)
        .map(|i| {
            format!(
                "{} {} Ltd",
                LAST[i % LAST.len()],
                TRADES[i % TRADES.len()].2
            )
        })
        .collect();
    let vendor_trades: Vec<&str> = (0..VENDORS).map(|i| TRADES[i % TRADES.len()].0).collect();
    let vendor_emails: Vec<String> = (0..VENDORS)
        .map(|i| format!("office{}@{}-contractor.example", i + 1, tag.to_lowercase()))
        .collect();
    sqlx::query(
        "insert into vendor (organisation_id, id, name, trade, email)
         select $1, x.* from unnest($2::uuid[], $3::text[], $4::text[], $5::text[]) as x",
    )
    .bind(o)
    .bind(&vendor_ids)
    .bind(&vendor_names)
    .bind(&vendor_trades)
    .bind(&vendor_emails)
    .execute(tx.conn())
    .await
    .map_err(e)?;
    portfolio.vendors = vendor_ids;
    tx.commit().await.map_err(e)?;
    Ok(portfolio)
}

#[derive(Default)]
struct SiteColumns {
    id: Vec<Uuid>,
    estate: Vec<Option<Uuid>>,
    reference: Vec<String>,
    name: Vec<String>,
    street: Vec<String>,
    city: Vec<String>,
    postcode: Vec<String>,
}

#[derive(Default)]
struct BuildingColumns {
    id: Vec<Uuid>,
    site: Vec<Uuid>,
    reference: Vec<String>,
    name: Vec<String>,
}

#[derive(Default)]
struct UnitColumns {
    id: Vec<Uuid>,
    site: Vec<Uuid>,
    building: Vec<Uuid>,
    reference: Vec<String>,
    name: Vec<String>,
    area: Vec<i64>,
}

#[derive(Default)]
struct SpaceColumns {
    id: Vec<Uuid>,
    site: Vec<Uuid>,
    building: Vec<Option<Uuid>>,
    name: Vec<String>,
    kind: Vec<String>,
}

/// `[from, to)` ranges of at most BATCH rows.
fn batches(len: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..len)
        .step_by(BATCH)
        .map(move |from| (from, (from + BATCH).min(len)))
}

// ---------------------------------------------------------------------------------------------
// Issues and work orders

/// (key, weight, titles)
const CATEGORIES: &[(&str, u32, &[&str])] = &[
    (
        "water_leak",
        18,
        &[
            "Water coming through the ceiling",
            "Leak from the communal pipework",
            "Damp patch spreading on the wall",
            "Overflow pipe dripping",
        ],
    ),
    (
        "lighting",
        14,
        &[
            "Corridor light out",
            "Emergency lighting fault",
            "External lamp not working",
            "Stairwell light flickering",
        ],
    ),
    (
        "fire_safety",
        6,
        &[
            "Fire door not closing",
            "Smoke detector chirping",
            "Fire extinguisher missing",
            "Fire exit blocked",
        ],
    ),
    (
        "security",
        8,
        &[
            "Entrance door not locking",
            "Intercom not working",
            "Ground-floor window broken",
            "Car park gate left open",
        ],
    ),
    (
        "cleanliness",
        14,
        &[
            "Bins overflowing",
            "Rubbish dumped in the bin store",
            "Graffiti by the entrance",
            "Stairs not cleaned this week",
        ],
    ),
    (
        "lift",
        6,
        &[
            "Lift out of service",
            "Lift doors sticking",
            "Lift alarm sounding",
        ],
    ),
    (
        "heating",
        10,
        &[
            "No heating",
            "No hot water",
            "Radiator cold",
            "Boiler showing a fault code",
        ],
    ),
    (
        "structural",
        4,
        &[
            "Crack in the wall",
            "Loose roof tiles",
            "Balcony railing loose",
            "Render coming away",
        ],
    ),
    (
        "pests",
        6,
        &[
            "Mice seen in the kitchen",
            "Pigeons nesting on the roof",
            "Wasps' nest by the entrance",
            "Rats in the bin store",
        ],
    ),
    (
        "other",
        14,
        &[
            "Noise from the plant room",
            "Abandoned bicycle",
            "Letterbox damaged",
            "Parking bay blocked",
        ],
    ),
];
const PRIORITIES: &[(&str, u32)] = &[("low", 25), ("medium", 45), ("high", 22), ("urgent", 8)];
const OPEN_ISSUE: &[(&str, u32)] = &[
    ("open", 35),
    ("triaged", 25),
    ("in_progress", 30),
    ("reopened", 10),
];
/// (reporter kind, weight, channels it reports through)
const REPORTERS: &[(&str, u32, &[&str])] = &[
    (
        "resident",
        50,
        &["residenceport", "residenceport", "phone", "email"],
    ),
    ("staff", 25, &["admin", "admin", "phone"]),
    ("site_manager", 15, &["facility_report", "admin"]),
    ("contractor", 10, &["contractorport", "email"]),
];
/// (key, weight, a word for vendors' names, titles)
const TRADES: &[(&str, u32, &str, &[&str])] = &[
    (
        "plumbing",
        16,
        "Plumbing",
        &["Repair leak", "Unblock drain", "Replace stopcock"],
    ),
    (
        "electrical",
        14,
        "Electrical",
        &["Replace light fittings", "Repair door entry system"],
    ),
    (
        "heating_gas",
        8,
        "Heating",
        &["Boiler service", "Repair communal boiler"],
    ),
    (
        "roofing",
        5,
        "Roofing",
        &["Replace slipped tiles", "Clear gutters"],
    ),
    (
        "fire_safety",
        8,
        "Fire Protection",
        &["Fire door repairs", "Fire alarm service"],
    ),
    (
        "lifts",
        5,
        "Lifts",
        &["Lift repair", "Lift LOLER inspection"],
    ),
    (
        "cleaning",
        10,
        "Cleaning",
        &["Deep clean of communal areas", "Clear fly-tipping"],
    ),
    (
        "gardening",
        6,
        "Grounds",
        &["Grounds maintenance", "Tree works"],
    ),
    (
        "pest_control",
        5,
        "Pest Control",
        &["Rodent treatment", "Bird proofing"],
    ),
    (
        "locksmiths",
        4,
        "Locksmiths",
        &["Replace entrance lock", "Cut keys and fobs"],
    ),
    (
        "general_repairs",
        12,
        "Maintenance",
        &["Repair fence", "Replace letterbox", "Patch plaster"],
    ),
    (
        "decoration",
        4,
        "Decorators",
        &["Redecorate stairwell", "Paint railings"],
    ),
    (
        "building_work",
        3,
        "Builders",
        &["Repoint brickwork", "Repair render", "Balcony repairs"],
    ),
];
const OPEN_WORK_ORDER: &[(&str, u32)] = &[
    ("draft", 8),
    ("invited", 20),
    ("quoted", 15),
    ("declined", 2),
    ("approved", 15),
    ("in_progress", 20),
    ("completed", 12),
    ("invoiced", 8),
];
const COST_CODES: &[&str] = &[
    "RM-01", "FIRE-02", "LIFT-03", "CLEAN-04", "GRDN-05", "ME-06",
];
const ACCESS_NOTES: &[&str] = &[
    "Keys with the concierge",
    "Call the resident an hour before",
    "Fob in the key safe, code from the office",
    "Weekdays 9 to 5 only",
];

/// How likely something this old is still open, in percent: most of three years' work is done.
fn open_chance(age_secs: usize) -> f64 {
    match age_secs / 86_400 {
        0..30 => 70.0,
        30..180 => 25.0,
        _ => 8.0,
    }
}

/// A UUIDv7 of the moment the record was made, as the application would have drawn it.
fn id_at(at: OffsetDateTime) -> Uuid {
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        u64::try_from(at.unix_timestamp()).unwrap_or(0),
        at.nanosecond(),
    );
    Uuid::new_v7(ts)
}

fn person(rng: &mut Rng) -> (String, String) {
    let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
    (
        format!("{first} {last}"),
        format!(
            "{}.{}@example.com",
            first.to_lowercase(),
            last.to_lowercase()
        ),
    )
}

/// The yearly references (`ISS-2025-0042`) of rows in order of creation, and each year's last
/// number, for the reference counter.
fn references(
    prefix: &str,
    created: impl Iterator<Item = OffsetDateTime>,
) -> (Vec<String>, BTreeMap<i32, i32>) {
    let mut last: BTreeMap<i32, i32> = BTreeMap::new();
    let refs = created
        .map(|at| {
            let n = last.entry(at.year()).or_insert(0);
            *n += 1;
            format!("{prefix}-{}-{:04}", at.year(), n)
        })
        .collect();
    (refs, last)
}

#[derive(Default)]
struct Issues {
    id: Vec<Uuid>,
    site: Vec<Uuid>,
    building: Vec<Option<Uuid>>,
    unit: Vec<Option<Uuid>>,
    space: Vec<Option<Uuid>>,
    title: Vec<&'static str>,
    description: Vec<Option<String>>,
    category: Vec<&'static str>,
    priority: Vec<&'static str>,
    status: Vec<&'static str>,
    closed_reason: Vec<Option<&'static str>>,
    reporter_kind: Vec<&'static str>,
    reporter_name: Vec<String>,
    reporter_email: Vec<Option<String>>,
    channel: Vec<&'static str>,
    created_at: Vec<OffsetDateTime>,
    updated_at: Vec<OffsetDateTime>,
    resolved_at: Vec<Option<OffsetDateTime>>,
    closed_at: Vec<Option<OffsetDateTime>>,
}

/// `n` issues over the last three years, oldest first.
fn issues(portfolio: &Portfolio, n: usize, rng: &mut Rng, now: OffsetDateTime) -> Issues {
    let mut ages: Vec<usize> = (0..n).map(|_| rng.below(THREE_YEARS_SECS)).collect();
    ages.sort_unstable_by(|a, b| b.cmp(a));
    let mut out = Issues::default();
    for age in ages {
        let created = now - time::Duration::seconds(age as i64);
        let site = portfolio.busy_site(rng);
        let (building, unit, space) = place(site, rng);
        let &(category, _, titles) = rng.weighted_by(CATEGORIES, |c| c.1);
        let title = rng.pick(titles);
        let &(kind, _, channels) = rng.weighted_by(REPORTERS, |r| r.1);
        let (name, email) = person(rng);
        let mut updated = created;
        let (mut resolved, mut closed, mut reason) = (None, None, None);
        let status = if rng.chance(open_chance(age)) {
            let status = rng.weighted(OPEN_ISSUE);
            if status != "open" {
                updated = rng.later(created, 600, 5 * 86_400, now);
            }
            status
        } else if rng.chance(85.0) {
            let at = rng.later(created, 3_600, 30 * 86_400, now);
            (resolved, updated) = (Some(at), at);
            "resolved"
        } else {
            let at = rng.later(created, 600, 3 * 86_400, now);
            (closed, updated) = (Some(at), at);
            reason = Some(if rng.chance(60.0) {
                "duplicate"
            } else {
                "not_actionable"
            });
            "closed"
        };
        out.id.push(id_at(created));
        out.site.push(site.id);
        out.building.push(building);
        out.unit.push(unit);
        out.space.push(space);
        out.title.push(title);
        out.description.push(rng.chance(70.0).then(|| {
            format!("{title}. Reported by {name}; first noticed a few days ago, getting worse.")
        }));
        out.category.push(category);
        out.priority.push(rng.weighted(PRIORITIES));
        out.status.push(status);
        out.closed_reason.push(reason);
        out.reporter_kind.push(kind);
        out.reporter_email
            .push((kind == "resident" || rng.chance(40.0)).then_some(email));
        out.reporter_name.push(name);
        out.channel.push(rng.pick(channels));
        out.created_at.push(created);
        out.updated_at.push(updated);
        out.resolved_at.push(resolved);
        out.closed_at.push(closed);
    }
    out
}

#[derive(Default)]
struct WorkOrders {
    id: Vec<Uuid>,
    site: Vec<Uuid>,
    building: Vec<Option<Uuid>>,
    unit: Vec<Option<Uuid>>,
    space: Vec<Option<Uuid>>,
    title: Vec<&'static str>,
    scope: Vec<String>,
    trade: Vec<&'static str>,
    priority: Vec<&'static str>,
    cost_code: Vec<Option<&'static str>>,
    not_to_exceed: Vec<Option<i64>>,
    target_start: Vec<Option<Date>>,
    target_completion: Vec<Option<Date>>,
    access_notes: Vec<Option<&'static str>>,
    manager_name: Vec<String>,
    manager_email: Vec<Option<String>>,
    status: Vec<&'static str>,
    vendor: Vec<Option<Uuid>>,
    approved_pence: Vec<Option<i64>>,
    final_cost_pence: Vec<Option<i64>>,
    rating: Vec<Option<i16>>,
    rating_note: Vec<Option<&'static str>>,
    cancelled_reason: Vec<Option<&'static str>>,
    created_at: Vec<OffsetDateTime>,
    updated_at: Vec<OffsetDateTime>,
    started_at: Vec<Option<OffsetDateTime>>,
    completed_at: Vec<Option<OffsetDateTime>>,
    closed_at: Vec<Option<OffsetDateTime>>,
}

/// `n` work orders over the last three years, oldest first, raised by a handful of managers.
fn work_orders(portfolio: &Portfolio, n: usize, rng: &mut Rng, now: OffsetDateTime) -> WorkOrders {
    let managers: Vec<(String, String)> = (0..8).map(|_| person(rng)).collect();
    let mut ages: Vec<usize> = (0..n).map(|_| rng.below(THREE_YEARS_SECS)).collect();
    ages.sort_unstable_by(|a, b| b.cmp(a));
    let mut out = WorkOrders::default();
    for age in ages {
        let created = now - time::Duration::seconds(age as i64);
        let site = portfolio.busy_site(rng);
        let (building, unit, space) = place(site, rng);
        let &(trade, _, _, titles) = rng.weighted_by(TRADES, |t| t.1);
        let title = rng.pick(titles);
        let status = if rng.chance(open_chance(age)) {
            rng.weighted(OPEN_WORK_ORDER)
        } else if rng.chance(92.0) {
            "closed"
        } else {
            "cancelled"
        };
        let approved = matches!(
            status,
            "approved" | "in_progress" | "completed" | "invoiced" | "closed"
        );
        let started = matches!(status, "in_progress" | "completed" | "invoiced" | "closed")
            .then(|| rng.later(created, 3 * 86_400, 30 * 86_400, now));
        let completed = match (status, started) {
            ("completed" | "invoiced" | "closed", Some(at)) => {
                Some(rng.later(at, 3_600, 20 * 86_400, now))
            }
            _ => None,
        };
        let closed = match (status, completed) {
            ("closed", Some(at)) => Some(rng.later(at, 7 * 86_400, 40 * 86_400, now)),
            _ => None,
        };
        let cancelled = status == "cancelled";
        let updated = closed.or(completed).or(started).unwrap_or_else(|| {
            if status == "draft" {
                created
            } else {
                rng.later(created, 600, 20 * 86_400, now)
            }
        });
        let approved_pence = approved.then(|| 10_000 + rng.below(490_000) as i64);
        let target_start = rng
            .chance(60.0)
            .then(|| created.date() + time::Duration::days(7 + rng.below(24) as i64));
        let (manager, email) = &managers[rng.below(managers.len())];
        out.id.push(id_at(created));
        out.site.push(site.id);
        out.building.push(building);
        out.unit.push(unit);
        out.space.push(space);
        out.title.push(title);
        out.scope.push(format!(
            "{title}. Attend, assess and carry out the works; photos before and after, and \
             leave the area clean."
        ));
        out.trade.push(trade);
        out.priority.push(rng.weighted(PRIORITIES));
        out.cost_code
            .push(rng.chance(50.0).then(|| rng.pick(COST_CODES)));
        out.not_to_exceed
            .push(rng.chance(40.0).then(|| 50_000 + rng.below(950_000) as i64));
        out.target_completion
            .push(target_start.map(|d| d + time::Duration::days(7 + rng.below(54) as i64)));
        out.target_start.push(target_start);
        out.access_notes
            .push(rng.chance(30.0).then(|| rng.pick(ACCESS_NOTES)));
        out.manager_name.push(manager.clone());
        out.manager_email.push(Some(email.clone()));
        out.status.push(status);
        out.vendor
            .push(approved.then(|| rng.pick(&portfolio.vendors)));
        out.final_cost_pence.push(
            completed
                .and(approved_pence)
                .map(|p| p * (90 + rng.below(21) as i64) / 100),
        );
        out.approved_pence.push(approved_pence);
        out.rating
            .push(closed.map(|_| rng.weighted(&[(5_i16, 45), (4, 35), (3, 12), (2, 5), (1, 3)])));
        out.rating_note.push(
            closed
                .filter(|_| rng.chance(20.0))
                .map(|_| "Tidy work, on time"),
        );
        out.cancelled_reason
            .push(cancelled.then_some("No longer needed: resolved by the resident"));
        out.created_at.push(created);
        out.updated_at.push(updated);
        out.started_at.push(started);
        out.completed_at.push(completed);
        out.closed_at.push(closed);
    }
    out
}

/// What was loaded for the large organisation, to print beside the figures.
#[derive(Default)]
struct Loaded {
    issues: usize,
    open_issues: usize,
    urgent_open_issues: usize,
    work_orders: usize,
    open_work_orders: usize,
}

/// Issues and work orders of every organisation, through the owner connection (whose user
/// triggers the caller has switched off), one transaction per organisation.
async fn load_operations(
    owner: &mut PgConnection,
    o: &Options,
    big: &organisation::Organisation,
    big_portfolio: &Portfolio,
    small: &[(OrgId, Portfolio)],
    rng: &mut Rng,
    now: OffsetDateTime,
) -> Result<Loaded, String> {
    let mut shape = Loaded::default();
    let open_issue = |s: &str| matches!(s, "open" | "triaged" | "in_progress" | "reopened");

    let started = Instant::now();
    let rows = issues(big_portfolio, o.issues, rng, now);
    shape.issues = rows.id.len();
    shape.open_issues = rows.status.iter().filter(|s| open_issue(s)).count();
    shape.urgent_open_issues = rows
        .status
        .iter()
        .zip(&rows.priority)
        .filter(|(s, p)| open_issue(s) && **p == "urgent")
        .count();
    let orders = work_orders(big_portfolio, o.work_orders, rng, now);
    shape.work_orders = orders.id.len();
    shape.open_work_orders = orders
        .status
        .iter()
        .filter(|s| !matches!(**s, "closed" | "cancelled"))
        .count();
    let generated = started.elapsed();
    let mut tx = tenant_owner_tx(owner, big.id).await?;
    let t = Instant::now();
    insert_issues(&mut tx, big.id, &rows).await?;
    let issue_time = t.elapsed();
    let t = Instant::now();
    insert_work_orders(&mut tx, big.id, &orders).await?;
    let order_time = t.elapsed();
    tx.commit().await.map_err(e)?;
    println!(
        "Loading issues and work orders (owner connection, audit triggers off for the load; \
         generated in {:.1} s):",
        generated.as_secs_f64()
    );
    println!(
        "  large organisation: issues      {:>8} rows {:>6.1} s ({:>6.0} rows/s)",
        shape.issues,
        issue_time.as_secs_f64(),
        shape.issues as f64 / issue_time.as_secs_f64()
    );
    println!(
        "  large organisation: work orders {:>8} rows {:>6.1} s ({:>6.0} rows/s)",
        shape.work_orders,
        order_time.as_secs_f64(),
        shape.work_orders as f64 / order_time.as_secs_f64()
    );

    let started = Instant::now();
    let (mut issue_rows, mut order_rows) = (0, 0);
    for (org, portfolio) in small {
        let rows = issues(portfolio, o.other_issues, rng, now);
        let orders = work_orders(portfolio, o.other_work_orders, rng, now);
        let mut tx = tenant_owner_tx(owner, *org).await?;
        insert_issues(&mut tx, *org, &rows).await?;
        insert_work_orders(&mut tx, *org, &orders).await?;
        tx.commit().await.map_err(e)?;
        issue_rows += rows.id.len();
        order_rows += orders.id.len();
    }
    println!(
        "  {} small organisations: {issue_rows} issues and {order_rows} work orders in {:.1} s",
        small.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(shape)
}

/// The compliance events as loaded, to print beside the figures.
#[derive(Default)]
struct EventMix {
    events: usize,
    obligations: usize,
    overdue: usize,
    due_soon: usize,
    compliant: usize,
}

/// The trade of the contractors who do a template's work.
fn template_trade(key: &str) -> &'static str {
    match key {
        "gas_safety" => "heating_gas",
        "eicr" | "emergency_lighting_test" | "pat_testing" => "electrical",
        "fire_risk_assessment" | "fire_alarm_service" => "fire_safety",
        "lift_loler" => "lifts",
        "legionella_risk_assessment" | "water_temperature_checks" => "plumbing",
        _ => "general_repairs",
    }
}

/// About one interval of a recurrence, in days (for the last completion before a due date).
fn interval_days(recurrence: Recurrence) -> i64 {
    let unit = match recurrence.unit() {
        RecurUnit::Day => 1,
        RecurUnit::Week => 7,
        RecurUnit::Month => 30,
        RecurUnit::Year => 365,
    };
    unit * i64::from(recurrence.interval())
}

/// `n` compliance events over the portfolio's sites: site after site, each obligation (the
/// UK templates, all in the matrix) in turn, alternate blocks for a second event of one
/// obligation; due dates about 5 % overdue, 10 % due within 30 days and the rest compliant.
/// Through the owner connection, whose user triggers the caller has switched off.
async fn load_events(
    owner: &mut PgConnection,
    org: OrgId,
    portfolio: &Portfolio,
    n: usize,
    rng: &mut Rng,
    today: Date,
) -> Result<EventMix, String> {
    let started = Instant::now();
    let templates = templates();
    let sites = portfolio.sites.len().max(1);
    let responsible: Vec<(String, String)> = (0..6).map(|_| person(rng)).collect();
    let mut mix = EventMix {
        events: n,
        obligations: templates.len().min(n),
        ..EventMix::default()
    };
    let mut rows = EventColumns::default();
    for i in 0..n {
        let site = &portfolio.sites[i % sites];
        let k = i / sites;
        let template = &templates[k % templates.len()];
        let copy = k / templates.len();
        let building = site.buildings[copy % site.buildings.len()];
        let days = interval_days(template.recurrence);
        let next_due = if rng.chance(OVERDUE_PERCENT) {
            mix.overdue += 1;
            today - time::Duration::days(1 + rng.below(120) as i64)
        } else if rng.chance(100.0 * DUE_SOON_PERCENT / (100.0 - OVERDUE_PERCENT)) {
            mix.due_soon += 1;
            today + time::Duration::days(rng.below(31) as i64)
        } else {
            mix.compliant += 1;
            today + time::Duration::days(31 + rng.below((days - 31).max(5) as usize) as i64)
        };
        let last = next_due - time::Duration::days(days);
        let trade = template_trade(template.key);
        // The contractors of the right trade (vendor i does TRADES[i % TRADES.len()]).
        let vendor = rng.chance(70.0).then(|| {
            let of_trade: Vec<Uuid> = portfolio
                .vendors
                .iter()
                .enumerate()
                .filter(|(v, _)| TRADES[v % TRADES.len()].0 == trade)
                .map(|(_, id)| *id)
                .collect();
            rng.pick(&of_trade)
        });
        rows.id.push(Uuid::now_v7());
        rows.site.push(site.id);
        rows.building.push(building);
        rows.name.push(format!(
            "{} – Block {}",
            template.name,
            ["A", "B"][copy % 2]
        ));
        rows.template_key.push(template.key);
        rows.rrule.push(template.recurrence.to_rrule());
        rows.due_basis.push(template.basis.as_str());
        rows.next_due.push(next_due);
        rows.responsible
            .push(responsible[rng.below(responsible.len())].0.clone());
        rows.vendor.push(vendor);
        rows.trade.push(trade);
        rows.raise_days_before.push(vendor.map(|_| 30));
        rows.last_completed_on.push((last <= today).then_some(last));
    }
    let mut tx = tenant_owner_tx(owner, org).await?;
    for (from, to) in batches(rows.id.len()) {
        let r = from..to;
        // A new event's anchor is its first due date (as `create_event` stores it).
        sqlx::query(
            "insert into maintenance_event (organisation_id, id, site_id, building_id, name,
                    template_key, compliance, rrule, due_basis, anchor_date, next_due,
                    responsible_name, vendor_id, trade, raise_days_before, last_completed_on)
             select $1, x.id, x.site, x.building, x.name, x.template_key, true, x.rrule,
                    x.due_basis, x.next_due, x.next_due, x.responsible, x.vendor, x.trade,
                    x.raise_days_before, x.last_completed_on
               from unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[],
                           $7::text[], $8::text[], $9::date[], $10::text[], $11::uuid[],
                           $12::text[], $13::int4[], $14::date[])
                 as x (id, site, building, name, template_key, rrule, due_basis, next_due,
                       responsible, vendor, trade, raise_days_before, last_completed_on)",
        )
        .bind(org.0)
        .bind(&rows.id[r.clone()])
        .bind(&rows.site[r.clone()])
        .bind(&rows.building[r.clone()])
        .bind(&rows.name[r.clone()])
        .bind(&rows.template_key[r.clone()])
        .bind(&rows.rrule[r.clone()])
        .bind(&rows.due_basis[r.clone()])
        .bind(&rows.next_due[r.clone()])
        .bind(&rows.responsible[r.clone()])
        .bind(&rows.vendor[r.clone()])
        .bind(&rows.trade[r.clone()])
        .bind(&rows.raise_days_before[r.clone()])
        .bind(&rows.last_completed_on[r])
        .execute(&mut *tx)
        .await
        .map_err(e)?;
    }
    tx.commit().await.map_err(e)?;
    println!(
        "  compliance organisation: maintenance events {:>6} rows {:>6.1} s",
        rows.id.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(mix)
}

#[derive(Default)]
struct EventColumns {
    id: Vec<Uuid>,
    site: Vec<Uuid>,
    building: Vec<Uuid>,
    name: Vec<String>,
    template_key: Vec<&'static str>,
    rrule: Vec<String>,
    due_basis: Vec<&'static str>,
    next_due: Vec<Date>,
    responsible: Vec<String>,
    vendor: Vec<Option<Uuid>>,
    trade: Vec<&'static str>,
    raise_days_before: Vec<Option<i32>>,
    last_completed_on: Vec<Option<Date>>,
}

/// An owner transaction inside one organisation: row-level security applies to the owner too.
async fn tenant_owner_tx(
    owner: &mut PgConnection,
    org: OrgId,
) -> Result<sqlx::Transaction<'_, sqlx::Postgres>, String> {
    let mut tx = owner.begin().await.map_err(e)?;
    sqlx::query("select set_config('app.organisation_id', $1, true)")
        .bind(org.0.to_string())
        .execute(&mut *tx)
        .await
        .map_err(e)?;
    Ok(tx)
}

/// Records each year's last reference number, so the next issue or work order continues it.
async fn set_counters(
    tx: &mut PgConnection,
    org: OrgId,
    kind: &str,
    last: &BTreeMap<i32, i32>,
) -> Result<(), String> {
    let years: Vec<i32> = last.keys().copied().collect();
    let numbers: Vec<i32> = last.values().copied().collect();
    sqlx::query(
        "insert into reference_counter (organisation_id, kind, year, last_number)
         select $1, $2, x.* from unnest($3::int[], $4::int[]) as x",
    )
    .bind(org.0)
    .bind(kind)
    .bind(&years)
    .bind(&numbers)
    .execute(tx)
    .await
    .map(|_| ())
    .map_err(e)
}

async fn insert_issues(tx: &mut PgConnection, org: OrgId, rows: &Issues) -> Result<(), String> {
    let (refs, last) = references("ISS", rows.created_at.iter().copied());
    for (from, to) in batches(rows.id.len()) {
        let r = from..to;
        sqlx::query(
            "insert into issue (organisation_id, id, reference, site_id, building_id, unit_id,
                                space_id, title, description, category, priority, status,
                                closed_reason, reporter_kind, reporter_name, reporter_email,
                                channel, created_at, updated_at, resolved_at, closed_at)
             select $1, x.* from unnest($2::uuid[], $3::text[], $4::uuid[], $5::uuid[],
                                        $6::uuid[], $7::uuid[], $8::text[], $9::text[],
                                        $10::text[], $11::text[], $12::text[], $13::text[],
                                        $14::text[], $15::text[], $16::text[], $17::text[],
                                        $18::timestamptz[], $19::timestamptz[],
                                        $20::timestamptz[], $21::timestamptz[]) as x",
        )
        .bind(org.0)
        .bind(&rows.id[r.clone()])
        .bind(&refs[r.clone()])
        .bind(&rows.site[r.clone()])
        .bind(&rows.building[r.clone()])
        .bind(&rows.unit[r.clone()])
        .bind(&rows.space[r.clone()])
        .bind(&rows.title[r.clone()])
        .bind(&rows.description[r.clone()])
        .bind(&rows.category[r.clone()])
        .bind(&rows.priority[r.clone()])
        .bind(&rows.status[r.clone()])
        .bind(&rows.closed_reason[r.clone()])
        .bind(&rows.reporter_kind[r.clone()])
        .bind(&rows.reporter_name[r.clone()])
        .bind(&rows.reporter_email[r.clone()])
        .bind(&rows.channel[r.clone()])
        .bind(&rows.created_at[r.clone()])
        .bind(&rows.updated_at[r.clone()])
        .bind(&rows.resolved_at[r.clone()])
        .bind(&rows.closed_at[r])
        .execute(&mut *tx)
        .await
        .map_err(e)?;
    }
    set_counters(tx, org, "issue", &last).await
}

async fn insert_work_orders(
    tx: &mut PgConnection,
    org: OrgId,
    rows: &WorkOrders,
) -> Result<(), String> {
    let (refs, last) = references("WO", rows.created_at.iter().copied());
    for (from, to) in batches(rows.id.len()) {
        let r = from..to;
        sqlx::query(
            "insert into work_order (organisation_id, id, reference, site_id, building_id, unit_id,
                                     space_id, title, scope, trade, priority, cost_code,
                                     not_to_exceed_pence, target_start, target_completion,
                                     access_notes, manager_name, manager_email, status, vendor_id,
                                     approved_pence, final_cost_pence, rating, rating_note,
                                     cancelled_reason, created_at, updated_at, started_at,
                                     completed_at, closed_at)
             select $1, x.* from unnest($2::uuid[], $3::text[], $4::uuid[], $5::uuid[],
                                        $6::uuid[], $7::uuid[], $8::text[], $9::text[],
                                        $10::text[], $11::text[], $12::text[], $13::int8[],
                                        $14::date[], $15::date[], $16::text[], $17::text[],
                                        $18::text[], $19::text[], $20::uuid[], $21::int8[],
                                        $22::int8[], $23::int2[], $24::text[], $25::text[],
                                        $26::timestamptz[], $27::timestamptz[],
                                        $28::timestamptz[], $29::timestamptz[],
                                        $30::timestamptz[]) as x",
        )
        .bind(org.0)
        .bind(&rows.id[r.clone()])
        .bind(&refs[r.clone()])
        .bind(&rows.site[r.clone()])
        .bind(&rows.building[r.clone()])
        .bind(&rows.unit[r.clone()])
        .bind(&rows.space[r.clone()])
        .bind(&rows.title[r.clone()])
        .bind(&rows.scope[r.clone()])
        .bind(&rows.trade[r.clone()])
        .bind(&rows.priority[r.clone()])
        .bind(&rows.cost_code[r.clone()])
        .bind(&rows.not_to_exceed[r.clone()])
        .bind(&rows.target_start[r.clone()])
        .bind(&rows.target_completion[r.clone()])
        .bind(&rows.access_notes[r.clone()])
        .bind(&rows.manager_name[r.clone()])
        .bind(&rows.manager_email[r.clone()])
        .bind(&rows.status[r.clone()])
        .bind(&rows.vendor[r.clone()])
        .bind(&rows.approved_pence[r.clone()])
        .bind(&rows.final_cost_pence[r.clone()])
        .bind(&rows.rating[r.clone()])
        .bind(&rows.rating_note[r.clone()])
        .bind(&rows.cancelled_reason[r.clone()])
        .bind(&rows.created_at[r.clone()])
        .bind(&rows.updated_at[r.clone()])
        .bind(&rows.started_at[r.clone()])
        .bind(&rows.completed_at[r.clone()])
        .bind(&rows.closed_at[r])
        .execute(&mut *tx)
        .await
        .map_err(e)?;
    }
    set_counters(tx, org, "work_order", &last).await
}
