//! CSV imports against a real PostgreSQL: all or nothing, line-numbered reference errors,
//! re-imports that change nothing, and large files committed by the worker with progress.

#![allow(clippy::unwrap_used, reason = "tests")]

use proplink_db::import::{self, ApplyError, Outcome};
use proplink_db::jobs::{Worker, WorkerConfig};
use proplink_db::people;
use proplink_db::portfolio::{self, SiteScope, UnitQuery};
use proplink_domain::import::ImportKind;
use proplink_test_support::TestDb;
use std::sync::Arc;

const SITES: &str = "reference,name,address_line_1,city,postcode,landlord_name,landlord_address_line_1,landlord_postcode\n\
GC-001,Riverside Court,1 Riverside Walk,Leeds,ls1 4br,Goldcrest Freehold Ltd,1 Park Row,LS1 5HN\n\
GC-002,Wharf House,3 Riverside Walk,Leeds,LS1 4BR,,,\n";

const BUILDINGS: &str = "site_reference,reference,name,height_metres,storeys,residential_units\n\
GC-001,A,Block A,19.5,7,24\n\
GC-002,A,Block A,9,3,6\n";

const UNITS: &str = "site_reference,reference,name,building_reference,floor,type,square_metres\n\
GC-001,1,Flat 1,A,Ground,flat,52.5\n\
GC-001,2,Flat 2,A,1,flat,61\n\
GC-002,SHOP1,Shop 1,A,Ground,commercial,80\n";

const CONTACTS: &str = "reference,first_name,last_name,emails,phones,roles\n\
C-1,Jane,Smith,jane@example.com,07700900001,leaseholder\n\
C-2,Ravi,Shah,ravi@example.com,,leaseholder\n";

const LEASES: &str = "site_reference,unit_reference,holders,start_date,end_date,term_years,ground_rent\n\
GC-001,1,C-1|ravi@example.com,01/06/2010,14/03/2024,125,250\n\
GC-001,1,C-2,15/03/2024,,125,250\n";

async fn import(
    tx: &mut proplink_db::TenantTx,
    kind: ImportKind,
    text: &str,
) -> Result<Outcome, ApplyError> {
    let parsed = kind.parse_file(text.as_bytes()).unwrap();
    assert!(parsed.errors().is_empty(), "{:?}", parsed.errors());
    import::apply(tx, &parsed, &mut |_| {}).await
}

#[tokio::test]
async fn a_portfolio_imports_in_order_and_a_second_import_changes_nothing() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let ctx = db.staff(&org, "Priya Patel");
    for round in 0..2 {
        let mut tx = db.app.begin(&ctx).await.unwrap();
        let files = [
            (ImportKind::Sites, SITES, 2),
            (ImportKind::Buildings, BUILDINGS, 2),
            (ImportKind::Units, UNITS, 3),
            (ImportKind::Contacts, CONTACTS, 2),
            (ImportKind::Leases, LEASES, 2),
        ];
        for (kind, text, rows) in files {
            let outcome = import(&mut tx, kind, text).await.unwrap();
            let expected = if round == 0 {
                Outcome {
                    created: rows,
                    ..Outcome::default()
                }
            } else {
                Outcome {
                    unchanged: rows,
                    ..Outcome::default()
                }
            };
            assert_eq!(outcome, expected, "round {round}, {kind:?}");
        }
        tx.commit().await.unwrap();
    }
    let mut tx = db.app.begin(&ctx).await.unwrap();
    let units = portfolio::list_units(
        &mut tx,
        &SiteScope::everything(),
        &UnitQuery {
            per_page: 50,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(units.total, 3);
    let flat1 = units.rows.iter().find(|u| u.name == "Flat 1").unwrap();
    assert_eq!(flat1.holders.as_deref(), Some("Ravi Shah"));
    assert_eq!(flat1.area_label().as_deref(), Some("52.50 m²"));
    assert_eq!(flat1.floor_name.as_deref(), Some("Ground"));
    let history = people::unit_leases(&mut tx, flat1.id).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].holders_label(), "Jane Smith & Ravi Shah");
    assert_eq!(
        history[1].ends_on,
        Some(time::macros::date!(2024 - 03 - 15))
    );
    let sites = portfolio::list_sites(
        &mut tx,
        &SiteScope::everything(),
        Default::default(),
        None,
        "",
    )
    .await
    .unwrap();
    assert_eq!(sites[0].postcode.as_deref(), Some("LS1 4BR"));
    assert_eq!(
        sites[0].landlord_name.as_deref(),
        Some("Goldcrest Freehold Ltd")
    );
    assert_eq!(sites[0].hrb_count, 1);
    // An edited row updates one unit and leaves the rest.
    let edited = UNITS.replace("Flat 2,A,1,flat,61", "Flat 2,A,1,flat,64");
    let outcome = import(&mut tx, ImportKind::Units, &edited).await.unwrap();
    assert_eq!(
        outcome,
        Outcome {
            created: 0,
            updated: 1,
            unchanged: 2
        }
    );
}

#[tokio::test]
async fn references_to_missing_records_are_reported_by_line_and_nothing_is_written() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let ctx = db.staff(&org, "Priya Patel");
    let mut tx = db.app.begin(&ctx).await.unwrap();
    import(&mut tx, ImportKind::Sites, SITES).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = db.app.begin(&ctx).await.unwrap();
    let units = "site_reference,reference,name,building_reference\n\
GC-001,1,Flat 1,\n\
GC-099,1,Flat 1,\n\
GC-001,2,Flat 2,Z\n";
    let Err(ApplyError::Lines(lines)) = import(&mut tx, ImportKind::Units, units).await else {
        panic!("missing references were accepted");
    };
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (lines[0].line, lines[0].column),
        (3, Some("site_reference"))
    );
    assert!(lines[0].message.contains("GC-099"));
    assert_eq!(
        (lines[1].line, lines[1].column),
        (4, Some("building_reference"))
    );
    tx.rollback().await.unwrap();

    // A lease overlapping one already stored is refused with its line.
    let mut tx = db.app.begin(&ctx).await.unwrap();
    import(&mut tx, ImportKind::Buildings, BUILDINGS)
        .await
        .unwrap();
    import(&mut tx, ImportKind::Units, UNITS).await.unwrap();
    import(&mut tx, ImportKind::Contacts, CONTACTS)
        .await
        .unwrap();
    import(&mut tx, ImportKind::Leases, LEASES).await.unwrap();
    let clash = "site_reference,unit_reference,holders,start_date\nGC-001,1,C-1,01/01/2020\n";
    let Err(ApplyError::Lines(lines)) = import(&mut tx, ImportKind::Leases, clash).await else {
        panic!("an overlapping lease was accepted");
    };
    assert_eq!(lines[0].line, 2);
    assert!(lines[0].message.contains("overlap"), "{}", lines[0].message);
}

#[tokio::test]
async fn a_large_import_is_committed_by_the_worker_with_progress_and_a_bad_one_leaves_nothing() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let ctx = db.staff(&org, "Priya Patel");
    let mut tx = db.app.begin(&ctx).await.unwrap();
    import(&mut tx, ImportKind::Sites, SITES).await.unwrap();
    tx.commit().await.unwrap();

    let mut big = String::from("site_reference,reference,name\n");
    for i in 0..12_000 {
        big.push_str(&format!("GC-00{},{i},Flat {i}\n", 1 + i % 2));
    }
    let mut bad = big.clone();
    bad.push_str("GC-404,1,Flat 1\n");
    let mut runs = Vec::new();
    for text in [&big, &bad] {
        let mut tx = db.app.begin(&ctx).await.unwrap();
        let parsed = ImportKind::Units.parse_file(text.as_bytes()).unwrap();
        let run = import::record_run(
            &mut tx,
            ImportKind::Units,
            "units.csv",
            text.as_bytes(),
            parsed.row_count(),
            "Priya Patel",
        )
        .await
        .unwrap();
        let confirmed = import::confirm(&mut tx, run).await.unwrap();
        assert_eq!(confirmed.status, "queued");
        assert!(matches!(
            import::confirm(&mut tx, run).await,
            Err(import::RunError::NotPending)
        ));
        tx.commit().await.unwrap();
        runs.push(run);
    }

    let mut worker = Worker::new(db.app.clone(), db.platform.clone(), WorkerConfig::default());
    worker.register(
        import::COMMIT_JOB,
        Arc::new(import::CommitImportJob {
            pool: db.app.clone(),
        }),
    );
    while worker.run_once().await.unwrap().is_some() {}

    let mut tx = db.app.begin(&ctx).await.unwrap();
    let good = import::run(&mut tx, runs[0]).await.unwrap().unwrap();
    assert_eq!(good.status, "committed", "{:?}", good.error);
    assert_eq!((good.created_count, good.processed_rows), (12_000, 12_000));
    let failed = import::run(&mut tx, runs[1]).await.unwrap().unwrap();
    assert_eq!(failed.status, "failed");
    let error = failed.error.unwrap();
    assert!(error.contains("Line 12002, site_reference"), "{error}");
    let units = portfolio::list_units(
        &mut tx,
        &SiteScope::everything(),
        &UnitQuery {
            per_page: 1,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(units.total, 12_000, "the failed file left nothing behind");
}

/// Uploads and confirms `text` as one run (committed in the request, as small files are).
async fn committed_run(
    db: &TestDb,
    ctx: &proplink_db::TenantContext,
    kind: ImportKind,
    text: &str,
) -> uuid::Uuid {
    let mut tx = db.app.begin(ctx).await.unwrap();
    let rows = text.lines().count() - 1;
    let id = import::record_run(&mut tx, kind, "file.csv", text.as_bytes(), rows, "Priya")
        .await
        .unwrap();
    let run = import::confirm(&mut tx, id).await.unwrap();
    assert_eq!(run.status, "committed", "{:?}", run.error);
    tx.commit().await.unwrap();
    id
}

/// Reverting an import undoes exactly what it did, from its audit events: a contact it created
/// is gone, one it changed has its old name and e-mail back, the chain still verifies, and the
/// revert is refused (changing nothing) when a record has changed since, when a later record
/// points at one it created, or when it was already reverted.
#[tokio::test]
async fn an_import_is_reverted_from_its_own_audit_events_unless_its_records_moved_on() {
    use import::RevertError;
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let ctx = db.staff(&org, "Priya Patel");
    committed_run(&db, &ctx, ImportKind::Sites, SITES).await;
    committed_run(&db, &ctx, ImportKind::Buildings, BUILDINGS).await;
    let units_run = committed_run(&db, &ctx, ImportKind::Units, UNITS).await;
    committed_run(&db, &ctx, ImportKind::Contacts, CONTACTS).await;
    // A second contacts file renames C-1, replaces her e-mail and adds C-3.
    let changes = "reference,first_name,last_name,emails,phones,roles\n\
C-1,Janet,Smythe,janet@example.com,07700900001,leaseholder\n\
C-3,Omar,Farah,omar@example.com,,tenant\n";
    let second = committed_run(&db, &ctx, ImportKind::Contacts, changes).await;

    let mut tx = db.app.begin(&ctx).await.unwrap();
    async fn snapshot(tx: &mut proplink_db::TenantTx) -> Vec<(String, String)> {
        sqlx::query_as(
            "select c.reference, c.display_name || ' ' || coalesce(string_agg(e.email, ';' order by e.email), '')
               from contact c left join contact_email e on e.contact_id = c.id
              group by c.reference, c.display_name order by 1",
        )
        .fetch_all(tx.conn())
        .await
        .unwrap()
    }
    let after = snapshot(&mut tx).await;
    assert_eq!(after.len(), 3, "{after:?}");
    let reverted = import::revert(&mut tx, second).await.unwrap();
    assert!(
        reverted.removed >= 2 && reverted.restored >= 1,
        "{reverted:?}"
    );
    let back = snapshot(&mut tx).await;
    assert_eq!(
        back,
        vec![
            ("C-1".to_owned(), "Jane Smith jane@example.com".to_owned()),
            ("C-2".to_owned(), "Ravi Shah ravi@example.com".to_owned()),
        ]
    );
    let status: String = sqlx::query_scalar("select status from import_run where id = $1")
        .bind(second)
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(status, "reverted");
    assert!(matches!(
        import::revert(&mut tx, second).await,
        Err(RevertError::NotCommitted(s)) if s == "reverted"
    ));
    tx.commit().await.unwrap();
    let report = proplink_db::audit::verify_chain(&db.platform, org.id)
        .await
        .unwrap();
    assert!(report.broken.is_none(), "{:?}", report.broken);

    // A unit the units import created now has a lease: reverting would delete it with the unit.
    let mut tx = db.app.begin(&ctx).await.unwrap();
    let flat: uuid::Uuid = sqlx::query_scalar("select id from unit where reference = '2'")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    let jane: uuid::Uuid = sqlx::query_scalar("select id from contact where reference = 'C-1'")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    people::add_lease(
        &mut tx,
        flat,
        &people::LeaseInput {
            starts_on: Some(time::macros::date!(2021 - 01 - 01)),
            holders: vec![jane],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut tx = db.app.begin(&ctx).await.unwrap();
    assert!(matches!(
        import::revert(&mut tx, units_run).await,
        Err(RevertError::InUse(_))
    ));
    drop(tx);
    // And once a unit it wrote is edited by hand, the revert is refused before anything else.
    let mut tx = db.app.begin(&ctx).await.unwrap();
    sqlx::query("update unit set name = 'Flat One' where reference = '1'")
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = db.app.begin(&ctx).await.unwrap();
    assert!(matches!(
        import::revert(&mut tx, units_run).await,
        Err(RevertError::ChangedSince(records)) if records.starts_with("unit ")
    ));
    let units: i64 = sqlx::query_scalar("select count(*) from unit")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(units, 3);
}
