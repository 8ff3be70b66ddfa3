//! Financials → Bank accounts (issue 7; docs-spec §2.6 "Bank accounts"): the organisation's
//! bank accounts with their numbers masked, added for one site or pooled for several, and each
//! account's money per site and fund. Reading needs `bank_account.read`; adding and archiving
//! `bank_account.create` / `bank_account.archive` and an all-sites scope (an account's sites
//! are the organisation's to choose).

use super::form::FormData;
use super::money::{finish, writable};
use super::operations::{back_to, flash_of, query_of};
use super::records::{Opt, parse_id};
use super::{Member, Shell};
use crate::error::WebError;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use proplink_db::bank_accounts::{self as banks, AccountType, BankAccountInput, FileFormat};
use proplink_db::ledger::LedgerError;
use proplink_domain::ledger::FundKind;
use proplink_domain::permissions::Scope;
use proplink_domain::uk::{AccountNumber, SortCode, format_pence};
use uuid::Uuid;

type Page = Result<Response, WebError>;

const PATH: &str = "/bank-accounts";

pub struct AccountRow {
    pub id: Uuid,
    pub name: String,
    pub kind: &'static str,
    pub masked: String,
    pub sites: i64,
    pub archived: bool,
}

/// What was typed, shown again with a refusal (never the account number).
#[derive(Default)]
pub struct Typed {
    pub name: String,
    pub bank_name: String,
    pub holder_name: String,
    pub sort_code: String,
    pub sun: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "money/bank_accounts.html")]
struct AccountsPage {
    shell: Shell,
    accounts: Vec<AccountRow>,
    types: Vec<Opt>,
    formats: Vec<Opt>,
    funds: Vec<Opt>,
    sites: Vec<Opt>,
    chosen_sites: Vec<String>,
    typed: Typed,
    can_add: bool,
    flash: Option<String>,
    problem: Option<String>,
}

fn all_sites(member: &Member) -> bool {
    matches!(member.grants.scope, Some(Scope::AllSites))
}

/// GET /bank-accounts
pub async fn page(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(raw): RawQuery,
) -> Page {
    let (flash, problem) = flash_of(&query_of(raw));
    render(&state, &member, flash, problem, None).await
}

async fn render(
    state: &AppState,
    member: &Member,
    flash: Option<String>,
    problem: Option<String>,
    typed: Option<&FormData>,
) -> Page {
    let mut tx = state.db().begin(&member.ctx()).await?;
    let accounts = banks::list(&mut tx).await?;
    let sites =
        proplink_db::operations::site_choices(&mut tx, &super::records::site_scope(member)).await?;
    tx.commit().await?;
    let get = |k: &str| typed.map(|v| v.get(k).to_owned()).unwrap_or_default();
    let chosen_sites: Vec<String> = typed
        .map(|v| v.all("site").map(str::to_owned).collect())
        .unwrap_or_default();
    let kind = if get("account_type").is_empty() {
        "client".to_owned()
    } else {
        get("account_type")
    };
    let format = if get("file_format").is_empty() {
        "csv".to_owned()
    } else {
        get("file_format")
    };
    Ok(AccountsPage {
        shell: Shell::new(member, "/sites"),
        accounts: accounts
            .iter()
            .map(|a| AccountRow {
                id: a.id,
                name: a.name.clone(),
                kind: a.account_type().label(),
                masked: a.masked(),
                sites: a.sites,
                archived: a.archived_at.is_some(),
            })
            .collect(),
        types: AccountType::ALL
            .iter()
            .map(|t| Opt::new(t.as_str(), t.label(), &kind))
            .collect(),
        formats: [FileFormat::Csv, FileFormat::BacsStandard18]
            .iter()
            .map(|f| Opt::new(f.as_str(), f.label(), &format))
            .collect(),
        funds: std::iter::once(Opt::new("", "Any fund", &get("fund_kind")))
            .chain(
                FundKind::ALL
                    .iter()
                    .map(|f| Opt::new(f.as_str(), f.label(), &get("fund_kind"))),
            )
            .collect(),
        sites: sites
            .into_iter()
            .map(|(id, name)| Opt::new(id.to_string(), name, ""))
            .collect(),
        chosen_sites,
        typed: Typed {
            name: get("name"),
            bank_name: get("bank_name"),
            holder_name: get("holder_name"),
            sort_code: get("sort_code"),
            sun: get("sun"),
        },
        can_add: member.can("bank_account.create") && !member.read_only() && all_sites(member),
        flash,
        problem,
    }
    .into_response())
}

fn input(v: &FormData) -> Result<BankAccountInput, String> {
    let sites = v
        .all("site")
        .map(|s| Uuid::parse_str(s.trim()).map_err(|_| "Choose the sites again.".to_owned()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(BankAccountInput {
        name: v.get("name").to_owned(),
        bank_name: Some(v.get("bank_name").to_owned()),
        account_type: AccountType::parse(v.get("account_type"))
            .ok_or_else(|| "Choose the type of account.".to_owned())?,
        sort_code: SortCode::parse(v.get("sort_code")).map_err(|e| format!("{e}."))?,
        account_number: AccountNumber::parse(v.get("account_number"))
            .map_err(|_| "An account number has exactly 8 digits.".to_owned())?,
        holder_name: v.get("holder_name").to_owned(),
        service_user_number: Some(v.get("sun").to_owned()),
        file_format: FileFormat::parse(v.get("file_format"))
            .ok_or_else(|| "Choose how the bank takes payment files.".to_owned())?,
        fund_kind: match v.get("fund_kind") {
            "" => None,
            f => Some(FundKind::parse(f).ok_or_else(|| "Choose the fund again.".to_owned())?),
        },
        sites,
        ledger_account_id: None,
    })
}

/// POST /bank-accounts
pub async fn add(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    body: Bytes,
) -> Page {
    writable(&member)?;
    member.require_action("bank_account.create")?;
    if !all_sites(&member) {
        return Err(WebError::Forbidden);
    }
    let v = FormData::parse(&body);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let result = match input(&v) {
        Ok(i) => banks::create(&mut tx, &state.settings().data_key, &i)
            .await
            .map(|_| {
                format!(
                    "Added {}: each site it serves has a ledger account for it.",
                    v.get("name").trim()
                )
            }),
        Err(p) => Err(LedgerError::Refused(p)),
    };
    match result {
        Err(LedgerError::Refused(why)) => {
            drop(tx);
            let page = render(&state, &member, None, Some(why), Some(&v)).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        other => finish(tx, other, PATH).await,
    }
}

pub struct BalanceRow {
    pub site: String,
    pub fund: String,
    pub balance: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "money/bank_account.html")]
struct AccountPage {
    shell: Shell,
    id: Uuid,
    name: String,
    facts: Vec<(String, String)>,
    balances: Vec<BalanceRow>,
    archived: bool,
    can_archive: bool,
    flash: Option<String>,
    problem: Option<String>,
}

/// GET /bank-accounts/{id}: the account and each site's money in it, per fund.
pub async fn account(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let a = banks::find(&mut tx, id).await?.ok_or(WebError::NotFound)?;
    let sites =
        proplink_db::operations::site_choices(&mut tx, &super::records::site_scope(&member))
            .await?;
    let mut balances = Vec::new();
    for (site, name) in &sites {
        let served = banks::for_site(&mut tx, *site)
            .await?
            .iter()
            .any(|(b, _)| b.id == id);
        if !served {
            continue;
        }
        for (_, fund, pence) in banks::site_balances(&mut tx, id, *site).await? {
            balances.push(BalanceRow {
                site: name.clone(),
                fund,
                balance: format_pence(pence),
            });
        }
    }
    tx.commit().await?;
    let (flash, problem) = flash_of(&query_of(raw));
    let mut facts = vec![
        ("Type".to_owned(), a.account_type().label().to_owned()),
        ("Numbers".to_owned(), a.masked()),
        ("Held in the name of".to_owned(), a.holder_name.clone()),
        (
            "Payment files".to_owned(),
            FileFormat::parse(&a.file_format)
                .map_or("", FileFormat::label)
                .to_owned(),
        ),
        (
            "Sites".to_owned(),
            if a.pooled {
                format!("Pooled: {} sites", a.sites)
            } else {
                "One site".to_owned()
            },
        ),
    ];
    if let Some(b) = &a.bank_name {
        facts.insert(1, ("Bank".to_owned(), b.clone()));
    }
    if let Some(f) = a.fund_kind.as_deref().and_then(FundKind::parse) {
        facts.push(("Holds only".to_owned(), f.label().to_owned()));
    }
    Ok(AccountPage {
        shell: Shell::new(&member, "/sites"),
        id,
        name: a.name.clone(),
        facts,
        balances,
        archived: a.archived_at.is_some(),
        can_archive: member.can("bank_account.archive")
            && !member.read_only()
            && all_sites(&member),
        flash,
        problem,
    }
    .into_response())
}

/// POST /bank-accounts/{id}/archive and …/restore
pub async fn archive(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path((id, action)): Path<(String, String)>,
) -> Page {
    let id = parse_id(&id)?;
    writable(&member)?;
    member.require_action("bank_account.archive")?;
    if !all_sites(&member) {
        return Err(WebError::Forbidden);
    }
    let archived = match action.as_str() {
        "archive" => true,
        "restore" => false,
        _ => return Err(WebError::NotFound),
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    match banks::set_archived(&mut tx, id, archived).await {
        Ok(()) => {
            tx.commit().await?;
            Ok(back_to(
                &format!("{PATH}/{id}"),
                if archived {
                    "Archived: no new receipts or payments go through it; its history stays."
                } else {
                    "Restored."
                },
            ))
        }
        Err(LedgerError::NotFound) => Err(WebError::NotFound),
        Err(e) => finish(tx, Err(e), &format!("{PATH}/{id}")).await,
    }
}
