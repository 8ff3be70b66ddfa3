//! Every document laid out as the same few parts, with each value already worded (UK money and
//! dates). The typst template and the HTML page both draw this, so the two renderers cannot
//! disagree about what a document says; neither has any formatting or arithmetic of its own.

use crate::document::{
    CreditNote, DocLine, Document, Invoice, Party, Receipt, Remittance, Statement,
};
use proplink_domain::dates::long_date;
use proplink_domain::uk::format_pence;
use serde::Serialize;

/// The citation under the landlord's details on a demand.
pub const LANDLORD_CITATION: &str =
    "Given under sections 47 and 48 of the Landlord and Tenant Act 1987.";

#[derive(Debug, Serialize)]
pub struct View {
    /// "Service charge demand", "Credit note", "Receipt", "Statement of account", "Remittance
    /// advice".
    pub title: String,
    /// The PDF's metadata title and each page's footer: "Service charge demand SC-000123".
    pub caption: String,
    pub org: OrgView,
    pub to: PartyView,
    /// The document's particulars, shown beside the addressee: ("Number", "SC-000123").
    pub facts: Vec<(String, String)>,
    /// Paragraphs before the table (a credit note's reason).
    pub before: Vec<String>,
    pub table: Table,
    pub totals: Vec<Total>,
    /// Paragraphs after the totals ("Please pay £450.00 by 10 June 2026.").
    pub after: Vec<String>,
    pub landlord: Option<Landlord>,
    pub statutory: Option<StatutoryView>,
}

#[derive(Debug, Serialize)]
pub struct OrgView {
    pub name: String,
    pub address_lines: Vec<String>,
    /// Whether the logo is served beside the data (the template cannot test for a file).
    pub logo: bool,
}

#[derive(Debug, Serialize)]
pub struct PartyView {
    pub name: String,
    pub address_lines: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
    /// Shown across the table when it has no rows.
    pub empty: String,
}

#[derive(Debug, Serialize)]
pub struct Column {
    pub label: &'static str,
    /// Amounts: right-aligned.
    pub numeric: bool,
    /// Takes the width the other columns leave; the others are as wide as their widest value.
    pub wide: bool,
}

impl Column {
    fn text(label: &'static str) -> Self {
        Self {
            label,
            numeric: false,
            wide: false,
        }
    }

    fn wide(label: &'static str) -> Self {
        Self {
            label,
            numeric: false,
            wide: true,
        }
    }

    fn amount(label: &'static str) -> Self {
        Self {
            label,
            numeric: true,
            wide: false,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub cells: Vec<String>,
    /// A smaller second line under the first cell (a line's period).
    pub detail: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Total {
    pub label: String,
    pub value: String,
    pub strong: bool,
}

#[derive(Debug, Serialize)]
pub struct Landlord {
    pub name: String,
    pub address: String,
    pub citation: &'static str,
}

#[derive(Debug, Serialize)]
pub struct StatutoryView {
    pub title: String,
    pub paragraphs: Vec<String>,
    /// "Source: <instrument> (text version 3)".
    pub citation: String,
}

impl View {
    pub fn of(doc: &Document) -> Self {
        match doc {
            Document::Invoice(d) => invoice(d),
            Document::CreditNote(d) => credit_note(d),
            Document::Receipt(d) => receipt(d),
            Document::Statement(d) => statement(d),
            Document::Remittance(d) => remittance(d),
        }
    }
}

fn fact(label: &str, value: impl Into<String>) -> (String, String) {
    (label.to_owned(), value.into())
}

fn total(label: &str, pence: i64, strong: bool) -> Total {
    Total {
        label: label.to_owned(),
        value: format_pence(pence),
        strong,
    }
}

fn party(p: &Party) -> PartyView {
    PartyView {
        name: p.name.clone(),
        address_lines: p.address_lines.clone(),
    }
}

fn org(doc: &crate::document::Organisation) -> OrgView {
    OrgView {
        name: doc.name.clone(),
        address_lines: doc.address_lines.clone(),
        logo: doc.logo_png.as_ref().is_some_and(|l| !l.is_empty()),
    }
}

/// Several lines of an address on one line, for running text.
fn one_line(address: &str) -> String {
    address
        .lines()
        .map(|l| l.trim().trim_end_matches(','))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

fn line_table(lines: &[DocLine]) -> Table {
    Table {
        columns: vec![
            Column::wide("Description"),
            Column::amount("Net"),
            Column::amount("VAT rate"),
            Column::amount("VAT"),
            Column::amount("Gross"),
        ],
        rows: lines
            .iter()
            .map(|l| Row {
                cells: vec![
                    l.description.clone(),
                    format_pence(l.net_pence),
                    l.vat_label.clone(),
                    format_pence(l.vat_pence),
                    format_pence(l.gross_pence()),
                ],
                detail: l.period.clone().filter(|p| !p.trim().is_empty()),
            })
            .collect(),
        empty: "No lines.".to_owned(),
    }
}

fn invoice(d: &Invoice) -> View {
    let mut facts = vec![
        fact("Number", &d.number),
        fact("Date of issue", long_date(d.issue_date)),
        fact("Due date", long_date(d.due_date)),
        fact("Unit", &d.unit),
        fact("Site", &d.site),
    ];
    if let Some(r) = d.reference.as_deref().filter(|r| !r.trim().is_empty()) {
        facts.push(fact("Reference", r));
    }
    let mut totals = vec![
        total("Net", d.net_pence, false),
        total("VAT", d.vat_pence, false),
        total("Total", d.total_pence, true),
    ];
    if d.paid_pence != 0 {
        totals.push(total("Paid", d.paid_pence, false));
    }
    let due = d.amount_due_pence();
    totals.push(total("Amount due", due, true));
    let after = if due > 0 {
        vec![format!(
            "Amount due: {} by {}. Please quote {} with your payment.",
            format_pence(due),
            long_date(d.due_date),
            d.number
        )]
    } else {
        vec!["Nothing is due on this demand.".to_owned()]
    };
    View {
        title: d.title.clone(),
        caption: format!("{} {}", d.title, d.number),
        org: org(&d.org),
        to: party(&d.to),
        facts,
        before: Vec::new(),
        table: line_table(&d.lines),
        totals,
        after,
        landlord: Some(Landlord {
            name: d.landlord_name.clone(),
            address: one_line(&d.landlord_address),
            citation: LANDLORD_CITATION,
        }),
        statutory: d.statutory.as_ref().map(|s| StatutoryView {
            title: s.title.clone(),
            paragraphs: s.paragraphs.clone(),
            citation: format!("Source: {} (text version {})", s.source, s.version),
        }),
    }
}

fn credit_note(d: &CreditNote) -> View {
    let mut facts = vec![
        fact("Number", &d.number),
        fact("Date of issue", long_date(d.issue_date)),
        fact("Unit", &d.unit),
        fact("Site", &d.site),
    ];
    if let Some(a) = d.against.as_deref().filter(|a| !a.trim().is_empty()) {
        facts.push(fact("Credits", a));
    }
    View {
        title: "Credit note".to_owned(),
        caption: format!("Credit note {}", d.number),
        org: org(&d.org),
        to: party(&d.to),
        facts,
        before: vec![format!("Reason: {}", d.reason)],
        table: line_table(&d.lines),
        totals: vec![
            total("Net", d.net_pence, false),
            total("VAT", d.vat_pence, false),
            total("Total credit", d.total_pence, true),
        ],
        after: Vec::new(),
        landlord: None,
        statutory: None,
    }
}

fn receipt(d: &Receipt) -> View {
    let mut facts = vec![
        fact("Number", &d.number),
        fact("Received on", long_date(d.received_on)),
        fact("Unit", &d.unit),
        fact("Site", &d.site),
        fact("Method", &d.method),
    ];
    if let Some(r) = d.reference.as_deref().filter(|r| !r.trim().is_empty()) {
        facts.push(fact("Reference", r));
    }
    let allocated = d
        .allocations
        .iter()
        .fold(0_i64, |sum, (_, p)| sum.saturating_add(*p));
    let mut totals = vec![
        total("Amount received", d.amount_pence, true),
        total("Paid against demands", allocated, false),
    ];
    if d.unallocated_pence != 0 {
        totals.push(total("Held on account", d.unallocated_pence, false));
    }
    View {
        title: "Receipt".to_owned(),
        caption: format!("Receipt {}", d.number),
        org: org(&d.org),
        to: party(&d.to),
        facts,
        before: vec![format!(
            "Received with thanks: {} ({}).",
            format_pence(d.amount_pence),
            d.method
        )],
        table: Table {
            columns: vec![Column::wide("Paid against"), Column::amount("Amount")],
            rows: d
                .allocations
                .iter()
                .map(|(number, pence)| Row {
                    cells: vec![number.clone(), format_pence(*pence)],
                    detail: None,
                })
                .collect(),
            empty: "Not yet paid against any demand; held on account.".to_owned(),
        },
        totals,
        after: Vec::new(),
        landlord: None,
        statutory: None,
    }
}

fn statement(d: &Statement) -> View {
    let amount = |p: i64| {
        if p == 0 {
            String::new()
        } else {
            format_pence(p)
        }
    };
    let mut rows = Vec::with_capacity(d.rows.len() + 1);
    rows.push(Row {
        cells: vec![
            long_date(d.from),
            "Opening balance".to_owned(),
            String::new(),
            String::new(),
            format_pence(d.opening_pence),
        ],
        detail: None,
    });
    rows.extend(d.rows.iter().map(|r| Row {
        cells: vec![
            long_date(r.date),
            r.description.clone(),
            amount(r.debit_pence),
            amount(r.credit_pence),
            format_pence(r.balance_pence),
        ],
        detail: None,
    }));
    let sum = |f: fn(&crate::document::StatementRow) -> i64| {
        d.rows.iter().fold(0_i64, |s, r| s.saturating_add(f(r)))
    };
    let mut totals = vec![
        total("Opening balance", d.opening_pence, false),
        total("Charges", sum(|r| r.debit_pence), false),
        total("Payments and credits", sum(|r| r.credit_pence), false),
        total("Closing balance", d.closing_pence, true),
    ];
    if d.overdue_pence != 0 {
        totals.push(total("Of which overdue", d.overdue_pence, true));
    }
    let after = match d.closing_pence {
        p if p < 0 => vec![format!(
            "Your account is {} in credit.",
            format_pence(p.saturating_neg())
        )],
        _ if d.overdue_pence > 0 => vec![format!(
            "{} is overdue: please pay it now.",
            format_pence(d.overdue_pence)
        )],
        _ => Vec::new(),
    };
    let period = format!("{} to {}", long_date(d.from), long_date(d.to_date));
    View {
        title: "Statement of account".to_owned(),
        caption: format!("Statement of account, {}, {}", d.unit, period),
        org: org(&d.org),
        to: party(&d.to),
        facts: vec![
            fact("Unit", &d.unit),
            fact("Site", &d.site),
            fact("Period", period),
        ],
        before: Vec::new(),
        table: Table {
            columns: vec![
                Column::text("Date"),
                Column::wide("Description"),
                Column::amount("Debit"),
                Column::amount("Credit"),
                Column::amount("Balance"),
            ],
            rows,
            empty: String::new(),
        },
        totals,
        after,
        landlord: None,
        statutory: None,
    }
}

/// Written for the supplier: "your" invoice is theirs, "our" reference is the bill's number,
/// and their invoice number leads each row because that is what they match the money to. The
/// account paid from goes in the opening sentence, not the particulars: a masked account's name
/// is long and would squeeze the supplier's address beside it.
fn remittance(d: &Remittance) -> View {
    let mut facts = vec![
        fact("Payment number", &d.number),
        fact("Date paid", long_date(d.paid_on)),
        fact("Method", &d.method),
    ];
    if let Some(r) = d.reference.as_deref().filter(|r| !r.trim().is_empty()) {
        facts.push(fact("Reference", r));
    }
    let mut paid = format!(
        "We have paid you {} by {}",
        format_pence(d.total_pence),
        d.method
    );
    if !d.paid_from.trim().is_empty() {
        paid.push_str(" from ");
        paid.push_str(&d.paid_from);
    }
    paid.push('.');
    let after = if d.lines.is_empty() {
        Vec::new()
    } else {
        vec!["This payment settles the invoices listed above.".to_owned()]
    };
    View {
        title: "Remittance advice".to_owned(),
        caption: format!("Remittance advice {}", d.number),
        org: org(&d.org),
        to: party(&d.to),
        facts,
        before: vec![paid],
        table: Table {
            columns: vec![
                Column::text("Your invoice"),
                Column::text("Invoice date"),
                Column::text("Our reference"),
                Column::wide("Site"),
                Column::amount("Amount"),
            ],
            rows: d
                .lines
                .iter()
                .map(|l| Row {
                    cells: vec![
                        l.supplier_reference.clone(),
                        long_date(l.invoice_date),
                        l.bill_number.clone(),
                        l.site.clone(),
                        format_pence(l.amount_pence),
                    ],
                    detail: None,
                })
                .collect(),
            empty: "Not against any invoice.".to_owned(),
        },
        totals: vec![total("Total paid", d.total_pence, true)],
        after,
        landlord: None,
        statutory: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_landlord_address_over_several_lines_reads_as_one() {
        assert_eq!(
            one_line("1 High Street,\n  Bristol\n\nBS1 1AA "),
            "1 High Street, Bristol, BS1 1AA"
        );
    }
}
