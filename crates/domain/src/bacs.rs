//! Supplier payment runs as a BACS Standard 18 file, and the same run as a plain CSV for banks
//! that take one.
//!
//! # Which Standard 18
//!
//! One variant only: a **single processing day** file ("1 DAILY" in UHL1, HDR2 record length
//! 100) for **one originating account** (the client bank account the run pays from), carrying
//! Direct Credits (transaction code 99) balanced by **one contra** (transaction code 17) that
//! debits the originating account with the total. The file is wrapped in the VOL1, HDR1, HDR2
//! and UHL1 labels and closed by EOF1, EOF2 and UTL1. There is no Bacstel-IP LOGON record,
//! no multi-day form and no Direct Debits; the submitting software or bureau signs and sends
//! the file.
//!
//! Every record ends with CRLF and holds only upper-case A–Z, 0–9, space and `. & / -`. Labels
//! are 80 characters. In a single-day file a data record (credit or contra) is 100
//! characters: the 106-character form adds a ` YYDDD` processing day in positions 101–106 and
//! belongs to multi-day files ("4 MULTI", HDR2 record length 106), which this writer does not
//! make.
//!
//! | Record | Positions: contents |
//! |--------|---------------------|
//! | VOL1   | 1–4 `VOL1`; 5–10 file serial, zero-filled; 11 blank (accessibility); 12–41 blank; 42–47 SUN; 48–79 blank; 80 `1` |
//! | HDR1   | 1–4 `HDR1`; 5 `A`; 6–11 SUN; 12 `S`; 13–15 blank; 16–21 SUN; 22–27 file serial; 28–31 `0001` (section); 32–35 `0001` (sequence); 36–41 blank (generation, version); 42–47 creation date ` YYDDD`; 48–53 expiry date ` YYDDD`; 54 blank; 55–60 `000000` (block count); 61–80 blank |
//! | HDR2   | 1–4 `HDR2`; 5 `F`; 6–10 `02000` (block length); 11–15 `00100` (record length); 16–50 blank; 51–52 `00`; 53–80 blank |
//! | UHL1   | 1–4 `UHL1`; 5–10 processing date ` YYDDD`; 11–20 `999999` and 4 blanks (receiving party); 21–22 `00` (sterling); 23–28 `000000`; 29–37 `1 DAILY  `; 38–40 `001` (file number); 41–80 blank |
//! | Credit | 1–6 payee sort code; 7–14 payee account; 15 `0`; 16–17 `99`; 18–23 our sort code; 24–31 our account; 32–35 blank (free / RTI); 36–46 pence, 11 digits zero-filled; 47–64 our account name; 65–82 reference; 83–100 payee name |
//! | Contra | as a credit, with our sort code and account in 1–14, `17` in 16–17, the total in 36–46, our account name in 47–64, `CONTRA` in 65–82 and our account name in 83–100 |
//! | EOF1   | HDR1 with `EOF1` in 1–4 |
//! | EOF2   | HDR2 with `EOF2` in 1–4 |
//! | UTL1   | 1–4 `UTL1`; 5–17 debit total (the contra); 18–30 credit total; 31–37 debit count (`0000001`); 38–44 credit count; 45–80 blank |
//!
//! Alphabetic fields are left-justified and blank-filled, numeric fields right-justified and
//! zero-filled; a Julian date is a space, the last two digits of the year and the day of the
//! year (2026-03-01 is ` 26060`).
//!
//! # Where the layout comes from
//!
//! Bacs publishes the specification to its members only, so the layout was pieced together
//! from what banks and software vendors publish, and agrees across them: Bank of Ireland's
//! "BACS File Specification" (VOL1 and HDR1 positions and their validity checks), the HSBC
//! "Message Implementation Guide BACS Standard 18" (August 2012) and MYOB's "Settings of the
//! BACS HSBC file" (record order, one contra per batch), FinDock's "Bacs Direct Debit
//! collection file" page (record list and VOL1), the Odoo UK BACS module and its tests
//! (100-character records in single-day files, 106 in multi-day ones; the contra; UTL1
//! offsets), and the record table of an open-source Bacs18 file generator (data record
//! positions 1–106). Transaction codes 99 (direct credit) and 17 (the contra that balances
//! credits) are from Unified Software's "Bacs transaction codes"; the ` YYDDD` UHL1 date and
//! its checks from a payroll vendor's help page.
//!
//! # What we were unsure of
//!
//! - UHL1 11–20: most sources give `999999` (the Bacs destination) and 4 blanks; Odoo puts the
//!   SUN there. HDR1 15: Bank of Ireland allows a blank or `1`; we send a blank.
//! - HDR1 54–80 (block count `000000`), HDR2 51–52 (`00`) and the UHL1 file number `001` are
//!   given by some sources and left blank by others; banks are said to ignore them.
//! - The HDR1 expiry date: we use the processing date (the file is not to be discarded before
//!   it is processed); sources use anything from the creation date to a week later.
//! - Contra 47–64 is the user's own narrative; we send our account name there, like the
//!   credits.
//! - We do not check that the processing date is a Bacs processing day (not a weekend or bank
//!   holiday); Bacs software moves an unusable date to the next processing day.
//! - Bacs also rejects some references we let through (for example all one repeated
//!   character); only the rules listed in this module are checked.
//!
//! # Characters
//!
//! Names and references are upper-cased, common accented Latin letters are spelt in ASCII
//! (é→E, ö→O, ß→SS, æ→AE), anything else outside the BACS set becomes a space, runs of spaces
//! close up, and the value is cut to 18 characters. Every value that changes beyond upper-casing
//! and spacing produces a notice for the person sending the run.

use time::Date;

use crate::dates::long_date;
use crate::uk::{AccountNumber, SortCode, format_pence, group_thousands};

/// Names and references carry at most 18 characters.
pub const FIELD_WIDTH: usize = 18;
/// The most one payment (and the contra) can carry: 11 digits of pence, £999,999,999.99.
pub const MAX_AMOUNT_PENCE: i64 = 99_999_999_999;
/// The most credits one file may hold here.
pub const MAX_CREDITS: usize = 99_999;
/// A reference needs at least this many characters other than spaces.
pub const MIN_REFERENCE_CHARS: usize = 6;

/// Labels (VOL1 … UTL1) are 80 characters.
pub const LABEL_LEN: usize = 80;
/// Credit and contra records in a single-day file are 100 characters.
pub const DATA_RECORD_LEN: usize = 100;

const CREDIT: &str = "99";
const CONTRA: &str = "17";
const ALLOWED_NOTE: &str = "BACS allows only A–Z, 0–9, space and . & / -";

/// The account the run pays from: the agent's client bank account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Originator {
    /// The Bacs Service User Number the bank issued: 6 letters or digits.
    pub sun: String,
    pub sort_code: String,
    pub account_number: String,
    pub account_name: String,
}

/// One payment to a supplier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credit {
    pub payee_name: String,
    pub sort_code: String,
    pub account_number: String,
    pub amount_pence: i64,
    /// What the supplier sees on their statement, such as the invoice number.
    pub reference: String,
}

/// Which file this is and when it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Submission {
    /// 1 to 999999, different for every file sent on the same day.
    pub serial: u32,
    /// The day the file is made (the domain has no clock, so the caller says).
    pub created_on: Date,
    /// The Bacs processing day; the money arrives two working days later.
    pub processing_date: Date,
}

/// A finished Standard 18 file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Std18 {
    /// The file, ASCII with CRLF line ends.
    pub bytes: Vec<u8>,
    /// One sentence for every name or reference that was sent differently from how it was
    /// typed.
    pub notices: Vec<String>,
    /// The sum of the credits, which is also the contra.
    pub total_pence: i64,
    /// The number of credits (the contra is not counted).
    pub count: usize,
}

/// Why a payment run cannot be turned into a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BacsError {
    #[error("There are no payments in this run, so there is nothing to send to the bank.")]
    NoPayments,
    #[error(
        "This run has {} payments; a BACS file can carry at most 99,999, so split the run into smaller ones.",
        group_thousands(*.count as u64)
    )]
    TooManyPayments { count: usize },
    #[error(
        "\"{sun}\" is not a Bacs Service User Number: it should be the 6 letters or digits your bank issued, such as 123456."
    )]
    ServiceUserNumber { sun: String },
    #[error(
        "The file serial number {serial} cannot be used: it must be from 1 to 999999 and different for every file sent on the same day."
    )]
    FileSerial { serial: u32 },
    #[error(
        "The processing date, {}, is before the day the file is made, {}; choose a processing date on or after that day.",
        long_date(*.processing_date),
        long_date(*.created_on)
    )]
    ProcessingBeforeCreation {
        created_on: Date,
        processing_date: Date,
    },
    #[error(
        "The sort code of the account the payments come from, \"{value}\", is not 6 digits such as 12-34-56."
    )]
    OriginatorSortCode { value: String },
    #[error(
        "The account number of the account the payments come from, \"{value}\", is not 8 digits."
    )]
    OriginatorAccountNumber { value: String },
    #[error(
        "The name of the account the payments come from, \"{name}\", has no letters or digits BACS can carry; enter the account name as the bank holds it."
    )]
    OriginatorName { name: String },
    #[error(
        "The sort code for \"{payee}\" (payment {line}), \"{value}\", is not 6 digits such as 12-34-56."
    )]
    SortCode {
        line: usize,
        payee: String,
        value: String,
    },
    #[error(
        "The account number for \"{payee}\" (payment {line}), \"{value}\", is not 8 digits; ask the supplier for the 8-digit number their bank uses for BACS."
    )]
    AccountNumber {
        line: usize,
        payee: String,
        value: String,
    },
    #[error(
        "The payment to \"{payee}\" (payment {line}) is {}; a BACS payment must be more than £0.00.",
        format_pence(*.amount_pence)
    )]
    AmountNotPositive {
        line: usize,
        payee: String,
        amount_pence: i64,
    },
    #[error(
        "The payment to \"{payee}\" (payment {line}) is {}, more than the £999,999,999.99 BACS can carry in one payment.",
        format_pence(*.amount_pence)
    )]
    AmountTooLarge {
        line: usize,
        payee: String,
        amount_pence: i64,
    },
    #[error(
        "The payments add up to {}, more than the £999,999,999.99 one BACS file can carry; split the run into smaller ones.",
        format_pence(*.total_pence)
    )]
    TotalTooLarge { total_pence: i64 },
    #[error(
        "The payee name of payment {line}, \"{payee}\", has no letters or digits BACS can carry, so the bank would reject it; enter the name on the supplier's bank account."
    )]
    PayeeName { line: usize, payee: String },
    #[error(
        "The reference for \"{payee}\" (payment {line}), \"{reference}\", would be sent as \"{sent}\", which has fewer than 6 characters other than spaces; BACS rejects such references, so use a longer one such as the invoice number."
    )]
    ShortReference {
        line: usize,
        payee: String,
        reference: String,
        sent: String,
    },
    #[error("The CSV file could not be written: {0}.")]
    Csv(String),
}

/// Writes the run as a single-day Standard 18 file. Nothing is written unless every payment
/// can be sent.
pub fn standard18(
    originator: &Originator,
    submission: &Submission,
    credits: &[Credit],
) -> Result<Std18, BacsError> {
    let mut notices = Vec::new();
    let origin = check_originator(originator, &mut notices)?;
    let serial = check_serial(submission.serial)?;
    if submission.processing_date < submission.created_on {
        return Err(BacsError::ProcessingBeforeCreation {
            created_on: submission.created_on,
            processing_date: submission.processing_date,
        });
    }
    let (payees, total_pence) = check_credits(credits, &mut notices)?;

    let created = julian(submission.created_on);
    let processing = julian(submission.processing_date);
    let mut file = Vec::with_capacity((payees.len() + 1) * (DATA_RECORD_LEN + 2) + 7 * 82);

    push(&mut file, vol1(&serial, &origin.sun));
    push(
        &mut file,
        hdr1("HDR1", &origin.sun, &serial, &created, &processing),
    );
    push(&mut file, hdr2("HDR2"));
    push(&mut file, uhl1(&processing));
    for payee in &payees {
        push(
            &mut file,
            data_record(&DataRecord {
                to_sort_code: &payee.sort_code,
                to_account: &payee.account_number,
                code: CREDIT,
                from_sort_code: &origin.sort_code,
                from_account: &origin.account_number,
                amount_pence: payee.amount_pence,
                user_name: &origin.name,
                reference: &payee.reference,
                to_name: &payee.name,
            }),
        );
    }
    push(
        &mut file,
        data_record(&DataRecord {
            to_sort_code: &origin.sort_code,
            to_account: &origin.account_number,
            code: CONTRA,
            from_sort_code: &origin.sort_code,
            from_account: &origin.account_number,
            amount_pence: total_pence,
            user_name: &origin.name,
            reference: "CONTRA",
            to_name: &origin.name,
        }),
    );
    push(
        &mut file,
        hdr1("EOF1", &origin.sun, &serial, &created, &processing),
    );
    push(&mut file, hdr2("EOF2"));
    push(&mut file, utl1(total_pence, total_pence, 1, payees.len()));

    Ok(Std18 {
        bytes: file,
        notices,
        total_pence,
        count: payees.len(),
    })
}

/// The same run as CSV, one row per payment and no header row: payee name, sort code as
/// 12-34-56, account number, amount as 1234.56, reference. Names and references are cleaned to
/// the BACS characters as in the Standard 18 file (the bank sends them through BACS too), so
/// the notices are the same.
pub fn payments_csv(credits: &[Credit]) -> Result<(Vec<u8>, Vec<String>), BacsError> {
    let mut notices = Vec::new();
    let (payees, _) = check_credits(credits, &mut notices)?;
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for payee in &payees {
        let amount = format!(
            "{}.{:02}",
            payee.amount_pence / 100,
            payee.amount_pence % 100
        );
        writer
            .write_record([
                payee.name.as_str(),
                payee.sort_code_shown.as_str(),
                payee.account_number.as_str(),
                amount.as_str(),
                payee.reference.as_str(),
            ])
            .map_err(|e| BacsError::Csv(e.to_string()))?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| BacsError::Csv(e.to_string()))?;
    Ok((bytes, notices))
}

/// `value` in the BACS character set, at most `max` characters, and whether that changed it.
///
/// Upper-cases; spells common accented Latin letters in ASCII (é→E, ö→O, ß→SS, æ→AE); turns
/// any other character outside A–Z, 0–9, space and `. & / -` into a space; closes up runs of
/// spaces; trims; cuts to `max` characters (and trims again). Upper-casing and tidying spaces
/// do not count as a change: the bank shows names in capitals anyway.
pub fn sanitise(value: &str, max: usize) -> (String, bool) {
    let cleaned = clean(value, max);
    let changed = cleaned.changed();
    (cleaned.text, changed)
}

/// A date in the Julian form Standard 18 uses: a space, the year's last two digits and the
/// day of the year. 2026-03-01 → " 26060".
pub fn julian(date: Date) -> String {
    format!(" {:02}{:03}", date.year().rem_euclid(100), date.ordinal())
}

// ---------------------------------------------------------------------------------------------
// Checking the run

/// The originating account, ready for the file.
struct Origin {
    sun: String,
    sort_code: String,
    account_number: String,
    name: String,
}

/// One credit, checked and cleaned.
struct Payee {
    /// "123456".
    sort_code: String,
    /// "12-34-56".
    sort_code_shown: String,
    account_number: String,
    amount_pence: i64,
    name: String,
    reference: String,
}

fn check_originator(
    originator: &Originator,
    notices: &mut Vec<String>,
) -> Result<Origin, BacsError> {
    let sun = originator.sun.trim().to_ascii_uppercase();
    if sun.len() != 6 || !sun.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(BacsError::ServiceUserNumber {
            sun: originator.sun.trim().to_owned(),
        });
    }
    let sort_code =
        SortCode::parse(&originator.sort_code).map_err(|_| BacsError::OriginatorSortCode {
            value: originator.sort_code.trim().to_owned(),
        })?;
    let account = AccountNumber::parse(&originator.account_number).map_err(|_| {
        BacsError::OriginatorAccountNumber {
            value: originator.account_number.trim().to_owned(),
        }
    })?;
    let typed = originator.account_name.trim();
    let name = clean(typed, FIELD_WIDTH);
    if name.text.is_empty() {
        return Err(BacsError::OriginatorName {
            name: typed.to_owned(),
        });
    }
    if name.changed() {
        notices.push(format!(
            "Originating account \"{typed}\": name sent as \"{}\" ({}).",
            name.text,
            name.why(FIELD_WIDTH)
        ));
    }
    Ok(Origin {
        sun,
        sort_code: sort_code.digits(),
        account_number: account.as_str().to_owned(),
        name: name.text,
    })
}

fn check_serial(serial: u32) -> Result<String, BacsError> {
    if serial == 0 || serial > 999_999 {
        return Err(BacsError::FileSerial { serial });
    }
    Ok(format!("{serial:06}"))
}

/// Checks every credit and returns them cleaned, with their total.
fn check_credits(
    credits: &[Credit],
    notices: &mut Vec<String>,
) -> Result<(Vec<Payee>, i64), BacsError> {
    if credits.is_empty() {
        return Err(BacsError::NoPayments);
    }
    if credits.len() > MAX_CREDITS {
        return Err(BacsError::TooManyPayments {
            count: credits.len(),
        });
    }
    let mut payees = Vec::with_capacity(credits.len());
    let mut total: i64 = 0;
    for (i, credit) in credits.iter().enumerate() {
        let payee = check_credit(i + 1, credit, notices)?;
        total = total
            .checked_add(payee.amount_pence)
            .filter(|t| *t <= MAX_AMOUNT_PENCE)
            .ok_or_else(|| BacsError::TotalTooLarge {
                total_pence: total.saturating_add(payee.amount_pence),
            })?;
        payees.push(payee);
    }
    Ok((payees, total))
}

fn check_credit(
    line: usize,
    credit: &Credit,
    notices: &mut Vec<String>,
) -> Result<Payee, BacsError> {
    let typed = credit.payee_name.trim();
    let sort_code = SortCode::parse(&credit.sort_code).map_err(|_| BacsError::SortCode {
        line,
        payee: typed.to_owned(),
        value: credit.sort_code.trim().to_owned(),
    })?;
    let account =
        AccountNumber::parse(&credit.account_number).map_err(|_| BacsError::AccountNumber {
            line,
            payee: typed.to_owned(),
            value: credit.account_number.trim().to_owned(),
        })?;
    if credit.amount_pence <= 0 {
        return Err(BacsError::AmountNotPositive {
            line,
            payee: typed.to_owned(),
            amount_pence: credit.amount_pence,
        });
    }
    if credit.amount_pence > MAX_AMOUNT_PENCE {
        return Err(BacsError::AmountTooLarge {
            line,
            payee: typed.to_owned(),
            amount_pence: credit.amount_pence,
        });
    }

    let name = clean(typed, FIELD_WIDTH);
    if name.text.is_empty() {
        return Err(BacsError::PayeeName {
            line,
            payee: typed.to_owned(),
        });
    }
    let typed_reference = credit.reference.trim();
    let reference = clean(typed_reference, FIELD_WIDTH);
    if reference.text.bytes().filter(|b| *b != b' ').count() < MIN_REFERENCE_CHARS {
        return Err(BacsError::ShortReference {
            line,
            payee: typed.to_owned(),
            reference: typed_reference.to_owned(),
            sent: reference.text,
        });
    }
    if name.changed() {
        notices.push(format!(
            "Payee \"{typed}\": name sent as \"{}\" ({}).",
            name.text,
            name.why(FIELD_WIDTH)
        ));
    }
    if reference.changed() {
        notices.push(format!(
            "Payee \"{typed}\": reference \"{typed_reference}\" sent as \"{}\" ({}).",
            reference.text,
            reference.why(FIELD_WIDTH)
        ));
    }
    Ok(Payee {
        sort_code: sort_code.digits(),
        sort_code_shown: sort_code.as_str().to_owned(),
        account_number: account.as_str().to_owned(),
        amount_pence: credit.amount_pence,
        name: name.text,
        reference: reference.text,
    })
}

// ---------------------------------------------------------------------------------------------
// Characters

/// A value cleaned to the BACS characters, and what that took.
struct Cleaned {
    text: String,
    /// A character was spelt differently or replaced by a space.
    replaced: bool,
    /// The value was cut to fit.
    cut: bool,
}

impl Cleaned {
    fn changed(&self) -> bool {
        self.replaced || self.cut
    }

    /// "BACS allows only …; cut to 18 characters".
    fn why(&self, max: usize) -> String {
        let mut reasons = Vec::with_capacity(2);
        if self.replaced {
            reasons.push(ALLOWED_NOTE.to_owned());
        }
        if self.cut {
            reasons.push(format!("cut to {max} characters"));
        }
        reasons.join("; ")
    }
}

fn is_bacs(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, ' ' | '.' | '&' | '/' | '-')
}

fn clean(value: &str, max: usize) -> Cleaned {
    let mut spelt = String::with_capacity(value.len());
    let mut replaced = false;
    for c in value.chars() {
        if c.is_whitespace() {
            spelt.push(' ');
            continue;
        }
        for upper in c.to_uppercase() {
            if is_bacs(upper) {
                // ß upper-cases to "SS": a change, though both letters are allowed.
                replaced |= !c.is_ascii();
                spelt.push(upper);
            } else if let Some(ascii) = latin_in_ascii(upper) {
                replaced = true;
                spelt.push_str(ascii);
            } else {
                replaced = true;
                spelt.push(' ');
            }
        }
    }
    let mut text = spelt.split(' ').filter(|w| !w.is_empty()).fold(
        String::with_capacity(spelt.len()),
        |mut out, word| {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
            out
        },
    );
    // Every character is ASCII by now, so a byte index is a character index.
    let cut = text.len() > max;
    if cut {
        text.truncate(max);
        text.truncate(text.trim_end().len());
    }
    Cleaned {
        text,
        replaced,
        cut,
    }
}

/// Common accented Latin capitals spelt in ASCII.
fn latin_in_ascii(c: char) -> Option<&'static str> {
    Some(match c {
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ā' | 'Ă' | 'Ą' => "A",
        'Æ' => "AE",
        'Ç' | 'Ć' | 'Ĉ' | 'Ċ' | 'Č' => "C",
        'Ð' | 'Ď' | 'Đ' => "D",
        'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ĕ' | 'Ė' | 'Ę' | 'Ě' => "E",
        'Ĝ' | 'Ğ' | 'Ġ' | 'Ģ' => "G",
        'Ĥ' | 'Ħ' => "H",
        'Ì' | 'Í' | 'Î' | 'Ï' | 'Ĩ' | 'Ī' | 'Ĭ' | 'Į' | 'İ' => "I",
        'Ĵ' => "J",
        'Ķ' => "K",
        'Ĺ' | 'Ļ' | 'Ľ' | 'Ŀ' | 'Ł' => "L",
        'Ñ' | 'Ń' | 'Ņ' | 'Ň' => "N",
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ō' | 'Ŏ' | 'Ő' => "O",
        'Œ' => "OE",
        'Ŕ' | 'Ŗ' | 'Ř' => "R",
        'Ś' | 'Ŝ' | 'Ş' | 'Š' | 'Ș' => "S",
        'ẞ' => "SS",
        'Ţ' | 'Ť' | 'Ŧ' | 'Ț' => "T",
        'Þ' => "TH",
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ũ' | 'Ū' | 'Ŭ' | 'Ů' | 'Ű' | 'Ų' => "U",
        'Ŵ' => "W",
        'Ý' | 'Ŷ' | 'Ÿ' => "Y",
        'Ź' | 'Ż' | 'Ž' => "Z",
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Records

/// Builds one fixed-width record field by field.
struct Record(String);

impl Record {
    fn new(width: usize) -> Self {
        Self(String::with_capacity(width))
    }

    /// Left-justified and blank-filled, cut to `width`. Values are ASCII by the time they get
    /// here.
    fn text(mut self, value: &str, width: usize) -> Self {
        let value = value.get(..width).unwrap_or(value);
        self.0.push_str(value);
        self.0.extend(std::iter::repeat_n(' ', width - value.len()));
        self
    }

    /// Right-justified and zero-filled.
    fn number(mut self, value: u64, width: usize) -> Self {
        self.0.push_str(&format!("{value:0width$}"));
        self
    }

    fn blank(self, width: usize) -> Self {
        self.text("", width)
    }

    fn done(self) -> String {
        self.0
    }
}

fn push(file: &mut Vec<u8>, record: String) {
    file.extend_from_slice(record.as_bytes());
    file.extend_from_slice(b"\r\n");
}

fn vol1(serial: &str, sun: &str) -> String {
    Record::new(LABEL_LEN)
        .text("VOL1", 4)
        .text(serial, 6)
        .blank(1) // accessibility
        .blank(20)
        .blank(6)
        .blank(4) // owner identification: 4 blanks,
        .text(sun, 6) // the SUN,
        .blank(4) // 4 blanks
        .blank(28)
        .text("1", 1) // label standard level
        .done()
}

/// HDR1, or EOF1 which repeats it.
fn hdr1(label: &str, sun: &str, serial: &str, created: &str, expires: &str) -> String {
    Record::new(LABEL_LEN)
        .text(label, 4)
        .text("A", 1) // file identifier: "A", SUN, "S", 3 blanks, SUN
        .text(sun, 6)
        .text("S", 1)
        .blank(3)
        .text(sun, 6)
        .text(serial, 6) // set identification
        .text("0001", 4) // file section number
        .text("0001", 4) // file sequence number
        .blank(4) // generation number
        .blank(2) // generation version number
        .text(created, 6)
        .text(expires, 6)
        .blank(1) // accessibility
        .text("000000", 6) // block count
        .blank(13) // system code
        .blank(7)
        .done()
}

/// HDR2, or EOF2 which repeats it.
fn hdr2(label: &str) -> String {
    Record::new(LABEL_LEN)
        .text(label, 4)
        .text("F", 1) // fixed-length records
        .number(2000, 5) // block length
        .number(DATA_RECORD_LEN as u64, 5) // record length
        .blank(35)
        .text("00", 2) // buffer offset
        .blank(28)
        .done()
}

fn uhl1(processing: &str) -> String {
    Record::new(LABEL_LEN)
        .text("UHL1", 4)
        .text(processing, 6)
        .text("999999", 10) // receiving party: Bacs
        .text("00", 2) // currency: sterling
        .text("000000", 6) // country
        .text("1 DAILY", 9) // work code: single processing day
        .text("001", 3) // file number within the submission
        .blank(7)
        .blank(7) // audit print identifier
        .blank(26)
        .done()
}

struct DataRecord<'a> {
    to_sort_code: &'a str,
    to_account: &'a str,
    code: &'a str,
    from_sort_code: &'a str,
    from_account: &'a str,
    amount_pence: i64,
    user_name: &'a str,
    reference: &'a str,
    to_name: &'a str,
}

fn data_record(r: &DataRecord<'_>) -> String {
    Record::new(DATA_RECORD_LEN)
        .text(r.to_sort_code, 6)
        .text(r.to_account, 8)
        .text("0", 1) // account type
        .text(r.code, 2)
        .text(r.from_sort_code, 6)
        .text(r.from_account, 8)
        .blank(4) // free format / RTI
        .number(r.amount_pence.unsigned_abs(), 11)
        .text(r.user_name, FIELD_WIDTH)
        .text(r.reference, FIELD_WIDTH)
        .text(r.to_name, FIELD_WIDTH)
        .done()
}

fn utl1(debit_pence: i64, credit_pence: i64, debits: usize, credits: usize) -> String {
    Record::new(LABEL_LEN)
        .text("UTL1", 4)
        .number(debit_pence.unsigned_abs(), 13)
        .number(credit_pence.unsigned_abs(), 13)
        .number(debits as u64, 7)
        .number(credits as u64, 7)
        .blank(36)
        .done()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn originator() -> Originator {
        Originator {
            sun: "123456".into(),
            sort_code: "20-00-00".into(),
            account_number: "12345678".into(),
            account_name: "Harbour Lettings".into(),
        }
    }

    fn submission() -> Submission {
        Submission {
            serial: 42,
            created_on: date!(2026 - 02 - 26),
            processing_date: date!(2026 - 03 - 02),
        }
    }

    fn credit(name: &str, sort_code: &str, account: &str, pence: i64, reference: &str) -> Credit {
        Credit {
            payee_name: name.into(),
            sort_code: sort_code.into(),
            account_number: account.into(),
            amount_pence: pence,
            reference: reference.into(),
        }
    }

    fn run() -> Vec<Credit> {
        vec![
            credit(
                "Brïght Spark (Plumbing) Ltd",
                "40-11-22",
                "31926819",
                45_000,
                "INV 4471",
            ),
            credit(
                "Acme Roofing",
                "60 16 13",
                "00012345",
                123_456,
                "PO-2026/03",
            ),
            credit(
                "O'Neill & Sons",
                "309634",
                "8765 4321",
                99,
                "Service charge Q1",
            ),
        ]
    }

    /// The whole file for `run()`. Labels are 80 characters, data records 100; each line is
    /// closed by CRLF, so the padding is everything between the last field and the `\r\n`.
    #[rustfmt::skip]
    const GOLDEN: &str = concat!(
        "VOL1000042                               123456                                1\r\n",
        "HDR1A123456S   12345600004200010001       26057 26061 000000                    \r\n",
        "HDR2F0200000100                                   00                            \r\n",
        "UHL1 26061999999    000000001 DAILY  001                                        \r\n",
        "4011223192681909920000012345678    00000045000HARBOUR LETTINGS  INV 4471          BRIGHT SPARK PLUMB\r\n",
        "6016130001234509920000012345678    00000123456HARBOUR LETTINGS  PO-2026/03        ACME ROOFING      \r\n",
        "3096348765432109920000012345678    00000000099HARBOUR LETTINGS  SERVICE CHARGE Q1 O NEILL & SONS    \r\n",
        "2000001234567801720000012345678    00000168555HARBOUR LETTINGS  CONTRA            HARBOUR LETTINGS  \r\n",
        "EOF1A123456S   12345600004200010001       26057 26061 000000                    \r\n",
        "EOF2F0200000100                                   00                            \r\n",
        "UTL10000000168555000000016855500000010000003                                    \r\n",
    );

    fn lines(bytes: &[u8]) -> Vec<&str> {
        let text = std::str::from_utf8(bytes).unwrap();
        assert!(text.ends_with("\r\n"));
        text.strip_suffix("\r\n").unwrap().split("\r\n").collect()
    }

    #[test]
    fn golden_file_byte_for_byte() {
        let file = standard18(&originator(), &submission(), &run()).unwrap();
        assert_eq!(std::str::from_utf8(&file.bytes).unwrap(), GOLDEN);
        assert_eq!(file.bytes, GOLDEN.as_bytes());
        assert_eq!(file.total_pence, 168_555);
        assert_eq!(file.count, 3);
        assert_eq!(
            file.notices,
            vec![
                "Payee \"Brïght Spark (Plumbing) Ltd\": name sent as \"BRIGHT SPARK PLUMB\" \
                 (BACS allows only A–Z, 0–9, space and . & / -; cut to 18 characters)."
                    .to_owned(),
                "Payee \"O'Neill & Sons\": name sent as \"O NEILL & SONS\" \
                 (BACS allows only A–Z, 0–9, space and . & / -)."
                    .to_owned(),
            ]
        );
    }

    #[test]
    fn golden_records_have_their_lengths_and_only_bacs_characters() {
        let file = standard18(&originator(), &submission(), &run()).unwrap();
        let lines = lines(&file.bytes);
        let labels: Vec<&str> = lines.iter().map(|l| &l[..4]).collect();
        assert_eq!(
            labels,
            [
                "VOL1", "HDR1", "HDR2", "UHL1", "4011", "6016", "3096", "2000", "EOF1", "EOF2",
                "UTL1"
            ]
        );
        for (i, line) in lines.iter().enumerate() {
            let want = if (4..8).contains(&i) {
                DATA_RECORD_LEN
            } else {
                LABEL_LEN
            };
            assert_eq!(line.len(), want, "line {} is {line:?}", i + 1);
            assert!(line.chars().all(is_bacs), "line {} is {line:?}", i + 1);
        }
        // No bare CR or LF anywhere but the line ends.
        let crs = file.bytes.iter().filter(|b| **b == b'\r').count();
        let lfs = file.bytes.iter().filter(|b| **b == b'\n').count();
        assert_eq!((crs, lfs), (11, 11));
    }

    #[test]
    fn contra_balances_the_credits_and_the_trailer_agrees() {
        let file = standard18(&originator(), &submission(), &run()).unwrap();
        let lines = lines(&file.bytes);
        let credits = &lines[4..7];
        let contra = lines[7];
        let utl1 = lines[10];

        let sum: i64 = credits
            .iter()
            .map(|l| l[35..46].parse::<i64>().unwrap())
            .sum();
        assert!(credits.iter().all(|l| &l[15..17] == "99"));
        assert_eq!(&contra[15..17], "17");
        assert_eq!(
            &contra[0..14],
            "20000012345678",
            "the contra is to our account"
        );
        assert_eq!(&contra[17..31], "20000012345678", "and from it");
        assert_eq!(contra[35..46].parse::<i64>().unwrap(), sum);
        assert_eq!(&contra[64..82], "CONTRA            ");
        assert_eq!(sum, file.total_pence);

        assert_eq!(utl1[4..17].parse::<i64>().unwrap(), sum, "debit total");
        assert_eq!(utl1[17..30].parse::<i64>().unwrap(), sum, "credit total");
        assert_eq!(&utl1[30..37], "0000001", "one debit: the contra");
        assert_eq!(&utl1[37..44], "0000003", "three credits");
    }

    #[test]
    fn labels_carry_the_sun_serial_and_dates() {
        let file = standard18(&originator(), &submission(), &run()).unwrap();
        let lines = lines(&file.bytes);
        assert_eq!(&lines[0][4..10], "000042");
        assert_eq!(&lines[0][41..47], "123456");
        assert_eq!(&lines[1][5..11], "123456");
        assert_eq!(&lines[1][21..27], "000042");
        assert_eq!(&lines[1][41..47], " 26057", "created 26 February 2026");
        assert_eq!(&lines[3][4..10], " 26061", "processed 2 March 2026");
        assert_eq!(&lines[3][28..37], "1 DAILY  ");
        assert_eq!(&lines[8][4..], &lines[1][4..], "EOF1 repeats HDR1");
        assert_eq!(&lines[9][4..], &lines[2][4..], "EOF2 repeats HDR2");
    }

    #[test]
    fn sun_may_be_typed_in_lower_case() {
        let mut o = originator();
        o.sun = " b12345 ".into();
        let file = standard18(&o, &submission(), &run()).unwrap();
        assert_eq!(&lines(&file.bytes)[0][41..47], "B12345");
    }

    #[test]
    fn julian_dates() {
        assert_eq!(julian(date!(2026 - 03 - 01)), " 26060");
        assert_eq!(julian(date!(2026 - 01 - 01)), " 26001");
        assert_eq!(julian(date!(2024 - 12 - 31)), " 24366");
        assert_eq!(julian(date!(2000 - 02 - 29)), " 00060");
    }

    #[test]
    fn fields_are_padded_and_filled() {
        assert_eq!(Record::new(8).text("AB", 5).number(7, 3).done(), "AB   007");
        assert_eq!(Record::new(4).text("ABCDEF", 4).done(), "ABCD");
        assert_eq!(Record::new(11).number(1, 11).done(), "00000000001");
        assert_eq!(
            Record::new(11).number(99_999_999_999, 11).done(),
            "99999999999"
        );

        let one_penny = [credit("Ann", "111111", "22222222", 1, "RENT 123")];
        let file = standard18(&originator(), &submission(), &one_penny).unwrap();
        let record = lines(&file.bytes)[4];
        assert_eq!(&record[35..46], "00000000001");
        assert_eq!(&record[64..82], "RENT 123          ");
        assert_eq!(&record[82..100], "ANN               ");
        assert_eq!(&record[31..35], "    ");
        assert_eq!(&record[14..15], "0");
    }

    #[test]
    fn sanitise_spells_accents_in_ascii() {
        assert_eq!(
            sanitise("Crème Brûlée Café", 18),
            ("CREME BRULEE CAFE".into(), true)
        );
        assert_eq!(sanitise("Straße", 18), ("STRASSE".into(), true));
        assert_eq!(sanitise("Ærø Æsir", 18), ("AERO AESIR".into(), true));
        assert_eq!(sanitise("Łódź Øresund", 18), ("LODZ ORESUND".into(), true));
        assert_eq!(sanitise("Björk Señor", 18), ("BJORK SENOR".into(), true));
    }

    #[test]
    fn sanitise_replaces_brackets_apostrophes_and_symbols() {
        assert_eq!(sanitise("A (B) C", 18), ("A B C".into(), true));
        assert_eq!(sanitise("O'Brien", 18), ("O BRIEN".into(), true));
        assert_eq!(sanitise("O’Brien", 18), ("O BRIEN".into(), true));
        assert_eq!(sanitise("Inv #12, 50%", 18), ("INV 12 50".into(), true));
        assert_eq!(
            sanitise("Smith_Jones+Co", 18),
            ("SMITH JONES CO".into(), true)
        );
    }

    #[test]
    fn sanitise_keeps_the_allowed_punctuation() {
        assert_eq!(sanitise("a.b & c/d-e", 18), ("A.B & C/D-E".into(), false));
    }

    #[test]
    fn sanitise_collapses_spaces_without_calling_it_a_change() {
        assert_eq!(
            sanitise("  acme \t  roofing\u{a0}ltd  ", 18),
            ("ACME ROOFING LTD".into(), false)
        );
        assert_eq!(sanitise("acme", 18), ("ACME".into(), false));
        assert_eq!(sanitise("x ( ) y", 18), ("X Y".into(), true));
    }

    #[test]
    fn sanitise_cuts_long_values_and_trailing_spaces() {
        assert_eq!(
            sanitise("Northern Heating Services", 18),
            ("NORTHERN HEATING S".into(), true)
        );
        assert_eq!(
            sanitise("Harbour Lettings Client Account", 18),
            ("HARBOUR LETTINGS C".into(), true)
        );
        // The 18th character is a space: cut, then trimmed to 17.
        assert_eq!(
            sanitise("Abcdefghijklmnopq rst", 18),
            ("ABCDEFGHIJKLMNOPQ".into(), true)
        );
        assert_eq!(sanitise("", 18), (String::new(), false));
        assert_eq!(sanitise("()", 18), (String::new(), true));
    }

    #[test]
    fn notices_name_the_payee_and_the_reason() {
        let credits = [credit(
            "Café Nero",
            "111111",
            "22222222",
            100,
            "Inv #4471 (June)",
        )];
        let file = standard18(&originator(), &submission(), &credits).unwrap();
        assert_eq!(
            file.notices,
            vec![
                "Payee \"Café Nero\": name sent as \"CAFE NERO\" \
                 (BACS allows only A–Z, 0–9, space and . & / -)."
                    .to_owned(),
                "Payee \"Café Nero\": reference \"Inv #4471 (June)\" sent as \"INV 4471 JUNE\" \
                 (BACS allows only A–Z, 0–9, space and . & / -)."
                    .to_owned(),
            ]
        );
    }

    #[test]
    fn originator_name_is_cleaned_with_a_notice() {
        let mut o = originator();
        o.account_name = "Harbour Lettings Client Account".into();
        let file = standard18(&o, &submission(), &run()).unwrap();
        assert_eq!(
            file.notices[0],
            "Originating account \"Harbour Lettings Client Account\": name sent as \
             \"HARBOUR LETTINGS C\" (cut to 18 characters)."
        );
        assert_eq!(&lines(&file.bytes)[4][46..64], "HARBOUR LETTINGS C");
    }

    fn refuse(credits: &[Credit]) -> BacsError {
        standard18(&originator(), &submission(), credits).unwrap_err()
    }

    fn one(c: Credit) -> BacsError {
        refuse(&[credit("Acme", "111111", "22222222", 100, "INV 0001"), c])
    }

    #[test]
    fn refuses_an_empty_run() {
        assert_eq!(refuse(&[]), BacsError::NoPayments);
        assert_eq!(payments_csv(&[]).unwrap_err(), BacsError::NoPayments);
    }

    #[test]
    fn refuses_zero_negative_and_oversized_amounts() {
        let e = one(credit("Zed Ltd", "111111", "22222222", 0, "INV 0002"));
        assert!(matches!(
            e,
            BacsError::AmountNotPositive {
                line: 2,
                amount_pence: 0,
                ..
            }
        ));
        assert_eq!(
            e.to_string(),
            "The payment to \"Zed Ltd\" (payment 2) is £0.00; a BACS payment must be more than £0.00."
        );
        let e = one(credit("Zed Ltd", "111111", "22222222", -500, "INV 0002"));
        assert!(e.to_string().contains("is -£5.00"), "{e}");
        let e = one(credit(
            "Zed Ltd",
            "111111",
            "22222222",
            MAX_AMOUNT_PENCE + 1,
            "INV 0002",
        ));
        assert_eq!(
            e.to_string(),
            "The payment to \"Zed Ltd\" (payment 2) is £1,000,000,000.00, more than the \
             £999,999,999.99 BACS can carry in one payment."
        );
        // The largest single payment is fine.
        let fine = [credit(
            "Big",
            "111111",
            "22222222",
            MAX_AMOUNT_PENCE,
            "INV 0003",
        )];
        let file = standard18(&originator(), &submission(), &fine).unwrap();
        assert_eq!(&lines(&file.bytes)[4][35..46], "99999999999");
    }

    #[test]
    fn refuses_a_total_over_eleven_digits() {
        let e = refuse(&[
            credit("A Ltd", "111111", "22222222", MAX_AMOUNT_PENCE, "INV 0001"),
            credit("B Ltd", "111111", "22222222", 1, "INV 0002"),
        ]);
        assert_eq!(
            e,
            BacsError::TotalTooLarge {
                total_pence: MAX_AMOUNT_PENCE + 1
            }
        );
        assert!(e.to_string().contains("£1,000,000,000.00"), "{e}");
    }

    #[test]
    fn refuses_more_than_99999_credits() {
        let many = vec![credit("A Ltd", "111111", "22222222", 1, "INV 0001"); MAX_CREDITS + 1];
        let e = refuse(&many);
        assert_eq!(e, BacsError::TooManyPayments { count: 100_000 });
        assert!(e.to_string().contains("100,000 payments"), "{e}");
    }

    #[test]
    fn refuses_bad_sort_codes_and_account_numbers_naming_the_payee() {
        for bad in ["12-34-5", "1234567", "12-34-5X", ""] {
            let e = one(credit("Zed Ltd", bad, "22222222", 100, "INV 0002"));
            assert!(matches!(e, BacsError::SortCode { line: 2, .. }), "{bad}");
            assert!(e.to_string().contains("\"Zed Ltd\""), "{e}");
        }
        for bad in ["1234567", "123456789", "1234567X", ""] {
            let e = one(credit("Zed Ltd", "111111", bad, 100, "INV 0002"));
            assert!(
                matches!(e, BacsError::AccountNumber { line: 2, .. }),
                "{bad}"
            );
            assert!(e.to_string().contains("\"Zed Ltd\""), "{e}");
        }
    }

    #[test]
    fn refuses_short_references() {
        let e = one(credit("Zed Ltd", "111111", "22222222", 100, "AB 12"));
        assert_eq!(
            e.to_string(),
            "The reference for \"Zed Ltd\" (payment 2), \"AB 12\", would be sent as \"AB 12\", \
             which has fewer than 6 characters other than spaces; BACS rejects such references, \
             so use a longer one such as the invoice number."
        );
        // Six characters before cleaning, fewer after.
        let e = one(credit("Zed Ltd", "111111", "22222222", 100, "#(12)!"));
        assert!(
            matches!(&e, BacsError::ShortReference { sent, .. } if sent == "12"),
            "{e}"
        );
        let e = one(credit("Zed Ltd", "111111", "22222222", 100, ""));
        assert!(matches!(e, BacsError::ShortReference { .. }));
        // Exactly six is enough.
        standard18(
            &originator(),
            &submission(),
            &[credit("Zed Ltd", "111111", "22222222", 100, "AB/1-2")],
        )
        .unwrap();
    }

    #[test]
    fn refuses_names_that_clean_to_nothing() {
        let e = one(credit("(???)", "111111", "22222222", 100, "INV 0002"));
        assert_eq!(
            e,
            BacsError::PayeeName {
                line: 2,
                payee: "(???)".into()
            }
        );
        assert!(e.to_string().contains("payment 2, \"(???)\""), "{e}");
        let e = one(credit("   ", "111111", "22222222", 100, "INV 0002"));
        assert!(matches!(e, BacsError::PayeeName { .. }));

        let mut o = originator();
        o.account_name = "***".into();
        let e = standard18(&o, &submission(), &run()).unwrap_err();
        assert!(matches!(e, BacsError::OriginatorName { .. }));
    }

    #[test]
    fn refuses_a_bad_service_user_number() {
        for bad in ["12345", "1234567", "12-456", "", "12345£"] {
            let mut o = originator();
            o.sun = bad.into();
            let e = standard18(&o, &submission(), &run()).unwrap_err();
            assert_eq!(e, BacsError::ServiceUserNumber { sun: bad.into() }, "{bad}");
        }
    }

    #[test]
    fn refuses_a_bad_originating_account() {
        let mut o = originator();
        o.sort_code = "20-00".into();
        assert!(matches!(
            standard18(&o, &submission(), &run()),
            Err(BacsError::OriginatorSortCode { .. })
        ));
        let mut o = originator();
        o.account_number = "1234567".into();
        assert!(matches!(
            standard18(&o, &submission(), &run()),
            Err(BacsError::OriginatorAccountNumber { .. })
        ));
    }

    #[test]
    fn refuses_a_bad_serial_or_a_processing_date_before_the_file() {
        for serial in [0, 1_000_000] {
            let s = Submission {
                serial,
                ..submission()
            };
            assert_eq!(
                standard18(&originator(), &s, &run()).unwrap_err(),
                BacsError::FileSerial { serial }
            );
        }
        let s = Submission {
            serial: 999_999,
            ..submission()
        };
        let file = standard18(&originator(), &s, &run()).unwrap();
        assert_eq!(&lines(&file.bytes)[0][4..10], "999999");

        let s = Submission {
            created_on: date!(2026 - 03 - 03),
            ..submission()
        };
        let e = standard18(&originator(), &s, &run()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "The processing date, 2 March 2026, is before the day the file is made, 3 March 2026; \
             choose a processing date on or after that day."
        );
    }

    #[test]
    fn csv_has_one_row_per_payment() {
        let (bytes, notices) = payments_csv(&run()).unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            "BRIGHT SPARK PLUMB,40-11-22,31926819,450.00,INV 4471\r\n\
             ACME ROOFING,60-16-13,00012345,1234.56,PO-2026/03\r\n\
             O NEILL & SONS,30-96-34,87654321,0.99,SERVICE CHARGE Q1\r\n"
        );
        let file = standard18(&originator(), &submission(), &run()).unwrap();
        assert_eq!(notices, file.notices);
    }

    #[test]
    fn csv_name_with_a_comma_cannot_split_the_row() {
        let (bytes, notices) = payments_csv(&[credit(
            "Smith, Jones & Co",
            "111111",
            "22222222",
            1_000_000,
            "Inv 101, 2",
        )])
        .unwrap();
        // A comma is not a BACS character, so it is replaced, noted, and the row stays
        // five columns; quoting would only be needed for a value that kept one.
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            "SMITH JONES & CO,11-11-11,22222222,10000.00,INV 101 2\r\n"
        );
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(bytes.as_slice());
        let row = reader.records().next().unwrap().unwrap();
        assert_eq!(row.len(), 5);
        assert_eq!(&row[0], "SMITH JONES & CO");
        assert_eq!(
            notices[0],
            "Payee \"Smith, Jones & Co\": name sent as \"SMITH JONES & CO\" \
             (BACS allows only A–Z, 0–9, space and . & / -)."
        );
    }

    #[test]
    fn csv_refuses_what_the_file_refuses() {
        assert!(matches!(
            payments_csv(&[credit("Zed", "111111", "22222222", 0, "INV 0001")]),
            Err(BacsError::AmountNotPositive { .. })
        ));
        assert!(matches!(
            payments_csv(&[credit("Zed", "111111", "22222222", 1, "INV")]),
            Err(BacsError::ShortReference { .. })
        ));
    }
}
