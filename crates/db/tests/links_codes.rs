//! Signed links, portal one-time codes and rate limits against the real database.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails by panicking, helpers included"
)]

use proplink_auth::codes::CodeKey;
use proplink_db::links::{self, LinkRefusal, MintError, NewLink, ResolveError};
use proplink_db::portal::{self, CodeOutcome, CodeRefusal, Portal};
use proplink_db::rate_limit::{self, Decision, Limit};
use proplink_db::{Actor, TenantContext, audit, email};
use proplink_domain::{ActorKind, Channel, EmailAddress};
use proplink_test_support::TestDb;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

fn link(expires_at: OffsetDateTime) -> NewLink {
    NewLink {
        record_type: "work_order".into(),
        record_id: Uuid::now_v7(),
        recipient_email: EmailAddress::parse("plumber@example.com").unwrap(),
        recipient_name: Some("Bright Spark Plumbing".into()),
        expires_at,
    }
}

#[tokio::test]
async fn a_signed_link_opens_its_one_record_until_it_expires_or_is_revoked() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let now = OffsetDateTime::now_utc();
    let mut tx = db.app.begin(&db.staff(&org, "Jane Doe")).await.unwrap();
    let wo = link(now + Duration::days(14));
    let record_id = wo.record_id;
    let minted = links::mint(&mut tx, wo, now).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(minted.token.len(), 43);

    // Opened from a URL with no organisation in it.
    let grant = links::resolve(&db.app, &minted.token, now).await.unwrap();
    assert_eq!(
        (grant.org, grant.link_id, grant.record_id),
        (org.id, minted.id, record_id)
    );
    assert_eq!(grant.record_type, "work_order");
    assert_eq!(grant.recipient_email, "plumber@example.com");

    // The contractor's session acts in that organisation, and the opening is on the record.
    let contractor = TenantContext {
        org: grant.org,
        actor: Actor {
            id: None,
            kind: ActorKind::Contractor,
            name: grant.recipient_name.clone(),
        },
        channel: Channel::ContractorPort,
        request_id: None,
    };
    let mut tx = db.app.begin(&contractor).await.unwrap();
    links::record_opening(&mut tx, grant.link_id, now)
        .await
        .unwrap();
    let history = audit::history(&mut tx, "signed_link", &minted.id.to_string())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(
        history[0].sentence().starts_with(
            "Last opened at and opened count changed by Bright Spark Plumbing via ContractorPort"
        ),
        "{}",
        history[0].sentence()
    );

    // Expiry is checked against the caller's clock.
    let later = now + Duration::days(15);
    assert!(matches!(
        links::resolve(&db.app, &minted.token, later).await,
        Err(ResolveError::Refused(LinkRefusal::Expired))
    ));

    let mut tx = db.app.begin(&db.staff(&org, "Jane Doe")).await.unwrap();
    assert!(links::revoke(&mut tx, minted.id, now).await.unwrap());
    assert!(
        !links::revoke(&mut tx, minted.id, now).await.unwrap(),
        "already revoked"
    );
    tx.commit().await.unwrap();
    assert!(matches!(
        links::resolve(&db.app, &minted.token, now).await,
        Err(ResolveError::Refused(LinkRefusal::Revoked))
    ));
}

#[tokio::test]
async fn damaged_unknown_and_out_of_range_links_are_refused() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let now = OffsetDateTime::now_utc();
    let (unknown, _) = proplink_auth::links::new_token();
    assert!(matches!(
        links::resolve(&db.app, &unknown, now).await,
        Err(ResolveError::Refused(LinkRefusal::Unknown))
    ));
    assert!(matches!(
        links::resolve(&db.app, "not-a-token", now).await,
        Err(ResolveError::Refused(LinkRefusal::Malformed))
    ));

    let mut tx = db.app.begin(&db.staff(&org, "Jane Doe")).await.unwrap();
    assert!(matches!(
        links::mint(&mut tx, link(now - Duration::minutes(1)), now).await,
        Err(MintError::ExpiryInPast)
    ));
    assert!(matches!(
        links::mint(&mut tx, link(now + Duration::days(91)), now).await,
        Err(MintError::TooLong)
    ));
    let minted = links::mint(&mut tx, link(now + Duration::days(1)), now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // Truncated by an e-mail client.
    assert!(matches!(
        links::resolve(&db.app, &minted.token[..40], now).await,
        Err(ResolveError::Refused(LinkRefusal::Malformed))
    ));
}

#[tokio::test]
async fn a_token_shows_only_its_own_link_and_another_organisation_cannot_revoke_it() {
    let db = TestDb::new().await;
    let goldcrest = db.org("goldcrest", "Goldcrest Estates").await;
    let acme = db.org("acme", "Acme Property Group").await;
    let now = OffsetDateTime::now_utc();
    let mut minted = Vec::new();
    for org in [&goldcrest, &acme] {
        let mut tx = db.app.begin(&db.staff(org, "Jane Doe")).await.unwrap();
        minted.push(
            links::mint(&mut tx, link(now + Duration::days(1)), now)
                .await
                .unwrap(),
        );
        tx.commit().await.unwrap();
    }
    // Acme, holding the hash of Goldcrest's token, sees that one link and cannot change it.
    let mut tx = db.app.begin(&db.staff(&acme, "Mallory")).await.unwrap();
    sqlx::query("select set_config('app.link_token_hash', $1, true)")
        .bind(proplink_auth::links::hash_token(&minted[0].token).unwrap())
        .execute(tx.conn())
        .await
        .unwrap();
    let visible: Vec<Uuid> = sqlx::query_scalar("select id from signed_link order by id")
        .fetch_all(tx.conn())
        .await
        .unwrap();
    let mut expected = vec![minted[0].id, minted[1].id];
    expected.sort();
    assert_eq!(
        visible, expected,
        "its own link, and the one whose token it holds"
    );
    assert!(!links::revoke(&mut tx, minted[0].id, now).await.unwrap());
    let changed = sqlx::query("update signed_link set revoked_at = now() where id = $1")
        .bind(minted[0].id)
        .execute(tx.conn())
        .await
        .unwrap();
    assert_eq!(changed.rows_affected(), 0);
    tx.commit().await.unwrap();
    assert!(links::resolve(&db.app, &minted[0].token, now).await.is_ok());
}

/// Asks for a ResidencePort sign-in code in a committed transaction and reads it from the outbox.
async fn request_code(
    db: &TestDb,
    ctx: &TenantContext,
    key: &CodeKey,
    email: &EmailAddress,
    organisation_name: &str,
    now: OffsetDateTime,
) -> String {
    let mut tx = db.app.begin(ctx).await.unwrap();
    let sent = portal::request_sign_in_code(
        &mut tx,
        key,
        Portal::ResidencePort,
        email,
        organisation_name,
        now,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(sent, "no account for {email}");
    let mut tx = db.app.begin(ctx).await.unwrap();
    let latest = email::recent(&mut tx, 1).await.unwrap().remove(0);
    assert!(
        !latest.subject.chars().any(|c| c.is_ascii_digit()),
        "a code in the subject would reach the audit log: {}",
        latest.subject
    );
    let line = latest
        .body_text
        .lines()
        .find(|l| l.starts_with("    "))
        .unwrap();
    line.trim().to_owned()
}

#[tokio::test]
async fn a_portal_code_works_once_within_ten_minutes_and_five_tries() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let key = CodeKey::generate();
    let patel = EmailAddress::parse("patel@example.com").unwrap();
    let now = OffsetDateTime::now_utc();
    let ctx = TenantContext {
        org: org.id,
        actor: Actor::system(),
        channel: Channel::ResidencePort,
        request_id: None,
    };

    let mut tx = db.app.begin(&ctx).await.unwrap();
    let account = portal::create_account(&mut tx, Portal::ResidencePort, &patel, "Mr Patel")
        .await
        .unwrap();
    // An address with no account gets no e-mail (and the caller says the same thing either way).
    let stranger = EmailAddress::parse("stranger@example.com").unwrap();
    assert!(
        !portal::request_sign_in_code(
            &mut tx,
            &key,
            Portal::ResidencePort,
            &stranger,
            &org.name,
            now
        )
        .await
        .unwrap()
    );
    tx.commit().await.unwrap();
    let code = request_code(&db, &ctx, &key, &patel, &org.name, now).await;
    assert_eq!(code.len(), 6);

    let verify = |code: String, at: OffsetDateTime| {
        let (db, key, patel, ctx) = (&db, &key, &patel, &ctx);
        async move {
            let mut tx = db.app.begin(ctx).await.unwrap();
            let outcome =
                portal::verify_sign_in_code(&mut tx, key, Portal::ResidencePort, patel, &code, at)
                    .await
                    .unwrap();
            tx.commit().await.unwrap();
            outcome
        }
    };
    let wrong = if code == "000000" {
        "111111".to_owned()
    } else {
        "000000".to_owned()
    };
    assert_eq!(
        verify(wrong.clone(), now).await,
        CodeOutcome::Refused(CodeRefusal::Wrong { remaining: 4 })
    );
    assert_eq!(
        CodeRefusal::Wrong { remaining: 4 }.to_string(),
        "That code is not right. You have 4 more tries."
    );
    // The right code, typed with a space, after one wrong try.
    assert_eq!(
        verify(
            format!("{} {}", &code[..3], &code[3..]),
            now + Duration::minutes(9)
        )
        .await,
        CodeOutcome::Accepted {
            account_id: account
        }
    );
    // Single use.
    assert_eq!(
        verify(code.clone(), now).await,
        CodeOutcome::Refused(CodeRefusal::NoCode)
    );

    // A fresh code: expired after ten minutes.
    let code = request_code(&db, &ctx, &key, &patel, &org.name, now).await;
    assert_eq!(
        verify(code.clone(), now + Duration::minutes(10)).await,
        CodeOutcome::Refused(CodeRefusal::Expired)
    );

    // Another fresh code: five wrong tries and even the right code is refused.
    let code = request_code(&db, &ctx, &key, &patel, &org.name, now).await;
    let wrong = if code == "000000" {
        "111111".to_owned()
    } else {
        "000000".to_owned()
    };
    for remaining in (1..=4).rev() {
        assert_eq!(
            verify(wrong.clone(), now).await,
            CodeOutcome::Refused(CodeRefusal::Wrong { remaining })
        );
    }
    assert_eq!(
        verify(wrong.clone(), now).await,
        CodeOutcome::Refused(CodeRefusal::TooManyTries)
    );
    assert_eq!(
        verify(code, now).await,
        CodeOutcome::Refused(CodeRefusal::TooManyTries)
    );

    // A code never reaches the audit log in the clear.
    let mut su = db.superuser().await;
    let leaked: i64 = sqlx::query_scalar("select count(*) from audit_event where table_name = 'one_time_code' and changes::text like '%code_digest%' and changes::text not like '%[redacted]%'")
        .fetch_one(&mut su)
        .await
        .unwrap();
    assert_eq!(leaked, 0);
}

#[tokio::test]
async fn a_new_code_replaces_the_old_one_and_codes_do_not_cross_organisations() {
    let db = TestDb::new().await;
    let goldcrest = db.org("goldcrest", "Goldcrest Estates").await;
    let acme = db.org("acme", "Acme Property Group").await;
    let key = CodeKey::generate();
    let patel = EmailAddress::parse("patel@example.com").unwrap();
    let now = OffsetDateTime::now_utc();
    let ctx = |org: &proplink_db::organisation::Organisation| TenantContext {
        org: org.id,
        actor: Actor::system(),
        channel: Channel::ResidencePort,
        request_id: None,
    };
    for org in [&goldcrest, &acme] {
        let mut tx = db.app.begin(&ctx(org)).await.unwrap();
        portal::create_account(&mut tx, Portal::ResidencePort, &patel, "Mr Patel")
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let first = request_code(&db, &ctx(&goldcrest), &key, &patel, "Goldcrest", now).await;
    let second = request_code(&db, &ctx(&goldcrest), &key, &patel, "Goldcrest", now).await;

    // Goldcrest's code means nothing at Acme, where Mr Patel asked for none.
    let mut tx = db.app.begin(&ctx(&acme)).await.unwrap();
    assert_eq!(
        portal::verify_sign_in_code(&mut tx, &key, Portal::ResidencePort, &patel, &second, now)
            .await
            .unwrap(),
        CodeOutcome::Refused(CodeRefusal::NoCode)
    );
    drop(tx);
    let mut tx = db.app.begin(&ctx(&goldcrest)).await.unwrap();
    if first != second {
        assert!(matches!(
            portal::verify_sign_in_code(&mut tx, &key, Portal::ResidencePort, &patel, &first, now)
                .await
                .unwrap(),
            CodeOutcome::Refused(CodeRefusal::Wrong { .. })
        ));
    }
    assert!(matches!(
        portal::verify_sign_in_code(&mut tx, &key, Portal::ResidencePort, &patel, &second, now)
            .await
            .unwrap(),
        CodeOutcome::Accepted { .. }
    ));
    // Another portal of the same organisation is another account.
    assert_eq!(
        portal::verify_sign_in_code(&mut tx, &key, Portal::BuildingThread, &patel, &second, now)
            .await
            .unwrap(),
        CodeOutcome::Refused(CodeRefusal::NoCode)
    );
}

#[tokio::test]
async fn rate_limits_count_per_key_and_window() {
    let db = TestDb::new().await;
    let limit = Limit {
        max: 5,
        window: Duration::minutes(15),
    };
    let start = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(); // on a 15-minute boundary
    for i in 0..5 {
        assert_eq!(
            rate_limit::hit(
                &db.app,
                "sign_in:ip:203.0.113.9",
                limit,
                start + Duration::seconds(i)
            )
            .await
            .unwrap(),
            Decision::Allowed {
                remaining: 4 - i as i32
            }
        );
    }
    assert_eq!(
        rate_limit::hit(
            &db.app,
            "sign_in:ip:203.0.113.9",
            limit,
            start + Duration::minutes(5)
        )
        .await
        .unwrap(),
        Decision::Refused {
            retry_after: Duration::minutes(10)
        }
    );
    // Another key is counted apart; the next window starts afresh.
    assert_eq!(
        rate_limit::hit(&db.app, "sign_in:ip:198.51.100.7", limit, start)
            .await
            .unwrap(),
        Decision::Allowed { remaining: 4 }
    );
    assert_eq!(
        rate_limit::hit(
            &db.app,
            "sign_in:ip:203.0.113.9",
            limit,
            start + Duration::minutes(15)
        )
        .await
        .unwrap(),
        Decision::Allowed { remaining: 4 }
    );
    assert_eq!(
        rate_limit::sweep(&db.app, start + Duration::minutes(15))
            .await
            .unwrap(),
        2
    );
}

#[tokio::test]
async fn a_closed_organisations_links_open_nothing_and_refusals_read_alike() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let now = OffsetDateTime::now_utc();
    let mut tx = db.app.begin(&db.staff(&org, "Jane Doe")).await.unwrap();
    let minted = links::mint(&mut tx, link(now + Duration::days(1)), now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    proplink_db::organisation::set_status(
        &db.platform,
        org.id,
        proplink_db::organisation::OrgStatus::Closed,
    )
    .await
    .unwrap();
    assert!(matches!(
        links::resolve(&db.app, &minted.token, now).await,
        Err(ResolveError::Refused(LinkRefusal::Unknown))
    ));

    // Whatever the reason a code fails, the page says the same thing.
    let reasons = [
        CodeRefusal::Wrong { remaining: 3 },
        CodeRefusal::Expired,
        CodeRefusal::TooManyTries,
        CodeRefusal::NoCode,
    ];
    let messages: std::collections::HashSet<_> =
        reasons.iter().map(CodeRefusal::public_message).collect();
    assert_eq!(messages.len(), 1);
}

#[tokio::test]
async fn a_link_session_grants_only_its_record_and_ends_with_its_link() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let other = db.org("acme", "Acme Property Group").await;
    let now = OffsetDateTime::now_utc();
    let mut tx = db.app.begin(&db.staff(&org, "Jane Doe")).await.unwrap();
    let wo = link(now + Duration::hours(2));
    let record_id = wo.record_id;
    let minted = links::mint(&mut tx, wo, now).await.unwrap();
    tx.commit().await.unwrap();

    let grant = links::resolve(&db.app, &minted.token, now).await.unwrap();
    let contractor = TenantContext {
        org: grant.org,
        actor: Actor {
            id: None,
            kind: ActorKind::Contractor,
            name: grant.recipient_name.clone(),
        },
        channel: Channel::ContractorPort,
        request_id: None,
    };
    let (session_token, session_hash) = proplink_auth::links::new_token();
    let mut tx = db.app.begin(&contractor).await.unwrap();
    links::start_session(&mut tx, &grant, &session_hash, now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_ne!(session_token, minted.token, "the session has its own token");

    // The session grants the link's one record, and nothing in another organisation.
    let mut tx = db.app.begin(&contractor).await.unwrap();
    let found = links::find_session(&mut tx, &session_hash, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.record_type.as_str(), found.record_id),
        ("work_order", record_id)
    );
    tx.rollback().await.unwrap();
    let mut tx = db.app.begin(&db.staff(&other, "Nosy")).await.unwrap();
    assert!(
        links::find_session(&mut tx, &session_hash, now)
            .await
            .unwrap()
            .is_none()
    );
    tx.rollback().await.unwrap();

    // It never outlives its link (two hours here, not the twelve a session may last)…
    let mut tx = db.app.begin(&contractor).await.unwrap();
    assert!(
        links::find_session(&mut tx, &session_hash, now + Duration::hours(3))
            .await
            .unwrap()
            .is_none()
    );
    tx.rollback().await.unwrap();
    // …and ends the moment the link is revoked.
    let mut tx = db.app.begin(&db.staff(&org, "Jane Doe")).await.unwrap();
    assert!(links::revoke(&mut tx, minted.id, now).await.unwrap());
    tx.commit().await.unwrap();
    let mut tx = db.app.begin(&contractor).await.unwrap();
    assert!(
        links::find_session(&mut tx, &session_hash, now)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_portal_session_is_started_by_a_code_and_ends_when_idle_or_the_account_is_deactivated() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let now = OffsetDateTime::now_utc();
    let key = CodeKey::generate();
    let ctx = TenantContext {
        org: org.id,
        actor: Actor::system(),
        channel: Channel::ResidencePort,
        request_id: None,
    };
    let smith = EmailAddress::parse("smith@example.com").unwrap();
    let mut tx = db.app.begin(&ctx).await.unwrap();
    portal::create_account(&mut tx, Portal::ResidencePort, &smith, "Mr Smith")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let code = request_code(&db, &ctx, &key, &smith, &org.name, now).await;
    let mut tx = db.app.begin(&ctx).await.unwrap();
    let CodeOutcome::Accepted { account_id } =
        portal::verify_sign_in_code(&mut tx, &key, Portal::ResidencePort, &smith, &code, now)
            .await
            .unwrap()
    else {
        panic!("the code was refused");
    };
    let (_, hash) = proplink_auth::links::new_token();
    portal::start_session(&mut tx, account_id, &hash, now)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = db.app.begin(&ctx).await.unwrap();
    let who = portal::find_session(&mut tx, Portal::ResidencePort, &hash, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(who.id, account_id);
    // The session is for its own portal only.
    assert!(
        portal::find_session(&mut tx, Portal::BuildingThread, &hash, now)
            .await
            .unwrap()
            .is_none()
    );
    // An hour without a request ends it.
    assert!(
        portal::find_session(
            &mut tx,
            Portal::ResidencePort,
            &hash,
            now + Duration::minutes(61)
        )
        .await
        .unwrap()
        .is_none()
    );
    // Deactivating the account ends it at once.
    sqlx::query("update portal_account set status = 'deactivated' where id = $1")
        .bind(account_id)
        .execute(tx.conn())
        .await
        .unwrap();
    assert!(
        portal::find_session(&mut tx, Portal::ResidencePort, &hash, now)
            .await
            .unwrap()
            .is_none()
    );
}
