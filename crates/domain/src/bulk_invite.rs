//! Bulk invitations (Settings → Users and access → Bulk invite): the CSV an administrator
//! uploads, checked into a preview of the people to invite and the lines to fix.
//!
//! Pure: nothing is sent or stored here. A problem with the whole file (not UTF-8, too big, a
//! bad header row) is a [`FileError`]. A problem with one line is a [`LineError`], and every
//! line's problems are reported together so the file can be fixed in one pass. Messages are
//! plain-English sentences for whoever made the spreadsheet; the UI puts "Line N:" in front of
//! line errors, so their messages do not.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, HashSet};

use csv::StringRecord;
use uuid::Uuid;

use crate::EmailAddress;
use crate::permissions::Scope;

/// Largest file accepted: 1 MiB.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Most people one file may invite.
pub const MAX_PEOPLE: usize = 500;
/// Longest first or last name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// What the organisation already has, to match the file against.
#[derive(Debug, Clone, Copy)]
pub struct Lookup<'a> {
    /// `(key, display name)`; a role is written in the file by either, in any case.
    pub roles: &'a [(String, String)],
    /// `(id, reference such as "GC-001", name)`.
    pub sites: &'a [(Uuid, String, String)],
    /// `(id, reference such as "EST-001", name)`.
    pub estates: &'a [(Uuid, String, String)],
    /// Addresses of current members; compared without regard to case.
    pub existing_emails: &'a [String],
}

/// One person ready to invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteRow {
    /// Line of the file the person is on (the header is line 1).
    pub line: usize,
    pub email: EmailAddress,
    /// "First Last", or just "First" when the last name is blank.
    pub name: String,
    /// The role's key from [`Lookup::roles`].
    pub role: String,
    pub scope: Scope,
}

/// A problem with one line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number in the file; the header is line 1.
    pub line: usize,
    /// The column at fault (`"email"`, `"first name"`, `"last name"`, `"role"`, `"scope"`),
    /// or `None` when the problem is the line as a whole.
    pub column: Option<&'static str>,
    /// A full sentence, without the "Line N:" prefix.
    pub message: String,
}

/// The result of checking a file: who can be invited and what needs fixing, both in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preview {
    pub rows: Vec<InviteRow>,
    pub errors: Vec<LineError>,
}

/// A problem with the file as a whole; no line of it is used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("The file is empty.")]
    Empty,
    #[error("The file is larger than 1 MiB. Split it into smaller files.")]
    TooLarge,
    #[error(
        "The file is not UTF-8 text (the first problem is on line {line}). \
         In Excel, save it as \"CSV UTF-8 (Comma delimited)\" and upload it again."
    )]
    NotUtf8 { line: usize },
    #[error(
        "A quotation mark on line {line} is never closed, so the rest of the file cannot be \
         read. Check that line for a stray \" character."
    )]
    UnclosedQuote { line: usize },
    #[error("Line {line} could not be read as CSV.")]
    Malformed { line: usize },
    #[error("{}", columns_message(.missing, .unknown))]
    Columns {
        /// Expected columns the header lacks.
        missing: Vec<&'static str>,
        /// Headings that are not ours, as written (trimmed; empty for a column with no heading).
        unknown: Vec<String>,
    },
    #[error("The \"{0}\" column appears more than once in the header row.")]
    DuplicateColumn(&'static str),
    #[error("The file has a header row but nobody to invite.")]
    NoPeople,
    #[error("The file lists more than 500 people. At most 500 people per file; split it.")]
    TooManyPeople,
}

/// Checks an uploaded bulk-invite CSV against what the organisation has.
pub fn parse(bytes: &[u8], lookup: &Lookup<'_>) -> Result<Preview, FileError> {
    let text = decode(bytes)?;
    check_quotes(text)?;
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
            break Header::read(&record)?;
        }
    };

    let mut checker = Checker::new(*lookup);
    let mut preview = Preview::default();
    let mut people = 0;
    while read(&mut reader, &mut record, text)? {
        if is_blank(&record) {
            continue;
        }
        people += 1;
        if people > MAX_PEOPLE {
            return Err(FileError::TooManyPeople);
        }
        match checker.check(lines.line_of(&record), &header, &record) {
            Ok(row) => preview.rows.push(row),
            Err(errors) => preview.errors.extend(errors),
        }
    }
    if people == 0 {
        return Err(FileError::NoPeople);
    }
    Ok(preview)
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
fn check_quotes(text: &str) -> Result<(), FileError> {
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
        _ => Ok(()),
    }
}

/// Reads the next record; `false` at the end of the file.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Email,
    FirstName,
    LastName,
    Role,
    Scope,
}

impl Column {
    const ALL: [Self; 5] = [
        Self::Email,
        Self::FirstName,
        Self::LastName,
        Self::Role,
        Self::Scope,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::FirstName => "first name",
            Self::LastName => "last name",
            Self::Role => "role",
            Self::Scope => "scope",
        }
    }

    /// Ignores case, spaces and punctuation, so "First Name", "first_name" and "FIRSTNAME"
    /// all match; also takes the British "forename" and "surname".
    fn from_heading(heading: &str) -> Option<Self> {
        let key: String = heading
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect();
        match key.as_str() {
            "email" | "emailaddress" => Some(Self::Email),
            "firstname" | "forename" => Some(Self::FirstName),
            "lastname" | "surname" => Some(Self::LastName),
            "role" => Some(Self::Role),
            "scope" => Some(Self::Scope),
            _ => None,
        }
    }
}

fn columns_message(missing: &[&str], unknown: &[String]) -> String {
    let mut message = String::new();
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|m| format!("\"{m}\"")).collect();
        message += &format!(
            "The header row is missing {}: {}. ",
            plural(missing.len(), "the column", "the columns"),
            names.join(", ")
        );
    }
    if !unknown.is_empty() {
        let names: Vec<String> = unknown
            .iter()
            .map(|u| match u.as_str() {
                "" => "a column with no heading".to_owned(),
                u => format!("\"{u}\""),
            })
            .collect();
        message += &format!(
            "Remove {} PropLink does not use: {}. ",
            plural(unknown.len(), "the column", "the columns"),
            names.join(", ")
        );
    }
    message + "The columns are: email, first name, last name, role, scope."
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// Where each of our columns is in the file.
struct Header {
    index: [usize; 5],
    width: usize,
}

impl Header {
    fn read(record: &StringRecord) -> Result<Self, FileError> {
        let mut index = [None; 5];
        let mut unknown = Vec::new();
        for (i, heading) in record.iter().enumerate() {
            let heading = heading.trim();
            match Column::from_heading(heading) {
                Some(column) => {
                    if index[column as usize].replace(i).is_some() {
                        return Err(FileError::DuplicateColumn(column.label()));
                    }
                }
                None => unknown.push(heading.to_owned()),
            }
        }
        let missing: Vec<_> = Column::ALL
            .into_iter()
            .filter(|&c| index[c as usize].is_none())
            .map(Column::label)
            .collect();
        match index {
            [Some(a), Some(b), Some(c), Some(d), Some(e)] if unknown.is_empty() => Ok(Self {
                index: [a, b, c, d, e],
                width: record.len(),
            }),
            _ => Err(FileError::Columns { missing, unknown }),
        }
    }

    fn cell<'r>(&self, record: &'r StringRecord, column: Column) -> &'r str {
        record.get(self.index[column as usize]).unwrap_or("").trim()
    }
}

/// Checks lines one at a time, remembering addresses already seen in the file.
struct Checker<'a> {
    lookup: Lookup<'a>,
    members: HashSet<String>,
    first_seen: HashMap<String, usize>,
}

impl<'a> Checker<'a> {
    fn new(lookup: Lookup<'a>) -> Self {
        let members = lookup
            .existing_emails
            .iter()
            .map(|e| e.trim().to_lowercase())
            .collect();
        Self {
            lookup,
            members,
            first_seen: HashMap::new(),
        }
    }

    fn check(
        &mut self,
        line: usize,
        header: &Header,
        record: &StringRecord,
    ) -> Result<InviteRow, Vec<LineError>> {
        if record.len() != header.width {
            return Err(vec![LineError {
                line,
                column: None,
                message: format!(
                    "This line has {} values but the header row has {}. \
                     Check for a missing or extra comma.",
                    record.len(),
                    header.width
                ),
            }]);
        }
        let cell = |column| header.cell(record, column);
        let mut problems = Problems {
            line,
            errors: Vec::new(),
        };
        let email = problems.of(
            Column::Email,
            self.email(line, cell(Column::Email)).map_err(one),
        );
        let first = problems.of(
            Column::FirstName,
            name_part(cell(Column::FirstName), "first name", true).map_err(one),
        );
        let last = problems.of(
            Column::LastName,
            name_part(cell(Column::LastName), "last name", false).map_err(one),
        );
        let role = problems.of(Column::Role, self.role(cell(Column::Role)).map_err(one));
        let scope = problems.of(Column::Scope, self.scope(cell(Column::Scope)));
        match (email, first, last, role, scope) {
            (Some(email), Some(first), Some(last), Some(role), Some(scope)) => Ok(InviteRow {
                line,
                email,
                name: format!("{first} {last}").trim().to_owned(),
                role,
                scope,
            }),
            _ => Err(problems.errors),
        }
    }

    fn email(&mut self, line: usize, raw: &str) -> Result<EmailAddress, String> {
        if raw.is_empty() {
            return Err("An e-mail address is required.".to_owned());
        }
        let email = EmailAddress::parse(raw).map_err(|e| format!("{e}."))?;
        let key = email.as_str().to_lowercase();
        if self.members.contains(&key) {
            return Err(format!(
                "\"{email}\" is already a member of this organisation."
            ));
        }
        match self.first_seen.entry(key) {
            Entry::Occupied(earlier) => Err(format!(
                "\"{email}\" is already on line {} of this file.",
                earlier.get()
            )),
            Entry::Vacant(slot) => {
                slot.insert(line);
                Ok(email)
            }
        }
    }

    /// Matches a display name first, then a key; returns the key.
    fn role(&self, raw: &str) -> Result<String, String> {
        let roles = self.lookup.roles;
        let by_name = roles.iter().find(|(_, name)| same(name, raw));
        let by_key = || roles.iter().find(|(key, _)| same(key, raw));
        if let Some((key, _)) = by_name.or_else(by_key).filter(|_| !raw.is_empty()) {
            return Ok(key.clone());
        }
        let names: Vec<&str> = roles.iter().map(|(_, name)| name.as_str()).collect();
        let choose = match names.as_slice() {
            [] => "This organisation has no roles set up yet.".to_owned(),
            names => format!("Choose one of: {}.", names.join(", ")),
        };
        Err(match raw {
            "" => format!("A role is required. {choose}"),
            raw => format!("\"{raw}\" is not a role in this organisation. {choose}"),
        })
    }

    /// Blank or "All sites" (or "all"), "Sites: GC-001; Riverside Court", "Estates: EST-001".
    fn scope(&self, raw: &str) -> Result<Scope, Vec<String>> {
        if raw.is_empty() || same(raw, "all") || same(raw, "all sites") {
            return Ok(Scope::AllSites);
        }
        let kind = raw.split_once(':').map(|(kind, list)| (kind.trim(), list));
        match kind {
            Some((kind, list)) if same(kind, "sites") || same(kind, "site") => {
                pick(list, self.lookup.sites, "site", "Sites: GC-001").map(Scope::Sites)
            }
            Some((kind, list)) if same(kind, "estates") || same(kind, "estate") => {
                pick(list, self.lookup.estates, "estate", "Estates: EST-001").map(Scope::Estates)
            }
            _ => Err(one(format!(
                "\"{raw}\" is not a scope. Leave it blank or write \"All sites\", \
                 \"Sites: GC-001; Riverside Court\" or \"Estates: EST-001\"."
            ))),
        }
    }
}

/// Collects one line's errors, column by column.
struct Problems {
    line: usize,
    errors: Vec<LineError>,
}

impl Problems {
    /// The value if the column is good; otherwise records why and gives `None`.
    fn of<T>(&mut self, column: Column, result: Result<T, Vec<String>>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(messages) => {
                self.errors
                    .extend(messages.into_iter().map(|message| LineError {
                        line: self.line,
                        column: Some(column.label()),
                        message,
                    }));
                None
            }
        }
    }
}

fn one(message: String) -> Vec<String> {
    vec![message]
}

/// Trims; refuses control characters and overlong names.
fn name_part(value: &str, label: &str, required: bool) -> Result<String, String> {
    if required && value.is_empty() {
        return Err(format!("A {label} is required."));
    }
    if value.chars().any(char::is_control) {
        return Err(format!(
            "The {label} contains a control character, such as a tab or a line break. \
             Remove it."
        ));
    }
    if value.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "The {label} is longer than {MAX_NAME_CHARS} characters."
        ));
    }
    Ok(value.to_owned())
}

/// Resolves a `;`- or `|`-separated list of references or names; one message per bad item.
fn pick(
    list: &str,
    places: &[(Uuid, String, String)],
    noun: &str,
    example: &str,
) -> Result<BTreeSet<Uuid>, Vec<String>> {
    let items: Vec<&str> = list
        .split([';', '|'])
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect();
    if items.is_empty() {
        return Err(one(format!(
            "List at least one {noun} reference or name after the colon, \
             for example \"{example}\"."
        )));
    }
    let mut chosen = BTreeSet::new();
    let mut errors = Vec::new();
    for item in items {
        match find_place(item, places, noun) {
            Ok(id) => {
                chosen.insert(id);
            }
            Err(message) => errors.push(message),
        }
    }
    if errors.is_empty() {
        Ok(chosen)
    } else {
        Err(errors)
    }
}

/// A reference wins over a name; a name shared by several places must be given as a reference.
fn find_place(item: &str, places: &[(Uuid, String, String)], noun: &str) -> Result<Uuid, String> {
    if let Some((id, _, _)) = places
        .iter()
        .find(|(_, reference, _)| same(reference, item))
    {
        return Ok(*id);
    }
    let named: Vec<_> = places
        .iter()
        .filter(|(_, _, name)| same(name, item))
        .collect();
    match named.as_slice() {
        [] => Err(format!(
            "There is no {noun} \"{item}\" in this organisation."
        )),
        [(id, _, _)] => Ok(*id),
        several => {
            let references: Vec<&str> = several.iter().map(|(_, r, _)| r.as_str()).collect();
            Err(format!(
                "More than one {noun} is called \"{item}\"; use its reference instead ({}).",
                references.join(", ")
            ))
        }
    }
}

/// Equal ignoring case and surrounding spaces.
fn same(a: &str, b: &str) -> bool {
    fn fold(s: &str) -> impl Iterator<Item = char> + '_ {
        s.trim().chars().flat_map(char::to_lowercase)
    }
    fold(a).eq(fold(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "email,first name,last name,role,scope\n";

    fn site(n: u128) -> Uuid {
        Uuid::from_u128(0x5100 + n)
    }

    fn estate(n: u128) -> Uuid {
        Uuid::from_u128(0xE500 + n)
    }

    struct Org {
        roles: Vec<(String, String)>,
        sites: Vec<(Uuid, String, String)>,
        estates: Vec<(Uuid, String, String)>,
        members: Vec<String>,
    }

    fn owned(a: &str, b: &str) -> (String, String) {
        (a.to_owned(), b.to_owned())
    }

    fn place(id: Uuid, reference: &str, name: &str) -> (Uuid, String, String) {
        (id, reference.to_owned(), name.to_owned())
    }

    fn org() -> Org {
        Org {
            roles: vec![
                owned("admin", "Administrator"),
                owned("property_manager", "Property manager"),
            ],
            sites: vec![
                place(site(1), "GC-001", "Riverside Court"),
                place(site(2), "GC-002", "Harbour View"),
                place(site(3), "GC-003", "The Maltings"),
                place(site(4), "GC-004", "The Maltings"),
            ],
            estates: vec![
                place(estate(1), "EST-001", "Northgate Estate"),
                place(estate(2), "EST-002", "Southbank Estate"),
            ],
            members: vec!["Existing.Member@Goldcrest.co.uk".to_owned()],
        }
    }

    fn check_bytes(bytes: &[u8]) -> Result<Preview, FileError> {
        let org = org();
        let lookup = Lookup {
            roles: &org.roles,
            sites: &org.sites,
            estates: &org.estates,
            existing_emails: &org.members,
        };
        parse(bytes, &lookup)
    }

    fn check(text: &str) -> Result<Preview, FileError> {
        check_bytes(text.as_bytes())
    }

    fn preview(text: &str) -> Preview {
        check(text).unwrap()
    }

    /// The only error of a file with a single bad line.
    fn only_error(text: &str) -> LineError {
        let preview = preview(text);
        assert!(preview.rows.is_empty(), "{:?}", preview.rows);
        assert_eq!(preview.errors.len(), 1, "{:?}", preview.errors);
        preview.errors.into_iter().next().unwrap()
    }

    fn scope_of(scope: &str) -> Result<Scope, Vec<String>> {
        let p = preview(&format!(
            "{HEADER}jane@goldcrest.co.uk,Jane,Doe,Administrator,{scope}\n"
        ));
        match p.rows.as_slice() {
            [row] => Ok(row.scope.clone()),
            _ => Err(p.errors.into_iter().map(|e| e.message).collect()),
        }
    }

    #[test]
    fn a_valid_line_becomes_an_invitation() {
        let p = preview(&format!(
            "{HEADER}  jane.doe@Goldcrest.CO.UK , Jane , Doe ,Property manager,All sites\n"
        ));
        assert_eq!(p.errors, vec![]);
        assert_eq!(
            p.rows,
            vec![InviteRow {
                line: 2,
                email: EmailAddress::parse("jane.doe@goldcrest.co.uk").unwrap(),
                name: "Jane Doe".to_owned(),
                role: "property_manager".to_owned(),
                scope: Scope::AllSites,
            }]
        );
    }

    #[test]
    fn last_name_is_optional_and_the_name_is_then_the_first_name_alone() {
        let p = preview(&format!(
            "{HEADER}cher@goldcrest.co.uk,Cher,,Administrator,\n"
        ));
        assert_eq!(p.rows[0].name, "Cher");
    }

    #[test]
    fn header_matching_ignores_case_spaces_separators_and_column_order() {
        let p = preview(
            " SCOPE ,Role,Surname,First_Name,E-Mail\n\
             Estates: EST-001,administrator,Doe,Jane,jane@goldcrest.co.uk\n",
        );
        assert_eq!(p.errors, vec![]);
        assert_eq!(p.rows[0].name, "Jane Doe");
        assert_eq!(p.rows[0].email.as_str(), "jane@goldcrest.co.uk");
        assert_eq!(p.rows[0].scope, Scope::Estates([estate(1)].into()));
        for heading in [
            "firstname",
            "FirstName",
            "first-name",
            "Forename",
            " first name ",
        ] {
            let file = format!("email,{heading},last name,role,scope\na@b.co,A,B,admin,all\n");
            assert_eq!(preview(&file).rows.len(), 1, "{heading} not accepted");
        }
    }

    #[test]
    fn extra_columns_are_refused_by_name() {
        let err = check("email,first name,last name,role,scope,Phone,\nx\n").unwrap_err();
        assert_eq!(
            err,
            FileError::Columns {
                missing: vec![],
                unknown: vec!["Phone".to_owned(), String::new()],
            }
        );
        let message = err.to_string();
        assert!(message.contains("\"Phone\""), "{message}");
        assert!(message.contains("a column with no heading"), "{message}");
    }

    #[test]
    fn missing_columns_are_refused_by_name() {
        let err = check("email,first name,last name\na@b.co,A,B\n").unwrap_err();
        assert_eq!(
            err,
            FileError::Columns {
                missing: vec!["role", "scope"],
                unknown: vec![],
            }
        );
        assert!(
            err.to_string()
                .starts_with("The header row is missing the columns: \"role\", \"scope\"."),
            "{err}"
        );
    }

    #[test]
    fn a_file_without_a_header_row_reports_missing_and_unknown_columns() {
        let err = check("jane@goldcrest.co.uk,Jane,Doe,Administrator,All sites\n").unwrap_err();
        let FileError::Columns { missing, unknown } = err else {
            panic!("{err:?}");
        };
        assert_eq!(missing.len(), 5);
        assert_eq!(unknown.len(), 5);
    }

    #[test]
    fn a_column_given_twice_is_refused() {
        assert_eq!(
            check("email,first name,First_Name,last name,role,scope\n").unwrap_err(),
            FileError::DuplicateColumn("first name")
        );
    }

    #[test]
    fn an_empty_file_is_refused() {
        for empty in ["", "   \r\n\n", "\u{feff}", ",,,,\n,,\n"] {
            assert_eq!(check(empty).unwrap_err(), FileError::Empty, "{empty:?}");
        }
        assert_eq!(FileError::Empty.to_string(), "The file is empty.");
    }

    #[test]
    fn a_header_with_nobody_under_it_is_refused() {
        assert_eq!(check(HEADER).unwrap_err(), FileError::NoPeople);
        assert_eq!(
            check(&format!("{HEADER}\n,,,,\n")).unwrap_err(),
            FileError::NoPeople
        );
    }

    #[test]
    fn a_file_that_is_not_utf8_is_refused_naming_the_line() {
        let mut bytes =
            format!("{HEADER}jos\u{e9}@goldcrest.co.uk,Jos\u{e9},,admin,\n").into_bytes();
        bytes.extend_from_slice(b"ren\xE9@goldcrest.co.uk,Ren\xE9,,admin,\n"); // Windows-1252
        let err = check_bytes(&bytes).unwrap_err();
        assert_eq!(err, FileError::NotUtf8 { line: 3 });
        assert!(err.to_string().contains("not UTF-8"), "{err}");
    }

    #[test]
    fn a_file_over_one_mebibyte_is_refused() {
        let mut big = HEADER.as_bytes().to_vec();
        big.resize(MAX_FILE_BYTES + 1, b'\n');
        assert_eq!(check_bytes(&big).unwrap_err(), FileError::TooLarge);
        big.truncate(MAX_FILE_BYTES);
        assert_eq!(check_bytes(&big).unwrap_err(), FileError::NoPeople);
    }

    fn people(n: usize) -> String {
        let mut file = HEADER.to_owned();
        for i in 0..n {
            file += &format!("person{i}@goldcrest.co.uk,Person,{i},admin,\n");
        }
        file
    }

    #[test]
    fn at_most_500_people_per_file() {
        assert_eq!(preview(&people(500)).rows.len(), 500);
        let err = check(&people(501)).unwrap_err();
        assert_eq!(err, FileError::TooManyPeople);
        assert!(
            err.to_string()
                .contains("At most 500 people per file; split it.")
        );
    }

    #[test]
    fn blank_lines_do_not_count_towards_the_limit() {
        let file = people(500) + "\n\n,,,,\n";
        assert_eq!(preview(&file).rows.len(), 500);
    }

    #[test]
    fn an_unclosed_quote_is_refused_naming_the_line_it_opens_on() {
        let file = format!(
            "{HEADER}a@goldcrest.co.uk,Ann,,admin,\n\"b@goldcrest.co.uk,Bob,,admin,\nc@goldcrest.co.uk,Cy,,admin,\n"
        );
        let err = check(&file).unwrap_err();
        assert_eq!(err, FileError::UnclosedQuote { line: 3 });
        assert!(err.to_string().contains("line 3"), "{err}");
    }

    #[test]
    fn quoted_fields_may_hold_commas_and_doubled_quotes() {
        let p = preview(&format!(
            "{HEADER}\"kev@goldcrest.co.uk\",\"Kevin, Jr\",\"O\"\"Brien\",admin,\"Sites: GC-001; GC-002\"\n"
        ));
        assert_eq!(p.errors, vec![]);
        assert_eq!(p.rows[0].name, "Kevin, Jr O\"Brien");
        assert_eq!(p.rows[0].scope, Scope::Sites([site(1), site(2)].into()));
    }

    #[test]
    fn line_numbers_are_real_file_lines_despite_blank_lines_bom_crlf_and_multiline_cells() {
        let file = "\u{feff}email,first name,last name,role,scope\r\n\
                    \r\n\
                    ann@goldcrest.co.uk,Ann,,admin,\r\n\
                    bob@goldcrest.co.uk,\"Bob\r\nby\",,admin,\r\n\
                    \r\n\
                    cy@goldcrest.co.uk,Cy,,admin,\r\n\
                    dee@,Dee,,admin,\r\n";
        let p = preview(file);
        let lines: Vec<usize> = p.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![3, 7]);
        let errors: Vec<(usize, Option<&str>)> =
            p.errors.iter().map(|e| (e.line, e.column)).collect();
        assert_eq!(errors, vec![(4, Some("first name")), (8, Some("email"))]);
    }

    #[test]
    fn line_numbers_count_blank_lines_before_the_header_and_between_people() {
        let file = format!("\n\n{HEADER}\nann@goldcrest.co.uk,Ann,,admin,\n\n\nbob@,Bob,,admin,\n");
        let p = preview(&file);
        assert_eq!(p.rows[0].line, 5);
        assert_eq!(p.errors[0].line, 8);
    }

    #[test]
    fn a_bom_before_the_header_is_accepted() {
        let p = preview(&format!("\u{feff}{HEADER}a@goldcrest.co.uk,Ann,,admin,\n"));
        assert_eq!(p.rows.len(), 1);
    }

    #[test]
    fn a_line_with_the_wrong_number_of_values_is_an_error_for_the_whole_line() {
        let e = only_error(&format!("{HEADER}a@goldcrest.co.uk,Ann,admin,\n"));
        assert_eq!(e.line, 2);
        assert_eq!(e.column, None);
        assert!(
            e.message
                .starts_with("This line has 4 values but the header row has 5.")
        );
    }

    #[test]
    fn an_invalid_email_is_reported_in_plain_english() {
        let e = only_error(&format!("{HEADER}bob@,Bob,,admin,\n"));
        assert_eq!(
            e,
            LineError {
                line: 2,
                column: Some("email"),
                message: "\"bob@\" is not a valid e-mail address.".to_owned(),
            }
        );
    }

    #[test]
    fn an_email_is_required() {
        let e = only_error(&format!("{HEADER} ,Bob,,admin,\n"));
        assert_eq!(e.column, Some("email"));
        assert_eq!(e.message, "An e-mail address is required.");
    }

    #[test]
    fn the_second_occurrence_of_an_email_is_the_error_and_names_the_first_line() {
        let p = preview(&format!(
            "{HEADER}ann@goldcrest.co.uk,Ann,,admin,\nbob@goldcrest.co.uk,Bob,,admin,\nANN@Goldcrest.co.uk,Annie,,admin,\n"
        ));
        assert_eq!(p.rows.len(), 2);
        assert_eq!(
            p.errors,
            vec![LineError {
                line: 4,
                column: Some("email"),
                message: "\"ANN@goldcrest.co.uk\" is already on line 2 of this file.".to_owned(),
            }]
        );
    }

    #[test]
    fn an_existing_member_is_refused_whatever_the_case() {
        let e = only_error(&format!(
            "{HEADER}existing.member@GOLDCREST.co.uk,Ex,,admin,\n"
        ));
        assert_eq!(e.column, Some("email"));
        assert_eq!(
            e.message,
            "\"existing.member@goldcrest.co.uk\" is already a member of this organisation."
        );
    }

    #[test]
    fn a_first_name_is_required() {
        let e = only_error(&format!("{HEADER}a@goldcrest.co.uk,  ,Doe,admin,\n"));
        assert_eq!(e.column, Some("first name"));
        assert_eq!(e.message, "A first name is required.");
    }

    #[test]
    fn names_are_at_most_100_characters() {
        let hundred = "é".repeat(100);
        let p = preview(&format!(
            "{HEADER}a@goldcrest.co.uk,{hundred},{hundred},admin,\n"
        ));
        assert_eq!(p.rows.len(), 1);
        let long = "é".repeat(101);
        let p = preview(&format!("{HEADER}a@goldcrest.co.uk,{long},{long},admin,\n"));
        let messages: Vec<(Option<&str>, &str)> = p
            .errors
            .iter()
            .map(|e| (e.column, e.message.as_str()))
            .collect();
        assert_eq!(
            messages,
            vec![
                (
                    Some("first name"),
                    "The first name is longer than 100 characters."
                ),
                (
                    Some("last name"),
                    "The last name is longer than 100 characters."
                ),
            ]
        );
    }

    #[test]
    fn names_may_not_contain_control_characters() {
        let p = preview(&format!(
            "{HEADER}a@goldcrest.co.uk,Ja\tne,Do\u{7}e,admin,\n"
        ));
        assert!(p.rows.is_empty());
        let columns: Vec<_> = p.errors.iter().map(|e| e.column).collect();
        assert_eq!(columns, vec![Some("first name"), Some("last name")]);
        assert!(p.errors[0].message.contains("control character"));
    }

    #[test]
    fn roles_match_display_name_or_key_in_any_case() {
        let p = preview(&format!(
            "{HEADER}a@goldcrest.co.uk,A,,ADMINISTRATOR,\nb@goldcrest.co.uk,B,,Property_Manager,\nc@goldcrest.co.uk,C,, property manager ,\n"
        ));
        assert_eq!(p.errors, vec![]);
        let roles: Vec<&str> = p.rows.iter().map(|r| r.role.as_str()).collect();
        assert_eq!(roles, vec!["admin", "property_manager", "property_manager"]);
    }

    #[test]
    fn an_unknown_role_lists_the_roles_available() {
        let e = only_error(&format!("{HEADER}a@goldcrest.co.uk,A,,Director,\n"));
        assert_eq!(e.column, Some("role"));
        assert_eq!(
            e.message,
            "\"Director\" is not a role in this organisation. \
             Choose one of: Administrator, Property manager."
        );
        let e = only_error(&format!("{HEADER}a@goldcrest.co.uk,A,,,\n"));
        assert_eq!(
            e.message,
            "A role is required. Choose one of: Administrator, Property manager."
        );
    }

    #[test]
    fn blank_all_and_all_sites_mean_every_site() {
        for scope in ["", "  ", "all", "ALL", "All sites", "all SITES"] {
            assert_eq!(scope_of(scope), Ok(Scope::AllSites), "{scope:?}");
        }
    }

    #[test]
    fn sites_are_matched_by_reference_or_name_separated_by_semicolons_or_bars() {
        assert_eq!(
            scope_of("Sites: gc-001; Harbour view"),
            Ok(Scope::Sites([site(1), site(2)].into()))
        );
        assert_eq!(
            scope_of("sites:GC-002|riverside court|"),
            Ok(Scope::Sites([site(1), site(2)].into()))
        );
        assert_eq!(scope_of("Site: GC-003"), Ok(Scope::Sites([site(3)].into())));
    }

    #[test]
    fn estates_are_matched_by_reference_or_name() {
        assert_eq!(
            scope_of("ESTATES: est-001 | Southbank Estate"),
            Ok(Scope::Estates([estate(1), estate(2)].into()))
        );
    }

    #[test]
    fn each_unknown_site_or_estate_is_named() {
        assert_eq!(
            scope_of("Sites: GC-001; Nowhere; GC-999"),
            Err(vec![
                "There is no site \"Nowhere\" in this organisation.".to_owned(),
                "There is no site \"GC-999\" in this organisation.".to_owned(),
            ])
        );
        assert_eq!(
            scope_of("Estates: GC-001"),
            Err(vec![
                "There is no estate \"GC-001\" in this organisation.".to_owned()
            ])
        );
    }

    #[test]
    fn a_name_shared_by_two_sites_must_be_given_by_reference() {
        assert_eq!(
            scope_of("Sites: The Maltings"),
            Err(vec![
                "More than one site is called \"The Maltings\"; \
                 use its reference instead (GC-003, GC-004)."
                    .to_owned()
            ])
        );
    }

    #[test]
    fn sites_with_nothing_after_the_colon_is_an_error() {
        for scope in ["Sites:", "Sites: ; |", "Estates:"] {
            let errors = scope_of(scope).unwrap_err();
            assert_eq!(errors.len(), 1, "{scope}");
            assert!(errors[0].starts_with("List at least one "), "{}", errors[0]);
        }
    }

    #[test]
    fn an_unrecognised_scope_explains_the_forms_accepted() {
        let errors = scope_of("Buildings: GC-001").unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("\"Buildings: GC-001\" is not a scope."),
            "{}",
            errors[0]
        );
        assert!(scope_of("GC-001").is_err());
    }

    #[test]
    fn every_error_on_every_line_is_reported_and_bad_lines_are_left_out() {
        let p = preview(&format!(
            "{HEADER}bad@,,,Director,Sites: Nowhere\n\
             ok@goldcrest.co.uk,Ok,,admin,\n\
             also-bad,Al,,admin,Estates:\n"
        ));
        assert_eq!(p.rows.len(), 1);
        assert_eq!(p.rows[0].line, 3);
        let found: Vec<(usize, Option<&str>)> =
            p.errors.iter().map(|e| (e.line, e.column)).collect();
        assert_eq!(
            found,
            vec![
                (2, Some("email")),
                (2, Some("first name")),
                (2, Some("role")),
                (2, Some("scope")),
                (4, Some("email")),
                (4, Some("scope")),
            ]
        );
    }

    #[test]
    fn messages_are_sentences_without_a_line_prefix() {
        let p = preview(&format!(
            "{HEADER}bad@,,,Director,Sites: Nowhere\n,A,,admin,\n"
        ));
        assert!(!p.errors.is_empty());
        for e in &p.errors {
            assert!(!e.message.starts_with("Line"), "{}", e.message);
            assert!(e.message.ends_with('.'), "{}", e.message);
        }
    }
}
