//! The per-site double-entry ledger (DESIGN §4; docs-spec §2.6): account kinds, the chart of
//! accounts every site starts with, funds, and the checks a journal passes before it is
//! posted. Amounts are whole pence: debits positive, credits negative; a journal's lines sum to
//! zero.

/// What kind of account: its type decides its normal side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountKind {
    Asset,
    Liability,
    Equity,
    Income,
    Expense,
    Reserve,
}

impl AccountKind {
    pub const ALL: [Self; 6] = [
        Self::Asset,
        Self::Liability,
        Self::Equity,
        Self::Income,
        Self::Expense,
        Self::Reserve,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Asset => "asset",
            Self::Liability => "liability",
            Self::Equity => "equity",
            Self::Income => "income",
            Self::Expense => "expense",
            Self::Reserve => "reserve",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Asset => "Asset",
            Self::Liability => "Liability",
            Self::Equity => "Equity",
            Self::Income => "Income",
            Self::Expense => "Expense",
            Self::Reserve => "Reserve",
        }
    }

    /// Assets and expenses normally carry debit balances; the rest credit balances.
    pub fn normally_debit(self) -> bool {
        matches!(self, Self::Asset | Self::Expense)
    }
}

/// The funds a site's money is kept in, apart from each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FundKind {
    ServiceCharge,
    Reserve,
    GroundRent,
    Other,
}

impl FundKind {
    pub const ALL: [Self; 4] = [
        Self::ServiceCharge,
        Self::Reserve,
        Self::GroundRent,
        Self::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServiceCharge => "service_charge",
            Self::Reserve => "reserve",
            Self::GroundRent => "ground_rent",
            Self::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::ServiceCharge => "Service charge fund",
            Self::Reserve => "Reserve fund",
            Self::GroundRent => "Ground rent",
            Self::Other => "Other",
        }
    }
}

/// One account of the chart every site starts with.
#[derive(Debug, Clone, Copy)]
pub struct ChartAccount {
    pub code: &'static str,
    pub name: &'static str,
    pub kind: AccountKind,
    /// The role the automatic postings use it for, if any.
    pub control: Option<&'static str>,
}

const fn account(
    code: &'static str,
    name: &'static str,
    kind: AccountKind,
    control: Option<&'static str>,
) -> ChartAccount {
    ChartAccount {
        code,
        name,
        kind,
        control,
    }
}

/// The seeded chart of accounts (docs-spec §2.6 "General ledger").
pub const STANDARD_CHART: [ChartAccount; 25] = {
    use AccountKind::*;
    [
        account("1000", "Bank: client account", Asset, Some("bank")),
        account("1100", "Debtors control", Asset, Some("debtors")),
        account("1200", "Prepayments", Asset, None),
        account("2000", "Creditors control", Liability, Some("creditors")),
        account("2100", "Accruals", Liability, None),
        account("2200", "Deposits held", Liability, None),
        account("2300", "VAT", Liability, Some("vat")),
        account("2900", "Suspense", Liability, Some("suspense")),
        account(
            "3000",
            "Retained surplus",
            Equity,
            Some("retained_earnings"),
        ),
        account("3100", "Reserve fund", Reserve, None),
        account(
            "4000",
            "Service charge income",
            Income,
            Some("service_charge_income"),
        ),
        account(
            "4100",
            "Ground rent income",
            Income,
            Some("ground_rent_income"),
        ),
        account(
            "4200",
            "Administration fees",
            Income,
            Some("admin_fee_income"),
        ),
        account("4300", "Interest received", Income, None),
        account(
            "4400",
            "Reserve fund contributions",
            Income,
            Some("reserve_contributions"),
        ),
        account("5000", "Repairs and maintenance", Expense, Some("repairs")),
        account("5100", "Insurance", Expense, None),
        account("5200", "Cleaning", Expense, None),
        account("5300", "Gardening", Expense, None),
        account("5400", "Management fees", Expense, None),
        account("5500", "Utilities", Expense, None),
        account("5600", "Professional fees", Expense, None),
        account("5700", "Lift maintenance", Expense, None),
        account("5800", "Fire safety", Expense, None),
        account("5900", "Bad debts", Expense, None),
    ]
};

/// The funds every site starts with.
pub const STANDARD_FUNDS: [FundKind; 3] = [
    FundKind::ServiceCharge,
    FundKind::Reserve,
    FundKind::GroundRent,
];

/// A posting role: the account the automatic postings use for it (docs-spec §2.6 "Ledger
/// account defaults"). Each is held by one account of a site's chart, of the kind it needs;
/// `bank` may be held by several (a site can bank in more than one account).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostingRole {
    pub key: &'static str,
    pub label: &'static str,
    pub kind: AccountKind,
}

const fn role(key: &'static str, label: &'static str, kind: AccountKind) -> PostingRole {
    PostingRole { key, label, kind }
}

/// Every posting role, in the order Settings lists them.
pub const POSTING_ROLES: [PostingRole; 11] = {
    use AccountKind::*;
    [
        role("bank", "Bank", Asset),
        role("debtors", "Debtors control", Asset),
        role("creditors", "Creditors control", Liability),
        role("vat", "VAT", Liability),
        role("suspense", "Suspense", Liability),
        role("retained_earnings", "Retained surplus", Equity),
        role("service_charge_income", "Service charge income", Income),
        role("ground_rent_income", "Ground rent income", Income),
        role("admin_fee_income", "Administration fee income", Income),
        role(
            "reserve_contributions",
            "Reserve fund contributions",
            Income,
        ),
        role("repairs", "Repairs (default expense)", Expense),
    ]
};

/// The posting role called `key`.
pub fn posting_role(key: &str) -> Option<PostingRole> {
    POSTING_ROLES.into_iter().find(|r| r.key == key)
}

/// Checks an account code as the chart keeps it (upper case: "4150", "SC-01"): 1–10 letters,
/// digits or hyphens, not starting with a hyphen.
pub fn normalise_account_code(code: &str) -> Result<String, &'static str> {
    let code = code.trim().to_uppercase();
    let ok = !code.is_empty()
        && code.len() <= 10
        && code
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase() || c == '-')
        && !code.starts_with('-');
    if ok {
        Ok(code)
    } else {
        Err("An account code is 1 to 10 letters, digits or hyphens, such as 4150 or SC-01.")
    }
}

/// A VAT treatment (docs-spec §2.6 "Tax rates"): the five seeded ones, or an organisation's
/// own with a rate in basis points (2000 = 20 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaxTreatment {
    Standard,
    Reduced,
    Zero,
    /// Most residential service charges and residential rent.
    Exempt,
    /// Ground rent, in many cases.
    OutsideScope,
    Custom,
}

impl TaxTreatment {
    pub const SEEDED: [Self; 5] = [
        Self::Standard,
        Self::Reduced,
        Self::Zero,
        Self::Exempt,
        Self::OutsideScope,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Reduced => "reduced",
            Self::Zero => "zero",
            Self::Exempt => "exempt",
            Self::OutsideScope => "outside_scope",
            Self::Custom => "custom",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::SEEDED
            .into_iter()
            .chain([Self::Custom])
            .find(|k| k.as_str() == s)
    }

    /// The seeded name and rate in basis points.
    pub fn seeded(self) -> (&'static str, u32) {
        match self {
            Self::Standard => ("Standard 20%", 2000),
            Self::Reduced => ("Reduced 5%", 500),
            Self::Zero => ("Zero-rated 0%", 0),
            Self::Exempt => ("Exempt", 0),
            Self::OutsideScope => ("Outside the scope of VAT", 0),
            Self::Custom => ("Custom", 0),
        }
    }
}

/// Reads a tax rate as typed ("20", "12.5", "17.5 %") into basis points: 0 to 100 with at
/// most two decimal places.
pub fn parse_rate_percent(input: &str) -> Result<u32, &'static str> {
    let t = input.trim();
    let t = t.strip_suffix('%').unwrap_or(t).trim_end();
    let (whole, fraction) = t.split_once('.').unwrap_or((t, ""));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || whole.len() > 3 {
        return Err("Give the rate as a percentage, such as 20 or 12.5.");
    }
    if fraction.len() > 2 {
        return Err("A rate has at most two decimal places.");
    }
    let whole: u32 = whole
        .parse()
        .map_err(|_| "Give the rate as a percentage.")?;
    let fraction: u32 = format!("{fraction:0<2}")
        .parse()
        .map_err(|_| "Give the rate as a percentage.")?;
    let bp = whole * 100 + fraction;
    if bp > 10_000 {
        return Err("A rate is at most 100%.");
    }
    Ok(bp)
}

/// A rate in basis points as a percentage: 2000 → "20%", 1250 → "12.5%", 1225 → "12.25%".
pub fn format_rate(basis_points: u32) -> String {
    let (whole, fraction) = (basis_points / 100, basis_points % 100);
    match fraction {
        0 => format!("{whole}%"),
        f if f % 10 == 0 => format!("{whole}.{}%", f / 10),
        f => format!("{whole}.{f:02}%"),
    }
}

/// VAT on a net amount at a rate in basis points, rounded half away from zero to the penny
/// (HMRC allows rounding to the nearest penny per line).
pub fn vat_pence(net_pence: i64, basis_points: u32) -> i64 {
    let product = i128::from(net_pence) * i128::from(basis_points);
    let (quotient, remainder) = (product / 10_000, product % 10_000);
    let rounded = if remainder.abs() * 2 >= 10_000 {
        quotient + product.signum()
    } else {
        quotient
    };
    // |net| ≤ 10^12 and the rate ≤ 100 %: the VAT fits an i64.
    i64::try_from(rounded).unwrap_or(if rounded > 0 { i64::MAX } else { i64::MIN })
}

/// The largest amount a line may carry: £10,000,000,000 (the database's limit too).
pub const MAX_LINE_PENCE: i64 = 1_000_000_000_000;

/// Why a journal cannot be posted, in words for the person posting it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    #[error("A journal needs at least two lines.")]
    TooFewLines,
    #[error("Line {0} has no amount: every line debits or credits something.")]
    ZeroLine(usize),
    #[error("Line {0} is more than £10,000,000,000.00; check the figure.")]
    Absurd(usize),
    #[error(
        "The lines do not balance: debits {debits} and credits {credits} differ by {difference}."
    )]
    Unbalanced {
        debits: String,
        credits: String,
        difference: String,
    },
    #[error("A journal has at most 1,000 lines.")]
    TooManyLines,
}

/// Checks a journal's amounts (debits positive, credits negative): at least two lines, none
/// zero or absurd, summing to zero.
pub fn check_lines(amounts: &[i64]) -> Result<(), JournalError> {
    if amounts.len() < 2 {
        return Err(JournalError::TooFewLines);
    }
    if amounts.len() > 1000 {
        return Err(JournalError::TooManyLines);
    }
    for (i, a) in amounts.iter().enumerate() {
        if *a == 0 {
            return Err(JournalError::ZeroLine(i + 1));
        }
        if a.unsigned_abs() > MAX_LINE_PENCE.unsigned_abs() {
            return Err(JournalError::Absurd(i + 1));
        }
    }
    // At most 1,000 lines of at most 10^12: the sums fit an i64 with room to spare.
    let debits: i64 = amounts.iter().filter(|a| **a > 0).sum();
    let credits: i64 = -amounts.iter().filter(|a| **a < 0).sum::<i64>();
    if debits != credits {
        return Err(JournalError::Unbalanced {
            debits: crate::uk::format_pence(debits),
            credits: crate::uk::format_pence(credits),
            difference: crate::uk::format_pence((debits - credits).abs()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seeded_role_is_held_by_one_account_of_its_kind() {
        for r in POSTING_ROLES {
            let holders: Vec<_> = STANDARD_CHART
                .iter()
                .filter(|a| a.control == Some(r.key))
                .collect();
            assert_eq!(
                holders.len(),
                1,
                "{} is held {} times",
                r.key,
                holders.len()
            );
            assert_eq!(holders[0].kind, r.kind, "{}", r.key);
        }
        for a in STANDARD_CHART {
            if let Some(c) = a.control {
                assert!(posting_role(c).is_some(), "{c} is not a role");
            }
            assert_eq!(normalise_account_code(a.code).as_deref(), Ok(a.code));
        }
    }

    #[test]
    fn rates_are_read_and_written_as_percentages() {
        assert_eq!(parse_rate_percent("20"), Ok(2000));
        assert_eq!(parse_rate_percent(" 12.5 % "), Ok(1250));
        assert_eq!(parse_rate_percent("0.05"), Ok(5));
        assert_eq!(parse_rate_percent("100"), Ok(10_000));
        for bad in ["", "-5", "12.345", "101", "abc", "1e2", "%"] {
            assert!(parse_rate_percent(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format_rate(2000), "20%");
        assert_eq!(format_rate(1250), "12.5%");
        assert_eq!(format_rate(1225), "12.25%");
        assert_eq!(format_rate(5), "0.05%");
        assert_eq!(format_rate(0), "0%");
    }

    #[test]
    fn account_codes_are_upper_case_letters_digits_and_hyphens() {
        assert_eq!(normalise_account_code(" sc-01 ").as_deref(), Ok("SC-01"));
        assert_eq!(normalise_account_code("4150").as_deref(), Ok("4150"));
        for bad in ["", "-1", "41 50", "12345678901", "4£50", "é1"] {
            assert!(normalise_account_code(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn journals_balance_with_at_least_two_non_zero_lines() {
        assert_eq!(check_lines(&[45_000, -45_000]), Ok(()));
        assert_eq!(check_lines(&[45_000, -40_000, -5_000]), Ok(()));
        assert_eq!(check_lines(&[45_000]), Err(JournalError::TooFewLines));
        assert_eq!(
            check_lines(&[45_000, 0, -45_000]),
            Err(JournalError::ZeroLine(2))
        );
        assert_eq!(
            check_lines(&[45_000, -44_999]).unwrap_err().to_string(),
            "The lines do not balance: debits £450.00 and credits £449.99 differ by £0.01."
        );
        assert_eq!(
            check_lines(&[MAX_LINE_PENCE + 1, -(MAX_LINE_PENCE + 1)]),
            Err(JournalError::Absurd(1))
        );
        assert_eq!(check_lines(&vec![1; 1001]), Err(JournalError::TooManyLines));
    }

    #[test]
    fn vat_rounds_half_away_from_zero_per_line() {
        assert_eq!(vat_pence(45_000, 2000), 9_000);
        assert_eq!(vat_pence(1_003, 2000), 201); // 200.6
        assert_eq!(vat_pence(1_002, 2000), 200); // 200.4
        assert_eq!(vat_pence(1_010, 500), 51); // 50.5 rounds up
        assert_eq!(vat_pence(-1_010, 500), -51); // a credit rounds the same way
        assert_eq!(vat_pence(12_345, 0), 0);
        assert_eq!(vat_pence(MAX_LINE_PENCE, 10_000), MAX_LINE_PENCE);
        assert_eq!(
            TaxTreatment::parse("outside_scope"),
            Some(TaxTreatment::OutsideScope)
        );
        assert_eq!(TaxTreatment::Standard.seeded(), ("Standard 20%", 2000));
    }

    #[test]
    fn the_standard_chart_has_one_account_per_role_and_unique_codes() {
        let mut codes: Vec<_> = STANDARD_CHART.iter().map(|a| a.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), STANDARD_CHART.len());
        let mut roles: Vec<_> = STANDARD_CHART.iter().filter_map(|a| a.control).collect();
        roles.sort_unstable();
        let before = roles.len();
        roles.dedup();
        assert_eq!(roles.len(), before);
        assert!(AccountKind::Asset.normally_debit() && !AccountKind::Income.normally_debit());
        assert_eq!(FundKind::parse("reserve"), Some(FundKind::Reserve));
    }
}
