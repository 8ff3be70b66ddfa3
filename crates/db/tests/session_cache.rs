//! The signed-in session cache against the real database: what it keeps, and every way a kept
//! session stops being used (a change here, a change made by another process, a lost listener).

#![allow(
    clippy::unwrap_used,
    reason = "a test fails by panicking, helpers included"
)]

use proplink_auth::links::new_token;
use proplink_db::access::{self, NewInvitation, RoleChoice};
use proplink_db::organisation::Organisation;
use proplink_db::pools::{AppPool, PoolSettings};
use proplink_db::{Actor, TenantContext, staff};
use proplink_domain::Channel;
use proplink_domain::permissions::{BuiltInRole, Scope};
use proplink_test_support::TestDb;
use std::time::Duration as StdDuration;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

fn system(org: &Organisation) -> TenantContext {
    TenantContext {
        org: org.id,
        actor: Actor::system(),
        channel: Channel::Admin,
        request_id: None,
    }
}

/// An active member of `org` with a session begun now: (membership id, user id, token hash).
async fn signed_in(db: &TestDb, org: &Organisation, email: &str) -> (Uuid, Uuid, String) {
    let now = OffsetDateTime::now_utc();
    let mut tx = db.app.begin(&db.staff(org, "Loader")).await.unwrap();
    let membership_id = access::invite(
        &mut tx,
        &NewInvitation {
            email: email.into(),
            name: "Sam Site".into(),
            role: RoleChoice::BuiltIn(BuiltInRole::SiteManager),
            scope: Scope::AllSites,
            welcome_message: None,
            is_owner: false,
        },
        &new_token().1,
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
    let (_, hash) = new_token();
    access::start_session(&mut tx, membership_id, m.user_id, &hash, None, None, now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (membership_id, m.user_id, hash)
}

async fn lookup(pool: &AppPool, org: &Organisation, hash: &str) -> bool {
    access::live_member_session(pool, &system(org), hash, OffsetDateTime::now_utc())
        .await
        .unwrap()
        .is_some()
}

/// Makes the stored session idle for two hours behind the cache's back (`last_seen_at` is not
/// announced), so a lookup that still succeeds was answered from the cache.
async fn idle_behind_the_cache(db: &TestDb, org: &Organisation) {
    let mut su = db.superuser().await;
    sqlx::query(
        "update staff_session set last_seen_at = now() - interval '2 hours' where organisation_id = $1",
    )
    .bind(org.id.0)
    .execute(&mut su)
    .await
    .unwrap();
}

/// Lets the notifications of this test's own set-up commits arrive (each one drops the
/// organisation's cached sessions again, a moment after the commit already did).
async fn settle() {
    tokio::time::sleep(StdDuration::from_millis(300)).await;
}

/// A second process: its own pool on the same database, with its own (unused) cache.
fn other_process(db: &TestDb) -> AppPool {
    AppPool::new(&db.url("proplink_app"), &PoolSettings::default()).unwrap()
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..500 {
        if check().await {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    panic!("{what} did not happen within 5 s");
}

#[tokio::test]
async fn nothing_is_cached_until_the_listener_is_connected() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let (_, _, hash) = signed_in(&db, &org, "sam@goldcrest.example.co.uk").await;
    assert!(lookup(&db.app, &org, &hash).await);
    assert!(db.app.sessions().is_empty());
    idle_behind_the_cache(&db, &org).await;
    assert!(
        !lookup(&db.app, &org, &hash).await,
        "read from the database"
    );
}

#[tokio::test]
async fn a_cached_session_is_dropped_by_a_change_here_at_once() {
    let db = TestDb::new().await;
    db.listen_for_access_changes().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let (membership, _, hash) = signed_in(&db, &org, "sam@goldcrest.example.co.uk").await;
    settle().await;
    assert!(lookup(&db.app, &org, &hash).await);
    assert_eq!(db.app.sessions().len(), 1);
    idle_behind_the_cache(&db, &org).await;
    assert!(
        lookup(&db.app, &org, &hash).await,
        "answered from the cache"
    );

    // Deactivated in this process: the very next lookup goes to the database.
    let mut tx = db.app.begin(&db.staff(&org, "Adam Admin")).await.unwrap();
    access::deactivate(
        &mut tx,
        membership,
        Uuid::now_v7(),
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap()
    .unwrap();
    tx.commit().await.unwrap();
    assert!(!lookup(&db.app, &org, &hash).await);
}

#[tokio::test]
async fn changes_made_by_another_process_reach_the_cache() {
    let db = TestDb::new().await;
    db.listen_for_access_changes().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let acme = db.org("acme", "Acme Property Group").await;
    let other = other_process(&db);
    let (membership, _, hash) = signed_in(&db, &org, "sam@goldcrest.example.co.uk").await;
    let (_, acme_user, acme_hash) = signed_in(&db, &acme, "ann@acme.example.co.uk").await;
    settle().await;

    // A change in another organisation leaves Goldcrest's cached session alone.
    assert!(lookup(&db.app, &org, &hash).await);
    idle_behind_the_cache(&db, &org).await;
    let mut tx = other.begin(&system(&acme)).await.unwrap();
    sqlx::query("update membership set scope = scope")
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    settle().await;
    assert!(lookup(&db.app, &org, &hash).await, "still cached");

    // Goldcrest's member deactivated by the other process: dropped here once notified.
    let mut tx = other.begin(&system(&org)).await.unwrap();
    access::deactivate(
        &mut tx,
        membership,
        Uuid::now_v7(),
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap()
    .unwrap();
    tx.commit().await.unwrap();
    eventually("the deactivation reaching the cache", async || {
        !lookup(&db.app, &org, &hash).await
    })
    .await;

    // A person signing out everywhere (platform data) reaches every organisation.
    assert!(lookup(&db.app, &acme, &acme_hash).await);
    staff::sign_out_everywhere(&other, acme_user, OffsetDateTime::now_utc())
        .await
        .unwrap();
    eventually("signing out everywhere reaching the cache", async || {
        !lookup(&db.app, &acme, &acme_hash).await
    })
    .await;
    other.close().await;
}

#[tokio::test]
async fn a_lost_listener_empties_the_cache_until_it_is_back() {
    let db = TestDb::new().await;
    db.listen_for_access_changes().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let (_, _, hash) = signed_in(&db, &org, "sam@goldcrest.example.co.uk").await;
    assert!(lookup(&db.app, &org, &hash).await);
    assert_eq!(db.app.sessions().len(), 1);

    let mut su = db.superuser().await;
    let ended: Vec<bool> = sqlx::query_scalar(
        "select pg_terminate_backend(pid) from pg_stat_activity
          where datname = current_database() and query ilike 'listen%'",
    )
    .fetch_all(&mut su)
    .await
    .unwrap();
    assert_eq!(ended, vec![true], "one listener connection");
    eventually("the cache noticing its listener is gone", async || {
        db.app.sessions().is_empty()
    })
    .await;
    eventually("the listener reconnecting", async || {
        db.app.sessions().is_listening()
    })
    .await;
    assert!(lookup(&db.app, &org, &hash).await);
    assert_eq!(db.app.sessions().len(), 1, "cached again");
}

#[tokio::test]
async fn a_cached_session_still_times_out_and_notes_last_seen_each_minute() {
    let db = TestDb::new().await;
    db.listen_for_access_changes().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let (_, _, hash) = signed_in(&db, &org, "sam@goldcrest.example.co.uk").await;
    let ctx = system(&org);
    let now = OffsetDateTime::now_utc();
    let found = access::live_member_session(&db.app, &ctx, &hash, now)
        .await
        .unwrap()
        .unwrap();
    assert!(!found.touched);
    // Within the minute: from the cache, nothing written.
    let again = access::live_member_session(&db.app, &ctx, &hash, now + Duration::seconds(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.session.last_seen_at, found.session.last_seen_at);
    // After it: read again and "last seen" written, which keeps the entry usable.
    let later = now + Duration::seconds(90);
    let touched = access::live_member_session(&db.app, &ctx, &hash, later)
        .await
        .unwrap()
        .unwrap();
    assert!(touched.touched);
    assert_eq!(touched.session.last_seen_at, later);
    assert_eq!(db.app.sessions().len(), 1);
    // Past the absolute limit (12 hours), never served, cached or not.
    assert!(
        access::live_member_session(&db.app, &ctx, &hash, now + Duration::hours(13))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn dashboard_facts_are_reused_until_a_change_here_or_their_age_runs_out() {
    let db = TestDb::new().await;
    db.listen_for_access_changes().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let other = other_process(&db);
    let ctx = system(&org);
    let estates = async |pool: &AppPool| {
        access::live_dashboard_facts(pool, &ctx, 8)
            .await
            .unwrap()
            .counts
            .estates
    };
    let add_estate = async |pool: &AppPool, reference: &str| {
        let mut tx = pool.begin(&db.staff(&org, "Adam Admin")).await.unwrap();
        access::create_estate(&mut tx, reference, "Riverside")
            .await
            .unwrap();
        tx.commit().await.unwrap();
    };
    settle().await;
    let read_at = std::time::Instant::now();
    assert_eq!(estates(&db.app).await, 0);

    // Another process adds an estate (no access table, so no notification): the facts read a
    // moment ago are still shown, for at most FACTS_MAX_AGE.
    add_estate(&other, "RIV").await;
    let started = std::time::Instant::now();
    let first_seen = estates(&db.app).await;
    let max_age = proplink_db::session_cache::FACTS_MAX_AGE;
    if read_at.elapsed() < max_age {
        assert_eq!(first_seen, 0, "reused, not read again");
    }
    eventually("the other process's estate showing", async || {
        estates(&db.app).await == 1
    })
    .await;
    assert!(
        started.elapsed() <= max_age + StdDuration::from_millis(500),
        "shown within the facts' age limit"
    );

    // A change committed in this process shows on the very next read.
    add_estate(&db.app, "HAR").await;
    assert_eq!(estates(&db.app).await, 2);

    // Without a listener nothing is reused: the other process's change shows at once.
    let mut su = db.superuser().await;
    sqlx::query(
        "select pg_terminate_backend(pid) from pg_stat_activity
          where datname = current_database() and query ilike 'listen%'",
    )
    .execute(&mut su)
    .await
    .unwrap();
    eventually("the cache noticing its listener is gone", async || {
        !db.app.sessions().is_listening()
    })
    .await;
    add_estate(&other, "OAK").await;
    assert_eq!(estates(&db.app).await, 3);
    other.close().await;
}
