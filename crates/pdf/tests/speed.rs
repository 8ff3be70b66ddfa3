//! How fast a one-page statement renders on one core. Ignored by default (it means something
//! only in a release build):
//! `cargo test --release -p proplink-pdf --test speed -- --ignored --nocapture`.

use proplink_pdf::{Document, Organisation, Party, Statement, StatementRow, render, warm_up};
use std::time::{Duration, Instant};
use time::macros::date;

/// A one-page statement whose figures differ with `seed`, so no render is a cache hit.
fn statement(seed: i64) -> Document {
    let mut balance = seed;
    let rows = (0..20)
        .map(|i| {
            let debit = 2_500 + seed % 97 + i;
            balance += debit;
            StatementRow {
                date: date!(2026 - 04 - 01),
                description: format!("Service charge, quarter {i} (ref {seed})"),
                debit_pence: debit,
                credit_pence: 0,
                balance_pence: balance,
            }
        })
        .collect();
    Statement {
        org: Organisation {
            name: "Goldcrest Property Management Ltd".into(),
            address_lines: vec!["2 Wharf Street".into(), "Bristol BS1 4RN".into()],
            logo_png: None,
        },
        to: Party {
            name: format!("Leaseholder {seed}"),
            address_lines: vec!["Flat 4, Goldcrest House".into(), "Bristol BS8 1AA".into()],
        },
        unit: "Flat 4".into(),
        site: "Goldcrest House".into(),
        from: date!(2026 - 04 - 01),
        to_date: date!(2027 - 03 - 31),
        opening_pence: seed,
        rows,
        closing_pence: balance,
        overdue_pence: 0,
    }
    .into()
}

#[test]
#[ignore = "a measurement, for release builds"]
fn one_page_statements_per_second_on_one_core() {
    let started = Instant::now();
    warm_up().unwrap();
    let first = render(&statement(0)).unwrap();
    assert_eq!(first.pages, 1);
    println!("warm-up and first render: {:?}", started.elapsed());

    let n = 300;
    let started = Instant::now();
    for seed in 1..=n {
        render(&statement(seed)).unwrap();
    }
    let took = started.elapsed();
    let per_second = n as f64 / took.as_secs_f64();
    println!(
        "{n} different one-page statements: {took:?}, {:.1} ms each, {per_second:.0}/s",
        took.as_secs_f64() * 1000.0 / n as f64
    );
    assert!(took < Duration::from_secs(n as u64), "slower than 1/s");
}
