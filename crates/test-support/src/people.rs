//! Staff for tests: members with a password (hashed with the fast test parameters), a session
//! straight into an organisation, and a web app or a real server to talk to.

#![expect(clippy::unwrap_used, reason = "test harness")]

use crate::TestDb;
use proplink_auth::links::new_token;
use proplink_auth::password::{HashParams, PasswordHasherPool};
use proplink_db::access::{self, NewInvitation, RoleChoice};
use proplink_db::organisation::Organisation;
use proplink_db::{Actor, TenantContext, profile, staff};
use proplink_domain::permissions::{BuiltInRole, Scope};
use proplink_domain::{ActorKind, Channel};
use proplink_web::{AppState, Domains, WebSettings};
use secrecy::SecretString;
use time::OffsetDateTime;
use uuid::Uuid;

/// The password every test member gets.
pub const PASSWORD: &str = "correct horse battery 42";

#[derive(Debug, Clone)]
pub struct TestMember {
    pub membership_id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
}

fn loader(org: &Organisation) -> TenantContext {
    TenantContext {
        org: org.id,
        actor: Actor {
            id: None,
            kind: ActorKind::System,
            name: Some("the test loader".into()),
        },
        channel: Channel::Platform,
        request_id: None,
    }
}

/// Adds an active member with [`PASSWORD`] (the same e-mail in two organisations is one user).
/// The organisation's set-up is marked done so the dashboard opens directly.
pub async fn member(
    db: &TestDb,
    org: &Organisation,
    email: &str,
    name: &str,
    role: BuiltInRole,
    scope: Scope,
) -> TestMember {
    let now = OffsetDateTime::now_utc();
    let mut tx = db.app.begin(&loader(org)).await.unwrap();
    profile::complete_setup(&mut tx, now).await.unwrap();
    let (_, hash) = new_token();
    let membership_id = access::invite(
        &mut tx,
        &NewInvitation {
            email: email.into(),
            name: name.into(),
            role: RoleChoice::BuiltIn(role),
            scope,
            welcome_message: None,
            is_owner: role == BuiltInRole::OrganisationOwner,
        },
        &hash,
        "http://example.invalid/invitation",
        &org.name,
        None,
        now,
    )
    .await
    .unwrap()
    .unwrap();
    let m = access::member(&mut tx, membership_id)
        .await
        .unwrap()
        .unwrap();
    access::accept_invitation(&mut tx, m.invitation_id.unwrap(), now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let user = staff::find(&db.app, m.user_id).await.unwrap().unwrap();
    if user.password_hash.is_none() {
        let hasher = PasswordHasherPool::new(HashParams::TESTING).unwrap();
        let hashed = hasher.hash(SecretString::from(PASSWORD)).await.unwrap();
        // Backdated so that sessions started "now" are after it.
        staff::set_password(
            &db.app,
            m.user_id,
            &hashed,
            now - time::Duration::minutes(1),
        )
        .await
        .unwrap();
    }
    TestMember {
        membership_id,
        user_id: m.user_id,
        email: email.into(),
        name: name.into(),
    }
}

/// A session for `m` in `org`, as the hand-off would make it: the cookie value to send.
pub async fn session(db: &TestDb, org: &Organisation, m: &TestMember) -> String {
    let (token, hash) = new_token();
    let mut tx = db.app.begin(&loader(org)).await.unwrap();
    access::start_session(
        &mut tx,
        m.membership_id,
        m.user_id,
        &hash,
        None,
        None,
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    token
}

/// Web settings for tests: the development mailbox on, fast password hashing.
pub fn web_settings() -> WebSettings {
    let mut s = WebSettings::new(Domains::default());
    s.dev_mailbox = true;
    s.password_params = HashParams::TESTING;
    // Each test server keeps its uploads apart, under the system's temporary directory.
    let files = std::env::temp_dir().join(format!("proplink-test-files-{}", uuid::Uuid::new_v4()));
    s.files = proplink_files::FileStore::local(&files).ok();
    s
}

/// The web app's state, with the session cache listening for access changes as `serve` has it
/// (so every web test runs with signed-in sessions cached between requests).
pub async fn state(db: &TestDb, settings: WebSettings) -> AppState {
    db.listen_for_access_changes().await;
    AppState::new(db.app.clone(), settings).await.unwrap()
}

/// A real server on 127.0.0.1 (for the browser): its port and a handle that stops it.
pub struct Server {
    pub port: u16,
    pub state: AppState,
    stop: tokio_util::sync::CancellationToken,
}

impl Server {
    pub async fn start(db: &TestDb) -> Self {
        Self::start_with(db, web_settings()).await
    }

    /// A server with `settings` (a geocoder, say) instead of [`web_settings`].
    pub async fn start_with(db: &TestDb, mut settings: WebSettings) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        settings.public_port = Some(port);
        let state = state(db, settings).await;
        let stop = tokio_util::sync::CancellationToken::new();
        let (s, st) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            let _ = proplink_web::serve(listener, s, st).await;
        });
        Self { port, state, stop }
    }

    /// `http://<host>:<port><path>`.
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The newest sign-in code e-mailed to `email` (read from the platform outbox).
pub async fn latest_code(db: &TestDb, email: &str) -> Option<String> {
    let mails = staff::recent_platform_emails(&db.app, 50).await.unwrap();
    mails
        .iter()
        .find(|m| m.to_address.eq_ignore_ascii_case(email) && m.category == "sign_in_code")
        .and_then(|m| {
            m.body_text
                .split_whitespace()
                .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
                .map(str::to_owned)
        })
}
