//! Importing a portfolio from spreadsheets: one CSV template each for sites, buildings, units,
//! contacts and leases, checked into a preview of the rows to import and the lines to fix.
//!
//! Pure: nothing is stored, and whether a referenced record exists (is there a site GC-001?) is
//! for the database layer. A problem with the whole file (not UTF-8, too big, a bad header row)
//! is a [`FileError`] and no line is used. A problem with one line is a [`LineError`]; every
//! problem on every line is reported, so the file can be fixed in one pass, and the good lines
//! are still returned for the preview. Messages are plain-English sentences for whoever made
//! the spreadsheet; the UI puts "Line N:" in front of line errors, so their messages do not.
//!
//! Rules shared by every template: UTF-8 (a byte-order mark is fine); at most
//! [`MAX_FILE_BYTES`] and [`MAX_ROWS`] rows; a header row whose names match ignoring case,
//! spaces and underscores, in any order; no unknown columns; blank lines skipped; a key repeated
//! within the file is an error on the later line, naming the earlier one.

mod buildings;
mod contacts;
mod leases;
mod reader;
mod sites;
mod units;

use crate::choice::choice_enum;

pub use buildings::BuildingRow;
pub use contacts::ContactRow;
pub use leases::{Holder, LeaseRow};
pub use sites::{Landlord, SiteRow};
pub use units::UnitRow;

use reader::ColumnId;

/// Largest file accepted: 50 MiB.
pub const MAX_FILE_BYTES: usize = 50 * 1024 * 1024;
/// Most data rows one file may hold.
pub const MAX_ROWS: usize = 100_000;

choice_enum! {
    /// The kinds of import, in the order they depend on each other.
    pub enum ImportKind ("kind of import") {
        Sites => "sites", "Sites";
        Buildings => "buildings", "Buildings";
        Units => "units", "Units";
        Contacts => "contacts", "Contacts";
        Leases => "leases", "Leases";
    }
}

impl ImportKind {
    /// `(name, required)` for each column, in template order.
    pub fn columns(self) -> &'static [(&'static str, bool)] {
        match self {
            Self::Sites => sites::Column::TABLE,
            Self::Buildings => buildings::Column::TABLE,
            Self::Units => units::Column::TABLE,
            Self::Contacts => contacts::Column::TABLE,
            Self::Leases => leases::Column::TABLE,
        }
    }

    /// One made-up row that passes every check, in column order.
    fn example(self) -> &'static [&'static str] {
        match self {
            Self::Sites => &sites::EXAMPLE,
            Self::Buildings => &buildings::EXAMPLE,
            Self::Units => &units::EXAMPLE,
            Self::Contacts => &contacts::EXAMPLE,
            Self::Leases => &leases::EXAMPLE,
        }
    }

    /// The "Download template" file: the header row and one example row.
    pub fn template_csv(self) -> String {
        let header: Vec<&str> = self.columns().iter().map(|(name, _)| *name).collect();
        let example: Vec<String> = self.example().iter().map(|v| csv_field(v)).collect();
        format!("{}\r\n{}\r\n", header.join(","), example.join(","))
    }

    /// "proplink-sites-template.csv".
    pub fn template_filename(self) -> String {
        format!("proplink-{}-template.csv", self.key())
    }

    /// Checks an uploaded file of this kind.
    pub fn parse_file(self, bytes: &[u8]) -> Result<ParsedImport, FileError> {
        Ok(match self {
            Self::Sites => ParsedImport::Sites(parse_sites(bytes)?),
            Self::Buildings => ParsedImport::Buildings(parse_buildings(bytes)?),
            Self::Units => ParsedImport::Units(parse_units(bytes)?),
            Self::Contacts => ParsedImport::Contacts(parse_contacts(bytes)?),
            Self::Leases => ParsedImport::Leases(parse_leases(bytes)?),
        })
    }
}

/// Quotes a value if it holds a comma, quotation mark or line break.
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// Checks a sites file.
pub fn parse_sites(bytes: &[u8]) -> Result<ParsedFile<SiteRow>, FileError> {
    reader::parse(bytes, sites::Sites::default())
}

/// Checks a buildings file.
pub fn parse_buildings(bytes: &[u8]) -> Result<ParsedFile<BuildingRow>, FileError> {
    reader::parse(bytes, buildings::Buildings::default())
}

/// Checks a units file.
pub fn parse_units(bytes: &[u8]) -> Result<ParsedFile<UnitRow>, FileError> {
    reader::parse(bytes, units::Units::default())
}

/// Checks a contacts file.
pub fn parse_contacts(bytes: &[u8]) -> Result<ParsedFile<ContactRow>, FileError> {
    reader::parse(bytes, contacts::Contacts::default())
}

/// Checks a leases file.
pub fn parse_leases(bytes: &[u8]) -> Result<ParsedFile<LeaseRow>, FileError> {
    reader::parse(bytes, leases::Leases::default())
}

/// The result of checking a file: the good rows and what needs fixing, both in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedFile<T> {
    pub rows: Vec<T>,
    pub errors: Vec<LineError>,
    /// Non-blank lines under the header, good or bad.
    pub data_lines: usize,
}

impl<T> ParsedFile<T> {
    /// Every line is good.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }
}

/// A checked file of any kind, for pages that handle every kind alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedImport {
    Sites(ParsedFile<SiteRow>),
    Buildings(ParsedFile<BuildingRow>),
    Units(ParsedFile<UnitRow>),
    Contacts(ParsedFile<ContactRow>),
    Leases(ParsedFile<LeaseRow>),
}

impl ParsedImport {
    pub fn kind(&self) -> ImportKind {
        match self {
            Self::Sites(_) => ImportKind::Sites,
            Self::Buildings(_) => ImportKind::Buildings,
            Self::Units(_) => ImportKind::Units,
            Self::Contacts(_) => ImportKind::Contacts,
            Self::Leases(_) => ImportKind::Leases,
        }
    }

    pub fn errors(&self) -> &[LineError] {
        match self {
            Self::Sites(f) => &f.errors,
            Self::Buildings(f) => &f.errors,
            Self::Units(f) => &f.errors,
            Self::Contacts(f) => &f.errors,
            Self::Leases(f) => &f.errors,
        }
    }

    /// How many rows are good.
    pub fn row_count(&self) -> usize {
        match self {
            Self::Sites(f) => f.rows.len(),
            Self::Buildings(f) => f.rows.len(),
            Self::Units(f) => f.rows.len(),
            Self::Contacts(f) => f.rows.len(),
            Self::Leases(f) => f.rows.len(),
        }
    }

    pub fn data_lines(&self) -> usize {
        match self {
            Self::Sites(f) => f.data_lines,
            Self::Buildings(f) => f.data_lines,
            Self::Units(f) => f.data_lines,
            Self::Contacts(f) => f.data_lines,
            Self::Leases(f) => f.data_lines,
        }
    }
}

/// A problem with one line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number in the file; the header is line 1.
    pub line: usize,
    /// The template column at fault (e.g. `"postcode"`), or `None` for the line as a whole.
    pub column: Option<&'static str>,
    /// A full sentence, without the "Line N:" prefix.
    pub message: String,
}

/// A problem with the file as a whole; no line of it is used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("The file is empty.")]
    Empty,
    #[error("The file is larger than 50 MiB. Split it into smaller files.")]
    TooLarge,
    #[error(
        "The file is not UTF-8 text (the first problem is on line {line}). In Excel, use \
         Save As, choose \"CSV UTF-8 (Comma delimited)\" and upload the new file."
    )]
    NotUtf8 { line: usize },
    #[error(
        "A quotation mark on line {line} is never closed, so the rest of the file cannot be \
         read. Check that line for a stray \" character."
    )]
    UnclosedQuote { line: usize },
    #[error("Line {line} could not be read as CSV.")]
    Malformed { line: usize },
    #[error("{}", columns_message(*.kind, .missing, .unknown))]
    Columns {
        kind: ImportKind,
        /// Required columns the header lacks.
        missing: Vec<&'static str>,
        /// Headings that are not in the template, as written (trimmed).
        unknown: Vec<String>,
    },
    #[error("The \"{0}\" column appears more than once in the header row.")]
    DuplicateColumn(&'static str),
    #[error("The file has a header row but nothing under it.")]
    NoRows,
    #[error(
        "The file has more than 100,000 rows. Split it into files of at most 100,000 rows each."
    )]
    TooManyRows,
}

fn columns_message(kind: ImportKind, missing: &[&str], unknown: &[String]) -> String {
    let quoted = |names: &mut dyn Iterator<Item = &str>| {
        names
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut message = String::new();
    if !missing.is_empty() {
        message += &format!(
            "The header row is missing {}: {}. ",
            plural(missing.len(), "the column", "the columns"),
            quoted(&mut missing.iter().copied())
        );
    }
    if !unknown.is_empty() {
        message += &format!(
            "Remove or rename {} PropLink does not use: {}. ",
            plural(unknown.len(), "the column", "the columns"),
            quoted(&mut unknown.iter().map(String::as_str))
        );
    }
    let columns: Vec<String> = kind
        .columns()
        .iter()
        .map(|(name, required)| match required {
            true => format!("{name}*"),
            false => (*name).to_owned(),
        })
        .collect();
    message
        + &format!(
            "The columns of a {} file are: {} (* = required).",
            kind.key(),
            columns.join(", ")
        )
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

#[cfg(test)]
mod tests;
