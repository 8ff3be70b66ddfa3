//! Ticket service levels: priorities, their response and resolution targets, when a target
//! falls due in UK working time, and the green/amber/red indicator.
//!
//! Working days are Monday to Friday except bank holidays in England and Wales. The holidays are
//! computed from the rules (with the one-off changes made by proclamation listed in a table)
//! because the crate is pure and cannot fetch the GOV.UK list.

use std::fmt;

use time::macros::date;
use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Weekday};

use crate::choice::choice_enum;
use crate::dates::uk_offset;

pub use crate::choice::ChoiceError;

choice_enum! {
    /// How quickly a ticket must be answered and resolved.
    pub enum Priority ("priority") {
        Urgent => "urgent", "Urgent";
        High => "high", "High";
        Medium => "medium", "Medium", also ["normal"];
        Low => "low", "Low";
    }
}

impl Priority {
    /// The stored key ("urgent", "high", "medium", "low"); the same as [`Priority::key`].
    pub fn as_str(self) -> &'static str {
        self.key()
    }

    /// Target for the first response (product spec §2.7).
    pub const fn response(self) -> SlaSpan {
        match self {
            Self::Urgent => SlaSpan::Hours(1),
            Self::High => SlaSpan::Hours(4),
            Self::Medium => SlaSpan::WorkingDays(1),
            Self::Low => SlaSpan::WorkingDays(3),
        }
    }

    /// Target for resolution (product spec §2.7).
    pub const fn resolution(self) -> SlaSpan {
        match self {
            Self::Urgent => SlaSpan::Hours(24),
            Self::High => SlaSpan::WorkingDays(3),
            Self::Medium => SlaSpan::WorkingDays(10),
            Self::Low => SlaSpan::WorkingDays(30),
        }
    }
}

/// An SLA target: urgent work runs on the clock around the weekend, the rest in working days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlaSpan {
    /// Elapsed clock hours, nights, weekends and holidays included.
    Hours(u32),
    /// Whole working days in England and Wales, same time of day.
    WorkingDays(u32),
}

impl SlaSpan {
    /// "1 hour", "24 hours", "1 working day", "3 working days".
    pub fn label(self) -> String {
        match self {
            Self::Hours(1) => "1 hour".to_owned(),
            Self::Hours(n) => format!("{n} hours"),
            Self::WorkingDays(1) => "1 working day".to_owned(),
            Self::WorkingDays(n) => format!("{n} working days"),
        }
    }
}

impl fmt::Display for SlaSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// Regular holidays moved by proclamation: (the date the rule gives, the date observed).
const MOVED: [(Date, Date); 5] = [
    // VE Day 50th anniversary.
    (date!(1995 - 05 - 01), date!(1995 - 05 - 08)),
    // Golden Jubilee.
    (date!(2002 - 05 - 27), date!(2002 - 06 - 04)),
    // Diamond Jubilee.
    (date!(2012 - 05 - 28), date!(2012 - 06 - 04)),
    // VE Day 75th anniversary.
    (date!(2020 - 05 - 04), date!(2020 - 05 - 08)),
    // Platinum Jubilee.
    (date!(2022 - 05 - 30), date!(2022 - 06 - 02)),
];

/// Extra one-off bank holidays.
const EXTRA: [Date; 9] = [
    date!(1977 - 06 - 07), // Silver Jubilee
    date!(1981 - 07 - 29), // Royal wedding
    date!(1999 - 12 - 31), // Millennium
    date!(2002 - 06 - 03), // Golden Jubilee
    date!(2011 - 04 - 29), // Royal wedding
    date!(2012 - 06 - 05), // Diamond Jubilee
    date!(2022 - 06 - 03), // Platinum Jubilee
    date!(2022 - 09 - 19), // State Funeral of Queen Elizabeth II
    date!(2023 - 05 - 08), // Coronation of King Charles III
];

/// Easter Sunday in the Gregorian calendar (the anonymous, or Meeus/Jones/Butcher, algorithm).
pub fn easter_sunday(year: i32) -> Option<Date> {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let (d, e) = (b / 4, b % 4);
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let (i, k) = (c / 4, c % 4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l) / 451;
    let n = h + l - 7 * m + 114;
    let month = Month::try_from(u8::try_from(n / 31).ok()?).ok()?;
    let day = u8::try_from(n % 31 + 1).ok()?;
    Date::from_calendar_date(year, month, day).ok()
}

fn is_weekend(d: Date) -> bool {
    matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)
}

fn first_monday(year: i32, month: Month) -> Option<Date> {
    let first = Date::from_calendar_date(year, month, 1).ok()?;
    let ahead = (7 - first.weekday().number_days_from_monday()) % 7;
    first.checked_add(Duration::days(i64::from(ahead)))
}

fn last_monday(year: i32, month: Month) -> Option<Date> {
    let last = Date::from_calendar_date(year, month, month.length(year)).ok()?;
    let back = last.weekday().number_days_from_monday();
    last.checked_sub(Duration::days(i64::from(back)))
}

/// A fixed-date holiday falling at a weekend, or on a day another holiday has taken, is
/// observed on the next weekday still free (so Christmas on Saturday gives Monday 27 and Boxing
/// Day Tuesday 28; Christmas on Sunday gives Boxing Day Monday 26 and Christmas Tuesday 27).
fn observed(day: Date, taken: &[Date]) -> Option<Date> {
    let mut d = day;
    while is_weekend(d) || taken.contains(&d) {
        d = d.next_day()?;
    }
    Some(d)
}

/// The bank holidays in England and Wales in `year`, in date order: the regular rules as they
/// have stood since the early May holiday began in 1978, with the one-off moves and extra days
/// since 1977. Years before 1978 get today's rules.
pub fn bank_holidays_england_wales(year: i32) -> Vec<Date> {
    let fixed = |month, day| Date::from_calendar_date(year, month, day).ok();
    let new_year = fixed(Month::January, 1).and_then(|d| observed(d, &[]));
    let easter = easter_sunday(year);
    let christmas = fixed(Month::December, 25).and_then(|d| observed(d, &[]));
    let boxing_day = fixed(Month::December, 26).and_then(|d| observed(d, christmas.as_slice()));
    let regular = [
        new_year,
        easter.and_then(|e| e.checked_sub(Duration::days(2))),
        easter.and_then(|e| e.checked_add(Duration::days(1))),
        first_monday(year, Month::May),
        last_monday(year, Month::May),
        last_monday(year, Month::August),
        christmas,
        boxing_day,
    ];
    let mut days: Vec<Date> = regular
        .into_iter()
        .flatten()
        .map(|d| {
            MOVED
                .iter()
                .find(|(usual, _)| *usual == d)
                .map_or(d, |(_, moved)| *moved)
        })
        .chain(EXTRA.into_iter().filter(|d| d.year() == year))
        .collect();
    days.sort_unstable();
    days.dedup();
    days
}

pub fn is_bank_holiday_england_wales(d: Date) -> bool {
    bank_holidays_england_wales(d.year()).contains(&d)
}

/// Monday to Friday and not a bank holiday in England and Wales.
pub fn is_working_day(d: Date) -> bool {
    !is_weekend(d) && !is_bank_holiday_england_wales(d)
}

fn next_working_day(d: Date) -> Option<Date> {
    let mut d = d.next_day()?;
    while !is_working_day(d) {
        d = d.next_day()?;
    }
    Some(d)
}

/// The latest representable instant, for targets pushed past the end of the calendar.
fn end_of_time() -> OffsetDateTime {
    PrimitiveDateTime::MAX.assume_utc()
}

/// When a target that starts at `start` falls due, in `start`'s offset.
///
/// - `Hours(n)`: `n` elapsed hours, whatever the day.
/// - `WorkingDays(n)`: read `start` in UK local time, step forward `n` working days (each step
///   goes to the next working day, skipping weekends and bank holidays), and keep the wall-clock
///   time. A start on a non-working day therefore counts the next working day as day 1: a
///   1-working-day target raised at 10:00 on Saturday is due at 10:00 on Monday. `WorkingDays(0)`
///   is due at once.
pub fn due_at(start: OffsetDateTime, span: SlaSpan) -> OffsetDateTime {
    match span {
        SlaSpan::Hours(n) => start.checked_add(Duration::hours(i64::from(n))),
        SlaSpan::WorkingDays(0) => Some(start),
        SlaSpan::WorkingDays(n) => add_working_days(start, n),
    }
    .unwrap_or_else(end_of_time)
}

fn add_working_days(start: OffsetDateTime, n: u32) -> Option<OffsetDateTime> {
    let local = start.checked_to_offset(uk_offset(start))?;
    let mut day = local.date();
    for _ in 0..n {
        day = next_working_day(day)?;
    }
    // UK clocks change only on Sundays, so a working day has one offset all day long and the
    // wall-clock time is never skipped or repeated.
    let offset = uk_offset(day.with_hms(12, 0, 0).ok()?.assume_utc());
    PrimitiveDateTime::new(day, local.time())
        .assume_offset(offset)
        .checked_to_offset(start.offset())
}

/// [`due_at`] pushed back by the time the ticket spent "Waiting on customer", since the clock
/// stops while the ball is in the reporter's court. A negative pause counts as none.
pub fn due_with_pauses(start: OffsetDateTime, span: SlaSpan, paused: Duration) -> OffsetDateTime {
    due_at(start, span)
        .checked_add(paused.max(Duration::ZERO))
        .unwrap_or_else(end_of_time)
}

/// The SLA indicator on a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SlaState {
    Green,
    Amber,
    Red,
}

impl SlaState {
    pub fn label(self) -> &'static str {
        match self {
            Self::Green => "On track",
            Self::Amber => "Close to breach",
            Self::Red => "Breached",
        }
    }

    pub fn css(self) -> &'static str {
        match self {
            Self::Green => "green",
            Self::Amber => "amber",
            Self::Red => "red",
        }
    }
}

/// Red once `now` reaches `due`; amber when no more than a quarter of the whole window
/// (`due − start`) remains, so staff get a warning in proportion to the target; green otherwise.
pub fn sla_state(start: OffsetDateTime, due: OffsetDateTime, now: OffsetDateTime) -> SlaState {
    if now >= due {
        return SlaState::Red;
    }
    let remaining = due - now;
    let whole = due - start;
    if remaining.checked_mul(4).is_some_and(|r| r <= whole) {
        SlaState::Amber
    } else {
        SlaState::Green
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{datetime, offset};

    // --- Priorities and targets ---

    #[test]
    fn priority_targets_match_the_spec_table() {
        use SlaSpan::{Hours, WorkingDays};
        let table: Vec<_> = Priority::ALL
            .iter()
            .map(|p| (p.as_str(), p.response(), p.resolution()))
            .collect();
        assert_eq!(
            table,
            [
                ("urgent", Hours(1), Hours(24)),
                ("high", Hours(4), WorkingDays(3)),
                ("medium", WorkingDays(1), WorkingDays(10)),
                ("low", WorkingDays(3), WorkingDays(30)),
            ]
        );
    }

    #[test]
    fn priority_parses_its_key_or_label_and_round_trips() {
        for p in Priority::ALL {
            assert_eq!(Priority::parse(p.as_str()), Ok(*p));
            assert_eq!(Priority::parse(p.label()), Ok(*p));
        }
        assert_eq!(Priority::parse(" URGENT "), Ok(Priority::Urgent));
        assert_eq!(Priority::High.label(), "High");
        assert!(Priority::parse("critical").is_err());
    }

    #[test]
    fn spans_read_as_plain_english() {
        assert_eq!(SlaSpan::Hours(1).label(), "1 hour");
        assert_eq!(SlaSpan::Hours(24).label(), "24 hours");
        assert_eq!(SlaSpan::WorkingDays(1).label(), "1 working day");
        assert_eq!(SlaSpan::WorkingDays(10).to_string(), "10 working days");
    }

    // --- Bank holidays ---

    #[test]
    fn easter_sunday_by_the_anonymous_gregorian_algorithm() {
        let cases = [
            (2019, date!(2019 - 04 - 21)),
            (2024, date!(2024 - 03 - 31)),
            (2025, date!(2025 - 04 - 20)),
            (2026, date!(2026 - 04 - 05)),
            (2027, date!(2027 - 03 - 28)),
            (2038, date!(2038 - 04 - 25)),
            (2285, date!(2285 - 03 - 22)),
        ];
        for (year, easter) in cases {
            assert_eq!(easter_sunday(year), Some(easter), "{year}");
        }
    }

    #[test]
    fn bank_holidays_2024_to_2027_match_gov_uk() {
        let cases: [(i32, &[Date]); 4] = [
            (
                2024,
                &[
                    date!(2024 - 01 - 01),
                    date!(2024 - 03 - 29),
                    date!(2024 - 04 - 01),
                    date!(2024 - 05 - 06),
                    date!(2024 - 05 - 27),
                    date!(2024 - 08 - 26),
                    date!(2024 - 12 - 25),
                    date!(2024 - 12 - 26),
                ],
            ),
            (
                2025,
                &[
                    date!(2025 - 01 - 01),
                    date!(2025 - 04 - 18),
                    date!(2025 - 04 - 21),
                    date!(2025 - 05 - 05),
                    date!(2025 - 05 - 26),
                    date!(2025 - 08 - 25),
                    date!(2025 - 12 - 25),
                    date!(2025 - 12 - 26),
                ],
            ),
            (
                2026,
                &[
                    date!(2026 - 01 - 01),
                    date!(2026 - 04 - 03),
                    date!(2026 - 04 - 06),
                    date!(2026 - 05 - 04),
                    date!(2026 - 05 - 25),
                    date!(2026 - 08 - 31),
                    date!(2026 - 12 - 25),
                    date!(2026 - 12 - 28),
                ],
            ),
            (
                2027,
                &[
                    date!(2027 - 01 - 01),
                    date!(2027 - 03 - 26),
                    date!(2027 - 03 - 29),
                    date!(2027 - 05 - 03),
                    date!(2027 - 05 - 31),
                    date!(2027 - 08 - 30),
                    date!(2027 - 12 - 27),
                    date!(2027 - 12 - 28),
                ],
            ),
        ];
        for (year, expected) in cases {
            assert_eq!(bank_holidays_england_wales(year), expected, "{year}");
        }
    }

    #[test]
    fn christmas_on_saturday_moves_to_monday_and_tuesday() {
        // 25 December 2021 and 2027 are Saturdays.
        for year in [2021, 2027] {
            let december: Vec<Date> = bank_holidays_england_wales(year)
                .into_iter()
                .filter(|d| d.month() == Month::December)
                .collect();
            let expected = [
                Date::from_calendar_date(year, Month::December, 27).unwrap(),
                Date::from_calendar_date(year, Month::December, 28).unwrap(),
            ];
            assert_eq!(december, expected, "{year}");
        }
    }

    #[test]
    fn christmas_on_sunday_gives_boxing_day_monday_and_christmas_tuesday() {
        assert!(is_bank_holiday_england_wales(date!(2022 - 12 - 26)));
        assert!(is_bank_holiday_england_wales(date!(2022 - 12 - 27)));
        assert!(!is_bank_holiday_england_wales(date!(2022 - 12 - 28)));
    }

    #[test]
    fn boxing_day_on_saturday_moves_to_monday() {
        assert!(is_bank_holiday_england_wales(date!(2026 - 12 - 25)));
        assert!(!is_bank_holiday_england_wales(date!(2026 - 12 - 26)));
        assert!(is_bank_holiday_england_wales(date!(2026 - 12 - 28)));
        assert!(is_bank_holiday_england_wales(date!(2020 - 12 - 28)));
    }

    #[test]
    fn new_year_at_a_weekend_moves_to_monday() {
        // 1 January 2022 was a Saturday, 1 January 2023 a Sunday.
        assert!(is_bank_holiday_england_wales(date!(2022 - 01 - 03)));
        assert!(!is_bank_holiday_england_wales(date!(2022 - 01 - 01)));
        assert!(is_bank_holiday_england_wales(date!(2023 - 01 - 02)));
    }

    #[test]
    fn one_off_changes_2020_2022_2023() {
        assert_eq!(
            bank_holidays_england_wales(2020),
            [
                date!(2020 - 01 - 01),
                date!(2020 - 04 - 10),
                date!(2020 - 04 - 13),
                date!(2020 - 05 - 08),
                date!(2020 - 05 - 25),
                date!(2020 - 08 - 31),
                date!(2020 - 12 - 25),
                date!(2020 - 12 - 28),
            ]
        );
        assert_eq!(
            bank_holidays_england_wales(2022),
            [
                date!(2022 - 01 - 03),
                date!(2022 - 04 - 15),
                date!(2022 - 04 - 18),
                date!(2022 - 05 - 02),
                date!(2022 - 06 - 02),
                date!(2022 - 06 - 03),
                date!(2022 - 08 - 29),
                date!(2022 - 09 - 19),
                date!(2022 - 12 - 26),
                date!(2022 - 12 - 27),
            ]
        );
        assert_eq!(
            bank_holidays_england_wales(2023),
            [
                date!(2023 - 01 - 02),
                date!(2023 - 04 - 07),
                date!(2023 - 04 - 10),
                date!(2023 - 05 - 01),
                date!(2023 - 05 - 08),
                date!(2023 - 05 - 29),
                date!(2023 - 08 - 28),
                date!(2023 - 12 - 25),
                date!(2023 - 12 - 26),
            ]
        );
    }

    #[test]
    fn diamond_jubilee_2012_moves_spring_holiday_and_adds_a_day() {
        assert_eq!(
            bank_holidays_england_wales(2012),
            [
                date!(2012 - 01 - 02),
                date!(2012 - 04 - 06),
                date!(2012 - 04 - 09),
                date!(2012 - 05 - 07),
                date!(2012 - 06 - 04),
                date!(2012 - 06 - 05),
                date!(2012 - 08 - 27),
                date!(2012 - 12 - 25),
                date!(2012 - 12 - 26),
            ]
        );
    }

    #[test]
    fn moved_table_names_the_dates_the_rules_would_give() {
        // A typo in `MOVED` would silently keep the usual holiday; each entry must replace one.
        for (usual, moved) in MOVED {
            assert!(!is_bank_holiday_england_wales(usual), "{usual}");
            assert!(is_bank_holiday_england_wales(moved), "{moved}");
            assert_eq!(usual.weekday(), Weekday::Monday, "{usual}");
        }
    }

    #[test]
    fn working_days_are_weekdays_that_are_not_bank_holidays() {
        assert!(is_working_day(date!(2026 - 05 - 12))); // Tuesday
        assert!(!is_working_day(date!(2026 - 05 - 09))); // Saturday
        assert!(!is_working_day(date!(2026 - 05 - 10))); // Sunday
        assert!(!is_working_day(date!(2026 - 05 - 25))); // Spring bank holiday
        assert!(!is_working_day(date!(2026 - 04 - 03))); // Good Friday
    }

    // --- Due times ---

    #[test]
    fn urgent_response_is_one_clock_hour_even_at_the_weekend() {
        let start = datetime!(2026-05-09 22:30 UTC); // Saturday night
        assert_eq!(
            due_at(start, Priority::Urgent.response()),
            datetime!(2026-05-09 23:30 UTC)
        );
    }

    #[test]
    fn urgent_resolution_is_24_elapsed_hours_across_the_clock_change() {
        // The clocks go forward at 01:00 UTC on 29 March 2026; 24 hours are still 24 hours.
        let start = datetime!(2026-03-28 12:00 UTC);
        assert_eq!(
            due_at(start, Priority::Urgent.resolution()),
            datetime!(2026-03-29 12:00 UTC)
        );
    }

    #[test]
    fn high_priority_resolution_skips_easter_weekend() {
        // Thursday 2 April 2026, 10:00 BST; Good Friday and Easter Monday are not counted.
        let start = datetime!(2026-04-02 09:00 UTC);
        assert_eq!(
            due_at(start, Priority::High.resolution()),
            datetime!(2026-04-09 09:00 UTC)
        );
    }

    #[test]
    fn medium_resolution_skips_christmas_and_new_year() {
        let start = datetime!(2025-12-22 10:00 UTC); // Monday
        assert_eq!(
            due_at(start, Priority::Medium.resolution()),
            datetime!(2026-01-08 10:00 UTC)
        );
    }

    #[test]
    fn low_priority_resolution_counts_thirty_working_days() {
        let start = datetime!(2025-12-01 09:00 UTC); // Monday
        assert_eq!(
            due_at(start, Priority::Low.resolution()),
            datetime!(2026-01-15 09:00 UTC)
        );
    }

    #[test]
    fn medium_response_over_a_weekend_is_monday() {
        // Friday 10:00 BST → Monday 10:00 BST.
        assert_eq!(
            due_at(datetime!(2026-05-08 09:00 UTC), Priority::Medium.response()),
            datetime!(2026-05-11 09:00 UTC)
        );
    }

    #[test]
    fn working_day_span_from_saturday_counts_monday_as_day_one() {
        let saturday = datetime!(2026-05-09 10:00 +01:00);
        assert_eq!(
            due_at(saturday, SlaSpan::WorkingDays(1)),
            datetime!(2026-05-11 10:00 +01:00)
        );
        assert_eq!(
            due_at(saturday, Priority::Low.response()),
            datetime!(2026-05-13 10:00 +01:00)
        );
    }

    #[test]
    fn working_days_keep_uk_wall_clock_time_across_the_clock_change() {
        // Friday 27 March 2026 10:00 GMT → Monday 30 March 10:00 BST (09:00 UTC).
        assert_eq!(
            due_at(datetime!(2026-03-27 10:00 UTC), SlaSpan::WorkingDays(1)),
            datetime!(2026-03-30 09:00 UTC)
        );
        // Friday 23 October 2026 10:00 BST → Monday 26 October 10:00 GMT.
        assert_eq!(
            due_at(datetime!(2026-10-23 09:00 UTC), SlaSpan::WorkingDays(1)),
            datetime!(2026-10-26 10:00 UTC)
        );
    }

    #[test]
    fn working_days_count_from_the_uk_date_not_the_utc_date() {
        // 23:30 UTC on Friday 8 May 2026 is 00:30 on Saturday in London.
        let due = due_at(datetime!(2026-05-08 23:30 UTC), SlaSpan::WorkingDays(1));
        assert_eq!(due, datetime!(2026-05-10 23:30 UTC)); // Monday 00:30 BST
    }

    #[test]
    fn due_time_is_given_in_the_callers_offset() {
        let due = due_at(datetime!(2026-05-12 14:00 +01:00), SlaSpan::WorkingDays(1));
        assert_eq!(due.offset(), offset!(+1));
        assert_eq!(due, datetime!(2026-05-13 14:00 +01:00));
        let due = due_at(datetime!(2026-05-12 13:00 UTC), SlaSpan::WorkingDays(1));
        assert_eq!(due.offset(), offset!(UTC));
    }

    #[test]
    fn zero_working_days_is_due_at_once() {
        let start = datetime!(2026-05-09 10:00 UTC);
        assert_eq!(due_at(start, SlaSpan::WorkingDays(0)), start);
    }

    #[test]
    fn pauses_push_the_due_time_back_by_the_time_waiting_on_customer() {
        let start = datetime!(2026-05-12 09:00 UTC);
        let span = Priority::High.response();
        assert_eq!(
            due_with_pauses(start, span, Duration::minutes(90)),
            datetime!(2026-05-12 14:30 UTC)
        );
        assert_eq!(
            due_with_pauses(start, span, Duration::hours(-5)),
            datetime!(2026-05-12 13:00 UTC)
        );
    }

    // --- Indicator ---

    #[test]
    fn sla_turns_amber_with_a_quarter_left_and_red_at_breach() {
        let start = datetime!(2026-05-12 09:00 UTC);
        let due = datetime!(2026-05-12 13:00 UTC); // 4-hour window; amber from 12:00
        assert_eq!(sla_state(start, due, start), SlaState::Green);
        assert_eq!(
            sla_state(start, due, datetime!(2026-05-12 11:59 UTC)),
            SlaState::Green
        );
        assert_eq!(
            sla_state(start, due, datetime!(2026-05-12 12:00 UTC)),
            SlaState::Amber
        );
        assert_eq!(
            sla_state(start, due, datetime!(2026-05-12 12:59 UTC)),
            SlaState::Amber
        );
        assert_eq!(sla_state(start, due, due), SlaState::Red);
        assert_eq!(
            sla_state(start, due, datetime!(2026-05-13 09:00 UTC)),
            SlaState::Red
        );
    }

    #[test]
    fn sla_state_labels_and_colours() {
        assert_eq!(SlaState::Green.css(), "green");
        assert_eq!(SlaState::Amber.css(), "amber");
        assert_eq!(SlaState::Red.css(), "red");
        assert_eq!(SlaState::Green.label(), "On track");
        assert_eq!(SlaState::Amber.label(), "Close to breach");
        assert_eq!(SlaState::Red.label(), "Breached");
    }
}
