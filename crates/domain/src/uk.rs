//! UK formats that property management runs on: postcodes, bank details, VAT numbers, UPRNs,
//! phone numbers, sums of money and dates as people write them.
//!
//! Parse, don't validate: each `parse` takes what a person typed (any case, stray spaces) and
//! gives a normalised value or an error. Error messages are plain-English sentences without the
//! final full stop, like [`crate::email::EmailError`], so a caller can add to them.

use std::borrow::Cow;
use std::fmt;

use time::{Date, Month};

/// A UK postcode, upper case with one space before the inward code: "SW1A 1AA".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Postcode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a valid UK postcode, such as SW1A 1AA")]
pub struct PostcodeError(pub String);

/// Postcode areas in use, plus BF (British forces) and BX (non-geographic), sorted. Checking
/// the area catches typing mistakes such as "SQ1 1AA" that have the right shape.
const AREAS: &[&str] = &[
    "AB", "AL", "B", "BA", "BB", "BD", "BF", "BH", "BL", "BN", "BR", "BS", "BT", "BX", "CA", "CB",
    "CF", "CH", "CM", "CO", "CR", "CT", "CV", "CW", "DA", "DD", "DE", "DG", "DH", "DL", "DN", "DT",
    "DY", "E", "EC", "EH", "EN", "EX", "FK", "FY", "G", "GL", "GU", "GY", "HA", "HD", "HG", "HP",
    "HR", "HS", "HU", "HX", "IG", "IM", "IP", "IV", "JE", "KA", "KT", "KW", "KY", "L", "LA", "LD",
    "LE", "LL", "LN", "LS", "LU", "M", "ME", "MK", "ML", "N", "NE", "NG", "NN", "NP", "NR", "NW",
    "OL", "OX", "PA", "PE", "PH", "PL", "PO", "PR", "RG", "RH", "RM", "S", "SA", "SE", "SG", "SK",
    "SL", "SM", "SN", "SO", "SP", "SR", "SS", "ST", "SW", "SY", "TA", "TD", "TF", "TN", "TQ", "TR",
    "TS", "TW", "UB", "W", "WA", "WC", "WD", "WF", "WN", "WR", "WS", "WV", "YO", "ZE",
];

/// Areas wholly or mostly outside England and Wales (TD is handled by district).
const NOT_ENGLAND_OR_WALES: &[&str] = &[
    // Scotland
    "AB", "DD", "DG", "EH", "FK", "G", "HS", "IV", "KA", "KW", "KY", "ML", "PA", "PH", "ZE",
    // Northern Ireland, the Crown dependencies, British forces, non-geographic
    "BT", "GY", "JE", "IM", "BF", "BX", "GIR",
];

impl Postcode {
    /// Ignores case and spaces: "sw1a1aa" and " Sw1A  1aA " are both "SW1A 1AA".
    pub fn parse(input: &str) -> Result<Self, PostcodeError> {
        let bad = || PostcodeError(input.trim().to_owned());
        // At most 7 characters matter; a fixed buffer saves an allocation per line of a
        // 100,000-line import.
        let mut compact = [0u8; 7];
        let mut len = 0;
        for b in input.bytes().filter(|b| !b.is_ascii_whitespace()) {
            if !b.is_ascii() || len == compact.len() {
                return Err(bad());
            }
            compact[len] = b.to_ascii_uppercase();
            len += 1;
        }
        let compact = &compact[..len];
        if compact == b"GIR0AA" {
            return Ok(Self("GIR 0AA".to_owned()));
        }
        if len < 5 {
            return Err(bad());
        }
        let (outward, inward) = compact.split_at(len - 3);
        if !valid_outward(outward) || !valid_inward(inward) {
            return Err(bad());
        }
        let mut normalised = String::with_capacity(len + 1);
        normalised.extend(outward.iter().map(|&b| char::from(b)));
        normalised.push(' ');
        normalised.extend(inward.iter().map(|&b| char::from(b)));
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the space: "SW1A".
    pub fn outward(&self) -> &str {
        self.0.split(' ').next().unwrap_or_default()
    }

    /// The leading letters: "SW" for "SW1A 1AA", "G" for "G1 1XQ".
    pub fn area(&self) -> &str {
        let end = self
            .0
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(self.0.len());
        &self.0[..end]
    }

    /// Whether the address is in England or Wales, as the Landlord and Tenant Act 1987 s.48
    /// requires of a landlord's address for notices. Decided by postcode area; in the TD
    /// (Galashiels) area only TD12 and TD15 are in England.
    pub fn in_england_or_wales(&self) -> bool {
        match self.area() {
            "TD" => matches!(self.district(), Some(12 | 15)),
            area => !NOT_ENGLAND_OR_WALES.contains(&area),
        }
    }

    /// The district number after the area letters: 12 for "TD12 4AB".
    fn district(&self) -> Option<u32> {
        let digits = self
            .outward()
            .trim_start_matches(|c: char| c.is_ascii_alphabetic());
        let end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        digits[..end].parse().ok()
    }
}

/// A9, A99, AA9, AA99, A9A or AA9A, with the letters each position may hold.
fn valid_outward(outward: &[u8]) -> bool {
    let area_len = outward
        .iter()
        .take_while(|b| b.is_ascii_uppercase())
        .count();
    let (area, district) = outward.split_at(area_len);
    if AREAS.binary_search_by(|a| a.as_bytes().cmp(area)).is_err() {
        return false;
    }
    match district {
        [d] | [d, b'0'..=b'9'] => d.is_ascii_digit(),
        [d, letter] if area_len == 1 => d.is_ascii_digit() && b"ABCDEFGHJKPSTUW".contains(letter),
        [d, letter] => d.is_ascii_digit() && b"ABEHMNPRVWXY".contains(letter),
        _ => false,
    }
}

/// 9AA, where the letters are never C, I, K, M, O or V.
fn valid_inward(inward: &[u8]) -> bool {
    let letter = |b: &u8| b.is_ascii_uppercase() && !b"CIKMOV".contains(b);
    matches!(inward, [d, a, b] if d.is_ascii_digit() && letter(a) && letter(b))
}

impl From<Postcode> for String {
    fn from(postcode: Postcode) -> Self {
        postcode.0
    }
}

impl fmt::Display for Postcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A bank sort code, shown as "12-34-56".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SortCode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a sort code; a sort code has 6 digits, such as 12-34-56")]
pub struct SortCodeError(pub String);

impl SortCode {
    /// Takes "12-34-56", "12 34 56" or "123456".
    pub fn parse(input: &str) -> Result<Self, SortCodeError> {
        let bad = || SortCodeError(input.trim().to_owned());
        let digits = digits_ignoring(input, &[' ', '-']).ok_or_else(bad)?;
        match digits.as_bytes() {
            [a, b, c, d, e, f] => Ok(Self(format!(
                "{}{}-{}{}-{}{}",
                *a as char, *b as char, *c as char, *d as char, *e as char, *f as char
            ))),
            _ => Err(bad()),
        }
    }

    /// "12-34-56".
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// "123456", as banks' files want it.
    pub fn digits(&self) -> String {
        self.0.replace('-', "")
    }

    /// "**-**-56", to show which account without showing it.
    pub fn masked(&self) -> String {
        format!("**-**-{}", &self.0[6..])
    }
}

impl fmt::Display for SortCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A UK bank account number: 8 digits. `Debug` shows only the last four.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AccountNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a UK bank account number; an account number has exactly 8 digits")]
pub struct AccountNumberError(pub String);

impl AccountNumber {
    /// Spaces are ignored: "1234 5678".
    pub fn parse(input: &str) -> Result<Self, AccountNumberError> {
        let bad = || AccountNumberError(input.trim().to_owned());
        let digits = digits_ignoring(input, &[' ']).ok_or_else(bad)?;
        if digits.len() != 8 {
            return Err(bad());
        }
        Ok(Self(digits))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// "****5678".
    pub fn masked(&self) -> String {
        format!("****{}", &self.0[4..])
    }
}

impl fmt::Debug for AccountNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountNumber({})", self.masked())
    }
}

impl fmt::Display for AccountNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The ASCII digits of `input` once the `ignored` characters are removed; `None` if anything
/// else is there.
fn digits_ignoring(input: &str, ignored: &[char]) -> Option<String> {
    let mut digits = String::with_capacity(input.len());
    for c in input.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else if !ignored.contains(&c) {
            return None;
        }
    }
    Some(digits)
}

/// A UK VAT registration number, shown as "GB123456789", "GB123456789001" (with a branch),
/// "GBGD001" (a government department) or "GBHA599" (a health authority).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VatNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VatNumberError {
    #[error(
        "\"{0}\" is not a UK VAT number; it should be GB followed by 9 digits, \
         such as GB 123 4567 89"
    )]
    Format(String),
    #[error("\"{0}\" is not a valid UK VAT number; check it for a typing mistake")]
    CheckDigits(String),
}

impl VatNumber {
    /// The "GB" is optional and spaces are ignored.
    pub fn parse(input: &str) -> Result<Self, VatNumberError> {
        let trimmed = input.trim();
        let format = || VatNumberError::Format(trimmed.to_owned());
        let compact: String = trimmed
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let body = compact.strip_prefix("GB").unwrap_or(&compact);
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        let number = |s: &str| s.parse::<u32>().ok();
        let valid = match (body.get(..2), body.get(2..)) {
            (Some("GD"), Some(n)) if n.len() == 3 && all_digits(n) => {
                number(n).is_some_and(|n| n <= 499)
            }
            (Some("HA"), Some(n)) if n.len() == 3 && all_digits(n) => {
                number(n).is_some_and(|n| n >= 500)
            }
            _ if all_digits(body) && matches!(body.len(), 9 | 12) => {
                if !check_digits_match(&body.as_bytes()[..9]) {
                    return Err(VatNumberError::CheckDigits(trimmed.to_owned()));
                }
                true
            }
            _ => false,
        };
        if !valid {
            return Err(format());
        }
        Ok(Self(format!("GB{body}")))
    }

    /// "GB123456789".
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// HMRC's check: weight the first seven digits 8 down to 2, add the last two as a number; the
/// total (or, for newer numbers, the total plus 55) is a multiple of 97.
fn check_digits_match(nine: &[u8]) -> bool {
    let digit = |i: usize| u32::from(nine[i] - b'0');
    let weighted: u32 = (0..7).map(|i| digit(i) * (8 - i as u32)).sum();
    let total = weighted + digit(7) * 10 + digit(8);
    total.is_multiple_of(97) || (total + 55).is_multiple_of(97)
}

impl fmt::Display for VatNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Unique Property Reference Number: up to 12 digits, never zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uprn(u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a UPRN; a UPRN is a number of up to 12 digits")]
pub struct UprnError(pub String);

impl Uprn {
    pub fn parse(input: &str) -> Result<Self, UprnError> {
        let s = input.trim();
        let bad = || UprnError(s.to_owned());
        if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        match s.parse() {
            Ok(0) | Err(_) => Err(bad()),
            Ok(n) => Ok(Self(n)),
        }
    }

    pub fn get(self) -> u64 {
        self.0
    }

    /// For a `BIGINT` column; a UPRN always fits.
    pub fn as_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }
}

impl fmt::Display for Uprn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A phone number kept as its digits, with a leading "+" if it was given one: "+442079460000".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "\"{0}\" is not a phone number; use 10 to 15 digits, such as 020 7946 0000 or \
     +44 20 7946 0000"
)]
pub struct PhoneNumberError(pub String);

impl PhoneNumber {
    /// Digits with any spaces, brackets and hyphens, optionally starting with "+". In
    /// "+44 (0)20 …" the "(0)" is dropped: it is dialled only from inside the UK.
    pub fn parse(input: &str) -> Result<Self, PhoneNumberError> {
        let s = input.trim();
        let bad = || PhoneNumberError(s.to_owned());
        let (plus, rest) = match s.strip_prefix('+') {
            Some(rest) => (true, Cow::Owned(rest.replacen("(0)", "", 1))),
            None => (false, Cow::Borrowed(s)),
        };
        let mut number = digits_ignoring(&rest, &[' ', '(', ')', '-']).ok_or_else(bad)?;
        if !(10..=15).contains(&number.len()) {
            return Err(bad());
        }
        if plus {
            number.insert(0, '+');
        }
        Ok(Self(number))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A sum of money that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("\"{0}\" is not an amount of money, such as 1250.50 or £1,250.50")]
    Invalid(String),
    #[error("\"{0}\" is negative; enter an amount of £0 or more")]
    Negative(String),
    #[error("\"{0}\" has more than 2 decimal places; give pounds and pence, such as 1250.50")]
    TooManyDecimals(String),
    #[error("\"{0}\" is too large")]
    TooLarge(String),
}

/// "250", "250.5", "£1,250.50" → pence. Commas must group thousands ("1,25" might be a
/// continental decimal, so it is refused rather than guessed at).
pub fn parse_pounds_to_pence(input: &str) -> Result<i64, MoneyError> {
    let trimmed = input.trim();
    let owned = || trimmed.to_owned();
    let (minus, s) = strip_minus(trimmed);
    let s = s.strip_prefix('£').map_or(s, str::trim_start);
    let (minus_after_pound, s) = strip_minus(s);
    let pence = parse_hundredths(s, true).map_err(|e| match e {
        DecimalError::Invalid => MoneyError::Invalid(owned()),
        DecimalError::TooManyDecimals => MoneyError::TooManyDecimals(owned()),
        DecimalError::TooLarge => MoneyError::TooLarge(owned()),
    })?;
    if (minus || minus_after_pound) && pence != 0 {
        return Err(MoneyError::Negative(owned()));
    }
    Ok(pence)
}

fn strip_minus(s: &str) -> (bool, &str) {
    match s.strip_prefix('-') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, s),
    }
}

/// "£1,250.50"; negative sums as "-£1,250.50".
pub fn format_pence(pence: i64) -> String {
    let sign = if pence < 0 { "-" } else { "" };
    let abs = pence.unsigned_abs();
    format!("{sign}£{}.{:02}", group_thousands(abs / 100), abs % 100)
}

/// 1234567 → "1,234,567".
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    grouped
}

/// Why a decimal number could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecimalError {
    Invalid,
    TooManyDecimals,
    TooLarge,
}

/// A non-negative decimal with at most two places, in hundredths: "72.5" → 7250. With
/// `thousands`, commas may group the whole part ("1,250.50").
pub(crate) fn parse_hundredths(s: &str, thousands: bool) -> Result<i64, DecimalError> {
    let (whole, fraction) = match s.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (s, None),
    };
    if thousands && whole.contains(',') {
        let mut groups = whole.split(',');
        let first_ok = groups.next().is_some_and(|g| (1..=3).contains(&g.len()));
        if !first_ok || !groups.all(|g| g.len() == 3) {
            return Err(DecimalError::Invalid);
        }
    }
    let mut whole_digits = whole.bytes().filter(|&b| !(thousands && b == b','));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !whole_digits.clone().all(|b| b.is_ascii_digit()) {
        return Err(DecimalError::Invalid);
    }
    let hundredths = match fraction {
        None | Some("") => 0,
        Some(f) if !all_digits(f) => return Err(DecimalError::Invalid),
        Some(f) if f.len() > 2 => return Err(DecimalError::TooManyDecimals),
        Some(f) => f
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(2)
            .fold(0, |n, b| n * 10 + i64::from(b - b'0')),
    };
    whole_digits
        .try_fold(0i64, |n, b| {
            n.checked_mul(10)?.checked_add(i64::from(b - b'0'))
        })
        .and_then(|whole| whole.checked_mul(100)?.checked_add(hundredths))
        .ok_or(DecimalError::TooLarge)
}

/// A date that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("\"{0}\" is not a date; write it as dd/mm/yyyy, such as 25/03/2026")]
    Format(String),
    #[error("\"{0}\" is not a date; write the year in full, such as 25/03/2026")]
    ShortYear(String),
    #[error("\"{0}\" is not a real date; dates are written day first, dd/mm/yyyy")]
    NoSuchDate(String),
}

/// "25/03/2026" (also with "-" or "." between, and one-digit days and months) or ISO
/// "2026-03-25". The year must be written in full.
pub fn parse_uk_date(input: &str) -> Result<Date, DateError> {
    let s = input.trim();
    let format = || DateError::Format(s.to_owned());
    let mut parts = s.split(['/', '-', '.']);
    let (Some(a), Some(b), Some(c), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format());
    };
    let numeric = |p: &str, lengths: std::ops::RangeInclusive<usize>| {
        lengths.contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())
    };
    let (day, month, year) = if numeric(a, 4..=4) && s.contains('-') {
        (c, b, a)
    } else {
        (a, b, c)
    };
    if !numeric(day, 1..=2) || !numeric(month, 1..=2) {
        return Err(format());
    }
    if numeric(year, 2..=2) {
        return Err(DateError::ShortYear(s.to_owned()));
    }
    if !numeric(year, 4..=4) {
        return Err(format());
    }
    let no_such_date = || DateError::NoSuchDate(s.to_owned());
    let (Ok(day), Ok(month), Ok(year)) = (day.parse::<u8>(), month.parse::<u8>(), year.parse())
    else {
        return Err(format());
    };
    let month = Month::try_from(month).map_err(|_| no_such_date())?;
    Date::from_calendar_date(year, month, day).map_err(|_| no_such_date())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn a_postcode_is_normalised_to_upper_case_with_one_space() {
        for (given, expected) in [
            ("sw1a1aa", "SW1A 1AA"),
            (" Sw1A  1aA ", "SW1A 1AA"),
            ("m11ae", "M1 1AE"),
            ("B338TH", "B33 8TH"),
            ("cr2 6xh", "CR2 6XH"),
            ("DN55 1PT", "DN55 1PT"),
            ("W1A 0AX", "W1A 0AX"),
            ("EC1A 1BB", "EC1A 1BB"),
            ("gir0aa", "GIR 0AA"),
        ] {
            assert_eq!(
                Postcode::parse(given).map(|p| p.to_string()),
                Ok(expected.to_owned()),
                "{given}"
            );
        }
    }

    #[test]
    fn a_postcode_of_the_wrong_shape_is_refused() {
        for bad in [
            "",
            "SW1A",
            "SW1A 1A",
            "SW1A 1AAA",
            "1SW 1AA",
            "SW1A 1CA",  // C is never in the inward code
            "SW1A 1AI",  // nor I
            "SQ1 1AA",   // no such area
            "QA1 1AA",   // Q never comes first
            "AA1 1AA",   // no such area
            "W1I 1AA",   // I is not used third
            "EC1Z 1AA",  // Z is not used fourth
            "SW1A-1AA",  // punctuation
            "ſW1A 1AA",  // long s, which upper-cases to S
            "SW1A 1AA!", // trailing junk
        ] {
            assert!(Postcode::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            Postcode::parse(" xx ").unwrap_err().to_string(),
            "\"xx\" is not a valid UK postcode, such as SW1A 1AA"
        );
    }

    #[test]
    fn postcode_areas_are_sorted_for_binary_search() {
        assert!(AREAS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_postcode_knows_its_area_and_outward_code() {
        let p = Postcode::parse("sw1a 1aa").unwrap();
        assert_eq!((p.area(), p.outward()), ("SW", "SW1A"));
        assert_eq!(Postcode::parse("G1 1XQ").unwrap().area(), "G");
        assert_eq!(Postcode::parse("GIR 0AA").unwrap().area(), "GIR");
    }

    #[test]
    fn scottish_northern_irish_and_island_postcodes_are_not_in_england_or_wales() {
        for outside in [
            "EH1 1YZ", "G1 1XQ", "AB10 1AB", "ZE1 0AA", "KY16 9AJ", "BT1 5GS", "JE2 4UH",
            "GY1 1AB", "IM1 1AA", "BF1 4FB", "BX1 1LT", "GIR 0AA", "TD1 1AA", "TD9 0AA",
        ] {
            let p = Postcode::parse(outside).unwrap();
            assert!(!p.in_england_or_wales(), "{outside}");
        }
    }

    #[test]
    fn english_and_welsh_postcodes_are_in_england_or_wales() {
        for inside in [
            "SW1A 1AA", "M1 1AE", "CF10 1EP", "LL57 2DG", "NP20 1AA", "NE1 4ST", "CA3 8UE",
            "TD12 4AB", "TD15 1AA", "B33 8TH",
        ] {
            let p = Postcode::parse(inside).unwrap();
            assert!(p.in_england_or_wales(), "{inside}");
        }
    }

    #[test]
    fn a_sort_code_is_shown_with_hyphens_and_masked_to_its_last_pair() {
        for given in ["12-34-56", "12 34 56", "123456", " 12-34 56 "] {
            let s = SortCode::parse(given).unwrap();
            assert_eq!(s.to_string(), "12-34-56");
            assert_eq!(s.masked(), "**-**-56");
            assert_eq!(s.digits(), "123456");
        }
        for bad in ["", "12345", "1234567", "12/34/56", "ab-cd-ef", "１23456"] {
            assert!(SortCode::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn an_account_number_has_exactly_eight_digits_and_is_masked_in_debug() {
        let a = AccountNumber::parse(" 1234 5678 ").unwrap();
        assert_eq!(a.as_str(), "12345678");
        assert_eq!(a.masked(), "****5678");
        assert_eq!(format!("{a:?}"), "AccountNumber(****5678)");
        for bad in ["1234567", "123456789", "1234-5678", "abcdefgh", ""] {
            assert!(AccountNumber::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            AccountNumber::parse("1234567").unwrap_err().to_string(),
            "\"1234567\" is not a UK bank account number; an account number has exactly 8 digits"
        );
    }

    /// Appends the two check digits that make `seven` a valid VAT number under the older
    /// ("mod 97") or newer ("mod 9755") rule.
    fn vat(seven: &str, mod_9755: bool) -> String {
        let weighted: u32 = seven
            .bytes()
            .zip((2..=8).rev())
            .map(|(b, w)| u32::from(b - b'0') * w)
            .sum();
        let offset = if mod_9755 { 55 } else { 0 };
        let check = (97 - (weighted + offset) % 97) % 97;
        format!("{seven}{check:02}")
    }

    #[test]
    fn a_vat_number_with_correct_check_digits_is_normalised() {
        assert_eq!(vat("9807806", false), "980780684");
        let v = VatNumber::parse("gb 980 7806 84").unwrap();
        assert_eq!(v.to_string(), "GB980780684");
        assert_eq!(VatNumber::parse("980780684").unwrap(), v);
        for seven in ["1234567", "5551234", "3456789"] {
            for mod_9755 in [false, true] {
                let number = vat(seven, mod_9755);
                assert_eq!(
                    VatNumber::parse(&number).unwrap().as_str(),
                    format!("GB{number}")
                );
            }
        }
    }

    #[test]
    fn a_vat_number_with_wrong_check_digits_is_refused() {
        let good = vat("1234567", false);
        let typo = format!("{}{}", &good[..8], (good.as_bytes()[8] - b'0' + 1) % 10);
        assert!(matches!(
            VatNumber::parse(&typo),
            Err(VatNumberError::CheckDigits(_))
        ));
        // Two digits swapped.
        assert!(VatNumber::parse("GB908780684").is_err());
        assert!(VatNumber::parse("GB980780685").is_err());
    }

    #[test]
    fn a_branch_vat_number_is_checked_on_its_first_nine_digits() {
        assert_eq!(
            VatNumber::parse("GB 980 7806 84 001").unwrap().as_str(),
            "GB980780684001"
        );
        assert!(VatNumber::parse("GB 980 7806 85 001").is_err());
    }

    #[test]
    fn government_department_and_health_authority_vat_numbers_are_in_their_ranges() {
        assert_eq!(VatNumber::parse("gbgd001").unwrap().as_str(), "GBGD001");
        assert_eq!(VatNumber::parse("GD499").unwrap().as_str(), "GBGD499");
        assert_eq!(VatNumber::parse("GB HA 599").unwrap().as_str(), "GBHA599");
        for bad in ["GBGD500", "GBHA499", "GBGD01", "GBXX123"] {
            assert!(
                matches!(VatNumber::parse(bad), Err(VatNumberError::Format(_))),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn a_vat_number_of_the_wrong_length_or_with_letters_is_refused() {
        for bad in [
            "",
            "GB",
            "GB98078068",
            "GB9807806841",
            "FR980780684",
            "GB98O780684",
        ] {
            assert!(
                matches!(VatNumber::parse(bad), Err(VatNumberError::Format(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_uprn_is_a_non_zero_number_of_up_to_twelve_digits() {
        assert_eq!(
            Uprn::parse(" 100023336956 ").unwrap().get(),
            100_023_336_956
        );
        assert_eq!(Uprn::parse("0042").unwrap().to_string(), "42");
        for bad in ["", "0", "1000233369561", "12a", "-5", "1 2"] {
            assert!(Uprn::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_phone_number_keeps_its_digits_and_any_leading_plus() {
        for (given, expected) in [
            ("020 7946 0000", "02079460000"),
            ("(020) 7946-0000", "02079460000"),
            ("+44 20 7946 0000", "+442079460000"),
            ("+44 (0)20 7946 0000", "+442079460000"),
            ("07700 900123", "07700900123"),
        ] {
            assert_eq!(PhoneNumber::parse(given).unwrap().as_str(), expected);
        }
        for bad in [
            "",
            "999",
            "0207 946 000 000 0000",
            "020 7946 0000 ext 12",
            "44+20 7946 0000",
            "++44 20 7946 0000",
        ] {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn pounds_are_read_into_pence() {
        for (given, pence) in [
            ("250", 25_000),
            ("250.00", 25_000),
            ("250.5", 25_050),
            ("£1,250.50", 125_050),
            (" £ 1250.50 ", 125_050),
            ("1,000,000", 100_000_000),
            ("0", 0),
            ("0.01", 1),
            ("-0", 0),
        ] {
            assert_eq!(parse_pounds_to_pence(given), Ok(pence), "{given}");
        }
    }

    #[test]
    fn negative_over_precise_and_garbled_amounts_are_refused() {
        assert!(matches!(
            parse_pounds_to_pence("-5"),
            Err(MoneyError::Negative(_))
        ));
        assert!(matches!(
            parse_pounds_to_pence("£-5.00"),
            Err(MoneyError::Negative(_))
        ));
        assert!(matches!(
            parse_pounds_to_pence("1.005"),
            Err(MoneyError::TooManyDecimals(_))
        ));
        assert!(matches!(
            parse_pounds_to_pence("99999999999999999999"),
            Err(MoneyError::TooLarge(_))
        ));
        for bad in [
            "",
            "£",
            "abc",
            "1,25",
            "12,34,567",
            "1.2.3",
            "£ten",
            "1 000",
            "$5",
        ] {
            assert!(
                matches!(parse_pounds_to_pence(bad), Err(MoneyError::Invalid(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn pence_are_shown_as_pounds_with_thousands_separated() {
        assert_eq!(format_pence(125_050), "£1,250.50");
        assert_eq!(format_pence(5), "£0.05");
        assert_eq!(format_pence(100_000_000), "£1,000,000.00");
        assert_eq!(format_pence(-99_999), "-£999.99");
        assert_eq!(format_pence(i64::MIN), "-£92,233,720,368,547,758.08");
    }

    #[test]
    fn dates_are_read_day_first_or_iso() {
        for given in [
            "25/03/2026",
            "25/3/2026",
            " 25-03-2026 ",
            "25.03.2026",
            "2026-03-25",
        ] {
            assert_eq!(parse_uk_date(given), Ok(date!(2026 - 03 - 25)), "{given}");
        }
        assert_eq!(parse_uk_date("29/02/2024"), Ok(date!(2024 - 02 - 29)));
    }

    #[test]
    fn impossible_or_ambiguous_dates_are_refused() {
        assert!(matches!(
            parse_uk_date("03/25/2026"),
            Err(DateError::NoSuchDate(_))
        ));
        assert!(matches!(
            parse_uk_date("29/02/2026"),
            Err(DateError::NoSuchDate(_))
        ));
        assert!(matches!(
            parse_uk_date("25/03/26"),
            Err(DateError::ShortYear(_))
        ));
        for bad in [
            "",
            "tomorrow",
            "2026/03",
            "25 March 2026",
            "2026-3-25x",
            "1/1/1/2026",
        ] {
            assert!(
                matches!(parse_uk_date(bad), Err(DateError::Format(_))),
                "{bad:?}"
            );
        }
    }
}
