//! Bills that arrive from outside the admin form (docs-spec §2.6 "Three ways in"): a
//! contractor's invoice sent through ContractorPort for the work order they completed becomes
//! a draft bill coded to that work order, with the invoice file, for the manager to check and
//! submit. The bill itself is saved by [`bills::save_draft`], so every rule of a bill (one
//! invoice number per supplier, figures that add up, the work order's site and contractor)
//! holds here too; this module only decides what the contractor may send and how the line is
//! pre-filled.

use crate::bills::{self, BillDocument, BillInput, BillLineInput};
use crate::email::{self, NewEmail};
use crate::ledger::{self, LedgerError, refused};
use crate::operations::{self as ops, WorkOrder};
use crate::tenant::TenantTx;
use proplink_domain::dates::long_date;
use proplink_domain::ledger::{FundKind, MAX_LINE_PENCE, TaxTreatment, vat_pence};
use proplink_domain::operations::WorkOrderStatus;
use proplink_domain::uk::format_pence;
use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

/// A contractor's invoice as they typed it, with the file already stored.
#[derive(Debug, Clone)]
pub struct ContractorInvoice {
    pub supplier_reference: String,
    pub issue_date: Date,
    pub net_pence: i64,
    pub vat_pence: i64,
    /// The total the invoice states: it must be the net plus the VAT.
    pub total_pence: i64,
    pub document: BillDocument,
}

/// Whether a work order in `status` takes the awarded contractor's invoice: once the work is
/// complete, and again after a first invoice (a second one for extra work, say).
pub fn takes_invoices(status: WorkOrderStatus) -> bool {
    matches!(
        status,
        WorkOrderStatus::Completed | WorkOrderStatus::Invoiced
    )
}

/// Saves the invoice of the contractor invited by `invitation` as a draft bill for the work
/// order's site and contractor, its one line pre-filled from the work order (the site's
/// repairs and maintenance account, its service charge fund, the VAT rate the figures show),
/// and tells the work order's manager. Refused, with nothing written, unless the invitation
/// was awarded and the work is complete, or when the figures do not add up.
pub async fn from_contractor(
    tx: &mut TenantTx,
    invitation: Uuid,
    input: &ContractorInvoice,
    now: OffsetDateTime,
) -> Result<Uuid, LedgerError> {
    let inv = ops::find_invitation(tx, invitation)
        .await?
        .ok_or(LedgerError::NotFound)?;
    // Two invoices sent at once for one job queue here and each sees the other's bill.
    sqlx::query("select 1 from work_order where organisation_id = $1 and id = $2 for update")
        .bind(tx.org().0)
        .bind(inv.work_order_id)
        .execute(tx.conn())
        .await?;
    let wo = ops::find_work_order(tx, inv.work_order_id)
        .await?
        .ok_or(LedgerError::NotFound)?;
    if inv.status != "awarded" || wo.vendor_id != Some(inv.vendor_id) {
        return Err(refused(
            "Only the contractor the work was awarded to can send an invoice for it.",
        ));
    }
    if !takes_invoices(wo.status()) {
        return Err(refused(format!(
            "{} is {}: send your invoice once the work is marked complete.",
            wo.reference,
            wo.status().label().to_lowercase()
        )));
    }
    check_figures(input, now.date())?;
    let site = wo.site_id;
    ledger::ensure_books(tx, site).await?;
    ledger::ensure_tax_rates(tx).await?;
    let account = expense_account(tx, site).await?;
    let fund = match ledger::fund_of_kind(tx, site, FundKind::ServiceCharge).await? {
        Some(f) => f.id,
        None => ledger::funds(tx, site)
            .await?
            .first()
            .map(|f| f.id)
            .ok_or_else(|| refused(no_books(&wo)))?,
    };
    let tax_rate = tax_rate(tx, inv.vendor_id, input).await?;
    let description: String = format!("{} {}", wo.reference, wo.title)
        .chars()
        .take(300)
        .collect();
    let bill = bills::save_draft(
        tx,
        None,
        &BillInput {
            site_id: site,
            vendor_id: inv.vendor_id,
            work_order_id: Some(wo.id),
            supplier_reference: input.supplier_reference.clone(),
            issue_date: input.issue_date,
            due_date: None,
            incurred_on: wo.completed_at.map(OffsetDateTime::date),
            description: None,
            lines: vec![BillLineInput {
                description,
                account_id: account,
                fund_id: fund,
                tax_rate_id: tax_rate,
                net_pence: input.net_pence,
                vat_pence: Some(input.vat_pence),
                // Most blocks are not VAT-registered: the VAT is part of the cost unless the
                // manager says otherwise when checking the draft.
                vat_recoverable: false,
            }],
            total_pence: Some(input.total_pence),
            source: "contractorport",
            document: Some(input.document.clone()),
        },
        &crate::approvals::Signer::unchained(&inv.vendor_name),
    )
    .await?;
    tell_manager(tx, &wo, &inv.vendor_name, input).await?;
    Ok(bill)
}

fn check_figures(input: &ContractorInvoice, today: Date) -> Result<(), LedgerError> {
    if input.net_pence <= 0 {
        return Err(refused("The net amount must be more than £0.00."));
    }
    if input.vat_pence < 0 {
        return Err(refused("The VAT cannot be negative."));
    }
    if input.net_pence > MAX_LINE_PENCE || input.vat_pence > MAX_LINE_PENCE {
        return Err(refused(
            "The invoice is more than £10,000,000,000.00; check the figures.",
        ));
    }
    if input.total_pence != input.net_pence + input.vat_pence {
        return Err(refused(format!(
            "The total {} is not the net {} plus the VAT {} (that makes {}): check the figures.",
            format_pence(input.total_pence),
            format_pence(input.net_pence),
            format_pence(input.vat_pence),
            format_pence(input.net_pence + input.vat_pence)
        )));
    }
    // A day's grace: "today" here is UTC, an hour behind the UK in summer.
    if input.issue_date > today + Duration::days(1) {
        return Err(refused(format!(
            "The invoice date {} is in the future.",
            long_date(input.issue_date)
        )));
    }
    if input.document.key.is_empty() {
        return Err(refused("Attach your invoice (a PDF, JPEG or PNG file)."));
    }
    Ok(())
}

fn no_books(wo: &WorkOrder) -> String {
    format!(
        "{}'s accounts are not ready for invoices yet: please contact {}.",
        wo.site_name, wo.manager_name
    )
}

/// The site's repairs and maintenance account, or (if that role has been taken off every
/// account) its first live expense account: the manager recodes the draft if need be.
async fn expense_account(tx: &mut TenantTx, site: Uuid) -> Result<Uuid, LedgerError> {
    if let Some(a) = ledger::control_account(tx, site, "repairs").await? {
        return Ok(a.id);
    }
    ledger::accounts(tx, site)
        .await?
        .into_iter()
        .find(|a| a.archived_at.is_none() && a.kind == "expense" && a.control.is_none())
        .map(|a| a.id)
        .ok_or_else(|| refused("The site has no expense account for invoices yet: please contact the managing agent."))
}

/// The rate the figures show. With VAT: the standard rate, or another rate in force whose
/// VAT on the net is the invoice's to the penny (suppliers round on the total). Without: zero
/// rated for a VAT-registered contractor, outside the scope of VAT for one who is not.
async fn tax_rate(
    tx: &mut TenantTx,
    vendor: Uuid,
    input: &ContractorInvoice,
) -> Result<Uuid, LedgerError> {
    let rates: Vec<_> = ledger::tax_rates(tx)
        .await?
        .into_iter()
        .filter(|r| r.applies_on(input.issue_date))
        .collect();
    let treatment = |t: TaxTreatment| rates.iter().find(|r| r.treatment == t.as_str());
    if input.vat_pence > 0 {
        let fits = |bp: i32| {
            let worked = vat_pence(input.net_pence, u32::try_from(bp).unwrap_or(0));
            (worked - input.vat_pence).abs() <= 1
        };
        let standard = treatment(TaxTreatment::Standard);
        if let Some(r) = standard.filter(|r| fits(r.basis_points)).or_else(|| {
            rates
                .iter()
                .find(|r| r.basis_points > 0 && fits(r.basis_points))
        }) {
            return Ok(r.id);
        }
        return Err(refused(match standard {
            Some(s) => format!(
                "VAT of {} on {} matches no VAT rate (at {} it would be {}): check the figures.",
                format_pence(input.vat_pence),
                format_pence(input.net_pence),
                s.name,
                format_pence(vat_pence(
                    input.net_pence,
                    u32::try_from(s.basis_points).unwrap_or(0)
                ))
            ),
            None => format!(
                "VAT of {} on {} matches no VAT rate: check the figures.",
                format_pence(input.vat_pence),
                format_pence(input.net_pence)
            ),
        }));
    }
    let registered: bool = sqlx::query_scalar(
        "select coalesce(btrim(vat_number), '') <> '' from vendor
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(vendor)
    .fetch_optional(tx.conn())
    .await?
    .unwrap_or(false);
    let order = if registered {
        [TaxTreatment::Zero, TaxTreatment::OutsideScope]
    } else {
        [TaxTreatment::OutsideScope, TaxTreatment::Zero]
    };
    order
        .into_iter()
        .find_map(treatment)
        .or_else(|| rates.iter().find(|r| r.basis_points == 0))
        .map(|r| r.id)
        .ok_or_else(|| refused("No VAT rate for an invoice without VAT is in force: please contact the managing agent."))
}

async fn tell_manager(
    tx: &mut TenantTx,
    wo: &WorkOrder,
    vendor: &str,
    input: &ContractorInvoice,
) -> Result<(), LedgerError> {
    let Some(address) = wo.manager_email.clone() else {
        return Ok(());
    };
    email::queue(
        tx,
        NewEmail {
            to_address: address,
            to_name: Some(wo.manager_name.clone()),
            subject: format!("{}: invoice {} from {vendor}", wo.reference, input.supplier_reference),
            body_text: format!(
                "Hello {},\n\n{vendor} has sent invoice {} dated {} for {} (net {} + VAT {}) for {} \"{}\" at {}, through ContractorPort.\n\nIt is saved as a draft bill coded to the work order, with their invoice attached. Check the coding and submit it for approval from the site's Financials.\n",
                wo.manager_name,
                input.supplier_reference,
                long_date(input.issue_date),
                format_pence(input.total_pence),
                format_pence(input.net_pence),
                format_pence(input.vat_pence),
                wo.reference,
                wo.title,
                wo.site_name
            ),
            body_html: None,
            category: "contractor_invoice".into(),
        },
    )
    .await?;
    Ok(())
}
