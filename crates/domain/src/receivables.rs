//! What leaseholders owe and pay (issue 6; docs-spec §2.6): the kinds and states of debtor
//! invoices, payment methods, settling open lines oldest first, the ground-rent notice's
//! window, the prescribed texts' placeholders, and the ageing buckets.

use time::Date;

/// What a demand is for; it decides which prescribed text the demand must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvoiceKind {
    /// A service-charge demand: must carry the summary of tenants' rights and obligations.
    ServiceCharge,
    /// A ground-rent demand: must be in the prescribed notice form, due 30–60 days after it.
    GroundRent,
    /// Admin fees, one-off charges and anything else.
    Other,
}

impl InvoiceKind {
    pub const ALL: [Self; 3] = [Self::ServiceCharge, Self::GroundRent, Self::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServiceCharge => "service_charge",
            Self::GroundRent => "ground_rent",
            Self::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::ServiceCharge => "Service charge demand",
            Self::GroundRent => "Ground rent demand",
            Self::Other => "Invoice",
        }
    }

    /// The prescribed text the demand carries, if any.
    pub fn statutory_kind(self) -> Option<&'static str> {
        match self {
            Self::ServiceCharge => Some("service_charge_summary"),
            Self::GroundRent => Some("ground_rent_notice"),
            Self::Other => None,
        }
    }
}

/// A debtor invoice's state (docs-spec §2.6): draft → awaiting approval → approved → sent →
/// part paid → paid, or voided by a credit note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvoiceStatus {
    Draft,
    AwaitingApproval,
    Approved,
    Sent,
    PartPaid,
    Paid,
    Voided,
}

impl InvoiceStatus {
    pub const ALL: [Self; 7] = [
        Self::Draft,
        Self::AwaitingApproval,
        Self::Approved,
        Self::Sent,
        Self::PartPaid,
        Self::Paid,
        Self::Voided,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::AwaitingApproval => "awaiting_approval",
            Self::Approved => "approved",
            Self::Sent => "sent",
            Self::PartPaid => "part_paid",
            Self::Paid => "paid",
            Self::Voided => "voided",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Draft => "Draft",
            Self::AwaitingApproval => "Awaiting approval",
            Self::Approved => "Approved",
            Self::Sent => "Sent",
            Self::PartPaid => "Part paid",
            Self::Paid => "Paid",
            Self::Voided => "Voided",
        }
    }

    /// Posted and not voided: it counts towards what the unit owes.
    pub fn is_open_or_settled(self) -> bool {
        matches!(
            self,
            Self::Approved | Self::Sent | Self::PartPaid | Self::Paid
        )
    }
}

/// How money was received or paid back (docs-spec §2.6 "Payment methods").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentMethod {
    BankTransfer,
    Cheque,
    Card,
    DirectDebit,
    Cash,
    Other,
}

impl PaymentMethod {
    pub const ALL: [Self; 6] = [
        Self::BankTransfer,
        Self::Cheque,
        Self::Card,
        Self::DirectDebit,
        Self::Cash,
        Self::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BankTransfer => "bank_transfer",
            Self::Cheque => "cheque",
            Self::Card => "card",
            Self::DirectDebit => "direct_debit",
            Self::Cash => "cash",
            Self::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::BankTransfer => "Bank transfer",
            Self::Cheque => "Cheque",
            Self::Card => "Card",
            Self::DirectDebit => "Direct Debit",
            Self::Cash => "Cash",
            Self::Other => "Other",
        }
    }

    /// "by card", "by bank transfer", "in cash": for sentences in the history.
    pub fn phrase(self) -> &'static str {
        match self {
            Self::BankTransfer => "by bank transfer",
            Self::Cheque => "by cheque",
            Self::Card => "by card",
            Self::DirectDebit => "by Direct Debit",
            Self::Cash => "in cash",
            Self::Other => "by another method",
        }
    }
}

/// Splits `amount` over open balances in the order given (oldest first), each taking what it
/// still owes until the money runs out. Returns (index, amount) for the balances that take
/// something; whatever is left over is credit on account.
pub fn settle_in_order(amount: i64, open: &[i64]) -> (Vec<(usize, i64)>, i64) {
    let mut left = amount.max(0);
    let mut taken = Vec::new();
    for (i, owed) in open.iter().enumerate() {
        if left == 0 {
            break;
        }
        let take = left.min((*owed).max(0));
        if take > 0 {
            taken.push((i, take));
            left -= take;
        }
    }
    (taken, left)
}

/// A ground-rent notice must fall due not less than 30 nor more than 60 days after the day it
/// is given (Commonhold and Leasehold Reform Act 2002, s.166(3)).
pub fn ground_rent_due_in_window(given_on: Date, due_on: Date) -> bool {
    let days = (due_on - given_on).whole_days();
    (30..=60).contains(&days)
}

/// Fills `{name}` placeholders from `values`; a placeholder without a value is left as it is,
/// so a missing field shows rather than vanishing.
pub fn fill_placeholders(body: &str, values: &[(&str, String)]) -> String {
    let mut out = body.to_owned();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// The placeholders left in a filled text, if any: a demand is not issued with blanks.
pub fn unfilled_placeholders(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end)
                if end > 0
                    && after[..end]
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_') =>
            {
                found.push(after[..end].to_owned());
                rest = &after[end + 1..];
            }
            _ => rest = after,
        }
    }
    found
}

/// The ageing buckets of the aged-debt report (issue 6): not yet due, then days overdue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AgeBucket {
    Current,
    Upto30,
    Upto60,
    Upto90,
    Over90,
}

impl AgeBucket {
    pub const ALL: [Self; 5] = [
        Self::Current,
        Self::Upto30,
        Self::Upto60,
        Self::Upto90,
        Self::Over90,
    ];

    /// The bucket of a balance due on `due` as at `as_at`.
    pub fn of(due: Date, as_at: Date) -> Self {
        let overdue = (as_at - due).whole_days();
        match overdue {
            ..=0 => Self::Current,
            1..=30 => Self::Upto30,
            31..=60 => Self::Upto60,
            61..=90 => Self::Upto90,
            _ => Self::Over90,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Current => "Current",
            Self::Upto30 => "1–30 days",
            Self::Upto60 => "31–60 days",
            Self::Upto90 => "61–90 days",
            Self::Over90 => "Over 90 days",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// The most receipts one batch records.
pub const MAX_BATCH_ROWS: usize = 1000;

/// One row of a receipt batch as typed or pasted: which unit, how much, and the payer's
/// reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRow {
    /// The row's number as the person entering it counts (header and blank lines included).
    pub row: usize,
    pub unit_reference: String,
    pub amount_pence: i64,
    pub reference: Option<String>,
}

/// Whether `head` and `tail` are one amount split at its thousands comma: "1" and "250.00",
/// "£12" and "500".
fn looks_like_thousands(head: &str, tail: &str) -> bool {
    let head = head.trim().trim_start_matches('£');
    let (whole, pence) = tail.trim().split_once('.').unwrap_or((tail.trim(), ""));
    (1..=3).contains(&head.len())
        && head.chars().all(|c| c.is_ascii_digit())
        && whole.len() == 3
        && whole.chars().all(|c| c.is_ascii_digit())
        && pence.len() <= 2
        && pence.chars().all(|c| c.is_ascii_digit())
}

/// Splits one line at `delimiter`, outside double quotes (a quote inside quotes is written
/// twice). Fields are trimmed; None if a quote is left open or text follows a closing quote.
fn split_fields(line: &str, delimiter: char) -> Option<Vec<String>> {
    let (mut fields, mut field) = (Vec::new(), String::new());
    let mut chars = line.chars().peekable();
    loop {
        while chars
            .next_if(|c| *c != delimiter && c.is_whitespace())
            .is_some()
        {}
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next()? {
                    '"' if chars.next_if_eq(&'"').is_some() => field.push('"'),
                    '"' => break,
                    c => field.push(c),
                }
            }
            while chars
                .next_if(|c| *c != delimiter && c.is_whitespace())
                .is_some()
            {}
            match chars.next() {
                None => {
                    fields.push(std::mem::take(&mut field));
                    return Some(fields);
                }
                Some(c) if c == delimiter => fields.push(std::mem::take(&mut field)),
                Some(_) => return None,
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field.trim().to_owned());
                        return Some(fields);
                    }
                    Some(c) if c == delimiter => {
                        fields.push(field.trim().to_owned());
                        field.clear();
                        break;
                    }
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

/// Reads a receipt batch pasted from a spreadsheet or typed, one receipt a row: unit reference,
/// amount, then optionally the payment reference. Columns are separated by tabs if there are
/// any (as a spreadsheet pastes them), else by commas (quote an amount written "1,250.00").
/// Blank lines and a heading row are skipped. Every problem is reported, each with its row.
pub fn parse_batch_rows(text: &str) -> Result<Vec<BatchRow>, Vec<String>> {
    let delimiter = if text.contains('\t') { '\t' } else { ',' };
    let (mut rows, mut problems) = (Vec::new(), Vec::new());
    // A receipt never spans lines, so each line is read on its own: its number is the row's.
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let Some(record) = split_fields(line, delimiter) else {
            problems.push(format!("Row {n}: could not be read; check its quotes."));
            continue;
        };
        let fields: Vec<&str> = record.iter().map(String::as_str).collect();
        if fields.iter().all(|f| f.is_empty()) {
            continue;
        }
        let unit = fields.first().copied().unwrap_or_default();
        let amount = fields.get(1).copied().unwrap_or_default();
        // The heading row: first, naming its columns (no figures in the amount's place).
        if rows.is_empty()
            && problems.is_empty()
            && unit.to_lowercase().starts_with("unit")
            && !amount.is_empty()
            && !amount.chars().any(|c| c.is_ascii_digit())
        {
            continue;
        }
        // "F1,1,250.00" typed without quotes: the thousands comma split the amount.
        if delimiter == ','
            && fields.len() >= 3
            && looks_like_thousands(amount, fields.get(2).copied().unwrap_or_default())
        {
            problems.push(format!(
                "Row {n}: the amount seems to contain a thousands comma; write it without the \
                 comma (1250.00) or in quotes (\"1,250.00\")."
            ));
            continue;
        }
        if fields.len() > 3 {
            problems.push(format!(
                "Row {n}: has {} columns; give the unit, the amount and the reference only.",
                fields.len()
            ));
            continue;
        }
        if unit.is_empty() {
            problems.push(format!("Row {n}: give the unit's reference."));
            continue;
        }
        let amount_pence = match crate::uk::parse_pounds_to_pence(amount) {
            Ok(p) if p > 0 => p,
            Ok(_) => {
                problems.push(format!("Row {n}: the amount must be more than £0.00."));
                continue;
            }
            Err(_) if amount.is_empty() => {
                problems.push(format!("Row {n}: give the amount received."));
                continue;
            }
            Err(e) => {
                problems.push(format!("Row {n}: the amount \"{amount}\": {e}."));
                continue;
            }
        };
        let reference = fields
            .get(2)
            .copied()
            .filter(|r| !r.is_empty())
            .map(str::to_owned);
        if reference.as_ref().is_some_and(|r| r.chars().count() > 100) {
            problems.push(format!(
                "Row {n}: the payment reference is at most 100 characters."
            ));
            continue;
        }
        rows.push(BatchRow {
            row: n,
            unit_reference: unit.to_owned(),
            amount_pence,
            reference,
        });
    }
    if rows.is_empty() && problems.is_empty() {
        problems.push("Give at least one row: unit reference, amount, payment reference.".into());
    }
    if rows.len() > MAX_BATCH_ROWS {
        problems.push(format!(
            "A batch records at most {MAX_BATCH_ROWS} receipts; this one has {}. Split it.",
            rows.len()
        ));
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_rows_come_pasted_with_tabs_or_typed_with_commas() {
        let pasted = "Unit\tAmount\tReference\nFLAT-1\t£1,250.00\tSMITH F1\n\nFLAT-2\t300\t\n";
        let rows = parse_batch_rows(pasted).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0],
            BatchRow {
                row: 2,
                unit_reference: "FLAT-1".into(),
                amount_pence: 125_000,
                reference: Some("SMITH F1".into()),
            }
        );
        assert_eq!(
            (rows[1].row, rows[1].amount_pence, rows[1].reference.clone()),
            (4, 30_000, None)
        );

        let typed = "FLAT-3, \"1,000.50\", DD 4411\nFLAT-4,12.5";
        let rows = parse_batch_rows(typed).unwrap();
        assert_eq!(rows[0].amount_pence, 100_050);
        assert_eq!(rows[1].amount_pence, 1_250);
    }

    #[test]
    fn every_bad_batch_row_is_named() {
        let problems =
            parse_batch_rows("FLAT-1,12.345\n,10\nFLAT-2,-5\nFLAT-3\nFLAT-4,1,a,b").unwrap_err();
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(
            problems[0].starts_with("Row 1: the amount \"12.345\""),
            "{problems:?}"
        );
        assert_eq!(problems[1], "Row 2: give the unit's reference.");
        assert!(
            problems[2].starts_with("Row 3: the amount \"-5\""),
            "{problems:?}"
        );
        assert_eq!(problems[3], "Row 4: give the amount received.");
        assert!(problems[4].starts_with("Row 5: has 4 columns"));
        assert!(parse_batch_rows("\n \n").is_err());
        // An unquoted thousands comma is refused, not read as £1.00 with reference "250.00".
        for typed in ["F1,1,250.00", "F1,£12,500", "F1,1,250.00,REF"] {
            let p = parse_batch_rows(typed).unwrap_err();
            assert!(p[0].contains("thousands comma"), "{typed}: {p:?}");
        }
        assert_eq!(
            parse_batch_rows("F1,1,REF 250").unwrap()[0].amount_pence,
            100
        );
        // A first row that looks like a heading but carries a figure is a row, and reported.
        let p = parse_batch_rows("Unit 1,12.345").unwrap_err();
        assert!(p[0].starts_with("Row 1: the amount"), "{p:?}");
        assert!(parse_batch_rows("UNIT-1,").unwrap_err()[0].starts_with("Row 1: give the amount"));
        assert_eq!(
            parse_batch_rows("FLAT-1, \"12").unwrap_err(),
            vec!["Row 1: could not be read; check its quotes.".to_owned()]
        );
        let many: String = (0..1001).map(|i| format!("U{i},1\n")).collect();
        assert!(parse_batch_rows(&many).unwrap_err()[0].contains("at most 1000"));
    }
    use time::macros::date;

    #[test]
    fn money_settles_the_oldest_balances_first_and_the_rest_is_credit() {
        assert_eq!(
            settle_in_order(500, &[300, 100, 400]),
            (vec![(0, 300), (1, 100), (2, 100)], 0)
        );
        assert_eq!(
            settle_in_order(1_000, &[300, 0, 400]),
            (vec![(0, 300), (2, 400)], 300)
        );
        assert_eq!(settle_in_order(0, &[300]), (vec![], 0));
    }

    #[test]
    fn a_ground_rent_notice_falls_due_30_to_60_days_after_it_is_given() {
        let given = date!(2026 - 03 - 01);
        assert!(!ground_rent_due_in_window(given, date!(2026 - 03 - 30)));
        assert!(ground_rent_due_in_window(given, date!(2026 - 03 - 31)));
        assert!(ground_rent_due_in_window(given, date!(2026 - 04 - 30)));
        assert!(!ground_rent_due_in_window(given, date!(2026 - 05 - 01)));
    }

    #[test]
    fn placeholders_are_filled_and_blanks_are_found() {
        let filled = fill_placeholders(
            "To: {leaseholder}. Due on {due_date}; {not a placeholder}",
            &[("leaseholder", "Mr R Patel".into())],
        );
        assert_eq!(
            filled,
            "To: Mr R Patel. Due on {due_date}; {not a placeholder}"
        );
        assert_eq!(unfilled_placeholders(&filled), vec!["due_date".to_owned()]);
    }

    #[test]
    fn balances_age_by_days_overdue() {
        let due = date!(2026 - 01 - 01);
        assert_eq!(
            AgeBucket::of(due, date!(2026 - 01 - 01)),
            AgeBucket::Current
        );
        assert_eq!(AgeBucket::of(due, date!(2026 - 01 - 31)), AgeBucket::Upto30);
        assert_eq!(AgeBucket::of(due, date!(2026 - 02 - 01)), AgeBucket::Upto60);
        assert_eq!(AgeBucket::of(due, date!(2026 - 04 - 01)), AgeBucket::Upto90);
        assert_eq!(AgeBucket::of(due, date!(2026 - 04 - 02)), AgeBucket::Over90);
    }
}
