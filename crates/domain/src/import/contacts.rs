//! The contacts template: leaseholders, tenants, freeholders, directors, contractors and
//! staff, each a person or a company.

use super::ImportKind;
use super::reader::{
    ColumnId, FirstSeen, Line, Template, columns, contact_reference, human, key, same_text, text,
};
use super::sites::{MAX_ADDRESS_LINE, MAX_CITY};
use crate::EmailAddress;
use crate::portfolio::{ContactKind, ContactRole, CorrespondencePreference};
use crate::uk::{PhoneNumber, Postcode};

const MAX_TITLE: usize = 20;
const MAX_PERSON_NAME: usize = 100;
const MAX_COMPANY_NAME: usize = 200;
const MAX_COUNTRY: usize = 60;
/// Overseas postcodes are kept as written, up to this length.
const MAX_OVERSEAS_POSTCODE: usize = 20;
const MAX_NOTES: usize = 2000;

/// The country when none is given, and what the UK's other names become.
pub const UNITED_KINGDOM: &str = "United Kingdom";

columns!(Column {
    Reference => "reference", false;
    Kind => "kind", false;
    Title => "title", false;
    FirstName => "first_name", false;
    LastName => "last_name", false;
    CompanyName => "company_name", false;
    Emails => "emails", false;
    Phones => "phones", false;
    AddressLine1 => "address_line_1", false;
    AddressLine2 => "address_line_2", false;
    City => "city", false;
    Postcode => "postcode", false;
    Country => "country", false;
    Roles => "roles", false;
    Correspondence => "correspondence", false;
    Notes => "notes", false;
});

pub(super) const EXAMPLE: [&str; 16] = [
    "C-00123",
    "person",
    "Ms",
    "Jane",
    "Doe",
    "",
    "jane.doe@example.com",
    "07700 900123",
    "Flat 1, Riverside Court",
    "1 Riverside Walk",
    "London",
    "SE1 9PP",
    "United Kingdom",
    "leaseholder|director",
    "email",
    "Prefers e-mail; away in August",
];

/// One contact ready to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRow {
    /// Line of the file (the header is line 1).
    pub line: usize,
    /// The contact's reference in the system the file came from, e.g. "C-00123".
    pub reference: Option<String>,
    /// Person when not given.
    pub kind: ContactKind,
    pub title: Option<String>,
    pub first_name: Option<String>,
    /// Always given for a person.
    pub last_name: Option<String>,
    /// Always given for a company.
    pub company_name: Option<String>,
    /// In the order given, without repeats.
    pub emails: Vec<EmailAddress>,
    pub phones: Vec<PhoneNumber>,
    pub address_line_1: Option<String>,
    pub address_line_2: Option<String>,
    pub city: Option<String>,
    /// A UK postcode normalised ("SW1A 1AA"), or an overseas one as written.
    pub postcode: Option<String>,
    /// [`UNITED_KINGDOM`] unless another country is given.
    pub country: String,
    /// In the order given, without repeats.
    pub roles: Vec<ContactRole>,
    /// E-mail when not given.
    pub correspondence: CorrespondencePreference,
    /// May run over several lines.
    pub notes: Option<String>,
}

impl ContactRow {
    /// "Ms Jane Doe", or the company's name.
    pub fn display_name(&self) -> String {
        match (self.kind, &self.company_name) {
            (ContactKind::Company, Some(company)) => company.clone(),
            _ => [&self.title, &self.first_name, &self.last_name]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Contacts {
    /// Keyed by reference, or by first e-mail address for contacts without one.
    seen: FirstSeen,
}

impl Template for Contacts {
    const KIND: ImportKind = ImportKind::Contacts;
    type Column = Column;
    type Row = ContactRow;

    fn reserve(&mut self, rows: usize) {
        self.seen.reserve(rows);
    }

    fn check(&mut self, line: &mut Line<'_, Column>) -> Option<ContactRow> {
        let reference = line.parse(Column::Reference, contact_reference);
        let kind = line.parse(Column::Kind, ContactKind::parse);
        let title = line.text(Column::Title, MAX_TITLE);
        let first_name = line.text(Column::FirstName, MAX_PERSON_NAME);
        let last_name = line.text(Column::LastName, MAX_PERSON_NAME);
        let company_name = line.text(Column::CompanyName, MAX_COMPANY_NAME);
        let emails = unique_by(line.list(Column::Emails, EmailAddress::parse), |a, b| {
            same_text(a.as_str(), b.as_str())
        });
        let phones = unique_by(line.list(Column::Phones, PhoneNumber::parse), PartialEq::eq);
        let address_line_1 = line.text(Column::AddressLine1, MAX_ADDRESS_LINE);
        let address_line_2 = line.text(Column::AddressLine2, MAX_ADDRESS_LINE);
        let city = line.text(Column::City, MAX_CITY);
        let country = line
            .text(Column::Country, MAX_COUNTRY)
            .map_or_else(|| UNITED_KINGDOM.to_owned(), uk_as_united_kingdom);
        let postcode = postcode(line, &country);
        let roles = unique_by(line.list(Column::Roles, ContactRole::parse), PartialEq::eq);
        let correspondence = line.parse(Column::Correspondence, CorrespondencePreference::parse);
        let notes = line.parse(Column::Notes, |s| text(s, MAX_NOTES, true));

        let kind = kind.unwrap_or(ContactKind::Person);
        let needed = match kind {
            ContactKind::Person => Column::LastName,
            ContactKind::Company => Column::CompanyName,
        };
        if line.is_blank(needed) {
            line.error(
                needed,
                format!(
                    "Enter the {} for a {}.",
                    human(needed.heading()),
                    kind.key()
                ),
            );
        }
        let correspondence = correspondence.unwrap_or(CorrespondencePreference::Email);
        if correspondence == CorrespondencePreference::Post {
            for needed in [Column::AddressLine1, Column::Postcode] {
                if line.is_blank(needed) {
                    line.error(
                        needed,
                        format!(
                            "Enter the {}: this contact's letters go by post.",
                            human(needed.heading())
                        ),
                    );
                }
            }
        }
        self.check_duplicate(line, reference.as_deref(), emails.first());

        if line.failed() {
            return None;
        }
        Some(ContactRow {
            line: line.number(),
            reference,
            kind,
            title,
            first_name,
            last_name,
            company_name,
            emails,
            phones,
            address_line_1,
            address_line_2,
            city,
            postcode,
            country,
            roles,
            correspondence,
            notes,
        })
    }
}

impl Contacts {
    /// The same reference, or for contacts without one the same first e-mail address.
    fn check_duplicate(
        &mut self,
        line: &mut Line<'_, Column>,
        reference: Option<&str>,
        email: Option<&EmailAddress>,
    ) {
        let number = line.number();
        if let Some(reference) = reference {
            if let Some(earlier) = self.seen.earlier(key(&["reference", reference]), number) {
                line.error(
                    Column::Reference,
                    format!(
                        "The reference \"{reference}\" is already on line {earlier} of this file."
                    ),
                );
            }
            return;
        }
        if let Some(email) = email
            && let Some(earlier) = self.seen.earlier(key(&["email", email.as_str()]), number)
        {
            line.error(
                Column::Emails,
                format!(
                    "\"{email}\" is already on line {earlier} of this file. Give each contact a \
                     reference if two people share an e-mail address."
                ),
            );
        }
    }
}

/// A UK postcode is checked and normalised; another country's is kept as written.
fn postcode(line: &mut Line<'_, Column>, country: &str) -> Option<String> {
    if country == UNITED_KINGDOM {
        line.parse(Column::Postcode, Postcode::parse)
            .map(String::from)
    } else {
        line.parse(Column::Postcode, |s| text(s, MAX_OVERSEAS_POSTCODE, false))
    }
}

/// "UK", "GB", "England", … → "United Kingdom"; other countries as written.
fn uk_as_united_kingdom(country: String) -> String {
    const UK: &[&str] = &[
        "uk",
        "u.k.",
        "gb",
        "great britain",
        "united kingdom",
        "england",
        "wales",
        "scotland",
        "northern ireland",
    ];
    if UK.iter().any(|uk| uk.eq_ignore_ascii_case(&country)) {
        UNITED_KINGDOM.to_owned()
    } else {
        country
    }
}

/// Drops items the same as an earlier one, keeping the order.
fn unique_by<T>(items: Vec<T>, same: impl Fn(&T, &T) -> bool) -> Vec<T> {
    let mut kept: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if !kept.iter().any(|earlier| same(earlier, &item)) {
            kept.push(item);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::super::{LineError, ParsedFile, parse_contacts};
    use super::*;

    const HEADER: &str = "reference,kind,title,first_name,last_name,company_name,emails,phones,\
                          address_line_1,address_line_2,city,postcode,country,roles,\
                          correspondence,notes\n";

    fn parsed(body: &str) -> ParsedFile<ContactRow> {
        parse_contacts(format!("{HEADER}{body}").as_bytes()).unwrap()
    }

    fn columns(body: &str) -> Vec<Option<&'static str>> {
        parsed(body).errors.iter().map(|e| e.column).collect()
    }

    #[test]
    fn a_contact_line_becomes_a_row_with_lists_split_on_bars_or_semicolons() {
        let file = parsed(
            "C-00123,,Ms,Jane,Doe,,Jane@Example.com; jane@work.example.com |,\
             07700 900123|+44 (0)20 7946 0000,1 Walk,,London,se19pp,,\
             Leaseholder|director,,\"Away in August.\nCall first.\"\n",
        );
        assert_eq!(file.errors, vec![]);
        let row = &file.rows[0];
        assert_eq!(row.kind, ContactKind::Person);
        let emails: Vec<&str> = row.emails.iter().map(EmailAddress::as_str).collect();
        assert_eq!(emails, ["Jane@example.com", "jane@work.example.com"]);
        let phones: Vec<&str> = row.phones.iter().map(PhoneNumber::as_str).collect();
        assert_eq!(phones, ["07700900123", "+442079460000"]);
        assert_eq!(row.postcode.as_deref(), Some("SE1 9PP"));
        assert_eq!(row.country, "United Kingdom");
        assert_eq!(row.roles, [ContactRole::Leaseholder, ContactRole::Director]);
        assert_eq!(row.correspondence, CorrespondencePreference::Email);
        assert_eq!(row.notes.as_deref(), Some("Away in August.\nCall first."));
        assert_eq!(row.display_name(), "Ms Jane Doe");
    }

    #[test]
    fn each_bad_email_phone_and_role_in_a_list_is_reported() {
        let file = parsed(",,,,Doe,,a@x.com|bad@|worse,123|07700 900123,,,,,,owner|tenant,,\n");
        let messages: Vec<(Option<&str>, &str)> = file
            .errors
            .iter()
            .map(|e| (e.column, e.message.as_str()))
            .collect();
        assert_eq!(
            messages,
            vec![
                (Some("emails"), "\"bad@\" is not a valid e-mail address."),
                (Some("emails"), "\"worse\" is not a valid e-mail address."),
                (
                    Some("phones"),
                    "\"123\" is not a phone number; use 10 to 15 digits, such as 020 7946 0000 \
                     or +44 20 7946 0000."
                ),
                (
                    Some("roles"),
                    "\"owner\" is not a contact role; use one of: leaseholder, tenant, \
                     freeholder, director, vendor, staff, other."
                ),
            ]
        );
    }

    #[test]
    fn a_person_needs_a_last_name_and_a_company_needs_its_name() {
        assert_eq!(
            parsed(",,,Jane,,,jane@x.com,,,,,,,,,\n").errors,
            vec![LineError {
                line: 2,
                column: Some("last_name"),
                message: "Enter the last name for a person.".to_owned(),
            }]
        );
        assert_eq!(
            columns(",company,,Jane,Doe,,jane@x.com,,,,,,,,,\n"),
            vec![Some("company_name")]
        );
        let file = parsed(",Company,,,,Acme Lifts Ltd,,,,,,,,contractor,,\n");
        assert_eq!(file.errors, vec![]);
        assert_eq!(file.rows[0].display_name(), "Acme Lifts Ltd");
        assert_eq!(file.rows[0].roles, [ContactRole::Vendor]);
    }

    #[test]
    fn post_needs_an_address_line_and_a_postcode() {
        assert_eq!(
            columns(",,,,Doe,,,,,,London,,,,post,\n"),
            vec![Some("address_line_1"), Some("postcode")]
        );
        assert!(parsed(",,,,Doe,,,,1 Walk,,London,SE1 9PP,,,Post,\n").is_clean());
    }

    #[test]
    fn an_overseas_postcode_is_kept_as_written_but_a_uk_one_is_checked() {
        let file = parsed(",,,,Dupont,,,,1 rue de Rivoli,,Paris,75001,France,,,\n");
        assert_eq!(file.errors, vec![]);
        assert_eq!(file.rows[0].postcode.as_deref(), Some("75001"));
        assert_eq!(file.rows[0].country, "France");
        assert_eq!(
            columns(",,,,Doe,,,,1 Walk,,London,75001,UK,,,\n"),
            vec![Some("postcode")]
        );
        let file = parsed(",,,,Doe,,,,1 Walk,,Cardiff,CF10 1EP,wales,,,\n");
        assert_eq!(file.rows[0].country, "United Kingdom");
    }

    #[test]
    fn notes_are_at_most_2000_characters() {
        let ok = "n".repeat(2000);
        assert!(parsed(&format!(",,,,Doe,,,,,,,,,,,{ok}\n")).is_clean());
        let long = "n".repeat(2001);
        assert_eq!(
            columns(&format!(",,,,Doe,,,,,,,,,,,{long}\n")),
            vec![Some("notes")]
        );
    }

    #[test]
    fn a_contact_is_a_duplicate_by_reference_or_else_by_first_email() {
        let file = parsed(
            "C-1,,,,Doe,,a@x.com,,,,,,,,,\n\
             c-1,,,,Roe,,b@x.com,,,,,,,,,\n\
             ,,,,Poe,,c@x.com,,,,,,,,,\n\
             ,,,,Moe,,C@X.com|d@x.com,,,,,,,,,\n\
             C-2,,,,Zoe,,c@x.com,,,,,,,,,\n\
             ,,,,Noe,,e@x.com|c@x.com,,,,,,,,,\n",
        );
        let found: Vec<(usize, Option<&str>)> =
            file.errors.iter().map(|e| (e.line, e.column)).collect();
        // Line 6 shares an address but has its own reference, so it is someone else; line 7's
        // first address is its own.
        assert_eq!(found, vec![(3, Some("reference")), (5, Some("emails"))]);
        assert_eq!(
            file.errors[1].message,
            "\"C@x.com\" is already on line 4 of this file. Give each contact a reference if \
             two people share an e-mail address."
        );
    }

    #[test]
    fn repeated_emails_and_roles_on_one_line_are_kept_once() {
        let file = parsed(",,,,Doe,,a@x.com|A@X.COM,,,,,,,tenant;Tenant,,\n");
        assert_eq!(file.rows[0].emails.len(), 1);
        assert_eq!(file.rows[0].roles, [ContactRole::Tenant]);
    }
}
