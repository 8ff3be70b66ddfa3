//! Approval chains (issue 6; docs-spec §2.12): which records need whose sign-off, delegation
//! while someone is away, and the Organisation Owner's audited bypass. Built once here; the
//! record types call [`open_request`] when a record is submitted and [`sign`] when someone
//! approves it, and post only when [`sign`] says the chain is complete.
//!
//! A chain's steps are copied into the request when it opens, so a chain edited later does not
//! change what a record already submitted needs.

use crate::email::{self, NewEmail};
use crate::error::DbError;
use crate::ledger::{LedgerError, plain, refused};
use crate::tenant::TenantTx;
use proplink_domain::uk::format_pence;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// The record types a chain can apply to (docs-spec §2.12), with their labels.
pub const RECORD_TYPES: &[(&str, &str)] = &[
    ("debtor_invoice", "Demands and invoices"),
    ("credit_note", "Credit notes"),
    ("manual_journal", "Manual journals"),
    ("bill", "Supplier bills"),
    ("payment_batch", "Supplier payment batches"),
    ("budget", "Service charge budgets"),
    ("freeholder_payout", "Freeholder payouts"),
    ("write_off", "Write-offs"),
    ("announcement", "Bulk announcements"),
];

pub fn record_type_label(key: &str) -> &'static str {
    RECORD_TYPES
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("Records", |(_, l)| l)
}

/// Who a step waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approver {
    Member(Uuid),
    Role(String),
    CustomRole(Uuid),
}

#[derive(Debug, Clone)]
pub struct StepInput {
    pub approver: Approver,
    pub amount_over_pence: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct ChainInput {
    pub name: String,
    pub record_type: String,
    pub amount_over_pence: Option<i64>,
    pub site_id: Option<Uuid>,
    pub category: Option<String>,
    pub parallel: bool,
    pub steps: Vec<StepInput>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Chain {
    pub id: Uuid,
    pub name: String,
    pub record_type: String,
    pub amount_over_pence: Option<i64>,
    pub site_id: Option<Uuid>,
    pub site_reference: Option<String>,
    pub category: Option<String>,
    pub mode: String,
    pub position: i32,
    pub archived_at: Option<OffsetDateTime>,
}

impl Chain {
    /// "Over £5,000.00 · site GC-001 · service_charge", or "Every record".
    pub fn conditions(&self) -> String {
        let mut parts = Vec::new();
        if let Some(a) = self.amount_over_pence {
            parts.push(format!("Over {}", format_pence(a)));
        }
        if let Some(s) = &self.site_reference {
            parts.push(format!("Site {s}"));
        }
        if let Some(c) = &self.category {
            parts.push(format!("Category {}", c.replace('_', " ")));
        }
        if parts.is_empty() {
            "Every record".into()
        } else {
            parts.join(" · ")
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Step {
    pub id: Uuid,
    pub position: i16,
    pub membership_id: Option<Uuid>,
    pub builtin_role: Option<String>,
    pub custom_role_id: Option<Uuid>,
    pub amount_over_pence: Option<i64>,
    /// "Priya Patel", "any Accountant", "any Finance director".
    pub approver_label: String,
}

const STEP_LABEL: &str = "coalesce(u.name, 'any ' || coalesce(initcap(replace(s.builtin_role, '_', ' ')), r.name), 'someone')";

pub async fn chains(tx: &mut TenantTx, include_archived: bool) -> Result<Vec<Chain>, DbError> {
    Ok(sqlx::query_as(
        "select c.id, c.name, c.record_type, c.amount_over_pence, c.site_id,
                s.reference as site_reference, c.category, c.mode, c.position, c.archived_at
           from approval_chain c
           left join site s on s.organisation_id = c.organisation_id and s.id = c.site_id
          where c.organisation_id = $1 and ($2 or c.archived_at is null)
          order by c.record_type, c.archived_at is not null, c.position, c.name",
    )
    .bind(tx.org().0)
    .bind(include_archived)
    .fetch_all(tx.conn())
    .await?)
}

pub async fn steps(tx: &mut TenantTx, chain: Uuid) -> Result<Vec<Step>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select s.id, s.position, s.membership_id, s.builtin_role, s.custom_role_id,
                s.amount_over_pence, {STEP_LABEL} as approver_label
           from approval_step s
           left join membership m on m.organisation_id = s.organisation_id and m.id = s.membership_id
           left join staff_user u on u.id = m.user_id
           left join custom_role r on r.organisation_id = s.organisation_id and r.id = s.custom_role_id
          where s.organisation_id = $1 and s.chain_id = $2 order by s.position"
    )))
    .bind(tx.org().0)
    .bind(chain)
    .fetch_all(tx.conn())
    .await?)
}

/// Adds or replaces a chain (its steps are replaced whole; requests already open keep the
/// steps they copied).
pub async fn save_chain(
    tx: &mut TenantTx,
    id: Option<Uuid>,
    input: &ChainInput,
) -> Result<Uuid, LedgerError> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(refused("Give the chain a name of up to 100 characters."));
    }
    plain(name, "name")?;
    if !RECORD_TYPES.iter().any(|(k, _)| *k == input.record_type) {
        return Err(refused("Choose the kind of record the chain approves."));
    }
    if input.amount_over_pence.is_some_and(|a| a < 0) {
        return Err(refused("The amount condition cannot be negative."));
    }
    let category = input
        .category
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    if let Some(c) = category
        && !(c.len() <= 60
            && c.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'))
    {
        return Err(refused("That category is not one PropLink knows."));
    }
    if input.steps.is_empty() {
        return Err(refused("A chain needs at least one approver."));
    }
    if input.steps.len() > 20 {
        return Err(refused("A chain has at most 20 approvers."));
    }
    if let Some(site) = input.site_id {
        let found: bool = sqlx::query_scalar(
            "select exists (select from site where organisation_id = $1 and id = $2)",
        )
        .bind(tx.org().0)
        .bind(site)
        .fetch_one(tx.conn())
        .await?;
        if !found {
            return Err(refused("Choose one of your sites."));
        }
    }
    for (i, step) in input.steps.iter().enumerate() {
        let n = i + 1;
        if step.amount_over_pence.is_some_and(|a| a < 0) {
            return Err(refused(format!(
                "Approver {n}: the amount cannot be negative."
            )));
        }
        let ok: bool = match &step.approver {
            Approver::Member(m) => {
                sqlx::query_scalar(
                    "select exists (select from membership where organisation_id = $1 and id = $2
                                  and status = 'active')",
                )
                .bind(tx.org().0)
                .bind(m)
                .fetch_one(tx.conn())
                .await?
            }
            Approver::Role(r) => proplink_domain::permissions::BuiltInRole::from_key(r).is_some(),
            Approver::CustomRole(r) => sqlx::query_scalar(
                "select exists (select from custom_role where organisation_id = $1 and id = $2)",
            )
            .bind(tx.org().0)
            .bind(r)
            .fetch_one(tx.conn())
            .await?,
        };
        if !ok {
            return Err(refused(format!(
                "Approver {n}: choose an active member or a role."
            )));
        }
    }
    let taken: bool = sqlx::query_scalar(
        "select exists (select from approval_chain where organisation_id = $1
                          and lower(name) = lower($2) and archived_at is null
                          and ($3::uuid is null or id <> $3))",
    )
    .bind(tx.org().0)
    .bind(name)
    .bind(id)
    .fetch_one(tx.conn())
    .await?;
    if taken {
        return Err(refused(format!("There is already a chain called {name}.")));
    }
    let mode = if input.parallel {
        "parallel"
    } else {
        "sequential"
    };
    let id = match id {
        Some(id) => {
            let updated = sqlx::query(
                "update approval_chain set name = $3, record_type = $4, amount_over_pence = $5,
                        site_id = $6, category = $7, mode = $8, updated_at = now()
                  where organisation_id = $1 and id = $2 and archived_at is null",
            )
            .bind(tx.org().0)
            .bind(id)
            .bind(name)
            .bind(&input.record_type)
            .bind(input.amount_over_pence)
            .bind(input.site_id)
            .bind(category)
            .bind(mode)
            .execute(tx.conn())
            .await?;
            if updated.rows_affected() == 0 {
                return Err(LedgerError::NotFound);
            }
            sqlx::query("delete from approval_step where organisation_id = $1 and chain_id = $2")
                .bind(tx.org().0)
                .bind(id)
                .execute(tx.conn())
                .await?;
            id
        }
        None => {
            let id = Uuid::now_v7();
            sqlx::query(
                "insert into approval_chain (organisation_id, id, name, record_type,
                        amount_over_pence, site_id, category, mode, position)
                 values ($1, $2, $3, $4, $5, $6, $7, $8,
                         (select coalesce(max(position), 0) + 1 from approval_chain
                           where organisation_id = $1))",
            )
            .bind(tx.org().0)
            .bind(id)
            .bind(name)
            .bind(&input.record_type)
            .bind(input.amount_over_pence)
            .bind(input.site_id)
            .bind(category)
            .bind(mode)
            .execute(tx.conn())
            .await?;
            id
        }
    };
    for (i, step) in input.steps.iter().enumerate() {
        let (member, role, custom) = match &step.approver {
            Approver::Member(m) => (Some(*m), None, None),
            Approver::Role(r) => (None, Some(r.as_str()), None),
            Approver::CustomRole(c) => (None, None, Some(*c)),
        };
        sqlx::query(
            "insert into approval_step (organisation_id, id, chain_id, position, membership_id,
                    builtin_role, custom_role_id, amount_over_pence)
             values ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(tx.org().0)
        .bind(Uuid::now_v7())
        .bind(id)
        .bind(i16::try_from(i + 1).unwrap_or(i16::MAX))
        .bind(member)
        .bind(role)
        .bind(custom)
        .bind(step.amount_over_pence)
        .execute(tx.conn())
        .await?;
    }
    Ok(id)
}

/// Archives a chain: records submitted later no longer match it; pending requests keep it.
pub async fn archive_chain(tx: &mut TenantTx, id: Uuid) -> Result<(), LedgerError> {
    let done = sqlx::query(
        "update approval_chain set archived_at = now(), updated_at = now()
          where organisation_id = $1 and id = $2 and archived_at is null",
    )
    .bind(tx.org().0)
    .bind(id)
    .execute(tx.conn())
    .await?;
    if done.rows_affected() == 0 {
        return Err(LedgerError::NotFound);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Delegation

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Delegation {
    pub id: Uuid,
    pub from_membership_id: Uuid,
    pub from_name: String,
    pub to_membership_id: Uuid,
    pub to_name: String,
    pub starts_on: Date,
    pub ends_on: Date,
    pub revoked_at: Option<OffsetDateTime>,
}

pub async fn delegations(tx: &mut TenantTx) -> Result<Vec<Delegation>, DbError> {
    Ok(sqlx::query_as(
        "select d.id, d.from_membership_id, fu.name as from_name, d.to_membership_id,
                tu.name as to_name, d.starts_on, d.ends_on, d.revoked_at
           from approval_delegation d
           join membership fm on fm.organisation_id = d.organisation_id and fm.id = d.from_membership_id
           join staff_user fu on fu.id = fm.user_id
           join membership tm on tm.organisation_id = d.organisation_id and tm.id = d.to_membership_id
           join staff_user tu on tu.id = tm.user_id
          where d.organisation_id = $1
          order by d.revoked_at is not null, d.starts_on desc",
    )
    .bind(tx.org().0)
    .fetch_all(tx.conn())
    .await?)
}

/// A member hands their approvals to another active member between two dates.
pub async fn add_delegation(
    tx: &mut TenantTx,
    from: Uuid,
    to: Uuid,
    starts_on: Date,
    ends_on: Date,
) -> Result<Uuid, LedgerError> {
    if from == to {
        return Err(refused("Choose someone else to approve for you."));
    }
    if ends_on < starts_on {
        return Err(refused("The delegation ends before it starts."));
    }
    if (ends_on - starts_on).whole_days() > 366 {
        return Err(refused("A delegation lasts at most a year."));
    }
    let active: bool = sqlx::query_scalar(
        "select exists (select from membership where organisation_id = $1 and id = $2
                          and status = 'active')",
    )
    .bind(tx.org().0)
    .bind(to)
    .fetch_one(tx.conn())
    .await?;
    if !active {
        return Err(refused("Choose an active member to approve for you."));
    }
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into approval_delegation (organisation_id, id, from_membership_id,
                to_membership_id, starts_on, ends_on)
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(starts_on)
    .bind(ends_on)
    .execute(tx.conn())
    .await?;
    Ok(id)
}

/// Revokes one of `from`'s delegations.
pub async fn revoke_delegation(tx: &mut TenantTx, id: Uuid, from: Uuid) -> Result<(), LedgerError> {
    let done = sqlx::query(
        "update approval_delegation set revoked_at = now()
          where organisation_id = $1 and id = $2 and from_membership_id = $3 and revoked_at is null",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(from)
    .execute(tx.conn())
    .await?;
    if done.rows_affected() == 0 {
        return Err(LedgerError::NotFound);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Requests

/// What is being approved.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    pub record_type: &'a str,
    pub record_id: Uuid,
    pub amount_pence: i64,
    pub site_id: Option<Uuid>,
    pub category: Option<&'a str>,
}

/// The person approving: their membership (if they have one in this organisation) and roles.
#[derive(Debug, Clone)]
pub struct Signer {
    pub membership_id: Option<Uuid>,
    pub name: String,
    pub builtin_role: Option<String>,
    pub custom_role_id: Option<Uuid>,
    pub is_owner: bool,
}

impl Signer {
    /// Loads a member's roles.
    pub async fn member(
        tx: &mut TenantTx,
        membership_id: Uuid,
        name: &str,
    ) -> Result<Self, DbError> {
        let row: Option<(Option<String>, Option<Uuid>, bool)> = sqlx::query_as(
            "select builtin_role, custom_role_id, is_owner from membership
              where organisation_id = $1 and id = $2",
        )
        .bind(tx.org().0)
        .bind(membership_id)
        .fetch_optional(tx.conn())
        .await?;
        let (builtin_role, custom_role_id, is_owner) = row.unwrap_or((None, None, false));
        Ok(Self {
            membership_id: Some(membership_id),
            name: name.to_owned(),
            builtin_role,
            custom_role_id,
            is_owner,
        })
    }

    /// Someone outside any chain (a test, the demo loader): can approve only what no chain
    /// covers.
    pub fn unchained(name: &str) -> Self {
        Self {
            membership_id: None,
            name: name.to_owned(),
            builtin_role: None,
            custom_role_id: None,
            is_owner: false,
        }
    }
}

/// The chain that applies to a subject: the first by position whose conditions it meets.
async fn matching_chain(
    tx: &mut TenantTx,
    subject: &Subject<'_>,
) -> Result<Option<(Uuid, String)>, DbError> {
    Ok(sqlx::query_as(
        "select id, mode from approval_chain
          where organisation_id = $1 and record_type = $2 and archived_at is null
            and (amount_over_pence is null or $3 > amount_over_pence)
            and (site_id is null or site_id = $4)
            and (category is null or category = $5)
          order by position, id limit 1",
    )
    .bind(tx.org().0)
    .bind(subject.record_type)
    .bind(subject.amount_pence)
    .bind(subject.site_id)
    .bind(subject.category)
    .fetch_optional(tx.conn())
    .await?)
}

/// Opens a request when a record is submitted, if a chain applies: the chain's steps that
/// apply at this amount are copied in. Returns whether a chain applies. A pending request from
/// an earlier submission is withdrawn first.
pub async fn open_request(
    tx: &mut TenantTx,
    subject: &Subject<'_>,
    submitted_by: Option<Uuid>,
) -> Result<bool, DbError> {
    withdraw(tx, subject.record_type, subject.record_id).await?;
    let Some((chain, mode)) = matching_chain(tx, subject).await? else {
        return Ok(false);
    };
    let steps: Vec<Step> = steps(tx, chain)
        .await?
        .into_iter()
        .filter(|s| {
            s.amount_over_pence
                .is_none_or(|over| subject.amount_pence > over)
        })
        .collect();
    if steps.is_empty() {
        return Ok(false);
    }
    // The submitter is recorded only if they are a member (FK).
    let submitted_by = match submitted_by {
        Some(m) => {
            sqlx::query_scalar::<_, Uuid>(
                "select id from membership where organisation_id = $1 and id = $2",
            )
            .bind(tx.org().0)
            .bind(m)
            .fetch_optional(tx.conn())
            .await?
        }
        None => None,
    };
    let request = Uuid::now_v7();
    sqlx::query(
        "insert into approval_request (organisation_id, id, record_type, record_id, chain_id, mode,
                amount_pence, submitted_by_membership_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(tx.org().0)
    .bind(request)
    .bind(subject.record_type)
    .bind(subject.record_id)
    .bind(chain)
    .bind(&mode)
    .bind(subject.amount_pence)
    .bind(submitted_by)
    .execute(tx.conn())
    .await?;
    for (i, s) in steps.iter().enumerate() {
        sqlx::query(
            "insert into approval_request_step (organisation_id, id, request_id, position,
                    membership_id, builtin_role, custom_role_id)
             values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(tx.org().0)
        .bind(Uuid::now_v7())
        .bind(request)
        .bind(i16::try_from(i + 1).unwrap_or(i16::MAX))
        .bind(s.membership_id)
        .bind(&s.builtin_role)
        .bind(s.custom_role_id)
        .execute(tx.conn())
        .await?;
    }
    Ok(true)
}

/// Withdraws a pending request (the record went back to draft or was deleted).
pub async fn withdraw(
    tx: &mut TenantTx,
    record_type: &str,
    record_id: Uuid,
) -> Result<(), DbError> {
    sqlx::query(
        "update approval_request set status = 'withdrawn', decided_at = now()
          where organisation_id = $1 and record_type = $2 and record_id = $3 and status = 'pending'",
    )
    .bind(tx.org().0)
    .bind(record_type)
    .bind(record_id)
    .execute(tx.conn())
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RequestStep {
    pub id: Uuid,
    pub position: i16,
    pub membership_id: Option<Uuid>,
    pub builtin_role: Option<String>,
    pub custom_role_id: Option<Uuid>,
    pub approver_label: String,
    pub signed_by: Option<String>,
    pub on_behalf_of: Option<String>,
    pub signed_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub id: Uuid,
    pub chain_name: String,
    pub mode: String,
    pub status: String,
    pub submitted_by_membership_id: Option<Uuid>,
    pub steps: Vec<RequestStep>,
}

impl Request {
    pub fn waiting_for(&self) -> Vec<&RequestStep> {
        let unsigned = self.steps.iter().filter(|s| s.signed_at.is_none());
        if self.mode == "parallel" {
            unsigned.collect()
        } else {
            unsigned.take(1).collect()
        }
    }
}

/// The record's latest request, with its steps and who signed them.
pub async fn request(
    tx: &mut TenantTx,
    record_type: &str,
    record_id: Uuid,
) -> Result<Option<Request>, DbError> {
    let head: Option<(Uuid, String, String, String, Option<Uuid>)> = sqlx::query_as(
        "select r.id, c.name, r.mode, r.status, r.submitted_by_membership_id
           from approval_request r
           join approval_chain c on c.organisation_id = r.organisation_id and c.id = r.chain_id
          where r.organisation_id = $1 and r.record_type = $2 and r.record_id = $3
          order by r.created_at desc, r.id desc limit 1",
    )
    .bind(tx.org().0)
    .bind(record_type)
    .bind(record_id)
    .fetch_optional(tx.conn())
    .await?;
    let Some((id, chain_name, mode, status, submitted_by_membership_id)) = head else {
        return Ok(None);
    };
    let steps: Vec<RequestStep> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select s.id, s.position, s.membership_id, s.builtin_role, s.custom_role_id,
                {STEP_LABEL} as approver_label, d.decided_by as signed_by,
                bu.name as on_behalf_of, d.decided_at as signed_at
           from approval_request_step s
           left join membership m on m.organisation_id = s.organisation_id and m.id = s.membership_id
           left join staff_user u on u.id = m.user_id
           left join custom_role r on r.organisation_id = s.organisation_id and r.id = s.custom_role_id
           left join approval_decision d on d.organisation_id = s.organisation_id and d.step_id = s.id
           left join membership bm on bm.organisation_id = d.organisation_id and bm.id = d.on_behalf_of_membership_id
           left join staff_user bu on bu.id = bm.user_id
          where s.organisation_id = $1 and s.request_id = $2 order by s.position"
    )))
    .bind(tx.org().0)
    .bind(id)
    .fetch_all(tx.conn())
    .await?;
    Ok(Some(Request {
        id,
        chain_name,
        mode,
        status,
        submitted_by_membership_id,
        steps,
    }))
}

/// What signing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signed {
    /// No chain covers the record: the approver's permission is the whole check.
    NoChain,
    /// Every step is signed: the record may post.
    Complete,
    /// Signed; others must still sign ("Priya Patel", "any Accountant").
    Waiting(Vec<String>),
}

/// Whether `signer` may sign `step` today, and on whose behalf.
async fn may_sign(
    tx: &mut TenantTx,
    signer: &Signer,
    step: &RequestStep,
    today: Date,
) -> Result<Option<Option<Uuid>>, DbError> {
    let Some(me) = signer.membership_id else {
        return Ok(None);
    };
    if step.membership_id == Some(me)
        || (step.builtin_role.is_some() && step.builtin_role == signer.builtin_role)
        || (step.custom_role_id.is_some() && step.custom_role_id == signer.custom_role_id)
    {
        return Ok(Some(None));
    }
    if let Some(named) = step.membership_id {
        let delegated: bool = sqlx::query_scalar(
            "select exists (select from approval_delegation
                             where organisation_id = $1 and from_membership_id = $2
                               and to_membership_id = $3 and revoked_at is null
                               and $4 between starts_on and ends_on)",
        )
        .bind(tx.org().0)
        .bind(named)
        .bind(me)
        .bind(today)
        .fetch_one(tx.conn())
        .await?;
        if delegated {
            return Ok(Some(Some(named)));
        }
    }
    Ok(None)
}

/// Signs the record's pending request as `signer`: the next step in order (sequential) or any
/// step they may sign (parallel). Refused when they submitted it, have signed a step of it
/// already, or no step waiting is theirs.
pub async fn sign(
    tx: &mut TenantTx,
    record_type: &str,
    record_id: Uuid,
    signer: &Signer,
    today: Date,
    now: OffsetDateTime,
) -> Result<Signed, LedgerError> {
    let Some(req) = request(tx, record_type, record_id).await? else {
        return Ok(Signed::NoChain);
    };
    if req.status != "pending" {
        return Ok(Signed::NoChain);
    }
    // The request row is locked so two approvers do not both complete it.
    sqlx::query("select 1 from approval_request where organisation_id = $1 and id = $2 for update")
        .bind(tx.org().0)
        .bind(req.id)
        .execute(tx.conn())
        .await?;
    let Some(me) = signer.membership_id else {
        return Err(refused(format!(
            "This needs the approval chain \"{}\": it is approved by its members.",
            req.chain_name
        )));
    };
    if req.submitted_by_membership_id == Some(me) {
        return Err(refused(
            "You submitted this for approval: someone else in its approval chain must approve it.",
        ));
    }
    let already: bool = sqlx::query_scalar(
        "select exists (select from approval_decision where organisation_id = $1
                          and request_id = $2 and membership_id = $3)",
    )
    .bind(tx.org().0)
    .bind(req.id)
    .bind(me)
    .fetch_one(tx.conn())
    .await?;
    if already {
        return Err(refused(
            "You have already approved this: the next approver in its chain must sign.",
        ));
    }
    let waiting: Vec<RequestStep> = req.waiting_for().into_iter().cloned().collect();
    let mut signed = None;
    for step in &waiting {
        if let Some(on_behalf) = may_sign(tx, signer, step, today).await? {
            signed = Some((step.id, on_behalf));
            break;
        }
    }
    let Some((step, on_behalf)) = signed else {
        let names: Vec<String> = waiting.iter().map(|s| s.approver_label.clone()).collect();
        return Err(refused(format!(
            "This is waiting for {} to approve it.",
            join_or(&names)
        )));
    };
    sqlx::query(
        "insert into approval_decision (organisation_id, id, request_id, step_id, decision,
                membership_id, on_behalf_of_membership_id, decided_by, decided_at)
         values ($1, $2, $3, $4, 'approved', $5, $6, $7, $8)",
    )
    .bind(tx.org().0)
    .bind(Uuid::now_v7())
    .bind(req.id)
    .bind(step)
    .bind(me)
    .bind(on_behalf)
    .bind(&signer.name)
    .bind(now)
    .execute(tx.conn())
    .await?;
    let left: Vec<String> = request(tx, record_type, record_id)
        .await?
        .map(|r| {
            r.waiting_for()
                .iter()
                .map(|s| s.approver_label.clone())
                .collect()
        })
        .unwrap_or_default();
    if left.is_empty() {
        sqlx::query(
            "update approval_request set status = 'approved', decided_at = $3
              where organisation_id = $1 and id = $2",
        )
        .bind(tx.org().0)
        .bind(req.id)
        .bind(now)
        .execute(tx.conn())
        .await?;
        Ok(Signed::Complete)
    } else {
        Ok(Signed::Waiting(left))
    }
}

fn join_or(names: &[String]) -> String {
    match names {
        [] => "its approvers".into(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// Rejects a pending request with a reason (any approver of a waiting step, or the owner).
pub async fn reject(
    tx: &mut TenantTx,
    record_type: &str,
    record_id: Uuid,
    signer: &Signer,
    reason: &str,
    today: Date,
    now: OffsetDateTime,
) -> Result<bool, LedgerError> {
    let Some(req) = request(tx, record_type, record_id).await? else {
        return Ok(false);
    };
    if req.status != "pending" {
        return Ok(false);
    }
    let Some(me) = signer.membership_id else {
        return Err(refused(
            "Only a member of the approval chain can send this back.",
        ));
    };
    let mut allowed = signer.is_owner;
    for step in req.waiting_for() {
        if may_sign(tx, signer, step, today).await?.is_some() {
            allowed = true;
        }
    }
    if !allowed {
        return Err(refused("Only an approver waited on can send this back."));
    }
    sqlx::query(
        "insert into approval_decision (organisation_id, id, request_id, decision, membership_id,
                decided_by, reason, decided_at)
         values ($1, $2, $3, 'rejected', $4, $5, $6, $7)",
    )
    .bind(tx.org().0)
    .bind(Uuid::now_v7())
    .bind(req.id)
    .bind(me)
    .bind(&signer.name)
    .bind(reason)
    .bind(now)
    .execute(tx.conn())
    .await?;
    sqlx::query(
        "update approval_request set status = 'rejected', decided_at = $3
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(req.id)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(true)
}

/// The Organisation Owner approves past the chain, with a reason. The decision is kept, and
/// every approver in the chain is e-mailed. Returns false when no request is pending.
pub async fn bypass(
    tx: &mut TenantTx,
    record_type: &str,
    record_id: Uuid,
    record_label: &str,
    signer: &Signer,
    reason: &str,
    now: OffsetDateTime,
) -> Result<bool, LedgerError> {
    let (Some(me), true) = (signer.membership_id, signer.is_owner) else {
        return Err(refused(
            "Only the Organisation Owner can bypass an approval chain.",
        ));
    };
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 300 {
        return Err(refused(
            "Say why the chain is bypassed (up to 300 characters).",
        ));
    }
    plain(reason, "reason")?;
    let Some(req) = request(tx, record_type, record_id).await? else {
        return Ok(false);
    };
    if req.status != "pending" {
        return Ok(false);
    }
    sqlx::query(
        "insert into approval_decision (organisation_id, id, request_id, decision, membership_id,
                decided_by, reason, decided_at)
         values ($1, $2, $3, 'bypassed', $4, $5, $6, $7)",
    )
    .bind(tx.org().0)
    .bind(Uuid::now_v7())
    .bind(req.id)
    .bind(me)
    .bind(&signer.name)
    .bind(reason)
    .bind(now)
    .execute(tx.conn())
    .await?;
    sqlx::query(
        "update approval_request set status = 'bypassed', decided_at = $3
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(req.id)
    .bind(now)
    .execute(tx.conn())
    .await?;
    // Everyone the chain names, or who holds a role it names.
    let people: Vec<(String, String)> = sqlx::query_as(
        "select distinct u.email, u.name
           from approval_request_step s
           join membership m on m.organisation_id = s.organisation_id and m.status = 'active'
                            and (m.id = s.membership_id or m.builtin_role = s.builtin_role
                                 or m.custom_role_id = s.custom_role_id)
           join staff_user u on u.id = m.user_id
          where s.organisation_id = $1 and s.request_id = $2",
    )
    .bind(tx.org().0)
    .bind(req.id)
    .fetch_all(tx.conn())
    .await?;
    for (address, name) in people {
        email::queue(
            tx,
            NewEmail {
                to_address: address,
                to_name: Some(name.clone()),
                subject: format!("Approval bypassed: {record_label}"),
                body_text: format!(
                    "Dear {name},\n\n{} bypassed the approval chain \"{}\" for {record_label}, which was waiting for your approval.\n\nReason given: {reason}\n\nThe record has been approved and posted. The bypass is kept in its history.\n",
                    signer.name, req.chain_name
                ),
                body_html: None,
                category: "approval".into(),
            },
        )
        .await?;
    }
    Ok(true)
}
