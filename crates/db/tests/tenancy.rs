//! Tenancy enforced by the database: isolation between organisations, and read-only
//! organisations refusing every write while still being readable.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails by panicking, helpers included"
)]

use proplink_db::DbError;
use proplink_db::email;
use proplink_db::organisation::{self, OrgStatus};
use proplink_test_support::{TestDb, probe, sample_email};

#[tokio::test]
async fn neither_organisation_can_read_or_write_the_others_rows() {
    let db = TestDb::new().await;
    let goldcrest = db.org("goldcrest", "Goldcrest Estates").await;
    let acme = db.org("acme", "Acme Property Group").await;
    probe::seed(&db, &goldcrest).await;
    probe::seed(&db, &acme).await;
    probe::assert_isolated(&db, &goldcrest, &acme).await;
    probe::assert_isolated(&db, &acme, &goldcrest).await;
}

#[tokio::test]
async fn without_a_tenant_context_the_server_role_sees_no_tenant_rows() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    probe::seed(&db, &org).await;
    let mut conn = sqlx::PgConnection::connect(&db.url("proplink_app"))
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("select count(*) from email_message")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 0);
    let err = sqlx::query("insert into email_message (organisation_id, id, to_address, subject, body_text) values ($1, gen_random_uuid(), 'a@b.co', 's', 'b')")
        .bind(org.id.0)
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert_eq!(
        err.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("42501")
    );
}

use sqlx::Connection;

#[tokio::test]
async fn a_read_only_organisation_refuses_writes_but_still_reads() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let ctx = db.staff(&org, "Jane Doe");
    let mut tx = db.app.begin(&ctx).await.unwrap();
    let id = email::queue(&mut tx, sample_email("one@example.com"))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    assert!(
        organisation::set_status(&db.platform, org.id, OrgStatus::ReadOnly)
            .await
            .unwrap()
    );

    let mut tx = db.app.begin(&ctx).await.unwrap();
    let err = email::queue(&mut tx, sample_email("two@example.com"))
        .await
        .unwrap_err();
    match err {
        DbError::ReadOnly(message) => {
            assert_eq!(
                message,
                "The organisation \"goldcrest\" is read-only: nothing in it can be changed."
            )
        }
        other => panic!("expected ReadOnly, got {other:?}"),
    }
    drop(tx);

    // Updates and deletes are refused too, even by the owner role working directly in SQL.
    let err = sqlx::query("update email_message set subject = 'changed'")
        .execute(&db.owner)
        .await;
    // The owner is subject to FORCE RLS: with no context it sees no rows, so set one.
    assert!(err.map(|r| r.rows_affected()).unwrap_or(0) == 0);
    let mut owner = db.owner_in(&org).await;
    let err = sqlx::query("delete from email_event")
        .execute(&mut *owner)
        .await;
    assert!(err.is_ok(), "no events to delete, so nothing fires");
    let err = sqlx::query("update email_message set subject = 'changed'")
        .execute(&mut *owner)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    drop(owner);

    // Reads still work.
    let mut tx = db.app.begin(&ctx).await.unwrap();
    let message = email::get(&mut tx, id).await.unwrap().unwrap();
    assert_eq!(message.subject, "Your service charge demand");
    assert_eq!(email::recent(&mut tx, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_server_role_cannot_shadow_tables_or_forge_the_chain_to_skip_the_read_only_check() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let ctx = db.staff(&org, "Mallory");
    let mut tx = db.app.begin(&ctx).await.unwrap();
    email::queue(&mut tx, sample_email("one@example.com"))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // Temporary tables could shadow `organisation` or `audit_event` in a function that
    // searched pg_temp first: the server role may not create any.
    let mut tx = db.app.begin(&ctx).await.unwrap();
    let err = sqlx::query("create temp table organisation (id uuid, status text)")
        .execute(tx.conn())
        .await
        .unwrap_err();
    assert_eq!(
        err.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("42501")
    );
    drop(tx);

    // Presenting the real chain head as this transaction's own does not skip the lock and the
    // status check.
    organisation::set_status(&db.platform, org.id, OrgStatus::ReadOnly)
        .await
        .unwrap();
    let mut tx = db.app.begin(&ctx).await.unwrap();
    let (seq, hash): (i64, String) = sqlx::query_as(
        "select seq, hash from audit_event where organisation_id = $1 order by seq desc limit 1",
    )
    .bind(org.id.0)
    .fetch_one(tx.conn())
    .await
    .unwrap();
    let key = format!("proplink.chain_{}", org.id.0.simple());
    sqlx::query("select set_config($1, $2, true)")
        .bind(&key)
        .bind(format!("{seq}:{hash}"))
        .execute(tx.conn())
        .await
        .unwrap();
    let err = email::queue(&mut tx, sample_email("two@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::ReadOnly(_)), "{err:?}");
}
