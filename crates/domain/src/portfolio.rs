//! The portfolio: sites, buildings, units and the spaces between them, the people and companies
//! connected to them, and whether a building is higher-risk under the Building Safety Act 2022.

use crate::choice::choice_enum;
use crate::uk::{DecimalError, parse_hundredths};

pub use crate::choice::ChoiceError;

choice_enum! {
    /// What a unit is.
    pub enum UnitType ("unit type") {
        Flat => "flat", "Flat", also ["apartment"];
        House => "house", "House";
        Commercial => "commercial", "Commercial", also ["shop", "office"];
        Parking => "parking", "Parking space", also ["parking space", "car park space", "garage"];
        Storage => "storage", "Storage", also ["store", "storage unit"];
        Other => "other", "Other";
    }
}

choice_enum! {
    /// A shared part of a site that is not a unit.
    pub enum SpaceKind ("kind of space") {
        Stairwell => "stairwell", "Stairwell", also ["stairs", "staircase"];
        Corridor => "corridor", "Corridor", also ["hallway"];
        BinStore => "bin_store", "Bin store", also ["bins", "refuse store"];
        Roof => "roof", "Roof";
        PlantRoom => "plant_room", "Plant room";
        CarPark => "car_park", "Car park";
        Garden => "garden", "Garden", also ["grounds"];
        Reception => "reception", "Reception", also ["lobby", "entrance hall"];
        Lift => "lift", "Lift", also ["elevator"];
        Other => "other", "Other";
    }
}

choice_enum! {
    /// How a building's frame is built.
    pub enum ConstructionType ("construction type") {
        Concrete => "concrete", "Concrete frame";
        TimberFrame => "timber_frame", "Timber frame", also ["timber", "timber framed"];
        Masonry => "masonry", "Masonry", also ["brick", "load-bearing masonry"];
        Steel => "steel", "Steel frame";
        Other => "other", "Other";
    }
}

choice_enum! {
    /// How a contact is connected to the portfolio.
    pub enum ContactRole ("contact role") {
        Leaseholder => "leaseholder", "Leaseholder", also ["lessee"];
        Tenant => "tenant", "Tenant";
        Freeholder => "freeholder", "Freeholder", also ["landlord", "lessor"];
        Director => "director", "Director";
        Vendor => "vendor", "Vendor/contractor", also ["contractor", "supplier"];
        Staff => "staff", "Staff";
        Other => "other", "Other";
    }
}

choice_enum! {
    /// A person, or a company (which may have people as its contacts).
    pub enum ContactKind ("kind of contact") {
        Person => "person", "Person", also ["individual"];
        Company => "company", "Company", also ["organisation", "organization", "business"];
    }
}

choice_enum! {
    /// How a contact wants letters, demands and notices sent.
    pub enum CorrespondencePreference ("correspondence preference") {
        Email => "email", "E-mail";
        Post => "post", "Post", also ["letter", "postal"];
    }
}

choice_enum! {
    /// The company the leaseholders control, when there is one.
    pub enum ManagementCompanyKind ("kind of management company") {
        Rmc => "rmc", "Residents' management company", also ["residents management company"];
        Rtm => "rtm", "Right to manage company", also ["right to manage"];
    }
}

/// Building Safety Act 2022, s.65 and the Higher-Risk Buildings (Descriptions and
/// Supplementary Provisions) Regulations 2023: the thresholds for occupation.
pub const HRB_MIN_HEIGHT_CM: i32 = 18 * 100;
pub const HRB_MIN_STOREYS: i32 = 7;
pub const HRB_MIN_RESIDENTIAL_UNITS: i32 = 2;

/// The facts that decide whether a building is higher-risk; `None` is "not known".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HrbFacts {
    /// Height in centimetres (metres to two places).
    pub height_cm: Option<i32>,
    pub storeys: Option<i32>,
    pub residential_units: Option<i32>,
}

/// At least 18 metres high or at least 7 storeys, and at least 2 residential units. What is not
/// known does not count, so an unmeasured building is not higher-risk until someone says so.
pub fn meets_hrb_test(facts: &HrbFacts) -> bool {
    let at_least = |value: Option<i32>, min| value.is_some_and(|v| v >= min);
    let tall =
        at_least(facts.height_cm, HRB_MIN_HEIGHT_CM) || at_least(facts.storeys, HRB_MIN_STOREYS);
    tall && at_least(facts.residential_units, HRB_MIN_RESIDENTIAL_UNITS)
}

/// Whether a building is treated as higher-risk, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HrbStatus {
    /// What PropLink acts on.
    pub is_hrb: bool,
    /// What the facts alone say ([`meets_hrb_test`]).
    pub derived: bool,
    /// Whether someone has decided instead of the facts.
    pub overridden: bool,
}

/// Someone's decision, with their reason, that a building is (or is not) higher-risk whatever
/// the facts say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HrbOverride {
    pub is_hrb: bool,
    pub reason: String,
}

impl HrbOverride {
    /// In the form [`hrb_status`] takes.
    pub fn as_pair(&self) -> (bool, &str) {
        (self.is_hrb, &self.reason)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Give a reason for overriding whether the building is higher-risk")]
pub struct HrbOverrideError;

/// The facts' answer, unless someone has overridden it (`Some((is_hrb, reason))`); an override
/// needs a reason, because the decision has legal consequences and will be asked about.
pub fn hrb_status(
    facts: &HrbFacts,
    override_with: Option<(bool, &str)>,
) -> Result<HrbStatus, HrbOverrideError> {
    let derived = meets_hrb_test(facts);
    match override_with {
        Some((_, reason)) if reason.trim().is_empty() => Err(HrbOverrideError),
        Some((is_hrb, _)) => Ok(HrbStatus {
            is_hrb,
            derived,
            overridden: true,
        }),
        None => Ok(HrbStatus {
            is_hrb: derived,
            derived,
            overridden: false,
        }),
    }
}

/// Most a building's height may be, in metres.
pub const MAX_HEIGHT_METRES: i32 = 1000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "\"{0}\" is not a height; give metres to at most 2 decimal places, from 0 to \
     {MAX_HEIGHT_METRES}, such as 18.5"
)]
pub struct HeightError(pub String);

/// "18.5", "18.50" or "18.5m" → 1850 centimetres.
pub fn parse_height_metres(input: &str) -> Result<i32, HeightError> {
    let s = input.trim();
    let bad = || HeightError(s.to_owned());
    let number = s.strip_suffix(['m', 'M']).map_or(s, str::trim_end);
    let cm = parse_hundredths(number, false).map_err(|_| bad())?;
    i32::try_from(cm)
        .ok()
        .filter(|&cm| cm <= MAX_HEIGHT_METRES * 100)
        .ok_or_else(bad)
}

/// "18.50 m".
pub fn format_height(cm: i32) -> String {
    format!("{}.{:02} m", cm / 100, (cm % 100).abs())
}

/// Largest floor area accepted, in square metres.
pub const MAX_SQUARE_METRES: i64 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AreaError {
    #[error("\"{0}\" is not an area; give square metres, such as 72.5")]
    Invalid(String),
    #[error("\"{0}\" has more than 2 decimal places; give square metres, such as 72.55")]
    TooManyDecimals(String),
    #[error("\"{0}\" is too large for a floor area")]
    TooLarge(String),
}

/// "72.5", "72.50 m2" or "72.5m²" → 7250 hundredths of a square metre.
pub fn parse_square_metres(input: &str) -> Result<i64, AreaError> {
    let s = input.trim();
    let owned = || s.to_owned();
    let number = ["m²", "m2", "sqm", "sq m"]
        .iter()
        .find_map(|unit| s.strip_suffix(unit))
        .map_or(s, str::trim_end);
    let hundredths = parse_hundredths(number, true).map_err(|e| match e {
        DecimalError::Invalid => AreaError::Invalid(owned()),
        DecimalError::TooManyDecimals => AreaError::TooManyDecimals(owned()),
        DecimalError::TooLarge => AreaError::TooLarge(owned()),
    })?;
    if hundredths > MAX_SQUARE_METRES * 100 {
        return Err(AreaError::TooLarge(owned()));
    }
    Ok(hundredths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_by_key_label_or_alias_in_any_case_or_spacing() {
        assert_eq!(UnitType::parse(" FLAT "), Ok(UnitType::Flat));
        assert_eq!(UnitType::parse("Parking space"), Ok(UnitType::Parking));
        assert_eq!(UnitType::parse("parking_space"), Ok(UnitType::Parking));
        assert_eq!(SpaceKind::parse("Bin Store"), Ok(SpaceKind::BinStore));
        assert_eq!(SpaceKind::parse("plant-room"), Ok(SpaceKind::PlantRoom));
        assert_eq!(
            ConstructionType::parse("timber frame"),
            Ok(ConstructionType::TimberFrame)
        );
        assert_eq!(
            ContactRole::parse("Vendor/contractor"),
            Ok(ContactRole::Vendor)
        );
        assert_eq!(ContactRole::parse("contractor"), Ok(ContactRole::Vendor));
        assert_eq!(
            ManagementCompanyKind::parse("Right to manage company"),
            Ok(ManagementCompanyKind::Rtm)
        );
        assert_eq!(
            CorrespondencePreference::parse("E-mail"),
            Ok(CorrespondencePreference::Email)
        );
    }

    #[test]
    fn every_choice_round_trips_through_its_key_and_label() {
        fn check<T: Copy + PartialEq + std::fmt::Debug>(
            all: &[T],
            key: fn(T) -> &'static str,
            label: fn(T) -> &'static str,
            from_key: fn(&str) -> Option<T>,
            parse: fn(&str) -> Result<T, ChoiceError>,
        ) {
            for &choice in all {
                assert_eq!(from_key(key(choice)), Some(choice));
                assert_eq!(parse(key(choice)), Ok(choice));
                assert_eq!(parse(label(choice)), Ok(choice));
            }
        }
        check(
            UnitType::ALL,
            UnitType::key,
            UnitType::label,
            UnitType::from_key,
            UnitType::parse,
        );
        check(
            SpaceKind::ALL,
            SpaceKind::key,
            SpaceKind::label,
            SpaceKind::from_key,
            SpaceKind::parse,
        );
        check(
            ConstructionType::ALL,
            ConstructionType::key,
            ConstructionType::label,
            ConstructionType::from_key,
            ConstructionType::parse,
        );
        check(
            ContactRole::ALL,
            ContactRole::key,
            ContactRole::label,
            ContactRole::from_key,
            ContactRole::parse,
        );
        check(
            ContactKind::ALL,
            ContactKind::key,
            ContactKind::label,
            ContactKind::from_key,
            ContactKind::parse,
        );
        check(
            CorrespondencePreference::ALL,
            CorrespondencePreference::key,
            CorrespondencePreference::label,
            CorrespondencePreference::from_key,
            CorrespondencePreference::parse,
        );
        check(
            ManagementCompanyKind::ALL,
            ManagementCompanyKind::key,
            ManagementCompanyKind::label,
            ManagementCompanyKind::from_key,
            ManagementCompanyKind::parse,
        );
    }

    #[test]
    fn keys_and_labels_are_as_stored_and_shown() {
        let keys: Vec<&str> = UnitType::ALL.iter().map(|t| t.key()).collect();
        assert_eq!(
            keys,
            ["flat", "house", "commercial", "parking", "storage", "other"]
        );
        assert_eq!(ContactRole::Vendor.label(), "Vendor/contractor");
        assert_eq!(
            ManagementCompanyKind::Rmc.to_string(),
            "Residents' management company"
        );
        assert_eq!(SpaceKind::BinStore.key(), "bin_store");
    }

    #[test]
    fn an_unknown_choice_lists_the_keys_on_offer() {
        assert_eq!(
            UnitType::parse("Bungalow").unwrap_err().to_string(),
            "\"Bungalow\" is not a unit type; use one of: flat, house, commercial, parking, \
             storage, other"
        );
        assert_eq!(
            ContactKind::parse("  ").unwrap_err().to_string(),
            "No kind of contact given; use one of: person, company"
        );
    }

    fn facts(height_cm: Option<i32>, storeys: Option<i32>, units: Option<i32>) -> HrbFacts {
        HrbFacts {
            height_cm,
            storeys,
            residential_units: units,
        }
    }

    #[test]
    fn a_building_of_18_metres_or_7_storeys_with_2_homes_is_higher_risk() {
        assert!(meets_hrb_test(&facts(Some(1800), None, Some(2))));
        assert!(meets_hrb_test(&facts(None, Some(7), Some(2))));
        assert!(meets_hrb_test(&facts(Some(500), Some(7), Some(40))));
        assert!(!meets_hrb_test(&facts(Some(1799), Some(6), Some(40))));
        assert!(!meets_hrb_test(&facts(Some(3000), Some(12), Some(1))));
    }

    #[test]
    fn unknown_facts_do_not_make_a_building_higher_risk() {
        assert!(!meets_hrb_test(&HrbFacts::default()));
        assert!(!meets_hrb_test(&facts(Some(3000), Some(12), None)));
        assert!(!meets_hrb_test(&facts(None, None, Some(40))));
    }

    #[test]
    fn an_override_decides_but_the_derived_answer_is_kept() {
        let tall = facts(Some(2000), None, Some(10));
        assert_eq!(
            hrb_status(&tall, None),
            Ok(HrbStatus {
                is_hrb: true,
                derived: true,
                overridden: false
            })
        );
        assert_eq!(
            hrb_status(
                &tall,
                Some((false, "Surveyed at 17.9 m to the top storey floor"))
            ),
            Ok(HrbStatus {
                is_hrb: false,
                derived: true,
                overridden: true
            })
        );
    }

    #[test]
    fn an_override_without_a_reason_is_refused() {
        assert_eq!(
            hrb_status(&HrbFacts::default(), Some((true, "  "))),
            Err(HrbOverrideError)
        );
    }

    #[test]
    fn heights_are_read_in_metres_and_kept_in_centimetres() {
        for (given, cm) in [
            ("18.5", 1850),
            ("18.50", 1850),
            ("18", 1800),
            ("18.5m", 1850),
            (" 18.05 M ", 1805),
            ("0", 0),
            ("1000", 100_000),
        ] {
            assert_eq!(parse_height_metres(given), Ok(cm), "{given}");
        }
        for bad in [
            "",
            "-1",
            "1000.01",
            "18.555",
            "tall",
            "18,5",
            "99999999999999999999",
        ] {
            assert!(parse_height_metres(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(format_height(1805), "18.05 m");
    }

    #[test]
    fn floor_areas_are_kept_in_hundredths_of_a_square_metre() {
        assert_eq!(parse_square_metres("72.5"), Ok(7250));
        assert_eq!(parse_square_metres("72.55 m²"), Ok(7255));
        assert_eq!(parse_square_metres("1,250 m2"), Ok(125_000));
        assert!(matches!(
            parse_square_metres("72.555"),
            Err(AreaError::TooManyDecimals(_))
        ));
        assert!(matches!(
            parse_square_metres("-3"),
            Err(AreaError::Invalid(_))
        ));
        assert!(matches!(
            parse_square_metres("1000001"),
            Err(AreaError::TooLarge(_))
        ));
    }
}
