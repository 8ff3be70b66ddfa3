//! A bulk run of demands (issue 6; docs-spec §2.6 "generate on-account demands, one invoice
//! per unit"): many demands issued as approved in one transaction.
//!
//! Each demand is checked as the single path checks it (`receivables`: a billable contact,
//! lines priced by `price_lines`, the statutory content `statutory_content` requires) and
//! posted with the journal `post_invoice` would post, but the run reads each site's facts once
//! (books, accounts, funds and rates, statutory content, control accounts) and writes with a
//! handful of set-based statements and one `ledger::post_many`, not a dozen round trips per
//! demand. Numbers are drawn with one counter bump per year, so they stay gap-free and follow
//! the order of the run.
//!
//! Approval chains are signed record by record, so a run any chain would cover is refused.
//! A refusal leaves the caller's transaction as it was: the run works under a savepoint.

use std::collections::HashMap;

use crate::approvals::{self, Chain, Step};
use crate::error::DbError;
use crate::ledger::{self, LedgerError, NewJournal, lock_books, refused};
use crate::receivables::{
    self, DraftLine, Invoice, InvoiceHeader, InvoiceInput, InvoiceLine, PostedLine,
    StatutoryContent, add_to, invoice_journal,
};
use crate::tenant::TenantTx;
use proplink_domain::ledger::MAX_LINE_PENCE;
use proplink_domain::receivables::{InvoiceKind, unfilled_placeholders};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// A document has at most this many lines (`price_lines` refuses more), so a pricing batch of
/// several demands' lines stays within it too.
const MAX_LINES: usize = 200;

/// Issues `demands` as approved, in order: each numbered `INV-YYYY-NNNNNN`, carrying its
/// statutory content, and posted (Dr debtors control per fund, Cr each line's account, Cr VAT
/// per fund). Returns each demand's invoice id and number, in the order given.
///
/// Refused, with a sentence naming the demand and nothing written, when any demand fails a
/// check of the single path, or when an approval chain would cover any of them.
pub async fn issue_demands(
    tx: &mut TenantTx,
    demands: &[InvoiceInput],
    by: &str,
    now: OffsetDateTime,
) -> Result<Vec<(Uuid, String)>, LedgerError> {
    if demands.is_empty() {
        return Ok(Vec::new());
    }
    execute(tx, "savepoint demand_run").await?;
    match run(tx, demands, by, now).await {
        Ok(issued) => {
            execute(tx, "release savepoint demand_run").await?;
            Ok(issued)
        }
        Err(refusal) => {
            execute(tx, "rollback to savepoint demand_run").await?;
            execute(tx, "release savepoint demand_run").await?;
            Err(refusal)
        }
    }
}

async fn execute(tx: &mut TenantTx, sql: &'static str) -> Result<(), DbError> {
    sqlx::query(sql).execute(tx.conn()).await?;
    Ok(())
}

/// One demand as checked: where it is, its dates and reference, its lines' rates and VAT,
/// and which of the run's statutory contents it carries.
struct Checked<'a> {
    input: &'a InvoiceInput,
    site: Uuid,
    unit_reference: String,
    issue: Date,
    due: Date,
    reference: Option<String>,
    /// (basis points, VAT) of each line, in order.
    priced: Vec<(i32, i64)>,
    net: i64,
    vat: i64,
    content: usize,
}

impl Checked<'_> {
    fn total(&self) -> i64 {
        self.net + self.vat
    }
}

/// What the run drew and posted, demand by demand: invoice ids, numbers and journals.
struct Issued {
    ids: Vec<Uuid>,
    numbers: Vec<String>,
    journals: Vec<Uuid>,
}

/// A refusal about the `n`-th demand (counting from 1), naming it.
fn about(n: usize, unit: &str, e: LedgerError) -> LedgerError {
    let what = if unit.is_empty() {
        format!("Demand {n}")
    } else {
        format!("Demand {n} (unit {unit})")
    };
    match e {
        LedgerError::Refused(msg) => refused(format!("{what}: {msg}")),
        LedgerError::Journal(j) => refused(format!("{what}: {j}")),
        LedgerError::NotFound => refused(format!("{what}: that unit is not one of yours.")),
        other => other,
    }
}

async fn run(
    tx: &mut TenantTx,
    demands: &[InvoiceInput],
    by: &str,
    now: OffsetDateTime,
) -> Result<Vec<(Uuid, String)>, LedgerError> {
    // As `approve_invoice`: the balances and counters read are the ones written against.
    lock_books(tx).await?;
    ledger::ensure_tax_rates(tx).await?;
    let mut checked = check_headers(tx, demands).await?;
    let mut sites: Vec<Uuid> = checked.iter().map(|c| c.site).collect();
    sites.sort_unstable();
    sites.dedup();
    for site in &sites {
        ledger::ensure_books(tx, *site).await?;
    }
    price(tx, &mut checked).await?;
    let contents = statutory_contents(tx, &mut checked).await?;
    refuse_chained(tx, &checked).await?;
    let mut controls: HashMap<Uuid, (Uuid, Uuid)> = HashMap::with_capacity(sites.len());
    for (i, c) in checked.iter().enumerate() {
        if controls.contains_key(&c.site) {
            continue;
        }
        let debtors = receivables::control(tx, c.site, "debtors")
            .await
            .map_err(|e| about(i + 1, &c.unit_reference, e))?;
        let vat = receivables::control(tx, c.site, "vat")
            .await
            .map_err(|e| about(i + 1, &c.unit_reference, e))?;
        controls.insert(c.site, (debtors, vat));
    }

    let ids: Vec<Uuid> = checked.iter().map(|_| Uuid::now_v7()).collect();
    let numbers = draw_numbers(tx, &checked).await?;
    let mut journals = Vec::with_capacity(checked.len());
    for ((c, id), number) in checked.iter().zip(&ids).zip(&numbers) {
        let (debtors, vat) = controls.get(&c.site).ok_or(LedgerError::NotFound)?;
        journals.push(journal(c, *id, number, *debtors, *vat));
    }
    let posted = ledger::post_many(tx, &journals, by, now).await?;
    let issued = Issued {
        ids,
        numbers,
        journals: posted.into_iter().map(|(id, _)| id).collect(),
    };
    insert_drafts(tx, &checked, &issued.ids, by).await?;
    insert_lines(tx, &checked, &issued.ids).await?;
    approve(tx, &checked, &contents, &issued, by, now).await?;
    refuse_blanks(tx, &checked, &contents, &issued.ids).await?;
    Ok(issued.ids.into_iter().zip(issued.numbers).collect())
}

/// The units, contacts, dates and references, as `save_invoice_draft` and `submit_invoice`
/// check them. The units and their leaseholders are read in one query; the single path's
/// helpers word the refusals.
async fn check_headers<'a>(
    tx: &mut TenantTx,
    demands: &'a [InvoiceInput],
) -> Result<Vec<Checked<'a>>, LedgerError> {
    let mut pairs: Vec<(Uuid, Uuid)> = demands.iter().map(|d| (d.unit_id, d.contact_id)).collect();
    pairs.sort_unstable();
    pairs.dedup();
    let (units, contacts): (Vec<Uuid>, Vec<Uuid>) = pairs.into_iter().unzip();
    // Mirrors `receivables::check_billable`: a lease held (or once held), or occupancy.
    let rows: Vec<(Uuid, Uuid, Uuid, String, bool)> = sqlx::query_as(
        "select x.unit, x.contact, u.site_id, u.reference,
                exists (select from lease l join lease_holder h
                          on h.organisation_id = l.organisation_id and h.lease_id = l.id
                         where l.organisation_id = $1 and l.unit_id = x.unit and h.contact_id = x.contact)
             or exists (select from occupancy o
                         where o.organisation_id = $1 and o.unit_id = x.unit and o.contact_id = x.contact)
           from unnest($2::uuid[], $3::uuid[]) as x(unit, contact)
           join unit u on u.organisation_id = $1 and u.id = x.unit",
    )
    .bind(tx.org().0)
    .bind(&units)
    .bind(&contacts)
    .fetch_all(tx.conn())
    .await?;
    let facts: HashMap<(Uuid, Uuid), (Uuid, String, bool)> = rows
        .into_iter()
        .map(|(unit, contact, site, reference, billable)| {
            ((unit, contact), (site, reference, billable))
        })
        .collect();
    let mut checked = Vec::with_capacity(demands.len());
    for (i, d) in demands.iter().enumerate() {
        let n = i + 1;
        let Some((site, unit_reference, billable)) = facts.get(&(d.unit_id, d.contact_id)) else {
            return Err(about(n, "", LedgerError::NotFound));
        };
        let here = |e| about(n, unit_reference, e);
        if !billable {
            receivables::check_billable(tx, d.unit_id, d.contact_id, unit_reference)
                .await
                .map_err(here)?;
        }
        let issue = d
            .issue_date
            .ok_or_else(|| here(refused("Give the invoice an issue date.")))?;
        let due = d
            .due_date
            .ok_or_else(|| here(refused("Give the invoice a due date.")))?;
        for (date, what) in [(issue, "issue date"), (due, "due date")] {
            receivables::check_year(date, what).map_err(here)?;
        }
        if due < issue {
            return Err(here(refused("The due date is before the issue date.")));
        }
        let reference = receivables::check_reference(d.reference.as_deref()).map_err(here)?;
        checked.push(Checked {
            input: d,
            site: *site,
            unit_reference: unit_reference.clone(),
            issue,
            due,
            reference,
            priced: Vec::new(),
            net: 0,
            vat: 0,
            content: 0,
        });
    }
    Ok(checked)
}

/// Prices every demand's lines through `receivables::price_lines`, the lines of the demands of
/// one site and issue date together in batches of up to 200 (its checks and VAT are per line),
/// so the site's accounts, funds and rates are read once a batch rather than once a demand.
/// When a batch is refused, its demands are priced one by one for the demand's own sentence.
async fn price(tx: &mut TenantTx, checked: &mut [Checked<'_>]) -> Result<(), LedgerError> {
    for (i, c) in checked.iter().enumerate() {
        if c.input.lines.is_empty() || c.input.lines.len() > MAX_LINES {
            // Refused before any query: no lines, or too many.
            receivables::price_lines(tx, c.site, c.issue, &c.input.lines)
                .await
                .map_err(|e| about(i + 1, &c.unit_reference, e))?;
        }
    }
    let mut groups: Vec<((Uuid, Date), Vec<usize>)> = Vec::new();
    for (i, c) in checked.iter().enumerate() {
        let key = (c.site, c.issue);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    for ((site, on), members) in groups {
        let mut batch: Vec<usize> = Vec::new();
        let mut lines = 0;
        for i in members {
            let count = checked[i].input.lines.len();
            if lines + count > MAX_LINES {
                price_batch(tx, site, on, checked, &batch).await?;
                batch.clear();
                lines = 0;
            }
            batch.push(i);
            lines += count;
        }
        price_batch(tx, site, on, checked, &batch).await?;
    }
    for (i, c) in checked.iter_mut().enumerate() {
        c.net = c.input.lines.iter().map(|l| l.net_pence).sum();
        c.vat = c.priced.iter().map(|(_, v)| v).sum();
        if c.total() > MAX_LINE_PENCE {
            return Err(about(
                i + 1,
                &c.unit_reference,
                refused("The invoice's total is more than £10,000,000,000.00; check the figures."),
            ));
        }
    }
    Ok(())
}

async fn price_batch(
    tx: &mut TenantTx,
    site: Uuid,
    on: Date,
    checked: &mut [Checked<'_>],
    batch: &[usize],
) -> Result<(), LedgerError> {
    if batch.is_empty() {
        return Ok(());
    }
    let lines: Vec<DraftLine> = batch
        .iter()
        .flat_map(|i| checked[*i].input.lines.iter().cloned())
        .collect();
    let priced: Vec<(i32, i64)> = match receivables::price_lines(tx, site, on, &lines).await {
        Ok(priced) => priced
            .iter()
            .map(|p| (p.basis_points, p.vat_pence))
            .collect(),
        Err(LedgerError::Refused(batch_refusal)) => {
            for i in batch {
                let c = &checked[*i];
                receivables::price_lines(tx, site, on, &c.input.lines)
                    .await
                    .map_err(|e| about(i + 1, &c.unit_reference, e))?;
            }
            return Err(refused(batch_refusal));
        }
        Err(other) => return Err(other),
    };
    let mut rest = priced.as_slice();
    for i in batch {
        let (mine, others) = rest.split_at(checked[*i].input.lines.len().min(rest.len()));
        checked[*i].priced = mine.to_vec();
        rest = others;
    }
    Ok(())
}

/// What each demand must carry by law, through `receivables::statutory_content`, once per
/// site, kind and dates (and, for ground rent, whether every line states its period): the
/// only things that content depends on.
async fn statutory_contents(
    tx: &mut TenantTx,
    checked: &mut [Checked<'_>],
) -> Result<Vec<StatutoryContent>, LedgerError> {
    type Key = (Uuid, InvoiceKind, Date, Date, bool);
    let mut seen: HashMap<Key, usize> = HashMap::new();
    let mut contents = Vec::new();
    for (i, c) in checked.iter_mut().enumerate() {
        let periods = c
            .input
            .lines
            .iter()
            .all(|l| l.period_from.is_some() && l.period_to.is_some());
        let key = (c.site, c.input.kind, c.issue, c.due, periods);
        if let Some(at) = seen.get(&key) {
            c.content = *at;
            continue;
        }
        let lines: Vec<InvoiceLine> = c.input.lines.iter().map(as_line).collect();
        let content = receivables::statutory_content(tx, &as_invoice(c), &lines)
            .await
            .map_err(|e| about(i + 1, &c.unit_reference, e))?;
        c.content = contents.len();
        seen.insert(key, contents.len());
        contents.push(content);
    }
    Ok(contents)
}

/// The demand as the single path's checks read it (they look at its site, kind, dates and
/// lines' periods).
fn as_invoice(c: &Checked<'_>) -> Invoice {
    let d = c.input;
    Invoice {
        id: Uuid::nil(),
        site_id: c.site,
        unit_id: d.unit_id,
        contact_id: d.contact_id,
        kind: d.kind.as_str().to_owned(),
        number: None,
        reference: c.reference.clone(),
        issue_date: Some(c.issue),
        due_date: Some(c.due),
        status: "draft".to_owned(),
        net_pence: 0,
        vat_pence: 0,
        total_pence: 0,
        paid_pence: 0,
        jurisdiction: None,
        statutory_text_id: None,
        landlord_name: None,
        landlord_address: None,
        journal_id: None,
        created_by: String::new(),
        submitted_by: None,
        submitted_at: None,
        approved_by: None,
        approved_at: None,
        sent_at: None,
        voided_at: None,
        void_reason: None,
        returned_reason: None,
        unit_reference: c.unit_reference.clone(),
        site_reference: String::new(),
        contact_name: String::new(),
    }
}

fn as_line(l: &DraftLine) -> InvoiceLine {
    InvoiceLine {
        id: Uuid::nil(),
        line_no: 0,
        description: l.description.trim().to_owned(),
        account_id: l.account_id,
        account_code: String::new(),
        account_name: String::new(),
        fund_id: l.fund_id,
        fund_name: String::new(),
        tax_rate_id: l.tax_rate_id,
        tax_rate_name: String::new(),
        basis_points: 0,
        net_pence: l.net_pence,
        vat_pence: 0,
        gross_pence: l.net_pence,
        period_from: l.period_from,
        period_to: l.period_to,
        paid_pence: 0,
    }
}

/// Refuses the run when an approval chain would cover any demand: the chain that
/// `approvals::open_request` would pick (the first by position whose conditions the demand
/// meets) with at least one step applying at its amount.
async fn refuse_chained(tx: &mut TenantTx, checked: &[Checked<'_>]) -> Result<(), LedgerError> {
    let mut chains: Vec<Chain> = approvals::chains(tx, false)
        .await?
        .into_iter()
        .filter(|c| c.record_type == "debtor_invoice")
        .collect();
    if chains.is_empty() {
        return Ok(());
    }
    chains.sort_by_key(|c| (c.position, c.id));
    let mut steps: Vec<Vec<Step>> = Vec::with_capacity(chains.len());
    for c in &chains {
        steps.push(approvals::steps(tx, c.id).await?);
    }
    // (chain name, demands it covers), in the order first met.
    let mut covered: Vec<(&str, i64)> = Vec::new();
    for c in checked {
        let total = c.total();
        let kind = c.input.kind.as_str();
        let first = chains.iter().position(|chain| {
            chain.amount_over_pence.is_none_or(|over| total > over)
                && chain.site_id.is_none_or(|s| s == c.site)
                && chain.category.as_deref().is_none_or(|k| k == kind)
        });
        let Some(at) = first else {
            continue;
        };
        if steps[at]
            .iter()
            .any(|s| s.amount_over_pence.is_none_or(|over| total > over))
        {
            add_to(&mut covered, chains[at].name.as_str(), 1);
        }
    }
    if covered.is_empty() {
        return Ok(());
    }
    let count: i64 = covered.iter().map(|(_, n)| n).sum();
    let names: Vec<String> = covered
        .iter()
        .map(|(name, _)| format!("\"{name}\""))
        .collect();
    let demands = if count == 1 {
        "1 demand needs".to_owned()
    } else {
        format!("{count} demands need")
    };
    let chain = match names.as_slice() {
        [one] => format!("the chain {one}"),
        [rest @ .., last] => format!("the chains {} and {last}", rest.join(", ")),
        [] => "a chain".to_owned(),
    };
    Err(refused(format!(
        "{demands} approval through {chain}: issue them one by one."
    )))
}

/// The run's invoice numbers, in order: one counter bump per year of issue, as `next_number`
/// draws them one at a time.
async fn draw_numbers(
    tx: &mut TenantTx,
    checked: &[Checked<'_>],
) -> Result<Vec<String>, LedgerError> {
    let mut years: Vec<i32> = checked.iter().map(|c| c.issue.year()).collect();
    years.sort_unstable();
    years.dedup();
    let mut next: HashMap<i32, i32> = HashMap::with_capacity(years.len());
    for year in years {
        let count = i32::try_from(checked.iter().filter(|c| c.issue.year() == year).count())
            .map_err(|_| refused("Issue at most two billion demands at once."))?;
        let last: i32 = sqlx::query_scalar(
            "insert into reference_counter (organisation_id, kind, year, last_number)
             values ($1, 'debtor_invoice', $2, $3)
             on conflict (organisation_id, kind, year)
             do update set last_number = reference_counter.last_number + excluded.last_number
             returning last_number",
        )
        .bind(tx.org().0)
        .bind(year)
        .bind(count)
        .fetch_one(tx.conn())
        .await?;
        next.insert(year, last - count + 1);
    }
    let mut numbers = Vec::with_capacity(checked.len());
    for c in checked {
        let year = c.issue.year();
        let n = next.entry(year).or_insert(1);
        numbers.push(format!("INV-{year}-{n:06}"));
        *n += 1;
    }
    Ok(numbers)
}

/// The demand's journal, line for line as `post_invoice` posts it.
fn journal(c: &Checked<'_>, id: Uuid, number: &str, debtors: Uuid, vat: Uuid) -> NewJournal {
    let d = c.input;
    let lines: Vec<PostedLine<'_>> = d
        .lines
        .iter()
        .zip(&c.priced)
        .map(|(l, (_, v))| PostedLine {
            account_id: l.account_id,
            fund_id: l.fund_id,
            net_pence: l.net_pence,
            vat_pence: *v,
            description: &l.description,
        })
        .collect();
    invoice_journal(
        &InvoiceHeader {
            id,
            site_id: c.site,
            unit_id: d.unit_id,
            contact_id: d.contact_id,
            kind: d.kind,
            number,
            reference: c.reference.as_deref(),
            issue: c.issue,
        },
        &lines,
        debtors,
        vat,
    )
}

/// The invoices as drafts, as `save_invoice_draft` writes them (a document's lines are
/// written while it is a draft), in one statement.
async fn insert_drafts(
    tx: &mut TenantTx,
    checked: &[Checked<'_>],
    ids: &[Uuid],
    by: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "insert into debtor_invoice (organisation_id, id, site_id, unit_id, contact_id, kind,
                reference, issue_date, due_date, net_pence, vat_pence, total_pence, created_by)
         select $1, x.id, x.site, x.unit, x.contact, x.kind, x.reference, x.issue, x.due, x.net,
                x.vat, x.net + x.vat, $11
           from unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::text[], $7::text[],
                       $8::date[], $9::date[], $10::int8[], $12::int8[])
                as x(id, site, unit, contact, kind, reference, issue, due, net, vat)",
    )
    .bind(tx.org().0)
    .bind(ids)
    .bind(checked.iter().map(|c| c.site).collect::<Vec<_>>())
    .bind(checked.iter().map(|c| c.input.unit_id).collect::<Vec<_>>())
    .bind(
        checked
            .iter()
            .map(|c| c.input.contact_id)
            .collect::<Vec<_>>(),
    )
    .bind(
        checked
            .iter()
            .map(|c| c.input.kind.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        checked
            .iter()
            .map(|c| c.reference.clone())
            .collect::<Vec<_>>(),
    )
    .bind(checked.iter().map(|c| c.issue).collect::<Vec<_>>())
    .bind(checked.iter().map(|c| c.due).collect::<Vec<_>>())
    .bind(checked.iter().map(|c| c.net).collect::<Vec<_>>())
    .bind(by)
    .bind(checked.iter().map(|c| c.vat).collect::<Vec<_>>())
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Every demand's lines, as `insert_document_lines` writes one document's, in one statement.
async fn insert_lines(
    tx: &mut TenantTx,
    checked: &[Checked<'_>],
    ids: &[Uuid],
) -> Result<(), DbError> {
    let count: usize = checked.iter().map(|c| c.input.lines.len()).sum();
    let mut line_ids = Vec::with_capacity(count);
    let mut invoices = Vec::with_capacity(count);
    let mut sites = Vec::with_capacity(count);
    let mut numbers = Vec::with_capacity(count);
    let mut descriptions = Vec::with_capacity(count);
    let mut accounts = Vec::with_capacity(count);
    let mut funds = Vec::with_capacity(count);
    let mut rates = Vec::with_capacity(count);
    let mut bps = Vec::with_capacity(count);
    let mut nets = Vec::with_capacity(count);
    let mut vats = Vec::with_capacity(count);
    let mut froms = Vec::with_capacity(count);
    let mut tos = Vec::with_capacity(count);
    for (c, id) in checked.iter().zip(ids) {
        for (n, (l, (bp, vat))) in c.input.lines.iter().zip(&c.priced).enumerate() {
            line_ids.push(Uuid::now_v7());
            invoices.push(*id);
            sites.push(c.site);
            numbers.push(i16::try_from(n + 1).unwrap_or(i16::MAX));
            descriptions.push(l.description.trim().to_owned());
            accounts.push(l.account_id);
            funds.push(l.fund_id);
            rates.push(l.tax_rate_id);
            bps.push(*bp);
            nets.push(l.net_pence);
            vats.push(*vat);
            froms.push(l.period_from);
            tos.push(l.period_to);
        }
    }
    sqlx::query(
        "insert into debtor_invoice_line (organisation_id, id, invoice_id, site_id, line_no,
                description, account_id, fund_id, tax_rate_id, basis_points, net_pence, vat_pence,
                period_from, period_to)
         select $1, x.id, x.invoice, x.site, x.n, x.d, x.a, x.f, x.t, x.bp, x.net, x.vat, x.pf, x.pt
           from unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::int2[], $6::text[], $7::uuid[],
                       $8::uuid[], $9::uuid[], $10::int4[], $11::int8[], $12::int8[],
                       $13::date[], $14::date[])
                as x(id, invoice, site, n, d, a, f, t, bp, net, vat, pf, pt)",
    )
    .bind(tx.org().0)
    .bind(line_ids)
    .bind(invoices)
    .bind(sites)
    .bind(numbers)
    .bind(descriptions)
    .bind(accounts)
    .bind(funds)
    .bind(rates)
    .bind(bps)
    .bind(nets)
    .bind(vats)
    .bind(froms)
    .bind(tos)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Marks the drafts approved with their numbers, statutory content and journals, as
/// `post_invoice` does one, in one statement. Driven by the run's ids: a filter on the status
/// would be planned from the table's statistics, where drafts are rare, as a scan of every
/// invoice joined to the run (measured 19 s for 10,000 demands instead of 0.2 s).
async fn approve(
    tx: &mut TenantTx,
    checked: &[Checked<'_>],
    contents: &[StatutoryContent],
    issued: &Issued,
    by: &str,
    now: OffsetDateTime,
) -> Result<(), LedgerError> {
    let content = |c: &Checked<'_>| &contents[c.content];
    let done = sqlx::query(
        "update debtor_invoice i
            set status = 'approved', number = x.number, jurisdiction = x.jurisdiction,
                statutory_text_id = x.text, landlord_name = x.landlord,
                landlord_address = x.address, journal_id = x.journal, submitted_by = $9,
                submitted_at = $10, approved_by = $9, approved_at = $10, updated_at = now()
           from unnest($2::uuid[], $3::text[], $4::text[], $5::uuid[], $6::text[], $7::text[],
                       $8::uuid[])
                as x(id, number, jurisdiction, text, landlord, address, journal)
          where i.organisation_id = $1 and i.id = x.id",
    )
    .bind(tx.org().0)
    .bind(&issued.ids)
    .bind(&issued.numbers)
    .bind(
        checked
            .iter()
            .map(|c| content(c).jurisdiction.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        checked
            .iter()
            .map(|c| content(c).text.as_ref().map(|t| t.id))
            .collect::<Vec<_>>(),
    )
    .bind(
        checked
            .iter()
            .map(|c| content(c).landlord_name.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        checked
            .iter()
            .map(|c| content(c).landlord_address.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(&issued.journals)
    .bind(by)
    .bind(now)
    .execute(tx.conn())
    .await?;
    if usize::try_from(done.rows_affected()).ok() != Some(issued.ids.len()) {
        return Err(refused(
            "Some of the run's demands changed while it was being issued: run it again.",
        ));
    }
    Ok(())
}

/// `post_invoice` refuses a demand whose prescribed text would be issued with blanks. What
/// is left unfilled depends only on the text (the values filled in are the same for every
/// demand), so one demand per text is checked, through the single path's own filling.
async fn refuse_blanks(
    tx: &mut TenantTx,
    checked: &[Checked<'_>],
    contents: &[StatutoryContent],
    ids: &[Uuid],
) -> Result<(), LedgerError> {
    let mut texts: Vec<Uuid> = Vec::new();
    for (i, (c, id)) in checked.iter().zip(ids).enumerate() {
        let Some(text) = contents[c.content].text.as_ref().map(|t| t.id) else {
            continue;
        };
        if texts.contains(&text) {
            continue;
        }
        texts.push(text);
        let Some(inv) = receivables::find_invoice(tx, *id).await? else {
            return Err(LedgerError::NotFound);
        };
        if let Some((_, filled)) = receivables::demand_statutory_text(tx, &inv).await? {
            let blanks = unfilled_placeholders(&filled);
            if !blanks.is_empty() {
                return Err(about(
                    i + 1,
                    &c.unit_reference,
                    refused(format!(
                        "The prescribed text would be issued with blanks ({}): complete the demand and the site's details.",
                        blanks.join(", ")
                    )),
                ));
            }
        }
    }
    Ok(())
}
