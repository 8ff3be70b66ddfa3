//! Settings → Workflows → Approval chains, and Your account → Delegations (docs-spec §2.12).
//! Chains are read by anyone who may read workflows and changed by those who may create or
//! update them; a member manages their own delegations.

use super::form::FormData;
use super::money::{iso, money_error, opt_date};
use super::operations::{back_to, flash_of, query_of, refused_on};
use super::records::{Opt, parse_id};
use super::{Member, Shell};
use crate::error::WebError;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use proplink_db::approvals::{self, Approver, ChainInput, RECORD_TYPES, StepInput};
use proplink_db::ledger::LedgerError;
use proplink_domain::dates::long_date;
use proplink_domain::permissions::BuiltInRole;
use proplink_domain::uk::{format_pence, parse_pounds_to_pence};
use uuid::Uuid;

type Page = Result<Response, WebError>;

const PATH: &str = "/settings/approval-chains";
/// How many approver rows the form offers.
const STEP_ROWS: usize = 5;

pub struct ChainView {
    pub id: Uuid,
    pub name: String,
    pub record_type: String,
    pub conditions: String,
    pub mode: String,
    pub steps: Vec<String>,
    pub archived: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "money/approval_chains.html")]
struct ChainsPage {
    shell: Shell,
    chains: Vec<ChainView>,
    record_types: Vec<Opt>,
    sites: Vec<Opt>,
    approvers: Vec<Opt>,
    rows: Vec<usize>,
    editable: bool,
    flash: Option<String>,
    problem: Option<String>,
}

/// GET /settings/approval-chains
pub async fn page(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(raw): RawQuery,
) -> Page {
    let query = query_of(raw);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let chains = approvals::chains(&mut tx, true).await?;
    let mut views = Vec::new();
    for c in &chains {
        let steps = approvals::steps(&mut tx, c.id).await?;
        views.push(ChainView {
            id: c.id,
            name: c.name.clone(),
            record_type: approvals::record_type_label(&c.record_type).to_owned(),
            conditions: c.conditions(),
            mode: if c.mode == "parallel" {
                "in any order".into()
            } else {
                "in order".into()
            },
            steps: steps
                .iter()
                .map(|s| match s.amount_over_pence {
                    Some(a) => format!("{} (over {})", s.approver_label, format_pence(a)),
                    None => s.approver_label.clone(),
                })
                .collect(),
            archived: c.archived_at.is_some(),
        });
    }
    let people = proplink_db::tickets::assignees(&mut tx).await?;
    let sites =
        proplink_db::operations::site_choices(&mut tx, &super::records::site_scope(&member))
            .await?;
    tx.commit().await?;
    let (flash, problem) = flash_of(&query);
    Ok(ChainsPage {
        shell: Shell::new(&member, "/settings"),
        chains: views,
        record_types: RECORD_TYPES
            .iter()
            .map(|(k, l)| Opt::new(*k, *l, "debtor_invoice"))
            .collect(),
        sites: std::iter::once(Opt::new("", "Every site", ""))
            .chain(
                sites
                    .into_iter()
                    .map(|(id, n)| Opt::new(id.to_string(), n, "")),
            )
            .collect(),
        approvers: std::iter::once(Opt::new("", "—", ""))
            .chain(
                people
                    .iter()
                    .map(|(id, n)| Opt::new(format!("member:{id}"), n.clone(), "")),
            )
            .chain(BuiltInRole::ALL.iter().map(|r| {
                Opt::new(
                    format!("role:{}", r.key()),
                    format!("Anyone who is {}", r.name()),
                    "",
                )
            }))
            .collect(),
        rows: (1..=STEP_ROWS).collect(),
        editable: member.can("workflow.create") && !member.read_only(),
        flash,
        problem,
    }
    .into_response())
}

fn parse_chain(v: &FormData) -> Result<ChainInput, String> {
    let money = |k: &str, what: &str| -> Result<Option<i64>, String> {
        match v.get(k).trim() {
            "" => Ok(None),
            t => parse_pounds_to_pence(t)
                .map(Some)
                .map_err(|e| format!("The {what}: {e}.")),
        }
    };
    let mut steps = Vec::new();
    for n in 1..=STEP_ROWS {
        let who = v.get(&format!("approver_{n}"));
        let approver = match who.split_once(':') {
            None if who.trim().is_empty() => continue,
            Some(("member", id)) => Approver::Member(
                Uuid::parse_str(id).map_err(|_| format!("Approver {n}: choose again."))?,
            ),
            Some(("role", key)) => Approver::Role(key.to_owned()),
            _ => return Err(format!("Approver {n}: choose again.")),
        };
        steps.push(StepInput {
            approver,
            amount_over_pence: money(&format!("over_{n}"), &format!("amount for approver {n}"))?,
        });
    }
    Ok(ChainInput {
        name: v.get("name").to_owned(),
        record_type: v.get("record_type").to_owned(),
        amount_over_pence: money("amount_over", "amount condition")?,
        site_id: match v.get("site").trim() {
            "" => None,
            s => Some(Uuid::parse_str(s).map_err(|_| "Choose the site again.".to_owned())?),
        },
        category: Some(v.get("category").to_owned()),
        parallel: v.get("mode") == "parallel",
        steps,
    })
}

/// POST /settings/approval-chains
pub async fn add(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    body: Bytes,
) -> Page {
    if member.read_only() {
        return Err(WebError::Forbidden);
    }
    member.require_action("workflow.create")?;
    let v = FormData::parse(&body);
    let input = match parse_chain(&v) {
        Ok(i) => i,
        Err(p) => return Ok(refused_on(PATH, &p)),
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    match approvals::save_chain(&mut tx, None, &input).await {
        Ok(_) => {
            tx.commit().await?;
            Ok(back_to(
                PATH,
                &format!(
                    "Added the chain {}: records submitted from now on follow it.",
                    input.name.trim()
                ),
            ))
        }
        Err(e) => {
            let message = money_error(e)?;
            drop(tx);
            Ok(refused_on(PATH, &message))
        }
    }
}

/// POST /settings/approval-chains/{id}/archive
pub async fn archive(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    if member.read_only() {
        return Err(WebError::Forbidden);
    }
    member.require_action("workflow.update")?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    match approvals::archive_chain(&mut tx, id).await {
        Ok(()) => {
            tx.commit().await?;
            Ok(back_to(
                PATH,
                "Chain archived: records already waiting on it still need it.",
            ))
        }
        Err(LedgerError::NotFound) => Err(WebError::NotFound),
        Err(e) => {
            let message = money_error(e)?;
            Ok(refused_on(PATH, &message))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Delegations

pub struct DelegationView {
    pub id: Uuid,
    pub text: String,
    pub mine: bool,
    pub revoked: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "money/delegations.html")]
struct DelegationsPage {
    shell: Shell,
    delegations: Vec<DelegationView>,
    people: Vec<Opt>,
    today: String,
    flash: Option<String>,
    problem: Option<String>,
}

const DELEGATIONS: &str = "/account/delegations";

/// GET /account/delegations
pub async fn delegations(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(raw): RawQuery,
) -> Page {
    let query = query_of(raw);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let all = approvals::delegations(&mut tx).await?;
    let people = proplink_db::tickets::assignees(&mut tx).await?;
    tx.commit().await?;
    let (flash, problem) = flash_of(&query);
    Ok(DelegationsPage {
        shell: Shell::new(&member, "/account/delegations"),
        delegations: all
            .iter()
            .filter(|d| {
                d.from_membership_id == member.membership_id
                    || d.to_membership_id == member.membership_id
            })
            .map(|d| DelegationView {
                id: d.id,
                text: format!(
                    "{} approves for {} from {} to {}",
                    d.to_name,
                    d.from_name,
                    long_date(d.starts_on),
                    long_date(d.ends_on)
                ),
                mine: d.from_membership_id == member.membership_id,
                revoked: d.revoked_at.is_some(),
            })
            .collect(),
        people: people
            .iter()
            .filter(|(id, _)| *id != member.membership_id)
            .map(|(id, n)| Opt::new(id.to_string(), n.clone(), ""))
            .collect(),
        today: iso(state.now().date()),
        flash,
        problem,
    }
    .into_response())
}

/// POST /account/delegations
pub async fn add_delegation(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    body: Bytes,
) -> Page {
    if member.read_only() {
        return Err(WebError::Forbidden);
    }
    let v = FormData::parse(&body);
    let parsed = (|| -> Result<(Uuid, time::Date, time::Date), String> {
        Ok((
            Uuid::parse_str(v.get("to")).map_err(|_| "Choose who approves for you.".to_owned())?,
            opt_date(v.get("starts_on"), "first day")?.ok_or("Give the first day.")?,
            opt_date(v.get("ends_on"), "last day")?.ok_or("Give the last day.")?,
        ))
    })();
    let (to, starts, ends) = match parsed {
        Ok(p) => p,
        Err(p) => return Ok(refused_on(DELEGATIONS, &p)),
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    match approvals::add_delegation(&mut tx, member.membership_id, to, starts, ends).await {
        Ok(_) => {
            tx.commit().await?;
            Ok(back_to(DELEGATIONS, "Delegation added."))
        }
        Err(e) => {
            let message = money_error(e)?;
            drop(tx);
            Ok(refused_on(DELEGATIONS, &message))
        }
    }
}

/// POST /account/delegations/{id}/revoke
pub async fn revoke_delegation(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    if member.read_only() {
        return Err(WebError::Forbidden);
    }
    let mut tx = state.db().begin(&member.ctx()).await?;
    match approvals::revoke_delegation(&mut tx, id, member.membership_id).await {
        Ok(()) => {
            tx.commit().await?;
            Ok(back_to(DELEGATIONS, "Delegation revoked."))
        }
        Err(LedgerError::NotFound) => Err(WebError::NotFound),
        Err(e) => {
            let message = money_error(e)?;
            Ok(refused_on(DELEGATIONS, &message))
        }
    }
}
