//! Portfolio and people pages end to end (issue 4): members signed in with real sessions
//! create, list, read, edit, archive and export sites, buildings, units, contacts, vendors and
//! leases through HTTP against a real database; refused forms say why and write nothing; scope
//! and role limit what each member sees and may change; search stays inside its organisation.

#![allow(clippy::unwrap_used, reason = "tests")]

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use proplink_db::TenantTx;
use proplink_db::organisation::Organisation;
use proplink_db::people::{self, ContactInput, LeaseInput};
use proplink_db::portfolio::{self, BuildingInput, SiteInput, UnitInput};
use proplink_domain::permissions::{BuiltInRole, Scope};
use proplink_integrations::geo::{
    AddressSuggestion, Coordinates, GeoError, GeoPoint, Geocoder, MapImage, MapSize, MapboxGeocoder,
};
use proplink_test_support::TestDb;
use proplink_test_support::people::{self as staff_people, TestMember};
use proplink_web::{AppState, WebSettings};
use std::net::SocketAddr;
use std::sync::Arc;
use time::macros::date;
use tower::ServiceExt;
use uuid::Uuid;

struct Reply {
    status: StatusCode,
    location: String,
    content_type: String,
    bytes: Vec<u8>,
    body: String,
}

/// A signed-in member's browser: their session cookie on their organisation's host.
struct Browser {
    app: Router,
    host: String,
    cookie: String,
}

impl Browser {
    async fn signed_in(state: &AppState, db: &TestDb, org: &Organisation, m: &TestMember) -> Self {
        let token = staff_people::session(db, org, m).await;
        Self {
            app: proplink_web::app(state.clone()),
            host: format!("{}.proplink.localhost", org.slug),
            cookie: format!("pl_session={token}"),
        }
    }

    async fn send(&self, method: &str, path: &str, form: Option<String>) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.host)
            .header(header::COOKIE, &self.cookie);
        let body = match form {
            Some(f) => {
                req = req
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header("sec-fetch-site", "same-origin");
                Body::from(f)
            }
            None => Body::empty(),
        };
        let mut req = req.body(body).unwrap();
        let peer: SocketAddr = "203.0.113.20:40000".parse().unwrap();
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
        let bytes = axum::body::to_bytes(resp.into_body(), 16 << 20)
            .await
            .unwrap()
            .to_vec();
        Reply {
            status,
            location,
            content_type,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.send("POST", path, Some(body)).await
    }

    /// Posts a form that must be accepted; the id in the redirect (`/kind/{id}?…`).
    async fn create(&self, path: &str, form: &[(&str, &str)]) -> Uuid {
        let r = self.post(path, form).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}: {}", r.body);
        id_in(&r.location)
    }
}

fn id_in(location: &str) -> Uuid {
    let path = location.split('?').next().unwrap();
    path.rsplit('/').next().unwrap().parse().unwrap()
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

async fn writer(db: &TestDb, org: &Organisation) -> TenantTx {
    db.app.begin(&db.staff(org, "Test loader")).await.unwrap()
}

async fn count(db: &TestDb, org: &Organisation, table: &str) -> i64 {
    let mut tx = writer(db, org).await;
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
        .fetch_one(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    n
}

async fn seed_site(tx: &mut TenantTx, reference: &str, name: &str) -> Uuid {
    portfolio::save_site(
        tx,
        None,
        &SiteInput {
            reference: reference.into(),
            name: name.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

async fn seed_unit(tx: &mut TenantTx, site: Uuid, reference: &str, name: &str) -> Uuid {
    portfolio::save_unit(
        tx,
        None,
        site,
        &UnitInput {
            reference: reference.into(),
            name: name.into(),
            unit_type: "flat".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

async fn seed_person(tx: &mut TenantTx, first: &str, last: &str, email: &str) -> Uuid {
    people::save_contact(
        tx,
        None,
        &ContactInput {
            kind: "person".into(),
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            correspondence: "email".into(),
            emails: vec![email.into()],
            ..ContactInput::default()
        },
    )
    .await
    .unwrap()
}

async fn setup() -> (TestDb, Organisation, AppState) {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let state = staff_people::state(&db, staff_people::web_settings()).await;
    (db, org, state)
}

const SITE_FORM: [(&str, &str); 9] = [
    ("reference", "GC-001"),
    ("name", "Goldcrest House"),
    ("module", "bm"),
    ("address_line_1", "1 High Street"),
    ("city", "Leeds"),
    ("postcode", "ls1 1aa"),
    ("landlord_name", "Goldcrest Freehold Ltd"),
    ("landlord_line_1", "2 Park Row"),
    ("landlord_postcode", "LS1 5AB"),
];

#[tokio::test]
async fn a_manager_creates_lists_reads_edits_and_archives_sites_buildings_and_units() {
    let (db, org, state) = setup().await;
    let manager = member(&db, &org, "maria", BuiltInRole::Manager, Scope::AllSites).await;
    let b = Browser::signed_in(&state, &db, &org, &manager).await;

    let site = b.create("/sites/new", &SITE_FORM).await;
    let page = b.get(&format!("/sites/{site}?done=created")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Goldcrest House") && page.body.contains("LS1 1AA"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Site created."));
    assert!(!page.body.contains("No landlord is recorded"));
    assert!(
        page.body.contains("Created by maria via"),
        "history in words: {}",
        page.body
    );
    // Without a geocoder there is no map.
    assert!(!page.body.contains("Show on map"));

    let list = b.get("/sites?q=goldcrest").await;
    assert!(
        list.body.contains(&format!("/sites/{site}")),
        "{}",
        list.body
    );
    assert!(
        !b.get("/sites?q=nothing-like-it")
            .await
            .body
            .contains(&format!("/sites/{site}"))
    );

    // Edit: the form comes back filled in, and a change is saved and recorded.
    let edit = b.get(&format!("/sites/{site}/edit")).await;
    assert!(
        edit.body.contains("value=\"Goldcrest House\""),
        "{}",
        edit.body
    );
    let mut renamed = SITE_FORM.to_vec();
    renamed[1] = ("name", "Goldcrest Court");
    let r = b.post(&format!("/sites/{site}/edit"), &renamed).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = b.get(&format!("/sites/{site}")).await;
    assert!(page.body.contains("Goldcrest Court"));
    assert!(page.body.contains("Name changed from"), "{}", page.body);

    // A building that meets the legal test, and its derivation in words.
    let building = b
        .create(
            &format!("/sites/{site}/buildings/new"),
            &[
                ("reference", "A"),
                ("name", "Block A"),
                ("height", "19.5"),
                ("storeys", "7"),
                ("residential_units", "24"),
                ("hrb_override", ""),
            ],
        )
        .await;
    let page = b.get(&format!("/buildings/{building}")).await;
    assert!(
        page.body
            .contains("Higher-risk: 19.50 m, 7 storeys, 24 flats"),
        "{}",
        page.body
    );
    // Overriding needs a reason.
    let r = b
        .post(
            &format!("/buildings/{building}/edit"),
            &[
                ("reference", "A"),
                ("name", "Block A"),
                ("hrb_override", "no"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("Give a reason for overriding"),
        "{}",
        r.body
    );
    b.create(
        &format!("/buildings/{building}/edit"),
        &[
            ("reference", "A"),
            ("name", "Block A"),
            ("height", "19.5"),
            ("hrb_override", "no"),
            ("hrb_reason", "Measured at 17.9 m by the surveyor"),
        ],
    )
    .await;
    let page = b.get(&format!("/buildings/{building}")).await;
    assert!(
        page.body
            .contains("Overridden (treated as not higher-risk): Measured at 17.9 m"),
        "{}",
        page.body
    );

    // A unit in the building, on a floor named by the form.
    let unit = b
        .create(
            &format!("/sites/{site}/units/new"),
            &[
                ("reference", "1"),
                ("name", "Flat 1"),
                ("unit_type", "flat"),
                ("status", "active"),
                ("building", &building.to_string()),
                ("floor", "3"),
                ("area", "64.5"),
            ],
        )
        .await;
    let page = b.get(&format!("/units/{unit}")).await;
    assert!(
        page.body.contains("Flat 1") && page.body.contains("64.50 m²"),
        "{}",
        page.body
    );
    assert!(
        b.get(&format!("/buildings/{building}"))
            .await
            .body
            .contains("<li>3</li>")
    );
    let list = b.get(&format!("/units?site={site}")).await;
    assert!(
        list.body.contains(&format!("/units/{unit}")),
        "{}",
        list.body
    );

    let r = b
        .post(
            &format!("/units/{unit}/edit"),
            &[
                ("reference", "1"),
                ("name", "Flat One"),
                ("unit_type", "flat"),
                ("status", "vacant"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(
        b.get(&format!("/units/{unit}"))
            .await
            .body
            .contains("Flat One")
    );

    // Archive hides it from the live list; restore brings it back.
    let r = b.post(&format!("/units/{unit}/archive"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        !b.get("/units")
            .await
            .body
            .contains(&format!("/units/{unit}"))
    );
    assert!(
        b.get("/units?showing=archived")
            .await
            .body
            .contains(&format!("/units/{unit}"))
    );
    b.post(&format!("/units/{unit}/restore"), &[]).await;
    assert!(
        b.get("/units")
            .await
            .body
            .contains(&format!("/units/{unit}"))
    );

    // A Manager archives a site but may not delete it for good.
    let r = b.post(&format!("/sites/{site}/archive"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        !b.get("/sites")
            .await
            .body
            .contains(&format!("/sites/{site}"))
    );
    assert!(
        !b.get(&format!("/sites/{site}"))
            .await
            .body
            .contains("Force delete")
    );
    assert_eq!(
        b.post(&format!("/sites/{site}/delete"), &[("confirm", "yes")])
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // The owner may, after a confirmation step.
    let owner = member(
        &db,
        &org,
        "olive",
        BuiltInRole::OrganisationOwner,
        Scope::AllSites,
    )
    .await;
    let o = Browser::signed_in(&state, &db, &org, &owner).await;
    assert!(
        o.get(&format!("/sites/{site}"))
            .await
            .body
            .contains("Force delete")
    );
    let confirm = o.get(&format!("/sites/{site}/delete")).await;
    assert!(
        confirm.body.contains("cannot be undone"),
        "{}",
        confirm.body
    );
    let r = o.post(&format!("/sites/{site}/delete"), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "no confirmation, no deletion");
    assert_eq!(count(&db, &org, "site").await, 1);
    let r = o
        .post(&format!("/sites/{site}/delete"), &[("confirm", "yes")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(count(&db, &org, "site").await, 0);
    assert_eq!(count(&db, &org, "unit").await, 0);
    assert_eq!(
        o.get(&format!("/sites/{site}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn refused_forms_say_what_to_fix_keep_what_was_typed_and_write_nothing() {
    let (db, org, state) = setup().await;
    let manager = member(&db, &org, "maria", BuiltInRole::Manager, Scope::AllSites).await;
    let b = Browser::signed_in(&state, &db, &org, &manager).await;
    let mut tx = writer(&db, &org).await;
    let here = seed_site(&mut tx, "GC-001", "Goldcrest House").await;
    let there = seed_site(&mut tx, "RC-001", "Riverside Court").await;
    let their_block = portfolio::save_building(
        &mut tx,
        None,
        there,
        &BuildingInput {
            reference: "R".into(),
            name: "River Block".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let unit = seed_unit(&mut tx, here, "1", "Flat 1").await;
    let jo = seed_person(&mut tx, "Jo", "Smith", "jo@example.com").await;
    let sam = seed_person(&mut tx, "Sam", "Jones", "sam@example.com").await;
    people::add_lease(
        &mut tx,
        unit,
        &LeaseInput {
            starts_on: Some(date!(2020 - 01 - 01)),
            holders: vec![jo],
            ..LeaseInput::default()
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let sites_before = count(&db, &org, "site").await;

    // A bad postcode.
    let mut form = SITE_FORM.to_vec();
    form[0] = ("reference", "GC-002");
    form[5] = ("postcode", "XX1 1XX");
    let r = b.post("/sites/new", &form).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("is not a valid UK postcode"), "{}", r.body);
    assert!(
        r.body.contains("value=\"XX1 1XX\""),
        "the typed value is kept"
    );
    assert!(
        r.body.contains("id=\"error-postcode\""),
        "the message is beside its field"
    );
    // A landlord's address outside England and Wales.
    form[5] = ("postcode", "LS1 1AA");
    form[8] = ("landlord_postcode", "EH1 1YZ");
    let r = b.post("/sites/new", &form).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("EH1 1YZ is not in England or Wales"),
        "{}",
        r.body
    );
    // A reference another site has.
    form[0] = ("reference", "gc-001");
    form[8] = ("landlord_postcode", "LS1 5AB");
    let r = b.post("/sites/new", &form).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body
            .contains("Another site already has the reference gc-001"),
        "{}",
        r.body
    );
    assert_eq!(count(&db, &org, "site").await, sites_before);

    // Vendors: a sort code and a VAT number that do not check out.
    let vendor = [
        ("name", "Sparks Ltd"),
        ("trade", "Electrician"),
        ("sort_code", "12-34-5"),
        ("account_number", "12345678"),
        ("vat_number", "GB123456789"),
    ];
    let r = b.post("/vendors/new", &vendor).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("is not a sort code"), "{}", r.body);
    assert!(
        r.body.contains("is not a valid UK VAT number"),
        "{}",
        r.body
    );
    assert_eq!(count(&db, &org, "vendor").await, 0);
    // Good details are stored sealed and shown masked only.
    let id = b
        .create(
            "/vendors/new",
            &[
                ("name", "Sparks Ltd"),
                ("trade", "Electrician"),
                ("sort_code", "12-34-56"),
                ("account_number", "12345678"),
            ],
        )
        .await;
    let page = b.get(&format!("/vendors/{id}")).await.body;
    assert!(page.contains("**-**-56 ****5678"), "{page}");
    assert!(!page.contains("12345678") && !page.contains("12-34-56"));
    assert!(
        !b.get(&format!("/vendors/{id}/edit"))
            .await
            .body
            .contains("12345678")
    );

    // A lease overlapping the current one.
    let leases_before = count(&db, &org, "lease").await;
    let r = b
        .post(
            &format!("/units/{unit}/leases/new"),
            &[("holder_1", &sam.to_string()), ("starts_on", "01/06/2024")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("These dates overlap another lease"),
        "{}",
        r.body
    );
    // A date written the American way is refused, not misread.
    let r = b
        .post(
            &format!("/units/{unit}/leases/new"),
            &[("holder_1", &sam.to_string()), ("starts_on", "13/25/2024")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(count(&db, &org, "lease").await, leases_before);
    // The change of ownership is the way: the history keeps both holders.
    let r = b
        .post(
            &format!("/units/{unit}/ownership"),
            &[("effective", "01/06/2024"), ("holder_1", &sam.to_string())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = b.get(&format!("/units/{unit}")).await.body;
    assert!(
        page.contains("Jo Smith") && page.contains("Sam Jones"),
        "{page}"
    );
    assert!(page.contains("1 January 2020 to 1 June 2024"), "{page}");
    // A buyer named by e-mail instead of picked from the list; an unknown one is refused.
    let r = b
        .post(
            &format!("/units/{unit}/ownership"),
            &[
                ("effective", "01/09/2025"),
                ("holder_1_key", "nobody@example.com"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("No contact you can see has that e-mail"),
        "{}",
        r.body
    );
    let r = b
        .post(
            &format!("/units/{unit}/ownership"),
            &[
                ("effective", "01/09/2025"),
                ("holder_1_key", "JO@Example.com"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(
        b.get(&format!("/units/{unit}"))
            .await
            .body
            .contains("1 June 2024 to 1 September 2025")
    );

    // A unit in another site's building: refused, and no floor is made over there.
    let units_before = count(&db, &org, "unit").await;
    let r = b
        .post(
            &format!("/sites/{here}/units/new"),
            &[
                ("reference", "2"),
                ("name", "Flat 2"),
                ("unit_type", "flat"),
                ("building", &their_block.to_string()),
                ("floor", "4"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("That building is on a different site"),
        "{}",
        r.body
    );
    assert_eq!(count(&db, &org, "floor").await, 0);
    // A reference the site already has (any case).
    let r = b
        .post(
            &format!("/sites/{here}/units/new"),
            &[
                ("reference", "1"),
                ("name", "Another flat 1"),
                ("unit_type", "flat"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body
            .contains("Another unit on this site already has the reference 1"),
        "{}",
        r.body
    );
    assert_eq!(count(&db, &org, "unit").await, units_before);

    // A contact who wants post needs an address; e-mails are checked line by line.
    let r = b
        .post(
            "/contacts/new",
            &[
                ("kind", "person"),
                ("last_name", "Brown"),
                ("correspondence", "post"),
                ("emails", "ok@example.com\nnot an e-mail"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Post needs an address"), "{}", r.body);
    assert!(r.body.contains("Line 2:"), "{}", r.body);
    assert!(
        r.body.contains("ok@example.com\nnot an e-mail"),
        "typed lines are kept"
    );
}

#[tokio::test]
async fn a_member_scoped_to_one_site_never_sees_another_sites_records() {
    let (db, org, state) = setup().await;
    let mut tx = writer(&db, &org).await;
    let mine = seed_site(&mut tx, "GC-001", "Goldcrest House").await;
    let theirs = seed_site(&mut tx, "RC-001", "Riverside Court").await;
    let my_unit = seed_unit(&mut tx, mine, "1", "Flat Sunrise").await;
    let their_unit = seed_unit(&mut tx, theirs, "1", "Flat Moonlight").await;
    let their_holder = seed_person(&mut tx, "Moira", "Moonlight", "moira@example.com").await;
    people::add_lease(
        &mut tx,
        their_unit,
        &LeaseInput {
            starts_on: Some(date!(2021 - 01 - 01)),
            holders: vec![their_holder],
            ..LeaseInput::default()
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let scoped = member(
        &db,
        &org,
        "sid",
        BuiltInRole::Manager,
        Scope::Sites([mine].into()),
    )
    .await;
    let b = Browser::signed_in(&state, &db, &org, &scoped).await;

    assert_eq!(
        b.get(&format!("/units/{my_unit}")).await.status,
        StatusCode::OK
    );
    for path in [
        format!("/units/{their_unit}"),
        format!("/units/{their_unit}/edit"),
        format!("/sites/{theirs}"),
        format!("/sites/{theirs}/units/new"),
        format!("/contacts/{their_holder}"),
    ] {
        assert_eq!(b.get(&path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    let r = b
        .post(
            &format!("/units/{their_unit}/edit"),
            &[
                ("reference", "1"),
                ("name", "Mine now"),
                ("unit_type", "flat"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        b.post(&format!("/units/{their_unit}/archive"), &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let list = b.get("/units").await.body;
    assert!(
        list.contains("Flat Sunrise") && !list.contains("Flat Moonlight"),
        "{list}"
    );
    // Asking for the other site by id shows nothing either.
    assert!(
        !b.get(&format!("/units?site={theirs}"))
            .await
            .body
            .contains("Flat Moonlight")
    );
    let sites = b.get("/sites").await.body;
    assert!(!sites.contains("Riverside Court"), "{sites}");
    let found = b.get("/search?q=flat").await.body;
    assert!(
        found.contains("Flat Sunrise") && !found.contains("Flat Moonlight"),
        "{found}"
    );
    assert!(
        !b.get("/search?q=moonlight")
            .await
            .body
            .contains("Moonlight</a>")
    );
    let csv = b.get("/units/export.csv").await.body;
    assert!(
        csv.contains("Flat Sunrise") && !csv.contains("Flat Moonlight"),
        "{csv}"
    );
    assert!(!b.get("/contacts").await.body.contains("Moira"));
    assert!(!b.get("/contacts/export.csv").await.body.contains("Moira"));
}

#[tokio::test]
async fn a_read_only_member_reads_but_every_change_and_export_is_refused() {
    let (db, org, state) = setup().await;
    let mut tx = writer(&db, &org).await;
    let site = seed_site(&mut tx, "GC-001", "Goldcrest House").await;
    let unit = seed_unit(&mut tx, site, "1", "Flat 1").await;
    let contact = seed_person(&mut tx, "Jo", "Smith", "jo@example.com").await;
    tx.commit().await.unwrap();
    let reader = member(&db, &org, "rita", BuiltInRole::ReadOnly, Scope::AllSites).await;
    let b = Browser::signed_in(&state, &db, &org, &reader).await;

    let page = b.get(&format!("/sites/{site}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("Edit site") && !page.body.contains("Archive"));
    assert!(!b.get("/units").await.body.contains("Export CSV"));
    for (path, form) in [
        (format!("/sites/{site}/edit"), SITE_FORM.to_vec()),
        ("/sites/new".to_owned(), SITE_FORM.to_vec()),
        (format!("/units/{unit}/archive"), vec![]),
        (
            format!("/units/{unit}/leases/new"),
            vec![("starts_on", "01/01/2020")],
        ),
        (
            format!("/contacts/{contact}/edit"),
            vec![("kind", "person"), ("last_name", "X")],
        ),
        (
            "/vendors/new".to_owned(),
            vec![("name", "X"), ("trade", "Y")],
        ),
    ] {
        assert_eq!(
            b.post(&path, &form).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    assert_eq!(
        b.get("/units/export.csv").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        b.get(&format!("/contacts/{contact}/personal-data.zip"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(count(&db, &org, "site").await, 1);
    let mut tx = writer(&db, &org).await;
    let name = portfolio::site(&mut tx, site).await.unwrap().unwrap().name;
    tx.commit().await.unwrap();
    assert_eq!(name, "Goldcrest House");
}

#[tokio::test]
async fn searching_for_smith_in_goldcrest_never_finds_acmes_smith() {
    let (db, gold, state) = setup().await;
    let acme = db.org("acme", "Acme Property Group").await;
    let mut tx = writer(&db, &gold).await;
    let jane = seed_person(&mut tx, "Jane", "Smith", "jane@goldcrest.example").await;
    tx.commit().await.unwrap();
    let mut tx = writer(&db, &acme).await;
    let adam = seed_person(&mut tx, "Adam", "Smith", "adam@acme.example").await;
    tx.commit().await.unwrap();
    let manager = member(&db, &gold, "maria", BuiltInRole::Manager, Scope::AllSites).await;
    let b = Browser::signed_in(&state, &db, &gold, &manager).await;

    let found = b.get("/search?q=Smith").await;
    assert_eq!(found.status, StatusCode::OK);
    assert!(
        found.body.contains(&format!("/contacts/{jane}")),
        "{}",
        found.body
    );
    assert!(
        !found.body.contains(&adam.to_string()) && !found.body.contains("Adam"),
        "{}",
        found.body
    );
    assert!(
        found.body.contains("value=\"Smith\""),
        "the header box keeps the query"
    );
    let live = b.get("/search/live?q=smi").await;
    assert!(
        live.body.contains("Jane Smith") && !live.body.contains("Adam"),
        "{}",
        live.body
    );
    assert!(
        !live.body.contains("<html"),
        "the live results are a fragment"
    );
    // Acme's contact by id is simply not there.
    assert_eq!(
        b.get(&format!("/contacts/{adam}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_csv_export_has_the_filtered_rows_a_byte_order_mark_and_no_formulas() {
    let (db, org, state) = setup().await;
    let mut tx = writer(&db, &org).await;
    let here = seed_site(&mut tx, "GC-001", "Goldcrest House").await;
    let there = seed_site(&mut tx, "RC-001", "Riverside Court").await;
    seed_unit(&mut tx, here, "1", "=HYPERLINK(\"http://evil\")").await;
    seed_unit(&mut tx, here, "2", "Flat Émile").await;
    seed_unit(&mut tx, there, "1", "River Flat").await;
    tx.commit().await.unwrap();
    let manager = member(&db, &org, "maria", BuiltInRole::Manager, Scope::AllSites).await;
    let b = Browser::signed_in(&state, &db, &org, &manager).await;

    let list = b.get(&format!("/units?site={here}")).await.body;
    let href = format!("/units/export.csv?site={here}");
    assert!(
        list.contains(&href.replace('&', "&amp;")),
        "the list links its own filters: {list}"
    );
    let csv = b.get(&href).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.content_type.starts_with("text/csv"));
    assert!(
        csv.bytes.starts_with(b"\xEF\xBB\xBF"),
        "UTF-8 with a byte-order mark"
    );
    let text = csv.body.trim_start_matches('\u{feff}');
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("Site reference,Site,Unit reference,Name"),
        "{text}"
    );
    assert_eq!(lines.len(), 3, "header and this site's two units: {text}");
    assert!(
        text.contains("'=HYPERLINK"),
        "a formula is made text: {text}"
    );
    assert!(text.contains("Flat Émile"));
    assert!(!text.contains("River Flat"));
    let sites = b.get("/sites/export.csv?q=river").await.body;
    assert!(
        sites.contains("Riverside Court") && !sites.contains("Goldcrest House"),
        "{sites}"
    );
}

/// A geocoder that answers as configured.
struct FakeGeocoder(Result<Option<GeoPoint>, GeoError>);

#[async_trait::async_trait]
impl Geocoder for FakeGeocoder {
    fn provider(&self) -> &'static str {
        "fake"
    }

    async fn geocode(&self, _address: &str) -> Result<Option<GeoPoint>, GeoError> {
        self.0.clone()
    }

    async fn autocomplete(&self, _partial: &str) -> Result<Vec<AddressSuggestion>, GeoError> {
        Ok(Vec::new())
    }

    async fn static_map(&self, _at: Coordinates, _size: MapSize) -> Result<MapImage, GeoError> {
        Err(GeoError::Unavailable("a fake draws no maps".into()))
    }
}

async fn with_geocoder(db: &TestDb, answer: Result<Option<GeoPoint>, GeoError>) -> AppState {
    let mut settings: WebSettings = staff_people::web_settings();
    settings.geocoder = Some(Arc::new(FakeGeocoder(answer)));
    staff_people::state(db, settings).await
}

#[tokio::test]
async fn saving_a_site_places_it_on_the_map_and_a_geocoder_failure_only_adds_a_notice() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let manager = member(&db, &org, "maria", BuiltInRole::Manager, Scope::AllSites).await;

    let failing = with_geocoder(&db, Err(GeoError::QuotaExceeded)).await;
    let b = Browser::signed_in(&failing, &db, &org, &manager).await;
    let r = b.post("/sites/new", &SITE_FORM).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(r.location.contains("geo=quota"), "{}", r.location);
    let site = id_in(&r.location);
    let page = b.get(&r.location).await.body;
    assert!(
        page.contains("Site created.") && page.contains("usage limit has been reached"),
        "{page}"
    );
    assert!(!page.contains("Show on map"));

    let working = with_geocoder(
        &db,
        Ok(Some(GeoPoint {
            latitude: 53.7965,
            longitude: -1.5478,
            formatted: "1 High Street, Leeds LS1 1AA".into(),
        })),
    )
    .await;
    let b = Browser::signed_in(&working, &db, &org, &manager).await;
    let mut moved = SITE_FORM.to_vec();
    moved[3] = ("address_line_1", "3 High Street");
    let r = b.post(&format!("/sites/{site}/edit"), &moved).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(!r.location.contains("geo="), "{}", r.location);
    let page = b.get(&format!("/sites/{site}")).await.body;
    assert!(
        page.contains("Show on map") && page.contains("mlat=53.79650"),
        "{page}"
    );
}

/// The first bytes of a PNG file.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

/// A wiremock Mapbox: autocomplete and geocoding for "10 Downing Street", and its static map.
async fn mapbox_stand_in() -> wiremock::MockServer {
    use wiremock::matchers::{method, path, path_regex, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let feature = serde_json::json!({
        "type": "Feature",
        "geometry": { "type": "Point", "coordinates": [-0.127695, 51.503396] },
        "properties": {
            "mapbox_id": "dXJuOm1ieGFkcjpkb3duaW5nLTEw",
            "feature_type": "address",
            "full_address": "10 Downing Street, London, SW1A 2AA, United Kingdom",
            "name": "10 Downing Street",
            "place_formatted": "London, SW1A 2AA, United Kingdom",
            "context": {
                "postcode": { "name": "SW1A 2AA" },
                "locality": { "name": "Westminster" },
                "place": { "name": "London" }
            }
        }
    });
    let collection = serde_json::json!({ "type": "FeatureCollection", "features": [feature] });
    Mock::given(method("GET"))
        .and(path("/search/geocode/v6/forward"))
        .and(query_param("autocomplete", "true"))
        .and(query_param("q", "10 downing"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&collection))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/search/geocode/v6/forward"))
        .and(query_param("limit", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&collection))
        .mount(&server)
        .await;
    // The first map is drawn; after it Mapbox says the quota is spent.
    Mock::given(method("GET"))
        .and(path_regex("^/styles/v1/mapbox/streets-v12/static/"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(PNG, "image/png"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/styles/v1/mapbox/streets-v12/static/"))
        .respond_with(
            ResponseTemplate::new(429)
                .set_body_json(serde_json::json!({"message": "Too Many Requests"})),
        )
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn address_forms_look_addresses_up_and_the_site_page_shows_its_map_through_mapbox() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let manager = member(&db, &org, "maria", BuiltInRole::Manager, Scope::AllSites).await;

    // With no maps provider: no look-up on the forms, and no map.
    let plain = staff_people::state(&db, staff_people::web_settings()).await;
    let b = Browser::signed_in(&plain, &db, &org, &manager).await;
    for form in [
        "/sites/new",
        "/contacts/new",
        "/vendors/new",
        "/estates/new",
    ] {
        let page = b.get(form).await;
        assert_eq!(page.status, StatusCode::OK, "{form}");
        assert!(!page.body.contains("data-address-lookup"), "{form}");
    }
    let r = b.get("/addresses/suggest?q=10%20downing").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("enter the address by hand"), "{}", r.body);
    let unmapped = b.create("/sites/new", &SITE_FORM).await;
    assert_eq!(
        b.get(&format!("/sites/{unmapped}/map")).await.status,
        StatusCode::NOT_FOUND
    );

    // With Mapbox (a wiremock stand-in answering as its docs say).
    let mapbox = mapbox_stand_in().await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut settings: WebSettings = staff_people::web_settings();
    settings.geocoder = Some(Arc::new(
        MapboxGeocoder::new(
            secrecy::SecretString::from("pk.test-token".to_owned()),
            Some(&mapbox.uri()),
        )
        .unwrap(),
    ));
    let mapped = staff_people::state(&db, settings).await;
    let b = Browser::signed_in(&mapped, &db, &org, &manager).await;
    let form = b.get("/sites/new").await.body;
    assert!(
        form.contains(r#"data-fill="address_line_1 address_line_2 city postcode""#)
            && form.contains(
                r#"data-fill="landlord_line_1 landlord_line_2 landlord_city landlord_postcode""#
            )
            && form.contains("/static/proplink.js"),
        "{form}"
    );
    let r = b.get("/addresses/suggest?q=10%20downing").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let answer: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let first = &answer["suggestions"][0];
    assert_eq!(first["line_1"], "10 Downing Street");
    assert_eq!(first["line_2"], "Westminster");
    assert_eq!(first["city"], "London");
    assert_eq!(first["postcode"], "SW1A 2AA");
    // Two letters ask nothing of the provider (its mock expects exactly one call); an essay is
    // refused with a reason.
    let r = b.get("/addresses/suggest?q=10").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains(r#""suggestions":[]"#), "{}", r.body);
    let essay = "a".repeat(201);
    let r = b.get(&format!("/addresses/suggest?q={essay}")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("longer than an address"), "{}", r.body);

    // A new site is geocoded on save; its page shows the map, drawn through our server.
    let mut downing = SITE_FORM.to_vec();
    downing[0] = ("reference", "GC-010");
    downing[3] = ("address_line_1", "10 Downing Street");
    downing[4] = ("city", "London");
    downing[5] = ("postcode", "SW1A 2AA");
    let site = b.create("/sites/new", &downing).await;
    let page = b.get(&format!("/sites/{site}")).await.body;
    assert!(
        page.contains(&format!(r#"src="/sites/{site}/map""#)),
        "{page}"
    );
    assert!(!page.contains("pk.test-token"));
    let map = b.get(&format!("/sites/{site}/map")).await;
    assert_eq!(map.status, StatusCode::OK);
    assert_eq!(map.content_type, "image/png");
    assert_eq!(map.bytes, PNG);
    // The provider's quota is spent now: the map says so and the page still works.
    let map = b.get(&format!("/sites/{site}/map")).await;
    assert_eq!(map.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(map.content_type, "image/svg+xml");
    assert!(map.body.contains("usage limit"), "{}", map.body);

    // A member scoped to another site cannot fetch this one's map.
    let elsewhere = member(
        &db,
        &org,
        "sam",
        BuiltInRole::Manager,
        Scope::Sites([unmapped].into()),
    )
    .await;
    let b = Browser::signed_in(&mapped, &db, &org, &elsewhere).await;
    assert_eq!(
        b.get(&format!("/sites/{site}/map")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn contacts_are_merged_only_with_permission_and_personal_data_is_exported() {
    let (db, org, state) = setup().await;
    let mut tx = writer(&db, &org).await;
    let keep = seed_person(&mut tx, "Jo", "Smith", "jo@example.com").await;
    let dup = seed_person(&mut tx, "Joanne", "Smith", "JO@example.com").await;
    tx.commit().await.unwrap();
    let manager = member(&db, &org, "maria", BuiltInRole::Manager, Scope::AllSites).await;
    let b = Browser::signed_in(&state, &db, &org, &manager).await;

    let page = b.get(&format!("/contacts/{keep}")).await.body;
    assert!(
        page.contains("Possible duplicates") && page.contains("same e-mail"),
        "{page}"
    );
    assert!(page.contains(&format!("/contacts/{keep}/merge?with={dup}")));
    let confirm = b.get(&format!("/contacts/{keep}/merge?with={dup}")).await;
    assert_eq!(confirm.status, StatusCode::OK);
    let r = b
        .post(
            &format!("/contacts/{keep}/merge"),
            &[("duplicate", &dup.to_string())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let list = b.get("/contacts?q=smith").await.body;
    assert!(
        list.contains(&format!("/contacts/{keep}")) && !list.contains(&format!("/contacts/{dup}"))
    );

    // The subject-access file: a ZIP of a README, the whole record as JSON and a CSV per part.
    let file = b.get(&format!("/contacts/{keep}/personal-data.zip")).await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.content_type, "application/zip");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(file.bytes)).unwrap();
    let mut read = |name: &str| {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut zip.by_name(name).unwrap(), &mut text).unwrap();
        text
    };
    let doc: serde_json::Value = serde_json::from_str(&read("personal-data.json")).unwrap();
    assert_eq!(doc["contact"]["last_name"], "Smith");
    assert!(read("README.txt").contains("Article 15"));
    let profile = read("profile.csv");
    assert!(
        profile.starts_with('\u{feff}') && profile.contains("last_name,Smith"),
        "{profile}"
    );
    // Both addresses, the duplicate's moved over by the merge.
    let emails = read("emails.csv");
    assert!(
        emails.contains("jo@example.com") && emails.lines().count() >= 2,
        "{emails}"
    );
    let events = read("audit-events.csv");
    assert!(
        events.lines().next().unwrap().contains("seq") && events.contains("contact"),
        "{events}"
    );
    assert!(read("merged-records.csv").contains(&dup.to_string()));

    let reader = member(&db, &org, "rita", BuiltInRole::ReadOnly, Scope::AllSites).await;
    let r = Browser::signed_in(&state, &db, &org, &reader).await;
    assert!(
        !r.get(&format!("/contacts/{keep}"))
            .await
            .body
            .contains("/merge?with=")
    );
    assert_eq!(
        r.post(
            &format!("/contacts/{keep}/merge"),
            &[("duplicate", &dup.to_string())]
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn the_portfolio_pages_label_every_control() {
    let (db, org, state) = setup().await;
    let mut tx = writer(&db, &org).await;
    let site = seed_site(&mut tx, "GC-001", "Goldcrest House").await;
    let unit = seed_unit(&mut tx, site, "1", "Flat 1").await;
    tx.commit().await.unwrap();
    let owner = member(
        &db,
        &org,
        "olive",
        BuiltInRole::OrganisationOwner,
        Scope::AllSites,
    )
    .await;
    let b = Browser::signed_in(&state, &db, &org, &owner).await;
    for path in [
        "/estates".to_owned(),
        "/estates/new".to_owned(),
        "/sites".to_owned(),
        "/sites/new".to_owned(),
        format!("/sites/{site}"),
        format!("/sites/{site}/buildings/new"),
        format!("/sites/{site}/spaces/new"),
        format!("/sites/{site}/units/new"),
        "/units".to_owned(),
        format!("/units/{unit}"),
        format!("/units/{unit}/leases/new"),
        format!("/units/{unit}/occupants/new"),
        "/contacts".to_owned(),
        "/contacts/new".to_owned(),
        "/vendors".to_owned(),
        "/vendors/new".to_owned(),
        "/search?q=flat".to_owned(),
    ] {
        let r = b.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        for tag in ["<input", "<select", "<textarea"] {
            for piece in r.body.split(tag).skip(1) {
                let element = piece.split('>').next().unwrap_or_default();
                if element.contains("type=\"hidden\"") {
                    continue;
                }
                let id = element
                    .split("id=\"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or_default();
                assert!(
                    !id.is_empty() && r.body.contains(&format!("<label for=\"{id}\"")),
                    "{path}: unlabelled {tag}{element}>"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_site_shows_its_management_company_with_directors_and_warns_of_a_missing_landlord() {
    let (db, org, state) = setup().await;
    let mut tx = writer(&db, &org).await;
    let site = seed_site(&mut tx, "GC-001", "Goldcrest House").await;
    let pat = seed_person(&mut tx, "Pat", "Director", "pat@example.com").await;
    tx.commit().await.unwrap();
    let manager = member(&db, &org, "maria", BuiltInRole::Manager, Scope::AllSites).await;
    let b = Browser::signed_in(&state, &db, &org, &manager).await;
    assert!(
        b.get(&format!("/sites/{site}"))
            .await
            .body
            .contains("No landlord is recorded")
    );

    let rmc = b
        .create(
            "/contacts/new",
            &[
                ("kind", "company"),
                ("company_name", "Goldcrest RMC Ltd"),
                ("company_number", "01234567"),
                ("correspondence", "email"),
                ("emails", "rmc@example.com"),
            ],
        )
        .await;
    let r = b
        .post(
            &format!("/contacts/{rmc}/officers/new"),
            &[
                ("person", &pat.to_string()),
                ("position", "director"),
                ("appointed_on", "01/02/2023"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    // A person has no officers.
    assert_eq!(
        b.get(&format!("/contacts/{pat}/officers/new")).await.status,
        StatusCode::NOT_FOUND
    );

    let rmc_id = rmc.to_string();
    let mut form = SITE_FORM.to_vec();
    form.push(("management_company", &rmc_id));
    // A company without saying which kind is refused.
    let r = b.post(&format!("/sites/{site}/edit"), &form).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("right to manage company"), "{}", r.body);
    form.push(("management_company_kind", "rmc"));
    let r = b.post(&format!("/sites/{site}/edit"), &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = b.get(&format!("/sites/{site}")).await.body;
    assert!(
        page.contains("Goldcrest RMC Ltd") && page.contains("Pat Director"),
        "{page}"
    );
    assert!(!page.contains("No landlord is recorded"));

    // Pat resigns: not before the appointment; afterwards the site lists no director and the
    // company's page keeps Pat as a former officer.
    let company = b.get(&format!("/contacts/{rmc}")).await.body;
    let resign = company
        .split("/officers/")
        .filter_map(|rest| rest.split('"').next())
        .find(|link| link.ends_with("/resign"))
        .map(|link| format!("/contacts/{rmc}/officers/{link}"))
        .unwrap();
    assert!(company.contains("Record resignation"), "{company}");
    let r = b.post(&resign, &[("resigned_on", "01/01/2023")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("They were appointed on 1 February 2023"),
        "{}",
        r.body
    );
    assert!(
        b.get(&format!("/sites/{site}"))
            .await
            .body
            .contains("Pat Director")
    );
    let r = b.post(&resign, &[("resigned_on", "31/03/2025")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = b.get(&format!("/sites/{site}")).await.body;
    assert!(page.contains("No directors recorded"), "{page}");
    let company = b.get(&format!("/contacts/{rmc}")).await.body;
    assert!(company.contains("Pat Director") && company.contains("(resigned)"));
    // Someone else's officer id under this company is not found.
    assert_eq!(
        b.post(
            &format!("/contacts/{rmc}/officers/{pat}/resign"),
            &[("resigned_on", "31/03/2025")]
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_occupant_moves_out_on_a_date_after_they_moved_in_and_the_history_keeps_them() {
    let (db, org, state) = setup().await;
    let other = db.org("acme", "Acme").await;
    let mut tx = writer(&db, &org).await;
    let site = seed_site(&mut tx, "GC-001", "Goldcrest House").await;
    let unit = seed_unit(&mut tx, site, "1", "Flat 1").await;
    let tina = seed_person(&mut tx, "Tina", "Tenant", "tina@example.com").await;
    tx.commit().await.unwrap();
    let manager = member(&db, &org, "maria", BuiltInRole::Manager, Scope::AllSites).await;
    let b = Browser::signed_in(&state, &db, &org, &manager).await;
    let r = b
        .post(
            &format!("/units/{unit}/occupants/new"),
            &[
                ("contact", &tina.to_string()),
                ("kind", "tenant"),
                ("starts_on", "01/03/2024"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = b.get(&format!("/units/{unit}")).await.body;
    let link = page
        .split("/occupants/")
        .filter_map(|rest| rest.split('"').next())
        .find(|link| link.ends_with("/end"))
        .unwrap();
    assert!(page.contains("Record moving out"), "{page}");
    let path = format!("/units/{unit}/occupants/{link}");
    assert_eq!(b.get(&path).await.status, StatusCode::OK);

    // Before they moved in, blank, or not a date: refused, nothing changed.
    for (date, says) in [
        ("01/02/2024", "They moved in on 1 March 2024"),
        ("", "Enter the date they moved out"),
        ("31/02/2025", ""),
    ] {
        let r = b.post(&path, &[("ends_on", date)]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{date}");
        assert!(r.body.contains(says), "{date}: {}", r.body);
    }
    assert!(
        b.get(&format!("/units/{unit}"))
            .await
            .body
            .contains("From 1 March 2024")
    );

    let r = b.post(&path, &[("ends_on", "30/09/2025")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = b.get(&format!("/units/{unit}")).await.body;
    assert!(
        page.contains("Tina Tenant") && page.contains("1 March 2024 to 30 September 2025"),
        "{page}"
    );
    assert!(page.contains("Change move-out date"), "{page}");

    // A reader cannot; another organisation's member cannot even find it.
    let reader = member(&db, &org, "rita", BuiltInRole::ReadOnly, Scope::AllSites).await;
    let r = Browser::signed_in(&state, &db, &org, &reader).await;
    assert_eq!(
        r.post(&path, &[("ends_on", "01/10/2025")]).await.status,
        StatusCode::FORBIDDEN
    );
    let outsider = member(&db, &other, "otto", BuiltInRole::Manager, Scope::AllSites).await;
    let o = Browser::signed_in(&state, &db, &other, &outsider).await;
    assert_eq!(
        o.post(&path, &[("ends_on", "01/10/2025")]).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(
        b.get(&format!("/units/{unit}"))
            .await
            .body
            .contains("1 March 2024 to 30 September 2025")
    );
}

#[tokio::test]
async fn a_broad_text_filter_says_more_than_a_thousand_units_and_still_pages_on() {
    let (db, org, state) = setup().await;
    let mut tx = writer(&db, &org).await;
    let site = seed_site(&mut tx, "GC-001", "Goldcrest House").await;
    sqlx::query(
        "insert into unit (organisation_id, id, site_id, reference, name, unit_type)
         select proplink.current_org(), gen_random_uuid(), $1, 'A' || g, 'Flat A' || g, 'flat'
           from generate_series(1, 1010) g",
    )
    .bind(site)
    .execute(tx.conn())
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let manager = member(&db, &org, "maria", BuiltInRole::Manager, Scope::AllSites).await;
    let b = Browser::signed_in(&state, &db, &org, &manager).await;
    let page = b.get("/units?q=flat+a").await.body;
    assert!(page.contains("More than 1,000 units match"), "{page}");
    assert!(page.contains("Page 1 of 20+"), "{page}");
    let page = b.get("/units?q=flat+a&page=20").await.body;
    assert!(page.contains("Next page"), "{page}");
    let page = b.get("/units?q=flat+a&page=21").await.body;
    assert!(page.contains("Flat A999"), "{page}");
    assert!(b.get("/units").await.body.contains("1,010 units"));
}

#[tokio::test]
async fn an_archived_space_is_listed_apart_and_restored_by_permission() {
    let (db, org, state) = setup().await;
    let mut tx = writer(&db, &org).await;
    let site = seed_site(&mut tx, "GC-001", "Goldcrest House").await;
    let other_site = seed_site(&mut tx, "GC-002", "South Court").await;
    tx.commit().await.unwrap();
    let manager = member(&db, &org, "maria", BuiltInRole::Manager, Scope::AllSites).await;
    let b = Browser::signed_in(&state, &db, &org, &manager).await;
    let r = b
        .post(
            &format!("/sites/{site}/spaces/new"),
            &[("name", "Bin store"), ("kind", "bin_store")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let space: Uuid = sqlx::query_scalar("select id from space where name = 'Bin store'")
        .fetch_one(&mut db.superuser().await)
        .await
        .unwrap();
    let restore = format!("/sites/{site}/spaces/{space}/restore");
    // A space in use cannot be "restored".
    assert_eq!(b.post(&restore, &[]).await.status, StatusCode::NOT_FOUND);
    let r = b
        .post(&format!("/sites/{site}/spaces/{space}/archive"), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = b.get(&format!("/sites/{site}")).await.body;
    assert!(
        page.contains("Archived spaces") && page.contains(&restore),
        "{page}"
    );
    // Not through another site's address, and not by a reader.
    assert_eq!(
        b.post(&format!("/sites/{other_site}/spaces/{space}/restore"), &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let reader = member(&db, &org, "rita", BuiltInRole::ReadOnly, Scope::AllSites).await;
    let r = Browser::signed_in(&state, &db, &org, &reader).await;
    assert_eq!(r.post(&restore, &[]).await.status, StatusCode::FORBIDDEN);
    assert!(
        !r.get(&format!("/sites/{site}"))
            .await
            .body
            .contains(&restore)
    );

    let r = b.post(&restore, &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = b
        .get(&format!("/sites/{site}?done=restored_space"))
        .await
        .body;
    assert!(page.contains("Space restored."), "{page}");
    assert!(!page.contains("Archived spaces"), "{page}");
    assert!(page.contains("Bin store"));
}

#[tokio::test]
async fn an_administrator_erases_a_contact_after_seeing_what_is_kept_and_why() {
    let (db, org, state) = setup().await;
    let mut tx = writer(&db, &org).await;
    let pat = seed_person(&mut tx, "Pat", "Quennell", "pat@example.com").await;
    tx.commit().await.unwrap();

    // A manager runs the portfolio but cannot erase: that is kept for administrators.
    let manager = member(&db, &org, "maria", BuiltInRole::Manager, Scope::AllSites).await;
    let b = Browser::signed_in(&state, &db, &org, &manager).await;
    assert!(
        !b.get(&format!("/contacts/{pat}"))
            .await
            .body
            .contains("/erase")
    );
    assert_eq!(
        b.get(&format!("/contacts/{pat}/erase")).await.status,
        StatusCode::FORBIDDEN
    );

    let admin = member(
        &db,
        &org,
        "ade",
        BuiltInRole::Administrator,
        Scope::AllSites,
    )
    .await;
    let b = Browser::signed_in(&state, &db, &org, &admin).await;
    let page = b.get(&format!("/contacts/{pat}")).await.body;
    assert!(page.contains(&format!("/contacts/{pat}/erase")), "{page}");
    let confirm = b.get(&format!("/contacts/{pat}/erase")).await.body;
    assert!(
        confirm.contains("Will be erased")
            && confirm.contains("Kept, with the legal basis")
            && confirm.contains("Limitation Act 1980"),
        "{confirm}"
    );
    // No reason: refused, nothing erased.
    let r = b
        .post(&format!("/contacts/{pat}/erase"), &[("reason", " ")])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Give the reason"), "{}", r.body);
    assert!(
        b.get(&format!("/contacts/{pat}"))
            .await
            .body
            .contains("Quennell")
    );

    let r = b
        .post(
            &format!("/contacts/{pat}/erase"),
            &[("reason", "E-mail of 1 May 2026")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = b.get(&r.location).await.body;
    assert!(
        page.contains("Personal data erased")
            && page.contains("personal data was erased on")
            && page.contains("Erased contact"),
        "{page}"
    );
    assert!(!page.contains("Quennell") && !page.contains("pat@example.com"));
    assert!(!page.contains(&format!("/contacts/{pat}/edit")));
    // The history reads without the erased values, and the record cannot be edited back.
    let r = b
        .post(
            &format!("/contacts/{pat}/edit"),
            &[
                ("kind", "person"),
                ("last_name", "Quennell"),
                ("correspondence", "post"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// With more contacts than a picker lists (the first 500 by name), the picker's search finds
/// the others, and choosing one of them is accepted; an unknown or archived id still is not.
#[tokio::test]
async fn contacts_beyond_the_first_500_are_found_by_the_pickers_search_and_accepted() {
    let (db, org, state) = setup().await;
    let mut tx = writer(&db, &org).await;
    let site = seed_site(&mut tx, "GC-001", "Goldcrest House").await;
    let unit = seed_unit(&mut tx, site, "1", "Flat 1").await;
    sqlx::query(
        "insert into contact (organisation_id, id, kind, first_name, last_name, display_name)
         select proplink.current_org(), gen_random_uuid(), 'person', 'Anna', 'Able ' || g,
                'Anna Able ' || lpad(g::text, 3, '0')
           from generate_series(1, 505) g",
    )
    .execute(tx.conn())
    .await
    .unwrap();
    let zed = seed_person(&mut tx, "Zed", "Zimmerman", "zed@example.com").await;
    tx.commit().await.unwrap();
    let manager = member(&db, &org, "maria", BuiltInRole::Manager, Scope::AllSites).await;
    let b = Browser::signed_in(&state, &db, &org, &manager).await;

    let form = b.get(&format!("/units/{unit}/leases/new")).await.body;
    assert!(
        !form.contains(&zed.to_string()),
        "Zed is beyond the first 500"
    );
    assert!(
        form.contains(r#"data-search="/contacts/choices""#),
        "{form}"
    );
    let found = b.get("/contacts/choices?q=zimm").await;
    assert_eq!(found.status, StatusCode::OK);
    let answer: serde_json::Value = serde_json::from_str(&found.body).unwrap();
    assert_eq!(answer["choices"][0]["value"], zed.to_string());
    assert_eq!(
        answer["choices"][0]["label"],
        "Zed Zimmerman (zed@example.com)"
    );
    // One letter asks nothing.
    assert!(
        b.get("/contacts/choices?q=z")
            .await
            .body
            .contains(r#""choices":[]"#)
    );

    // A made-up id is still refused; Zed's is accepted.
    let r = b
        .post(
            &format!("/units/{unit}/leases/new"),
            &[
                ("holder_1", Uuid::now_v7().to_string().as_str()),
                ("starts_on", "01/06/2024"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = b
        .post(
            &format!("/units/{unit}/leases/new"),
            &[
                ("holder_1", zed.to_string().as_str()),
                ("starts_on", "01/06/2024"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(
        b.get(&format!("/units/{unit}"))
            .await
            .body
            .contains("Zed Zimmerman")
    );
}
