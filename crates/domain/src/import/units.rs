//! The units template: one line per flat, house, shop, parking space or store on a site.

use super::ImportKind;
use super::reader::{
    FirstSeen, Line, Template, columns, key, site_reference, unit_reference, whole_number,
};
use super::sites::{MAX_ADDRESS_LINE, MAX_CITY, MAX_NAME};
use crate::portfolio::{UnitType, parse_square_metres};
use crate::uk::{Postcode, Uprn};

/// Longest floor description ("Ground", "Mezzanine"), in characters.
const MAX_FLOOR: usize = 30;

columns!(Column {
    SiteReference => "site_reference", true;
    Reference => "reference", true;
    Name => "name", true;
    BuildingReference => "building_reference", false;
    Floor => "floor", false;
    Type => "type", false;
    SquareMetres => "square_metres", false;
    ParkingSpaces => "parking_spaces", false;
    Uprn => "uprn", false;
    AddressLine1 => "address_line_1", false;
    AddressLine2 => "address_line_2", false;
    City => "city", false;
    Postcode => "postcode", false;
});

pub(super) const EXAMPLE: [&str; 13] = [
    "GC-001",
    "Flat 1",
    "Flat 1, Block A",
    "A",
    "Ground",
    "flat",
    "72.5",
    "1",
    "100023336956",
    "",
    "",
    "",
    "",
];

/// One unit ready to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitRow {
    /// Line of the file (the header is line 1).
    pub line: usize,
    pub site_reference: String,
    /// Unique within its site in the file, ignoring case.
    pub reference: String,
    pub name: String,
    pub building_reference: Option<String>,
    /// As written: "Ground", "1", "Roof".
    pub floor: Option<String>,
    /// Flat when not given.
    pub unit_type: UnitType,
    /// Floor area in hundredths of a square metre (72.5 m² is 7250).
    pub square_metres_hundredths: Option<i64>,
    pub parking_spaces: Option<i32>,
    pub uprn: Option<Uprn>,
    /// The unit's own address, when it differs from the site's.
    pub address_line_1: Option<String>,
    pub address_line_2: Option<String>,
    pub city: Option<String>,
    pub postcode: Option<Postcode>,
}

#[derive(Debug, Default)]
pub(super) struct Units {
    references: FirstSeen,
}

impl Template for Units {
    const KIND: ImportKind = ImportKind::Units;
    type Column = Column;
    type Row = UnitRow;

    fn reserve(&mut self, rows: usize) {
        self.references.reserve(rows);
    }

    fn check(&mut self, line: &mut Line<'_, Column>) -> Option<UnitRow> {
        let site_reference = line.require(Column::SiteReference, |s| {
            site_reference(s, "site reference")
        });
        let reference = line.require(Column::Reference, |s| unit_reference(s, "unit reference"));
        let name = line.required_text(Column::Name, MAX_NAME);
        let building_reference = line.parse(Column::BuildingReference, |s| {
            unit_reference(s, "building reference")
        });
        let floor = line.text(Column::Floor, MAX_FLOOR);
        let unit_type = line.parse(Column::Type, UnitType::parse);
        let square_metres = line.parse(Column::SquareMetres, parse_square_metres);
        let parking_spaces = line.parse(Column::ParkingSpaces, |s| whole_number(s, 0, 99));
        let uprn = line.parse(Column::Uprn, Uprn::parse);
        let address_line_1 = line.text(Column::AddressLine1, MAX_ADDRESS_LINE);
        let address_line_2 = line.text(Column::AddressLine2, MAX_ADDRESS_LINE);
        let city = line.text(Column::City, MAX_CITY);
        let postcode = line.parse(Column::Postcode, Postcode::parse);
        if let (Some(site), Some(reference)) = (&site_reference, &reference)
            && let Some(earlier) = self
                .references
                .earlier(key(&[site, reference]), line.number())
        {
            line.error(
                Column::Reference,
                format!(
                    "Unit \"{reference}\" of site {site} is already on line {earlier} of this \
                     file."
                ),
            );
        }
        if line.failed() {
            return None;
        }
        Some(UnitRow {
            line: line.number(),
            site_reference: site_reference?,
            reference: reference?,
            name: name?,
            building_reference,
            floor,
            unit_type: unit_type.unwrap_or(UnitType::Flat),
            square_metres_hundredths: square_metres,
            parking_spaces,
            uprn,
            address_line_1,
            address_line_2,
            city,
            postcode,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ParsedFile, parse_units};
    use super::*;

    const HEADER: &str = "site_reference,reference,name,building_reference,floor,type,\
                          square_metres,parking_spaces,uprn,address_line_1,address_line_2,city,\
                          postcode\n";

    fn parsed(body: &str) -> ParsedFile<UnitRow> {
        parse_units(format!("{HEADER}{body}").as_bytes()).unwrap()
    }

    #[test]
    fn a_unit_line_becomes_a_row_with_area_in_hundredths() {
        let file = parsed("GC-001,Flat 1,Flat 1,A,Ground,Flat,72.5,1,100023336956,,,,\n");
        assert_eq!(file.errors, vec![]);
        let row = &file.rows[0];
        assert_eq!(row.square_metres_hundredths, Some(7250));
        assert_eq!(row.parking_spaces, Some(1));
        assert_eq!(row.uprn.map(Uprn::get), Some(100_023_336_956));
        assert_eq!(row.floor.as_deref(), Some("Ground"));
    }

    #[test]
    fn a_unit_without_a_type_is_a_flat() {
        let file = parsed("GC-001,12A,12A,,,,,,,,,,\nGC-001,P1,Space 1,,,parking space,,,,,,,\n");
        assert_eq!(file.errors, vec![]);
        assert_eq!(file.rows[0].unit_type, UnitType::Flat);
        assert_eq!(file.rows[1].unit_type, UnitType::Parking);
    }

    #[test]
    fn unit_references_may_hold_spaces_slashes_and_full_stops_but_not_other_punctuation() {
        let file = parsed("GC-001,Block B/2.1,B,,,,,,,,,,\nGC-001,Flat #3,C,,,,,,,,,,\n");
        assert_eq!(file.rows.len(), 1);
        assert_eq!(file.errors[0].line, 3);
        assert_eq!(file.errors[0].column, Some("reference"));
    }

    #[test]
    fn every_bad_unit_value_is_reported() {
        let file = parsed("GC-001,F1,F1,,,castle,-2,100,0,,,,XX1\n");
        let found: Vec<_> = file.errors.iter().map(|e| e.column).collect();
        assert_eq!(
            found,
            vec![
                Some("type"),
                Some("square_metres"),
                Some("parking_spaces"),
                Some("uprn"),
                Some("postcode"),
            ]
        );
    }

    #[test]
    fn a_unit_reference_repeated_on_the_same_site_is_an_error() {
        let file = parsed("GC-001,Flat 1,A,,,,,,,,,,\nGC-001,FLAT 1,B,,,,,,,,,,\n");
        assert_eq!(file.rows.len(), 1);
        assert_eq!(
            file.errors[0].message,
            "Unit \"FLAT 1\" of site GC-001 is already on line 2 of this file."
        );
    }
}
