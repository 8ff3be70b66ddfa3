//! Portfolio and people against a real PostgreSQL: the structural rules the database keeps
//! (higher-risk flag, units in their own site's buildings, no overlapping leases), ownership
//! history, merging, sealed bank details, subject access, and search isolation.

#![allow(clippy::unwrap_used, reason = "tests")]

use proplink_auth::seal::DataKey;
use proplink_db::people::{
    self, BankDetails, ContactInput, LeaseError, LeaseInput, MergeError, VendorInput,
};
use proplink_db::portfolio::{
    self, BuildingInput, SiteInput, SiteScope, UnitError, UnitInput, UnitQuery,
};
use proplink_db::search;
use proplink_db::{DbError, TenantTx};
use proplink_test_support::TestDb;
use time::macros::date;
use uuid::Uuid;

fn person(first: &str, last: &str, email: &str) -> ContactInput {
    ContactInput {
        kind: "person".into(),
        first_name: Some(first.into()),
        last_name: Some(last.into()),
        correspondence: "email".into(),
        emails: vec![email.into()],
        ..ContactInput::default()
    }
}

async fn site(tx: &mut TenantTx, reference: &str, name: &str) -> Uuid {
    portfolio::save_site(
        tx,
        None,
        &SiteInput {
            reference: reference.into(),
            name: name.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

async fn unit(tx: &mut TenantTx, site: Uuid, reference: &str) -> Uuid {
    portfolio::save_unit(
        tx,
        None,
        site,
        &UnitInput {
            reference: reference.into(),
            name: format!("Flat {reference}"),
            unit_type: "flat".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn the_higher_risk_flag_follows_the_legal_test_unless_overridden_with_a_reason() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
    let s = site(&mut tx, "GC-001", "Goldcrest House").await;
    let cases = [
        // (height cm, storeys, residential units, override, expected)
        (Some(1800), Some(6), Some(2), None, true),
        (Some(1799), Some(6), Some(40), None, false),
        (None, Some(7), Some(2), None, true),
        (Some(3000), Some(10), Some(1), None, false),
        (None, None, None, None, false),
        (
            Some(1700),
            Some(6),
            Some(2),
            Some((
                true,
                "Surveyed at 18.2 m from lowest ground level".to_owned(),
            )),
            true,
        ),
    ];
    for (i, (height, storeys, units, hrb_override, expected)) in cases.into_iter().enumerate() {
        let id = portfolio::save_building(
            &mut tx,
            None,
            s,
            &BuildingInput {
                reference: format!("B{i}"),
                name: format!("Block {i}"),
                height_cm: height,
                storeys,
                residential_units: units,
                hrb_override,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let b = portfolio::building(&mut tx, id).await.unwrap().unwrap();
        assert_eq!(b.is_hrb, expected, "case {i}");
    }
    // An override without a reason is refused by the database itself.
    let refused = sqlx::query(
        "insert into building (organisation_id, id, site_id, reference, name, hrb_override)
         values ($1, $2, $3, 'X', 'X', true)",
    )
    .bind(org.id.0)
    .bind(Uuid::now_v7())
    .bind(s)
    .execute(tx.conn())
    .await;
    assert!(refused.is_err());
}

#[tokio::test]
async fn a_unit_cannot_be_put_in_another_sites_building_nor_duplicate_a_reference() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
    let here = site(&mut tx, "GC-001", "Goldcrest House").await;
    let there = site(&mut tx, "GC-002", "Harbour View").await;
    let their_block = portfolio::save_building(
        &mut tx,
        None,
        there,
        &BuildingInput {
            reference: "A".into(),
            name: "Block A".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let moved = portfolio::save_unit(
        &mut tx,
        None,
        here,
        &UnitInput {
            reference: "1".into(),
            name: "Flat 1".into(),
            building_id: Some(their_block),
            unit_type: "flat".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(
        matches!(moved, Err(UnitError::BuildingOnAnotherSite)),
        "{moved:?}"
    );
    let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
    let here = site(&mut tx, "GC-001", "Goldcrest House").await;
    unit(&mut tx, here, "1").await;
    let again = portfolio::save_unit(
        &mut tx,
        None,
        here,
        &UnitInput {
            reference: "1".into(),
            name: "Another flat 1".into(),
            unit_type: "flat".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(
        matches!(&again, Err(UnitError::DuplicateReference(r)) if r == "1"),
        "{again:?}"
    );
}

#[tokio::test]
async fn leases_of_one_unit_never_overlap_and_a_change_of_ownership_keeps_history() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let ctx = db.staff(&org, "Priya Patel");
    let mut tx = db.app.begin(&ctx).await.unwrap();
    let s = site(&mut tx, "GC-001", "Goldcrest House").await;
    let u = unit(&mut tx, s, "1").await;
    let mr = people::save_contact(&mut tx, None, &person("John", "Smith", "john@example.com"))
        .await
        .unwrap();
    let mrs = people::save_contact(&mut tx, None, &person("Mary", "Smith", "mary@example.com"))
        .await
        .unwrap();
    let buyer = people::save_contact(&mut tx, None, &person("Ravi", "Shah", "ravi@example.com"))
        .await
        .unwrap();
    people::add_lease(
        &mut tx,
        u,
        &LeaseInput {
            starts_on: Some(date!(2010 - 06 - 01)),
            term_start: Some(date!(1990 - 01 - 01)),
            term_years: Some(125),
            ground_rent_pence: Some(25_000),
            ground_rent_review: Some("Doubles every 25 years".into()),
            holders: vec![mr, mrs],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    // A second open lease overlapping the first is refused, and nothing is written.
    let mut tx = db.app.begin(&ctx).await.unwrap();
    let overlap = people::add_lease(
        &mut tx,
        u,
        &LeaseInput {
            starts_on: Some(date!(2020 - 01 - 01)),
            holders: vec![buyer],
            ..Default::default()
        },
    )
    .await;
    assert!(matches!(overlap, Err(LeaseError::Overlap)), "{overlap:?}");
    tx.rollback().await.unwrap();

    // A sale on 15 March 2024: the Smiths' lease ends that day and Mr Shah's begins.
    let mut tx = db.app.begin(&ctx).await.unwrap();
    let too_early = people::change_ownership(&mut tx, u, date!(2009 - 01 - 01), &[buyer]).await;
    assert!(matches!(too_early, Err(LeaseError::TooEarly(_))));
    people::change_ownership(&mut tx, u, date!(2024 - 03 - 15), &[buyer])
        .await
        .unwrap();
    let history = people::unit_leases(&mut tx, u).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].holder_names, vec!["Ravi Shah"]);
    assert_eq!(history[0].starts_on, date!(2024 - 03 - 15));
    assert_eq!(history[0].ground_rent_pence, Some(25_000));
    assert_eq!(history[1].holders_label(), "John Smith & Mary Smith");
    assert_eq!(history[1].ends_on, Some(date!(2024 - 03 - 15)));
    assert!(history[0].is_current(date!(2026 - 11 - 23)));
    assert!(!history[1].is_current(date!(2026 - 11 - 23)));
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn bank_details_are_sealed_in_the_database_and_shown_masked() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let key = DataKey::generate();
    let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
    let id = people::save_vendor(
        &mut tx,
        &key,
        None,
        &VendorInput {
            name: "Bright Spark Electrical".into(),
            trade: "Electrician".into(),
            vat_number: Some("GB980780684".into()),
            bank: Some(BankDetails {
                sort_code: "401276".into(),
                account_number: "41761234".into(),
            }),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let vendor = people::vendor(&mut tx, id).await.unwrap().unwrap();
    assert_eq!(vendor.masked_bank().as_deref(), Some("**-**-76 ****1234"));
    let raw: Vec<u8> = sqlx::query_scalar("select bank_sealed from vendor where id = $1")
        .bind(id)
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert!(!raw.windows(8).any(|w| w == b"41761234"));
    let audit: String = sqlx::query_scalar(
        "select changes::text from audit_event where table_name = 'vendor' order by seq desc limit 1",
    )
    .fetch_one(tx.conn())
    .await
    .unwrap();
    assert!(!audit.contains("41761234") && audit.contains("[redacted]"));
    let opened = people::vendor_bank_details(&mut tx, &key, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(opened.account_number, "41761234");
    // An edit without new bank details keeps the sealed ones.
    people::save_vendor(
        &mut tx,
        &key,
        Some(id),
        &VendorInput {
            name: "Bright Spark Electrical Ltd".into(),
            trade: "Electrician".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let again = people::vendor_bank_details(&mut tx, &key, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.sort_code, "401276");
    // The wrong key opens nothing.
    assert!(
        people::vendor_bank_details(&mut tx, &DataKey::generate(), id)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn merging_contacts_moves_their_leases_and_keeps_the_duplicate_for_history() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Priya Patel")).await.unwrap();
    let s = site(&mut tx, "GC-001", "Goldcrest House").await;
    let u = unit(&mut tx, s, "1").await;
    let keep = people::save_contact(&mut tx, None, &person("John", "Smith", "john@example.com"))
        .await
        .unwrap();
    let dup = people::save_contact(&mut tx, None, &person("John", "Smith", "js@work.example"))
        .await
        .unwrap();
    people::add_lease(
        &mut tx,
        u,
        &LeaseInput {
            starts_on: Some(date!(2015 - 01 - 01)),
            holders: vec![dup],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(matches!(
        people::merge_contacts(&mut tx, keep, keep).await,
        Err(MergeError::Same)
    ));
    people::merge_contacts(&mut tx, keep, dup).await.unwrap();
    let everything = SiteScope::everything();
    let kept = people::contact(&mut tx, &everything, keep)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.emails, vec!["john@example.com", "js@work.example"]);
    assert!(kept.roles.contains(&"leaseholder".to_owned()));
    assert_eq!(
        people::contact_leases(&mut tx, keep).await.unwrap().len(),
        1
    );
    let merged = people::contact(&mut tx, &everything, dup)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(merged.merged_into_id, Some(keep));
    assert!(matches!(
        people::merge_contacts(&mut tx, keep, dup).await,
        Err(MergeError::AlreadyMerged)
    ));

    // The subject-access file holds the record, its lease and its audit trail.
    let file = people::subject_access(&mut tx, keep).await.unwrap();
    assert_eq!(file["contact"]["display_name"], "John Smith");
    assert_eq!(file["leases"][0]["unit"], "1");
    assert_eq!(file["merged_records"][0], dup.to_string());
    assert!(file["audit_events"].as_array().unwrap().len() >= 2);
    assert!(matches!(
        people::subject_access(&mut tx, Uuid::now_v7()).await,
        Err(DbError::NotFound)
    ));
}

#[tokio::test]
async fn searching_smith_finds_only_this_organisations_smiths_within_the_members_sites() {
    let db = TestDb::new().await;
    let goldcrest = db.org("goldcrest", "Goldcrest").await;
    let acme = db.org("acme", "Acme").await;
    let mut tx = db.app.begin(&db.staff(&acme, "Acme admin")).await.unwrap();
    let acme_site = site(&mut tx, "AC-001", "Acme Court").await;
    let acme_unit = unit(&mut tx, acme_site, "1").await;
    let acme_smith =
        people::save_contact(&mut tx, None, &person("Adam", "Smith", "adam@acme.example"))
            .await
            .unwrap();
    people::add_lease(
        &mut tx,
        acme_unit,
        &LeaseInput {
            starts_on: Some(date!(2020 - 01 - 01)),
            holders: vec![acme_smith],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut tx = db.app.begin(&db.staff(&goldcrest, "Priya")).await.unwrap();
    let north = site(&mut tx, "GC-001", "North Smithfield House").await;
    let south = site(&mut tx, "GC-002", "South Court").await;
    let north_unit = unit(&mut tx, north, "1").await;
    let south_unit = unit(&mut tx, south, "1").await;
    let jane = people::save_contact(&mut tx, None, &person("Jane", "Smith", "jane@example.com"))
        .await
        .unwrap();
    let bob = people::save_contact(&mut tx, None, &person("Bob", "Smyth", "bob@example.com"))
        .await
        .unwrap();
    for (u, holder) in [(north_unit, jane), (south_unit, bob)] {
        people::add_lease(
            &mut tx,
            u,
            &LeaseInput {
                starts_on: Some(date!(2021 - 05 - 01)),
                holders: vec![holder],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();

    let mut tx = db.app.begin(&db.staff(&goldcrest, "Priya")).await.unwrap();
    let everything = SiteScope::everything();
    let hits = search::search(&mut tx, &everything, "Smith", 20)
        .await
        .unwrap();
    let titles: Vec<&str> = hits.iter().map(|h| h.title.as_str()).collect();
    assert!(titles.contains(&"Jane Smith"), "{titles:?}");
    assert!(titles.contains(&"North Smithfield House"), "{titles:?}");
    assert!(
        !titles.contains(&"Adam Smith"),
        "Acme's Smith leaked: {titles:?}"
    );
    assert_eq!(hits[0].title, "Jane Smith", "exact word first: {titles:?}");
    // A typo and a prefix still find her.
    for q in ["smoth", "jane smi", "SMITH"] {
        let hits = search::search(&mut tx, &everything, q, 5).await.unwrap();
        assert!(
            hits.iter().any(|h| h.id == jane),
            "{q}: {:?}",
            hits.iter().map(|h| &h.title).collect::<Vec<_>>()
        );
    }
    // A member scoped to the south site sees Bob Smyth, not Jane Smith nor the north site.
    let south_only = SiteScope {
        sites: vec![south],
        ..Default::default()
    };
    let hits = search::search(&mut tx, &south_only, "smith", 20)
        .await
        .unwrap();
    assert!(
        hits.iter().all(|h| h.id != jane && h.id != north),
        "{hits:?}"
    );
    assert!(hits.iter().any(|h| h.id == bob), "{hits:?}");
    // Blank and one-letter queries find nothing rather than everything.
    assert!(
        search::search(&mut tx, &everything, " s ", 5)
            .await
            .unwrap()
            .is_empty()
    );
    // The unit list obeys the same scope.
    let units = portfolio::list_units(
        &mut tx,
        &south_only,
        &UnitQuery {
            per_page: 50,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(units.total, 1);
    assert_eq!(units.rows[0].site_reference, "GC-002");
    assert_eq!(units.rows[0].holders.as_deref(), Some("Bob Smyth"));
}

/// A swapped pair of letters or a wrong letter still finds the person (the word is corrected
/// from the organisation's own words, never another's); a phone number's start finds its
/// owner in either national or international form, within the member's sites.
#[tokio::test]
async fn typos_are_corrected_from_the_organisations_own_words_and_phones_match_by_prefix() {
    let db = TestDb::new().await;
    let goldcrest = db.org("goldcrest", "Goldcrest").await;
    let acme = db.org("acme", "Acme").await;
    let mut tx = db.app.begin(&db.staff(&acme, "Acme admin")).await.unwrap();
    people::save_contact(
        &mut tx,
        None,
        &person("Olga", "Przybylski", "olga@acme.example"),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut tx = db.app.begin(&db.staff(&goldcrest, "Priya")).await.unwrap();
    let north = site(&mut tx, "GC-001", "North House").await;
    let south = site(&mut tx, "GC-002", "South Court").await;
    let mut jones = person("Megan", "Jones", "megan@example.com");
    jones.phones = vec!["07700900123".into()];
    let jones = people::save_contact(&mut tx, None, &jones).await.unwrap();
    let mut kowalski = person("Piotr", "Kowalski", "piotr@example.com");
    kowalski.phones = vec!["+447700900456".into()];
    let kowalski = people::save_contact(&mut tx, None, &kowalski)
        .await
        .unwrap();
    for (s, holder) in [(north, jones), (south, kowalski)] {
        let u = unit(&mut tx, s, "1").await;
        people::add_lease(
            &mut tx,
            u,
            &LeaseInput {
                starts_on: Some(date!(2021 - 05 - 01)),
                holders: vec![holder],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();

    let mut tx = db.app.begin(&db.staff(&goldcrest, "Priya")).await.unwrap();
    let everything = SiteScope::everything();
    let first = |hits: &[search::SearchHit]| hits.first().map(|h| h.id);
    for (q, who) in [
        ("jnoes", jones),
        ("megan jnoes", jones),
        ("kowalsky", kowalski),
        ("kowlaski", kowalski),
        ("07700 900", jones),
        ("07700900456", kowalski),
        ("+44 7700 900 123", jones),
    ] {
        let hits = search::search(&mut tx, &everything, q, 5).await.unwrap();
        assert_eq!(first(&hits), Some(who), "{q}: {hits:?}");
    }
    // Both numbers start 07700 900 in national form.
    let hits = search::search(&mut tx, &everything, "0770090", 5)
        .await
        .unwrap();
    assert_eq!(hits.len(), 2, "{hits:?}");
    // Acme's word is not Goldcrest's: its typo finds nothing here.
    assert!(
        search::search(&mut tx, &everything, "przybylsky", 5)
            .await
            .unwrap()
            .is_empty()
    );
    // A member of the south site finds Mr Kowalski by number, never Ms Jones.
    let south_only = SiteScope {
        sites: vec![south],
        ..Default::default()
    };
    let hits = search::search(&mut tx, &south_only, "07700 900", 5)
        .await
        .unwrap();
    assert_eq!(
        hits.iter().map(|h| h.id).collect::<Vec<_>>(),
        [kowalski],
        "{hits:?}"
    );
    assert!(
        search::search(&mut tx, &south_only, "jnoes", 5)
            .await
            .unwrap()
            .iter()
            .all(|h| h.id != jones)
    );
}

/// A text filter counts up to the cap and says there are more; without one the count is exact.
#[tokio::test]
async fn a_text_filtered_unit_list_counts_up_to_the_cap() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Priya")).await.unwrap();
    let s = site(&mut tx, "GC-001", "Goldcrest House").await;
    let extra = portfolio::TEXT_COUNT_CAP + 5;
    sqlx::query(
        "insert into unit (organisation_id, id, site_id, reference, name, unit_type)
         select proplink.current_org(), gen_random_uuid(), $1, 'A' || g, 'Flat A' || g, 'flat'
           from generate_series(1, $2::int) g",
    )
    .bind(s)
    .bind(i32::try_from(extra).unwrap())
    .execute(tx.conn())
    .await
    .unwrap();
    let everything = SiteScope::everything();
    let list = |q: &str, page: i64| UnitQuery {
        q: q.into(),
        per_page: 50,
        page,
        ..Default::default()
    };
    let all = portfolio::list_units(&mut tx, &everything, &list("", 1))
        .await
        .unwrap();
    assert_eq!((all.total, all.capped), (extra, false));
    let many = portfolio::list_units(&mut tx, &everything, &list("flat a", 1))
        .await
        .unwrap();
    assert_eq!(
        (many.total, many.capped, many.rows.len()),
        (portfolio::TEXT_COUNT_CAP, true, 50)
    );
    // Pages beyond the counted ones still list their rows: page 21 holds the last five.
    let last = portfolio::list_units(&mut tx, &everything, &list("flat a", 21))
        .await
        .unwrap();
    assert_eq!(last.rows.len(), 5);
    let few = portfolio::list_units(&mut tx, &everything, &list("a100", 1))
        .await
        .unwrap();
    // A100 and A1000–A1005.
    assert_eq!((few.total, few.capped), (7, false));
}

/// Words are found through their postings, which follow every change to a record: a renamed
/// contact is found by the new name and no longer by the old; two typed words find the record
/// holding both first, or, when none does, records holding either. A site-scoped member finds
/// their own site's postcode district even when the organisation has many shorter ones.
#[tokio::test]
async fn word_postings_follow_changes_and_scoped_prefixes_reach_every_word() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Priya")).await.unwrap();
    let ada = people::save_contact(&mut tx, None, &person("Ada", "Lovelace", "ada@example.com"))
        .await
        .unwrap();
    let alan = people::save_contact(&mut tx, None, &person("Alan", "Turing", "alan@example.com"))
        .await
        .unwrap();
    let everything = SiteScope::everything();
    let ids = |hits: &[search::SearchHit]| hits.iter().map(|h| h.id).collect::<Vec<_>>();

    let hits = search::search(&mut tx, &everything, "lovelace", 5)
        .await
        .unwrap();
    assert_eq!(ids(&hits), [ada]);
    // Renamed: found by the new name only, and the old word's posting is gone.
    let mut renamed = person("Ada", "King", "ada@example.com");
    renamed.title = Some("Countess".into());
    people::save_contact(&mut tx, Some(ada), &renamed)
        .await
        .unwrap();
    assert!(
        search::search(&mut tx, &everything, "lovelace", 5)
            .await
            .unwrap()
            .is_empty()
    );
    let postings: Vec<String> =
        sqlx::query_scalar("select word from search_posting where entry_id = $1 order by word")
            .bind(ada)
            .fetch_all(tx.conn())
            .await
            .unwrap();
    assert!(postings.contains(&"king".to_owned()), "{postings:?}");
    assert!(!postings.contains(&"lovelace".to_owned()), "{postings:?}");
    assert_eq!(
        ids(&search::search(&mut tx, &everything, "ada king", 5)
            .await
            .unwrap()),
        [ada]
    );
    // No one holds both words: either's holder is shown.
    let hits = search::search(&mut tx, &everything, "king turing", 5)
        .await
        .unwrap();
    assert!(
        hits.iter().any(|h| h.id == ada) && hits.iter().any(|h| h.id == alan),
        "{hits:?}"
    );
    // Both typed words beat one: "alan turing" puts Alan first even beside another Alan.
    let other = people::save_contact(&mut tx, None, &person("Alan", "Bennett", "ab@example.com"))
        .await
        .unwrap();
    let hits = search::search(&mut tx, &everything, "alan turing", 5)
        .await
        .unwrap();
    assert_eq!(ids(&hits), [alan], "only the record holding both: {hits:?}");
    let hits = search::search(&mut tx, &everything, "alan", 5)
        .await
        .unwrap();
    assert!(ids(&hits).contains(&other) && ids(&hits).contains(&alan));

    // Twelve sites in districts LS10–LS19 and LS1; the member's site is in LS19, which is
    // not among the organisation's eight shortest words beginning "ls1".
    let mut member_site = Uuid::nil();
    for (i, district) in [
        "LS1", "LS10", "LS11", "LS12", "LS13", "LS14", "LS15", "LS16", "LS17", "LS18", "LS19",
    ]
    .iter()
    .enumerate()
    {
        let s = portfolio::save_site(
            &mut tx,
            None,
            &SiteInput {
                reference: format!("GC-{i:03}"),
                name: format!("Court {i}"),
                address: portfolio::Address {
                    postcode: Some(format!("{district} 1AA")),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
        if *district == "LS19" {
            member_site = s;
        }
    }
    let member = SiteScope {
        sites: vec![member_site],
        ..Default::default()
    };
    let hits = search::search(&mut tx, &member, "ls1", 5).await.unwrap();
    assert_eq!(ids(&hits), [member_site], "{hits:?}");
    // Everything in scope: a word found only on other sites shows nothing to the member.
    assert!(
        search::search(&mut tx, &member, "lovelace king", 5)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The unit list's totals come from `unit_tally`, which triggers keep through every kind of
/// change: inserts one by one and in bulk, archiving, a changed type, a renamed unit (which
/// moves no tally), deletion and a site deleted for good. After each, the tallies equal a count
/// of the units, and the list's totals equal a count under each filter and scope.
#[tokio::test]
async fn unit_tallies_follow_every_change_and_give_the_unit_lists_totals() {
    use portfolio::{Archivable, Showing};
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let acme = db.org("acme", "Acme").await;
    let mut tx = db.app.begin(&db.staff(&org, "Priya")).await.unwrap();
    let house = site(&mut tx, "GC-001", "Goldcrest House").await;
    let court = site(&mut tx, "GC-002", "Riverside Court").await;
    let a1 = unit(&mut tx, house, "A1").await;
    let a2 = unit(&mut tx, house, "A2").await;
    unit(&mut tx, court, "B1").await;
    sqlx::query(
        "insert into unit (organisation_id, id, site_id, reference, name, unit_type)
         select proplink.current_org(), gen_random_uuid(), $1, 'S' || g, 'Shop ' || g,
                case when g % 3 = 0 then 'commercial' else 'flat' end
           from generate_series(1, 30) g",
    )
    .bind(court)
    .execute(tx.conn())
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // Another organisation's units never reach Goldcrest's totals.
    let mut other = db.app.begin(&db.staff(&acme, "Sam")).await.unwrap();
    let elsewhere = site(&mut other, "AC-001", "Acme Tower").await;
    for r in ["X1", "X2", "X3"] {
        unit(&mut other, elsewhere, r).await;
    }
    other.commit().await.unwrap();

    async fn tallies_match(tx: &mut TenantTx) {
        let mismatched: i64 = sqlx::query_scalar(
            "select count(*) from (
                 select site_id, unit_type, archived_at is null as live, count(*)::bigint as units
                   from unit group by 1, 2, 3
                 except
                 select site_id, unit_type, live, units from unit_tally where units > 0) m",
        )
        .fetch_one(tx.conn())
        .await
        .unwrap();
        let extra: i64 = sqlx::query_scalar(
            "select count(*) from unit_tally t where t.units > 0 and not exists (
                 select from unit u where u.site_id = t.site_id and u.unit_type = t.unit_type
                    and (u.archived_at is null) = t.live)",
        )
        .fetch_one(tx.conn())
        .await
        .unwrap();
        assert_eq!((mismatched, extra), (0, 0), "tallies differ from the units");
    }
    async fn total(tx: &mut TenantTx, scope: &SiteScope, query: UnitQuery) -> i64 {
        let page = portfolio::list_units(
            tx,
            scope,
            &UnitQuery {
                per_page: 10,
                ..query
            },
        )
        .await
        .unwrap();
        assert!(!page.capped);
        page.total
    }

    let everything = SiteScope::everything();
    let house_only = SiteScope {
        all: false,
        sites: vec![house],
        estates: Vec::new(),
    };
    let mut tx = db.app.begin(&db.staff(&org, "Priya")).await.unwrap();
    tallies_match(&mut tx).await;
    assert_eq!(total(&mut tx, &everything, UnitQuery::default()).await, 33);
    assert_eq!(total(&mut tx, &house_only, UnitQuery::default()).await, 2);
    let commercial = || UnitQuery {
        unit_type: Some("commercial".into()),
        ..UnitQuery::default()
    };
    assert_eq!(total(&mut tx, &everything, commercial()).await, 10);
    assert_eq!(total(&mut tx, &house_only, commercial()).await, 0);
    let on_court = UnitQuery {
        site: Some(court),
        ..UnitQuery::default()
    };
    assert_eq!(total(&mut tx, &everything, on_court.clone()).await, 31);
    // A member scoped to the house asking for the court's units gets none.
    assert_eq!(total(&mut tx, &house_only, on_court).await, 0);

    // Archive one, retype another, rename a third (no tally moves), delete one.
    assert!(
        portfolio::set_archived(&mut tx, Archivable::Unit, a1, true)
            .await
            .unwrap()
    );
    sqlx::query("update unit set unit_type = 'commercial' where id = $1")
        .bind(a2)
        .execute(tx.conn())
        .await
        .unwrap();
    let before: Vec<(Uuid, String, bool, i64)> =
        sqlx::query_as("select site_id, unit_type, live, units from unit_tally order by 1, 2, 3")
            .fetch_all(tx.conn())
            .await
            .unwrap();
    sqlx::query("update unit set name = name || ' (renamed)' where site_id = $1")
        .bind(court)
        .execute(tx.conn())
        .await
        .unwrap();
    let after: Vec<(Uuid, String, bool, i64)> =
        sqlx::query_as("select site_id, unit_type, live, units from unit_tally order by 1, 2, 3")
            .fetch_all(tx.conn())
            .await
            .unwrap();
    assert_eq!(before, after);
    sqlx::query("delete from unit where site_id = $1 and reference = 'S1'")
        .bind(court)
        .execute(tx.conn())
        .await
        .unwrap();
    tallies_match(&mut tx).await;
    assert_eq!(total(&mut tx, &everything, UnitQuery::default()).await, 31);
    let archived = UnitQuery {
        showing: Showing::Archived,
        ..UnitQuery::default()
    };
    assert_eq!(total(&mut tx, &everything, archived).await, 1);
    let all = UnitQuery {
        showing: Showing::All,
        ..UnitQuery::default()
    };
    assert_eq!(total(&mut tx, &everything, all).await, 32);
    assert_eq!(total(&mut tx, &house_only, commercial()).await, 1);

    // A site deleted for good takes its tallies with it.
    portfolio::set_archived(&mut tx, Archivable::Site, house, true)
        .await
        .unwrap();
    portfolio::force_delete_site(&mut tx, house).await.unwrap();
    tallies_match(&mut tx).await;
    let left: i64 = sqlx::query_scalar("select count(*) from unit_tally where site_id = $1")
        .bind(house)
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(left, 0);
    assert_eq!(total(&mut tx, &everything, UnitQuery::default()).await, 30);
    tx.commit().await.unwrap();
}

/// Erasure (UK GDPR Art. 17): refused while the contact still holds a lease; once their lease
/// has ended, their names, address, e-mails and phones (and a duplicate merged into them) are
/// replaced or removed, the same values are stripped from every audit event about them, search
/// no longer finds them, the lease history keeps the (now anonymous) holder, and the chain
/// still verifies. Altering a stripped event afterwards, or faking an erasure, is caught.
#[tokio::test]
async fn erasing_a_contact_strips_their_data_from_records_and_audit_and_the_chain_still_verifies() {
    use proplink_db::audit;
    use proplink_db::people::EraseError;
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Priya")).await.unwrap();
    let s = site(&mut tx, "GC-001", "Goldcrest House").await;
    let flat = unit(&mut tx, s, "1").await;
    let mut input = person("Zebedee", "Quixote", "zeb@example.com");
    input.phones = vec!["07700900456".into()];
    input.address.line_1 = Some("9 Quill Lane".into());
    input.notes = Some("Prefers calls after six".into());
    let zeb = people::save_contact(&mut tx, None, &input).await.unwrap();
    // A second e-mail added and removed again: its deleted row is stripped as well.
    input.emails = vec!["zeb@example.com".into(), "zq@old.example".into()];
    people::save_contact(&mut tx, Some(zeb), &input)
        .await
        .unwrap();
    input.emails = vec!["zeb@example.com".into()];
    people::save_contact(&mut tx, Some(zeb), &input)
        .await
        .unwrap();
    let dup = people::save_contact(&mut tx, None, &person("Zeb", "Quixote", "zeb@example.com"))
        .await
        .unwrap();
    people::merge_contacts(&mut tx, zeb, dup).await.unwrap();
    let lease = people::add_lease(
        &mut tx,
        flat,
        &LeaseInput {
            starts_on: Some(date!(2020 - 01 - 01)),
            holders: vec![zeb],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut tx = db.app.begin(&db.staff(&org, "Priya")).await.unwrap();
    assert!(matches!(
        people::erase_contact(&mut tx, zeb, "Request of 1 May 2026").await,
        Err(EraseError::StillHolding(units)) if units.contains("GC-001 1")
    ));
    assert!(matches!(
        people::erase_contact(&mut tx, zeb, "  ").await,
        Err(EraseError::Reason)
    ));
    assert!(matches!(
        people::erase_contact(&mut tx, dup, "Request").await,
        Err(EraseError::Merged)
    ));
    tx.rollback().await.unwrap();
    // They sold the flat last year.
    let mut tx = db.app.begin(&db.staff(&org, "Priya")).await.unwrap();
    sqlx::query("update lease set ends_on = date '2025-06-30' where id = $1")
        .bind(lease)
        .execute(tx.conn())
        .await
        .unwrap();
    let erased = people::erase_contact(&mut tx, zeb, "Erasure request by e-mail, 1 May 2026")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(erased.contacts, 2);
    assert!(erased.stripped_events >= 8, "{erased:?}");

    let mut tx = db.app.begin(&db.staff(&org, "Priya")).await.unwrap();
    let (name, emails, phones): (String, i64, i64) = sqlx::query_as(
        "select display_name,
                (select count(*) from contact_email e where e.contact_id = c.id),
                (select count(*) from contact_phone p where p.contact_id = c.id)
           from contact c where id = $1",
    )
    .bind(zeb)
    .fetch_one(tx.conn())
    .await
    .unwrap();
    assert_eq!((name.as_str(), emails, phones), ("Erased contact", 0, 0));
    // Nothing personal is left anywhere in the organisation's audit trail.
    let leaks: Vec<String> = sqlx::query_scalar(
        "select table_name || ' #' || seq || ': ' || changes::text from audit_event
          where changes::text ~* '(zebedee|quixote|zeb@|zq@|07700900456|quill|after six)'",
    )
    .fetch_all(tx.conn())
    .await
    .unwrap();
    assert!(leaks.is_empty(), "{leaks:#?}");
    let found = search::search(&mut tx, &SiteScope::everything(), "quixote", 10)
        .await
        .unwrap();
    assert!(found.is_empty(), "{found:?}");
    // Nor do their words linger in the vocabulary typo corrections draw from.
    let words: Vec<String> = sqlx::query_scalar(
        "select word from search_word where word ~* '(zebedee|quixote|zeb@|zq@|07700900456|quill)'",
    )
    .fetch_all(tx.conn())
    .await
    .unwrap();
    assert!(words.is_empty(), "{words:?}");
    // The lease history still shows a holder, by id.
    let holders: i64 = sqlx::query_scalar(
        "select count(*) from lease_holder where lease_id = $1 and contact_id = $2",
    )
    .bind(lease)
    .bind(zeb)
    .fetch_one(tx.conn())
    .await
    .unwrap();
    assert_eq!(holders, 1);
    assert!(matches!(
        people::erase_contact(&mut tx, zeb, "Again").await,
        Err(EraseError::AlreadyErased)
    ));
    tx.rollback().await.unwrap();
    let report = audit::verify_chain(&db.platform, org.id).await.unwrap();
    assert!(report.broken.is_none(), "{:?}", report.broken);

    // Altering a stripped event afterwards is caught.
    let mut su = db.superuser().await;
    let first_stripped: i64 =
        sqlx::query_scalar("select min(seq) from audit_erasure where organisation_id = $1")
            .bind(org.id.0)
            .fetch_one(&mut su)
            .await
            .unwrap();
    sqlx::query(
        "update audit_event set changes = changes || '{\"notes\": {\"new\": \"restored\"}}'
          where organisation_id = $1 and seq = $2",
    )
    .bind(org.id.0)
    .bind(first_stripped)
    .execute(&mut su)
    .await
    .unwrap();
    let broken = audit::verify_chain(&db.platform, org.id)
        .await
        .unwrap()
        .broken
        .expect("altering a stripped event is detected");
    assert_eq!(broken.seq, first_stripped);
    assert!(
        broken.reason.contains("after its personal data was erased"),
        "{}",
        broken.reason
    );

    // So is a change passed off as an erasure that no erasure event lists.
    let other = db.org("acme", "Acme").await;
    let mut tx = db.app.begin(&db.staff(&other, "Sam")).await.unwrap();
    site(&mut tx, "AC-001", "Acme Court").await;
    tx.commit().await.unwrap();
    sqlx::query(
        "update audit_event set changes = '{\"name\": {\"new\": \"[erased]\"}}'
          where organisation_id = $1 and seq = 1",
    )
    .bind(other.id.0)
    .execute(&mut su)
    .await
    .unwrap();
    sqlx::query(
        "insert into audit_erasure (organisation_id, seq, content_hash, erasure_id)
         select organisation_id, seq,
                encode(sha256(convert_to(proplink.audit_canonical(prev_hash, seq, organisation_id,
                    table_name, record_id, operation, actor_id, actor_kind, actor_name, channel,
                    request_id, occurred_at, changes), 'UTF8')), 'hex'),
                gen_random_uuid()
           from audit_event where organisation_id = $1 and seq = 1",
    )
    .bind(other.id.0)
    .execute(&mut su)
    .await
    .unwrap();
    let broken = audit::verify_chain(&db.platform, other.id)
        .await
        .unwrap()
        .broken
        .expect("an unattested erasure is detected");
    assert_eq!(broken.seq, 1);
    assert!(
        broken.reason.contains("no erasure recorded"),
        "{}",
        broken.reason
    );
}
