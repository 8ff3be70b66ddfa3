//! The cross-tenant probe: two organisations with look-alike data, and proof that neither can
//! read or write the other's rows in any tenant table.
//!
//! [`seed`] must put at least one row in every tenant table; [`assert_isolated`] fails naming
//! any table it did not reach, so each issue that adds a table extends [`seed`] here.

#![expect(clippy::unwrap_used, reason = "test harness")]

use crate::TestDb;
use proplink_auth::codes::CodeKey;
use proplink_db::email::{self, NewEmail, ProviderEvent};
use proplink_db::links::{self, NewLink};
use proplink_db::organisation::Organisation;
use proplink_db::portal::{self, Portal};
use proplink_db::setup::quote_ident;
use proplink_db::{TenantTx, lint};
use proplink_domain::EmailAddress;
use sqlx::{AssertSqlSafe, Row};
use uuid::Uuid;

/// Look-alike rows for `org` in every tenant table. The same person, "Mr Smith", exists in both.
pub async fn seed(db: &TestDb, org: &Organisation) {
    let ctx = db.staff(org, "Jane Doe");
    let mut tx = db.app.begin(&ctx).await.unwrap();
    let message = email::queue(
        &mut tx,
        NewEmail {
            to_address: "smith@example.com".into(),
            to_name: Some("Mr Smith".into()),
            subject: "Your service charge demand".into(),
            body_text: "Dear Mr Smith".into(),
            body_html: None,
            category: "demand".into(),
        },
    )
    .await
    .unwrap();
    email::record_event(
        &mut tx,
        &ProviderEvent {
            provider: "sendgrid".into(),
            provider_event_id: format!("evt-{}", Uuid::new_v4()),
            message_id: message,
            status: "delivered".into(),
            detail: None,
            occurred_at: time_now(),
        },
    )
    .await
    .unwrap();
    // A contractor's link, and a resident with a sign-in code waiting.
    let now = time_now();
    links::mint(
        &mut tx,
        NewLink {
            record_type: "work_order".into(),
            record_id: Uuid::now_v7(),
            recipient_email: EmailAddress::parse("plumber@example.com").unwrap(),
            recipient_name: Some("Bright Spark Plumbing".into()),
            expires_at: now + time::Duration::days(14),
        },
        now,
    )
    .await
    .unwrap();
    let smith = EmailAddress::parse("smith@example.com").unwrap();
    portal::create_account(&mut tx, Portal::ResidencePort, &smith, "Mr Smith")
        .await
        .unwrap();
    assert!(
        portal::request_sign_in_code(
            &mut tx,
            &CodeKey::generate(),
            Portal::ResidencePort,
            &smith,
            &org.name,
            now
        )
        .await
        .unwrap()
    );
    tx.commit().await.unwrap();
}

fn time_now() -> sqlx::types::time::OffsetDateTime {
    sqlx::types::time::OffsetDateTime::now_utc()
}

async fn count(tx: &mut TenantTx, table: &str, filter: &str) -> i64 {
    let sql = format!("select count(*) from {} {filter}", quote_ident(table));
    sqlx::query_scalar(AssertSqlSafe(sql))
        .fetch_one(tx.conn())
        .await
        .unwrap()
}

async fn platform_count(db: &TestDb, table: &str, org: &Organisation) -> i64 {
    let mut su = db.superuser().await;
    let sql = format!(
        "select count(*) from {} where organisation_id = $1",
        quote_ident(table)
    );
    sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(org.id.0)
        .fetch_one(&mut su)
        .await
        .unwrap()
}

/// Runs `sql` as `a` in a transaction that is then rolled back. Ok(rows) or Err(SQLSTATE).
async fn attempt(
    db: &TestDb,
    a: &Organisation,
    sql: &str,
    bind: Option<serde_json::Value>,
) -> Result<u64, String> {
    let mut tx = db.app.begin(&db.staff(a, "Prober")).await.unwrap();
    let mut q = sqlx::query(AssertSqlSafe(sql.to_owned()));
    if let Some(v) = bind {
        q = q.bind(v);
    }
    let result = q.execute(tx.conn()).await;
    let _ = tx.rollback().await;
    result.map(|r| r.rows_affected()).map_err(|e| {
        e.as_database_error()
            .and_then(|d| d.code())
            .map(|c| c.into_owned())
            .unwrap_or_else(|| e.to_string())
    })
}

/// Proves, table by table, that `a` can neither see nor change `b`'s rows.
pub async fn assert_isolated(db: &TestDb, a: &Organisation, b: &Organisation) {
    let mut su = db.superuser().await;
    let tables = lint::tenant_tables(&mut su).await.unwrap();
    assert!(!tables.is_empty());
    let with_tenant_fk: Vec<String> = sqlx::query_scalar(
        "select distinct c.conrelid::regclass::text from pg_constraint c
          where c.contype = 'f' and exists (select from pg_attribute a where a.attrelid = c.confrelid and a.attname = 'organisation_id')",
    )
    .fetch_all(&mut su)
    .await
    .unwrap();

    for table in &tables {
        let t = quote_ident(table);
        let b_rows = platform_count(db, table, b).await;
        let a_rows = platform_count(db, table, a).await;
        assert!(
            b_rows > 0 && a_rows > 0,
            "the probe's seed puts no rows in tenant table {table}: extend proplink_test_support::probe::seed"
        );

        // Reads: nothing of B's, and all of A's.
        let mut tx = db.app.begin(&db.staff(a, "Prober")).await.unwrap();
        let b_filter = format!("where organisation_id = '{}'", b.id);
        assert_eq!(
            count(&mut tx, table, &b_filter).await,
            0,
            "{table}: A sees B's rows"
        );
        assert_eq!(
            count(&mut tx, table, "").await,
            a_rows,
            "{table}: A's view is not exactly A's rows"
        );
        tx.rollback().await.unwrap();

        // Updates and deletes aimed at B change nothing (hidden rows, or no privilege at all).
        for sql in [
            format!(
                "update {t} set organisation_id = organisation_id where organisation_id = '{}'",
                b.id
            ),
            format!("delete from {t} where organisation_id = '{}'", b.id),
        ] {
            match attempt(db, a, &sql, None).await {
                Ok(rows) => assert_eq!(rows, 0, "{table}: `{sql}` touched B's rows"),
                Err(code) => assert_eq!(code, "42501", "{table}: `{sql}` failed oddly"),
            }
        }

        // Inserting a copy of B's row, still labelled B, is refused.
        let row: serde_json::Value = sqlx::query(AssertSqlSafe(format!(
            "select to_jsonb(x) as j from {t} x where organisation_id = $1 limit 1"
        )))
        .bind(b.id.0)
        .fetch_one(&mut su)
        .await
        .unwrap()
        .get("j");
        let insert = format!("insert into {t} select * from jsonb_populate_record(null::{t}, $1)");
        let copied = attempt(db, a, &insert, Some(row.clone())).await;
        assert_eq!(
            copied,
            Err("42501".to_owned()),
            "{table}: inserting a row labelled with B was not refused"
        );

        // Relabelled as A but pointing at B's records: the composite foreign keys refuse it.
        if with_tenant_fk.contains(table) {
            let mut relabelled = row.clone();
            relabelled["organisation_id"] = serde_json::json!(a.id.0);
            if relabelled.get("id").is_some() {
                relabelled["id"] = serde_json::json!(Uuid::now_v7());
            }
            let pointed = attempt(db, a, &insert, Some(relabelled)).await;
            assert_eq!(
                pointed,
                Err("23503".to_owned()),
                "{table}: A inserted a row referencing B's records"
            );
        }

        assert_eq!(
            platform_count(db, table, b).await,
            b_rows,
            "{table}: B's rows changed"
        );
    }
}
