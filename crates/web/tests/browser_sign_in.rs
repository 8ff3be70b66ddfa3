//! Signing in, end to end in a real browser: the login host's password and second step, the
//! organisation picker and the hand-off to the organisation's own host, an authenticator app,
//! switching organisation, accepting an invitation, and a deactivated member's open session.
//!
//! Each test runs a real server on loopback and a headless Chromium; cookies are per host, so
//! these prove what the in-process request tests cannot: that the browser carries the person
//! from `login.proplink.localhost` to `<org>.proplink.localhost` and back.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails by panicking, helpers included"
)]

use proplink_auth::totp;
use proplink_db::organisation::Organisation;
use proplink_db::staff;
use proplink_domain::permissions::{BuiltInRole, Scope};
use proplink_test_support::TestDb;
use proplink_test_support::browser::{Browser, Page};
use proplink_test_support::people::{self, PASSWORD, Server, TestMember, latest_code};
use std::time::Instant;

const LOGIN_HOST: &str = "login.proplink.localhost";

fn org_host(slug: &str) -> String {
    format!("{slug}.proplink.localhost")
}

/// Clicks the submit button of the form posting to `action`, and waits for the next page.
async fn submit(page: &Page, action: &str) {
    page.click_and_wait_navigation(&format!(r#"form[action="{action}"] [type=submit]"#))
        .await;
}

/// E-mail and password on the login host; leaves the browser on the second-step page.
async fn enter_password(page: &Page, server: &Server, email: &str) {
    page.goto(&server.url(LOGIN_HOST, "/")).await;
    page.fill("#email", email).await;
    page.fill("#password", PASSWORD).await;
    submit(page, "/").await;
    page.wait_for_url_containing(&format!("{LOGIN_HOST}:{}/verify", server.port))
        .await;
}

/// Enters a second-step code; leaves the browser on the organisation picker, or, for someone
/// in one organisation only, on that organisation's dashboard.
async fn enter_code(page: &Page, server: &Server, code: &str) {
    page.fill("#code", code).await;
    submit(page, "/verify").await;
    let picker = format!("{LOGIN_HOST}:{}/organisations", server.port);
    let started = std::time::Instant::now();
    loop {
        let url = page.url().await;
        if url.contains(&picker) || url.contains("/dashboard") {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "after the code, neither the picker nor a dashboard: {url}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Password, then the newest e-mailed code: leaves the browser on the organisation picker.
async fn sign_in_with_emailed_code(page: &Page, server: &Server, db: &TestDb, m: &TestMember) {
    enter_password(page, server, &m.email).await;
    let code = latest_code(db, &m.email)
        .await
        .unwrap_or_else(|| panic!("no sign-in code was e-mailed to {}", m.email));
    enter_code(page, server, &code).await;
}

/// Chooses `slug` on an organisation picker (the login host's or "Switch organisation") and
/// waits for that organisation's dashboard to greet `m`.
async fn choose_organisation(page: &Page, server: &Server, slug: &str, m: &TestMember) {
    // Someone in one organisation only is taken straight there.
    if !page.url().await.contains(&org_host(slug)) {
        click_across_hosts(page, &format!("#org-{slug}"), "#dashboard-heading").await;
    }
    expect_dashboard(page, server, slug, &m.name).await;
}

/// Clicks `css`, a button whose form posts to this host and is redirected to another (the
/// hand-off to an organisation, switching organisation, signing out), and waits until the page
/// it leads to has an element matching `arrival`. A Content-Security-Policy's `form-action`
/// also governs where a form's redirects may go: a refusal fails the test naming the
/// directive, not as a page that never loaded.
async fn click_across_hosts(page: &Page, css: &str, arrival: &str) {
    page.evaluate_string(
        "document.addEventListener('securitypolicyviolation', e => { \
           const p = document.createElement('p'); p.id = 'csp-violation'; \
           p.textContent = `${e.violatedDirective} (blocked: ${e.blockedURI})`; \
           document.body.append(p); }); 'listening'",
    )
    .await;
    page.click(css).await;
    page.wait_for(&format!("{arrival}, #csp-violation")).await;
    let refused = page
        .evaluate_string(
            "(() => { const p = document.querySelector('#csp-violation'); \
             return p ? p.textContent : ''; })()",
        )
        .await;
    assert!(
        refused.is_empty(),
        "clicking `{css}` on {}: the browser refused the form's redirect to another host \
         under the page's Content-Security-Policy: {refused}",
        page.url().await
    );
}

/// Waits for `slug`'s dashboard, greeting the person called `name` by their first name.
async fn expect_dashboard(page: &Page, server: &Server, slug: &str, name: &str) {
    let dashboard = server.url(&org_host(slug), "/dashboard");
    page.wait_for_url_containing(&dashboard).await;
    let first_name = name.split_whitespace().next().unwrap();
    let greeting = page.wait_for_text("#dashboard-heading", first_name).await;
    assert_eq!(greeting, format!("Good to see you, {first_name}"));
}

/// Opens the profile menu in the admin app's header and follows one of its entries.
async fn profile_menu(page: &Page, entry: &str) {
    page.click(".pl-profile > summary").await;
    page.click_and_wait_navigation(&format!(".pl-profile {entry}"))
        .await;
}

/// How many sign-in codes have been e-mailed to `email`.
async fn codes_sent(db: &TestDb, email: &str) -> usize {
    staff::recent_platform_emails(&db.app, 1000)
        .await
        .unwrap()
        .iter()
        .filter(|m| m.to_address.eq_ignore_ascii_case(email) && m.category == "sign_in_code")
        .count()
}

async fn goldcrest(db: &TestDb) -> Organisation {
    db.org("goldcrest", "Goldcrest Estates").await
}

#[tokio::test]
async fn browser_sign_in_with_password_and_emailed_code() {
    let started = Instant::now();
    let db = TestDb::new().await;
    let org = goldcrest(&db).await;
    let priya = people::member(
        &db,
        &org,
        "priya.shah@goldcrest.example",
        "Priya Shah",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let server = Server::start(&db).await;
    let browser = Browser::launch().await;
    let page = browser.new_page().await;

    sign_in_with_emailed_code(&page, &server, &db, &priya).await;
    // One organisation: no picker, straight to its dashboard.
    assert!(
        page.url().await.contains(&org_host("goldcrest")),
        "{}",
        page.url().await
    );
    choose_organisation(&page, &server, "goldcrest", &priya).await;

    let org_url = server.url(&org_host("goldcrest"), "/");
    let cookies = page.cookies_for(&org_url).await;
    let session = cookies
        .iter()
        .find(|c| c.name == "pl_session")
        .unwrap_or_else(|| panic!("no pl_session cookie for {org_url}: {cookies:?}"));
    assert!(session.http_only, "pl_session must be HttpOnly");
    // Chromium reports a host-only cookie's domain without a leading dot.
    assert_eq!(
        session.domain,
        org_host("goldcrest"),
        "pl_session must be host-only"
    );
    // The organisation's session is never sent to another organisation's host.
    let elsewhere = page.cookies_for(&server.url(&org_host("acme"), "/")).await;
    assert!(
        elsewhere.iter().all(|c| c.name != "pl_session"),
        "{elsewhere:?}"
    );

    browser.close().await;
    eprintln!("whole test: {:?}", started.elapsed());
}

#[tokio::test]
async fn browser_enrol_and_use_an_authenticator_app() {
    let started = Instant::now();
    let db = TestDb::new().await;
    let org = goldcrest(&db).await;
    let priya = people::member(
        &db,
        &org,
        "priya.shah@goldcrest.example",
        "Priya Shah",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let server = Server::start(&db).await;
    let browser = Browser::launch().await;
    let page = browser.new_page().await;
    sign_in_with_emailed_code(&page, &server, &db, &priya).await;
    choose_organisation(&page, &server, "goldcrest", &priya).await;

    profile_menu(&page, r#"a[href="/account/security"]"#).await;
    page.click_and_wait_navigation("#setup-totp").await;
    let secret = page.text("#totp-secret").await;
    // Changing the second step asks for the current password.
    page.fill("#current", PASSWORD).await;
    let now = u64::try_from(server.state.now().unix_timestamp()).unwrap();
    page.fill("#code", &totp::code_at(&secret, now).unwrap())
        .await;
    submit(&page, "/account/security/totp").await;
    page.wait_for_text("#factor", "authenticator app").await;

    page.click(".pl-profile > summary").await;
    click_across_hosts(
        &page,
        r#".pl-profile form[action="/sign-out"] button"#,
        r#"#email, form[action="/organisations"]"#,
    )
    .await;
    let signed_out = page.url().await;
    assert!(
        signed_out.ends_with(&format!("{LOGIN_HOST}:{}/?notice=signed-out", server.port)),
        "signing out should end on the login host's sign-in page, but the browser is on \
         {signed_out}: the login host's session outlived the sign-out"
    );
    page.wait_for_text(".pl-flash", "You have signed out.")
        .await;

    let codes_before = codes_sent(&db, &priya.email).await;
    enter_password(&page, &server, &priya.email).await;
    page.wait_for_text("label[for=code]", "authenticator app")
        .await;
    assert_eq!(
        codes_sent(&db, &priya.email).await,
        codes_before,
        "no code is e-mailed to someone who uses an authenticator app"
    );
    // The enrolment used the current step, and a step works once: sign in with the next one.
    server.state.advance_clock(time::Duration::seconds(30));
    let next = u64::try_from(server.state.now().unix_timestamp()).unwrap();
    enter_code(&page, &server, &totp::code_at(&secret, next).unwrap()).await;
    choose_organisation(&page, &server, "goldcrest", &priya).await;

    browser.close().await;
    eprintln!("whole test: {:?}", started.elapsed());
}

#[tokio::test]
async fn browser_pick_between_two_organisations_and_switch() {
    let started = Instant::now();
    let db = TestDb::new().await;
    let goldcrest = goldcrest(&db).await;
    let acme = db.org("acme", "Acme Property Group").await;
    let email = "sam.okafor@example.co.uk";
    let sam = people::member(
        &db,
        &goldcrest,
        email,
        "Sam Okafor",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let sam_at_acme = people::member(
        &db,
        &acme,
        email,
        "Sam Okafor",
        BuiltInRole::Accountant,
        Scope::AllSites,
    )
    .await;
    assert_eq!(
        sam.user_id, sam_at_acme.user_id,
        "one person, two memberships"
    );
    let server = Server::start(&db).await;
    let browser = Browser::launch().await;
    let page = browser.new_page().await;

    sign_in_with_emailed_code(&page, &server, &db, &sam).await;
    assert_eq!(page.text("#org-acme").await, "Acme Property Group");
    assert_eq!(page.text("#org-goldcrest").await, "Goldcrest Estates");
    choose_organisation(&page, &server, "acme", &sam).await;
    assert_eq!(page.text(".pl-org").await, "Acme Property Group");

    profile_menu(&page, r#"a[href="/account/organisations"]"#).await;
    choose_organisation(&page, &server, "goldcrest", &sam).await;
    assert_eq!(page.text(".pl-org").await, "Goldcrest Estates");
    // Still signed in at Acme too: each host keeps its own session.
    page.goto(&server.url(&org_host("acme"), "/dashboard"))
        .await;
    expect_dashboard(&page, &server, "acme", &sam.name).await;

    browser.close().await;
    eprintln!("whole test: {:?}", started.elapsed());
}

#[tokio::test]
async fn browser_accept_an_invitation() {
    let started = Instant::now();
    let db = TestDb::new().await;
    let org = goldcrest(&db).await;
    let admin = people::member(
        &db,
        &org,
        "alex.admin@goldcrest.example",
        "Alex Morgan",
        BuiltInRole::Administrator,
        Scope::AllSites,
    )
    .await;
    let server = Server::start(&db).await;
    let browser = Browser::launch().await;
    let page = browser.new_page().await;
    sign_in_with_emailed_code(&page, &server, &db, &admin).await;
    choose_organisation(&page, &server, "goldcrest", &admin).await;

    page.click_and_wait_navigation(r#".pl-nav a[href="/settings"]"#)
        .await;
    page.click_and_wait_navigation(r#"main a[href="/settings/users"]"#)
        .await;
    page.click_and_wait_navigation("#invite-link").await;
    let (email, name) = ("jo.bloggs@goldcrest.example", "Jo Bloggs");
    page.fill("#email", email).await;
    page.fill("#name", name).await;
    // A <select> is chosen by value; `fill` types into text fields only.
    page.evaluate_string(
        "(() => { const s = document.querySelector('#role'); s.value = 'manager'; \
         s.dispatchEvent(new Event('change', { bubbles: true })); return s.value; })()",
    )
    .await;
    page.click("#scope-all").await;
    submit(&page, "/settings/users/invite").await;
    page.wait_for_url_containing("/settings/users?done=invited")
        .await;
    page.wait_for_text("#members", email).await;

    let invitation = invitation_url(&db, &org, email).await;
    assert!(
        invitation.starts_with(&server.url(&org_host("goldcrest"), "/invitation/")),
        "{invitation}"
    );
    // The newcomer opens the link on their own computer.
    let theirs = Browser::launch().await;
    let their_page = theirs.new_page().await;
    their_page.goto(&invitation).await;
    their_page
        .wait_for_text("h1", "Join Goldcrest Estates")
        .await;
    let password = "Tulip ledger 2024 bright";
    their_page.fill("#password", password).await;
    their_page.fill("#confirm", password).await;
    their_page.click("#sf-email").await;
    submit(&their_page, &invitation_path(&invitation)).await;
    their_page
        .wait_for_text("h1", "Welcome to Goldcrest Estates, Jo Bloggs")
        .await;
    let codes = their_page
        .evaluate_string("String(document.querySelectorAll('#backup-codes li').length)")
        .await;
    assert_eq!(codes, "10", "ten backup codes on the welcome page");
    their_page.click_and_wait_navigation("#continue").await;
    expect_dashboard(&their_page, &server, "goldcrest", name).await;

    theirs.close().await;
    browser.close().await;
    eprintln!("whole test: {:?}", started.elapsed());
}

/// The invitation link in the newest invitation e-mailed to `email` from `org`'s e-mail log.
async fn invitation_url(db: &TestDb, org: &Organisation, email: &str) -> String {
    let mut tx = db.app.begin(&db.staff(org, "the test")).await.unwrap();
    let mails = proplink_db::email::recent(&mut tx, 20).await.unwrap();
    tx.rollback().await.unwrap();
    let mail = mails
        .iter()
        .find(|m| m.to_address.eq_ignore_ascii_case(email))
        .unwrap_or_else(|| panic!("no e-mail to {email} in {}'s log", org.name));
    mail.body_text
        .split_whitespace()
        .find(|w| w.contains("/invitation/"))
        .unwrap_or_else(|| panic!("no invitation link in: {}", mail.body_text))
        .trim_end_matches(['.', ',', ')', '>'])
        .to_owned()
}

/// `/invitation/<token>` of a full invitation URL: the form's action.
fn invitation_path(url: &str) -> String {
    let at = url.find("/invitation/").unwrap();
    url[at..].to_owned()
}

#[tokio::test]
async fn browser_a_deactivated_users_open_session_is_refused() {
    let started = Instant::now();
    let db = TestDb::new().await;
    let org = goldcrest(&db).await;
    let victim = people::member(
        &db,
        &org,
        "chris.lee@goldcrest.example",
        "Chris Lee",
        BuiltInRole::Manager,
        Scope::AllSites,
    )
    .await;
    let admin = people::member(
        &db,
        &org,
        "alex.admin@goldcrest.example",
        "Alex Morgan",
        BuiltInRole::Administrator,
        Scope::AllSites,
    )
    .await;
    let server = Server::start(&db).await;

    let theirs = Browser::launch().await;
    let their_page = theirs.new_page().await;
    sign_in_with_emailed_code(&their_page, &server, &db, &victim).await;
    choose_organisation(&their_page, &server, "goldcrest", &victim).await;

    // The administrator, on another computer (another browser profile, other cookies).
    let admins = Browser::launch().await;
    let admin_page = admins.new_page().await;
    sign_in_with_emailed_code(&admin_page, &server, &db, &admin).await;
    choose_organisation(&admin_page, &server, "goldcrest", &admin).await;
    admin_page
        .click_and_wait_navigation(r#".pl-nav a[href="/settings"]"#)
        .await;
    admin_page
        .click_and_wait_navigation(r#"main a[href="/settings/users"]"#)
        .await;
    admin_page
        .click_and_wait_navigation(&format!(
            r#"#members a[href="/settings/users/{}"]"#,
            victim.membership_id
        ))
        .await;
    admin_page.click_and_wait_navigation("#deactivate").await;
    admin_page
        .wait_for_url_containing("?done=deactivated")
        .await;

    their_page
        .click_and_wait_navigation(r#".pl-nav a[href="/dashboard"]"#)
        .await;
    let landed = their_page
        .wait_for_url_containing(&format!("{LOGIN_HOST}:{}/", server.port))
        .await;
    let html = their_page.html().await;
    assert!(
        !html.contains("dashboard-heading"),
        "a deactivated member must not see the dashboard ({landed})"
    );
    assert!(
        !html.contains("id=\"org-goldcrest\""),
        "Goldcrest must not be offered to its deactivated member ({landed})"
    );
    // Their organisation session is gone, and its cookie with it.
    let cookies = their_page
        .cookies_for(&server.url(&org_host("goldcrest"), "/"))
        .await;
    assert!(
        cookies.iter().all(|c| c.name != "pl_session"),
        "{cookies:?}"
    );

    admins.close().await;
    theirs.close().await;
    eprintln!("whole test: {:?}", started.elapsed());
}
