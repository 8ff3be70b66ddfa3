//! The sites template: one line per site, with the landlord's address for notices.

use super::ImportKind;
use super::reader::{ColumnId, FirstSeen, Line, Template, columns, human, key, site_reference};
use crate::uk::Postcode;

/// Longest name, in characters.
pub(super) const MAX_NAME: usize = 200;
/// Longest address line, in characters.
pub(super) const MAX_ADDRESS_LINE: usize = 200;
/// Longest town or city, in characters.
pub(super) const MAX_CITY: usize = 100;

columns!(Column {
    Reference => "reference", true;
    Name => "name", true;
    AddressLine1 => "address_line_1", true;
    AddressLine2 => "address_line_2", false;
    City => "city", true;
    Postcode => "postcode", true;
    EstateReference => "estate_reference", false;
    LandlordName => "landlord_name", false;
    LandlordAddressLine1 => "landlord_address_line_1", false;
    LandlordAddressLine2 => "landlord_address_line_2", false;
    LandlordCity => "landlord_city", false;
    LandlordPostcode => "landlord_postcode", false;
});

pub(super) const EXAMPLE: [&str; 12] = [
    "GC-001",
    "Riverside Court",
    "1 Riverside Walk",
    "",
    "London",
    "SE1 9PP",
    "EST-001",
    "Goldcrest Freeholds Ltd",
    "10 Queen Street",
    "",
    "London",
    "EC4R 1BE",
];

/// One site ready to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRow {
    /// Line of the file (the header is line 1).
    pub line: usize,
    /// "GC-001", as written; unique in the file ignoring case.
    pub reference: String,
    pub name: String,
    pub address_line_1: String,
    pub address_line_2: Option<String>,
    pub city: String,
    pub postcode: Postcode,
    /// The estate the site belongs to, if any; not checked to exist here.
    pub estate_reference: Option<String>,
    pub landlord: Option<Landlord>,
}

/// The landlord's name and address for notices (Landlord and Tenant Act 1987, s.48), always in
/// England or Wales.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landlord {
    pub name: String,
    pub address_line_1: String,
    pub address_line_2: Option<String>,
    pub city: Option<String>,
    pub postcode: Postcode,
}

#[derive(Debug, Default)]
pub(super) struct Sites {
    references: FirstSeen,
}

impl Template for Sites {
    const KIND: ImportKind = ImportKind::Sites;
    type Column = Column;
    type Row = SiteRow;

    fn reserve(&mut self, rows: usize) {
        self.references.reserve(rows);
    }

    fn check(&mut self, line: &mut Line<'_, Column>) -> Option<SiteRow> {
        let reference = line.require(Column::Reference, |s| site_reference(s, "site reference"));
        let name = line.required_text(Column::Name, MAX_NAME);
        let address_line_1 = line.required_text(Column::AddressLine1, MAX_ADDRESS_LINE);
        let address_line_2 = line.text(Column::AddressLine2, MAX_ADDRESS_LINE);
        let city = line.required_text(Column::City, MAX_CITY);
        let postcode = line.require(Column::Postcode, Postcode::parse);
        let estate_reference = line.parse(Column::EstateReference, |s| {
            site_reference(s, "estate reference")
        });
        let landlord = landlord(line);
        if let Some(reference) = &reference
            && let Some(earlier) = self.references.earlier(key(&[reference]), line.number())
        {
            line.error(
                Column::Reference,
                format!(
                    "The site reference \"{reference}\" is already on line {earlier} of this file."
                ),
            );
        }
        if line.failed() {
            return None;
        }
        Some(SiteRow {
            line: line.number(),
            reference: reference?,
            name: name?,
            address_line_1: address_line_1?,
            address_line_2,
            city: city?,
            postcode: postcode?,
            estate_reference,
            landlord,
        })
    }
}

const LANDLORD_COLUMNS: [Column; 5] = [
    Column::LandlordName,
    Column::LandlordAddressLine1,
    Column::LandlordAddressLine2,
    Column::LandlordCity,
    Column::LandlordPostcode,
];

/// `None` when no landlord column is filled in (or when something is wrong, which is recorded).
fn landlord(line: &mut Line<'_, Column>) -> Option<Landlord> {
    if LANDLORD_COLUMNS.iter().all(|&c| line.is_blank(c)) {
        return None;
    }
    for needed in [
        Column::LandlordName,
        Column::LandlordAddressLine1,
        Column::LandlordPostcode,
    ] {
        if line.is_blank(needed) {
            line.error(
                needed,
                format!(
                    "Enter the {} as well: a landlord needs a name, address line 1 and postcode.",
                    human(needed.heading())
                ),
            );
        }
    }
    let name = line.text(Column::LandlordName, MAX_NAME);
    let address_line_1 = line.text(Column::LandlordAddressLine1, MAX_ADDRESS_LINE);
    let address_line_2 = line.text(Column::LandlordAddressLine2, MAX_ADDRESS_LINE);
    let city = line.text(Column::LandlordCity, MAX_CITY);
    let postcode = line.parse(Column::LandlordPostcode, Postcode::parse);
    if let Some(postcode) = &postcode
        && !postcode.in_england_or_wales()
    {
        line.error(
            Column::LandlordPostcode,
            format!(
                "{postcode} is not in England or Wales. The landlord's address for notices must \
                 be in England or Wales (Landlord and Tenant Act 1987, section 48); an agent's \
                 address there will do."
            ),
        );
    }
    Some(Landlord {
        name: name?,
        address_line_1: address_line_1?,
        address_line_2,
        city,
        postcode: postcode?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{FileError, LineError, ParsedFile, parse_sites};
    use super::*;

    const HEADER: &str = "reference,name,address_line_1,address_line_2,city,postcode,\
                          estate_reference,landlord_name,landlord_address_line_1,\
                          landlord_address_line_2,landlord_city,landlord_postcode\n";

    fn parsed(body: &str) -> ParsedFile<SiteRow> {
        parse_sites(format!("{HEADER}{body}").as_bytes()).unwrap()
    }

    fn errors(body: &str) -> Vec<(usize, Option<&'static str>)> {
        parsed(body)
            .errors
            .iter()
            .map(|e| (e.line, e.column))
            .collect()
    }

    #[test]
    fn a_site_line_becomes_a_row_with_a_normalised_postcode() {
        let file = parsed(
            "GC-001,Riverside Court,1 Riverside Walk,,London,se19pp,EST-001,\
             Goldcrest Freeholds Ltd,10 Queen Street,,London,ec4r1be\n",
        );
        assert_eq!(file.errors, vec![]);
        let row = &file.rows[0];
        assert_eq!(row.line, 2);
        assert_eq!(row.postcode.as_str(), "SE1 9PP");
        assert_eq!(row.address_line_2, None);
        assert_eq!(row.estate_reference.as_deref(), Some("EST-001"));
        let landlord = row.landlord.as_ref().unwrap();
        assert_eq!(landlord.postcode.as_str(), "EC4R 1BE");
        assert_eq!(landlord.city.as_deref(), Some("London"));
    }

    #[test]
    fn landlord_columns_may_be_left_out_entirely() {
        let file = parse_sites(
            b"reference,name,address_line_1,city,postcode\nGC-001,Riverside,1 Walk,London,SE1 9PP\n",
        )
        .unwrap();
        assert_eq!(file.errors, vec![]);
        assert_eq!(file.rows[0].landlord, None);
    }

    #[test]
    fn missing_required_site_values_are_each_reported() {
        assert_eq!(
            errors(",,,,,,EST-001,,,,,\n"),
            vec![
                (2, Some("reference")),
                (2, Some("name")),
                (2, Some("address_line_1")),
                (2, Some("city")),
                (2, Some("postcode")),
            ]
        );
        let file = parsed("GC-001,,1 Walk,London,SE1 9PP,,,,,,,\n");
        assert_eq!(file.errors[0].message, "Enter the name.");
    }

    #[test]
    fn a_site_reference_is_letters_digits_and_hyphens() {
        let file = parsed("GC 001,R,1 Walk,,London,SE1 9PP,-EST,,,,,\n");
        let columns: Vec<_> = file.errors.iter().map(|e| e.column).collect();
        assert_eq!(columns, vec![Some("reference"), Some("estate_reference")]);
        assert!(
            file.errors[0]
                .message
                .starts_with("\"GC 001\" is not a valid site reference;"),
            "{}",
            file.errors[0].message
        );
        let too_long = format!("{},R,1 Walk,,London,SE1 9PP,,,,,,\n", "A".repeat(21));
        assert_eq!(errors(&too_long), vec![(2, Some("reference"))]);
    }

    #[test]
    fn a_partial_landlord_address_names_each_missing_part() {
        assert_eq!(
            errors("GC-001,R,1 Walk,,London,SE1 9PP,,,,,Leeds,\n"),
            vec![
                (2, Some("landlord_name")),
                (2, Some("landlord_address_line_1")),
                (2, Some("landlord_postcode")),
            ]
        );
    }

    #[test]
    fn a_landlord_address_outside_england_and_wales_is_refused() {
        let file =
            parsed("GC-001,R,1 Walk,,London,SE1 9PP,,Lord Ltd,1 High St,,Edinburgh,EH1 1YZ\n");
        assert_eq!(
            file.errors,
            vec![LineError {
                line: 2,
                column: Some("landlord_postcode"),
                message: "EH1 1YZ is not in England or Wales. The landlord's address for notices \
                          must be in England or Wales (Landlord and Tenant Act 1987, section 48); \
                          an agent's address there will do."
                    .to_owned(),
            }]
        );
        // The site itself may be anywhere in the UK.
        assert!(parsed("GC-002,R,1 Walk,,Glasgow,G1 1XQ,,,,,,\n").is_clean());
    }

    #[test]
    fn a_site_reference_repeated_in_any_case_is_an_error_on_the_later_line() {
        let file = parsed(
            "GC-001,A,1 Walk,,London,SE1 9PP,,,,,,\n\
             GC-002,B,1 Walk,,London,SE1 9PP,,,,,,\n\
             gc-001,C,1 Walk,,London,SE1 9PP,,,,,,\n",
        );
        assert_eq!(file.rows.len(), 2);
        assert_eq!(
            file.errors,
            vec![LineError {
                line: 4,
                column: Some("reference"),
                message: "The site reference \"gc-001\" is already on line 2 of this file."
                    .to_owned(),
            }]
        );
    }

    #[test]
    fn a_sites_file_without_required_columns_names_them_all() {
        let err = parse_sites(b"reference,name\nGC-001,R\n").unwrap_err();
        assert_eq!(
            err,
            FileError::Columns {
                kind: ImportKind::Sites,
                missing: vec!["address_line_1", "city", "postcode"],
                unknown: vec![],
            }
        );
    }
}
