//! Settings → Financial settings (docs-spec §2.6): the organisation's ledger accounts (the
//! template every site's books are opened from), which account holds each posting role, and
//! tax rates. Read with `ledger.read`; accounts and roles changed with
//! `ledger.manage_accounts`, tax rates with `settings.manage_tax_rates`.

use super::form::FormData;
use super::money::{finish, opt_date, writable};
use super::operations::{flash_of, query_of, refused_on};
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
use proplink_db::chart;
use proplink_db::ledger::{self, LedgerError};
use proplink_domain::dates::long_date;
use proplink_domain::ledger::{AccountKind, POSTING_ROLES, format_rate, parse_rate_percent};
use proplink_domain::permissions::Scope;
use uuid::Uuid;

type Page = Result<Response, WebError>;

const PATH: &str = "/settings/financial";

pub struct AccountRow {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub kind: &'static str,
    pub role: String,
    pub archived: bool,
    pub is_bank: bool,
}

pub struct RoleRow {
    pub key: &'static str,
    pub label: &'static str,
    pub held_by: String,
    /// Accounts of the right type that could take the role.
    pub choices: Vec<Opt>,
}

pub struct RateRow {
    pub id: Uuid,
    pub name: String,
    pub rate: String,
    pub applies: String,
    pub seeded: bool,
    pub archived: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "money/financial_settings.html")]
struct SettingsPage {
    shell: Shell,
    accounts: Vec<AccountRow>,
    roles: Vec<RoleRow>,
    rates: Vec<RateRow>,
    kinds: Vec<Opt>,
    typed: Typed,
    manage_accounts: bool,
    manage_rates: bool,
    flash: Option<String>,
    problem: Option<String>,
}

/// What was typed into the add forms, shown again with a refusal.
#[derive(Default)]
pub struct Typed {
    pub code: String,
    pub name: String,
    pub kind: String,
    pub rate_name: String,
    pub rate: String,
    pub valid_from: String,
    pub valid_to: String,
}

impl Typed {
    fn of(v: &FormData) -> Self {
        // The account form always sends a type; the rate form never does.
        if v.get("kind").is_empty() {
            Self {
                rate_name: v.get("name").to_owned(),
                rate: v.get("rate").to_owned(),
                valid_from: v.get("valid_from").to_owned(),
                valid_to: v.get("valid_to").to_owned(),
                ..Self::default()
            }
        } else {
            Self {
                code: v.get("code").to_owned(),
                name: v.get("name").to_owned(),
                kind: v.get("kind").to_owned(),
                ..Self::default()
            }
        }
    }
}

/// GET /settings/financial
pub async fn page(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(raw): RawQuery,
) -> Page {
    let (flash, problem) = flash_of(&query_of(raw));
    render(&state, &member, flash, problem, Typed::default()).await
}

async fn render(
    state: &AppState,
    member: &Member,
    flash: Option<String>,
    problem: Option<String>,
    typed: Typed,
) -> Page {
    let mut tx = state.db().begin(&member.ctx()).await?;
    let template = chart::template(&mut tx).await?;
    ledger::ensure_tax_rates(&mut tx).await?;
    let rates = ledger::tax_rates(&mut tx).await?;
    tx.commit().await?;
    let roles = POSTING_ROLES
        .iter()
        .map(|r| {
            let holders: Vec<String> = template
                .iter()
                .filter(|a| a.control.as_deref() == Some(r.key))
                .map(|a| format!("{} {}", a.code, a.name))
                .collect();
            RoleRow {
                key: r.key,
                label: r.label,
                held_by: if holders.is_empty() {
                    "—".into()
                } else {
                    holders.join(", ")
                },
                choices: template
                    .iter()
                    .filter(|a| {
                        a.kind() == r.kind && a.control.is_none() && a.archived_at.is_none()
                    })
                    .map(|a| Opt::new(a.id.to_string(), format!("{} {}", a.code, a.name), ""))
                    .collect(),
            }
        })
        .collect();
    Ok(SettingsPage {
        shell: Shell::new(member, "/settings"),
        accounts: template
            .iter()
            .map(|a| AccountRow {
                id: a.id,
                code: a.code.clone(),
                name: a.name.clone(),
                kind: a.kind().label(),
                role: a.role_label().unwrap_or("").to_owned(),
                archived: a.archived_at.is_some(),
                is_bank: a.control.as_deref() == Some("bank"),
            })
            .collect(),
        roles,
        rates: rates
            .iter()
            .map(|r| RateRow {
                id: r.id,
                name: r.name.clone(),
                rate: format_rate(u32::try_from(r.basis_points).unwrap_or(0)),
                applies: match r.valid_to {
                    Some(to) => format!("{} to {}", long_date(r.valid_from), long_date(to)),
                    None if r.treatment == "custom" => format!("From {}", long_date(r.valid_from)),
                    None => "Always".into(),
                },
                seeded: r.treatment != "custom",
                archived: r.archived_at.is_some(),
            })
            .collect(),
        kinds: AccountKind::ALL
            .iter()
            .map(|k| {
                let chosen = if typed.kind.is_empty() {
                    "expense"
                } else {
                    typed.kind.as_str()
                };
                Opt::new(k.as_str(), k.label(), chosen)
            })
            .collect(),
        typed,
        manage_accounts: member.can("ledger.manage_accounts")
            && !member.read_only()
            && all_sites(member).is_ok(),
        manage_rates: member.can("settings.manage_tax_rates")
            && !member.read_only()
            && all_sites(member).is_ok(),
        flash,
        problem,
    }
    .into_response())
}

/// The chart and the tax rates are every site's: only a member whose scope is all sites
/// changes them.
fn all_sites(member: &Member) -> Result<(), WebError> {
    if matches!(member.grants.scope, Some(Scope::AllSites)) {
        Ok(())
    } else {
        Err(WebError::Forbidden)
    }
}

fn sites(n: usize) -> String {
    match n {
        0 => "no site's books yet".into(),
        1 => "1 site's books".into(),
        n => format!("{n} sites' books"),
    }
}

/// POST /settings/financial/accounts: adds an account to the template and every site's books.
pub async fn add_account(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    body: Bytes,
) -> Page {
    writable(&member)?;
    member.require_action("ledger.manage_accounts")?;
    all_sites(&member)?;
    let v = FormData::parse(&body);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let result = chart::add_account(&mut tx, v.get("code"), v.get("name"), v.get("kind"))
        .await
        .map(|added| {
            format!(
                "Added account {} {}: it is in {} and in every site opened from now on.",
                added.code,
                v.get("name").trim(),
                sites(added.sites)
            )
        });
    refused_with_typed(&state, &member, tx, result, &v).await
}

/// Commits what was done, or shows the page again with the refusal and what was typed.
async fn refused_with_typed(
    state: &AppState,
    member: &Member,
    tx: proplink_db::TenantTx,
    result: Result<String, LedgerError>,
    v: &FormData,
) -> Page {
    match result {
        Err(LedgerError::Refused(why)) => {
            drop(tx);
            let page = render(state, member, None, Some(why), Typed::of(v)).await?;
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        other => finish(tx, other, PATH).await,
    }
}

/// POST /settings/financial/accounts/{id}: rename, archive, restore, role or remove_bank.
pub async fn account_action(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    change_account(&state, &member, id, &FormData::parse(&body)).await
}

async fn change_account(state: &AppState, member: &Member, id: Uuid, v: &FormData) -> Page {
    writable(member)?;
    member.require_action("ledger.manage_accounts")?;
    all_sites(member)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let result = match v.get("action") {
        "rename" => chart::rename_account(&mut tx, id, v.get("name"))
            .await
            .map(|()| "Renamed the account, in every site's books.".to_owned()),
        "archive" => chart::set_archived(&mut tx, id, true).await.map(|n| {
            format!(
                "Archived the account in the template and {}: it takes no new postings; its \
                 history and balance stay.",
                sites(n)
            )
        }),
        "restore" => chart::set_archived(&mut tx, id, false)
            .await
            .map(|n| format!("Restored the account in the template and {}.", sites(n))),
        "remove_bank" => chart::remove_bank(&mut tx, id)
            .await
            .map(|n| format!("It is no longer a bank account, in {}.", sites(n))),
        "role" => {
            let role = v.get("role");
            let label = POSTING_ROLES
                .iter()
                .find(|r| r.key == role)
                .map_or("", |r| r.label);
            chart::assign_role(&mut tx, id, role).await.map(|n| {
                format!(
                    "Postings to {} now use this account, in {}. Earlier postings stay where \
                     they are.",
                    label.to_lowercase(),
                    sites(n)
                )
            })
        }
        _ => Err(LedgerError::Refused(
            "Choose what to do with the account.".into(),
        )),
    };
    if matches!(result, Err(LedgerError::NotFound)) {
        return Err(WebError::NotFound);
    }
    finish(tx, result, PATH).await
}

/// POST /settings/financial/roles: gives a posting role to the chosen account.
pub async fn set_role(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    body: Bytes,
) -> Page {
    let v = FormData::parse(&body);
    let Ok(account) = Uuid::parse_str(v.get("account").trim()) else {
        return Ok(refused_on(PATH, "Choose the account to hold the role."));
    };
    change_account(&state, &member, account, &v).await
}

/// POST /settings/financial/tax-rates: adds the organisation's own rate.
pub async fn add_rate(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    body: Bytes,
) -> Page {
    writable(&member)?;
    member.require_action("settings.manage_tax_rates")?;
    all_sites(&member)?;
    let v = FormData::parse(&body);
    let parsed = (|| -> Result<_, String> {
        let bp = parse_rate_percent(v.get("rate")).map_err(str::to_owned)?;
        let from = opt_date(v.get("valid_from"), "date it applies from")?
            .ok_or_else(|| "Give the date the rate applies from.".to_owned())?;
        let to = opt_date(v.get("valid_to"), "date it applies to")?;
        Ok((bp, from, to))
    })();
    let mut tx = state.db().begin(&member.ctx()).await?;
    let result = match parsed {
        Ok((bp, from, to)) => ledger::add_tax_rate(&mut tx, v.get("name"), bp, from, to)
            .await
            .map(|_| {
                format!(
                    "Added the rate {} ({}).",
                    v.get("name").trim(),
                    format_rate(bp)
                )
            }),
        Err(p) => Err(LedgerError::Refused(p)),
    };
    refused_with_typed(&state, &member, tx, result, &v).await
}

/// POST /settings/financial/tax-rates/{id}: archive or restore.
pub async fn rate_action(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    writable(&member)?;
    member.require_action("settings.manage_tax_rates")?;
    all_sites(&member)?;
    let v = FormData::parse(&body);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let result = match v.get("action") {
        "archive" => ledger::set_tax_rate_archived(&mut tx, id, true)
            .await
            .map(|()| {
                "Archived the rate: it can no longer be chosen; documents that used it keep it."
                    .to_owned()
            }),
        "restore" => ledger::set_tax_rate_archived(&mut tx, id, false)
            .await
            .map(|()| "Restored the rate.".to_owned()),
        _ => Err(LedgerError::Refused(
            "Choose what to do with the rate.".into(),
        )),
    };
    if matches!(result, Err(LedgerError::NotFound)) {
        return Err(WebError::NotFound);
    }
    finish(tx, result, PATH).await
}
