//! Operations (docs-spec §2.7): the states of issues and work orders, which moves between them
//! are allowed, the service categories (trades) and the contractor documents each requires.
//! The database checks the same state names; this module decides the moves.

/// Issues and work orders share tickets' priorities (and their service levels).
pub use crate::sla::Priority;
use crate::uk::{MoneyError, parse_pounds_to_pence};
use time::Date;

/// Defines a closed set of `snake_case` keys with labels, parsing and listing.
macro_rules! keyed {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $key:literal, $label:literal;)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $key),+ }
            }

            pub fn label(self) -> &'static str {
                match self { $(Self::$variant => $label),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($key => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}

keyed!(
    /// What kind of problem an issue is (docs-spec §2.7 "Issues").
    IssueCategory {
        WaterLeak = "water_leak", "Water leak";
        Lighting = "lighting", "Lighting fault";
        FireSafety = "fire_safety", "Fire safety";
        Security = "security", "Security";
        Cleanliness = "cleanliness", "Cleanliness";
        Lift = "lift", "Lift";
        Heating = "heating", "Heating or hot water";
        Structural = "structural", "Structural or roof";
        Pests = "pests", "Pests";
        Other = "other", "Other";
    }
);

keyed!(
    /// An issue's state: open → triaged → in progress → resolved (→ reopened), or closed as a
    /// duplicate or not actionable.
    IssueStatus {
        Open = "open", "Open";
        Triaged = "triaged", "Triaged";
        InProgress = "in_progress", "In progress";
        Resolved = "resolved", "Resolved";
        Reopened = "reopened", "Reopened";
        Closed = "closed", "Closed";
    }
);

keyed!(
    /// Why an issue was closed without being fixed.
    ClosedReason {
        Duplicate = "duplicate", "Duplicate";
        NotActionable = "not_actionable", "Not actionable";
    }
);

keyed!(
    /// Who reported an issue.
    ReporterKind {
        Resident = "resident", "Resident";
        Staff = "staff", "Staff";
        SiteManager = "site_manager", "Site manager";
        Contractor = "contractor", "Contractor";
    }
);

keyed!(
    /// Vendor service categories: the 13 defaults of docs-spec §2.7.
    Trade {
        Plumbing = "plumbing", "Plumbing";
        Electrical = "electrical", "Electrical";
        HeatingGas = "heating_gas", "Heating and gas";
        Roofing = "roofing", "Roofing";
        FireSafety = "fire_safety", "Fire safety";
        Lifts = "lifts", "Lifts";
        Cleaning = "cleaning", "Cleaning";
        Gardening = "gardening", "Gardening";
        PestControl = "pest_control", "Pest control";
        Locksmiths = "locksmiths", "Locksmiths";
        GeneralRepairs = "general_repairs", "General repairs";
        Decoration = "decoration", "Decoration";
        BuildingWork = "building_work", "Building work";
    }
);

keyed!(
    /// A work order's state (docs-spec §2.7 "Work orders"). `Completed` is the contractor's
    /// "work complete", waiting for the manager's review and rating.
    WorkOrderStatus {
        Draft = "draft", "Draft";
        Invited = "invited", "Contractor invited";
        Quoted = "quoted", "Quoted";
        Declined = "declined", "Declined by contractors";
        Approved = "approved", "Approved";
        InProgress = "in_progress", "In progress";
        Completed = "completed", "Completed, pending review";
        Invoiced = "invoiced", "Invoiced";
        Closed = "closed", "Closed";
        Cancelled = "cancelled", "Cancelled";
    }
);

keyed!(
    /// Contractor insurance and certificates (docs-spec §2.7 "insurance and certifications").
    DocumentType {
        PublicLiability = "public_liability", "Public liability insurance";
        EmployersLiability = "employers_liability", "Employers' liability insurance";
        ProfessionalIndemnity = "professional_indemnity", "Professional indemnity insurance";
        GasSafe = "gas_safe", "Gas Safe registration";
        Niceic = "niceic", "NICEIC registration";
        Napit = "napit", "NAPIT registration";
        Bafe = "bafe", "BAFE certification";
        FGas = "f_gas", "F-Gas certification";
        AsbestosLicence = "asbestos_licence", "HSE asbestos licence";
        Chas = "chas", "CHAS accreditation";
        SafeContractor = "safecontractor", "SafeContractor accreditation";
        Other = "other", "Other certificate";
    }
);

impl IssueStatus {
    /// Open issues are the queue's default view: anything not resolved or closed.
    pub fn is_open(self) -> bool {
        !matches!(self, Self::Resolved | Self::Closed)
    }

    /// The states a manager may move an issue to from this one.
    pub fn next(self) -> &'static [IssueStatus] {
        use IssueStatus::*;
        match self {
            Open | Reopened => &[Triaged, InProgress, Resolved, Closed],
            Triaged => &[InProgress, Resolved, Closed],
            InProgress => &[Resolved, Closed],
            Resolved | Closed => &[Reopened],
        }
    }

    pub fn can_move_to(self, to: IssueStatus) -> bool {
        self.next().contains(&to)
    }
}

impl WorkOrderStatus {
    /// Contractors can still be invited to quote.
    pub fn can_invite(self) -> bool {
        matches!(
            self,
            Self::Draft | Self::Invited | Self::Quoted | Self::Declined
        )
    }

    /// A quotation can be approved.
    pub fn can_approve(self) -> bool {
        matches!(self, Self::Invited | Self::Quoted)
    }

    /// The awarded contractor can work on it (attend, note, upload, complete).
    pub fn is_awarded_work(self) -> bool {
        matches!(self, Self::Approved | Self::InProgress)
    }

    pub fn can_cancel(self) -> bool {
        !matches!(
            self,
            Self::Completed | Self::Invoiced | Self::Closed | Self::Cancelled
        )
    }

    /// The manager rates and closes completed (or invoiced) work.
    pub fn can_close(self) -> bool {
        matches!(self, Self::Completed | Self::Invoiced)
    }

    pub fn is_finished(self) -> bool {
        matches!(self, Self::Closed | Self::Cancelled)
    }
}

impl Trade {
    /// The documents a contractor must hold, unexpired, to be invited or approved for this
    /// trade. Each inner list is "one of": an electrician may be NICEIC or NAPIT registered.
    pub fn required_documents(self) -> &'static [&'static [DocumentType]] {
        use DocumentType::*;
        const LIABILITY: &[DocumentType] = &[PublicLiability];
        match self {
            Trade::HeatingGas => &[LIABILITY, &[GasSafe]],
            Trade::Electrical => &[LIABILITY, &[Niceic, Napit]],
            Trade::FireSafety => &[LIABILITY, &[Bafe]],
            _ => &[LIABILITY],
        }
    }

    /// The trade a vendor's free-text trade names, if any (case and spacing ignored;
    /// "Heating & gas", "gas" and "heating" all mean heating and gas).
    pub fn from_vendor_trade(text: &str) -> Option<Self> {
        let t = text.trim().to_lowercase().replace('&', "and");
        if let Some(found) = Self::ALL
            .iter()
            .find(|tr| tr.label().to_lowercase() == t || tr.as_str() == t)
        {
            return Some(*found);
        }
        let has = |w: &str| t.contains(w);
        Some(if has("plumb") {
            Self::Plumbing
        } else if has("electric") {
            Self::Electrical
        } else if has("gas") || has("heating") || has("boiler") {
            Self::HeatingGas
        } else if has("roof") {
            Self::Roofing
        } else if has("fire") {
            Self::FireSafety
        } else if has("lift") || has("elevator") {
            Self::Lifts
        } else if has("clean") {
            Self::Cleaning
        } else if has("garden") || has("grounds") || has("landscap") {
            Self::Gardening
        } else if has("pest") {
            Self::PestControl
        } else if has("lock") {
            Self::Locksmiths
        } else if has("decorat") || has("paint") {
            Self::Decoration
        } else if has("build") {
            Self::BuildingWork
        } else if has("repair") || has("handy") || has("maintenance") {
            Self::GeneralRepairs
        } else {
            return None;
        })
    }
}

/// A service category as an organisation has it (docs-spec §2.7, Settings → Vendor service
/// categories): one of the 13 defaults, with any documents the organisation requires on top of
/// the defaults' own, or one the organisation added, with the documents it chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCategory {
    /// `plumbing`, … for the defaults; a slug of the name for the organisation's own.
    pub key: String,
    pub name: String,
    /// Each inner list is "one of" (NICEIC or NAPIT); every list must be met.
    pub requirements: Vec<Vec<DocumentType>>,
    /// The default it is, if it is one.
    pub standard: Option<Trade>,
    /// An organisation's own category no longer offered for new work (kept for the old).
    pub archived: bool,
}

impl ServiceCategory {
    /// A default category with the organisation's extra requirements, if any.
    pub fn standard(trade: Trade, extra: &[DocumentType]) -> Self {
        let mut requirements: Vec<Vec<DocumentType>> = trade
            .required_documents()
            .iter()
            .map(|kinds| kinds.to_vec())
            .collect();
        for kind in extra {
            if !requirements.iter().any(|r| r.len() == 1 && r[0] == *kind) {
                requirements.push(vec![*kind]);
            }
        }
        Self {
            key: trade.as_str().to_owned(),
            name: trade.label().to_owned(),
            requirements,
            standard: Some(trade),
            archived: false,
        }
    }

    /// An organisation's own category: each chosen document is required.
    pub fn custom(key: &str, name: &str, required: &[DocumentType], archived: bool) -> Self {
        Self {
            key: key.to_owned(),
            name: name.to_owned(),
            requirements: required.iter().map(|k| vec![*k]).collect(),
            standard: None,
            archived,
        }
    }

    /// Whether a vendor's free-text trade puts them in this category.
    pub fn matches_vendor(&self, vendor_trade: &str) -> bool {
        match self.standard {
            Some(t) => Trade::from_vendor_trade(vendor_trade) == Some(t),
            None => {
                let text = vendor_trade.trim().to_lowercase();
                let name = self.name.trim().to_lowercase();
                !text.is_empty() && (text == name || text.contains(&name))
            }
        }
    }

    /// "Public liability insurance; Gas Safe registration": what the category requires.
    pub fn requirement_text(&self) -> String {
        if self.requirements.is_empty() {
            return "No documents required".to_owned();
        }
        self.requirements
            .iter()
            .map(|kinds| {
                kinds
                    .iter()
                    .map(|k| k.label())
                    .collect::<Vec<_>>()
                    .join(" or ")
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The key an organisation's own category gets from its name: lower-case letters, digits and
/// underscores, e.g. "Window cleaning (rope access)" → `window_cleaning_rope_access`. Refused
/// when the name has no letters or digits, is over 60 characters, or is a default's name.
pub fn custom_category_key(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("Enter the category's name.".into());
    }
    if name.chars().count() > 60 {
        return Err("Keep the category's name to 60 characters.".into());
    }
    let key = crate::slug::snake_key(name);
    if key.is_empty() {
        return Err("Give the category a name with letters or digits in it.".into());
    }
    let lower = name.to_lowercase();
    if let Some(t) = Trade::ALL
        .iter()
        .find(|t| t.as_str() == key || t.label().to_lowercase() == lower)
    {
        return Err(format!(
            "{} is already one of the standard categories; add documents to it instead.",
            t.label()
        ));
    }
    Ok(key)
}

/// A document a contractor holds, as far as the compliance check needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldDocument {
    pub doc_type: DocumentType,
    pub expires_on: Date,
    pub verified: bool,
    /// Uploaded by the contractor on ContractorPort (counts only once verified by staff).
    pub from_contractor: bool,
}

/// What stops a contractor being invited or approved for a trade on a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplianceGap {
    /// Each requirement not met, with the newest expiry among its documents, if any.
    pub missing: Vec<(Vec<DocumentType>, Option<Date>)>,
}

impl ComplianceGap {
    /// One sentence per requirement, e.g. "Gas Safe registration expired on 3 March 2026".
    pub fn sentences(&self) -> Vec<String> {
        self.missing
            .iter()
            .map(|(kinds, expired)| {
                let names = kinds
                    .iter()
                    .map(|k| k.label())
                    .collect::<Vec<_>>()
                    .join(" or ");
                match expired {
                    Some(d) => format!("{names} expired on {}", crate::dates::long_date(*d)),
                    None => format!("{names} is missing"),
                }
            })
            .collect()
    }
}

/// Checks a contractor's documents against a category's requirements on `today`. A document
/// counts while it has not expired (expiring today still counts). One staff entered counts at
/// once; one the contractor uploaded counts once staff have verified it, so a contractor cannot
/// clear their own block with any file.
pub fn compliance_gap(
    category: &ServiceCategory,
    held: &[HeldDocument],
    today: Date,
) -> Option<ComplianceGap> {
    let missing: Vec<_> = category
        .requirements
        .iter()
        .filter(|kinds| {
            !held.iter().any(|d| {
                kinds.contains(&d.doc_type)
                    && d.expires_on >= today
                    && (d.verified || !d.from_contractor)
            })
        })
        .map(|kinds| {
            let newest = held
                .iter()
                .filter(|d| kinds.contains(&d.doc_type))
                .map(|d| d.expires_on)
                .max();
            (kinds.clone(), newest)
        })
        .collect();
    (!missing.is_empty()).then_some(ComplianceGap { missing })
}

/// The share of the days from `from` to `to` (both included) on which the contractor's
/// documents met the category's requirements: docs-spec §2.7's compliance rate, "days valid ÷
/// days on panel". Each document counts from the day it was recorded (`held` pairs it with
/// that day). None when the range is empty.
pub fn compliance_rate(
    category: &ServiceCategory,
    held: &[(Date, HeldDocument)],
    from: Date,
    to: Date,
) -> Option<f64> {
    if to < from {
        return None;
    }
    let (mut valid, mut total) = (0u32, 0u32);
    let mut day = from;
    loop {
        let on_day: Vec<HeldDocument> = held
            .iter()
            .filter(|(since, _)| *since <= day)
            .map(|(_, d)| d.clone())
            .collect();
        total += 1;
        if compliance_gap(category, &on_day, day).is_none() {
            valid += 1;
        }
        match day.next_day() {
            Some(next) if next <= to => day = next,
            _ => break,
        }
    }
    Some(f64::from(valid) / f64::from(total))
}

/// The works-approval limit a member has when none is set for them: the Owner and
/// Administrators have none; Managers £5,000, maintenance coordinators £1,000 and site
/// managers £500 including VAT; everyone else (custom roles too) approves nothing until given
/// a limit.
pub fn default_works_limit_pence(role: Option<crate::permissions::BuiltInRole>) -> Option<i64> {
    use crate::permissions::BuiltInRole::*;
    match role {
        Some(OrganisationOwner | Administrator) => None,
        Some(Manager) => Some(500_000),
        Some(MaintenanceCoordinator) => Some(100_000),
        Some(SiteManager) => Some(50_000),
        _ => Some(0),
    }
}

/// Days before expiry that a contractor document's reminder goes out (docs-spec §2.7).
pub const EXPIRY_REMINDER_DAYS: i64 = 60;

/// The largest amount a quotation may carry: £10,000,000 (beyond it is a typing slip).
pub const MAX_QUOTE_PENCE: i64 = 1_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteAmountError {
    #[error("Enter the {0} in pounds, e.g. 450.00.")]
    Missing(&'static str),
    #[error("The {field}: {source}")]
    Malformed {
        field: &'static str,
        source: MoneyError,
    },
    #[error("The {0} must be more than £0.00.")]
    NotPositive(&'static str),
    #[error("The {0} cannot be negative.")]
    Negative(&'static str),
    #[error("The {0} is more than £10,000,000.00; check the figure.")]
    Absurd(&'static str),
    #[error("The VAT ({vat}) is more than 20% of the net amount ({net}): UK VAT is at most 20%.")]
    VatTooHigh { vat: String, net: String },
}

/// A quotation's amounts, checked: net more than zero and at most £10m, VAT between zero and
/// 20 % of the net (rounded up a penny, as suppliers round per line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuoteAmounts {
    pub net_pence: i64,
    pub vat_pence: i64,
}

impl QuoteAmounts {
    pub fn parse(net: &str, vat: &str) -> Result<Self, QuoteAmountError> {
        let net_pence = pounds("net amount", net, true)?;
        let vat_pence = if vat.trim().is_empty() {
            0
        } else {
            pounds("VAT", vat, false)?
        };
        if vat_pence * 5 > net_pence + 5 {
            return Err(QuoteAmountError::VatTooHigh {
                vat: crate::uk::format_pence(vat_pence),
                net: crate::uk::format_pence(net_pence),
            });
        }
        Ok(Self {
            net_pence,
            vat_pence,
        })
    }

    pub fn gross_pence(self) -> i64 {
        self.net_pence + self.vat_pence
    }
}

fn pounds(field: &'static str, input: &str, positive: bool) -> Result<i64, QuoteAmountError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(QuoteAmountError::Missing(field));
    }
    if trimmed.starts_with('-') {
        return Err(QuoteAmountError::Negative(field));
    }
    let pence = parse_pounds_to_pence(trimmed)
        .map_err(|source| QuoteAmountError::Malformed { field, source })?;
    if pence < 0 {
        return Err(QuoteAmountError::Negative(field));
    }
    if positive && pence == 0 {
        return Err(QuoteAmountError::NotPositive(field));
    }
    if pence > MAX_QUOTE_PENCE {
        return Err(QuoteAmountError::Absurd(field));
    }
    Ok(pence)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use time::macros::date;

    #[test]
    fn issue_moves_follow_the_lifecycle() {
        use IssueStatus::*;
        assert!(Open.can_move_to(Triaged));
        assert!(Triaged.can_move_to(Resolved));
        assert!(Resolved.can_move_to(Reopened));
        assert!(Reopened.can_move_to(InProgress));
        assert!(!Resolved.can_move_to(InProgress));
        assert!(!Closed.can_move_to(Resolved));
        assert!(!Open.can_move_to(Open));
    }

    #[test]
    fn work_order_moves_follow_the_lifecycle() {
        use WorkOrderStatus::*;
        assert!(Draft.can_invite() && Declined.can_invite());
        assert!(!Approved.can_invite());
        assert!(Quoted.can_approve() && !Approved.can_approve());
        assert!(!Cancelled.can_cancel() && !Completed.can_cancel());
        assert!(Completed.can_close() && !InProgress.can_close());
    }

    fn std_cat(t: Trade) -> ServiceCategory {
        ServiceCategory::standard(t, &[])
    }

    #[test]
    fn categories_take_extra_and_custom_requirements() {
        let today = date!(2026 - 05 - 10);
        let cleaning = ServiceCategory::standard(Trade::Cleaning, &[DocumentType::Chas]);
        assert_eq!(
            cleaning.requirement_text(),
            "Public liability insurance; CHAS accreditation"
        );
        let held = [doc(DocumentType::PublicLiability, date!(2027 - 01 - 01))];
        let gap = compliance_gap(&cleaning, &held, today).unwrap();
        assert_eq!(gap.sentences(), ["CHAS accreditation is missing"]);
        // Asking again for a default's own requirement adds nothing.
        let plumbing = ServiceCategory::standard(Trade::Plumbing, &[DocumentType::PublicLiability]);
        assert_eq!(plumbing.requirements.len(), 1);

        let rope = ServiceCategory::custom(
            "rope_access",
            "Rope access",
            &[
                DocumentType::PublicLiability,
                DocumentType::EmployersLiability,
            ],
            false,
        );
        let gap = compliance_gap(&rope, &held, today).unwrap();
        assert_eq!(
            gap.sentences(),
            ["Employers' liability insurance is missing"]
        );
        assert!(rope.matches_vendor("Rope access window cleaning"));
        assert!(!rope.matches_vendor("Plumbing"));
        let none = ServiceCategory::custom("surveys", "Surveys", &[], false);
        assert_eq!(compliance_gap(&none, &[], today), None);
    }

    #[test]
    fn the_compliance_rate_counts_the_days_the_documents_were_in_order() {
        let plumbing = std_cat(Trade::Plumbing);
        // Cover recorded on 1 January, lapsing on 31 January: 31 of the 59 days to 28 February.
        let held = [(
            date!(2026 - 01 - 01),
            doc(DocumentType::PublicLiability, date!(2026 - 01 - 31)),
        )];
        let rate = compliance_rate(
            &plumbing,
            &held,
            date!(2026 - 01 - 01),
            date!(2026 - 02 - 28),
        )
        .unwrap();
        assert!((rate - 31.0 / 59.0).abs() < 1e-9, "{rate}");
        assert_eq!(
            compliance_rate(&plumbing, &[], date!(2026 - 01 - 01), date!(2026 - 01 - 10)),
            Some(0.0)
        );
        assert_eq!(
            compliance_rate(
                &plumbing,
                &held,
                date!(2026 - 02 - 01),
                date!(2026 - 01 - 01)
            ),
            None
        );
    }

    #[test]
    fn custom_category_keys_are_slugs_apart_from_the_defaults() {
        assert_eq!(
            custom_category_key(" Window cleaning (rope access) ").unwrap(),
            "window_cleaning_rope_access"
        );
        assert!(custom_category_key("").is_err());
        assert!(custom_category_key("!!!").is_err());
        assert!(custom_category_key(&"x".repeat(61)).is_err());
        let err = custom_category_key("heating and gas").unwrap_err();
        assert!(err.contains("Heating and gas is already"), "{err}");
        assert!(custom_category_key("Lifts").is_err());
    }

    fn doc(t: DocumentType, expires: Date) -> HeldDocument {
        HeldDocument {
            doc_type: t,
            expires_on: expires,
            verified: true,
            from_contractor: false,
        }
    }

    #[test]
    fn gas_work_needs_gas_safe_and_liability_cover() {
        let today = date!(2026 - 05 - 10);
        let held = [doc(DocumentType::PublicLiability, date!(2027 - 01 - 01))];
        let gap = compliance_gap(&std_cat(Trade::HeatingGas), &held, today).unwrap();
        assert_eq!(gap.sentences(), vec!["Gas Safe registration is missing"]);
        let held = [
            doc(DocumentType::PublicLiability, date!(2027 - 01 - 01)),
            doc(DocumentType::GasSafe, date!(2026 - 05 - 10)),
        ];
        assert_eq!(
            compliance_gap(&std_cat(Trade::HeatingGas), &held, today),
            None
        );
    }

    #[test]
    fn a_contractors_own_upload_counts_only_once_verified() {
        let today = date!(2026 - 05 - 10);
        let mut held = [
            doc(DocumentType::PublicLiability, date!(2027 - 01 - 01)),
            doc(DocumentType::GasSafe, date!(2027 - 01 - 01)),
        ];
        held[1].verified = false;
        held[1].from_contractor = true;
        assert!(compliance_gap(&std_cat(Trade::HeatingGas), &held, today).is_some());
        held[1].verified = true;
        assert_eq!(
            compliance_gap(&std_cat(Trade::HeatingGas), &held, today),
            None
        );
    }

    #[test]
    fn an_expired_document_is_named_with_its_expiry() {
        let today = date!(2026 - 05 - 10);
        let held = [doc(DocumentType::PublicLiability, date!(2026 - 03 - 03))];
        let gap = compliance_gap(&std_cat(Trade::Plumbing), &held, today).unwrap();
        assert_eq!(
            gap.sentences(),
            vec!["Public liability insurance expired on 3 March 2026"]
        );
    }

    #[test]
    fn an_electrician_may_hold_either_registration() {
        let today = date!(2026 - 05 - 10);
        let held = [
            doc(DocumentType::PublicLiability, date!(2027 - 01 - 01)),
            doc(DocumentType::Napit, date!(2027 - 01 - 01)),
        ];
        assert_eq!(
            compliance_gap(&std_cat(Trade::Electrical), &held, today),
            None
        );
        let gap = compliance_gap(&std_cat(Trade::Electrical), &held[..1], today).unwrap();
        assert_eq!(
            gap.sentences(),
            vec!["NICEIC registration or NAPIT registration is missing"]
        );
    }

    #[test]
    fn vendor_trades_map_to_service_categories() {
        assert_eq!(
            Trade::from_vendor_trade("Heating & gas"),
            Some(Trade::HeatingGas)
        );
        assert_eq!(
            Trade::from_vendor_trade("Plumbing and heating"),
            Some(Trade::Plumbing)
        );
        assert_eq!(
            Trade::from_vendor_trade("Lift maintenance"),
            Some(Trade::Lifts)
        );
        assert_eq!(Trade::from_vendor_trade("Accountancy"), None);
    }

    #[test]
    fn quotation_amounts_are_checked() {
        let q = QuoteAmounts::parse("450.00", "90.00").unwrap();
        assert_eq!(
            (q.net_pence, q.vat_pence, q.gross_pence()),
            (45_000, 9_000, 54_000)
        );
        assert_eq!(QuoteAmounts::parse("£1,200", "").unwrap().vat_pence, 0);
        assert_eq!(
            QuoteAmounts::parse("-5", "0"),
            Err(QuoteAmountError::Negative("net amount"))
        );
        assert_eq!(
            QuoteAmounts::parse("0", "0"),
            Err(QuoteAmountError::NotPositive("net amount"))
        );
        assert_eq!(
            QuoteAmounts::parse("99999999999", "0"),
            Err(QuoteAmountError::Absurd("net amount"))
        );
        assert!(matches!(
            QuoteAmounts::parse("12.3.4", "0"),
            Err(QuoteAmountError::Malformed { .. })
        ));
        assert!(matches!(
            QuoteAmounts::parse("100", "25"),
            Err(QuoteAmountError::VatTooHigh { .. })
        ));
        assert_eq!(
            QuoteAmounts::parse("100.01", "20.01").unwrap().vat_pence,
            2_001
        );
    }
}
