//! What a money document says: plain data, filled in by the caller from the ledger. Amounts are
//! pence and are printed as given; nothing here adds them up again, so a document always shows
//! the figures that were posted.

use time::Date;

/// The managing organisation whose name heads every page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    pub name: String,
    pub address_lines: Vec<String>,
    /// The organisation's logo: PNG (or JPEG, GIF, WebP) bytes, shown above its name.
    pub logo_png: Option<Vec<u8>>,
}

/// Who the document is addressed to: the leaseholder or tenant of the unit, or (on a
/// remittance advice) the supplier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    pub name: String,
    pub address_lines: Vec<String>,
}

/// One charged or credited line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocLine {
    pub description: String,
    /// The period the line covers, already worded: "1 April 2026 to 30 September 2026".
    pub period: Option<String>,
    pub net_pence: i64,
    pub vat_pence: i64,
    /// The VAT rate's name: "20%", "Exempt", "Outside the scope".
    pub vat_label: String,
}

impl DocLine {
    pub fn gross_pence(&self) -> i64 {
        self.net_pence.saturating_add(self.vat_pence)
    }
}

/// The prescribed text a demand must carry (the summary of tenants' rights and obligations,
/// or the ground-rent notice), as recorded on the demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statutory {
    pub title: String,
    pub paragraphs: Vec<String>,
    /// The instrument it is prescribed by: "The Service Charges (Summary of Rights and
    /// Obligations, and Transitional Provision) (England) Regulations 2007 (SI 2007/1257)".
    pub source: String,
    pub version: i32,
}

impl Statutory {
    /// Splits a stored body into paragraphs at blank lines; the line breaks inside a paragraph
    /// become spaces.
    pub fn from_body(title: &str, body: &str, source: &str, version: i32) -> Self {
        let mut paragraphs = Vec::new();
        let mut current: Vec<&str> = Vec::new();
        for line in body.lines().map(str::trim) {
            if line.is_empty() {
                if !current.is_empty() {
                    paragraphs.push(current.join(" "));
                    current.clear();
                }
            } else {
                current.push(line);
            }
        }
        if !current.is_empty() {
            paragraphs.push(current.join(" "));
        }
        Self {
            title: title.to_owned(),
            paragraphs,
            source: source.to_owned(),
            version,
        }
    }
}

/// A demand: service charge, ground rent or any other invoice to a leaseholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    pub org: Organisation,
    pub to: Party,
    /// "Service charge demand", "Ground rent demand" or "Invoice".
    pub title: String,
    pub number: String,
    pub issue_date: Date,
    pub due_date: Date,
    /// The unit's reference ("Flat 4").
    pub unit: String,
    /// The site's name or reference ("Goldcrest House").
    pub site: String,
    pub reference: Option<String>,
    pub lines: Vec<DocLine>,
    pub net_pence: i64,
    pub vat_pence: i64,
    pub total_pence: i64,
    /// Already received against this demand; the amount due is the total less this.
    pub paid_pence: i64,
    /// Landlord and Tenant Act 1987 s.47: the landlord's name and address on every demand.
    pub landlord_name: String,
    /// s.48: an address in England and Wales at which notices may be served.
    pub landlord_address: String,
    pub statutory: Option<Statutory>,
}

impl Invoice {
    pub fn amount_due_pence(&self) -> i64 {
        self.total_pence.saturating_sub(self.paid_pence)
    }
}

/// A credit note, usually against one demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditNote {
    pub org: Organisation,
    pub to: Party,
    pub number: String,
    pub issue_date: Date,
    pub unit: String,
    pub site: String,
    pub reason: String,
    /// The demand's number it credits, if any.
    pub against: Option<String>,
    pub lines: Vec<DocLine>,
    pub net_pence: i64,
    pub vat_pence: i64,
    pub total_pence: i64,
}

/// A receipt for money received, and the demands it paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub org: Organisation,
    pub to: Party,
    pub number: String,
    pub received_on: Date,
    pub unit: String,
    pub site: String,
    pub amount_pence: i64,
    /// "Bank transfer", "Direct Debit", "Cheque", "Card".
    pub method: String,
    pub reference: Option<String>,
    /// (demand number, pence allocated to it).
    pub allocations: Vec<(String, i64)>,
    /// What is held on account, not yet allocated.
    pub unallocated_pence: i64,
}

/// One movement on a statement of account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRow {
    pub date: Date,
    pub description: String,
    pub debit_pence: i64,
    pub credit_pence: i64,
    /// The running balance after this row; positive is owed by the leaseholder.
    pub balance_pence: i64,
}

/// A unit's statement of account between two dates (both included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub org: Organisation,
    pub to: Party,
    pub unit: String,
    pub site: String,
    pub from: Date,
    pub to_date: Date,
    pub opening_pence: i64,
    pub rows: Vec<StatementRow>,
    pub closing_pence: i64,
    /// Of the closing balance, what was past its due date at `to_date`.
    pub overdue_pence: i64,
}

/// A remittance advice: a payment made to a supplier and the bills it settles, sent to the
/// supplier so they can match the money to their invoices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remittance {
    pub org: Organisation,
    /// The supplier.
    pub to: Party,
    /// Our payment's number ("PAY-2026-000012").
    pub number: String,
    pub paid_on: Date,
    /// "BACS", "Faster Payment", "Cheque".
    pub method: String,
    /// What the supplier will see on their bank statement.
    pub reference: Option<String>,
    /// The account the money left, already masked: "Goldcrest Client Account (sort code
    /// **-**-00, account ****9911)".
    pub paid_from: String,
    /// One per bill paid.
    pub lines: Vec<RemittanceLine>,
    pub total_pence: i64,
}

/// One bill a remittance pays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemittanceLine {
    /// Our bill's number ("BIL-2026-000003").
    pub bill_number: String,
    /// The supplier's own invoice number ("INV-1042").
    pub supplier_reference: String,
    /// The site the bill is for.
    pub site: String,
    /// The date on the supplier's invoice.
    pub invoice_date: Date,
    /// Paid against this bill.
    pub amount_pence: i64,
}

/// Any money document PropLink issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Document {
    Invoice(Invoice),
    CreditNote(CreditNote),
    Receipt(Receipt),
    Statement(Statement),
    Remittance(Remittance),
}

impl Document {
    pub fn org(&self) -> &Organisation {
        match self {
            Self::Invoice(d) => &d.org,
            Self::CreditNote(d) => &d.org,
            Self::Receipt(d) => &d.org,
            Self::Statement(d) => &d.org,
            Self::Remittance(d) => &d.org,
        }
    }
}

impl From<Invoice> for Document {
    fn from(d: Invoice) -> Self {
        Self::Invoice(d)
    }
}

impl From<CreditNote> for Document {
    fn from(d: CreditNote) -> Self {
        Self::CreditNote(d)
    }
}

impl From<Receipt> for Document {
    fn from(d: Receipt) -> Self {
        Self::Receipt(d)
    }
}

impl From<Statement> for Document {
    fn from(d: Statement) -> Self {
        Self::Statement(d)
    }
}

impl From<Remittance> for Document {
    fn from(d: Remittance) -> Self {
        Self::Remittance(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_body_splits_into_paragraphs_at_blank_lines() {
        let s = Statutory::from_body(
            "Title",
            "  First paragraph,\n  wrapped.\n\n\n(1) Second.\r\n\r\n(2) Third\n",
            "SI 2007/1257",
            2,
        );
        assert_eq!(
            s.paragraphs,
            ["First paragraph, wrapped.", "(1) Second.", "(2) Third"]
        );
        assert_eq!(s.version, 2);
    }
}
