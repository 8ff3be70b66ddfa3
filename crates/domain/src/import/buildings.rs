//! The buildings template: one line per building on a site, with the facts that decide whether
//! it is a higher-risk building.

use super::ImportKind;
use super::reader::{
    FirstSeen, Line, Template, columns, key, site_reference, unit_reference, whole_number, yes_no,
};
use super::sites::MAX_NAME;
use crate::portfolio::{
    ConstructionType, HrbFacts, HrbOverride, HrbStatus, hrb_status, parse_height_metres,
};

/// Longest reason for an override, in characters.
const MAX_REASON: usize = 500;

columns!(Column {
    SiteReference => "site_reference", true;
    Reference => "reference", true;
    Name => "name", true;
    HeightMetres => "height_metres", false;
    Storeys => "storeys", false;
    ResidentialUnits => "residential_units", false;
    BuildYear => "build_year", false;
    ConstructionType => "construction_type", false;
    HrbOverride => "hrb_override", false;
    HrbOverrideReason => "hrb_override_reason", false;
});

pub(super) const EXAMPLE: [&str; 10] = [
    "GC-001", "A", "Block A", "19.5", "7", "24", "2004", "concrete", "", "",
];

/// One building ready to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildingRow {
    /// Line of the file (the header is line 1).
    pub line: usize,
    pub site_reference: String,
    /// Unique within its site in the file, ignoring case.
    pub reference: String,
    pub name: String,
    /// Height (in centimetres), storeys and residential units, as far as known.
    pub facts: HrbFacts,
    pub build_year: Option<i32>,
    pub construction_type: Option<ConstructionType>,
    pub hrb_override: Option<HrbOverride>,
    /// Whether the building is higher-risk, from the facts and any override.
    pub hrb: HrbStatus,
}

#[derive(Debug, Default)]
pub(super) struct Buildings {
    references: FirstSeen,
}

impl Template for Buildings {
    const KIND: ImportKind = ImportKind::Buildings;
    type Column = Column;
    type Row = BuildingRow;

    fn reserve(&mut self, rows: usize) {
        self.references.reserve(rows);
    }

    fn check(&mut self, line: &mut Line<'_, Column>) -> Option<BuildingRow> {
        let site_reference = line.require(Column::SiteReference, |s| {
            site_reference(s, "site reference")
        });
        let reference = line.require(Column::Reference, |s| {
            unit_reference(s, "building reference")
        });
        let name = line.required_text(Column::Name, MAX_NAME);
        let facts = HrbFacts {
            height_cm: line.parse(Column::HeightMetres, parse_height_metres),
            storeys: line.parse(Column::Storeys, |s| whole_number(s, 1, 200)),
            residential_units: line.parse(Column::ResidentialUnits, |s| whole_number(s, 0, 10_000)),
        };
        let build_year = line.parse(Column::BuildYear, |s| whole_number(s, 1600, 2100));
        let construction_type = line.parse(Column::ConstructionType, ConstructionType::parse);
        let hrb_override = hrb_override(line);
        if let (Some(site), Some(reference)) = (&site_reference, &reference)
            && let Some(earlier) = self
                .references
                .earlier(key(&[site, reference]), line.number())
        {
            line.error(
                Column::Reference,
                format!(
                    "Building \"{reference}\" of site {site} is already on line {earlier} of \
                     this file."
                ),
            );
        }
        if line.failed() {
            return None;
        }
        // Cannot fail: a reason was required above.
        let hrb = hrb_status(&facts, hrb_override.as_ref().map(HrbOverride::as_pair)).ok()?;
        Some(BuildingRow {
            line: line.number(),
            site_reference: site_reference?,
            reference: reference?,
            name: name?,
            facts,
            build_year,
            construction_type,
            hrb_override,
            hrb,
        })
    }
}

/// `hrb_override` says yes or no; `hrb_override_reason` says why, and only then.
fn hrb_override(line: &mut Line<'_, Column>) -> Option<HrbOverride> {
    let is_hrb = line.parse(Column::HrbOverride, yes_no);
    let reason = line.text(Column::HrbOverrideReason, MAX_REASON);
    let decided = !line.is_blank(Column::HrbOverride);
    let explained = !line.is_blank(Column::HrbOverrideReason);
    if decided && !explained {
        line.error(
            Column::HrbOverrideReason,
            "Give a reason for overriding whether the building is higher-risk.".to_owned(),
        );
    }
    if explained && !decided {
        line.error(
            Column::HrbOverrideReason,
            "Leave the reason blank unless hrb_override is yes or no.".to_owned(),
        );
    }
    Some(HrbOverride {
        is_hrb: is_hrb?,
        reason: reason?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{ParsedFile, parse_buildings};
    use super::*;

    const HEADER: &str = "site_reference,reference,name,height_metres,storeys,residential_units,\
                          build_year,construction_type,hrb_override,hrb_override_reason\n";

    fn parsed(body: &str) -> ParsedFile<BuildingRow> {
        parse_buildings(format!("{HEADER}{body}").as_bytes()).unwrap()
    }

    fn columns(body: &str) -> Vec<Option<&'static str>> {
        parsed(body).errors.iter().map(|e| e.column).collect()
    }

    #[test]
    fn a_tall_building_with_homes_is_found_to_be_higher_risk() {
        let file = parsed("GC-001,A,Block A,19.5,,24,2004,Concrete frame,,\n");
        assert_eq!(file.errors, vec![]);
        let row = &file.rows[0];
        assert_eq!(
            row.facts,
            HrbFacts {
                height_cm: Some(1950),
                storeys: None,
                residential_units: Some(24)
            }
        );
        assert_eq!(row.construction_type, Some(ConstructionType::Concrete));
        assert_eq!(
            row.hrb,
            HrbStatus {
                is_hrb: true,
                derived: true,
                overridden: false
            }
        );
    }

    #[test]
    fn an_hrb_override_is_kept_with_its_reason() {
        let file = parsed("GC-001,A,Block A,17,,24,,,Yes,Surveyor measured 18.2 m\n");
        assert_eq!(file.errors, vec![]);
        let row = &file.rows[0];
        assert_eq!(
            row.hrb_override,
            Some(HrbOverride {
                is_hrb: true,
                reason: "Surveyor measured 18.2 m".to_owned()
            })
        );
        assert!(row.hrb.is_hrb && row.hrb.overridden && !row.hrb.derived);
    }

    #[test]
    fn an_hrb_override_needs_a_reason_and_a_reason_needs_an_override() {
        assert_eq!(
            columns("GC-001,A,Block A,,,,,,no,\n"),
            vec![Some("hrb_override_reason")]
        );
        assert_eq!(
            columns("GC-001,A,Block A,,,,,,,Because\n"),
            vec![Some("hrb_override_reason")]
        );
        assert_eq!(
            columns("GC-001,A,Block A,,,,,,maybe,Because\n"),
            vec![Some("hrb_override")]
        );
    }

    #[test]
    fn building_numbers_outside_their_ranges_are_each_reported() {
        let file = parsed("GC-001,A,Block A,1000.5,0,10001,1599,straw,,\n");
        let found: Vec<_> = file.errors.iter().map(|e| e.column).collect();
        assert_eq!(
            found,
            vec![
                Some("height_metres"),
                Some("storeys"),
                Some("residential_units"),
                Some("build_year"),
                Some("construction_type"),
            ]
        );
        assert_eq!(
            file.errors[1].message,
            "\"0\" is not a whole number from 1 to 200."
        );
    }

    #[test]
    fn the_same_building_reference_may_appear_on_different_sites_only() {
        let file = parsed(
            "GC-001,A,Block A,,,,,,,\n\
             GC-002,A,Block A,,,,,,,\n\
             gc-001,a,Block A again,,,,,,,\n",
        );
        assert_eq!(file.rows.len(), 2);
        assert_eq!(file.errors.len(), 1);
        assert_eq!(file.errors[0].line, 4);
        assert_eq!(
            file.errors[0].message,
            "Building \"a\" of site gc-001 is already on line 2 of this file."
        );
    }
}
