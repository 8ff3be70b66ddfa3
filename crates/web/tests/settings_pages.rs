//! Settings pages end to end (docs-spec §2.2, §2.18): Organisation, Modules, Roles and the
//! set-up wizard, through real requests from members signed in with real sessions.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails by panicking, helpers included"
)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use proplink_auth::codes::CodeKey;
use proplink_auth::links;
use proplink_auth::password::HashParams;
use proplink_db::access::{self, NewInvitation, RoleChoice};
use proplink_db::organisation::Organisation;
use proplink_db::profile::{self, Profile};
use proplink_domain::permissions::{BuiltInRole, Scope};
use proplink_test_support::TestDb;
use proplink_web::{AppState, Domains, WebSettings};
use std::collections::BTreeSet;
use time::OffsetDateTime;
use tower::ServiceExt;
use uuid::Uuid;

const OWNER: RoleChoice = RoleChoice::BuiltIn(BuiltInRole::OrganisationOwner);
const READ_ONLY: RoleChoice = RoleChoice::BuiltIn(BuiltInRole::ReadOnly);

fn app(db: &TestDb) -> Router {
    let mut settings = WebSettings::new(Domains::default());
    settings.password_params = HashParams::TESTING;
    // These pages send no one-time codes: a fresh key keeps the tests independent of the
    // database's stored one.
    let state = AppState::with_code_key(db.app.clone(), settings, CodeKey::generate()).unwrap();
    proplink_web::app(state)
}

/// A member of `org` with `role`, signed in: the browser flow's end state, written directly.
struct Browser {
    host: String,
    cookie: String,
    membership: Uuid,
}

async fn invite(db: &TestDb, org: &Organisation, email: &str, role: RoleChoice) -> (Uuid, Uuid) {
    let now = OffsetDateTime::now_utc();
    let mut tx = db.app.begin(&db.staff(org, "Test set-up")).await.unwrap();
    let (_, invitation_hash) = links::new_token();
    let new = NewInvitation {
        email: email.to_owned(),
        name: email.split('@').next().unwrap().to_owned(),
        role,
        scope: Scope::AllSites,
        welcome_message: None,
        is_owner: false,
    };
    let membership = access::invite(
        &mut tx,
        &new,
        &invitation_hash,
        "http://example.test/invitation",
        &org.name,
        None,
        now,
    )
    .await
    .unwrap()
    .unwrap();
    let row = access::member(&mut tx, membership).await.unwrap().unwrap();
    assert!(
        access::accept_invitation(&mut tx, row.invitation_id.unwrap(), now)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    (membership, row.user_id)
}

async fn sign_in(db: &TestDb, org: &Organisation, email: &str, role: RoleChoice) -> Browser {
    let (membership, user) = invite(db, org, email, role).await;
    let mut tx = db.app.begin(&db.staff(org, "Test set-up")).await.unwrap();
    let (token, hash) = links::new_token();
    access::start_session(
        &mut tx,
        membership,
        user,
        &hash,
        None,
        None,
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    Browser {
        host: format!("{}.proplink.localhost", org.slug),
        cookie: format!("pl_session={token}"),
        membership,
    }
}

struct Reply {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Browser {
    async fn send(&self, app: &Router, req: Request<Body>) -> Reply {
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let location = resp
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(resp.into_body(), 10 * 1024 * 1024)
            .await
            .unwrap();
        Reply {
            status,
            location,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&self, app: &Router, path: &str) -> Reply {
        let req = Request::get(path)
            .header(header::HOST, &self.host)
            .header(header::COOKIE, &self.cookie)
            .body(Body::empty())
            .unwrap();
        self.send(app, req).await
    }

    async fn post(&self, app: &Router, path: &str, form: &[(&str, &str)]) -> Reply {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let req = Request::post(path)
            .header(header::HOST, &self.host)
            .header(header::COOKIE, &self.cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ORIGIN, format!("http://{}", self.host))
            .header("sec-fetch-site", "same-origin")
            .body(Body::from(body))
            .unwrap();
        self.send(app, req).await
    }
}

async fn stored_profile(db: &TestDb, org: &Organisation) -> Profile {
    let mut tx = db.app.begin(&db.staff(org, "Checker")).await.unwrap();
    profile::get(&mut tx).await.unwrap()
}

async fn grants_of(db: &TestDb, org: &Organisation, membership: Uuid) -> BTreeSet<String> {
    let mut tx = db.app.begin(&db.staff(org, "Checker")).await.unwrap();
    access::grants(&mut tx, membership)
        .await
        .unwrap()
        .permissions
        .iter()
        .map(|p| p.as_str().to_owned())
        .collect()
}

const COMPANY: [(&str, &str); 7] = [
    ("trading_name", "Goldcrest Estates"),
    ("registered_name", "Goldcrest Estates Limited"),
    ("company_number", " sc 123456 "),
    ("vat_number", "gb 123 4567 89"),
    ("registered_office", "1 High Street\r\nLondon N1 1AA"),
    ("brand_colour", "1D4E89"),
    ("email_footer", "Goldcrest Estates, regulated by RICS."),
];

fn with(
    form: &[(&'static str, &'static str)],
    key: &str,
    value: &'static str,
) -> Vec<(&'static str, &'static str)> {
    form.iter()
        .map(|&(k, v)| (k, if k == key { value } else { v }))
        .collect()
}

#[tokio::test]
async fn saving_company_details_normalises_and_stores_them() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let app = app(&db);
    let owner = sign_in(&db, &org, "owner@goldcrest.test", OWNER).await;

    let reply = owner.post(&app, "/settings/organisation", &COMPANY).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(
        reply.location.as_deref(),
        Some("/settings/organisation?saved=1")
    );

    let stored = stored_profile(&db, &org).await;
    assert_eq!(stored.company_number.as_deref(), Some("SC123456"));
    assert_eq!(stored.vat_number.as_deref(), Some("GB123456789"));
    assert_eq!(stored.brand_colour.as_deref(), Some("#1d4e89"));
    assert_eq!(
        stored.registered_office.as_deref(),
        Some("1 High Street\nLondon N1 1AA")
    );

    let page = owner.get(&app, "/settings/organisation?saved=1").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Organisation details saved"));
    assert!(page.body.contains(r#"value="SC123456""#), "{}", page.body);
}

#[tokio::test]
async fn an_invalid_vat_number_is_refused_with_its_own_message_and_nothing_is_stored() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let app = app(&db);
    let owner = sign_in(&db, &org, "owner@goldcrest.test", OWNER).await;

    let form = with(&COMPANY, "vat_number", "GB12345");
    let reply = owner.post(&app, "/settings/organisation", &form).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        reply
            .body
            .contains("A UK VAT number is GB followed by 9 or 12 digits"),
        "{}",
        reply.body
    );
    assert!(reply.body.contains(r##"href="#field-vat_number""##));
    // What was typed comes back, so nothing has to be retyped.
    assert!(reply.body.contains(r#"value="GB12345""#));
    assert!(reply.body.contains(r#"value="Goldcrest Estates Limited""#));
    assert!(
        !reply.body.contains("Companies House number is 8 digits"),
        "only the wrong field is reported"
    );
    assert_eq!(stored_profile(&db, &org).await.trading_name, None);

    let form = with(&COMPANY, "company_number", "1234567");
    let reply = owner.post(&app, "/settings/organisation", &form).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reply.body.contains(
        "A Companies House number is 8 digits, or 2 letters and 6 digits, e.g. 01234567 or SC123456."
    ));
    let form = with(&COMPANY, "brand_colour", "blue");
    let reply = owner.post(&app, "/settings/organisation", &form).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        reply
            .body
            .contains("A colour is # followed by 6 hexadecimal digits")
    );
    assert_eq!(stored_profile(&db, &org).await.company_number, None);
}

#[tokio::test]
async fn a_read_only_member_sees_the_settings_without_forms_and_cannot_change_them() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let app = app(&db);
    let owner = sign_in(&db, &org, "owner@goldcrest.test", OWNER).await;
    let reader = sign_in(&db, &org, "reader@goldcrest.test", READ_ONLY).await;
    owner.post(&app, "/settings/organisation", &COMPANY).await;

    let page = reader.get(&app, "/settings/organisation").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Goldcrest Estates Limited"));
    assert!(!page.body.contains(r#"action="/settings/organisation""#));

    let form = with(&COMPANY, "trading_name", "Taken Over Ltd");
    let reply = reader.post(&app, "/settings/organisation", &form).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        stored_profile(&db, &org).await.trading_name.as_deref(),
        Some("Goldcrest Estates")
    );

    let modules = reader.get(&app, "/settings/modules").await;
    assert_eq!(modules.status, StatusCode::OK);
    assert!(!modules.body.contains(r#"action="/settings/modules""#));
    let reply = reader
        .post(&app, "/settings/modules", &[("module", "block")])
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);

    let roles = reader.get(&app, "/settings/roles").await;
    assert_eq!(roles.status, StatusCode::OK);
    assert!(!roles.body.contains("/settings/roles/new"));
    let reply = reader
        .post(
            &app,
            "/settings/roles/new",
            &[("name", "Sneaky"), ("permission", "settings.billing")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);

    // The index lists what the member may use: Read Only cannot read the audit log.
    let index = reader.get(&app, "/settings").await;
    assert_eq!(index.status, StatusCode::OK);
    assert!(index.body.contains(r#"href="/settings/organisation""#));
    assert!(!index.body.contains(r#"href="/audit""#));
}

#[tokio::test]
async fn the_settings_index_is_not_found_for_a_member_who_may_use_no_section() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let app = app(&db);
    let owner = sign_in(&db, &org, "owner@goldcrest.test", OWNER).await;
    let reply = owner
        .post(
            &app,
            "/settings/roles/new",
            &[("name", "Helpdesk"), ("permission", "ticket.read")],
        )
        .await;
    let id = role_id(&reply);
    let helpdesk = sign_in(&db, &org, "help@goldcrest.test", RoleChoice::Custom(id)).await;
    assert_eq!(
        helpdesk.get(&app, "/settings").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(owner.get(&app, "/settings").await.status, StatusCode::OK);
}

fn role_id(reply: &Reply) -> Uuid {
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let location = reply.location.as_deref().unwrap();
    let id = location
        .strip_prefix("/settings/roles/")
        .and_then(|rest| rest.split('?').next())
        .unwrap();
    Uuid::parse_str(id).unwrap()
}

#[tokio::test]
async fn a_custom_role_grants_exactly_the_permissions_ticked() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let app = app(&db);
    let owner = sign_in(&db, &org, "owner@goldcrest.test", OWNER).await;

    let form = owner.get(&app, "/settings/roles/new").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("<legend>Supplier bills</legend>"));
    assert!(
        form.body
            .contains(r#"<label for="perm-bill-pay">Pay</label>"#)
    );

    let reply = owner
        .post(
            &app,
            "/settings/roles/new",
            &[
                ("name", "  Surveyors "),
                ("description", "External building surveyors."),
                ("permission", "site.read"),
                ("permission", "compliance.update"),
            ],
        )
        .await;
    let id = role_id(&reply);

    let member = sign_in(&db, &org, "surveyor@goldcrest.test", RoleChoice::Custom(id)).await;
    assert_eq!(
        grants_of(&db, &org, member.membership).await,
        BTreeSet::from(["site.read".to_owned(), "compliance.update".to_owned()])
    );

    // Editing: the form comes back with the role's permissions ticked, and saving replaces them.
    let page = owner
        .get(&app, &format!("/settings/roles/{id}?saved=1"))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Role saved."));
    assert!(page.body.contains(r#"value="Surveyors""#));
    assert!(page.body.contains(r#"value="site.read" checked"#));
    assert!(page.body.contains(r#"value="site.create">"#));
    let reply = owner
        .post(
            &app,
            &format!("/settings/roles/{id}"),
            &[("name", "Surveyors"), ("permission", "site.read")],
        )
        .await;
    assert_eq!(role_id(&reply), id);
    assert_eq!(
        grants_of(&db, &org, member.membership).await,
        BTreeSet::from(["site.read".to_owned()])
    );
}

#[tokio::test]
async fn role_forms_are_refused_with_a_message_for_each_mistake() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let app = app(&db);
    let owner = sign_in(&db, &org, "owner@goldcrest.test", OWNER).await;
    let first = owner
        .post(
            &app,
            "/settings/roles/new",
            &[("name", "Surveyors"), ("permission", "site.read")],
        )
        .await;
    role_id(&first);

    let cases: [(&[(&str, &str)], &str); 5] = [
        (
            &[("name", "SURVEYORS"), ("permission", "site.read")],
            "There is already a role called Surveyors",
        ),
        (
            &[("name", "Manager"), ("permission", "site.read")],
            "Manager is the name of a built-in role",
        ),
        (&[("name", "Nobody")], "Choose at least one permission"),
        (
            &[("name", "Pilots"), ("permission", "plane.fly")],
            "These permissions do not exist: plane.fly",
        ),
        (
            &[("name", "  "), ("permission", "site.read")],
            "Enter a name for the role.",
        ),
    ];
    for (form, message) in cases {
        let reply = owner.post(&app, "/settings/roles/new", form).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{message}");
        assert!(reply.body.contains(message), "{message}: {}", reply.body);
    }
    let long = "x".repeat(81);
    let reply = owner
        .post(
            &app,
            "/settings/roles/new",
            &[("name", long.as_str()), ("permission", "site.read")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reply.body.contains("at most 80 characters"));

    let mut tx = db.app.begin(&db.staff(&org, "Checker")).await.unwrap();
    assert_eq!(access::custom_roles(&mut tx).await.unwrap().len(), 1);
}

#[tokio::test]
async fn archiving_a_role_says_who_still_holds_it_and_it_then_grants_nothing() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let app = app(&db);
    let owner = sign_in(&db, &org, "owner@goldcrest.test", OWNER).await;
    let reply = owner
        .post(
            &app,
            "/settings/roles/new",
            &[("name", "Surveyors"), ("permission", "site.read")],
        )
        .await;
    let id = role_id(&reply);
    let (holder, _) = invite(&db, &org, "surveyor@goldcrest.test", RoleChoice::Custom(id)).await;

    let page = owner.get(&app, &format!("/settings/roles/{id}")).await;
    assert!(page.body.contains("1 member holds this role now."));
    assert!(
        page.body
            .contains(&format!(r#"action="/settings/roles/{id}/archive""#))
    );

    let reply = owner
        .post(&app, &format!("/settings/roles/{id}/archive"), &[])
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    let location = reply.location.unwrap();
    assert_eq!(location, format!("/settings/roles/{id}?archived=1"));
    let page = owner.get(&app, &location).await;
    assert!(
        page.body.contains("Role archived. 1 member still holds it"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains(r#"name="permission""#),
        "no form once archived"
    );
    assert!(grants_of(&db, &org, holder).await.is_empty());

    let list = owner.get(&app, "/settings/roles").await;
    assert!(list.body.contains("Archived"));
    // A second click finds it archived already.
    let again = owner
        .post(&app, &format!("/settings/roles/{id}/archive"), &[])
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    let edit = owner
        .post(
            &app,
            &format!("/settings/roles/{id}"),
            &[("name", "Surveyors"), ("permission", "site.create")],
        )
        .await;
    assert_eq!(edit.status, StatusCode::CONFLICT);
    assert!(grants_of(&db, &org, holder).await.is_empty());
}

#[tokio::test]
async fn role_pages_show_built_in_roles_read_only_and_hide_unknown_ones() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let other = db.org("rival", "Rival Lettings").await;
    let app = app(&db);
    let owner = sign_in(&db, &org, "owner@goldcrest.test", OWNER).await;
    let rival = sign_in(&db, &other, "owner@rival.test", OWNER).await;
    let reply = rival
        .post(
            &app,
            "/settings/roles/new",
            &[("name", "Secret"), ("permission", "site.read")],
        )
        .await;
    let rivals_role = role_id(&reply);

    let list = owner.get(&app, "/settings/roles").await;
    assert_eq!(list.status, StatusCode::OK);
    for role in BuiltInRole::ALL {
        assert!(
            list.body
                .contains(&format!(r#"href="/settings/roles/{}""#, role.key()))
        );
    }
    assert!(!list.body.contains("Secret"));

    let manager = owner.get(&app, "/settings/roles/manager").await;
    assert_eq!(manager.status, StatusCode::OK);
    assert!(manager.body.contains("Built-in role"));
    assert!(!manager.body.contains(r#"name="permission""#));
    let count = BuiltInRole::Manager.permissions().len();
    assert!(manager.body.contains(&format!("{count} permissions")));
    assert_eq!(
        owner
            .post(&app, "/settings/roles/manager", &[("name", "Boss")])
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    for path in [
        "/settings/roles/not-a-uuid".to_owned(),
        format!("/settings/roles/{}", Uuid::now_v7()),
        format!("/settings/roles/{rivals_role}"),
    ] {
        assert_eq!(
            owner.get(&app, &path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
        let archive = owner.post(&app, &format!("{path}/archive"), &[]).await;
        assert_eq!(archive.status, StatusCode::NOT_FOUND, "{path}");
        let update = owner
            .post(
                &app,
                &path,
                &[("name", "Mine"), ("permission", "site.read")],
            )
            .await;
        assert_eq!(update.status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn switching_a_module_off_removes_it_from_the_navigation() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let app = app(&db);
    let owner = sign_in(&db, &org, "owner@goldcrest.test", OWNER).await;

    let before = owner.get(&app, "/settings/modules").await;
    assert_eq!(before.status, StatusCode::OK);
    assert!(before.body.contains(r#"href="/lettings""#));
    assert!(
        before
            .body
            .contains(r#"value="lettings" aria-describedby="about-lettings" checked"#)
    );

    let reply = owner
        .post(
            &app,
            "/settings/modules",
            &[
                ("module", "block"),
                ("module", "hrb"),
                ("module", "facilities"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location.as_deref(), Some("/settings/modules?saved=1"));
    assert_eq!(
        stored_profile(&db, &org).await.modules,
        vec!["block", "facilities", "hrb"]
    );
    let after = owner.get(&app, "/settings/modules?saved=1").await;
    assert!(after.body.contains("Modules saved."));
    assert!(!after.body.contains(r#"href="/lettings""#));
    assert!(after.body.contains(r#"href="/block""#));

    let reply = owner
        .post(&app, "/settings/modules", &[("module", "casino")])
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reply.body.contains("There is no module called casino"));
    assert_eq!(stored_profile(&db, &org).await.modules.len(), 3);
}

#[tokio::test]
async fn the_setup_wizard_saves_each_step_then_finishes_on_the_dashboard() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let app = app(&db);
    let owner = sign_in(&db, &org, "owner@goldcrest.test", OWNER).await;

    let first = owner.get(&app, "/setup").await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.body.contains("Step 1 of 3: Company details"));
    assert!(
        first
            .body
            .contains(r#"<label for="field-vat_number">VAT number</label>"#)
    );

    let company = [
        ("step", "company"),
        ("trading_name", "Goldcrest"),
        ("company_number", "12345678"),
        ("vat_number", "GB12"),
    ];
    let refused = owner.post(&app, "/setup", &company).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .body
            .contains("A UK VAT number is GB followed by 9 or 12 digits")
    );
    assert!(refused.body.contains("Step 1 of 3"));
    assert_eq!(stored_profile(&db, &org).await.trading_name, None);

    let company = with(&company, "vat_number", "123456789");
    let reply = owner.post(&app, "/setup", &company).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(reply.location.as_deref(), Some("/setup?step=branding"));

    let branding = owner.get(&app, "/setup?step=branding").await;
    assert!(branding.body.contains("Step 2 of 3: Branding"));
    let reply = owner
        .post(
            &app,
            "/setup",
            &[
                ("step", "branding"),
                ("brand_colour", "#AA3300"),
                ("email_footer", ""),
            ],
        )
        .await;
    assert_eq!(reply.location.as_deref(), Some("/setup?step=modules"));

    let modules = owner.get(&app, "/setup?step=modules").await;
    assert!(modules.body.contains("Step 3 of 3: Modules"));
    assert!(modules.body.contains("Finish set-up"));
    let reply = owner
        .post(&app, "/setup", &[("step", "modules"), ("module", "block")])
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location.as_deref(), Some("/dashboard"));

    let stored = stored_profile(&db, &org).await;
    assert_eq!(stored.trading_name.as_deref(), Some("Goldcrest"));
    assert_eq!(stored.vat_number.as_deref(), Some("GB123456789"));
    assert_eq!(stored.brand_colour.as_deref(), Some("#aa3300"));
    assert_eq!(stored.modules, vec!["block"]);
    assert!(stored.setup_completed_at.is_some());

    // Done: the wizard hands over to the Organisation page.
    let again = owner.get(&app, "/setup").await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert_eq!(again.location.as_deref(), Some("/settings/organisation"));
}
