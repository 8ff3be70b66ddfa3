//! Reading any import file: decoding, the header row, real line numbers, and collecting each
//! line's problems. The templates (`sites.rs`, …) say only what their columns mean.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt::Display;
use std::marker::PhantomData;

use csv::StringRecord;

use super::{FileError, ImportKind, LineError, MAX_FILE_BYTES, MAX_ROWS, ParsedFile};

/// One kind of import file: its columns and how a line becomes a row.
pub(super) trait Template {
    const KIND: ImportKind;
    type Column: ColumnId;
    type Row;

    /// Checks one line, recording every problem on `line`; the row is kept only if there are
    /// none. Called in file order, so a template may remember earlier lines (for duplicates).
    fn check(&mut self, line: &mut Line<'_, Self::Column>) -> Option<Self::Row>;

    /// Makes room for about `rows` rows before checking starts, so that what a template
    /// remembers does not grow (and rehash) line by line.
    fn reserve(&mut self, rows: usize);
}

/// A template's columns, declared with [`columns!`].
pub(super) trait ColumnId: Copy {
    /// `(heading, required)` in template order.
    const TABLE: &'static [(&'static str, bool)];
    fn index(self) -> usize;

    fn heading(self) -> &'static str {
        Self::TABLE
            .get(self.index())
            .map_or("", |(heading, _)| heading)
    }
}

/// Declares a template's column enum; the order is the template's column order.
macro_rules! columns {
    ($name:ident { $($variant:ident => $heading:literal, $required:literal;)+ }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(super) enum $name {
            $($variant,)+
        }

        impl super::reader::ColumnId for $name {
            const TABLE: &'static [(&'static str, bool)] = &[$(($heading, $required)),+];

            fn index(self) -> usize {
                self as usize
            }
        }
    };
}

pub(super) use columns;

/// Checks a whole file with `template`.
pub(super) fn parse<T: Template>(
    bytes: &[u8],
    mut template: T,
) -> Result<ParsedFile<T::Row>, FileError> {
    let text = decode(bytes)?;
    let rows_at_most = check_quotes(text)?.min(MAX_ROWS + 1);
    template.reserve(rows_at_most);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut record = StringRecord::new();
    let mut lines = LineCounter::new(text);

    let header = loop {
        if !read(&mut reader, &mut record, text)? {
            return Err(FileError::Empty);
        }
        if !is_blank(&record) {
            break Header::read::<T::Column>(&record, T::KIND)?;
        }
    };

    let mut file = ParsedFile {
        rows: Vec::with_capacity(rows_at_most),
        errors: Vec::new(),
        data_lines: 0,
    };
    while read(&mut reader, &mut record, text)? {
        if is_blank(&record) {
            continue;
        }
        file.data_lines += 1;
        if file.data_lines > MAX_ROWS {
            return Err(FileError::TooManyRows);
        }
        let number = lines.line_of(&record);
        if let Some(message) = header.misplaced_values(&record) {
            file.errors.push(LineError {
                line: number,
                column: None,
                message,
            });
            continue;
        }
        let mut line = Line {
            number,
            record: &record,
            header: &header,
            errors: &mut file.errors,
            failed: false,
            column: PhantomData,
        };
        let row = template.check(&mut line);
        if let Some(row) = row.filter(|_| !line.failed) {
            file.rows.push(row);
        }
    }
    if file.data_lines == 0 {
        return Err(FileError::NoRows);
    }
    Ok(file)
}

/// Size, UTF-8 and emptiness; drops a leading byte-order mark (Excel writes one).
fn decode(bytes: &[u8]) -> Result<&str, FileError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(FileError::TooLarge);
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| FileError::NotUtf8 {
        line: 1 + newlines(&bytes[..e.valid_up_to()]),
    })?;
    if text.trim().is_empty() {
        return Err(FileError::Empty);
    }
    Ok(text)
}

/// The csv crate reads an unclosed quote as a field running to the end of the file, silently
/// swallowing every later line. Follow the same quoting rules to find where that quote opened.
/// Gives the number of lines, an upper bound on the number of rows.
fn check_quotes(text: &str) -> Result<usize, FileError> {
    #[derive(Clone, Copy)]
    enum State {
        FieldStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let mut state = State::FieldStart;
    let mut line = 1;
    let mut opened_on = 1;
    for b in text.bytes() {
        state = match (state, b) {
            (State::Quoted, b'"') => State::QuoteInQuoted,
            (State::Quoted, _) => State::Quoted,
            (State::QuoteInQuoted, b'"') => State::Quoted,
            (State::FieldStart, b'"') => {
                opened_on = line;
                State::Quoted
            }
            (_, b',' | b'\r' | b'\n') => State::FieldStart,
            _ => State::Unquoted,
        };
        if b == b'\n' {
            line += 1;
        }
    }
    match state {
        State::Quoted => Err(FileError::UnclosedQuote { line: opened_on }),
        _ => Ok(line),
    }
}

/// Reads the next record into `record` (reused, so lines cost no allocation); `false` at the
/// end of the file.
fn read(
    reader: &mut csv::Reader<&[u8]>,
    record: &mut StringRecord,
    text: &str,
) -> Result<bool, FileError> {
    reader.read_record(record).map_err(|e| {
        let byte = e.position().map_or(0, |p| to_usize(p.byte()));
        FileError::Malformed {
            line: 1 + newlines(text.as_bytes().get(..byte).unwrap_or_default()),
        }
    })
}

fn newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Line numbers of records, counted from their byte offsets. The csv crate's own
/// `Position::line()` is wrong after a blank line and with CRLF endings (rust-csv issues #208
/// and #395), both common in files saved from Excel.
struct LineCounter<'t> {
    text: &'t [u8],
    offset: usize,
    line: usize,
}

impl<'t> LineCounter<'t> {
    fn new(text: &'t str) -> Self {
        Self {
            text: text.as_bytes(),
            offset: 0,
            line: 1,
        }
    }

    /// Records come in file order, so counting carries on from the previous one.
    fn line_of(&mut self, record: &StringRecord) -> usize {
        let mut start = record
            .position()
            .map_or(self.offset, |p| to_usize(p.byte()));
        // The offset may point at the end of the previous line or at blank lines before this one.
        while matches!(self.text.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        if let Some(skipped) = self.text.get(self.offset..start) {
            self.line += newlines(skipped);
            self.offset = start;
        }
        self.line
    }
}

/// A line of only separators and spaces is as good as an empty one.
fn is_blank(record: &StringRecord) -> bool {
    record.iter().all(|cell| cell.trim().is_empty())
}

/// Headings match ignoring case, spaces, underscores and hyphens: "Address Line 1" is
/// `address_line_1`.
fn heading_matches(heading: &str, name: &str) -> bool {
    fn fold(s: &str) -> impl Iterator<Item = char> + '_ {
        s.chars()
            .filter(|c| !matches!(c, ' ' | '_' | '-'))
            .flat_map(char::to_lowercase)
    }
    fold(heading).eq(fold(name))
}

/// Where each template column is in the file.
pub(super) struct Header {
    positions: Vec<Option<usize>>,
    /// Columns with no heading. Spreadsheets often add a few empty ones at the right; they are
    /// ignored, but a value under one is an error rather than silently dropped.
    unnamed: Vec<usize>,
    width: usize,
}

impl Header {
    fn read<C: ColumnId>(record: &StringRecord, kind: ImportKind) -> Result<Self, FileError> {
        let table = C::TABLE;
        let mut positions = vec![None; table.len()];
        let mut unnamed = Vec::new();
        let mut unknown = Vec::new();
        for (i, heading) in record.iter().enumerate() {
            let heading = heading.trim();
            if heading.is_empty() {
                unnamed.push(i);
                continue;
            }
            match table
                .iter()
                .position(|(name, _)| heading_matches(heading, name))
            {
                Some(column) => {
                    if positions[column].replace(i).is_some() {
                        return Err(FileError::DuplicateColumn(table[column].0));
                    }
                }
                None => unknown.push(heading.to_owned()),
            }
        }
        let missing: Vec<&'static str> = table
            .iter()
            .zip(&positions)
            .filter(|((_, required), position)| *required && position.is_none())
            .map(|((name, _), _)| *name)
            .collect();
        if !missing.is_empty() || !unknown.is_empty() {
            return Err(FileError::Columns {
                kind,
                missing,
                unknown,
            });
        }
        Ok(Self {
            positions,
            unnamed,
            width: record.len(),
        })
    }

    /// A value beyond the header's last column or under a column with no heading: the line's
    /// values are probably shifted, so checking them column by column would mislead.
    fn misplaced_values(&self, record: &StringRecord) -> Option<String> {
        let filled = |i: usize| record.get(i).is_some_and(|cell| !cell.trim().is_empty());
        if (self.width..record.len()).any(filled) {
            return Some(
                "This line has more values than the header row has columns. Check for an extra \
                 comma, or put a value that contains commas in quotation marks."
                    .to_owned(),
            );
        }
        let unnamed = self.unnamed.iter().copied().find(|&i| filled(i))?;
        Some(format!(
            "This line has a value in column {}, which has no heading. Give the column a \
             heading from the template or remove the value.",
            unnamed + 1
        ))
    }
}

/// One line being checked: its cells by template column, and the problems found so far.
pub(super) struct Line<'a, C> {
    number: usize,
    record: &'a StringRecord,
    header: &'a Header,
    errors: &'a mut Vec<LineError>,
    failed: bool,
    column: PhantomData<C>,
}

impl<'a, C: ColumnId> Line<'a, C> {
    /// The 1-based line number in the file.
    pub(super) fn number(&self) -> usize {
        self.number
    }

    /// The trimmed value, or "" when blank or when the optional column is not in the file.
    /// A line shorter than the header counts its missing values as blank: older Excel drops
    /// trailing empty cells from long files.
    pub(super) fn cell(&self, column: C) -> &'a str {
        let record: &'a StringRecord = self.record;
        self.header
            .positions
            .get(column.index())
            .copied()
            .flatten()
            .and_then(|i| record.get(i))
            .map_or("", str::trim)
    }

    pub(super) fn is_blank(&self, column: C) -> bool {
        self.cell(column).is_empty()
    }

    /// Records a problem; `message` is a full sentence.
    pub(super) fn error(&mut self, column: C, message: String) {
        self.push(Some(column.heading()), message);
    }

    /// Records a problem with the line as a whole.
    pub(super) fn line_error(&mut self, message: String) {
        self.push(None, message);
    }

    fn push(&mut self, column: Option<&'static str>, message: String) {
        self.failed = true;
        self.errors.push(LineError {
            line: self.number,
            column,
            message,
        });
    }

    /// Whether any problem has been recorded on this line.
    pub(super) fn failed(&self) -> bool {
        self.failed
    }

    /// How many problems this line has so far, to tell whether some step added one.
    pub(super) fn error_count(&self) -> usize {
        self.errors
            .iter()
            .rev()
            .take_while(|e| e.line == self.number)
            .count()
    }

    /// Records "Enter the …" for a value that is needed.
    pub(super) fn missing(&mut self, column: C) {
        let message = format!("Enter the {}.", human(column.heading()));
        self.error(column, message);
    }

    /// The parsed value, or `None` when the cell is blank or wrong (and then why is recorded).
    /// Parse errors are sentences without the final full stop, as in [`crate::uk`].
    pub(super) fn parse<T, E: Display>(
        &mut self,
        column: C,
        parse: impl FnOnce(&'a str) -> Result<T, E>,
    ) -> Option<T> {
        let cell = self.cell(column);
        if cell.is_empty() {
            return None;
        }
        match parse(cell) {
            Ok(value) => Some(value),
            Err(e) => {
                self.error(column, format!("{e}."));
                None
            }
        }
    }

    /// As [`Line::parse`], but a blank cell is an error too.
    pub(super) fn require<T, E: Display>(
        &mut self,
        column: C,
        parse: impl FnOnce(&'a str) -> Result<T, E>,
    ) -> Option<T> {
        if self.is_blank(column) {
            self.missing(column);
            return None;
        }
        self.parse(column, parse)
    }

    /// Optional single-line text of at most `max` characters.
    pub(super) fn text(&mut self, column: C, max: usize) -> Option<String> {
        self.parse(column, |s| text(s, max, false))
    }

    /// Required single-line text of at most `max` characters.
    pub(super) fn required_text(&mut self, column: C, max: usize) -> Option<String> {
        self.require(column, |s| text(s, max, false))
    }

    /// A `|`- or `;`-separated list, each item parsed; every bad item is reported.
    pub(super) fn list<T, E: Display>(
        &mut self,
        column: C,
        parse: impl Fn(&'a str) -> Result<T, E>,
    ) -> Vec<T> {
        let mut items = Vec::new();
        for item in list_items(self.cell(column)) {
            match parse(item) {
                Ok(value) => items.push(value),
                Err(e) => self.error(column, format!("{e}.")),
            }
        }
        items
    }
}

/// The non-blank items of a `|`- or `;`-separated list, trimmed.
pub(super) fn list_items(cell: &str) -> impl Iterator<Item = &str> {
    cell.split(['|', ';'])
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// "address_line_1" → "address line 1", for messages.
pub(super) fn human(heading: &str) -> String {
    heading.replace('_', " ")
}

/// Text without control characters (but with line breaks and tabs if `multiline`), at most
/// `max` characters.
pub(super) fn text(s: &str, max: usize, multiline: bool) -> Result<String, String> {
    let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
    if s.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(
            "This contains a control character, such as a tab or a line break; remove it"
                .to_owned(),
        );
    }
    let length = s.chars().count();
    if length > max {
        return Err(format!(
            "This is {length} characters long; the most allowed is {max}"
        ));
    }
    Ok(s.to_owned())
}

/// A whole number from `min` to `max`.
pub(super) fn whole_number(s: &str, min: i32, max: i32) -> Result<i32, String> {
    s.parse::<i32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("\"{s}\" is not a whole number from {min} to {max}"))
}

/// "yes"/"no" and the usual alternatives.
pub(super) fn yes_no(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "1" => Ok(true),
        "no" | "n" | "false" | "0" => Ok(false),
        _ => Err(format!("\"{s}\" is not yes or no")),
    }
}

/// A site or estate reference: 1–20 letters, digits and hyphens, starting with a letter or
/// digit ("GC-001").
pub(super) fn site_reference(s: &str, noun: &str) -> Result<String, String> {
    reference(s, 20, &['-'], || {
        format!(
            "\"{s}\" is not a valid {noun}; use up to 20 letters, digits and hyphens, \
             starting with a letter or digit, such as GC-001"
        )
    })
}

/// A building or unit reference: 1–30 letters, digits, spaces, hyphens, slashes and full
/// stops, starting with a letter or digit ("Flat 1", "12A", "Block B/2").
pub(super) fn unit_reference(s: &str, noun: &str) -> Result<String, String> {
    reference(s, 30, &[' ', '-', '/', '.'], || {
        format!(
            "\"{s}\" is not a valid {noun}; use up to 30 letters, digits, spaces, hyphens, \
             slashes and full stops, such as Flat 1"
        )
    })
}

/// A contact's own reference in another system: 1–30 letters, digits, hyphens, slashes,
/// full stops and underscores ("C-00123").
pub(super) fn contact_reference(s: &str) -> Result<String, String> {
    reference(s, 30, &['-', '/', '.', '_'], || {
        format!(
            "\"{s}\" is not a valid contact reference; use up to 30 letters, digits, hyphens, \
             slashes, full stops and underscores, such as C-00123"
        )
    })
}

fn reference(
    s: &str,
    max: usize,
    punctuation: &[char],
    message: impl FnOnce() -> String,
) -> Result<String, String> {
    let mut chars = s.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || punctuation.contains(&c));
    if first_ok && rest_ok && s.len() <= max {
        Ok(s.to_owned())
    } else {
        Err(message())
    }
}

/// A case-insensitive key from several cells, for spotting duplicates.
pub(super) fn key(parts: &[&str]) -> String {
    let mut key = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push('\u{1f}');
        }
        key.extend(part.chars().flat_map(char::to_lowercase));
    }
    key
}

/// Equal ignoring case.
pub(super) fn same_text(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

/// The line each key was first seen on.
#[derive(Debug, Default)]
pub(super) struct FirstSeen(HashMap<String, usize>);

impl FirstSeen {
    pub(super) fn reserve(&mut self, keys: usize) {
        self.0.reserve(keys);
    }

    /// The earlier line with this key; if there is none, remembers this line for it.
    pub(super) fn earlier(&mut self, key: String, line: usize) -> Option<usize> {
        match self.0.entry(key) {
            Entry::Occupied(first) => Some(*first.get()),
            Entry::Vacant(slot) => {
                slot.insert(line);
                None
            }
        }
    }
}
