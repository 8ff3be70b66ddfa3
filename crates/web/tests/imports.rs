//! Settings → Data import end to end (issue 4): an Administrator signed in with a real session
//! downloads templates, uploads CSV files, reads the preview, confirms, and follows a large
//! import through the worker; bad files say which line and column to fix and record nothing;
//! members without the permission, or without access to all sites, are refused.

#![allow(clippy::unwrap_used, reason = "tests")]

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use proplink_db::import;
use proplink_db::jobs::{Worker, WorkerConfig};
use proplink_db::organisation::Organisation;
use proplink_db::portfolio::{self, SiteInput};
use proplink_domain::permissions::{BuiltInRole, Scope};
use proplink_test_support::TestDb;
use proplink_test_support::people::{self as staff_people, TestMember};
use proplink_web::AppState;
use std::net::SocketAddr;
use std::sync::Arc;
use tower::ServiceExt;
use uuid::Uuid;

struct Reply {
    status: StatusCode,
    location: String,
    content_type: String,
    disposition: String,
    body: String,
}

/// A signed-in member's browser: their session cookie on their organisation's host.
struct Browser {
    app: Router,
    host: String,
    cookie: String,
}

const BOUNDARY: &str = "----proplink-test-boundary-7MA4YWxkTrZu0gW";

impl Browser {
    async fn signed_in(state: &AppState, db: &TestDb, org: &Organisation, m: &TestMember) -> Self {
        let token = staff_people::session(db, org, m).await;
        Self {
            app: proplink_web::app(state.clone()),
            host: format!("{}.proplink.localhost", org.slug),
            cookie: format!("pl_session={token}"),
        }
    }

    async fn send(&self, method: &str, path: &str, body: Option<(&str, Vec<u8>)>) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.host)
            .header(header::COOKIE, &self.cookie);
        let body = match body {
            Some((content_type, bytes)) => {
                req = req
                    .header(header::CONTENT_TYPE, content_type)
                    .header("sec-fetch-site", "same-origin");
                Body::from(bytes)
            }
            None => Body::empty(),
        };
        let mut req = req.body(body).unwrap();
        let peer: SocketAddr = "203.0.113.30:40000".parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(peer));
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let header_text = |name| {
            resp.headers()
                .get(name)
                .map(|v: &header::HeaderValue| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        let location = header_text(header::LOCATION);
        let content_type = header_text(header::CONTENT_TYPE);
        let disposition = header_text(header::CONTENT_DISPOSITION);
        let bytes = axum::body::to_bytes(resp.into_body(), 16 << 20)
            .await
            .unwrap();
        Reply {
            status,
            location,
            content_type,
            disposition,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None).await
    }

    async fn post(&self, path: &str) -> Reply {
        self.send(
            "POST",
            path,
            Some(("application/x-www-form-urlencoded", Vec::new())),
        )
        .await
    }

    /// Posts the upload form: the kind, and the file if one is given.
    async fn upload(&self, kind: &str, file: Option<(&str, &[u8])>) -> Reply {
        let mut body = Vec::new();
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\n{kind}\r\n"
            )
            .as_bytes(),
        );
        if let Some((name, bytes)) = file {
            body.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: text/csv\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
        self.send("POST", "/imports", Some((&content_type, body)))
            .await
    }
}

/// The run id in a redirect to `/imports/{id}?…`.
fn run_id(location: &str) -> Uuid {
    let path = location.split('?').next().unwrap();
    path.rsplit('/').next().unwrap().parse().unwrap()
}

async fn setup() -> (TestDb, Organisation, AppState) {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let state = staff_people::state(&db, staff_people::web_settings()).await;
    (db, org, state)
}

async fn member(
    db: &TestDb,
    org: &Organisation,
    who: &str,
    role: BuiltInRole,
    scope: Scope,
) -> TestMember {
    let email = format!("{who}@{}.example.co.uk", org.slug);
    staff_people::member(db, org, &email, who, role, scope).await
}

async fn administrator(db: &TestDb, org: &Organisation, state: &AppState) -> Browser {
    let m = member(
        db,
        org,
        "priya",
        BuiltInRole::Administrator,
        Scope::AllSites,
    )
    .await;
    Browser::signed_in(state, db, org, &m).await
}

async fn count(db: &TestDb, org: &Organisation, table: &str) -> i64 {
    let mut tx = db.app.begin(&db.staff(org, "Test loader")).await.unwrap();
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
        .fetch_one(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    n
}

async fn seed_site(db: &TestDb, org: &Organisation, reference: &str) {
    let mut tx = db.app.begin(&db.staff(org, "Test loader")).await.unwrap();
    portfolio::save_site(
        &mut tx,
        None,
        &SiteInput {
            reference: reference.into(),
            name: format!("Site {reference}"),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

const SITES: &str = "reference,name,address_line_1,city,postcode\n\
GC-001,Riverside Court,1 Riverside Walk,Leeds,LS1 4BR\n\
GC-002,Wharf House,3 Riverside Walk,Leeds,LS1 4BR\n";

const UNITS: &str = "site_reference,reference,name,type\n\
GC-001,1,Flat 1,flat\n\
GC-001,2,Flat 2,flat\n\
GC-002,SHOP1,Shop 1,commercial\n";

#[tokio::test]
async fn the_page_lists_each_kind_with_its_columns_and_a_template_downloads_as_csv() {
    let (db, org, state) = setup().await;
    let b = administrator(&db, &org, &state).await;

    let page = b.get("/imports").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let positions: Vec<usize> = [
        "kind-sites",
        "kind-buildings",
        "kind-units",
        "kind-contacts",
        "kind-leases",
    ]
    .iter()
    .map(|id| page.body.find(id).unwrap_or_else(|| panic!("{id} missing")))
    .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "kinds in the recommended order"
    );
    assert!(
        page.body.contains("<code>site_reference</code>*"),
        "required columns are marked"
    );
    assert!(
        page.body.contains("<code>building_reference</code>,"),
        "optional ones are not"
    );
    assert!(page.body.contains(r#"accept=".csv,text/csv""#));
    assert!(page.body.contains("Nothing has been imported yet."));
    assert!(
        b.get("/settings").await.body.contains(r#"href="/imports""#),
        "linked from Settings"
    );

    let template = b.get("/imports/template/units").await;
    assert_eq!(template.status, StatusCode::OK);
    assert!(
        template.content_type.starts_with("text/csv"),
        "{}",
        template.content_type
    );
    assert_eq!(
        template.disposition,
        "attachment; filename=\"proplink-units-template.csv\""
    );
    assert!(
        template.body.starts_with("site_reference,reference,name"),
        "{}",
        template.body
    );
    assert_eq!(
        b.get("/imports/template/vendors").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn sites_then_units_are_previewed_confirmed_and_listed_and_the_same_file_again_changes_nothing()
 {
    let (db, org, state) = setup().await;
    let b = administrator(&db, &org, &state).await;

    // Sites: preview, confirm, imported.
    let r = b
        .upload("sites", Some(("sites.csv", SITES.as_bytes())))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let preview = b.get(&r.location).await;
    assert!(
        preview
            .body
            .contains("2 to create, 0 to update, 0 unchanged"),
        "{}",
        preview.body
    );
    assert_eq!(
        count(&db, &org, "site").await,
        0,
        "nothing is written before confirming"
    );
    let sites_run = run_id(&r.location);
    let done = b.post(&format!("/imports/{sites_run}/confirm")).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let page = b.get(&done.location).await.body;
    assert!(
        page.contains("Imported:</strong> 2 created, 0 updated, 0 unchanged"),
        "{page}"
    );
    assert_eq!(count(&db, &org, "site").await, 2);
    // The file stays downloadable exactly as it was uploaded.
    assert!(
        page.contains(&format!("/imports/{sites_run}/file")),
        "{page}"
    );
    let original = b.get(&format!("/imports/{sites_run}/file")).await;
    assert_eq!(original.status, StatusCode::OK);
    assert_eq!(original.body, SITES);

    // Confirming again is refused with a sentence, and changes nothing.
    let again = b.post(&format!("/imports/{sites_run}/confirm")).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(
        again
            .body
            .contains("This import was already confirmed or cancelled."),
        "{}",
        again.body
    );

    // Units refer to the sites just imported.
    let r = b
        .upload("units", Some(("units.csv", UNITS.as_bytes())))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(
        b.get(&r.location)
            .await
            .body
            .contains("3 to create, 0 to update, 0 unchanged")
    );
    let done = b
        .post(&format!("/imports/{}/confirm", run_id(&r.location)))
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let units = b.get("/units").await.body;
    for name in ["Flat 1", "Flat 2", "Shop 1"] {
        assert!(units.contains(name), "{name} in /units");
    }

    // The same file again: every row unchanged; cancelled, it imports nothing.
    let r = b
        .upload("units", Some(("units-again.csv", UNITS.as_bytes())))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(
        b.get(&r.location)
            .await
            .body
            .contains("0 to create, 0 to update, 3 unchanged")
    );
    let again_run = run_id(&r.location);
    let cancelled = b.post(&format!("/imports/{again_run}/cancel")).await;
    assert_eq!(cancelled.status, StatusCode::SEE_OTHER);
    assert!(
        b.get(&cancelled.location)
            .await
            .body
            .contains("Cancelled: nothing was imported.")
    );
    assert_eq!(
        b.post(&format!("/imports/{again_run}/confirm"))
            .await
            .status,
        StatusCode::CONFLICT
    );

    // The history: newest first, with who and the outcome.
    let history = b.get("/imports").await.body;
    let (newest, oldest) = (
        history.find("units-again.csv").unwrap(),
        history.find("sites.csv").unwrap(),
    );
    assert!(newest < oldest, "newest first");
    assert!(
        history.contains("3 / 0 / 0") && history.contains("2 / 0 / 0"),
        "{history}"
    );
    assert!(
        history.contains("Imported") && history.contains("Cancelled") && history.contains("priya")
    );
    assert!(history.contains(&format!("href=\"/imports/{sites_run}\"")));

    // Reverting: the sites run is refused while the units it holds are there; the units run
    // is undone, then the sites run.
    let units_run = history
        .split("href=\"/imports/")
        .filter_map(|rest| rest.split('"').next()?.parse::<Uuid>().ok())
        .find(|id| *id != sites_run && *id != again_run)
        .unwrap();
    let page = b.get(&format!("/imports/{sites_run}")).await.body;
    assert!(page.contains("Revert this import"), "{page}");
    let refused = b.post(&format!("/imports/{sites_run}/revert")).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(
        refused.body.contains("now used by another record"),
        "{}",
        refused.body
    );
    assert_eq!(count(&db, &org, "site").await, 2);
    for run in [&units_run, &sites_run] {
        let r = b.post(&format!("/imports/{run}/revert")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let page = b.get(&r.location).await.body;
        assert!(page.contains("Reverted:"), "{page}");
        assert!(!page.contains("Revert this import"));
    }
    assert_eq!(count(&db, &org, "unit").await, 0);
    assert_eq!(count(&db, &org, "site").await, 0);
    let twice = b.post(&format!("/imports/{sites_run}/revert")).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert!(
        twice.body.contains("this one is reverted"),
        "{}",
        twice.body
    );
}

#[tokio::test]
async fn a_file_with_a_bad_postcode_and_a_missing_site_lists_both_lines_and_records_nothing() {
    let (db, org, state) = setup().await;
    seed_site(&db, &org, "GC-001").await;
    let b = administrator(&db, &org, &state).await;
    let file = "site_reference,reference,name,postcode\n\
GC-001,1,Flat 1,LS1 4BR\n\
GC-001,2,Flat 2,NOT A POSTCODE\n\
GC-099,3,Flat 3,LS1 4BR\n";
    let r = b
        .upload("units", Some(("units.csv", file.as_bytes())))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body
            .contains("Nothing will be imported until every line is fixed"),
        "{}",
        r.body
    );
    assert!(r.body.contains(
        "<th scope=\"col\">Line</th><th scope=\"col\">Column</th><th scope=\"col\">Problem</th>"
    ));
    assert!(
        r.body.contains("<tr><td>3</td><td>postcode</td>"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains(
            "<tr><td>4</td><td>site_reference</td><td>There is no site with the reference GC-099"
        ),
        "{}",
        r.body
    );
    assert!(r.body.contains("2 problems in 3 lines"), "{}", r.body);
    assert_eq!(count(&db, &org, "import_run").await, 0);
    assert_eq!(count(&db, &org, "unit").await, 0);
}

#[tokio::test]
async fn whole_file_problems_are_told_in_a_sentence_on_the_upload_page() {
    let (db, org, state) = setup().await;
    let b = administrator(&db, &org, &state).await;

    // Latin-1 (Excel's plain "CSV"), larger than the 2 MiB other forms may send.
    let mut latin1 = b"reference,name,address_line_1,city,postcode\n".to_vec();
    while latin1.len() < 3 * 1024 * 1024 {
        latin1.extend_from_slice(b"GC-001,Caf\xe9 Court,1 High Street,Leeds,LS1 4BR\n");
    }
    let r = b.upload("sites", Some(("sites.csv", &latin1))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.status);
    assert!(r.body.contains("CSV UTF-8 (Comma delimited)"), "{}", r.body);
    assert!(
        r.body.contains(r#"value="sites" checked"#),
        "the chosen kind is kept"
    );

    let r = b.upload("sites", None).await;
    assert!(
        r.body.contains("Choose a CSV file to upload."),
        "{}",
        r.body
    );
    let r = b.upload("sites", Some(("empty.csv", b""))).await;
    assert!(r.body.contains("The file is empty."), "{}", r.body);
    let r = b.upload("", Some(("sites.csv", SITES.as_bytes()))).await;
    assert!(r.body.contains("Choose what the file holds"), "{}", r.body);

    let too_big = vec![b'x'; proplink_domain::import::MAX_FILE_BYTES + 1];
    let r = b.upload("sites", Some(("huge.csv", &too_big))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("The file is larger than 50 MiB."),
        "{}",
        r.body
    );
    assert_eq!(count(&db, &org, "import_run").await, 0);
}

#[tokio::test]
async fn a_file_of_more_than_2000_rows_is_queued_and_its_progress_shows_it_committed() {
    let (db, org, state) = setup().await;
    seed_site(&db, &org, "GC-001").await;
    let b = administrator(&db, &org, &state).await;
    let mut file = String::from("site_reference,reference,name\n");
    for i in 0..2_001 {
        file.push_str(&format!("GC-001,{i},Flat {i}\n"));
    }
    let r = b
        .upload("units", Some(("units.csv", file.as_bytes())))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let id = run_id(&r.location);
    assert!(b.get(&r.location).await.body.contains("2001 to create"));
    let confirmed = b.post(&format!("/imports/{id}/confirm")).await;
    assert_eq!(confirmed.status, StatusCode::SEE_OTHER);

    let page = b.get(&format!("/imports/{id}")).await.body;
    assert!(
        page.contains(&format!(
            r#"hx-get="/imports/{id}/progress" hx-trigger="every 1s""#
        )),
        "{page}"
    );
    assert!(
        page.contains(r#"<progress id="import-progress" max="2001" value="0">"#),
        "{page}"
    );
    assert!(
        page.contains("<strong id=\"run-status\">Queued</strong>"),
        "{page}"
    );
    assert!(page.contains("0 of 2001 rows done (0%)"), "{page}");
    assert_eq!(count(&db, &org, "unit").await, 0);

    let mut worker = Worker::new(db.app.clone(), db.platform.clone(), WorkerConfig::default());
    worker.register(
        import::COMMIT_JOB,
        Arc::new(import::CommitImportJob {
            pool: db.app.clone(),
        }),
    );
    while worker.run_once().await.unwrap().is_some() {}

    let fragment = b.get(&format!("/imports/{id}/progress")).await;
    assert_eq!(fragment.status, StatusCode::OK);
    assert!(!fragment.body.contains("<html"), "a fragment, not a page");
    assert!(
        fragment
            .body
            .contains("Imported:</strong> 2001 created, 0 updated, 0 unchanged"),
        "{}",
        fragment.body
    );
    assert!(
        !fragment.body.contains("hx-trigger"),
        "a finished import stops polling"
    );
    assert_eq!(count(&db, &org, "unit").await, 2_001);
}

#[tokio::test]
async fn read_only_and_site_scoped_members_cannot_import() {
    let (db, org, state) = setup().await;
    let reader = member(&db, &org, "rory", BuiltInRole::ReadOnly, Scope::AllSites).await;
    let b = Browser::signed_in(&state, &db, &org, &reader).await;
    assert_eq!(b.get("/imports").await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        b.get("/imports/template/sites").await.status,
        StatusCode::FORBIDDEN
    );
    let r = b
        .upload("sites", Some(("sites.csv", SITES.as_bytes())))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!b.get("/settings").await.body.contains(r#"href="/imports""#));

    seed_site(&db, &org, "GC-001").await;
    let mut tx = db.app.begin(&db.staff(&org, "Test loader")).await.unwrap();
    let site: Uuid = sqlx::query_scalar("select id from site where reference = 'GC-001'")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let scoped = member(
        &db,
        &org,
        "sam",
        BuiltInRole::Administrator,
        Scope::Sites([site].into()),
    )
    .await;
    let b = Browser::signed_in(&state, &db, &org, &scoped).await;
    let page = b.get("/imports").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(
        page.body.contains("Imports need access to all sites"),
        "{}",
        page.body
    );
    let r = b
        .upload("sites", Some(("sites.csv", SITES.as_bytes())))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(count(&db, &org, "import_run").await, 0);
    assert_eq!(count(&db, &org, "site").await, 1);
}
