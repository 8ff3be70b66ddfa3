//! The subject-access file (UK GDPR Art. 15, and Art. 20 portability): everything held about
//! one contact as a ZIP of a README saying what each file is, the whole record as one JSON
//! document, and one CSV per part (profile, e-mails, leases, audit events, ...), each CSV with a
//! byte-order mark and its cells made safe from formula injection, as every export is.

use super::audit_log::neutralise;
use serde_json::Value;
use std::io::Write;
use time::OffsetDateTime;
use zip::write::SimpleFileOptions;

/// The parts of `people::subject_access`'s document written as CSV files, with what each holds.
const PARTS: [(&str, &str, &str); 9] = [
    (
        "emails",
        "emails.csv",
        "the e-mail addresses held, in order of use",
    ),
    ("phones", "phones.csv", "the phone numbers held"),
    (
        "roles",
        "roles.csv",
        "their roles (leaseholder, tenant, director, ...)",
    ),
    (
        "positions",
        "positions.csv",
        "positions as an officer of a company, or the officers of theirs",
    ),
    (
        "leases",
        "leases.csv",
        "the leases they hold or held, with unit and site",
    ),
    (
        "occupancies",
        "occupancies.csv",
        "the units they occupy or occupied",
    ),
    (
        "merged_records",
        "merged-records.csv",
        "duplicate records merged into this one",
    ),
    (
        "emails_sent",
        "emails-sent.csv",
        "e-mails sent to their addresses (recipient, subject, status, time)",
    ),
    (
        "audit_events",
        "audit-events.csv",
        "every recorded change to these records: when, by whom, through which door, what changed",
    ),
];

/// Who the file is about and who produced it, for the README.
pub(super) struct Cover<'a> {
    pub organisation: &'a str,
    pub contact: &'a str,
    pub produced_by: &'a str,
    pub produced_on: String,
    /// Now, in UK time.
    pub now: OffsetDateTime,
}

/// The ZIP's bytes.
pub(super) fn zip_file(document: &Value, cover: &Cover<'_>) -> Result<Vec<u8>, String> {
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("README.txt".to_owned(), readme(cover).into_bytes()),
        (
            "personal-data.json".to_owned(),
            serde_json::to_vec_pretty(document).map_err(|e| e.to_string())?,
        ),
        (
            "profile.csv".to_owned(),
            profile_csv(document.get("contact").unwrap_or(&Value::Null))?,
        ),
    ];
    for (key, name, _) in PARTS {
        let rows = document
            .get(key)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        files.push((name.to_owned(), table_csv(rows)?));
    }

    // ZIP times carry no zone: the UK wall-clock time the file was made.
    let local = cover.now;
    let modified =
        zip::DateTime::try_from(time::PrimitiveDateTime::new(local.date(), local.time()))
            .unwrap_or_default();
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(modified);
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in files {
        zip.start_file(name, options).map_err(|e| e.to_string())?;
        zip.write_all(&bytes).map_err(|e| e.to_string())?;
    }
    Ok(zip.finish().map_err(|e| e.to_string())?.into_inner())
}

fn readme(cover: &Cover<'_>) -> String {
    let mut text = format!(
        "Personal data held by {org} about {contact}\r\n\
         \r\n\
         Produced on {on} by {by}, in answer to a subject access request under UK GDPR\r\n\
         Article 15 (a request is answered within one calendar month of receiving it).\r\n\
         \r\n\
         personal-data.json  everything below in one machine-readable file (Article 20)\r\n\
         profile.csv         the contact record: name, address, preferences, notes\r\n",
        org = cover.organisation,
        contact = cover.contact,
        on = cover.produced_on,
        by = cover.produced_by,
    );
    for (_, name, what) in PARTS {
        text.push_str(&format!("{name:<20}{what}\r\n"));
    }
    text.push_str(
        "\r\nThe CSV files open in a spreadsheet (UTF-8). Values in audit-events.csv that read\r\n\
         \"[redacted]\" are secrets never stored in the log; \"[erased]\" marks data erased on request.\r\n",
    );
    text
}

/// The contact record as two columns, field and value.
fn profile_csv(contact: &Value) -> Result<Vec<u8>, String> {
    let mut csv = writer();
    csv.write_record(["field", "value"])
        .map_err(|e| e.to_string())?;
    if let Some(fields) = contact.as_object() {
        for (field, value) in fields {
            csv.write_record([field.clone(), neutralise(cell(value))])
                .map_err(|e| e.to_string())?;
        }
    }
    csv.into_inner().map_err(|e| e.to_string())
}

/// An array of objects as a table: one column per key, in the order keys first appear (each
/// object's keys in alphabetical order, as the JSON document holds them); an
/// array of plain values as one column, `value`.
fn table_csv(rows: &[Value]) -> Result<Vec<u8>, String> {
    let mut columns: Vec<String> = Vec::new();
    for row in rows {
        if let Some(object) = row.as_object() {
            for key in object.keys() {
                if !columns.contains(key) {
                    columns.push(key.clone());
                }
            }
        }
    }
    let mut csv = writer();
    if columns.is_empty() {
        csv.write_record(["value"]).map_err(|e| e.to_string())?;
        for row in rows {
            csv.write_record([neutralise(cell(row))])
                .map_err(|e| e.to_string())?;
        }
    } else {
        csv.write_record(&columns).map_err(|e| e.to_string())?;
        for row in rows {
            let record = columns
                .iter()
                .map(|c| neutralise(cell(row.get(c).unwrap_or(&Value::Null))));
            csv.write_record(record).map_err(|e| e.to_string())?;
        }
    }
    csv.into_inner().map_err(|e| e.to_string())
}

fn writer() -> csv::Writer<Vec<u8>> {
    csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec())
}

/// A JSON value as a spreadsheet cell: text as itself, nothing as empty, the rest as JSON.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(bytes: &[u8]) -> String {
        String::from_utf8(bytes.to_vec()).unwrap_or_default()
    }

    #[test]
    fn tables_take_every_key_in_order_and_neutralise_formulas() {
        let rows = [
            json!({"seq": 1, "by": "Priya", "changes": {"name": {"new": "=HYPERLINK(1)"}}}),
            json!({"seq": 2, "at": "2026-05-01", "by": "@admin"}),
        ];
        let csv = text(&table_csv(&rows).unwrap_or_default());
        let mut lines = csv.trim_start_matches('\u{feff}').lines();
        assert_eq!(lines.next(), Some("by,changes,seq,at"));
        assert_eq!(
            lines.next(),
            Some(r#"Priya,"{""name"":{""new"":""=HYPERLINK(1)""}}",1,"#)
        );
        assert_eq!(lines.next(), Some("'@admin,,2,2026-05-01"));
    }

    #[test]
    fn plain_lists_are_one_column() {
        let csv = text(&table_csv(&[json!("a@example.com"), json!("=1+1")]).unwrap_or_default());
        assert_eq!(
            csv.trim_start_matches('\u{feff}'),
            "value\na@example.com\n'=1+1\n"
        );
    }
}
