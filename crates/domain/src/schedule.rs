//! Planned maintenance: how often a maintenance event recurs, when it is next due, where it
//! sits on the compliance matrix, and the UK templates an event can start from.
//!
//! Recurrences are stored as a small subset of an RFC 5545 RRULE (`FREQ=MONTHLY;INTERVAL=6`), so
//! the stored form is a standard one that a calendar export can reuse unchanged.

use std::fmt;

use time::{Date, Duration, Month};

use crate::choice::choice_enum;

pub use crate::choice::ChoiceError;

/// The largest interval we accept: ten years of months is already beyond any UK cycle.
pub const MAX_INTERVAL: u16 = 120;

/// How many dates [`occurrences`] yields at most, so a daily series over decades cannot flood a
/// calendar page.
pub const MAX_OCCURRENCES: usize = 1_000;

/// The calendar unit a recurrence counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecurUnit {
    Day,
    Week,
    Month,
    Year,
}

impl RecurUnit {
    /// Every unit, in the order a form offers them.
    pub const ALL: &'static [Self] = &[Self::Day, Self::Week, Self::Month, Self::Year];

    /// The RRULE `FREQ` value.
    pub fn rrule_freq(self) -> &'static str {
        match self {
            Self::Day => "DAILY",
            Self::Week => "WEEKLY",
            Self::Month => "MONTHLY",
            Self::Year => "YEARLY",
        }
    }

    fn from_rrule_freq(value: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|unit| unit.rrule_freq().eq_ignore_ascii_case(value))
    }

    /// What the custom-frequency form submits: "day" or "days", and so on.
    fn from_form(value: &str) -> Option<Self> {
        let value = value.trim();
        Self::ALL.iter().copied().find(|unit| {
            value.eq_ignore_ascii_case(unit.singular()) || value.eq_ignore_ascii_case(unit.plural())
        })
    }

    fn singular(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::Year => "year",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Self::Day => "days",
            Self::Week => "weeks",
            Self::Month => "months",
            Self::Year => "years",
        }
    }
}

/// Why a recurrence was refused. The messages are shown to the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecurrenceError {
    #[error("No recurrence given.")]
    Empty,
    #[error("The recurrence needs a frequency: daily, weekly, monthly or yearly.")]
    MissingFrequency,
    #[error("“{0}” is not a recurrence we support: use daily, weekly, monthly or yearly.")]
    UnsupportedFrequency(String),
    #[error("The interval must be a whole number from 1 to 120.")]
    Interval,
    #[error(
        "“{0}” is not supported: a recurrence can only say how often (FREQ) and every how many (INTERVAL)."
    )]
    UnsupportedPart(String),
    #[error("“{0}” is not a recurrence rule part: parts look like FREQ=MONTHLY.")]
    Malformed(String),
    #[error("{0} is given more than once.")]
    Repeated(&'static str),
    #[error(
        "“{0}” is not a frequency: choose weekly, monthly, quarterly, half-yearly, annual or custom."
    )]
    UnknownFrequency(String),
    #[error("Choose days, weeks, months or years for a custom frequency.")]
    CustomUnit,
}

/// How often planned work repeats: every `interval` `unit`s. Valid by construction, so the
/// interval is always in 1..=[`MAX_INTERVAL`] and a series always moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Recurrence {
    unit: RecurUnit,
    interval: u16,
}

impl Recurrence {
    /// Every `interval` `unit`s, refusing an interval outside 1..=120.
    pub fn new(unit: RecurUnit, interval: u16) -> Result<Self, RecurrenceError> {
        if (1..=MAX_INTERVAL).contains(&interval) {
            Ok(Self { unit, interval })
        } else {
            Err(RecurrenceError::Interval)
        }
    }

    /// For intervals known to be in range at compile time (the named frequencies, templates).
    const fn every(interval: u16, unit: RecurUnit) -> Self {
        Self { unit, interval }
    }

    pub const fn weekly() -> Self {
        Self::every(1, RecurUnit::Week)
    }

    pub const fn monthly() -> Self {
        Self::every(1, RecurUnit::Month)
    }

    pub const fn quarterly() -> Self {
        Self::every(3, RecurUnit::Month)
    }

    pub const fn half_yearly() -> Self {
        Self::every(6, RecurUnit::Month)
    }

    pub const fn annual() -> Self {
        Self::every(1, RecurUnit::Year)
    }

    pub fn unit(self) -> RecurUnit {
        self.unit
    }

    pub fn interval(self) -> u16 {
        self.interval
    }

    /// Plain English for people: "Annual", "Quarterly", "Every 6 months", "Every 2 weeks".
    pub fn label(self) -> String {
        match (self.unit, self.interval) {
            (RecurUnit::Day, 1) => "Daily".to_owned(),
            (RecurUnit::Week, 1) => "Weekly".to_owned(),
            (RecurUnit::Month, 1) => "Monthly".to_owned(),
            (RecurUnit::Month, 3) => "Quarterly".to_owned(),
            (RecurUnit::Year, 1) => "Annual".to_owned(),
            (unit, n) => format!("Every {n} {}", unit.plural()),
        }
    }

    /// Reads the RRULE subset we store: `FREQ=DAILY|WEEKLY|MONTHLY|YEARLY` with an optional
    /// `INTERVAL=n` (default 1), parts in any order and any case, an optional `RRULE:` prefix.
    /// Anything else (BYDAY, COUNT, UNTIL, …) is refused rather than silently ignored, because
    /// ignoring it would schedule work on dates the rule's author did not mean.
    pub fn parse_rrule(input: &str) -> Result<Self, RecurrenceError> {
        let input = input.trim();
        let rule = input
            .get(..6)
            .filter(|prefix| prefix.eq_ignore_ascii_case("RRULE:"))
            .and_then(|_| input.get(6..))
            .unwrap_or(input);
        let mut unit = None;
        let mut interval = None;
        for part in rule.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((name, value)) = part.split_once('=') else {
                return Err(RecurrenceError::Malformed(part.to_owned()));
            };
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("FREQ") {
                let parsed = RecurUnit::from_rrule_freq(value)
                    .ok_or_else(|| RecurrenceError::UnsupportedFrequency(part.to_owned()))?;
                if unit.replace(parsed).is_some() {
                    return Err(RecurrenceError::Repeated("FREQ"));
                }
            } else if name.eq_ignore_ascii_case("INTERVAL") {
                if interval.replace(parse_interval(value)?).is_some() {
                    return Err(RecurrenceError::Repeated("INTERVAL"));
                }
            } else {
                return Err(RecurrenceError::UnsupportedPart(part.to_owned()));
            }
        }
        match unit {
            Some(unit) => Self::new(unit, interval.unwrap_or(1)),
            None if rule.trim().is_empty() => Err(RecurrenceError::Empty),
            None => Err(RecurrenceError::MissingFrequency),
        }
    }

    /// The canonical stored form: `FREQ` first, `INTERVAL` only when it is not the default 1.
    pub fn to_rrule(self) -> String {
        match self.interval {
            1 => format!("FREQ={}", self.unit.rrule_freq()),
            n => format!("FREQ={};INTERVAL={n}", self.unit.rrule_freq()),
        }
    }

    /// What the event form submits: `frequency` is one of "weekly", "monthly", "quarterly",
    /// "half_yearly", "annual" or "custom"; a custom frequency also needs `custom_interval`
    /// (1 to 120) and `custom_unit` ("days", "weeks", "months" or "years", singular also taken).
    pub fn from_form(
        frequency: &str,
        custom_interval: Option<&str>,
        custom_unit: Option<&str>,
    ) -> Result<Self, RecurrenceError> {
        let frequency = frequency.trim();
        let named = [
            ("weekly", Self::weekly()),
            ("monthly", Self::monthly()),
            ("quarterly", Self::quarterly()),
            ("half_yearly", Self::half_yearly()),
            ("annual", Self::annual()),
        ];
        if let Some((_, recurrence)) = named
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(frequency))
        {
            return Ok(*recurrence);
        }
        if !frequency.eq_ignore_ascii_case("custom") {
            return Err(RecurrenceError::UnknownFrequency(frequency.to_owned()));
        }
        let interval = parse_interval(custom_interval.unwrap_or_default().trim())?;
        let unit = custom_unit
            .and_then(RecurUnit::from_form)
            .ok_or(RecurrenceError::CustomUnit)?;
        Self::new(unit, interval)
    }

    /// The `k`th date of the series that starts at `anchor` (k = 0 is the anchor itself), or
    /// `None` past the end of the calendar. Always computed from the anchor, never from the
    /// previous date, so clamping one month's end does not shift the months after it.
    fn nth(self, anchor: Date, k: i64) -> Option<Date> {
        let steps = k.checked_mul(i64::from(self.interval))?;
        match self.unit {
            RecurUnit::Day => anchor.checked_add(Duration::days(steps)),
            RecurUnit::Week => anchor.checked_add(Duration::weeks(steps)),
            RecurUnit::Month => add_months(anchor, steps),
            RecurUnit::Year => add_months(anchor, steps.checked_mul(12)?),
        }
    }

    /// The index of the first series date strictly after `after` (0 when the anchor is).
    fn first_index_after(self, anchor: Date, after: Date) -> i64 {
        if after < anchor {
            return 0;
        }
        // A whole-step estimate that never overshoots: the series date it names is on or
        // before `after` (or, for months, at most in the same month), so at most two steps of
        // walking remain.
        let elapsed = match self.unit {
            RecurUnit::Day | RecurUnit::Week => (after - anchor).whole_days(),
            RecurUnit::Month | RecurUnit::Year => month_index(after) - month_index(anchor),
        };
        let step = i64::from(self.interval)
            * match self.unit {
                RecurUnit::Day | RecurUnit::Month => 1,
                RecurUnit::Week => 7,
                RecurUnit::Year => 12,
            };
        let mut k = elapsed / step;
        while self.nth(anchor, k).is_some_and(|d| d <= after) {
            k += 1;
        }
        k
    }
}

impl fmt::Display for Recurrence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

fn parse_interval(value: &str) -> Result<u16, RecurrenceError> {
    value
        .parse::<u16>()
        .ok()
        .filter(|n| (1..=MAX_INTERVAL).contains(n))
        .ok_or(RecurrenceError::Interval)
}

/// Months since year 0, so two dates' difference in calendar months is a subtraction.
fn month_index(d: Date) -> i64 {
    i64::from(d.year()) * 12 + i64::from(u8::from(d.month())) - 1
}

/// `d` plus `months` calendar months, clamped to the end of a shorter month (31 January + 1
/// month is 28 or 29 February; 29 February + 12 months is 28 February).
fn add_months(d: Date, months: i64) -> Option<Date> {
    let index = month_index(d).checked_add(months)?;
    let year = i32::try_from(index.div_euclid(12)).ok()?;
    let month = Month::try_from(u8::try_from(index.rem_euclid(12) + 1).ok()?).ok()?;
    let day = d.day().min(month.length(year));
    Date::from_calendar_date(year, month, day).ok()
}

choice_enum! {
    /// How the next due date follows from a completed visit.
    pub enum DueBasis ("due-date basis") {
        /// From the date the work was actually done: how most statutory cycles are measured
        /// ("no more than 12 months since the last check").
        Rolling => "rolling", "Rolling (from completion)";
        /// On a fixed calendar from the first due date, however early or late the work was
        /// done, so visits keep to the same date each cycle.
        Anchored => "anchored", "Anchored (fixed calendar)";
    }
}

impl DueBasis {
    /// The stored key ("rolling" or "anchored"); the same as [`DueBasis::key`].
    pub fn as_str(self) -> &'static str {
        self.key()
    }
}

/// When the work is next due after a visit on `completed_on`.
///
/// - Rolling: `completed_on` plus one interval.
/// - Anchored: the series is `anchor + k × interval` (k = 0, 1, 2, …), always counted from the
///   original anchor so month-end clamping never drifts (31 January monthly gives 28 February,
///   31 March, 30 April). The next due date is the first series date strictly after both the
///   current due date and the completion date, i.e. after `max(current_due, completed_on)`:
///   early work does not pull the cycle forward, and very late work skips the dates already
///   missed instead of leaving the next due date in the past.
///
/// Past the end of the calendar (year 9999) the result saturates at [`Date::MAX`].
pub fn next_due(
    rec: Recurrence,
    basis: DueBasis,
    anchor: Date,
    current_due: Date,
    completed_on: Date,
) -> Date {
    let next = match basis {
        DueBasis::Rolling => rec.nth(completed_on, 1),
        DueBasis::Anchored => {
            let k = rec.first_index_after(anchor, current_due.max(completed_on));
            rec.nth(anchor, k)
        }
    };
    next.unwrap_or(Date::MAX)
}

/// The series dates (from `anchor`, as for anchored events) that fall in `from..=to`, for the
/// maintenance calendar; at most [`MAX_OCCURRENCES`] of them.
pub fn occurrences(
    rec: Recurrence,
    anchor: Date,
    from: Date,
    to: Date,
) -> impl Iterator<Item = Date> {
    let first = from
        .previous_day()
        .map_or(0, |before| rec.first_index_after(anchor, before));
    (first..)
        .map_while(move |k| rec.nth(anchor, k))
        .take_while(move |d| *d <= to)
        .take(MAX_OCCURRENCES)
}

/// Amber on the compliance matrix starts this many days before the due date.
pub const DUE_SOON_DAYS: i64 = 30;

/// A cell of the compliance matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ComplianceStatus {
    Overdue,
    DueSoon,
    Compliant,
}

impl ComplianceStatus {
    pub fn label(self) -> &'static str {
        match self {
            Self::Overdue => "Overdue",
            Self::DueSoon => "Due within 30 days",
            Self::Compliant => "Compliant",
        }
    }

    /// The traffic-light class the matrix and the printed report colour the cell with.
    pub fn css(self) -> &'static str {
        match self {
            Self::Overdue => "red",
            Self::DueSoon => "amber",
            Self::Compliant => "green",
        }
    }
}

/// Overdue once the due date has passed (due today is not yet overdue); due soon when due
/// within [`DUE_SOON_DAYS`] days of `today`, inclusive; compliant otherwise.
pub fn compliance_status(due: Date, today: Date) -> ComplianceStatus {
    if due < today {
        ComplianceStatus::Overdue
    } else if today
        .checked_add(Duration::days(DUE_SOON_DAYS))
        .is_none_or(|limit| due <= limit)
    {
        ComplianceStatus::DueSoon
    } else {
        ComplianceStatus::Compliant
    }
}

/// A starting point for a new maintenance event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceTemplate {
    /// Stable snake_case key stored with events made from the template.
    pub key: &'static str,
    pub name: &'static str,
    pub recurrence: Recurrence,
    /// Whether the event is a column of the compliance matrix.
    pub compliance: bool,
    pub basis: DueBasis,
}

const fn template_of(
    key: &'static str,
    name: &'static str,
    recurrence: Recurrence,
    compliance: bool,
    basis: DueBasis,
) -> MaintenanceTemplate {
    MaintenanceTemplate {
        key,
        name,
        recurrence,
        compliance,
        basis,
    }
}

/// UK defaults. Inspections whose legal limit runs from the last inspection (EICR, LOLER,
/// risk assessments, PAT) are rolling; gas safety is anchored because a check up to two months
/// early may keep the old expiry date, and routine service visits are anchored so contractors
/// can keep to a fixed slot.
const TEMPLATES: [MaintenanceTemplate; 10] = [
    template_of(
        "gas_safety",
        "Gas safety check (CP12)",
        Recurrence::annual(),
        true,
        DueBasis::Anchored,
    ),
    template_of(
        "eicr",
        "Electrical installation condition report (communal electrics)",
        Recurrence::every(5, RecurUnit::Year),
        true,
        DueBasis::Rolling,
    ),
    template_of(
        "fire_risk_assessment",
        "Fire risk assessment",
        Recurrence::annual(),
        true,
        DueBasis::Rolling,
    ),
    template_of(
        "lift_loler",
        "Lift thorough examination (LOLER)",
        Recurrence::half_yearly(),
        true,
        DueBasis::Rolling,
    ),
    template_of(
        "legionella_risk_assessment",
        "Legionella and water hygiene risk assessment",
        Recurrence::every(2, RecurUnit::Year),
        true,
        DueBasis::Rolling,
    ),
    // Not a matrix column: a monthly task is always within the 30-day amber window.
    template_of(
        "water_temperature_checks",
        "Water temperature checks",
        Recurrence::monthly(),
        false,
        DueBasis::Anchored,
    ),
    template_of(
        "fire_alarm_service",
        "Fire alarm service",
        Recurrence::half_yearly(),
        false,
        DueBasis::Anchored,
    ),
    template_of(
        "emergency_lighting_test",
        "Emergency lighting annual test",
        Recurrence::annual(),
        false,
        DueBasis::Anchored,
    ),
    // PAT and the asbestos register review are compliance types in the product spec (§2.7).
    template_of(
        "pat_testing",
        "Portable appliance testing (PAT)",
        Recurrence::annual(),
        true,
        DueBasis::Rolling,
    ),
    template_of(
        "asbestos_register_review",
        "Asbestos register review",
        Recurrence::annual(),
        true,
        DueBasis::Rolling,
    ),
];

/// The templates offered under Maintenance → Events → Add event, in the order shown.
pub fn templates() -> &'static [MaintenanceTemplate] {
    &TEMPLATES
}

/// The template with this key.
pub fn template(key: &str) -> Option<&'static MaintenanceTemplate> {
    TEMPLATES.iter().find(|t| t.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn every(interval: u16, unit: RecurUnit) -> Recurrence {
        Recurrence::new(unit, interval).unwrap()
    }

    fn dates(iter: impl Iterator<Item = Date>) -> Vec<Date> {
        iter.collect()
    }

    // --- Recurrence and labels ---

    #[test]
    fn named_frequencies_count_in_the_expected_units() {
        assert_eq!(Recurrence::weekly(), every(1, RecurUnit::Week));
        assert_eq!(Recurrence::monthly(), every(1, RecurUnit::Month));
        assert_eq!(Recurrence::quarterly(), every(3, RecurUnit::Month));
        assert_eq!(Recurrence::half_yearly(), every(6, RecurUnit::Month));
        assert_eq!(Recurrence::annual(), every(1, RecurUnit::Year));
        assert_eq!(Recurrence::half_yearly().unit(), RecurUnit::Month);
        assert_eq!(Recurrence::half_yearly().interval(), 6);
    }

    #[test]
    fn labels_are_plain_english() {
        assert_eq!(Recurrence::annual().label(), "Annual");
        assert_eq!(Recurrence::half_yearly().label(), "Every 6 months");
        assert_eq!(Recurrence::quarterly().label(), "Quarterly");
        assert_eq!(Recurrence::monthly().label(), "Monthly");
        assert_eq!(Recurrence::weekly().label(), "Weekly");
        assert_eq!(every(2, RecurUnit::Week).label(), "Every 2 weeks");
        assert_eq!(every(1, RecurUnit::Day).label(), "Daily");
        assert_eq!(every(3, RecurUnit::Day).label(), "Every 3 days");
        assert_eq!(every(5, RecurUnit::Year).label(), "Every 5 years");
        assert_eq!(every(5, RecurUnit::Year).to_string(), "Every 5 years");
    }

    #[test]
    fn new_refuses_interval_outside_1_to_120() {
        assert_eq!(
            Recurrence::new(RecurUnit::Month, 0),
            Err(RecurrenceError::Interval)
        );
        assert_eq!(
            Recurrence::new(RecurUnit::Month, 121),
            Err(RecurrenceError::Interval)
        );
        assert_eq!(
            Recurrence::new(RecurUnit::Month, 120).unwrap().interval(),
            120
        );
    }

    // --- RRULE ---

    #[test]
    fn rrule_parts_in_any_order_and_case_give_canonical_form() {
        let r = Recurrence::parse_rrule("interval=6;freq=monthly").unwrap();
        assert_eq!(r, Recurrence::half_yearly());
        assert_eq!(r.to_rrule(), "FREQ=MONTHLY;INTERVAL=6");
        assert_eq!(
            Recurrence::parse_rrule(" RRULE:FREQ=Weekly;INTERVAL=2; ")
                .unwrap()
                .to_rrule(),
            "FREQ=WEEKLY;INTERVAL=2"
        );
    }

    #[test]
    fn rrule_interval_defaults_to_one_and_is_omitted_when_one() {
        let r = Recurrence::parse_rrule("FREQ=YEARLY").unwrap();
        assert_eq!(r, Recurrence::annual());
        assert_eq!(r.to_rrule(), "FREQ=YEARLY");
        assert_eq!(
            Recurrence::parse_rrule("FREQ=DAILY;INTERVAL=1").unwrap(),
            every(1, RecurUnit::Day)
        );
    }

    #[test]
    fn every_recurrence_round_trips_through_rrule() {
        for unit in RecurUnit::ALL {
            for interval in [1, 2, 6, 12, 120] {
                let r = every(interval, *unit);
                assert_eq!(Recurrence::parse_rrule(&r.to_rrule()), Ok(r));
            }
        }
    }

    #[test]
    fn rrule_refuses_hourly_with_a_helpful_message() {
        let err = Recurrence::parse_rrule("FREQ=HOURLY").unwrap_err();
        assert_eq!(
            err,
            RecurrenceError::UnsupportedFrequency("FREQ=HOURLY".into())
        );
        assert_eq!(
            err.to_string(),
            "“FREQ=HOURLY” is not a recurrence we support: use daily, weekly, monthly or yearly."
        );
    }

    #[test]
    fn rrule_refuses_parts_other_than_freq_and_interval() {
        assert_eq!(
            Recurrence::parse_rrule("FREQ=WEEKLY;BYDAY=MO"),
            Err(RecurrenceError::UnsupportedPart("BYDAY=MO".into()))
        );
        assert_eq!(
            Recurrence::parse_rrule("FREQ=MONTHLY;COUNT=10"),
            Err(RecurrenceError::UnsupportedPart("COUNT=10".into()))
        );
    }

    #[test]
    fn rrule_interval_must_be_a_whole_number_from_1_to_120() {
        for bad in ["0", "121", "-1", "1.5", "six", ""] {
            let err = Recurrence::parse_rrule(&format!("FREQ=MONTHLY;INTERVAL={bad}")).unwrap_err();
            assert_eq!(err, RecurrenceError::Interval, "INTERVAL={bad}");
            assert_eq!(
                err.to_string(),
                "The interval must be a whole number from 1 to 120."
            );
        }
    }

    #[test]
    fn rrule_refuses_missing_repeated_and_malformed_parts() {
        assert_eq!(Recurrence::parse_rrule("  "), Err(RecurrenceError::Empty));
        assert_eq!(
            Recurrence::parse_rrule("INTERVAL=2"),
            Err(RecurrenceError::MissingFrequency)
        );
        assert_eq!(
            Recurrence::parse_rrule("FREQ=DAILY;FREQ=WEEKLY"),
            Err(RecurrenceError::Repeated("FREQ"))
        );
        assert_eq!(
            Recurrence::parse_rrule("FREQ=DAILY;INTERVAL=2;INTERVAL=3"),
            Err(RecurrenceError::Repeated("INTERVAL"))
        );
        assert_eq!(
            Recurrence::parse_rrule("monthly"),
            Err(RecurrenceError::Malformed("monthly".into()))
        );
    }

    // --- Form values ---

    #[test]
    fn form_named_frequencies() {
        let cases = [
            ("weekly", Recurrence::weekly()),
            ("monthly", Recurrence::monthly()),
            ("quarterly", Recurrence::quarterly()),
            ("half_yearly", Recurrence::half_yearly()),
            ("annual", Recurrence::annual()),
            (" Annual ", Recurrence::annual()),
        ];
        for (value, expected) in cases {
            assert_eq!(Recurrence::from_form(value, None, None), Ok(expected));
        }
    }

    #[test]
    fn form_custom_needs_interval_and_unit() {
        assert_eq!(
            Recurrence::from_form("custom", Some("5"), Some("years")),
            Ok(every(5, RecurUnit::Year))
        );
        assert_eq!(
            Recurrence::from_form("custom", Some(" 2 "), Some("Week")),
            Ok(every(2, RecurUnit::Week))
        );
        assert_eq!(
            Recurrence::from_form("custom", None, Some("days")),
            Err(RecurrenceError::Interval)
        );
        assert_eq!(
            Recurrence::from_form("custom", Some("200"), Some("days")),
            Err(RecurrenceError::Interval)
        );
        assert_eq!(
            Recurrence::from_form("custom", Some("3"), Some("fortnights")),
            Err(RecurrenceError::CustomUnit)
        );
        assert_eq!(
            Recurrence::from_form("custom", Some("3"), None),
            Err(RecurrenceError::CustomUnit)
        );
    }

    #[test]
    fn form_refuses_unknown_frequency() {
        let err = Recurrence::from_form("fortnightly", None, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "“fortnightly” is not a frequency: choose weekly, monthly, quarterly, half-yearly, annual or custom."
        );
    }

    // --- Calendar arithmetic ---

    #[test]
    fn month_arithmetic_clamps_to_month_end() {
        assert_eq!(
            add_months(date!(2027 - 01 - 31), 1),
            Some(date!(2027 - 02 - 28))
        );
        assert_eq!(
            add_months(date!(2028 - 01 - 31), 1),
            Some(date!(2028 - 02 - 29))
        );
        assert_eq!(
            add_months(date!(2026 - 08 - 31), 1),
            Some(date!(2026 - 09 - 30))
        );
        assert_eq!(
            add_months(date!(2026 - 11 - 15), 3),
            Some(date!(2027 - 02 - 15))
        );
        assert_eq!(
            add_months(date!(2026 - 03 - 31), -1),
            Some(date!(2026 - 02 - 28))
        );
    }

    #[test]
    fn a_year_after_29_february_is_28_february() {
        let r = Recurrence::annual();
        assert_eq!(r.nth(date!(2028 - 02 - 29), 1), Some(date!(2029 - 02 - 28)));
        assert_eq!(r.nth(date!(2028 - 02 - 29), 4), Some(date!(2032 - 02 - 29)));
    }

    // --- Due basis and next due ---

    #[test]
    fn due_basis_keys_parse_and_round_trip() {
        assert_eq!(DueBasis::Rolling.as_str(), "rolling");
        assert_eq!(DueBasis::Anchored.as_str(), "anchored");
        for basis in DueBasis::ALL {
            assert_eq!(DueBasis::parse(basis.as_str()), Ok(*basis));
        }
        assert_eq!(DueBasis::parse("Anchored"), Ok(DueBasis::Anchored));
        assert!(DueBasis::parse("fixed-ish").is_err());
    }

    #[test]
    fn rolling_uses_completion_date() {
        let next = next_due(
            Recurrence::annual(),
            DueBasis::Rolling,
            date!(2025 - 06 - 01),
            date!(2026 - 06 - 01),
            date!(2026 - 04 - 10),
        );
        assert_eq!(next, date!(2027 - 04 - 10));
    }

    #[test]
    fn rolling_late_completion_moves_the_cycle_later() {
        let next = next_due(
            Recurrence::half_yearly(),
            DueBasis::Rolling,
            date!(2026 - 01 - 31),
            date!(2026 - 07 - 31),
            date!(2026 - 08 - 31),
        );
        assert_eq!(next, date!(2027 - 02 - 28));
    }

    #[test]
    fn anchored_monthly_from_31_january_does_not_drift() {
        let anchor = date!(2026 - 01 - 31);
        let monthly = Recurrence::monthly();
        let feb = next_due(monthly, DueBasis::Anchored, anchor, anchor, anchor);
        assert_eq!(feb, date!(2026 - 02 - 28));
        let mar = next_due(monthly, DueBasis::Anchored, anchor, feb, feb);
        assert_eq!(mar, date!(2026 - 03 - 31));
        let apr = next_due(
            monthly,
            DueBasis::Anchored,
            anchor,
            mar,
            date!(2026 - 03 - 30),
        );
        assert_eq!(apr, date!(2026 - 04 - 30));
        let may = next_due(monthly, DueBasis::Anchored, anchor, apr, apr);
        assert_eq!(may, date!(2026 - 05 - 31));
    }

    #[test]
    fn anchored_early_completion_keeps_the_calendar_date() {
        // Gas safety due 1 June, done on 10 April: next due stays 1 June next year.
        let next = next_due(
            Recurrence::annual(),
            DueBasis::Anchored,
            date!(2025 - 06 - 01),
            date!(2026 - 06 - 01),
            date!(2026 - 04 - 10),
        );
        assert_eq!(next, date!(2027 - 06 - 01));
    }

    #[test]
    fn anchored_very_late_completion_skips_missed_dates() {
        // Monthly from 1 January, due 1 February, only done on 15 April.
        let next = next_due(
            Recurrence::monthly(),
            DueBasis::Anchored,
            date!(2026 - 01 - 01),
            date!(2026 - 02 - 01),
            date!(2026 - 04 - 15),
        );
        assert_eq!(next, date!(2026 - 05 - 01));
    }

    #[test]
    fn anchored_completion_on_a_series_date_moves_to_the_following_one() {
        let next = next_due(
            Recurrence::quarterly(),
            DueBasis::Anchored,
            date!(2026 - 01 - 15),
            date!(2026 - 04 - 15),
            date!(2026 - 07 - 15),
        );
        assert_eq!(next, date!(2026 - 10 - 15));
    }

    #[test]
    fn anchored_annual_from_29_february_returns_to_29th_in_leap_years() {
        let anchor = date!(2024 - 02 - 29);
        let annual = Recurrence::annual();
        let next = |due| next_due(annual, DueBasis::Anchored, anchor, due, due);
        assert_eq!(next(anchor), date!(2025 - 02 - 28));
        assert_eq!(next(date!(2027 - 02 - 28)), date!(2028 - 02 - 29));
    }

    #[test]
    fn anchored_weekly_and_daily_step_in_days() {
        let fortnightly = every(2, RecurUnit::Week);
        // Anchor Monday 5 January 2026; due 19 January; done Wednesday 21 January.
        let next = next_due(
            fortnightly,
            DueBasis::Anchored,
            date!(2026 - 01 - 05),
            date!(2026 - 01 - 19),
            date!(2026 - 01 - 21),
        );
        assert_eq!(next, date!(2026 - 02 - 02));
        let every_ten_days = every(10, RecurUnit::Day);
        let next = next_due(
            every_ten_days,
            DueBasis::Anchored,
            date!(2026 - 01 - 01),
            date!(2026 - 01 - 11),
            date!(2026 - 01 - 11),
        );
        assert_eq!(next, date!(2026 - 01 - 21));
    }

    #[test]
    fn next_due_saturates_at_the_end_of_the_calendar() {
        let next = next_due(
            every(120, RecurUnit::Year),
            DueBasis::Rolling,
            date!(9990 - 01 - 01),
            date!(9990 - 01 - 01),
            date!(9990 - 01 - 01),
        );
        assert_eq!(next, Date::MAX);
    }

    // --- Calendar occurrences ---

    #[test]
    fn occurrences_list_series_dates_within_the_range_inclusive() {
        let got = dates(occurrences(
            Recurrence::monthly(),
            date!(2026 - 01 - 31),
            date!(2026 - 03 - 01),
            date!(2026 - 06 - 30),
        ));
        assert_eq!(
            got,
            [
                date!(2026 - 03 - 31),
                date!(2026 - 04 - 30),
                date!(2026 - 05 - 31),
                date!(2026 - 06 - 30),
            ]
        );
    }

    #[test]
    fn occurrences_start_at_the_anchor_and_include_a_from_date_on_the_series() {
        let got = dates(occurrences(
            Recurrence::quarterly(),
            date!(2026 - 02 - 10),
            date!(2025 - 01 - 01),
            date!(2026 - 08 - 10),
        ));
        assert_eq!(
            got,
            [
                date!(2026 - 02 - 10),
                date!(2026 - 05 - 10),
                date!(2026 - 08 - 10)
            ]
        );
        let got = dates(occurrences(
            Recurrence::quarterly(),
            date!(2026 - 02 - 10),
            date!(2026 - 05 - 10),
            date!(2026 - 05 - 10),
        ));
        assert_eq!(got, [date!(2026 - 05 - 10)]);
    }

    #[test]
    fn occurrences_are_empty_for_an_empty_range() {
        let got = dates(occurrences(
            Recurrence::weekly(),
            date!(2026 - 01 - 01),
            date!(2026 - 03 - 01),
            date!(2026 - 02 - 01),
        ));
        assert!(got.is_empty());
    }

    #[test]
    fn occurrences_are_capped_at_one_thousand() {
        let got = dates(occurrences(
            every(1, RecurUnit::Day),
            date!(2020 - 01 - 01),
            date!(2020 - 01 - 01),
            date!(2030 - 01 - 01),
        ));
        assert_eq!(got.len(), MAX_OCCURRENCES);
        assert_eq!(got.last(), Some(&date!(2022 - 09 - 26)));
    }

    // --- Compliance matrix ---

    #[test]
    fn compliance_status_boundaries() {
        let today = date!(2026 - 05 - 10);
        let status = |due| compliance_status(due, today);
        assert_eq!(status(date!(2026 - 05 - 09)), ComplianceStatus::Overdue);
        assert_eq!(status(today), ComplianceStatus::DueSoon);
        assert_eq!(status(date!(2026 - 06 - 09)), ComplianceStatus::DueSoon);
        assert_eq!(status(date!(2026 - 06 - 10)), ComplianceStatus::Compliant);
    }

    #[test]
    fn compliance_status_labels_and_colours() {
        assert_eq!(ComplianceStatus::Overdue.label(), "Overdue");
        assert_eq!(ComplianceStatus::DueSoon.label(), "Due within 30 days");
        assert_eq!(ComplianceStatus::Compliant.label(), "Compliant");
        assert_eq!(ComplianceStatus::Overdue.css(), "red");
        assert_eq!(ComplianceStatus::DueSoon.css(), "amber");
        assert_eq!(ComplianceStatus::Compliant.css(), "green");
    }

    // --- Templates ---

    #[test]
    fn templates_have_unique_snake_case_keys() {
        let keys: Vec<&str> = templates().iter().map(|t| t.key).collect();
        assert_eq!(keys.len(), 10);
        for (i, key) in keys.iter().enumerate() {
            assert!(
                key.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{key}"
            );
            assert!(!keys[i + 1..].contains(key), "{key} repeated");
            assert_eq!(template(key).map(|t| t.key), Some(*key));
        }
        assert_eq!(template("Gas_Safety"), None);
        assert_eq!(template("boiler"), None);
    }

    #[test]
    fn statutory_templates_carry_uk_cycles() {
        let t = |key| template(key).unwrap();
        let gas = t("gas_safety");
        assert_eq!(
            (gas.recurrence, gas.compliance, gas.basis),
            (Recurrence::annual(), true, DueBasis::Anchored)
        );
        assert_eq!(t("eicr").recurrence.to_rrule(), "FREQ=YEARLY;INTERVAL=5");
        assert_eq!(t("fire_risk_assessment").recurrence, Recurrence::annual());
        assert_eq!(t("lift_loler").recurrence.label(), "Every 6 months");
        assert_eq!(
            t("legionella_risk_assessment").recurrence.label(),
            "Every 2 years"
        );
        assert_eq!(
            t("water_temperature_checks").recurrence,
            Recurrence::monthly()
        );
        assert_eq!(
            t("fire_alarm_service").recurrence,
            Recurrence::half_yearly()
        );
        assert_eq!(
            t("emergency_lighting_test").recurrence,
            Recurrence::annual()
        );
        assert_eq!(t("pat_testing").recurrence, Recurrence::annual());
        assert_eq!(
            t("asbestos_register_review").recurrence,
            Recurrence::annual()
        );
    }

    #[test]
    fn compliance_columns_are_the_spec_compliance_types() {
        let compliance: Vec<&str> = templates()
            .iter()
            .filter(|t| t.compliance)
            .map(|t| t.key)
            .collect();
        assert_eq!(
            compliance,
            [
                "gas_safety",
                "eicr",
                "fire_risk_assessment",
                "lift_loler",
                "legionella_risk_assessment",
                "pat_testing",
                "asbestos_register_review",
            ]
        );
    }
}
