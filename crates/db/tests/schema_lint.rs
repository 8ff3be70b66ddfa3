//! The schema rules of DESIGN.md §2, checked against the migrated catalogue.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails by panicking, helpers included"
)]

use proplink_db::lint;
use proplink_test_support::TestDb;

#[tokio::test]
async fn every_tenant_table_follows_the_tenancy_rules() {
    let db = TestDb::new().await;
    let mut su = db.superuser().await;
    let tables = lint::tenant_tables(&mut su).await.unwrap();
    assert!(
        tables.contains(&"email_message".to_owned()),
        "tenant tables found: {tables:?}"
    );
    let problems = lint::check(&mut su).await.unwrap();
    assert!(
        problems.is_empty(),
        "schema lint failed:\n{}",
        problems.join("\n")
    );
}

#[tokio::test]
async fn the_lint_catches_each_kind_of_mistake() {
    let db = TestDb::new().await;
    let mut su = db.superuser().await;
    // A table with none of the protections, and one with a single-column foreign key.
    sqlx::raw_sql(
        "set role proplink_owner;
         create table careless (organisation_id uuid not null, id uuid primary key, note text);
         create table pointer (organisation_id uuid not null, id uuid not null,
                               message_id uuid not null references careless (id),
                               primary key (organisation_id, id));
         alter table pointer enable row level security;
         create table leaky (organisation_id uuid not null, id uuid not null, primary key (organisation_id, id));
         select proplink.make_tenant_table('leaky');
         create policy everyone on leaky using (true);
         alter policy tenant_isolation on leaky with check (true);
         reset role;",
    )
    .execute(&mut su)
    .await
    .unwrap();
    let problems = lint::check(&mut su).await.unwrap().join("\n");
    for expected in [
        "careless: row-level security is not enabled",
        "careless: row-level security is not forced",
        "careless: no tenant_isolation policy",
        "careless: primary key (id) must lead with organisation_id",
        "careless: has no audit trigger",
        "pointer: row-level security is not forced",
        "pointer: foreign key pointer_message_id_fkey to tenant table careless must include organisation_id",
        "leaky: unexpected permissive policy everyone",
        "leaky: tenant_isolation's WITH CHECK does not compare organisation_id",
    ] {
        assert!(
            problems.contains(expected),
            "lint missed {expected:?}; it said:\n{problems}"
        );
    }
}
