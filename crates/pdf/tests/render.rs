//! Each kind of document rendered to PDF and read back as text, the way a leaseholder's (or a
//! supplier's) PDF reader, or a search index, sees it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails by panicking, helpers included"
)]

use proplink_pdf::{
    CreditNote, DocLine, Document, Invoice, Organisation, Party, Receipt, Remittance,
    RemittanceLine, Statement, StatementRow, Statutory, html, render,
};
use sha2::{Digest, Sha256};
use time::macros::date;

const HOSTILE: &str = r#"#panic("x") ] [ $x$ \ *bold*"#;

const SUMMARY_SENTENCE: &str = "This summary, which briefly sets out your rights and obligations in relation to variable service charges, must by law accompany a demand for service charges.";

/// The text of every page, whitespace runs folded to one space. With `PROPLINK_PDF_SAMPLES`
/// set to a directory, each PDF is also kept there to be looked at.
fn text_of(pdf: &[u8]) -> String {
    if let Some(dir) = std::env::var_os("PROPLINK_PDF_SAMPLES") {
        let name = format!("{}.pdf", &hex::encode(Sha256::digest(pdf))[..12]);
        std::fs::write(std::path::Path::new(&dir).join(name), pdf).unwrap();
    }
    let raw = pdf_extract::extract_text_from_mem(pdf).expect("pdf-extract reads typst's PDF");
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn org() -> Organisation {
    Organisation {
        name: "Goldcrest Property Management Ltd".into(),
        address_lines: vec!["2 Wharf Street".into(), "Bristol BS1 4RN".into()],
        logo_png: None,
    }
}

fn leaseholder() -> Party {
    Party {
        name: "Ada Lovelace".into(),
        address_lines: vec!["Flat 4, Goldcrest House".into(), "Bristol BS8 1AA".into()],
    }
}

fn summary() -> Statutory {
    Statutory {
        title: "Service Charges—Summary of tenants' rights and obligations".into(),
        paragraphs: vec![
            SUMMARY_SENTENCE.into(),
            "(1) Your lease sets out your obligations to pay service charges to your landlord in addition to your rent.".into(),
            "(2) You have the right to ask a First-tier Tribunal to determine whether you are liable to pay service charges for services, repairs, maintenance, improvements, insurance or management.".into(),
        ],
        source: "The Service Charges (Summary of Rights and Obligations, and Transitional Provision) (England) Regulations 2007, SI 2007/1257, Schedule".into(),
        version: 3,
    }
}

fn demand() -> Invoice {
    Invoice {
        org: org(),
        to: leaseholder(),
        title: "Service charge demand".into(),
        number: "SC-000123".into(),
        issue_date: date!(2026 - 05 - 10),
        due_date: date!(2026 - 06 - 09),
        unit: "Flat 4".into(),
        site: "Goldcrest House".into(),
        reference: Some("Half-year 1".into()),
        lines: vec![
            DocLine {
                description: "Service charge on account".into(),
                period: Some("1 April 2026 to 30 September 2026".into()),
                net_pence: 35_000,
                vat_pence: 0,
                vat_label: "Exempt".into(),
            },
            DocLine {
                description: HOSTILE.into(),
                period: None,
                net_pence: 8_333,
                vat_pence: 1_667,
                vat_label: "20%".into(),
            },
        ],
        net_pence: 43_333,
        vat_pence: 1_667,
        total_pence: 45_000,
        paid_pence: 0,
        landlord_name: "Goldcrest Freehold Ltd".into(),
        landlord_address: "10 Queen Square,\nBristol BS1 4NT".into(),
        statutory: Some(summary()),
    }
}

#[test]
fn a_demand_carries_its_figures_the_landlord_and_the_statutory_summary() {
    let rendered = render(&demand().into()).unwrap();
    assert!(rendered.pdf.starts_with(b"%PDF-"));
    let text = text_of(&rendered.pdf);
    for expected in [
        "Goldcrest Property Management Ltd",
        "Service charge demand",
        "SC-000123",
        "Ada Lovelace",
        "10 May 2026",
        "9 June 2026",
        "£450.00",
        "£350.00",
        "£16.67",
        "1 April 2026 to 30 September 2026",
        "Amount due",
        "Landlord: Goldcrest Freehold Ltd",
        "Address for service of notices: 10 Queen Square, Bristol BS1 4NT",
        "sections 47 and 48 of the Landlord and Tenant Act 1987",
        "Service Charges—Summary of tenants' rights and obligations",
        SUMMARY_SENTENCE,
        "ask a First-tier Tribunal to determine whether you are liable",
        "SI 2007/1257",
        "text version 3",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    // The statutory text comes after the figures.
    let total_at = text.find("£450.00").unwrap();
    let summary_at = text.find(SUMMARY_SENTENCE).unwrap();
    assert!(total_at < summary_at);
}

#[test]
fn typst_markup_in_user_text_is_printed_not_run() {
    let mut invoice = demand();
    invoice.to.name = "O'Brien & Sons <b> #set page(width: 1cm) @ref <label>".into();
    invoice.landlord_name = "$ \\ _under_ #let x = 1".into();
    let rendered = render(&invoice.into()).unwrap();
    let text = text_of(&rendered.pdf);
    assert!(
        text.contains(HOSTILE),
        "the description was changed:\n{text}"
    );
    assert!(
        text.contains("O'Brien & Sons <b> #set page(width: 1cm) @ref <label>"),
        "{text}"
    );
    assert!(text.contains("Landlord: $ \\ _under_ #let x = 1"), "{text}");
}

#[test]
fn odd_text_and_empty_documents_still_render() {
    let mut invoice = demand();
    invoice.to = Party {
        name: String::new(),
        address_lines: Vec::new(),
    };
    invoice.org.address_lines = Vec::new();
    invoice.reference = Some("  ".into());
    invoice.lines = vec![
        DocLine {
            description: "x".repeat(3_000),
            period: Some(String::new()),
            net_pence: i64::MAX,
            vat_pence: i64::MIN,
            vat_label: "\u{0}\u{7}\u{202e}".into(),
        },
        DocLine {
            description: "Plumber 🔧 — Zoë's «déjà vu» 日本 עברית".into(),
            period: None,
            net_pence: -1,
            vat_pence: 0,
            vat_label: String::new(),
        },
    ];
    invoice.statutory = Some(Statutory::from_body("", "", "", 0));
    render(&invoice.clone().into()).unwrap();
    invoice.lines.clear();
    let text = text_of(&render(&invoice.into()).unwrap().pdf);
    assert!(text.contains("No lines."), "{text}");

    let empty = Statement {
        rows: Vec::new(),
        ..statement(0)
    };
    let text = text_of(&render(&empty.into()).unwrap().pdf);
    assert!(text.contains("Opening balance"), "{text}");
}

#[test]
fn the_hash_is_of_the_bytes_and_the_same_document_gives_the_same_bytes() {
    let doc: Document = demand().into();
    let first = render(&doc).unwrap();
    assert_eq!(first.sha256_hex, hex::encode(Sha256::digest(&first.pdf)));
    assert_eq!(first.sha256_hex.len(), 64);
    let again = render(&doc).unwrap();
    assert_eq!(first.sha256_hex, again.sha256_hex);

    let mut changed = demand();
    changed.lines[0].description.push('.');
    assert_ne!(
        render(&changed.into()).unwrap().sha256_hex,
        first.sha256_hex
    );
}

#[test]
fn a_demand_part_paid_shows_what_is_left_to_pay() {
    let mut invoice = demand();
    invoice.paid_pence = 20_000;
    invoice.statutory = None;
    let text = text_of(&render(&invoice.into()).unwrap().pdf);
    assert!(text.contains("Paid £200.00"), "{text}");
    assert!(text.contains("Amount due £250.00"), "{text}");
    assert!(
        text.contains("Amount due: £250.00 by 9 June 2026"),
        "{text}"
    );
}

#[test]
fn a_logo_is_placed_from_its_bytes() {
    let mut invoice = demand();
    invoice.org.logo_png = Some(tiny_png());
    let with_logo = render(&invoice.clone().into()).unwrap();
    assert!(text_of(&with_logo.pdf).contains("Goldcrest Property Management Ltd"));
    let without = render(&demand().into()).unwrap();
    assert!(with_logo.pdf.len() > without.pdf.len());

    // Bytes that are no image fail the render with an error, not a panic.
    invoice.org.logo_png = Some(b"not an image".to_vec());
    assert!(render(&invoice.into()).is_err());
}

#[test]
fn a_credit_note_names_the_demand_it_credits_and_why() {
    let note = CreditNote {
        org: org(),
        to: leaseholder(),
        number: "CN-000007".into(),
        issue_date: date!(2026 - 05 - 20),
        unit: "Flat 4".into(),
        site: "Goldcrest House".into(),
        reason: "Window cleaning charged twice".into(),
        against: Some("SC-000123".into()),
        lines: vec![DocLine {
            description: "Window cleaning".into(),
            period: None,
            net_pence: 5_000,
            vat_pence: 1_000,
            vat_label: "20%".into(),
        }],
        net_pence: 5_000,
        vat_pence: 1_000,
        total_pence: 6_000,
    };
    let text = text_of(&render(&note.into()).unwrap().pdf);
    for expected in [
        "Credit note",
        "CN-000007",
        "SC-000123",
        "20 May 2026",
        "Reason: Window cleaning charged twice",
        "Total credit £60.00",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
}

#[test]
fn a_receipt_lists_what_it_paid_and_what_is_held_on_account() {
    let receipt = Receipt {
        org: org(),
        to: leaseholder(),
        number: "RC-000042".into(),
        received_on: date!(2026 - 06 - 01),
        unit: "Flat 4".into(),
        site: "Goldcrest House".into(),
        amount_pence: 125_050,
        method: "Bank transfer".into(),
        reference: Some("LOVELACE FLAT4".into()),
        allocations: vec![("SC-000123".into(), 45_000), ("GR-000009".into(), 25_000)],
        unallocated_pence: 55_050,
    };
    let text = text_of(&render(&receipt.into()).unwrap().pdf);
    for expected in [
        "Receipt",
        "RC-000042",
        "1 June 2026",
        "Bank transfer",
        "LOVELACE FLAT4",
        "£1,250.50",
        "SC-000123 £450.00",
        "GR-000009 £250.00",
        "Held on account £550.50",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
}

fn statement(rows: usize) -> Statement {
    let mut balance = 10_000_i64;
    let mut day = date!(2026 - 04 - 01);
    let rows = (0..rows)
        .map(|i| {
            let (debit, credit) = if i % 3 == 2 { (0, 7_500) } else { (2_500, 0) };
            balance += debit - credit;
            let row = StatementRow {
                date: day,
                description: format!(
                    "Movement {i}: {}",
                    if credit > 0 {
                        "payment, thank you"
                    } else {
                        "service charge"
                    }
                ),
                debit_pence: debit,
                credit_pence: credit,
                balance_pence: balance,
            };
            day = day.next_day().unwrap_or(day);
            row
        })
        .collect();
    Statement {
        org: org(),
        to: leaseholder(),
        unit: "Flat 4".into(),
        site: "Goldcrest House".into(),
        from: date!(2026 - 04 - 01),
        to_date: date!(2027 - 03 - 31),
        opening_pence: 10_000,
        rows,
        closing_pence: balance,
        overdue_pence: 1_200,
    }
}

#[test]
fn a_statement_shows_the_running_balance() {
    let mut s = statement(3);
    s.closing_pence = -1_200;
    s.rows[2].balance_pence = -1_200;
    let rendered = render(&s.into()).unwrap();
    assert_eq!(rendered.pages, 1);
    let text = text_of(&rendered.pdf);
    for expected in [
        "Statement of account",
        "1 April 2026 to 31 March 2027",
        "Opening balance",
        "£100.00",
        "Movement 0: service charge",
        "3 April 2026",
        "-£12.00",
        "Closing balance -£12.00",
        "Your account is £12.00 in credit.",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
}

#[test]
fn a_long_statement_runs_over_several_pages() {
    let rendered = render(&statement(300).into()).unwrap();
    assert!(rendered.pages > 1, "{} page(s)", rendered.pages);
    let text = text_of(&rendered.pdf);
    assert!(text.contains("Movement 0: service charge"));
    assert!(text.contains("Movement 298: service charge"));
    assert!(text.contains("Movement 299: payment, thank you"));
    assert!(
        text.contains(&format!("Page 2 of {}", rendered.pages)),
        "{text}"
    );
    // The column headings repeat on each page.
    assert!(text.matches("Balance").count() >= rendered.pages, "{text}");
}

fn supplier() -> Party {
    Party {
        name: "Severn Roofing & Gutters Ltd".into(),
        address_lines: vec![
            "Unit 7, Avonside Trading Estate".into(),
            "Bristol BS2 0JZ".into(),
        ],
    }
}

/// A payment of `lines` bills, one a day from 2 March 2026, each of £100.00 plus a penny per
/// line before it; the total is their sum, worked out here as the caller would.
fn remittance(lines: usize) -> Remittance {
    let mut day = date!(2026 - 03 - 02);
    let lines: Vec<RemittanceLine> = (0..lines)
        .map(|i| {
            let line = RemittanceLine {
                bill_number: format!("BIL-2026-{:06}", i + 3),
                supplier_reference: format!("INV-{}", 1042 + i),
                site: if i % 2 == 0 {
                    "Goldcrest House".into()
                } else {
                    "Harbourside Court".into()
                },
                invoice_date: day,
                amount_pence: 10_000 + i64::try_from(i).unwrap(),
            };
            day = day.next_day().unwrap_or(day);
            line
        })
        .collect();
    let total_pence = lines.iter().map(|l| l.amount_pence).sum();
    Remittance {
        org: org(),
        to: supplier(),
        number: "PAY-2026-000012".into(),
        paid_on: date!(2026 - 04 - 15),
        method: "BACS".into(),
        reference: Some("GOLDCREST PAY12".into()),
        paid_from: "Goldcrest Client Account (sort code **-**-00, account ****9911)".into(),
        lines,
        total_pence,
    }
}

/// Three bills, £1,234.56 in all.
fn three_bill_remittance() -> Remittance {
    let mut r = remittance(3);
    r.lines[0].amount_pence = 98_456;
    r.lines[1].amount_pence = 15_000;
    r.lines[2].amount_pence = 10_000;
    r.total_pence = 123_456;
    r
}

#[test]
fn a_remittance_advice_tells_the_supplier_which_invoices_were_paid() {
    let rendered = render(&three_bill_remittance().into()).unwrap();
    assert!(rendered.pdf.starts_with(b"%PDF-"));
    assert_eq!(rendered.pages, 1);
    let text = text_of(&rendered.pdf);
    for expected in [
        "Goldcrest Property Management Ltd",
        "Remittance advice",
        "Severn Roofing & Gutters Ltd",
        "Unit 7, Avonside Trading Estate",
        "Payment number PAY-2026-000012",
        "Date paid 15 April 2026",
        "Method BACS",
        "Reference GOLDCREST PAY12",
        "We have paid you £1,234.56 by BACS from Goldcrest Client Account (sort code **-**-00, account ****9911).",
        "INV-1042 2 March 2026 BIL-2026-000003 Goldcrest House £984.56",
        "INV-1043 3 March 2026 BIL-2026-000004 Harbourside Court £150.00",
        "INV-1044 4 March 2026 BIL-2026-000005 Goldcrest House £100.00",
        "Total paid £1,234.56",
        "This payment settles the invoices listed above.",
        "Remittance advice PAY-2026-000012",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
}

#[test]
fn a_remittance_prints_its_total_as_given_not_as_the_lines_add_up() {
    let mut r = three_bill_remittance();
    r.total_pence = 99;
    r.reference = Some("   ".into());
    r.paid_from = String::new();
    let text = text_of(&render(&r.into()).unwrap().pdf);
    assert!(text.contains("Total paid £0.99"), "{text}");
    assert!(text.contains("We have paid you £0.99 by BACS."), "{text}");
    assert!(!text.contains("£1,234.56"), "{text}");
    assert!(!text.contains("Reference"), "{text}");
}

#[test]
fn a_remittance_against_no_invoice_says_so() {
    let r = Remittance {
        lines: Vec::new(),
        reference: None,
        total_pence: 50_000,
        ..remittance(0)
    };
    let text = text_of(&render(&r.into()).unwrap().pdf);
    assert!(text.contains("Not against any invoice."), "{text}");
    assert!(text.contains("Total paid £500.00"), "{text}");
    assert!(!text.contains("settles the invoices"), "{text}");
}

#[test]
fn a_long_remittance_runs_over_several_pages_without_losing_a_bill() {
    let long = remittance(60);
    let total = long.total_pence;
    let rendered = render(&long.into()).unwrap();
    assert!(rendered.pages > 1, "{} page(s)", rendered.pages);
    let text = text_of(&rendered.pdf);
    for i in 0..60_usize {
        let row = format!("INV-{} ", 1042 + i);
        assert_eq!(text.matches(&row).count(), 1, "{row:?} in:\n{text}");
        assert!(text.contains(&format!("BIL-2026-{:06}", i + 3)), "{text}");
    }
    // 60 × £100.00 plus 0 + 1 + … + 59 pence.
    assert_eq!(total, 601_770);
    assert!(text.contains("Total paid £6,017.70"), "{text}");
    assert!(
        text.contains(&format!("Page 2 of {}", rendered.pages)),
        "{text}"
    );
    // The column headings repeat on each page.
    assert!(
        text.matches("Your invoice").count() >= rendered.pages,
        "{text}"
    );
}

#[test]
fn a_remittance_as_html_says_the_same_with_every_value_escaped() {
    let mut r = three_bill_remittance();
    r.to.name = "<b>Severn</b> Roofing & Gutters Ltd".into();
    let page = html(&r.into());
    if let Some(dir) = std::env::var_os("PROPLINK_PDF_SAMPLES") {
        std::fs::write(std::path::Path::new(&dir).join("remittance.html"), &page).unwrap();
    }
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(!page.contains("<b>Severn"));
    assert!(page.contains("&lt;b&gt;Severn&lt;/b&gt; Roofing &amp; Gutters Ltd"));
    assert!(page.contains("<h1>Remittance advice</h1>"));
    for invoice in ["INV-1042", "INV-1043", "INV-1044"] {
        assert!(
            page.contains(&format!("<td class=\"narrow\">{invoice}</td>")),
            "{page}"
        );
    }
    assert!(page.contains("<tr class=\"strong\"><td>Total paid</td><td>£1,234.56</td></tr>"));
    assert!(page.contains("15 April 2026"));
    assert!(page.contains("This payment settles the invoices listed above."));
}

#[test]
fn the_html_page_says_the_same_with_every_value_escaped() {
    let mut invoice = demand();
    invoice.to.name = "<script>alert('x')</script> & Co".into();
    invoice.org.logo_png = Some(tiny_png());
    let page = html(&invoice.into());
    if let Some(dir) = std::env::var_os("PROPLINK_PDF_SAMPLES") {
        std::fs::write(std::path::Path::new(&dir).join("demand.html"), &page).unwrap();
    }
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(!page.contains("<script>"));
    assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co"));
    assert!(page.contains("#panic(&quot;x&quot;) ] [ $x$ \\ *bold*"));
    assert!(page.contains("£450.00"));
    assert!(page.contains("9 June 2026"));
    assert!(page.contains("Address for service of notices"));
    assert!(page.contains(SUMMARY_SENTENCE));
    assert!(page.contains("src=\"data:image/png;base64,"));
}

/// A 2×2 PNG, red and white.
fn tiny_png() -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode("iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEklEQVR4nGP4z8Dw//9/BggFADPaB/npMVQqAAAAAElFTkSuQmCC")
        .unwrap()
}
