//! Sign-in, sessions and authorisation over HTTP, against a real database: the login host's
//! flow end to end, second factors, lock-out, rate limits, hand-off codes, cookies per host,
//! CSRF, deactivation, invitations, password resets, and that every admin route is behind the
//! one authorisation check.

#![allow(clippy::unwrap_used, reason = "tests")]

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode, header};
use proplink_db::access;
use proplink_db::organisation::{self, OrgStatus, Organisation};
use proplink_db::{email, staff};
use proplink_domain::permissions::{BuiltInRole, Scope};
use proplink_test_support::TestDb;
use proplink_test_support::people::{self, PASSWORD, TestMember};
use proplink_web::AppState;
use proplink_web::admin::{Access, route_table};
use std::collections::HashMap;
use std::net::SocketAddr;
use time::Duration;
use tower::ServiceExt;

const LOGIN: &str = "login.proplink.localhost";

fn host(slug: &str) -> String {
    format!("{slug}.proplink.localhost")
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn location(&self) -> String {
        self.headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }
}

/// A cookie-keeping HTTP client for the app (cookies are kept per host, as a browser does).
struct Client {
    app: Router,
    jar: HashMap<String, HashMap<String, String>>,
    ip: SocketAddr,
}

impl Client {
    fn new(state: &AppState) -> Self {
        Self {
            app: proplink_web::app(state.clone()),
            jar: HashMap::new(),
            ip: "203.0.113.10:50000".parse().unwrap(),
        }
    }

    async fn send(&mut self, method: &str, host: &str, path: &str, form: Option<&str>) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, host);
        if let Some(cookies) = self.jar.get(host).filter(|c| !c.is_empty()) {
            let line: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header(header::COOKIE, line.join("; "));
        }
        let body = match form {
            Some(f) => {
                req = req
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header("sec-fetch-site", "same-origin");
                Body::from(f.to_owned())
            }
            None => Body::empty(),
        };
        let mut req = req.body(body).unwrap();
        req.extensions_mut().insert(ConnectInfo(self.ip));
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        for set in headers.get_all(header::SET_COOKIE) {
            let c = cookie::Cookie::parse(set.to_str().unwrap().to_owned()).unwrap();
            let jar = self.jar.entry(host.to_owned()).or_default();
            if c.max_age() == Some(time::Duration::ZERO) {
                jar.remove(c.name());
            } else {
                jar.insert(c.name().to_owned(), c.value().to_owned());
            }
        }
        let bytes = axum::body::to_bytes(resp.into_body(), 4 << 20)
            .await
            .unwrap();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&mut self, host: &str, path: &str) -> Reply {
        self.send("GET", host, path, None).await
    }

    async fn post(&mut self, host: &str, path: &str, form: &str) -> Reply {
        self.send("POST", host, path, Some(form)).await
    }

    /// Follows a redirect (absolute URL or path on `host`).
    async fn follow(&mut self, from_host: &str, reply: &Reply) -> (String, Reply) {
        let loc = reply.location();
        assert!(
            !loc.is_empty(),
            "no redirect: {} {}",
            reply.status,
            reply.body
        );
        let (h, p) = match loc.strip_prefix("http://") {
            Some(rest) => {
                let (authority, path) = rest.split_once('/').unwrap();
                let h = authority.split(':').next().unwrap().to_owned();
                (h, format!("/{path}"))
            }
            None => (from_host.to_owned(), loc.clone()),
        };
        let r = self.get(&h, &p).await;
        (h, r)
    }
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn password_step(c: &mut Client, email: &str, password: &str) -> Reply {
    c.post(
        LOGIN,
        "/",
        &format!("email={}&password={}", enc(email), enc(password)),
    )
    .await
}

/// Password + e-mailed code + pick `slug`: ends signed in on the organisation's host.
async fn sign_in(c: &mut Client, db: &TestDb, m: &TestMember, slug: &str) -> Reply {
    let r = password_step(c, &m.email, PASSWORD).await;
    assert_eq!(r.location(), "/verify", "{}", r.body);
    let code = people::latest_code(db, &m.email).await.unwrap();
    let r = c.post(LOGIN, "/verify", &format!("code={code}")).await;
    assert_eq!(r.location(), "/organisations", "{}", r.body);
    let r = c
        .post(LOGIN, "/organisations", &format!("org={slug}"))
        .await;
    assert!(
        r.location().contains("/auth/handoff?code="),
        "{}",
        r.location()
    );
    let (h, landed) = c.follow(LOGIN, &r).await;
    assert_eq!(landed.location(), "/dashboard");
    c.get(&h, "/dashboard").await
}

async fn setup() -> (TestDb, Organisation, AppState) {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let state = people::state(&db, people::web_settings()).await;
    (db, org, state)
}

async fn auth_events(db: &TestDb, org: &Organisation, kind: &str) -> i64 {
    let mut su = db.superuser().await;
    sqlx::query_scalar("select count(*) from auth_event where organisation_id = $1 and kind = $2")
        .bind(org.id.0)
        .bind(kind)
        .fetch_one(&mut su)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_member_signs_in_with_password_and_emailed_code_and_lands_on_the_dashboard() {
    let (db, org, state) = setup().await;
    let m = people::member(
        &db,
        &org,
        "jane@goldcrest.example.co.uk",
        "Jane Doe",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let mut c = Client::new(&state);
    let page = sign_in(&mut c, &db, &m, "goldcrest").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Good to see you, Jane"), "{}", page.body);
    assert!(page.body.contains("Goldcrest Estates"));
    // The session is in the database only as a hash; the sign-in is in the audit log.
    let mut su = db.superuser().await;
    let (sessions, audited): (i64, i64) = sqlx::query_as(
        "select (select count(*) from staff_session where organisation_id = $1),
                (select count(*) from audit_event where organisation_id = $1 and table_name = 'staff_session')",
    )
    .bind(org.id.0)
    .fetch_one(&mut su)
    .await
    .unwrap();
    assert_eq!((sessions, audited), (1, 1));
    let token = c.jar[&host("goldcrest")]["pl_session"].clone();
    let stored: String = sqlx::query_scalar("select token_hash from staff_session")
        .fetch_one(&mut su)
        .await
        .unwrap();
    assert_ne!(stored, token);
    assert_eq!(auth_events(&db, &org, "signed_in").await, 1);
    assert_eq!(auth_events(&db, &org, "second_factor_passed").await, 1);
}

#[tokio::test]
async fn wrong_passwords_lock_the_account_tell_its_owner_and_reveal_nothing_to_strangers() {
    let (db, org, state) = setup().await;
    let m = people::member(
        &db,
        &org,
        "jane@goldcrest.example.co.uk",
        "Jane Doe",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let mut c = Client::new(&state);
    let unknown = password_step(&mut c, "nobody@example.co.uk", "whatever password 1").await;
    let wrong = password_step(&mut c, &m.email, "not the password 1").await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = |r: &Reply| {
        r.body
            .split("id=\"error\">")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        message(&unknown),
        message(&wrong),
        "the refusal tells strangers nothing"
    );
    for _ in 0..4 {
        password_step(&mut c, &m.email, "not the password 1").await;
    }
    let user = staff::find(&db.app, m.user_id).await.unwrap().unwrap();
    assert!(user.locked_at(state.now()));
    let mails = staff::recent_platform_emails(&db.app, 10).await.unwrap();
    assert!(
        mails
            .iter()
            .any(|e| e.category == "account_locked" && e.to_address == m.email)
    );
    assert_eq!(auth_events(&db, &org, "account_locked").await, 1);
    // Locked: even the right password is refused, and only its owner learns why.
    let r = password_step(&mut c, &m.email, PASSWORD).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("locked"), "{}", r.body);
    // Fifteen minutes later the right password works again.
    state.advance_clock(Duration::minutes(16));
    let r = password_step(&mut c, &m.email, PASSWORD).await;
    assert_eq!(r.location(), "/verify");
}

#[tokio::test]
async fn an_emailed_code_expires_works_once_and_allows_five_tries() {
    let (db, org, state) = setup().await;
    let m = people::member(
        &db,
        &org,
        "jane@goldcrest.example.co.uk",
        "Jane Doe",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;

    // Expiry: ten minutes.
    let mut c = Client::new(&state);
    password_step(&mut c, &m.email, PASSWORD).await;
    let code = people::latest_code(&db, &m.email).await.unwrap();
    state.advance_clock(Duration::minutes(11));
    let r = c.post(LOGIN, "/verify", &format!("code={code}")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Single use: a code that worked does not work again on another sign-in.
    let mut c = Client::new(&state);
    password_step(&mut c, &m.email, PASSWORD).await;
    let code = people::latest_code(&db, &m.email).await.unwrap();
    assert_eq!(
        c.post(LOGIN, "/verify", &format!("code={code}"))
            .await
            .location(),
        "/organisations"
    );
    let mut other = Client::new(&state);
    password_step(&mut other, &m.email, PASSWORD).await;
    let fresh = people::latest_code(&db, &m.email).await.unwrap();
    if fresh != code {
        let r = other.post(LOGIN, "/verify", &format!("code={code}")).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "a used code was accepted"
        );
    }

    // Five tries, then the code is dead even when right.
    let mut c = Client::new(&state);
    password_step(&mut c, &m.email, PASSWORD).await;
    let code = people::latest_code(&db, &m.email).await.unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let r = c.post(LOGIN, "/verify", &format!("code={wrong}")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let r = c.post(LOGIN, "/verify", &format!("code={code}")).await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the sixth try was accepted"
    );
    // Counted: the expired code, the used code, and four wrong ones: a correct password does
    // not reset the count, so the fifth failure in a row locked the account and the later
    // tries were refused without being counted.
    assert_eq!(auth_events(&db, &org, "second_factor_failed").await, 6);
    assert!(r.body.contains("locked"), "{}", r.body);
    assert_eq!(auth_events(&db, &org, "account_locked").await, 1);
}

#[tokio::test]
async fn backup_codes_work_once_and_a_remembered_device_skips_the_second_step() {
    let (db, org, state) = setup().await;
    let m = people::member(
        &db,
        &org,
        "jane@goldcrest.example.co.uk",
        "Jane Doe",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let mut c = Client::new(&state);
    sign_in(&mut c, &db, &m, "goldcrest").await;
    let page = c
        .post(
            &host("goldcrest"),
            "/account/security/backup-codes",
            &format!("current={}", enc(PASSWORD)),
        )
        .await;
    let codes: Vec<String> = page
        .body
        .split("id=\"backup-codes\">")
        .nth(1)
        .unwrap()
        .split("</ul>")
        .next()
        .unwrap()
        .split("<li>")
        .skip(1)
        .map(|s| s.split("</li>").next().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);

    let mut c = Client::new(&state);
    password_step(&mut c, &m.email, PASSWORD).await;
    let r = c
        .post(
            LOGIN,
            "/verify",
            &format!("code={}&remember=1", enc(&codes[0])),
        )
        .await;
    assert_eq!(r.location(), "/organisations", "{}", r.body);
    assert!(c.jar[LOGIN].contains_key("pl_device"));
    // The same backup code is spent.
    let mut other = Client::new(&state);
    password_step(&mut other, &m.email, PASSWORD).await;
    let r = other
        .post(LOGIN, "/verify", &format!("code={}", enc(&codes[0])))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // The remembered device goes straight to the picker after the password.
    c.post(LOGIN, "/sign-out", "").await;
    let r = password_step(&mut c, &m.email, PASSWORD).await;
    assert_eq!(r.location(), "/organisations");
    // Revoked from the device list, it asks again.
    let device = staff::devices(&db.app, m.user_id).await.unwrap()[0].id;
    let mut admin_side = Client::new(&state);
    sign_in(&mut admin_side, &db, &m, "goldcrest").await;
    let r = admin_side
        .post(
            &host("goldcrest"),
            &format!("/account/security/devices/{device}/revoke"),
            "",
        )
        .await;
    assert_eq!(r.location(), "/account/security?done=device");
    c.post(LOGIN, "/sign-out", "").await;
    assert_eq!(
        password_step(&mut c, &m.email, PASSWORD).await.location(),
        "/verify"
    );
}

#[tokio::test]
async fn an_authenticator_app_replaces_emailed_codes_and_a_used_step_is_refused() {
    let (db, org, state) = setup().await;
    let m = people::member(
        &db,
        &org,
        "jane@goldcrest.example.co.uk",
        "Jane Doe",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let mut c = Client::new(&state);
    sign_in(&mut c, &db, &m, "goldcrest").await;
    let page = c.get(&host("goldcrest"), "/account/security/totp").await;
    let secret = page
        .body
        .split("id=\"totp-secret\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    assert!(page.body.contains("otpauth://totp/"));
    let now = || u64::try_from(state.now().unix_timestamp()).unwrap();
    let code = proplink_auth::totp::code_at(&secret, now()).unwrap();
    let r = c
        .post(
            &host("goldcrest"),
            "/account/security/totp",
            &format!("secret={secret}&code={code}&current={}", enc(PASSWORD)),
        )
        .await;
    assert_eq!(r.location(), "/account/security?done=totp", "{}", r.body);
    assert_eq!(auth_events(&db, &org, "second_factor_changed").await, 1);

    // Signing in now asks for the app's code; no e-mail is sent.
    let mails_before = staff::recent_platform_emails(&db.app, 100)
        .await
        .unwrap()
        .len();
    let mut c = Client::new(&state);
    password_step(&mut c, &m.email, PASSWORD).await;
    assert_eq!(
        staff::recent_platform_emails(&db.app, 100)
            .await
            .unwrap()
            .len(),
        mails_before
    );
    // The step used for enrolment is refused (replay); the next one works, once.
    let r = c.post(LOGIN, "/verify", &format!("code={code}")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("already been used"), "{}", r.body);
    state.advance_clock(Duration::seconds(30));
    let next = proplink_auth::totp::code_at(&secret, now()).unwrap();
    assert_eq!(
        c.post(LOGIN, "/verify", &format!("code={next}"))
            .await
            .location(),
        "/organisations"
    );
    let mut again = Client::new(&state);
    password_step(&mut again, &m.email, PASSWORD).await;
    assert_eq!(
        again
            .post(LOGIN, "/verify", &format!("code={next}"))
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

#[tokio::test]
async fn a_person_in_two_organisations_picks_one_and_switches_without_the_password() {
    let db = TestDb::new().await;
    let gold = db.org("goldcrest", "Goldcrest Estates").await;
    let acme = db.org("acme", "Acme Property Group").await;
    let state = people::state(&db, people::web_settings()).await;
    let priya_g = people::member(
        &db,
        &gold,
        "priya@example.co.uk",
        "Priya Patel",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let priya_a = people::member(
        &db,
        &acme,
        "priya@example.co.uk",
        "Priya Patel",
        BuiltInRole::Accountant,
        Scope::AllSites,
    )
    .await;
    assert_eq!(
        priya_g.user_id, priya_a.user_id,
        "one person, two memberships"
    );

    let mut c = Client::new(&state);
    password_step(&mut c, &priya_g.email, PASSWORD).await;
    let code = people::latest_code(&db, &priya_g.email).await.unwrap();
    c.post(LOGIN, "/verify", &format!("code={code}")).await;
    let picker = c.get(LOGIN, "/organisations").await;
    assert!(
        picker.body.contains("Goldcrest Estates") && picker.body.contains("Acme Property Group")
    );
    let r = c.post(LOGIN, "/organisations", "org=acme").await;
    let (h, _) = c.follow(LOGIN, &r).await;
    assert_eq!(h, host("acme"));
    let acme_page = c.get(&host("acme"), "/dashboard").await;
    assert!(acme_page.body.contains("Acme Property Group"));
    // An accountant cannot invite people in Acme (a Manager can in Goldcrest).
    assert!(matches!(
        c.get(&host("acme"), "/settings/users/invite").await.status,
        StatusCode::NOT_FOUND | StatusCode::FORBIDDEN
    ));

    // Switch: from Acme's profile menu to Goldcrest, no password.
    let r = c
        .post(&host("acme"), "/account/organisations", "org=goldcrest")
        .await;
    let (h, landed) = c.follow(&host("acme"), &r).await;
    assert_eq!(h, host("goldcrest"));
    assert_eq!(landed.location(), "/dashboard");
    let gold_page = c.get(&host("goldcrest"), "/dashboard").await;
    assert!(gold_page.body.contains("Goldcrest Estates"));
    // Switching to an organisation she is not in is a 404.
    db.org("other", "Other Ltd").await;
    assert_eq!(
        c.post(&host("acme"), "/account/organisations", "org=other")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_hand_off_code_works_once_and_only_for_a_minute() {
    let (db, org, state) = setup().await;
    let m = people::member(
        &db,
        &org,
        "jane@goldcrest.example.co.uk",
        "Jane Doe",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let mut c = Client::new(&state);
    password_step(&mut c, &m.email, PASSWORD).await;
    let code = people::latest_code(&db, &m.email).await.unwrap();
    c.post(LOGIN, "/verify", &format!("code={code}")).await;
    let r = c.post(LOGIN, "/organisations", "org=goldcrest").await;
    let path = r.location().split_once("localhost").unwrap().1.to_owned();
    // Replay: the second exchange gives nothing.
    let mut thief = Client::new(&state);
    let first = c.get(&host("goldcrest"), &path).await;
    assert_eq!(first.location(), "/dashboard");
    let replay = thief.get(&host("goldcrest"), &path).await;
    assert!(
        replay.location().starts_with("http://login."),
        "{}",
        replay.location()
    );
    assert!(
        !thief
            .jar
            .get(&host("goldcrest"))
            .is_some_and(|j| j.contains_key("pl_session"))
    );
    // Expiry: a code older than a minute gives nothing.
    let r = c.post(LOGIN, "/organisations", "org=goldcrest").await;
    let path = r.location().split_once("localhost").unwrap().1.to_owned();
    state.advance_clock(Duration::seconds(61));
    let mut late = Client::new(&state);
    assert!(
        late.get(&host("goldcrest"), &path)
            .await
            .location()
            .starts_with("http://login.")
    );
    // A code is bound to its organisation: it does nothing on another host.
    let acme = db.org("acme", "Acme Property Group").await;
    people::member(
        &db,
        &acme,
        "jane@goldcrest.example.co.uk",
        "Jane Doe",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let r = c.post(LOGIN, "/organisations", "org=goldcrest").await;
    let path = r.location().split_once("localhost").unwrap().1.to_owned();
    let mut elsewhere = Client::new(&state);
    assert!(
        elsewhere
            .get(&host("acme"), &path)
            .await
            .location()
            .starts_with("http://login.")
    );
}

#[tokio::test]
async fn one_organisations_session_cookie_is_useless_on_anothers_host() {
    let db = TestDb::new().await;
    let gold = db.org("goldcrest", "Goldcrest Estates").await;
    db.org("acme", "Acme Property Group").await;
    let state = people::state(&db, people::web_settings()).await;
    let m = people::member(
        &db,
        &gold,
        "jane@goldcrest.example.co.uk",
        "Jane Doe",
        BuiltInRole::Administrator,
        Scope::AllSites,
    )
    .await;
    let token = people::session(&db, &gold, &m).await;
    let mut c = Client::new(&state);
    c.jar
        .entry(host("goldcrest"))
        .or_default()
        .insert("pl_session".into(), token.clone());
    c.jar
        .entry(host("acme"))
        .or_default()
        .insert("pl_session".into(), token);
    assert_eq!(
        c.get(&host("goldcrest"), "/dashboard").await.status,
        StatusCode::OK
    );
    let r = c.get(&host("acme"), "/dashboard").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().starts_with("http://login."));
    assert_eq!(
        c.get(&host("acme"), "/settings/users").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_cross_site_form_post_is_refused_and_changes_nothing() {
    let (db, org, state) = setup().await;
    let admin = people::member(
        &db,
        &org,
        "admin@goldcrest.example.co.uk",
        "Adam Admin",
        BuiltInRole::Administrator,
        Scope::AllSites,
    )
    .await;
    let token = people::session(&db, &org, &admin).await;
    let app = proplink_web::app(state.clone());
    let req = Request::post("/settings/users/invite")
        .header(header::HOST, host("goldcrest"))
        .header(header::COOKIE, format!("pl_session={token}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::from(
            "email=x%40example.co.uk&name=X&role=manager&scope=all_sites",
        ))
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let mut tx = db.app.begin(&db.staff(&org, "x")).await.unwrap();
    assert_eq!(access::members(&mut tx).await.unwrap().len(), 1);
}

#[tokio::test]
async fn deactivating_a_member_ends_their_sessions_at_once_and_reactivating_restores_access() {
    let (db, org, state) = setup().await;
    let admin = people::member(
        &db,
        &org,
        "admin@goldcrest.example.co.uk",
        "Adam Admin",
        BuiltInRole::Administrator,
        Scope::AllSites,
    )
    .await;
    let victim = people::member(
        &db,
        &org,
        "sam@goldcrest.example.co.uk",
        "Sam Site",
        BuiltInRole::SiteManager,
        Scope::AllSites,
    )
    .await;
    let mut a = Client::new(&state);
    sign_in(&mut a, &db, &admin, "goldcrest").await;
    let mut v = Client::new(&state);
    assert_eq!(
        sign_in(&mut v, &db, &victim, "goldcrest").await.status,
        StatusCode::OK
    );
    // Both sessions are held in the session cache between requests: leaving must still be
    // immediate.
    assert_eq!(
        v.get(&host("goldcrest"), "/dashboard").await.status,
        StatusCode::OK
    );
    assert!(state.db().sessions().is_listening());
    assert!(state.db().sessions().len() >= 2);

    let r = a
        .post(
            &host("goldcrest"),
            &format!("/settings/users/{}/deactivate", victim.membership_id),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = v.get(&host("goldcrest"), "/dashboard").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().starts_with("http://login."));
    // The account stays, with its history; signing in shows no organisation to pick.
    let mut v2 = Client::new(&state);
    password_step(&mut v2, &victim.email, PASSWORD).await;
    let code = people::latest_code(&db, &victim.email).await.unwrap();
    v2.post(LOGIN, "/verify", &format!("code={code}")).await;
    assert!(
        v2.get(LOGIN, "/organisations")
            .await
            .body
            .contains("not a member of any organisation")
    );
    // The owner cannot be deactivated, and nobody deactivates themselves.
    let r = a
        .post(
            &host("goldcrest"),
            &format!("/settings/users/{}/deactivate", admin.membership_id),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Reactivated, they can sign in to it again.
    let r = a
        .post(
            &host("goldcrest"),
            &format!("/settings/users/{}/reactivate", victim.membership_id),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let mut v3 = Client::new(&state);
    assert_eq!(
        sign_in(&mut v3, &db, &victim, "goldcrest").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn sessions_end_after_an_hour_idle_and_when_the_person_signs_out_everywhere() {
    let (db, org, state) = setup().await;
    let m = people::member(
        &db,
        &org,
        "jane@goldcrest.example.co.uk",
        "Jane Doe",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let mut c = Client::new(&state);
    sign_in(&mut c, &db, &m, "goldcrest").await;
    state.advance_clock(Duration::minutes(61));
    assert_eq!(
        c.get(&host("goldcrest"), "/dashboard").await.status,
        StatusCode::SEE_OTHER
    );

    let mut c = Client::new(&state);
    sign_in(&mut c, &db, &m, "goldcrest").await;
    // The other browser is remembered, so it would normally skip the second step.
    let mut other = Client::new(&state);
    password_step(&mut other, &m.email, PASSWORD).await;
    let code = people::latest_code(&db, &m.email).await.unwrap();
    other
        .post(LOGIN, "/verify", &format!("code={code}&remember=1"))
        .await;
    let r = other.post(LOGIN, "/organisations", "org=goldcrest").await;
    other.follow(LOGIN, &r).await;
    assert_eq!(
        other.get(&host("goldcrest"), "/dashboard").await.status,
        StatusCode::OK
    );
    let r = c
        .post(
            &host("goldcrest"),
            "/account/security/sign-out-everywhere",
            "",
        )
        .await;
    assert!(r.location().contains("notice=signed-out"));
    assert_eq!(
        other.get(&host("goldcrest"), "/dashboard").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(other.get(LOGIN, "/organisations").await.location(), "/");
    // …and its remembered device is forgotten: the second step is asked again.
    assert_eq!(
        password_step(&mut other, &m.email, PASSWORD)
            .await
            .location(),
        "/verify"
    );
}

/// The path of the newest invitation link e-mailed to `to` (from the organisation's e-mail log).
async fn invitation_link(db: &TestDb, org: &Organisation, to: &str) -> String {
    let mut tx = db.app.begin(&db.staff(org, "x")).await.unwrap();
    let mails = email::recent(&mut tx, 50).await.unwrap();
    let body = &mails
        .iter()
        .find(|m| m.category == "invitation" && m.to_address == to)
        .unwrap()
        .body_text;
    body.split_whitespace()
        .find(|w| w.contains("/invitation/"))
        .unwrap()
        .split_once("localhost")
        .unwrap()
        .1
        .to_owned()
}

#[tokio::test]
async fn an_invitation_is_accepted_once_within_fourteen_days_and_resending_replaces_the_link() {
    let (db, org, state) = setup().await;
    let admin = people::member(
        &db,
        &org,
        "admin@goldcrest.example.co.uk",
        "Adam Admin",
        BuiltInRole::Administrator,
        Scope::AllSites,
    )
    .await;
    let mut a = Client::new(&state);
    sign_in(&mut a, &db, &admin, "goldcrest").await;
    // Bad input: nothing is sent, the reasons are given.
    let r = a
        .post(
            &host("goldcrest"),
            "/settings/users/invite",
            "email=not-an-email&name=&role=&scope=",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("is not a valid e-mail address") && r.body.contains("Choose a role."));
    let r = a
        .post(
            &host("goldcrest"),
            "/settings/users/invite",
            "email=new%40example.co.uk&name=Nina+New&role=read_only&scope=all_sites&welcome=Hello",
        )
        .await;
    assert_eq!(r.location(), "/settings/users?done=invited");
    let first = invitation_link(&db, &org, "new@example.co.uk").await;
    let member = {
        let mut tx = db.app.begin(&db.staff(&org, "x")).await.unwrap();
        access::members(&mut tx)
            .await
            .unwrap()
            .into_iter()
            .find(|m| m.email == "new@example.co.uk")
            .unwrap()
    };
    // Resend: a fresh link; the old one stops working.
    let r = a
        .post(
            &host("goldcrest"),
            &format!("/settings/users/{}/resend", member.membership_id),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let second = invitation_link(&db, &org, "new@example.co.uk").await;
    assert_ne!(first, second);
    let mut n = Client::new(&state);
    assert_eq!(
        n.get(&host("goldcrest"), &first).await.status,
        StatusCode::GONE
    );
    // A weak password is refused with the reason; then accepted.
    let r = n
        .post(
            &host("goldcrest"),
            &second,
            "password=short&confirm=short&second_factor=email",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let strong = enc("nina's new password 9");
    let r = n
        .post(
            &host("goldcrest"),
            &second,
            &format!("password={strong}&confirm={strong}&second_factor=email"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body.matches("<li>").count(),
        10,
        "ten backup codes are shown"
    );
    assert_eq!(
        n.get(&host("goldcrest"), "/dashboard").await.status,
        StatusCode::OK
    );
    // Used: the link now says so.
    assert!(
        Client::new(&state)
            .get(&host("goldcrest"), &second)
            .await
            .body
            .contains("already been accepted")
    );

    // Expiry after 14 days.
    a.post(
        &host("goldcrest"),
        "/settings/users/invite",
        "email=late%40example.co.uk&name=Len+Late&role=read_only&scope=all_sites",
    )
    .await;
    let late = invitation_link(&db, &org, "late@example.co.uk").await;
    state.advance_clock(Duration::days(15));
    let r = Client::new(&state).get(&host("goldcrest"), &late).await;
    assert_eq!(r.status, StatusCode::GONE);
    assert!(r.body.contains("This invitation has expired"));
}

#[tokio::test]
async fn a_password_reset_link_sets_a_new_password_once_and_ends_every_session() {
    let (db, org, state) = setup().await;
    let m = people::member(
        &db,
        &org,
        "jane@goldcrest.example.co.uk",
        "Jane Doe",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let mut old = Client::new(&state);
    sign_in(&mut old, &db, &m, "goldcrest").await;
    state.advance_clock(Duration::seconds(2));
    let mut c = Client::new(&state);
    let r = c
        .post(LOGIN, "/forgot", "email=jane%40goldcrest.example.co.uk")
        .await;
    assert!(
        r.body
            .contains("If jane@goldcrest.example.co.uk has a PropLink account")
    );
    // The same answer for an unknown address, and no e-mail for it.
    let r2 = c
        .post(LOGIN, "/forgot", "email=nobody%40example.co.uk")
        .await;
    assert_eq!(r.status, r2.status);
    // The link is sent after the page answers (so the answer takes the same time either way).
    let mut mails = vec![];
    for _ in 0..100 {
        mails = staff::recent_platform_emails(&db.app, 20).await.unwrap();
        if mails.iter().any(|e| e.category == "password_reset") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!mails.iter().any(|e| e.to_address == "nobody@example.co.uk"));
    let body = &mails
        .iter()
        .find(|e| e.category == "password_reset")
        .unwrap()
        .body_text;
    let path = body
        .split_whitespace()
        .find(|w| w.contains("/reset/"))
        .unwrap()
        .split_once("localhost")
        .unwrap()
        .1
        .to_owned();
    let new = enc("a brand new password 7");
    let r = c
        .post(LOGIN, &path, &format!("password={new}&confirm={new}"))
        .await;
    assert_eq!(r.location(), "/?notice=password-changed");
    assert_eq!(
        c.post(LOGIN, &path, &format!("password={new}&confirm={new}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        old.get(&host("goldcrest"), "/dashboard").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        password_step(&mut c, &m.email, PASSWORD).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        password_step(&mut c, &m.email, "a brand new password 7")
            .await
            .location(),
        "/verify"
    );
}

#[tokio::test]
async fn password_attempts_from_one_address_are_rate_limited() {
    let (db, org, state) = setup().await;
    people::member(
        &db,
        &org,
        "jane@goldcrest.example.co.uk",
        "Jane Doe",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let mut c = Client::new(&state);
    let mut refused = None;
    for i in 0..31 {
        let r = password_step(
            &mut c,
            &format!("person{i}@example.co.uk"),
            "some password 1",
        )
        .await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(i);
            break;
        }
    }
    assert_eq!(
        refused,
        Some(30),
        "the 31st attempt in ten minutes is refused"
    );
}

#[tokio::test]
async fn a_read_only_organisations_members_can_sign_in_and_read_but_change_nothing() {
    let (db, org, state) = setup().await;
    let admin = people::member(
        &db,
        &org,
        "admin@goldcrest.example.co.uk",
        "Adam Admin",
        BuiltInRole::Administrator,
        Scope::AllSites,
    )
    .await;
    organisation::set_status(&db.platform, org.id, OrgStatus::ReadOnly)
        .await
        .unwrap();
    let mut c = Client::new(&state);
    let page = sign_in(&mut c, &db, &admin, "goldcrest").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("read-only"));
    let r = c
        .post(
            &host("goldcrest"),
            "/settings/users/invite",
            "email=x%40example.co.uk&name=X&role=manager&scope=all_sites",
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

/// Fills a route's `{param}`s with a value that names nothing.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                uuid::Uuid::now_v7().to_string()
            } else {
                seg.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Routes that anyone may reach, and why. A new public route must be added here on purpose.
const PUBLIC: &[(&str, &str)] = &[
    ("/", "sends a visitor to the dashboard or to sign in"),
    (
        "/auth/handoff",
        "exchanges a one-time code from the login host",
    ),
    (
        "/invitation/{token}",
        "an invitation link carries its own secret",
    ),
    (
        "/invitation/{token}/code",
        "e-mails a sign-in code to an invitation's existing account",
    ),
];

#[tokio::test]
async fn every_admin_route_is_behind_the_authorisation_check() {
    let (db, org, state) = setup().await;
    let reader = people::member(
        &db,
        &org,
        "rita@goldcrest.example.co.uk",
        "Rita Reader",
        BuiltInRole::ReadOnly,
        Scope::AllSites,
    )
    .await;
    let token = people::session(&db, &org, &reader).await;
    let table = route_table();
    assert!(table.len() > 30);
    for (path, access) in &table {
        let public = PUBLIC.iter().any(|(p, _)| p == path);
        assert_eq!(
            *access == Access::Public,
            public,
            "{path}: declared {access:?} but the public list says otherwise"
        );
        for method in ["GET", "POST"] {
            // Anonymous: never a page, never a change.
            let mut anon = Client::new(&state);
            let r = anon
                .send(method, &host("goldcrest"), &concrete(path), Some(""))
                .await;
            if !public {
                assert!(
                    matches!(
                        r.status,
                        StatusCode::SEE_OTHER | StatusCode::METHOD_NOT_ALLOWED
                    ),
                    "{method} {path} answered {} to an anonymous visitor",
                    r.status
                );
                if r.status == StatusCode::SEE_OTHER {
                    assert!(r.location().starts_with("http://login."), "{method} {path}");
                }
            }
            // A Read Only member: permissions beyond reading are refused (403/404).
            if let Access::Permission(key) = access {
                let granted = BuiltInRole::ReadOnly
                    .grants(&proplink_domain::permissions::Permission::parse(key).unwrap());
                if !granted {
                    let mut c = Client::new(&state);
                    c.jar
                        .entry(host("goldcrest"))
                        .or_default()
                        .insert("pl_session".into(), token.clone());
                    let r = c
                        .send(method, &host("goldcrest"), &concrete(path), Some(""))
                        .await;
                    assert!(
                        matches!(
                            r.status,
                            StatusCode::FORBIDDEN
                                | StatusCode::NOT_FOUND
                                | StatusCode::METHOD_NOT_ALLOWED
                        ),
                        "{method} {path} answered {} to a Read Only member",
                        r.status
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn nobody_hands_out_more_access_than_they_have() {
    let (db, org, state) = setup().await;
    let manager = people::member(
        &db,
        &org,
        "priya@example.co.uk",
        "Priya Patel",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let admin = people::member(
        &db,
        &org,
        "adam@goldcrest.example.co.uk",
        "Adam Admin",
        BuiltInRole::Administrator,
        Scope::AllSites,
    )
    .await;
    let mut c = Client::new(&state);
    sign_in(&mut c, &db, &manager, "goldcrest").await;
    let g = host("goldcrest");
    // A Manager cannot invite an Administrator (the role is not offered, and is refused if sent).
    let form = c.get(&g, "/settings/users/invite").await;
    assert!(!form.body.contains("value=\"administrator\""));
    let r = c
        .post(
            &g,
            "/settings/users/invite",
            "email=mallory%40evil.example&name=Mallory&role=administrator&scope=all_sites",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Choose a role."));
    // Nor demote, deactivate or reset someone with more access than they have.
    for action in ["deactivate", "reset-credentials"] {
        let r = c
            .post(
                &g,
                &format!("/settings/users/{}/{action}", admin.membership_id),
                "",
            )
            .await;
        assert!(
            matches!(
                r.status,
                StatusCode::FORBIDDEN | StatusCode::UNPROCESSABLE_ENTITY
            ),
            "{action}: {}",
            r.status
        );
    }
    let r = c
        .post(
            &g,
            &format!("/settings/users/{}/access", admin.membership_id),
            "role=read_only&scope=all_sites",
        )
        .await;
    assert!(matches!(
        r.status,
        StatusCode::FORBIDDEN | StatusCode::UNPROCESSABLE_ENTITY
    ));
    // An Administrator cannot make a role with billing, which Administrators lack.
    let mut a = Client::new(&state);
    sign_in(&mut a, &db, &admin, "goldcrest").await;
    let r = a
        .post(
            &g,
            "/settings/roles/new",
            "name=Biller&description=&permission=settings.billing&permission=site.read",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("permissions you have yourself"));
    let mut tx = db.app.begin(&db.staff(&org, "x")).await.unwrap();
    let members = access::members(&mut tx).await.unwrap();
    assert!(!members.iter().any(|m| m.email == "mallory@evil.example"));
    assert!(access::custom_roles(&mut tx).await.unwrap().is_empty());
    let admin_now = members
        .iter()
        .find(|m| m.membership_id == admin.membership_id)
        .unwrap();
    assert_eq!(admin_now.status, "active");
    assert_eq!(admin_now.builtin_role.as_deref(), Some("administrator"));
}

#[tokio::test]
async fn an_organisation_that_only_invited_someone_learns_nothing_of_them() {
    let db = TestDb::new().await;
    let gold = db.org("goldcrest", "Goldcrest Estates").await;
    let acme = db.org("acme", "Acme Property Group").await;
    let state = people::state(&db, people::web_settings()).await;
    let adam = people::member(
        &db,
        &gold,
        "adam@goldcrest.example.co.uk",
        "Adam Adeyemi",
        BuiltInRole::Administrator,
        Scope::AllSites,
    )
    .await;
    let acme_owner = people::member(
        &db,
        &acme,
        "oscar@acme.example.co.uk",
        "Oscar Okafor",
        BuiltInRole::OrganisationOwner,
        Scope::AllSites,
    )
    .await;
    let mut o = Client::new(&state);
    sign_in(&mut o, &db, &acme_owner, "acme").await;
    let r = o.post(&host("acme"), "/settings/users/invite", "email=adam%40goldcrest.example.co.uk&name=Unknown+person&role=read_only&scope=all_sites").await;
    assert_eq!(r.location(), "/settings/users?done=invited");
    // Acme sees the name it typed, not Adam's own.
    let list = o.get(&host("acme"), "/settings/users").await;
    assert!(list.body.contains("Unknown person") && !list.body.contains("Adeyemi"));
    // Adam's sign-in activity goes to Goldcrest only.
    let mut c = Client::new(&state);
    password_step(&mut c, &adam.email, "wrong password 12").await;
    sign_in(&mut c, &db, &adam, "goldcrest").await;
    assert!(auth_events(&db, &gold, "sign_in_failed").await >= 1);
    let mut su = db.superuser().await;
    let adams_in_acme: i64 = sqlx::query_scalar(
        "select count(*) from auth_event where organisation_id = $1 and email = $2",
    )
    .bind(acme.id.0)
    .bind(&adam.email)
    .fetch_one(&mut su)
    .await
    .unwrap();
    assert_eq!(adams_in_acme, 0);
}

#[tokio::test]
async fn an_existing_account_accepts_an_invitation_only_with_its_second_step() {
    let db = TestDb::new().await;
    let gold = db.org("goldcrest", "Goldcrest Estates").await;
    let acme = db.org("acme", "Acme Property Group").await;
    let state = people::state(&db, people::web_settings()).await;
    let adam = people::member(
        &db,
        &gold,
        "adam@goldcrest.example.co.uk",
        "Adam Adeyemi",
        BuiltInRole::Administrator,
        Scope::AllSites,
    )
    .await;
    let owner = people::member(
        &db,
        &acme,
        "oscar@acme.example.co.uk",
        "Oscar Okafor",
        BuiltInRole::OrganisationOwner,
        Scope::AllSites,
    )
    .await;
    let mut o = Client::new(&state);
    sign_in(&mut o, &db, &owner, "acme").await;
    o.post(
        &host("acme"),
        "/settings/users/invite",
        "email=adam%40goldcrest.example.co.uk&name=Adam&role=read_only&scope=all_sites",
    )
    .await;
    let link = invitation_link(&db, &acme, "adam@goldcrest.example.co.uk").await;
    let mut c = Client::new(&state);
    // The password alone is refused…
    let r = c
        .post(
            &host("acme"),
            &link,
            &format!("password={}&code=", enc(PASSWORD)),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        !c.jar
            .get(&host("acme"))
            .is_some_and(|j| j.contains_key("pl_session"))
    );
    // …and accepted with the e-mailed code.
    let r = c.post(&host("acme"), &format!("{link}/code"), "").await;
    assert!(r.body.contains("We have e-mailed you a sign-in code"));
    let code = people::latest_code(&db, &adam.email).await.unwrap();
    let r = c
        .post(
            &host("acme"),
            &link,
            &format!("password={}&code={code}", enc(PASSWORD)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        c.get(&host("acme"), "/dashboard").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_correct_password_between_wrong_codes_does_not_reset_the_count() {
    let (db, org, state) = setup().await;
    let m = people::member(
        &db,
        &org,
        "jane@goldcrest.example.co.uk",
        "Jane Doe",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let mut c = Client::new(&state);
    for round in 0..2 {
        password_step(&mut c, &m.email, PASSWORD).await;
        let code = people::latest_code(&db, &m.email).await.unwrap();
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for _ in 0..3 {
            c.post(LOGIN, "/verify", &format!("code={wrong}")).await;
        }
        c.post(LOGIN, "/sign-out", "").await;
        let user = staff::find(&db.app, m.user_id).await.unwrap().unwrap();
        assert_eq!(user.locked_at(state.now()), round == 1, "round {round}");
    }
}

#[tokio::test]
async fn changing_the_second_step_needs_the_current_password() {
    let (db, org, state) = setup().await;
    let m = people::member(
        &db,
        &org,
        "jane@goldcrest.example.co.uk",
        "Jane Doe",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let mut c = Client::new(&state);
    sign_in(&mut c, &db, &m, "goldcrest").await;
    let g = host("goldcrest");
    let r = c
        .post(
            &g,
            "/account/security/backup-codes",
            "current=not+my+password+1",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("current password is not right"));
    assert_eq!(
        staff::unused_backup_codes(&db.app, m.user_id)
            .await
            .unwrap(),
        0
    );
    let secret = proplink_auth::totp::new_secret();
    let code = proplink_auth::totp::code_at(
        &secret,
        u64::try_from(state.now().unix_timestamp()).unwrap(),
    )
    .unwrap();
    let r = c
        .post(
            &g,
            "/account/security/totp",
            &format!("secret={secret}&code={code}&current=nope"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        !staff::find(&db.app, m.user_id)
            .await
            .unwrap()
            .unwrap()
            .uses_totp()
    );
}

/// Every visible form control on the page has a `<label for=…>` (or is a button).
fn unlabelled_inputs(html: &str) -> Vec<String> {
    let mut missing = vec![];
    for tag in ["<input", "<select", "<textarea"] {
        for piece in html.split(tag).skip(1) {
            let element = piece.split('>').next().unwrap_or_default();
            if ["type=\"hidden\"", "type=\"submit\"", "hidden aria-hidden"]
                .iter()
                .any(|t| element.contains(t))
            {
                continue;
            }
            let id = element
                .split("id=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next());
            match id {
                Some(id) if html.contains(&format!("<label for=\"{id}\"")) => {}
                _ => missing.push(format!("{tag}{element}>")),
            }
        }
    }
    missing
}

#[tokio::test]
async fn every_form_control_is_labelled_and_pages_fit_a_phone() {
    // The check itself finds what it should.
    assert_eq!(
        unlabelled_inputs(
            "<label for=\"a\">A</label><input id=\"a\"><input id=\"b\"><input type=\"hidden\" name=\"c\">"
        ),
        vec!["<input id=\"b\">".to_owned()]
    );
    let (db, org, state) = setup().await;
    let admin = people::member(
        &db,
        &org,
        "adam@goldcrest.example.co.uk",
        "Adam Admin",
        BuiltInRole::OrganisationOwner,
        Scope::AllSites,
    )
    .await;
    // In two organisations, so that the picker is shown.
    let acme = db.org("acme", "Acme Property Group").await;
    people::member(
        &db,
        &acme,
        &admin.email,
        &admin.name,
        BuiltInRole::ReadOnly,
        Scope::AllSites,
    )
    .await;
    let mut anon = Client::new(&state);
    let mut pages = vec![
        ("login", anon.get(LOGIN, "/").await.body),
        ("forgot", anon.get(LOGIN, "/forgot").await.body),
    ];
    let mut c = Client::new(&state);
    password_step(&mut c, &admin.email, PASSWORD).await;
    pages.push(("verify", c.get(LOGIN, "/verify").await.body));
    let code = people::latest_code(&db, &admin.email).await.unwrap();
    c.post(LOGIN, "/verify", &format!("code={code}")).await;
    pages.push(("picker", c.get(LOGIN, "/organisations").await.body));
    let r = c.post(LOGIN, "/organisations", "org=goldcrest").await;
    c.follow(LOGIN, &r).await;
    let g = host("goldcrest");
    for path in [
        "/dashboard",
        "/settings/users",
        "/settings/users/invite",
        "/settings/users/bulk",
        "/account/security",
        "/account/security/totp",
        "/settings/organisation",
        "/settings/modules",
        "/settings/roles/new",
        "/audit",
    ] {
        let r = c.get(&g, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        pages.push((path, r.body));
    }
    for (name, html) in &pages {
        assert_eq!(unlabelled_inputs(html), Vec::<String>::new(), "{name}");
        assert!(
            html.contains("name=\"viewport\" content=\"width=device-width"),
            "{name}"
        );
        assert!(html.contains("<html lang=\"en-GB\">"), "{name}");
    }
}

#[tokio::test]
async fn a_bulk_invitation_is_previewed_with_line_numbered_errors_and_sent_only_when_confirmed() {
    let (db, org, state) = setup().await;
    let admin = people::member(
        &db,
        &org,
        "adam@goldcrest.example.co.uk",
        "Adam Admin",
        BuiltInRole::Administrator,
        Scope::AllSites,
    )
    .await;
    let mut c = Client::new(&state);
    sign_in(&mut c, &db, &admin, "goldcrest").await;
    let g = host("goldcrest");
    let upload = |c: &mut Client, csv: &str| {
        let boundary = "XyZboundary";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"people.csv\"\r\nContent-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}--\r\n"
        );
        let mut req = Request::post("/settings/users/bulk")
            .header(header::HOST, g.clone())
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .header("sec-fetch-site", "same-origin");
        let cookies: Vec<String> = c.jar[&g].iter().map(|(k, v)| format!("{k}={v}")).collect();
        req = req.header(header::COOKIE, cookies.join("; "));
        let mut req = req.body(Body::from(body)).unwrap();
        req.extensions_mut().insert(ConnectInfo(c.ip));
        let app = c.app.clone();
        async move {
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), 4 << 20)
                .await
                .unwrap();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    let bad = "email,first name,last name,role,scope\nann@example.co.uk,Ann,Able,Manager,All sites\nbob@,Bob,Baker,Manager,All sites\ncat@example.co.uk,Cat,Cole,Astronaut,All sites\n";
    let (status, page) = upload(&mut c, bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.contains("Line 3:") && page.contains("Line 4:"),
        "{page}"
    );
    assert!(
        !page.contains("id=\"confirm\""),
        "no confirm button while there are errors"
    );
    let invited = |db: &TestDb| {
        let app = db.app.clone();
        let ctx = db.staff(&org, "x");
        async move {
            let mut tx = app.begin(&ctx).await.unwrap();
            access::members(&mut tx).await.unwrap().len()
        }
    };
    assert_eq!(invited(&db).await, 1, "nothing is sent from a preview");

    let good = "email,first name,last name,role,scope\nann@example.co.uk,Ann,Able,Manager,All sites\nbob@example.co.uk,Bob,Baker,Read Only,All sites\n";
    let (status, page) = upload(&mut c, good).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("id=\"confirm\""));
    assert_eq!(invited(&db).await, 1);
    let r = c
        .post(
            &g,
            "/settings/users/bulk/confirm",
            &format!("csv={}", enc(good)),
        )
        .await;
    assert_eq!(r.location(), "/settings/users?done=bulk&count=2");
    assert_eq!(invited(&db).await, 3);
    // Confirming the same file again sends nothing more: both are now members.
    let r = c
        .post(
            &g,
            "/settings/users/bulk/confirm",
            &format!("csv={}", enc(good)),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(invited(&db).await, 3);
}

#[tokio::test]
async fn a_member_sees_only_the_sites_in_their_scope() {
    let (db, org, state) = setup().await;
    let mut tx = db.app.begin(&db.staff(&org, "x")).await.unwrap();
    let riverside = access::create_estate(&mut tx, "EST-001", "Riverside Estate")
        .await
        .unwrap();
    let court = access::create_site(&mut tx, Some(riverside), "RC-001", "Riverside Court")
        .await
        .unwrap();
    access::create_site(&mut tx, Some(riverside), "WH-001", "Wharf House")
        .await
        .unwrap();
    access::create_site(&mut tx, None, "AM-001", "Abbey Mews")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let sam = people::member(
        &db,
        &org,
        "sam@goldcrest.example.co.uk",
        "Sam Site",
        BuiltInRole::SiteManager,
        Scope::Sites([court].into()),
    )
    .await;
    let maya = people::member(
        &db,
        &org,
        "maya@goldcrest.example.co.uk",
        "Maya Morgan",
        BuiltInRole::MaintenanceCoordinator,
        Scope::Estates([riverside].into()),
    )
    .await;
    let mut s = Client::new(&state);
    let page = sign_in(&mut s, &db, &sam, "goldcrest").await.body;
    assert!(
        page.contains("Riverside Court")
            && !page.contains("Wharf House")
            && !page.contains("Abbey Mews"),
        "{page}"
    );
    let mut m = Client::new(&state);
    let page = sign_in(&mut m, &db, &maya, "goldcrest").await.body;
    assert!(
        page.contains("Riverside Court")
            && page.contains("Wharf House")
            && !page.contains("Abbey Mews"),
        "{page}"
    );
}

#[tokio::test]
async fn an_administrator_cannot_reset_the_sign_in_of_someone_who_belongs_elsewhere_too() {
    let db = TestDb::new().await;
    let gold = db.org("goldcrest", "Goldcrest Estates").await;
    let acme = db.org("acme", "Acme Property Group").await;
    let state = people::state(&db, people::web_settings()).await;
    let admin = people::member(
        &db,
        &gold,
        "adam@goldcrest.example.co.uk",
        "Adam Admin",
        BuiltInRole::Administrator,
        Scope::AllSites,
    )
    .await;
    let priya = people::member(
        &db,
        &gold,
        "priya@example.co.uk",
        "Priya Patel",
        BuiltInRole::ReadOnly,
        Scope::AllSites,
    )
    .await;
    people::member(
        &db,
        &acme,
        "priya@example.co.uk",
        "Priya Patel",
        BuiltInRole::OrganisationOwner,
        Scope::AllSites,
    )
    .await;
    let solo = people::member(
        &db,
        &gold,
        "sol@goldcrest.example.co.uk",
        "Sol Solo",
        BuiltInRole::ReadOnly,
        Scope::AllSites,
    )
    .await;
    let mut c = Client::new(&state);
    sign_in(&mut c, &db, &admin, "goldcrest").await;
    let g = host("goldcrest");
    let r = c
        .post(
            &g,
            &format!("/settings/users/{}/reset-credentials", priya.membership_id),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("also belong to another organisation"),
        "{}",
        r.body
    );
    assert!(
        staff::find(&db.app, priya.user_id)
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .is_some()
    );
    // Someone who belongs here only is reset: no password, a link e-mailed, sessions over.
    let r = c
        .post(
            &g,
            &format!("/settings/users/{}/reset-credentials", solo.membership_id),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(
        staff::find(&db.app, solo.user_id)
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .is_none()
    );
    assert_eq!(auth_events(&db, &gold, "credentials_reset").await, 1);
}
