//! Settings → Audit log end to end: real requests through the app against a real database,
//! signed in as members of each built-in role.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails by panicking, helpers included"
)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use proplink_auth::links::new_token;
use proplink_db::access::{self, NewInvitation, RoleChoice};
use proplink_db::organisation::Organisation;
use proplink_db::{Actor, TenantContext, TenantTx};
use proplink_domain::dates::uk_long_date;
use proplink_domain::permissions::{BuiltInRole, Scope};
use proplink_domain::{ActorKind, Channel};
use proplink_test_support::TestDb;
use proplink_web::{AppState, Domains, WebSettings};
use time::OffsetDateTime;
use tower::ServiceExt;
use uuid::Uuid;

const CSV_HEADER: &str =
    "Sequence,When (UK),Who,Actor kind,Channel,Record type,Record id,Action,Changes,Request id";

async fn app(db: &TestDb) -> Router {
    let mut settings = WebSettings::new(Domains::default());
    settings.password_params = proplink_auth::password::HashParams::TESTING;
    // No one-time codes here: a fresh key rather than the database's.
    let key = proplink_auth::codes::CodeKey::generate();
    proplink_web::app(AppState::with_code_key(db.app.clone(), settings, key).unwrap())
}

/// A member of `org`, signed in on its admin host without the browser flow.
struct SignedIn {
    host: String,
    token: String,
    user_id: Uuid,
    name: String,
}

/// Invites `name` with `role` over all sites, accepts the invitation and starts a session.
async fn sign_in(db: &TestDb, org: &Organisation, role: RoleChoice, name: &str) -> SignedIn {
    let email = format!(
        "{}@example.com",
        name.to_lowercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), ".")
    );
    let mut tx = db.app.begin(&db.staff(org, "Setup Person")).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let (_, invitation_hash) = new_token();
    let membership_id = access::invite(
        &mut tx,
        &NewInvitation {
            email,
            name: name.to_owned(),
            role,
            scope: Scope::AllSites,
            welcome_message: None,
            is_owner: false,
        },
        &invitation_hash,
        "http://example.invalid/invitation",
        &org.name,
        Some("Setup Person"),
        now,
    )
    .await
    .unwrap()
    .unwrap();
    let row = access::member(&mut tx, membership_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        access::accept_invitation(&mut tx, row.invitation_id.unwrap(), now)
            .await
            .unwrap()
    );
    let (token, hash) = new_token();
    access::start_session(&mut tx, membership_id, row.user_id, &hash, None, None, now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    SignedIn {
        host: format!("{}.proplink.localhost", org.slug),
        token,
        user_id: row.user_id,
        name: name.to_owned(),
    }
}

/// A transaction in `org` acting as a person with this id and name (their writes are theirs in
/// the log).
async fn acting_as(db: &TestDb, org: &Organisation, id: Uuid, name: &str) -> TenantTx {
    let ctx = TenantContext {
        org: org.id,
        actor: Actor {
            id: Some(id),
            kind: ActorKind::Staff,
            name: Some(name.to_owned()),
        },
        channel: Channel::Admin,
        request_id: Some(format!("test-{}", Uuid::new_v4().simple())),
    };
    db.app.begin(&ctx).await.unwrap()
}

async fn new_estate(db: &TestDb, org: &Organisation, id: Uuid, who: &str, name: &str) -> Uuid {
    let mut tx = acting_as(db, org, id, who).await;
    let reference = format!("E-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let estate = access::create_estate(&mut tx, &reference, name)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    estate
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    /// The rows of the events table (empty when there is none).
    fn rows(&self) -> Vec<&str> {
        let Some((_, rest)) = self.body.split_once("<tbody>") else {
            return Vec::new();
        };
        let (table, _) = rest.split_once("</tbody>").unwrap();
        table
            .split("<tr>")
            .filter(|r| !r.trim().is_empty())
            .collect()
    }

    /// The target of the link with this text.
    fn link(&self, text: &str) -> Option<String> {
        let end = self.body.find(&format!("\">{text}</a>"))?;
        let start = self.body[..end].rfind("href=\"")? + "href=\"".len();
        Some(
            self.body[start..end]
                .replace("&#38;", "&")
                .replace("&amp;", "&"),
        )
    }
}

async fn get(app: &Router, who: &SignedIn, path: &str) -> Reply {
    let req = Request::get(path)
        .header("host", &who.host)
        .header("cookie", format!("pl_session={}", who.token))
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 64 * 1024 * 1024)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

fn csv_records(body: &str) -> Vec<csv::StringRecord> {
    csv::Reader::from_reader(body.as_bytes())
        .records()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn audit_log_lists_events_newest_first_and_filters_by_record_type_and_user() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let alice = sign_in(
        &db,
        &org,
        RoleChoice::BuiltIn(BuiltInRole::Administrator),
        "Alice Admin",
    )
    .await;
    let bob = sign_in(
        &db,
        &org,
        RoleChoice::BuiltIn(BuiltInRole::Manager),
        "Bob Builder",
    )
    .await;
    let estate = new_estate(&db, &org, alice.user_id, &alice.name, "Riverside").await;
    let mut tx = acting_as(&db, &org, alice.user_id, &alice.name).await;
    sqlx::query(
        "update estate set name = 'Riverside Gardens' where organisation_id = $1 and id = $2",
    )
    .bind(org.id.0)
    .bind(estate)
    .execute(tx.conn())
    .await
    .unwrap();
    tx.commit().await.unwrap();
    new_estate(&db, &org, bob.user_id, &bob.name, "Hilltop").await;
    let app = app(&db).await;

    let all = get(&app, &alice, "/audit").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    let rows = all.rows();
    for kind in ["Sign-in session", "Invitation", "Member access", "Estate"] {
        assert!(rows.iter().any(|r| r.contains(kind)), "no {kind} row");
    }
    assert!(
        rows[0].contains("Bob Builder") && rows[0].contains("Estate"),
        "newest first: {}",
        rows[0]
    );
    assert!(rows[0].contains(&uk_long_date(OffsetDateTime::now_utc())));
    assert!(
        rows.iter()
            .any(|r| r.contains("Changed") && r.contains(">name<")),
        "an update names the changed field"
    );
    assert!(all.body.contains("<label for=\"audit-user\">User</label>"));
    assert!(
        all.body
            .contains("<label for=\"audit-type\">Record type</label>")
    );
    assert_eq!(all.link("Export CSV").as_deref(), Some("/audit/export.csv"));
    assert_eq!(all.link("Clear").as_deref(), Some("/audit"));

    let estates = get(&app, &alice, "/audit?type=estate").await;
    assert_eq!(estates.status, StatusCode::OK);
    let rows = estates.rows();
    assert_eq!(rows.len(), 3, "two created, one changed");
    assert!(rows.iter().all(|r| r.contains("Estate")));
    assert!(
        estates
            .body
            .contains("<option value=\"estate\" selected>Estate</option>")
    );
    assert_eq!(
        estates.link("Export CSV").as_deref(),
        Some("/audit/export.csv?type=estate")
    );

    let alices = get(&app, &alice, &format!("/audit?user={}", alice.user_id)).await;
    assert_eq!(alices.status, StatusCode::OK);
    let rows = alices.rows();
    assert_eq!(rows.len(), 2, "Alice created and renamed one estate");
    assert!(rows.iter().all(|r| r.contains("Alice Admin")));
    assert!(!rows.iter().any(|r| r.contains("Bob Builder")));

    let bobs_estates = get(
        &app,
        &alice,
        &format!("/audit?user={}&type=estate", bob.user_id),
    )
    .await;
    assert_eq!(bobs_estates.rows().len(), 1);
}

#[tokio::test]
async fn audit_log_pages_older_events_by_sequence() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let alice = sign_in(
        &db,
        &org,
        RoleChoice::BuiltIn(BuiltInRole::Administrator),
        "Alice Admin",
    )
    .await;
    for n in 0..60 {
        new_estate(
            &db,
            &org,
            alice.user_id,
            &alice.name,
            &format!("Estate {n}"),
        )
        .await;
    }
    let mut tx = acting_as(&db, &org, alice.user_id, &alice.name).await;
    let total = proplink_db::audit::recent(&mut tx, 1000)
        .await
        .unwrap()
        .len();
    drop(tx);
    let app = app(&db).await;

    let first = get(&app, &alice, "/audit").await;
    assert_eq!(first.rows().len(), 50);
    assert_eq!(first.link("Newest events"), None);
    let older = first.link("Older events").unwrap();
    assert!(older.starts_with("/audit?before="), "{older}");
    let second = get(&app, &alice, &older).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.rows().len(), total - 50);
    assert_eq!(second.link("Older events"), None);
    assert_eq!(second.link("Newest events").as_deref(), Some("/audit"));
    // The pages do not overlap: the last row of the first is not on the second.
    let last_of_first = first.rows().last().unwrap().to_string();
    assert!(!second.rows().iter().any(|r| *r == last_of_first));

    let filtered = get(&app, &alice, "/audit?type=estate").await;
    let older = filtered.link("Older events").unwrap();
    assert!(older.starts_with("/audit?type=estate&before="), "{older}");
    assert_eq!(get(&app, &alice, &older).await.rows().len(), 10);
}

#[tokio::test]
async fn audit_log_is_not_found_for_a_read_only_member() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let reader = sign_in(
        &db,
        &org,
        RoleChoice::BuiltIn(BuiltInRole::ReadOnly),
        "Rita Reader",
    )
    .await;
    let app = app(&db).await;
    assert_eq!(
        get(&app, &reader, "/audit").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&app, &reader, "/audit/export.csv").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn audit_log_export_is_refused_to_a_manager_without_audit_export() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    // The built-in Manager may export the log; an organisation can make a manager role that
    // may not.
    let mut tx = db.app.begin(&db.staff(&org, "Setup Person")).await.unwrap();
    let mut permissions = BuiltInRole::Manager.permissions();
    permissions.retain(|p| p.as_str() != "audit.export");
    assert!(permissions.iter().any(|p| p.as_str() == "audit.read"));
    let role = access::save_custom_role(&mut tx, None, "Manager (no exports)", "", &permissions)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let manager = sign_in(&db, &org, RoleChoice::Custom(role), "Mo Manager").await;
    let built_in = sign_in(
        &db,
        &org,
        RoleChoice::BuiltIn(BuiltInRole::Manager),
        "Meg Manager",
    )
    .await;
    let app = app(&db).await;

    let page = get(&app, &manager, "/audit").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.rows().is_empty());
    assert_eq!(page.link("Export CSV"), None);
    assert!(!page.body.contains("export.csv"));
    let export = get(&app, &manager, "/audit/export.csv").await;
    assert!(
        matches!(export.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
        "{}",
        export.status
    );
    assert!(!export.body.contains(CSV_HEADER));

    let page = get(&app, &built_in, "/audit").await;
    assert_eq!(
        page.link("Export CSV").as_deref(),
        Some("/audit/export.csv")
    );
    assert_eq!(
        get(&app, &built_in, "/audit/export.csv").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn audit_log_csv_quotes_cells_and_neutralises_formulas() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let alice = sign_in(
        &db,
        &org,
        RoleChoice::BuiltIn(BuiltInRole::Administrator),
        "Alice Admin",
    )
    .await;
    let formula = "=SUM(1,2)";
    new_estate(&db, &org, Uuid::now_v7(), formula, "Smith, Jones").await;
    new_estate(&db, &org, Uuid::now_v7(), "@evil", "Plain").await;
    let app = app(&db).await;

    let reply = get(&app, &alice, "/audit/export.csv").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.headers["content-type"], "text/csv; charset=utf-8");
    let today = OffsetDateTime::now_utc().date();
    let expected = format!(
        "attachment; filename=\"audit-log-goldcrest-{:04}-{:02}-{:02}.csv\"",
        today.year(),
        u8::from(today.month()),
        today.day()
    );
    // The file is named for the UK day, which can differ from UTC's around midnight.
    let disposition = reply.headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"audit-log-goldcrest-")
            && disposition.ends_with(".csv\""),
        "{disposition} (around {expected})"
    );
    // A UTF-8 byte-order mark first (for Excel), then the header row.
    let body = reply
        .body
        .strip_prefix('\u{feff}')
        .expect("the CSV starts with a BOM");
    assert_eq!(body.lines().next(), Some(CSV_HEADER));
    // Quoted because of its comma, and prefixed so a spreadsheet shows it as text.
    assert!(reply.body.contains("\"'=SUM(1,2)\""), "{}", reply.body);
    assert!(reply.body.contains(",'@evil,"), "{}", reply.body);

    let records = csv_records(&reply.body);
    let formula_row = records.iter().find(|r| &r[2] == "'=SUM(1,2)").unwrap();
    assert_eq!(&formula_row[5], "Estate");
    assert_eq!(&formula_row[7], "Created");
    let changes: serde_json::Value = serde_json::from_str(&formula_row[8]).unwrap();
    assert_eq!(changes["name"]["new"], "Smith, Jones");
    // Newest first, numbered by sequence.
    let seqs: Vec<i64> = records.iter().map(|r| r[0].parse().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");

    let estates = get(&app, &alice, "/audit/export.csv?type=estate").await;
    let records = csv_records(&estates.body);
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| &r[5] == "Estate"));
    // The export itself is on the record, with who did it.
    let mut su = db.superuser().await;
    let exports: i64 = sqlx::query_scalar(
        "select count(*) from auth_event where organisation_id = $1 and kind = 'audit_log_exported'",
    )
    .bind(org.id.0)
    .fetch_one(&mut su)
    .await
    .unwrap();
    assert!(exports >= 1);
}

#[tokio::test]
async fn audit_log_bad_filters_show_a_message_at_422_and_no_events() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let alice = sign_in(
        &db,
        &org,
        RoleChoice::BuiltIn(BuiltInRole::Administrator),
        "Alice Admin",
    )
    .await;
    let app = app(&db).await;

    let reply = get(&app, &alice, "/audit?from=notadate").await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        reply.body.contains("“From” is not a date"),
        "{}",
        reply.body
    );
    assert!(reply.body.contains("value=\"notadate\""));
    assert!(reply.rows().is_empty());

    for (query, message) in [
        ("user=someone", "“User” must be one of the people"),
        ("to=2026-02-30", "“To” is not a date"),
        (
            "from=2026-05-11&to=2026-05-10",
            "“From” (11 May 2026) is after “To” (10 May 2026)",
        ),
        (
            "type=estate%27%3B--",
            "“Record type” must be one of the types",
        ),
        ("before=-5", "“Older events” link is not valid"),
    ] {
        let reply = get(&app, &alice, &format!("/audit?{query}")).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert!(reply.body.contains(message), "{query}: {}", reply.body);
        assert!(reply.rows().is_empty(), "{query}");
        assert_eq!(reply.link("Export CSV"), None, "{query}");
    }

    let export = get(&app, &alice, "/audit/export.csv?from=notadate").await;
    assert_eq!(export.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!export.body.contains(CSV_HEADER));
}

#[tokio::test]
async fn audit_log_dates_are_uk_calendar_days() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let alice = sign_in(
        &db,
        &org,
        RoleChoice::BuiltIn(BuiltInRole::Administrator),
        "Alice Admin",
    )
    .await;
    // 23:30 UTC on 10 May 2026 is 00:30 on 11 May in London (BST). Written directly, as the
    // trigger stamps the real time.
    let mut owner = db.owner_in(&org).await;
    sqlx::query(
        "insert into audit_event (organisation_id, seq, table_name, record_id, operation, changes,
                                  actor_kind, actor_name, channel, occurred_at, prev_hash, hash)
         values ($1, 1000000, 'estate', 'late-night', 'insert', '{}', 'staff', 'Night Owl',
                 'admin', '2026-05-10 23:30:00+00', '', '')",
    )
    .bind(org.id.0)
    .execute(&mut *owner)
    .await
    .unwrap();
    owner.commit().await.unwrap();
    let app = app(&db).await;

    let on_the_11th = get(&app, &alice, "/audit?from=2026-05-11&to=2026-05-11").await;
    assert_eq!(on_the_11th.status, StatusCode::OK);
    let rows = on_the_11th.rows();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].contains("11 May 2026, 00:30") && rows[0].contains("Night Owl"));
    let on_the_10th = get(&app, &alice, "/audit?to=2026-05-10").await;
    assert!(on_the_10th.rows().is_empty());
    assert!(on_the_10th.body.contains("No events match this filter."));

    let csv = get(
        &app,
        &alice,
        "/audit/export.csv?from=2026-05-11&to=2026-05-11",
    )
    .await;
    let records = csv_records(&csv.body);
    assert_eq!(records.len(), 1);
    assert_eq!(&records[0][1], "2026-05-11 00:30:00");
}

#[tokio::test]
async fn audit_log_never_shows_another_organisations_events() {
    let db = TestDb::new().await;
    let goldcrest = db.org("goldcrest", "Goldcrest Estates").await;
    let acme = db.org("acme", "Acme Property Group").await;
    let alice = sign_in(
        &db,
        &goldcrest,
        RoleChoice::BuiltIn(BuiltInRole::Administrator),
        "Alice Admin",
    )
    .await;
    let insider = Uuid::now_v7();
    let acme_estate = new_estate(&db, &acme, insider, "Acme Insider", "Acme Towers").await;
    sign_in(
        &db,
        &acme,
        RoleChoice::BuiltIn(BuiltInRole::Administrator),
        "Andy Acme",
    )
    .await;
    let app = app(&db).await;

    let page = get(&app, &alice, "/audit").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.rows().is_empty());
    for secret in ["Acme Insider", "Andy Acme", &acme_estate.to_string()[28..]] {
        assert!(!page.body.contains(secret), "{secret} leaked into the page");
    }
    assert!(
        !page.body.contains("value=\"estate\""),
        "acme's record types leaked"
    );
    let theirs = get(&app, &alice, &format!("/audit?user={insider}")).await;
    assert_eq!(theirs.status, StatusCode::OK);
    assert!(theirs.rows().is_empty());
    let estates = get(&app, &alice, "/audit?type=estate").await;
    assert!(estates.rows().is_empty());

    let csv = get(&app, &alice, "/audit/export.csv").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv_records(&csv.body).len() > 1);
    for secret in ["Acme Insider", "Andy Acme", &acme_estate.to_string()] {
        assert!(!csv.body.contains(secret), "{secret} leaked into the CSV");
    }
}
