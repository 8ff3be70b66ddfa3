//! The leases template: one line per lease of a unit, with its holders, term and ground rent.

use std::collections::HashMap;

use time::Date;

use super::ImportKind;
use super::reader::{
    Line, Template, columns, contact_reference, key, same_text, site_reference, unit_reference,
    whole_number,
};
use crate::EmailAddress;
use crate::dates::long_date;
use crate::uk::{parse_pounds_to_pence, parse_uk_date};

/// Joint leaseholders: at most this many on one lease.
pub const MAX_HOLDERS: usize = 4;
const MAX_REVIEW: usize = 200;

columns!(Column {
    SiteReference => "site_reference", true;
    UnitReference => "unit_reference", true;
    Holders => "holders", true;
    StartDate => "start_date", true;
    EndDate => "end_date", false;
    TermYears => "term_years", false;
    GroundRent => "ground_rent", false;
    GroundRentReview => "ground_rent_review", false;
    S48NoticeDate => "s48_notice_date", false;
});

pub(super) const EXAMPLE: [&str; 9] = [
    "GC-001",
    "Flat 1",
    "C-00123|john.doe@example.com",
    "24/06/1985",
    "23/06/2110",
    "125",
    "250.00",
    "Doubles every 25 years",
    "01/04/2020",
];

/// Who holds a lease: a contact in the contacts file or already in PropLink, by reference or
/// by e-mail address. The database layer finds them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Holder {
    Reference(String),
    Email(EmailAddress),
}

impl Holder {
    /// Anything with an "@" is an e-mail address; anything else a contact reference.
    fn parse(s: &str) -> Result<Self, String> {
        if s.contains('@') {
            EmailAddress::parse(s)
                .map(Self::Email)
                .map_err(|e| e.to_string())
        } else {
            contact_reference(s).map(Self::Reference)
        }
    }

    /// The same holder, ignoring case.
    fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Reference(a), Self::Reference(b)) => same_text(a, b),
            (Self::Email(a), Self::Email(b)) => same_text(a.as_str(), b.as_str()),
            _ => false,
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Reference(reference) => f.write_str(reference),
            Self::Email(email) => write!(f, "{email}"),
        }
    }
}

/// One lease ready to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    /// Line of the file (the header is line 1).
    pub line: usize,
    pub site_reference: String,
    pub unit_reference: String,
    /// One to [`MAX_HOLDERS`], in the order given, without repeats.
    pub holders: Vec<Holder>,
    pub start_date: Date,
    /// The last day of the term, after the start date.
    pub end_date: Option<Date>,
    pub term_years: Option<i32>,
    pub ground_rent_pence: Option<i64>,
    /// As written, e.g. "Doubles every 25 years".
    pub ground_rent_review: Option<String>,
    /// When the landlord's address for notices was given (Landlord and Tenant Act 1987, s.48).
    pub s48_notice_date: Option<Date>,
}

impl LeaseRow {
    /// The last day of the term: the end date, or else the day before the term's last
    /// anniversary; `None` when neither is known.
    pub fn expiry(&self) -> Option<Date> {
        expiry(self.start_date, self.end_date, self.term_years)
    }
}

fn expiry(start: Date, end: Option<Date>, term_years: Option<i32>) -> Option<Date> {
    if end.is_some() {
        return end;
    }
    let year = start.year().checked_add(term_years?)?;
    // A term starting on 29 February runs to the 28th in a year that is not a leap year.
    let anniversary = Date::from_calendar_date(year, start.month(), start.day())
        .or_else(|_| Date::from_calendar_date(year, start.month(), start.day() - 1))
        .ok()?;
    anniversary.previous_day()
}

/// A lease already seen in the file, for spotting repeats and overlaps.
#[derive(Debug, Clone, Copy)]
struct Term {
    start: Date,
    expiry: Option<Date>,
    /// Whether `expiry` is right; it is not when the end date or term could not be read.
    known: bool,
    line: usize,
}

impl Term {
    /// One may start on the day the other ends: a surrender and regrant often does.
    fn overlaps(&self, other: &Term) -> bool {
        let before = |start: Date, expiry: Option<Date>| expiry.is_none_or(|e| start < e);
        before(self.start, other.expiry) && before(other.start, self.expiry)
    }

    fn describe(&self) -> String {
        match self.expiry {
            Some(expiry) => format!("{} to {}", long_date(self.start), long_date(expiry)),
            None => format!("from {}, with no end date", long_date(self.start)),
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Leases {
    /// Terms seen so far, by site and unit.
    terms: HashMap<String, Vec<Term>>,
}

impl Template for Leases {
    const KIND: ImportKind = ImportKind::Leases;
    type Column = Column;
    type Row = LeaseRow;

    fn reserve(&mut self, rows: usize) {
        self.terms.reserve(rows);
    }

    fn check(&mut self, line: &mut Line<'_, Column>) -> Option<LeaseRow> {
        let site_reference = line.require(Column::SiteReference, |s| {
            site_reference(s, "site reference")
        });
        let unit_reference = line.require(Column::UnitReference, |s| {
            unit_reference(s, "unit reference")
        });
        let holders = holders(line);
        let start_date = line.require(Column::StartDate, parse_uk_date);
        let errors_before_term = line.error_count();
        let end_date = line.parse(Column::EndDate, parse_uk_date);
        if let (Some(start), Some(end)) = (start_date, end_date)
            && end <= start
        {
            line.error(
                Column::EndDate,
                format!(
                    "The end date must be after the start date ({}).",
                    long_date(start)
                ),
            );
        }
        let term_years = line.parse(Column::TermYears, |s| whole_number(s, 1, 999));
        let term_known = line.error_count() == errors_before_term;
        let ground_rent_pence = line.parse(Column::GroundRent, parse_pounds_to_pence);
        let ground_rent_review = line.text(Column::GroundRentReview, MAX_REVIEW);
        let s48_notice_date = line.parse(Column::S48NoticeDate, parse_uk_date);

        if let (Some(site), Some(unit), Some(start)) =
            (&site_reference, &unit_reference, start_date)
        {
            let term = Term {
                start,
                expiry: expiry(start, end_date, term_years),
                known: term_known,
                line: line.number(),
            };
            self.check_unit(line, site, unit, term);
        }

        if line.failed() {
            return None;
        }
        Some(LeaseRow {
            line: line.number(),
            site_reference: site_reference?,
            unit_reference: unit_reference?,
            holders,
            start_date: start_date?,
            end_date,
            term_years,
            ground_rent_pence,
            ground_rent_review,
            s48_notice_date,
        })
    }
}

impl Leases {
    /// The same lease twice (same unit and start), or two leases of one unit at the same time.
    /// A term whose end is unreadable is left out of the overlap check: it could only cause
    /// false alarms.
    fn check_unit(&mut self, line: &mut Line<'_, Column>, site: &str, unit: &str, term: Term) {
        let terms = self.terms.entry(key(&[site, unit])).or_default();
        if let Some(earlier) = terms.iter().find(|earlier| earlier.start == term.start) {
            line.error(
                Column::StartDate,
                format!(
                    "A lease of {unit} at {site} starting on {} is already on line {} of this \
                     file.",
                    long_date(term.start),
                    earlier.line
                ),
            );
            return;
        }
        let overlapping = terms
            .iter()
            .filter(|earlier| earlier.known && term.known)
            .find(|earlier| earlier.overlaps(&term));
        if let Some(earlier) = overlapping {
            line.line_error(format!(
                "This lease overlaps the lease of the same unit on line {} ({}). A unit has one \
                 lease at a time; check the start and end dates.",
                earlier.line,
                earlier.describe()
            ));
        }
        terms.push(term);
    }
}

/// One to four holders, each a contact reference or an e-mail address, none twice.
fn holders(line: &mut Line<'_, Column>) -> Vec<Holder> {
    if line.is_blank(Column::Holders) {
        line.missing(Column::Holders);
        return Vec::new();
    }
    let errors_before = line.error_count();
    let holders = line.list(Column::Holders, Holder::parse);
    for (i, holder) in holders.iter().enumerate() {
        if holders[..i].iter().any(|earlier| earlier.same(holder)) {
            line.error(Column::Holders, format!("\"{holder}\" is listed twice."));
        }
    }
    if holders.len() > MAX_HOLDERS {
        line.error(
            Column::Holders,
            format!(
                "A lease has at most {MAX_HOLDERS} holders (joint leaseholders); this line \
                 lists {}.",
                holders.len()
            ),
        );
    }
    if holders.is_empty() && line.error_count() == errors_before {
        line.missing(Column::Holders);
    }
    holders
}

#[cfg(test)]
mod tests {
    use super::super::{LineError, ParsedFile, parse_leases};
    use super::*;
    use time::macros::date;

    const HEADER: &str = "site_reference,unit_reference,holders,start_date,end_date,term_years,\
                          ground_rent,ground_rent_review,s48_notice_date\n";

    fn parsed(body: &str) -> ParsedFile<LeaseRow> {
        parse_leases(format!("{HEADER}{body}").as_bytes()).unwrap()
    }

    fn columns(body: &str) -> Vec<Option<&'static str>> {
        parsed(body).errors.iter().map(|e| e.column).collect()
    }

    #[test]
    fn a_lease_line_becomes_a_row_with_dates_holders_and_ground_rent_in_pence() {
        let file = parsed(
            "GC-001,Flat 1,C-00123 | John.Doe@Example.com,24/06/1985,2110-06-23,125,\
             \"£1,250.50\",Doubles every 25 years,01/04/2020\n",
        );
        assert_eq!(file.errors, vec![]);
        let row = &file.rows[0];
        assert_eq!(
            row.holders,
            vec![
                Holder::Reference("C-00123".to_owned()),
                Holder::Email(EmailAddress::parse("John.Doe@example.com").unwrap()),
            ]
        );
        assert_eq!(row.start_date, date!(1985 - 06 - 24));
        assert_eq!(row.end_date, Some(date!(2110 - 06 - 23)));
        assert_eq!(row.term_years, Some(125));
        assert_eq!(row.ground_rent_pence, Some(125_050));
        assert_eq!(row.s48_notice_date, Some(date!(2020 - 04 - 01)));
    }

    #[test]
    fn the_expiry_comes_from_the_end_date_or_else_the_term() {
        let file = parsed(
            "GC-001,Flat 1,C-1,24/06/1985,,125,,,\n\
             GC-001,Flat 2,C-2,29/02/2000,,99,,,\n\
             GC-001,Flat 3,C-3,01/01/2000,,,,,\n",
        );
        assert_eq!(file.errors, vec![]);
        let expiries: Vec<_> = file.rows.iter().map(LeaseRow::expiry).collect();
        assert_eq!(
            expiries,
            vec![
                Some(date!(2110 - 06 - 23)),
                Some(date!(2099 - 02 - 27)),
                None
            ]
        );
    }

    #[test]
    fn a_lease_needs_one_to_four_distinct_holders() {
        assert_eq!(
            columns("GC-001,Flat 1,,01/01/2000,,,,,\n"),
            vec![Some("holders")]
        );
        assert_eq!(
            columns("GC-001,Flat 1, | ,01/01/2000,,,,,\n"),
            vec![Some("holders")]
        );
        assert!(parsed("GC-001,Flat 1,A|B|C|D,01/01/2000,,,,,\n").is_clean());
        let file = parsed("GC-001,Flat 1,A|B|C|D|E,01/01/2000,,,,,\n");
        assert_eq!(
            file.errors[0].message,
            "A lease has at most 4 holders (joint leaseholders); this line lists 5."
        );
        let file = parsed("GC-001,Flat 1,a@x.com|C-1|A@X.COM,01/01/2000,,,,,\n");
        assert_eq!(file.errors[0].message, "\"A@x.com\" is listed twice.");
        assert_eq!(
            columns("GC-001,Flat 1,bad@|C 1,01/01/2000,,,,,\n"),
            vec![Some("holders"), Some("holders")]
        );
    }

    #[test]
    fn lease_dates_and_amounts_are_checked() {
        let file = parsed("GC-001,Flat 1,C-1,31/02/2000,13/13/2000,1000,-5,,yesterday\n");
        let found: Vec<_> = file.errors.iter().map(|e| e.column).collect();
        assert_eq!(
            found,
            vec![
                Some("start_date"),
                Some("end_date"),
                Some("term_years"),
                Some("ground_rent"),
                Some("s48_notice_date"),
            ]
        );
        assert_eq!(
            columns("GC-001,Flat 1,C-1,,,,,,\n"),
            vec![Some("start_date")]
        );
    }

    #[test]
    fn a_lease_must_end_after_it_starts() {
        assert_eq!(
            parsed("GC-001,Flat 1,C-1,01/01/2000,01/01/2000,,,,\n").errors,
            vec![LineError {
                line: 2,
                column: Some("end_date"),
                message: "The end date must be after the start date (1 January 2000).".to_owned(),
            }]
        );
    }

    #[test]
    fn the_same_lease_twice_is_an_error_on_the_later_line() {
        let file = parsed(
            "GC-001,Flat 1,C-1,01/01/2000,,,,,\n\
             gc-001,flat 1,C-2,2000-01-01,,,,,\n",
        );
        assert_eq!(
            file.errors,
            vec![LineError {
                line: 3,
                column: Some("start_date"),
                message: "A lease of flat 1 at gc-001 starting on 1 January 2000 is already on \
                          line 2 of this file."
                    .to_owned(),
            }]
        );
    }

    #[test]
    fn overlapping_leases_of_one_unit_are_an_error_on_the_later_line() {
        let file = parsed(
            "GC-001,Flat 1,C-1,01/01/2000,31/12/2009,,,,\n\
             GC-001,Flat 2,C-2,01/01/2005,,,,,\n\
             GC-001,Flat 1,C-3,01/06/2009,,,,,\n",
        );
        assert_eq!(
            file.errors,
            vec![LineError {
                line: 4,
                column: None,
                message: "This lease overlaps the lease of the same unit on line 2 (1 January \
                          2000 to 31 December 2009). A unit has one lease at a time; check the \
                          start and end dates."
                    .to_owned(),
            }]
        );
    }

    #[test]
    fn a_lease_may_start_on_the_day_the_previous_one_ends() {
        let file = parsed(
            "GC-001,Flat 1,C-1,01/01/2000,,10,,,\n\
             GC-001,Flat 1,C-2,31/12/2009,,,,,\n",
        );
        assert!(file.is_clean(), "{:?}", file.errors);
        let file = parsed(
            "GC-001,Flat 1,C-1,01/01/2000,,,,,\n\
             GC-001,Flat 1,C-2,01/01/2100,,,,,\n",
        );
        assert_eq!(
            file.errors.len(),
            1,
            "an open-ended lease overlaps anything later"
        );
    }

    #[test]
    fn a_lease_with_an_unreadable_end_does_not_cause_overlap_errors() {
        let file = parsed(
            "GC-001,Flat 1,C-1,01/01/2000,soon,,,,\n\
             GC-001,Flat 1,C-2,01/01/2010,,,,,\n",
        );
        let lines: Vec<_> = file.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2]);
    }
}
