//! The per-site ledger (issue 6): journals balance, are final once posted, stay on their
//! site's accounts, respect locked periods, and reverse exactly; the trial balance is derived
//! from the lines and sums to zero. The database refuses the same things when the Rust checks
//! are bypassed.

#![allow(clippy::unwrap_used, reason = "tests")]

use proplink_db::TenantTx;
use proplink_db::ledger::{self, LedgerError, NewJournal, NewLine};
use proplink_db::portfolio::{self, SiteInput};
use proplink_domain::ledger::{FundKind, JournalError};
use proplink_test_support::TestDb;
use time::macros::date;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

async fn site(tx: &mut TenantTx, reference: &str) -> Uuid {
    portfolio::save_site(
        tx,
        None,
        &SiteInput {
            reference: reference.into(),
            name: format!("Site {reference}"),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

struct Books {
    site: Uuid,
    debtors: Uuid,
    income: Uuid,
    bank: Uuid,
    fund: Uuid,
}

async fn books(tx: &mut TenantTx, site: Uuid) -> Books {
    assert!(ledger::ensure_books(tx, site).await.unwrap());
    assert!(!ledger::ensure_books(tx, site).await.unwrap(), "only once");
    let control = async |tx: &mut TenantTx, c: &str| {
        ledger::control_account(tx, site, c)
            .await
            .unwrap()
            .unwrap()
            .id
    };
    Books {
        site,
        debtors: control(tx, "debtors").await,
        income: control(tx, "service_charge_income").await,
        bank: control(tx, "bank").await,
        fund: ledger::fund_of_kind(tx, site, FundKind::ServiceCharge)
            .await
            .unwrap()
            .unwrap()
            .id,
    }
}

fn line(account: Uuid, fund: Uuid, amount: i64) -> NewLine {
    NewLine {
        account_id: account,
        fund_id: fund,
        amount_pence: amount,
        unit_id: None,
        contact_id: None,
        work_order_id: None,
        description: None,
    }
}

fn journal(b: &Books, date: Date, lines: Vec<NewLine>) -> NewJournal {
    NewJournal {
        site_id: b.site,
        date,
        description: "Service charge demand".into(),
        source_type: "manual_journal".into(),
        source_id: None,
        lines,
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

#[tokio::test]
async fn a_balanced_journal_posts_and_the_trial_balance_sums_to_zero() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db
        .app
        .begin(&db.staff(&org, "Ann Accountant"))
        .await
        .unwrap();
    let s = site(&mut tx, "GC-001").await;
    let b = books(&mut tx, s).await;
    assert_eq!(ledger::accounts(&mut tx, s).await.unwrap().len(), 25);
    assert_eq!(ledger::funds(&mut tx, s).await.unwrap().len(), 3);
    let (id, reference) = ledger::post(
        &mut tx,
        &journal(
            &b,
            date!(2026 - 05 - 10),
            vec![
                line(b.debtors, b.fund, 45_000),
                line(b.income, b.fund, -45_000),
            ],
        ),
        "Ann Accountant",
        now(),
    )
    .await
    .unwrap();
    assert_eq!(reference, "JNL-2026-000001");
    ledger::post(
        &mut tx,
        &journal(
            &b,
            date!(2026 - 05 - 12),
            vec![
                line(b.bank, b.fund, 45_000),
                line(b.debtors, b.fund, -45_000),
            ],
        ),
        "Ann Accountant",
        now(),
    )
    .await
    .unwrap();
    let tb = ledger::trial_balance(&mut tx, s, date!(2026 - 01 - 01), date!(2026 - 12 - 31))
        .await
        .unwrap();
    assert_eq!(tb.iter().map(|r| r.balance_pence).sum::<i64>(), 0);
    // Debtors are cleared; the bank holds £450 against £450 of income.
    assert!(tb.iter().all(|r| r.account_id != b.debtors));
    assert_eq!(
        ledger::account_balance(&mut tx, b.bank, Some(b.fund), date!(2026 - 12 - 31))
            .await
            .unwrap(),
        45_000
    );
    assert_eq!(
        ledger::account_balance(&mut tx, b.debtors, None, date!(2026 - 05 - 11))
            .await
            .unwrap(),
        45_000
    );
    let j = ledger::find_journal(&mut tx, id).await.unwrap().unwrap();
    assert_eq!(j.posted_by, "Ann Accountant");
    assert_eq!(ledger::lines(&mut tx, id).await.unwrap().len(), 2);
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn refusals_are_sentences_and_change_nothing() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db
        .app
        .begin(&db.staff(&org, "Ann Accountant"))
        .await
        .unwrap();
    let s = site(&mut tx, "GC-001").await;
    let b = books(&mut tx, s).await;
    let other = site(&mut tx, "GC-002").await;
    let o = books(&mut tx, other).await;
    let day = date!(2026 - 05 - 10);
    let post = async |tx: &mut TenantTx, lines: Vec<NewLine>| {
        ledger::post(tx, &journal(&b, day, lines), "Ann", now()).await
    };
    match post(
        &mut tx,
        vec![
            line(b.debtors, b.fund, 45_000),
            line(b.income, b.fund, -44_999),
        ],
    )
    .await
    {
        Err(LedgerError::Journal(JournalError::Unbalanced { difference, .. })) => {
            assert_eq!(difference, "£0.01")
        }
        other => panic!("expected unbalanced, got {other:?}"),
    }
    assert!(matches!(
        post(&mut tx, vec![line(b.debtors, b.fund, 45_000)]).await,
        Err(LedgerError::Journal(JournalError::TooFewLines))
    ));
    // Another site's account or fund: one site's money never touches another's books.
    match post(
        &mut tx,
        vec![
            line(b.debtors, b.fund, 45_000),
            line(o.income, b.fund, -45_000),
        ],
    )
    .await
    {
        Err(LedgerError::Refused(m)) => {
            assert_eq!(m, "Line 2: that account is not one of this site's.")
        }
        other => panic!("expected another site's account refused, got {other:?}"),
    }
    assert!(matches!(
        post(
            &mut tx,
            vec![
                line(b.debtors, b.fund, 45_000),
                NewLine {
                    fund_id: o.fund,
                    ..line(b.income, b.fund, -45_000)
                }
            ]
        )
        .await,
        Err(LedgerError::Refused(_))
    ));
    // Another site's unit on a line; a control character in a description; an archived fund.
    let unit_elsewhere = portfolio::save_unit(
        &mut tx,
        None,
        other,
        &portfolio::UnitInput {
            reference: "1".into(),
            name: "Flat 1".into(),
            unit_type: "flat".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    match post(
        &mut tx,
        vec![
            NewLine {
                unit_id: Some(unit_elsewhere),
                ..line(b.debtors, b.fund, 45_000)
            },
            line(b.income, b.fund, -45_000),
        ],
    )
    .await
    {
        Err(LedgerError::Refused(m)) => {
            assert_eq!(m, "A line names a unit that is not at this site.")
        }
        other => panic!("expected another site's unit refused, got {other:?}"),
    }
    match post(
        &mut tx,
        vec![
            NewLine {
                description: Some("Demand\u{202e}gnp.exe".into()),
                ..line(b.debtors, b.fund, 45_000)
            },
            line(b.income, b.fund, -45_000),
        ],
    )
    .await
    {
        Err(LedgerError::Refused(m)) => assert!(m.contains("control character"), "{m}"),
        other => panic!("expected the control character refused, got {other:?}"),
    }
    // A locked period.
    let period = ledger::add_period(&mut tx, s, date!(2026 - 04 - 01), date!(2027 - 03 - 31))
        .await
        .unwrap();
    assert!(matches!(
        ledger::add_period(&mut tx, s, date!(2027 - 01 - 01), date!(2027 - 12 - 31)).await,
        Err(LedgerError::Refused(_))
    ));
    ledger::set_period_locked(&mut tx, period, true, "Ann", now())
        .await
        .unwrap();
    match post(
        &mut tx,
        vec![
            line(b.debtors, b.fund, 45_000),
            line(b.income, b.fund, -45_000),
        ],
    )
    .await
    {
        Err(LedgerError::Refused(m)) => assert!(
            m.starts_with("The period 1 April 2026 to 31 March 2027 is locked"),
            "{m}"
        ),
        other => panic!("expected the locked period, got {other:?}"),
    }
    let count: i64 = sqlx::query_scalar("select count(*) from journal")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(count, 0);
    // Unlocked, it posts.
    ledger::set_period_locked(&mut tx, period, false, "Ann", now())
        .await
        .unwrap();
    post(
        &mut tx,
        vec![
            line(b.debtors, b.fund, 45_000),
            line(b.income, b.fund, -45_000),
        ],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_reversal_cancels_its_journal_once() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db
        .app
        .begin(&db.staff(&org, "Ann Accountant"))
        .await
        .unwrap();
    let s = site(&mut tx, "GC-001").await;
    let b = books(&mut tx, s).await;
    let (id, reference) = ledger::post(
        &mut tx,
        &journal(
            &b,
            date!(2026 - 05 - 10),
            vec![
                line(b.debtors, b.fund, 45_000),
                line(b.income, b.fund, -45_000),
            ],
        ),
        "Ann",
        now(),
    )
    .await
    .unwrap();
    assert!(matches!(
        ledger::reverse(
            &mut tx,
            id,
            date!(2026 - 05 - 09),
            "Wrong unit",
            "Ann",
            now()
        )
        .await,
        Err(LedgerError::Refused(_))
    ));
    let (rev, _) = ledger::reverse(
        &mut tx,
        id,
        date!(2026 - 05 - 11),
        "Wrong unit",
        "Ann",
        now(),
    )
    .await
    .unwrap();
    let r = ledger::find_journal(&mut tx, rev).await.unwrap().unwrap();
    assert_eq!(r.reverses_id, Some(id));
    assert_eq!(
        r.description,
        format!("Reversal of {reference}: Wrong unit")
    );
    assert_eq!(
        ledger::find_journal(&mut tx, id)
            .await
            .unwrap()
            .unwrap()
            .reversed_by,
        Some(rev)
    );
    match ledger::reverse(&mut tx, id, date!(2026 - 05 - 12), "Again", "Ann", now()).await {
        Err(LedgerError::Refused(m)) => {
            assert_eq!(m, format!("{reference} has already been reversed."))
        }
        other => panic!("expected a second reversal refused, got {other:?}"),
    }
    assert!(matches!(
        ledger::reverse(&mut tx, rev, date!(2026 - 05 - 12), "Undo", "Ann", now()).await,
        Err(LedgerError::Refused(_))
    ));
    let tb = ledger::trial_balance(&mut tx, s, date!(2026 - 01 - 01), date!(2026 - 12 - 31))
        .await
        .unwrap();
    assert!(
        tb.is_empty(),
        "a journal and its reversal leave nothing: {tb:?}"
    );
    tx.commit().await.unwrap();
}

/// Runs SQL as the server role in its own transaction; Err(SQLSTATE) when refused.
async fn attempt(
    db: &TestDb,
    org: &proplink_db::organisation::Organisation,
    sql: &str,
) -> Result<(), String> {
    let mut tx = db.app.begin(&db.staff(org, "Mallory")).await.unwrap();
    let run = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(tx.conn())
        .await;
    let result = match run {
        Ok(_) => tx.commit().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    result.map(|_| ())
}

#[tokio::test]
async fn the_database_refuses_what_the_code_refuses() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db
        .app
        .begin(&db.staff(&org, "Ann Accountant"))
        .await
        .unwrap();
    let s = site(&mut tx, "GC-001").await;
    let b = books(&mut tx, s).await;
    let other = site(&mut tx, "GC-002").await;
    let o = books(&mut tx, other).await;
    let (id, _) = ledger::post(
        &mut tx,
        &journal(
            &b,
            date!(2026 - 05 - 10),
            vec![
                line(b.debtors, b.fund, 45_000),
                line(b.income, b.fund, -45_000),
            ],
        ),
        "Ann",
        now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    // Posted journals and lines cannot be changed or removed.
    for sql in [
        format!("update journal_line set amount_pence = 1 where journal_id = '{id}'"),
        format!("delete from journal_line where journal_id = '{id}'"),
        format!("update journal set description = 'x' where id = '{id}'"),
        format!("delete from journal where id = '{id}'"),
    ] {
        let refused = attempt(&db, &org, &sql).await.unwrap_err();
        assert!(refused.contains("permission denied"), "{sql}: {refused}");
    }
    let line_sql = |journal: Uuid, n: i16, account: Uuid, fund: Uuid, amount: i64| {
        format!(
            "insert into journal_line (organisation_id, id, journal_id, site_id, journal_date, line_no, account_id, fund_id, amount_pence)
             values ('{}', '{}', '{journal}', '{s}', '2026-05-10', {n}, '{account}', '{fund}', {amount})",
            org.id.0,
            Uuid::now_v7()
        )
    };
    // Lines added later to a posted journal, even balanced ones.
    let later = format!(
        "{}; {}",
        line_sql(id, 3, b.debtors, b.fund, 100),
        line_sql(id, 4, b.income, b.fund, -100)
    );
    let refused = attempt(&db, &org, &later).await.unwrap_err();
    assert!(refused.contains("not written in one go"), "{refused}");
    // A new journal that does not balance, or has no lines at all.
    let journal_sql = |j: Uuid, reference: &str| {
        format!(
            "insert into journal (organisation_id, id, site_id, reference, journal_date, description, source_type, posted_by)
             values ('{}', '{j}', '{s}', '{reference}', '2026-05-10', 'x', 'manual_journal', 'Mallory')",
            org.id.0
        )
    };
    let j = Uuid::now_v7();
    let unbalanced = format!(
        "{}; insert into journal_line (organisation_id, id, journal_id, site_id, journal_date, line_no, account_id, fund_id, amount_pence)
         values ('{o1}', '{a}', '{j}', '{s}', '2026-05-10', 1, '{d}', '{f}', 100), ('{o1}', '{c}', '{j}', '{s}', '2026-05-10', 2, '{i}', '{f}', -99)",
        journal_sql(j, "JNL-2026-900001"),
        o1 = org.id.0,
        a = Uuid::now_v7(),
        c = Uuid::now_v7(),
        d = b.debtors,
        i = b.income,
        f = b.fund,
    );
    let refused = attempt(&db, &org, &unbalanced).await.unwrap_err();
    assert!(refused.contains("is not balanced"), "{refused}");
    let empty = journal_sql(Uuid::now_v7(), "JNL-2026-900002");
    let refused = attempt(&db, &org, &empty).await.unwrap_err();
    // Refused at commit, by the deferred check (23514, check violation).
    assert!(refused.contains("refused by the rule"), "{refused}");
    // Another site's account on this site's journal.
    let j = Uuid::now_v7();
    let cross = format!(
        "{}; {}, ('{o1}', '{x}', '{j}', '{s}', '2026-05-10', 2, '{oi}', '{f}', -100)",
        journal_sql(j, "JNL-2026-900003"),
        line_sql(j, 1, b.debtors, b.fund, 100),
        o1 = org.id.0,
        x = Uuid::now_v7(),
        oi = o.income,
        f = b.fund,
    );
    let refused = attempt(&db, &org, &cross).await.unwrap_err();
    assert!(
        refused.contains("journal_line_organisation_id_site_id_account_id_fkey"),
        "{refused}"
    );
    // A journal dated in a locked period.
    {
        let mut tx = db.app.begin(&db.staff(&org, "Ann")).await.unwrap();
        let p = ledger::add_period(&mut tx, s, date!(2026 - 01 - 01), date!(2026 - 12 - 31))
            .await
            .unwrap();
        ledger::set_period_locked(&mut tx, p, true, "Ann", now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let j = Uuid::now_v7();
    let locked = format!(
        "{}; {}, ('{o1}', '{x}', '{j}', '{s}', '2026-05-10', 2, '{i}', '{f}', -100)",
        journal_sql(j, "JNL-2026-900004"),
        line_sql(j, 1, b.debtors, b.fund, 100),
        o1 = org.id.0,
        x = Uuid::now_v7(),
        i = b.income,
        f = b.fund,
    );
    let refused = attempt(&db, &org, &locked).await.unwrap_err();
    assert!(refused.contains("is locked"), "{refused}");
    let journals: i64 = {
        let mut su = db.superuser().await;
        sqlx::query_scalar("select count(*) from journal")
            .fetch_one(&mut su)
            .await
            .unwrap()
    };
    assert_eq!(journals, 1);
}

#[tokio::test]
async fn organisations_have_the_five_uk_rates_and_their_own() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Ann")).await.unwrap();
    ledger::ensure_tax_rates(&mut tx).await.unwrap();
    ledger::ensure_tax_rates(&mut tx).await.unwrap();
    let rates = ledger::tax_rates(&mut tx).await.unwrap();
    assert_eq!(rates.len(), 5);
    assert_eq!(rates[0].name, "Standard 20%");
    assert_eq!(rates[0].basis_points, 2000);
    let id = ledger::add_tax_rate(
        &mut tx,
        "Temporary 12.5%",
        1250,
        date!(2027 - 01 - 01),
        Some(date!(2027 - 12 - 31)),
    )
    .await
    .unwrap();
    let custom = ledger::tax_rates(&mut tx)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.id == id)
        .unwrap();
    assert!(custom.applies_on(date!(2027 - 06 - 01)));
    assert!(!custom.applies_on(date!(2028 - 01 - 01)));
    for (name, bp, to, expected) in [
        (
            "standard 20%",
            2000,
            None,
            "There is already a rate called standard 20%.",
        ),
        ("Odd", 10_001, None, "A rate is at most 100%."),
        (
            "Backwards",
            100,
            Some(date!(2026 - 01 - 01)),
            "The rate ends before it starts.",
        ),
    ] {
        match ledger::add_tax_rate(&mut tx, name, bp, date!(2027 - 01 - 01), to).await {
            Err(LedgerError::Refused(m)) => assert_eq!(m, expected),
            other => panic!("expected {expected:?}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn many_journals_post_at_once_or_not_at_all() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest").await;
    let mut tx = db.app.begin(&db.staff(&org, "Ann")).await.unwrap();
    let s1 = site(&mut tx, "GC-001").await;
    let a = books(&mut tx, s1).await;
    let s2 = site(&mut tx, "GC-002").await;
    let b = books(&mut tx, s2).await;
    // One journal that names another site's account spoils the run: nothing is written.
    let bad = vec![
        journal(
            &a,
            date!(2026 - 05 - 10),
            vec![line(a.debtors, a.fund, 100), line(a.income, a.fund, -100)],
        ),
        journal(
            &b,
            date!(2026 - 05 - 10),
            vec![line(a.debtors, b.fund, 100), line(b.income, b.fund, -100)],
        ),
    ];
    match ledger::post_many(&mut tx, &bad, "Ann", now()).await {
        Err(LedgerError::Refused(m)) => assert_eq!(
            m,
            "Journal 2, line 1: that account is not one of this site's."
        ),
        other => panic!("expected the run refused, got {other:?}"),
    }
    let unbalanced = vec![
        journal(
            &a,
            date!(2026 - 05 - 10),
            vec![line(a.debtors, a.fund, 100), line(a.income, a.fund, -100)],
        ),
        journal(
            &a,
            date!(2026 - 05 - 10),
            vec![line(a.debtors, a.fund, 100), line(a.income, a.fund, -90)],
        ),
    ];
    match ledger::post_many(&mut tx, &unbalanced, "Ann", now()).await {
        Err(LedgerError::Refused(m)) => {
            assert!(m.starts_with("Journal 2: The lines do not balance"), "{m}")
        }
        other => panic!("expected the run refused, got {other:?}"),
    }
    // A good run over two sites and two years: numbered in order, without gaps.
    let mut run = Vec::new();
    for n in 0..200 {
        let (books, date) = if n % 2 == 0 {
            (&a, date!(2026 - 05 - 10))
        } else {
            (&b, date!(2027 - 01 - 05))
        };
        run.push(journal(
            books,
            date,
            vec![
                line(books.debtors, books.fund, 1_000 + n),
                line(books.income, books.fund, -(1_000 + n)),
            ],
        ));
    }
    let posted = ledger::post_many(&mut tx, &run, "Ann", now())
        .await
        .unwrap();
    assert_eq!(posted.len(), 200);
    assert_eq!(posted[0].1, "JNL-2026-000001");
    assert_eq!(posted[2].1, "JNL-2026-000002");
    assert_eq!(posted[1].1, "JNL-2027-000001");
    assert_eq!(posted[199].1, "JNL-2027-000100");
    // A single posting afterwards takes the next number.
    let (_, next) = ledger::post(
        &mut tx,
        &journal(
            &a,
            date!(2026 - 06 - 01),
            vec![line(a.debtors, a.fund, 5), line(a.income, a.fund, -5)],
        ),
        "Ann",
        now(),
    )
    .await
    .unwrap();
    assert_eq!(next, "JNL-2026-000101");
    let tb = ledger::trial_balance(&mut tx, s1, date!(2026 - 01 - 01), date!(2026 - 12 - 31))
        .await
        .unwrap();
    assert_eq!(tb.iter().map(|r| r.balance_pence).sum::<i64>(), 0);
    let debtors: i64 = tb
        .iter()
        .filter(|r| r.account_id == a.debtors)
        .map(|r| r.balance_pence)
        .sum();
    // 1,000 + 1,002 + … + 1,198 (the even ones), and the 5p.
    assert_eq!(debtors, (0..100).map(|k| 1_000 + 2 * k).sum::<i64>() + 5);
    tx.commit().await.unwrap();
}
