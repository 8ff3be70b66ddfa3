//! The rules every template shares, tested through the units and sites templates.

use super::*;

const UNITS_HEADER: &str = "site_reference,reference,name\n";

fn units(text: &str) -> Result<ParsedFile<UnitRow>, FileError> {
    parse_units(text.as_bytes())
}

#[test]
fn every_template_example_row_is_accepted() {
    for kind in ImportKind::ALL {
        let parsed = kind.parse_file(kind.template_csv().as_bytes()).unwrap();
        assert_eq!(parsed.errors(), [], "{kind:?}");
        assert_eq!(
            (parsed.row_count(), parsed.data_lines()),
            (1, 1),
            "{kind:?}"
        );
        assert_eq!(parsed.kind(), *kind);
    }
}

#[test]
fn a_template_is_the_header_row_and_one_example_row() {
    assert_eq!(
        ImportKind::Units.template_csv(),
        "site_reference,reference,name,building_reference,floor,type,square_metres,\
         parking_spaces,uprn,address_line_1,address_line_2,city,postcode\r\n\
         GC-001,Flat 1,\"Flat 1, Block A\",A,Ground,flat,72.5,1,100023336956,,,,\r\n"
    );
    assert_eq!(
        ImportKind::Leases.template_filename(),
        "proplink-leases-template.csv"
    );
}

#[test]
fn each_kind_lists_its_columns_with_the_required_ones_marked() {
    let required: Vec<&str> = ImportKind::Leases
        .columns()
        .iter()
        .filter(|(_, required)| *required)
        .map(|(name, _)| *name)
        .collect();
    assert_eq!(
        required,
        ["site_reference", "unit_reference", "holders", "start_date"]
    );
    assert!(ImportKind::Contacts.columns().iter().all(|(_, r)| !r));
    assert_eq!(ImportKind::parse("Units"), Ok(ImportKind::Units));
}

#[test]
fn a_latin1_file_is_refused_with_the_line_to_fix() {
    let mut bytes = format!("{UNITS_HEADER}GC-001,Flat 1,Caf\u{e9}\n").into_bytes();
    bytes.extend_from_slice(b"GC-001,Flat 2,Caf\xE9\n"); // Windows-1252 "é"
    let err = parse_units(&bytes).unwrap_err();
    assert_eq!(err, FileError::NotUtf8 { line: 3 });
    let message = err.to_string();
    assert!(message.contains("line 3"), "{message}");
    assert!(message.contains("\"CSV UTF-8"), "{message}");
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let file = units(&format!("\u{feff}{UNITS_HEADER}GC-001,Flat 1,Flat 1\n")).unwrap();
    assert_eq!(file.rows.len(), 1);
}

#[test]
fn headings_match_ignoring_case_spaces_and_underscores_in_any_order() {
    let file = units(" Name ,SITE REFERENCE,Reference\nFlat 1,GC-001,F1\n").unwrap();
    assert_eq!(file.errors, vec![]);
    assert_eq!(file.rows[0].site_reference, "GC-001");
    assert_eq!(file.rows[0].reference, "F1");
    assert_eq!(file.rows[0].name, "Flat 1");
}

#[test]
fn unknown_columns_are_refused_by_name_with_the_columns_expected() {
    let err = units("site_reference,reference,name,Tenure,Notes\n").unwrap_err();
    assert_eq!(
        err,
        FileError::Columns {
            kind: ImportKind::Units,
            missing: vec![],
            unknown: vec!["Tenure".to_owned(), "Notes".to_owned()],
        }
    );
    let message = err.to_string();
    assert!(
        message.starts_with(
            "Remove or rename the columns PropLink does not use: \"Tenure\", \"Notes\". \
             The columns of a units file are: site_reference*, reference*, name*, \
             building_reference,"
        ),
        "{message}"
    );
}

#[test]
fn missing_required_columns_are_all_named() {
    let err = units("name,floor\nFlat 1,1\n").unwrap_err();
    assert_eq!(
        err,
        FileError::Columns {
            kind: ImportKind::Units,
            missing: vec!["site_reference", "reference"],
            unknown: vec![],
        }
    );
    assert!(
        err.to_string().starts_with(
            "The header row is missing the columns: \"site_reference\", \"reference\"."
        ),
        "{err}"
    );
}

#[test]
fn a_column_given_twice_is_refused() {
    assert_eq!(
        units("site_reference,reference,name,Site Reference\n").unwrap_err(),
        FileError::DuplicateColumn("site_reference")
    );
}

#[test]
fn an_empty_file_or_a_header_alone_is_refused() {
    for empty in ["", " \r\n\n", "\u{feff}", ",,\n,\n"] {
        assert_eq!(units(empty).unwrap_err(), FileError::Empty, "{empty:?}");
    }
    assert_eq!(units(UNITS_HEADER).unwrap_err(), FileError::NoRows);
    assert_eq!(
        units(&format!("{UNITS_HEADER}\n,,\n")).unwrap_err(),
        FileError::NoRows
    );
}

#[test]
fn blank_lines_are_skipped_and_line_numbers_stay_true() {
    let text = "\r\n\u{20}site_reference,reference,name\r\n\
                \r\n\
                GC-001,F1,\"Flat\r\nOne\"\r\n\
                ,,\r\n\
                GC-001,,Flat 2\r\n\
                GC-001,F3,Flat 3\r\n";
    let file = units(text).unwrap();
    let rows: Vec<usize> = file.rows.iter().map(|r| r.line).collect();
    assert_eq!(rows, vec![8]);
    // A name may not hold a line break; the cell that does starts on line 4.
    let errors: Vec<(usize, Option<&str>)> =
        file.errors.iter().map(|e| (e.line, e.column)).collect();
    assert_eq!(errors, vec![(4, Some("name")), (7, Some("reference"))]);
    assert_eq!(file.data_lines, 3);
}

#[test]
fn an_unclosed_quote_is_refused_naming_the_line_it_opens_on() {
    let err = units(&format!(
        "{UNITS_HEADER}GC-001,F1,Flat 1\nGC-001,\"F2,Flat 2\nGC-001,F3,Flat 3\n"
    ))
    .unwrap_err();
    assert_eq!(err, FileError::UnclosedQuote { line: 3 });
}

#[test]
fn a_line_with_extra_values_is_one_error_for_the_whole_line() {
    let file = units(&format!(
        "{UNITS_HEADER}GC-001,F1,Flat 1,oops\nGC-001,F2,Flat 2,,\n"
    ))
    .unwrap();
    assert_eq!(file.rows.len(), 1, "empty extra cells are harmless");
    assert_eq!(file.errors.len(), 1);
    assert_eq!((file.errors[0].line, file.errors[0].column), (2, None));
    assert!(
        file.errors[0]
            .message
            .starts_with("This line has more values than the header row has columns.")
    );
}

#[test]
fn a_short_line_counts_its_missing_values_as_blank() {
    let file = units("site_reference,reference,name,floor,type\nGC-001,F1,Flat 1\n").unwrap();
    assert_eq!(file.errors, vec![]);
    assert_eq!(file.rows[0].floor, None);
}

#[test]
fn columns_without_headings_are_ignored_unless_they_hold_a_value() {
    let file =
        units("site_reference,reference,name,,\nGC-001,F1,Flat 1,,\nGC-001,F2,Flat 2,,stray\n")
            .unwrap();
    assert_eq!(file.rows.len(), 1);
    assert_eq!(
        file.errors,
        vec![LineError {
            line: 3,
            column: None,
            message: "This line has a value in column 5, which has no heading. Give the column \
                      a heading from the template or remove the value."
                .to_owned(),
        }]
    );
}

#[test]
fn every_problem_on_every_line_is_reported_and_good_lines_are_kept() {
    let file = parse_units(
        b"site_reference,reference,name,type,postcode\n\
          GC 1,,Flat 1,igloo,nowhere\n\
          GC-001,F2,Flat 2,,\n\
          ,F3,,,SW1A1AA\n",
    )
    .unwrap();
    assert_eq!(file.rows.len(), 1);
    assert_eq!(file.rows[0].line, 3);
    let found: Vec<(usize, Option<&str>)> =
        file.errors.iter().map(|e| (e.line, e.column)).collect();
    assert_eq!(
        found,
        vec![
            (2, Some("site_reference")),
            (2, Some("reference")),
            (2, Some("type")),
            (2, Some("postcode")),
            (4, Some("site_reference")),
            (4, Some("name")),
        ]
    );
    assert!(!file.is_clean());
}

#[test]
fn messages_are_sentences_without_a_line_prefix() {
    let file = units(&format!(
        "{UNITS_HEADER}GC 1,,Flat 1\n,F3,\nGC-001,F4,Flat 4,x\n"
    ))
    .unwrap();
    assert!(!file.errors.is_empty());
    for e in &file.errors {
        assert!(!e.message.starts_with("Line"), "{}", e.message);
        assert!(e.message.ends_with('.'), "{}", e.message);
    }
}

#[test]
fn control_characters_and_overlong_text_are_refused() {
    let file = units(&format!(
        "{UNITS_HEADER}GC-001,F1,\"Fl\tat\"\nGC-001,F2,{}\n",
        "x".repeat(201)
    ))
    .unwrap();
    let messages: Vec<&str> = file.errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "This contains a control character, such as a tab or a line break; remove it.",
            "This is 201 characters long; the most allowed is 200.",
        ]
    );
}

fn units_file(rows: usize) -> String {
    let mut text = String::with_capacity(rows * 80);
    text.push_str(
        "site_reference,reference,name,building_reference,floor,type,square_metres,\
         parking_spaces,uprn,postcode\n",
    );
    for i in 0..rows {
        let site = i / 1000;
        text.push_str(&format!(
            "GC-{site:03},Flat {i},Flat {i},A,{},flat,{}.5,1,{},SW1A 1AA\n",
            i % 20,
            40 + i % 60,
            100_000_000 + i
        ));
    }
    text
}

#[test]
fn a_file_of_100000_units_is_all_accepted() {
    let file = parse_units(units_file(MAX_ROWS).as_bytes()).unwrap();
    assert_eq!(file.errors, vec![]);
    assert_eq!(file.rows.len(), MAX_ROWS);
    assert_eq!(file.rows.last().map(|r| r.line), Some(MAX_ROWS + 1));
}

#[test]
fn more_than_100000_rows_are_refused() {
    let err = parse_units(units_file(MAX_ROWS + 1).as_bytes()).unwrap_err();
    assert_eq!(err, FileError::TooManyRows);
    assert!(err.to_string().contains("at most 100,000 rows"), "{err}");
}

#[test]
fn a_file_over_50_mib_is_refused() {
    let mut big = UNITS_HEADER.as_bytes().to_vec();
    big.resize(MAX_FILE_BYTES + 1, b'\n');
    assert_eq!(parse_units(&big).unwrap_err(), FileError::TooLarge);
    big.truncate(MAX_FILE_BYTES);
    assert_eq!(parse_units(&big).unwrap_err(), FileError::NoRows);
}
