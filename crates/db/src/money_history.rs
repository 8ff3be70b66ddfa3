//! A bill's, a payment's and a payment run's history in words (issue 7 "The trail"): each
//! audit event of the record read as what the person did, with their channel and the day —
//! "Bright Spark Plumbing submitted invoice INV-1042 for £450.00 via ContractorPort on 12 May
//! 2026", "Ann Accountant approved it as BIL-2026-000012 via admin on 14 May 2026". An event
//! these rules do not recognise falls back to the audit log's own sentence.

use crate::audit::AuditEvent;
use proplink_domain::uk::format_pence;
use serde_json::Value;

fn text(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn pence(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_i64)
}

/// (old status, new status) when an update changed it.
fn status_move(e: &AuditEvent) -> Option<(&str, &str)> {
    Some((text(e.old_value("status"))?, text(e.new_value("status"))?))
}

fn with_reason(what: &str, reason: Option<&str>) -> String {
    match reason {
        Some(r) => format!("{what}: {r}"),
        None => what.to_owned(),
    }
}

/// A supplier bill's event in words.
pub fn bill_sentence(e: &AuditEvent) -> String {
    let what = match e.operation.as_str() {
        "insert" => {
            let reference = text(e.new_value("supplier_reference")).unwrap_or("an invoice");
            let amount = pence(e.new_value("total_pence"))
                .filter(|p| *p > 0)
                .map(|p| format!(" for {}", format_pence(p)))
                .unwrap_or_default();
            let verb = match text(e.new_value("source")) {
                Some("contractorport") => "submitted",
                Some("upload") => "uploaded",
                _ => "entered",
            };
            Some(format!("{verb} invoice {reference}{amount}"))
        }
        "delete" => Some("deleted the draft".to_owned()),
        _ => bill_update(e),
    };
    match what {
        Some(w) => e.sentence_with(&w),
        None => e.sentence(),
    }
}

/// An event of a bill's history (`audit::bill_history`) in words: the bill's own, or one of
/// its payment-run lines' (the step that used to be the bill's "scheduled" status).
pub fn bill_history_sentence(e: &AuditEvent) -> String {
    if e.table_name != "supplier_payment_line" {
        return bill_sentence(e);
    }
    match e.operation.as_str() {
        "insert" => e.sentence_with(&match pence(e.new_value("amount_pence")) {
            Some(p) => format!("put it in a payment run to pay {}", format_pence(p)),
            None => "put it in a payment run".to_owned(),
        }),
        "delete" => e.sentence_with("took it out of a payment run"),
        _ => e.sentence(),
    }
}

fn bill_update(e: &AuditEvent) -> Option<String> {
    if let Some((from, to)) = status_move(e) {
        return Some(match (from, to) {
            ("draft", "awaiting_approval") => "submitted it for approval".to_owned(),
            ("awaiting_approval", "draft") => {
                with_reason("sent it back", text(e.new_value("returned_reason")))
            }
            (_, "approved") if e.new_value("number").is_some() => format!(
                "approved it as {}",
                text(e.new_value("number")).unwrap_or("a bill")
            ),
            ("approved", "scheduled") => "put it in a payment run".to_owned(),
            ("scheduled", "approved") if e.new_value("paid_pence").is_none() => {
                "took it out of a payment run".to_owned()
            }
            ("paid", "approved") => "re-opened it: its payment was reversed".to_owned(),
            (_, "paid") => "recorded it paid in full".to_owned(),
            (_, "held") => with_reason("put it on hold", text(e.new_value("hold_reason"))),
            ("held", _) => "released it from hold".to_owned(),
            (_, "voided") => with_reason("voided it", text(e.new_value("void_reason"))),
            (from, to) => format!(
                "moved it from {} to {}",
                from.replace('_', " "),
                to.replace('_', " ")
            ),
        });
    }
    let (old, new) = (
        pence(e.old_value("paid_pence"))?,
        pence(e.new_value("paid_pence"))?,
    );
    Some(if new > old {
        format!("recorded {} paid", format_pence(new - old))
    } else {
        format!("reversed a payment of {}", format_pence(old - new))
    })
}

/// A supplier payment's event in words.
pub fn payment_sentence(e: &AuditEvent) -> String {
    let what = match e.operation.as_str() {
        "insert" => {
            let number = text(e.new_value("number")).unwrap_or("a payment");
            let amount = pence(e.new_value("amount_pence"))
                .map(format_pence)
                .unwrap_or_default();
            Some(match text(e.new_value("status")) {
                Some("scheduled") => format!("scheduled payment {number} of {amount}"),
                _ => format!("recorded payment {number} of {amount}"),
            })
        }
        _ => match status_move(e) {
            Some((_, "paid")) => Some("marked it paid".to_owned()),
            Some((_, "reversed")) => Some(with_reason(
                "reversed it",
                text(e.new_value("reverse_reason")),
            )),
            Some((_, "cancelled")) => Some("cancelled it with its payment run".to_owned()),
            _ if e.new_value("remittance_sent_at").is_some() => {
                Some("e-mailed the remittance advice".to_owned())
            }
            _ => match (
                pence(e.old_value("amount_pence")),
                pence(e.new_value("amount_pence")),
            ) {
                (Some(old), Some(new)) => Some(format!(
                    "changed it from {} to {} (a bill taken out of its run)",
                    format_pence(old),
                    format_pence(new)
                )),
                _ => None,
            },
        },
    };
    match what {
        Some(w) => e.sentence_with(&w),
        None => e.sentence(),
    }
}

/// A payment run's event in words.
pub fn run_sentence(e: &AuditEvent) -> String {
    let what = match e.operation.as_str() {
        "insert" => Some(format!(
            "scheduled payment run {} of {}",
            text(e.new_value("number")).unwrap_or(""),
            pence(e.new_value("total_pence"))
                .map(format_pence)
                .unwrap_or_default()
        )),
        _ => match status_move(e) {
            Some((_, "approved")) => Some("approved it".to_owned()),
            Some((_, "paid")) => Some("marked it paid".to_owned()),
            Some((_, "cancelled")) => Some(with_reason(
                "cancelled it",
                text(e.new_value("cancel_reason")),
            )),
            _ if e.new_value("file_made_at").is_some() => {
                Some("downloaded the bank file".to_owned())
            }
            _ if e.new_value("bill_count").is_some() => Some("took a bill out of it".to_owned()),
            _ if e.new_value("payment_count").is_some() => {
                Some("grouped its bills into one payment per supplier".to_owned())
            }
            _ => None,
        },
    };
    match what {
        Some(w) => e.sentence_with(&w),
        None => e.sentence(),
    }
}
