//! The audit log: events for every write, append-only for the server, hash-chained per
//! organisation without forks, and verifiable.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails by panicking, helpers included"
)]

use proplink_db::audit;
use proplink_db::email;
use proplink_test_support::{TestDb, sample_email};
use sqlx::Connection;

#[tokio::test]
async fn every_write_is_recorded_with_actor_channel_and_changes_and_reads_as_sentences() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let ctx = db.staff(&org, "Jane Doe");
    let mut tx = db.app.begin(&ctx).await.unwrap();
    let id = email::queue(&mut tx, sample_email("patel@example.com"))
        .await
        .unwrap();
    email::mark_sent(&mut tx, id, "outbox", None).await.unwrap();
    let history = audit::history(&mut tx, "email_message", &id.to_string())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    assert_eq!(history.len(), 2);
    let (update, insert) = (&history[0], &history[1]);
    assert_eq!(insert.operation, "insert");
    assert_eq!(insert.actor_kind, "staff");
    assert_eq!(insert.actor_name.as_deref(), Some("Jane Doe"));
    assert_eq!(insert.actor_id, ctx.actor.id);
    assert_eq!(insert.channel, "admin");
    assert_eq!(insert.request_id, ctx.request_id);
    assert_eq!(insert.changes["to_address"]["new"], "patel@example.com");
    // Secrets in bodies never reach the audit log.
    assert_eq!(insert.changes["body_text"]["new"], "[redacted]");
    assert_eq!(
        update.changes["status"],
        serde_json::json!({"old": "queued", "new": "sent"})
    );

    let today = proplink_domain::dates::uk_long_date(time::OffsetDateTime::now_utc());
    assert_eq!(
        insert.sentence(),
        format!("Created by Jane Doe via admin on {today}")
    );
    assert_eq!(
        update.sentence(),
        format!("Provider, sent at and status changed by Jane Doe via admin on {today}")
    );
}

#[tokio::test]
async fn a_single_field_change_reads_from_old_to_new() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let mut tx = db.app.begin(&db.staff(&org, "Jane Doe")).await.unwrap();
    let id = email::queue(&mut tx, sample_email("patel@example.com"))
        .await
        .unwrap();
    email::mark_failed(&mut tx, id, "mailbox full")
        .await
        .unwrap();
    let history = audit::history(&mut tx, "email_message", &id.to_string())
        .await
        .unwrap();
    let sentence = history[0].sentence();
    assert!(
        sentence.starts_with("Status and status detail changed by Jane Doe via admin on "),
        "{sentence}"
    );
}

#[tokio::test]
async fn the_server_role_cannot_change_or_remove_audit_events() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let mut tx = db.app.begin(&db.staff(&org, "Jane Doe")).await.unwrap();
    email::queue(&mut tx, sample_email("patel@example.com"))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    for sql in [
        "update audit_event set actor_name = 'Someone else'",
        "delete from audit_event",
        "truncate audit_event",
        "insert into audit_event (organisation_id, seq, table_name, record_id, operation, changes, actor_kind, channel, occurred_at, prev_hash, hash) select organisation_id, seq + 100, table_name, record_id, operation, changes, actor_kind, channel, occurred_at, prev_hash, hash from audit_event",
    ] {
        let mut tx = db.app.begin(&db.staff(&org, "Mallory")).await.unwrap();
        let err = sqlx::query(sql).execute(tx.conn()).await.unwrap_err();
        let code = err
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.into_owned());
        assert_eq!(
            code.as_deref(),
            Some("42501"),
            "{sql} was not refused: {err}"
        );
    }
    let report = audit::verify_chain(&db.platform, org.id).await.unwrap();
    assert_eq!(report.broken, None);
    assert_eq!(
        report.events, 3,
        "the organisation's creation, the message and its send job"
    );
}

#[tokio::test]
async fn verify_passes_an_untouched_chain_and_names_the_first_altered_event() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let other = db.org("acme", "Acme Property Group").await;
    for o in [&org, &other] {
        let mut tx = db.app.begin(&db.staff(o, "Jane Doe")).await.unwrap();
        for i in 0..3 {
            email::queue(&mut tx, sample_email(&format!("p{i}@example.com")))
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let report = audit::verify_chain(&db.platform, org.id).await.unwrap();
    assert_eq!((report.events, report.broken), (7, None));

    // Someone with the owner's rights edits event #3 behind the application's back.
    let mut owner = db.owner_in(&org).await;
    let changed = sqlx::query("update audit_event set actor_name = 'Someone else' where seq = 3")
        .execute(&mut *owner)
        .await
        .unwrap();
    assert_eq!(changed.rows_affected(), 1);
    owner.commit().await.unwrap();

    let report = audit::verify_chain(&db.platform, org.id).await.unwrap();
    let broken = report.broken.expect("tampering detected");
    assert_eq!(broken.seq, 3);
    assert!(
        broken.reason.contains("was altered after it was written"),
        "{}",
        broken.reason
    );
    // The other organisation's chain is untouched.
    assert_eq!(
        audit::verify_chain(&db.platform, other.id)
            .await
            .unwrap()
            .broken,
        None
    );
}

#[tokio::test]
async fn verify_detects_a_deleted_event_and_a_truncated_tail() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let mut tx = db.app.begin(&db.staff(&org, "Jane Doe")).await.unwrap();
    for i in 0..3 {
        email::queue(&mut tx, sample_email(&format!("p{i}@example.com")))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let mut su = db.superuser().await;
    sqlx::query("delete from audit_event where seq = 7")
        .execute(&mut su)
        .await
        .unwrap();
    let broken = audit::verify_chain(&db.platform, org.id)
        .await
        .unwrap()
        .broken
        .unwrap();
    assert_eq!(broken.seq, 7);
    assert!(broken.reason.contains("removed"), "{}", broken.reason);

    sqlx::query("delete from audit_event where seq = 2")
        .execute(&mut su)
        .await
        .unwrap();
    let broken = audit::verify_chain(&db.platform, org.id)
        .await
        .unwrap()
        .broken
        .unwrap();
    assert_eq!(broken.seq, 2);
    assert!(broken.reason.contains("missing"), "{}", broken.reason);
    su.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_extend_one_chain_without_forks() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let writers = 8;
    let per_writer = 10;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let app = db.app.clone();
        let ctx = db.staff(&org, &format!("Writer {w}"));
        tasks.push(tokio::spawn(async move {
            for i in 0..per_writer {
                let mut tx = app.begin(&ctx).await.unwrap();
                email::queue(&mut tx, sample_email(&format!("w{w}-{i}@example.com")))
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let report = audit::verify_chain(&db.platform, org.id).await.unwrap();
    assert_eq!(report.broken, None);
    // Two events per message (the message and its send job), one chain, no gaps, no forks.
    assert_eq!(report.events, (writers * per_writer * 2 + 1) as u64);
    let mut su = db.superuser().await;
    let forks: i64 = sqlx::query_scalar(
        "select count(*) from (select prev_hash from audit_event where organisation_id = $1 group by prev_hash having count(*) > 1) f",
    )
    .bind(org.id.0)
    .fetch_one(&mut su)
    .await
    .unwrap();
    assert_eq!(forks, 0);
}

#[tokio::test]
async fn a_long_transaction_extends_the_chain_and_seals_the_head_once_at_commit() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let mut tx = db.app.begin(&db.staff(&org, "Importer")).await.unwrap();
    for i in 0..500 {
        email::queue(&mut tx, sample_email(&format!("row{i}@example.com")))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let report = audit::verify_chain(&db.platform, org.id).await.unwrap();
    assert_eq!((report.events, report.broken), (1001, None));
    let mut su = db.superuser().await;
    let head: i64 = sqlx::query_scalar("select audit_seq from organisation where id = $1")
        .bind(org.id.0)
        .fetch_one(&mut su)
        .await
        .unwrap();
    assert_eq!(head, 1001);
}

#[tokio::test]
async fn savepoints_and_rollbacks_leave_no_gap_in_the_chain() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let ctx = db.staff(&org, "Jane Doe");

    // A whole transaction rolled back: nothing recorded, the head untouched.
    let mut tx = db.app.begin(&ctx).await.unwrap();
    email::queue(&mut tx, sample_email("gone@example.com"))
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    // A savepoint rolled back in the middle of a transaction.
    let mut tx = db.app.begin(&ctx).await.unwrap();
    email::queue(&mut tx, sample_email("kept1@example.com"))
        .await
        .unwrap();
    sqlx::query("savepoint s").execute(tx.conn()).await.unwrap();
    email::queue(&mut tx, sample_email("undone@example.com"))
        .await
        .unwrap();
    sqlx::query("rollback to savepoint s")
        .execute(tx.conn())
        .await
        .unwrap();
    email::queue(&mut tx, sample_email("kept2@example.com"))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = db.app.begin(&ctx).await.unwrap();
    email::queue(&mut tx, sample_email("later@example.com"))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let report = audit::verify_chain(&db.platform, org.id).await.unwrap();
    assert_eq!((report.events, report.broken), (7, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_on_a_live_system_sees_one_consistent_snapshot() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let app = db.app.clone();
    let ctx = db.staff(&org, "Writer");
    let writer = tokio::spawn(async move {
        for i in 0..60 {
            let mut tx = app.begin(&ctx).await.unwrap();
            email::queue(&mut tx, sample_email(&format!("live{i}@example.com")))
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
    });
    let mut checks = 0;
    while !writer.is_finished() {
        let report = audit::verify_chain(&db.platform, org.id).await.unwrap();
        assert_eq!(report.broken, None, "after {} events", report.events);
        checks += 1;
    }
    writer.await.unwrap();
    assert!(checks > 0);
    assert_eq!(
        audit::verify_chain(&db.platform, org.id)
            .await
            .unwrap()
            .events,
        121
    );
}

#[tokio::test]
async fn operators_changes_to_an_organisation_are_in_its_own_chain_even_once_it_is_closed() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    for status in [
        proplink_db::organisation::OrgStatus::ReadOnly,
        proplink_db::organisation::OrgStatus::Closed,
        proplink_db::organisation::OrgStatus::Active,
    ] {
        assert!(
            proplink_db::organisation::set_status(&db.platform, org.id, status)
                .await
                .unwrap()
        );
    }
    let mut tx = db.app.begin(&db.staff(&org, "Jane Doe")).await.unwrap();
    let events = audit::recent(&mut tx, 10).await.unwrap();
    let kinds: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e.changes["kind"]["new"], e.changes["detail"]["new"]["to"]
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            r#""status_changed" "active""#,
            r#""status_changed" "closed""#,
            r#""status_changed" "read_only""#,
            r#""created" null"#,
        ]
    );
    assert!(
        events
            .iter()
            .all(|e| e.actor_kind == "platform" && e.channel == "platform")
    );
    let today = proplink_domain::dates::uk_long_date(time::OffsetDateTime::now_utc());
    assert_eq!(
        events[3].sentence(),
        format!("Created by PropLink support via PropLink's operator tools on {today}")
    );
    drop(tx);
    assert_eq!(
        audit::verify_chain(&db.platform, org.id)
            .await
            .unwrap()
            .broken,
        None
    );
}

#[tokio::test]
async fn the_dashboards_one_statement_read_matches_the_plain_reads() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let mut tx = db.app.begin(&db.staff(&org, "Jane O'Brien")).await.unwrap();
    let estate = proplink_db::access::create_estate(&mut tx, "RIV", "Riverside")
        .await
        .unwrap();
    for (reference, name) in [("B2", "Beech Court"), ("a1", "Alder House \"East\"")] {
        proplink_db::access::create_site(&mut tx, Some(estate), reference, name)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();

    let mut tx = db.app.begin(&db.staff(&org, "Jane Doe")).await.unwrap();
    let facts = proplink_db::access::dashboard_facts(&mut tx, 8)
        .await
        .unwrap();
    let sites = proplink_db::access::sites(&mut tx).await.unwrap();
    let recent = audit::recent(&mut tx, 8).await.unwrap();
    let none = proplink_db::access::dashboard_facts(&mut tx, 0)
        .await
        .unwrap();
    tx.end_reading();

    assert_eq!(facts.counts.estates, 1);
    let names = |v: &[proplink_db::access::Place]| {
        v.iter()
            .map(|p| (p.id, p.reference.clone(), p.name.clone(), p.estate_id))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&facts.sites), names(&sites));
    assert_eq!(facts.sites[0].name, "Alder House \"East\"");
    assert!(!recent.is_empty());
    let plain = |v: &[audit::AuditEvent]| {
        v.iter()
            .map(|e| {
                (
                    e.seq,
                    e.table_name.clone(),
                    e.changes.clone(),
                    e.actor_name.clone(),
                    e.occurred_at,
                    e.sentence(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(plain(&facts.recent), plain(&recent), "to the microsecond");
    assert!(none.recent.is_empty());
}

/// One statement that writes many rows gives one event per row, in row order, each with its own
/// changes; an update pairs each row's old and new values and skips rows it did not change; a
/// statement over two organisations (an operator's hand edit) extends each one's own chain.
#[tokio::test]
async fn a_statement_over_many_rows_records_each_row_in_order() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let other = db.org("acme", "Acme Property").await;
    let ctx = db.staff(&org, "Jane Doe");
    let mut tx = db.app.begin(&ctx).await.unwrap();
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar(
        "insert into estate (organisation_id, id, reference, name)
         select proplink.current_org(), gen_random_uuid(), 'E' || g, 'Estate ' || g
           from generate_series(1, 3) g
         returning id",
    )
    .fetch_all(tx.conn())
    .await
    .unwrap();
    // Renames two estates and leaves the third as it was (its update changes nothing).
    sqlx::query(
        "update estate set name = case when reference = 'E3' then name else name || ' North' end",
    )
    .execute(tx.conn())
    .await
    .unwrap();
    // A primary key that changes cannot pair old with new by key; the rows still pair.
    let moved = uuid::Uuid::now_v7();
    sqlx::query("update estate set id = $1 where id = $2")
        .bind(moved)
        .bind(ids[0])
        .execute(tx.conn())
        .await
        .unwrap();
    sqlx::query("delete from estate where reference in ('E2', 'E3')")
        .execute(tx.conn())
        .await
        .unwrap();
    let events: Vec<(String, String, serde_json::Value)> = sqlx::query_as(
        "select operation, record_id, changes from audit_event
          where table_name = 'estate' order by seq",
    )
    .fetch_all(tx.conn())
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let ops: Vec<&str> = events.iter().map(|(op, _, _)| op.as_str()).collect();
    assert_eq!(
        ops,
        [
            "insert", "insert", "insert", "update", "update", "update", "delete", "delete"
        ]
    );
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(events[i].1, id.to_string());
        assert_eq!(
            events[i].2["name"]["new"],
            format!("Estate {}", i + 1),
            "insert {i}"
        );
    }
    assert_eq!(
        events[3].2["name"],
        serde_json::json!({"old": "Estate 1", "new": "Estate 1 North"})
    );
    assert_eq!(events[4].1, ids[1].to_string());
    assert_eq!(
        events[5].2["id"],
        serde_json::json!({"old": ids[0], "new": moved})
    );
    assert_eq!(events[5].1, moved.to_string());
    assert_eq!(events[6].2["name"]["old"], "Estate 2 North");
    assert_eq!(events[7].2["name"]["old"], "Estate 3");

    // An operator renames the estates of both organisations in one statement.
    let mut tx = db.app.begin(&db.staff(&other, "Sam Lee")).await.unwrap();
    sqlx::query(
        "insert into estate (organisation_id, id, reference, name)
         values (proplink.current_org(), gen_random_uuid(), 'A1', 'Acme Estate')",
    )
    .execute(tx.conn())
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut before = Vec::new();
    for o in [&org, &other] {
        before.push(
            audit::verify_chain(&db.platform, o.id)
                .await
                .unwrap()
                .events,
        );
    }
    let mut su = db.superuser().await;
    let renamed = sqlx::query("update estate set name = name || ' (renamed)'")
        .execute(&mut su)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(renamed, 2);
    for (o, before) in [&org, &other].into_iter().zip(before) {
        let report = audit::verify_chain(&db.platform, o.id).await.unwrap();
        assert_eq!(report.broken, None);
        assert_eq!(report.events, before + 1, "{}", o.name);
    }
}

/// A contact's derived lookup keys are not business events: the audit records the reference
/// and the e-mail address, never `reference_key` or `email_key`.
#[tokio::test]
async fn derived_lookup_keys_stay_out_of_the_audit() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let mut tx = db.app.begin(&db.staff(&org, "Jane Doe")).await.unwrap();
    let input = proplink_db::people::ContactInput {
        kind: "person".into(),
        last_name: Some("Patel".into()),
        reference: Some("GC-C-001".into()),
        correspondence: "email".into(),
        emails: vec!["Priya.Patel@Example.com".into()],
        ..Default::default()
    };
    let id = proplink_db::people::save_contact(&mut tx, None, &input)
        .await
        .unwrap();
    let changes: Vec<(String, serde_json::Value)> = sqlx::query_as(
        "select table_name, changes from audit_event
          where table_name in ('contact', 'contact_email') order by seq",
    )
    .fetch_all(tx.conn())
    .await
    .unwrap();
    let key: Option<String> = sqlx::query_scalar("select reference_key from contact where id = $1")
        .bind(id)
        .fetch_one(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(key.as_deref(), Some("gc-c-001"));
    let contact = &changes.iter().find(|(t, _)| t == "contact").unwrap().1;
    assert_eq!(contact["reference"]["new"], "GC-C-001");
    assert!(contact.get("reference_key").is_none(), "{contact}");
    let email = &changes
        .iter()
        .find(|(t, _)| t == "contact_email")
        .unwrap()
        .1;
    assert_eq!(email["email"]["new"], "Priya.Patel@Example.com");
    assert!(email.get("email_key").is_none(), "{email}");
}

/// The function that appends events is the triggers' alone: the server roles cannot call it to
/// write events of their own into any organisation's chain.
#[tokio::test]
async fn the_server_roles_cannot_append_audit_events_directly() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let forged = format!(r#"{{"organisation_id": "{}", "id": "x"}}"#, org.id.0);
    for role in [
        proplink_db::pools::APP_ROLE,
        proplink_db::pools::PLATFORM_ROLE,
    ] {
        let mut conn = sqlx::PgConnection::connect(&db.url(role)).await.unwrap();
        let err = sqlx::query(
            "select proplink.audit_append('contact', 'delete', array[$1::jsonb], array[null::jsonb], null)",
        )
        .bind(&forged)
        .execute(&mut conn)
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("permission denied"),
            "{role}: {err}"
        );
    }
    let report = audit::verify_chain(&db.platform, org.id).await.unwrap();
    assert_eq!(report.broken, None);
}
