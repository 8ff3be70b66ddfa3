//! UK date formats: "10 May 2026".

use time::{Date, OffsetDateTime, UtcOffset};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// "10 May 2026".
pub fn long_date(d: Date) -> String {
    format!(
        "{} {} {}",
        d.day(),
        MONTHS[usize::from(u8::from(d.month())) - 1],
        d.year()
    )
}

/// "10 May 2026 at 14:05" in the given offset (UK local time is the caller's choice).
pub fn long_date_time(t: OffsetDateTime, offset: UtcOffset) -> String {
    let t = t.to_offset(offset);
    format!(
        "{} at {:02}:{:02}",
        long_date(t.date()),
        t.hour(),
        t.minute()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn formats_like_a_uk_letter() {
        assert_eq!(long_date(date!(2026 - 05 - 10)), "10 May 2026");
        assert_eq!(long_date(date!(2026 - 12 - 01)), "1 December 2026");
        assert_eq!(
            long_date_time(datetime!(2026-05-10 09:03 UTC), UtcOffset::UTC),
            "10 May 2026 at 09:03"
        );
    }
}

/// UK civil time's offset from UTC at instant `t`: BST (+1) from 01:00 UTC on the last Sunday
/// of March to 01:00 UTC on the last Sunday of October, GMT otherwise.
pub fn uk_offset(t: OffsetDateTime) -> UtcOffset {
    let t = t.to_offset(UtcOffset::UTC);
    let year = t.year();
    let starts = last_sunday_0100(year, time::Month::March);
    let ends = last_sunday_0100(year, time::Month::October);
    match (starts, ends) {
        (Some(s), Some(e)) if t >= s && t < e => {
            UtcOffset::from_hms(1, 0, 0).unwrap_or(UtcOffset::UTC)
        }
        _ => UtcOffset::UTC,
    }
}

fn last_sunday_0100(year: i32, month: time::Month) -> Option<OffsetDateTime> {
    let last = Date::from_calendar_date(year, month, 31).ok()?;
    let back = last.weekday().number_days_from_sunday();
    let sunday = last - time::Duration::days(i64::from(back));
    Some(sunday.with_hms(1, 0, 0).ok()?.assume_utc())
}

/// The UK civil date of an instant ("today" in the UK when it is now).
pub fn uk_date(t: OffsetDateTime) -> Date {
    t.to_offset(uk_offset(t)).date()
}

/// "10 May 2026" for an instant, read in UK civil time.
pub fn uk_long_date(t: OffsetDateTime) -> String {
    long_date(uk_date(t))
}

/// "2026-05-10": a date as HTML date inputs and file names want it.
pub fn iso_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[cfg(test)]
mod uk_time_tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn british_summer_time_boundaries() {
        // 2026: BST from 29 March 01:00 UTC to 25 October 01:00 UTC.
        assert_eq!(uk_offset(datetime!(2026-03-29 00:59 UTC)), UtcOffset::UTC);
        assert_eq!(uk_offset(datetime!(2026-03-29 01:00 UTC)).whole_hours(), 1);
        assert_eq!(uk_offset(datetime!(2026-10-25 00:59 UTC)).whole_hours(), 1);
        assert_eq!(uk_offset(datetime!(2026-10-25 01:00 UTC)), UtcOffset::UTC);
        // 23:30 UTC on 10 May is already 11 May in London.
        assert_eq!(uk_long_date(datetime!(2026-05-10 23:30 UTC)), "11 May 2026");
        assert_eq!(
            uk_long_date(datetime!(2026-01-10 23:30 UTC)),
            "10 January 2026"
        );
    }
}
