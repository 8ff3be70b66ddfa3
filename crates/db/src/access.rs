//! Who may do what in an organisation: memberships (role + scope), custom roles, estates and
//! sites for scope, invitations, admin-host sessions and hand-off codes, and the
//! organisation's record of sign-in activity (`auth_event`). All tenant data, reached only
//! through a [`TenantTx`].

use crate::email::{self, NewEmail};
use crate::error::DbError;
use crate::pools::AppPool;
use crate::staff::truncate;
use crate::tenant::{Actor, TenantContext, TenantTx};
use proplink_domain::authorize::Grants;
use proplink_domain::permissions::{BuiltInRole, Permission, Scope};
use proplink_domain::{ActorKind, Channel, OrgId};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// A session ends after this long without a request.
pub const IDLE_TIMEOUT: Duration = Duration::hours(1);
/// And after this long whatever happens.
pub const ABSOLUTE_TIMEOUT: Duration = Duration::hours(12);
/// A hand-off code is exchanged within this time, once.
pub const HANDOFF_TTL: Duration = Duration::seconds(60);
pub const INVITATION_TTL: Duration = Duration::days(14);
/// "Last seen" is written at most this often per session.
pub(crate) const TOUCH_EVERY: Duration = Duration::seconds(60);

// ---------------------------------------------------------------------------------------------
// Roles and scope

/// A member's role: one of the seven built in, or one the organisation made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChoice {
    BuiltIn(BuiltInRole),
    Custom(Uuid),
}

impl RoleChoice {
    /// Reads the form value used by every role picker: a built-in key or `custom:<uuid>`.
    pub fn parse(value: &str) -> Option<Self> {
        if let Some(id) = value.strip_prefix("custom:") {
            return Uuid::parse_str(id).ok().map(Self::Custom);
        }
        BuiltInRole::from_key(value).map(Self::BuiltIn)
    }

    pub fn form_value(&self) -> String {
        match self {
            Self::BuiltIn(r) => r.key().to_owned(),
            Self::Custom(id) => format!("custom:{id}"),
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CustomRole {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
    pub archived_at: Option<OffsetDateTime>,
}

pub async fn custom_roles(tx: &mut TenantTx) -> Result<Vec<CustomRole>, DbError> {
    Ok(sqlx::query_as(
        "select id, name, description, permissions, archived_at from custom_role
          where organisation_id = $1 order by archived_at nulls first, lower(name)",
    )
    .bind(tx.org().0)
    .fetch_all(tx.conn())
    .await?)
}

pub async fn custom_role(tx: &mut TenantTx, id: Uuid) -> Result<Option<CustomRole>, DbError> {
    Ok(sqlx::query_as(
        "select id, name, description, permissions, archived_at from custom_role
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

/// Creates or updates a custom role (`id` None creates). Permissions must be catalogue keys.
pub async fn save_custom_role(
    tx: &mut TenantTx,
    id: Option<Uuid>,
    name: &str,
    description: &str,
    permissions: &BTreeSet<Permission>,
) -> Result<Uuid, DbError> {
    let keys: Vec<&str> = permissions.iter().map(Permission::as_str).collect();
    match id {
        None => {
            let id = Uuid::now_v7();
            sqlx::query(
                "insert into custom_role (organisation_id, id, name, description, permissions)
                 values ($1, $2, $3, $4, $5)",
            )
            .bind(tx.org().0)
            .bind(id)
            .bind(name.trim())
            .bind(description.trim())
            .bind(&keys)
            .execute(tx.conn())
            .await?;
            Ok(id)
        }
        Some(id) => {
            let n = sqlx::query(
                "update custom_role set name = $3, description = $4, permissions = $5
                  where organisation_id = $1 and id = $2 and archived_at is null",
            )
            .bind(tx.org().0)
            .bind(id)
            .bind(name.trim())
            .bind(description.trim())
            .bind(&keys)
            .execute(tx.conn())
            .await?
            .rows_affected();
            if n == 0 {
                return Err(DbError::NotFound);
            }
            Ok(id)
        }
    }
}

/// Archives a custom role; its members keep the role but it grants nothing until they are
/// given another. Returns how many active members held it.
pub async fn archive_custom_role(
    tx: &mut TenantTx,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<i64, DbError> {
    let n = sqlx::query(
        "update custom_role set archived_at = $3
          where organisation_id = $1 and id = $2 and archived_at is null",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(now)
    .execute(tx.conn())
    .await?
    .rows_affected();
    if n == 0 {
        return Err(DbError::NotFound);
    }
    Ok(sqlx::query_scalar(
        "select count(*) from membership where organisation_id = $1 and custom_role_id = $2 and status <> 'deactivated'",
    )
    .bind(tx.org().0)
    .bind(id)
    .fetch_one(tx.conn())
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct Place {
    pub id: Uuid,
    pub reference: String,
    pub name: String,
    pub estate_id: Option<Uuid>,
}

/// Live estates (estate_id is None) in reference order.
pub async fn estates(tx: &mut TenantTx) -> Result<Vec<Place>, DbError> {
    Ok(sqlx::query_as(
        "select id, reference, name, null::uuid as estate_id from estate
          where organisation_id = $1 and archived_at is null order by lower(reference)",
    )
    .bind(tx.org().0)
    .fetch_all(tx.conn())
    .await?)
}

/// Live sites in reference order.
pub async fn sites(tx: &mut TenantTx) -> Result<Vec<Place>, DbError> {
    Ok(sqlx::query_as(
        "select id, reference, name, estate_id from site
          where organisation_id = $1 and archived_at is null order by lower(reference)",
    )
    .bind(tx.org().0)
    .fetch_all(tx.conn())
    .await?)
}

/// Headline numbers for the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub estates: i64,
    pub active_members: i64,
    pub invited_members: i64,
}

/// What the dashboard shows, read in one statement: live sites in reference order, the headline
/// counts, and the newest `recent` audit events.
#[derive(Debug, Clone)]
pub struct DashboardFacts {
    pub sites: Vec<Place>,
    pub counts: Counts,
    pub recent: Vec<crate::audit::AuditEvent>,
}

#[derive(sqlx::FromRow)]
struct DashboardRow {
    estates: i64,
    active_members: i64,
    invited_members: i64,
    sites: sqlx::types::Json<Vec<Place>>,
    recent: sqlx::types::Json<Vec<crate::audit::AuditEvent>>,
}

/// The organisation's dashboard facts, reused from the session cache while they may be trusted
/// (see [`crate::session_cache`]), otherwise read afresh in a transaction of `ctx`.
pub async fn live_dashboard_facts(
    pool: &AppPool,
    ctx: &TenantContext,
    recent: i64,
) -> Result<Arc<DashboardFacts>, DbError> {
    let cache = pool.sessions();
    let epoch = cache.epoch(ctx.org);
    let read_at = Instant::now();
    if let Some(epoch) = epoch
        && let Some(hit) = cache.dashboard_facts(ctx.org, recent, epoch, read_at)
    {
        return Ok(hit);
    }
    let mut tx = pool.begin(ctx).await?;
    let facts = Arc::new(dashboard_facts(&mut tx, recent).await?);
    tx.end_reading();
    if let Some(epoch) = epoch {
        cache.keep_dashboard_facts(ctx.org, recent, epoch, read_at, Arc::clone(&facts));
    }
    Ok(facts)
}

pub async fn dashboard_facts(tx: &mut TenantTx, recent: i64) -> Result<DashboardFacts, DbError> {
    let row: DashboardRow = sqlx::query_as(
        "select (select count(*) from estate where organisation_id = $1 and archived_at is null) as estates,
                (select count(*) from membership where organisation_id = $1 and status = 'active') as active_members,
                (select count(*) from membership where organisation_id = $1 and status = 'invited') as invited_members,
                coalesce((select json_agg(json_build_object('id', id, 'reference', reference, 'name', name,
                                                            'estate_id', estate_id)
                                          order by lower(reference))
                            from site where organisation_id = $1 and archived_at is null), '[]') as sites,
                coalesce((select json_agg(e order by e.seq desc)
                            from (select seq, table_name, record_id, operation, changes, actor_id, actor_kind,
                                         actor_name, channel, request_id, occurred_at
                                    from audit_event where organisation_id = $1
                                   order by seq desc limit $2) e), '[]') as recent",
    )
    .bind(tx.org().0)
    .bind(recent)
    .fetch_one(tx.conn())
    .await?;
    Ok(DashboardFacts {
        sites: row.sites.0,
        counts: Counts {
            estates: row.estates,
            active_members: row.active_members,
            invited_members: row.invited_members,
        },
        recent: row.recent.0,
    })
}

pub async fn create_estate(
    tx: &mut TenantTx,
    reference: &str,
    name: &str,
) -> Result<Uuid, DbError> {
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into estate (organisation_id, id, reference, name) values ($1, $2, $3, $4)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(reference.trim())
    .bind(name.trim())
    .execute(tx.conn())
    .await?;
    Ok(id)
}

pub async fn create_site(
    tx: &mut TenantTx,
    estate: Option<Uuid>,
    reference: &str,
    name: &str,
) -> Result<Uuid, DbError> {
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into site (organisation_id, id, estate_id, reference, name) values ($1, $2, $3, $4, $5)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(estate)
    .bind(reference.trim())
    .bind(name.trim())
    .execute(tx.conn())
    .await?;
    Ok(id)
}

// ---------------------------------------------------------------------------------------------
// Memberships

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    pub membership_id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub builtin_role: Option<String>,
    pub custom_role_id: Option<Uuid>,
    pub custom_role_name: Option<String>,
    pub scope: Option<String>,
    pub status: String,
    pub is_owner: bool,
    pub created_at: OffsetDateTime,
    pub invitation_id: Option<Uuid>,
    pub invitation_status: Option<String>,
    pub invitation_expires_at: Option<OffsetDateTime>,
    pub scope_items: Vec<String>,
}

impl MemberRow {
    pub fn role(&self) -> Option<RoleChoice> {
        match (&self.builtin_role, self.custom_role_id) {
            (Some(k), _) => BuiltInRole::from_key(k).map(RoleChoice::BuiltIn),
            (None, Some(id)) => Some(RoleChoice::Custom(id)),
            _ => None,
        }
    }

    pub fn role_label(&self) -> String {
        match (&self.builtin_role, &self.custom_role_name) {
            (Some(k), _) => BuiltInRole::from_key(k)
                .map(|r| r.name().to_owned())
                .unwrap_or_else(|| k.clone()),
            (None, Some(name)) => name.clone(),
            _ => "No role".to_owned(),
        }
    }

    pub fn scope_label(&self) -> String {
        match self.scope.as_deref() {
            Some("all_sites") => "All sites".to_owned(),
            Some("sites") => format!("Sites: {}", self.scope_items.join(", ")),
            Some("estates") => format!("Estates: {}", self.scope_items.join(", ")),
            _ => "No scope".to_owned(),
        }
    }

    /// "Invited", "Invitation expired", "Active", "Deactivated"…
    pub fn status_label(&self, now: OffsetDateTime) -> &'static str {
        match self.status.as_str() {
            "active" => "Active",
            "deactivated" => "Deactivated",
            _ => match (
                self.invitation_status.as_deref(),
                self.invitation_expires_at,
            ) {
                (Some("revoked"), _) => "Invitation revoked",
                (Some("pending"), Some(t)) if t <= now => "Invitation expired",
                _ => "Invited",
            },
        }
    }
}

macro_rules! member_select {
    ($where:literal) => {
        concat!(
            "select m.id as membership_id, m.user_id, u.email,
                    case when m.status = 'invited' then coalesce(i.invitee_name, u.name) else u.name end as name,
                    m.builtin_role, m.custom_role_id,
                    r.name as custom_role_name, m.scope, m.status, m.is_owner, m.created_at,
                    i.id as invitation_id, i.status as invitation_status, i.expires_at as invitation_expires_at,
                    coalesce((select array_agg(coalesce(s.reference, e.reference) order by coalesce(s.reference, e.reference))
                                from membership_scope ms
                                left join site s on s.organisation_id = ms.organisation_id and s.id = ms.site_id
                                left join estate e on e.organisation_id = ms.organisation_id and e.id = ms.estate_id
                               where ms.organisation_id = m.organisation_id and ms.membership_id = m.id), '{}') as scope_items
               from membership m
               join staff_user u on u.id = m.user_id
               left join custom_role r on r.organisation_id = m.organisation_id and r.id = m.custom_role_id
               left join lateral (select id, status, expires_at, invitee_name from invitation
                                   where organisation_id = m.organisation_id and membership_id = m.id
                                   order by created_at desc limit 1) i on true
              where m.organisation_id = $1 ",
            $where
        )
    };
}

pub async fn members(tx: &mut TenantTx) -> Result<Vec<MemberRow>, DbError> {
    Ok(sqlx::query_as(member_select!(
        "order by m.status = 'deactivated', lower(u.name)"
    ))
    .bind(tx.org().0)
    .fetch_all(tx.conn())
    .await?)
}

pub async fn member(tx: &mut TenantTx, membership_id: Uuid) -> Result<Option<MemberRow>, DbError> {
    Ok(sqlx::query_as(member_select!("and m.id = $2"))
        .bind(tx.org().0)
        .bind(membership_id)
        .fetch_optional(tx.conn())
        .await?)
}

pub async fn member_by_user(
    tx: &mut TenantTx,
    user_id: Uuid,
) -> Result<Option<MemberRow>, DbError> {
    Ok(sqlx::query_as(member_select!("and m.user_id = $2"))
        .bind(tx.org().0)
        .bind(user_id)
        .fetch_optional(tx.conn())
        .await?)
}

/// A member's grants from their membership row: an archived custom role (permissions None)
/// grants nothing; a scope of sites or estates lists them.
fn grants_from(
    builtin_role: Option<&str>,
    custom_permissions: Option<&[String]>,
    scope: Option<&str>,
    sites: &[Uuid],
    estates: &[Uuid],
) -> Grants {
    let permissions = match (
        builtin_role.and_then(BuiltInRole::from_key),
        custom_permissions,
    ) {
        (Some(role), _) => role.permissions(),
        (None, Some(keys)) => keys.iter().filter_map(|k| Permission::parse(k)).collect(),
        _ => BTreeSet::new(),
    };
    let scope = match scope {
        Some("all_sites") => Some(Scope::AllSites),
        Some("sites") => Some(Scope::Sites(sites.iter().copied().collect())),
        Some("estates") => Some(Scope::Estates(estates.iter().copied().collect())),
        _ => None,
    };
    Grants { permissions, scope }
}

/// The permissions and scope of a membership, as the authorisation check needs them. An
/// archived custom role grants nothing.
pub async fn grants(tx: &mut TenantTx, membership_id: Uuid) -> Result<Grants, DbError> {
    /// (built-in role, live custom role's permissions, scope kind).
    type Row = (Option<String>, Option<Vec<String>>, Option<String>);
    let row: Option<Row> = sqlx::query_as(
        "select m.builtin_role, case when r.archived_at is null then r.permissions end, m.scope
           from membership m
           left join custom_role r on r.organisation_id = m.organisation_id and r.id = m.custom_role_id
          where m.organisation_id = $1 and m.id = $2",
    )
    .bind(tx.org().0)
    .bind(membership_id)
    .fetch_optional(tx.conn())
    .await?;
    let Some((builtin, custom, scope)) = row else {
        return Err(DbError::NotFound);
    };
    let items: Vec<(Option<Uuid>, Option<Uuid>)> = sqlx::query_as(
        "select site_id, estate_id from membership_scope where organisation_id = $1 and membership_id = $2",
    )
    .bind(tx.org().0)
    .bind(membership_id)
    .fetch_all(tx.conn())
    .await?;
    let sites: Vec<Uuid> = items.iter().filter_map(|(s, _)| *s).collect();
    let estates: Vec<Uuid> = items.iter().filter_map(|(_, e)| *e).collect();
    Ok(grants_from(
        builtin.as_deref(),
        custom.as_deref(),
        scope.as_deref(),
        &sites,
        &estates,
    ))
}

/// Sets a member's role. The Organisation Owner's role cannot change.
pub async fn set_role(
    tx: &mut TenantTx,
    membership_id: Uuid,
    role: RoleChoice,
) -> Result<(), DbError> {
    let (builtin, custom) = match role {
        RoleChoice::BuiltIn(r) => (Some(r.key()), None),
        RoleChoice::Custom(id) => (None, Some(id)),
    };
    let n = sqlx::query(
        "update membership set builtin_role = $3, custom_role_id = $4
          where organisation_id = $1 and id = $2 and not is_owner",
    )
    .bind(tx.org().0)
    .bind(membership_id)
    .bind(builtin)
    .bind(custom)
    .execute(tx.conn())
    .await?
    .rows_affected();
    if n == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// Sets a member's scope (replacing the sites or estates it lists).
pub async fn set_scope(
    tx: &mut TenantTx,
    membership_id: Uuid,
    scope: &Scope,
) -> Result<(), DbError> {
    let kind = match scope {
        Scope::AllSites => "all_sites",
        Scope::Sites(_) => "sites",
        Scope::Estates(_) => "estates",
    };
    let n = sqlx::query("update membership set scope = $3 where organisation_id = $1 and id = $2")
        .bind(tx.org().0)
        .bind(membership_id)
        .bind(kind)
        .execute(tx.conn())
        .await?
        .rows_affected();
    if n == 0 {
        return Err(DbError::NotFound);
    }
    sqlx::query("delete from membership_scope where organisation_id = $1 and membership_id = $2")
        .bind(tx.org().0)
        .bind(membership_id)
        .execute(tx.conn())
        .await?;
    let (sites, estates): (Vec<Uuid>, Vec<Uuid>) = match scope {
        Scope::AllSites => (vec![], vec![]),
        Scope::Sites(s) => (s.iter().copied().collect(), vec![]),
        Scope::Estates(e) => (vec![], e.iter().copied().collect()),
    };
    for site in sites {
        sqlx::query(
            "insert into membership_scope (organisation_id, id, membership_id, site_id) values ($1, $2, $3, $4)",
        )
        .bind(tx.org().0)
        .bind(Uuid::now_v7())
        .bind(membership_id)
        .bind(site)
        .execute(tx.conn())
        .await?;
    }
    for estate in estates {
        sqlx::query(
            "insert into membership_scope (organisation_id, id, membership_id, estate_id) values ($1, $2, $3, $4)",
        )
        .bind(tx.org().0)
        .bind(Uuid::now_v7())
        .bind(membership_id)
        .bind(estate)
        .execute(tx.conn())
        .await?;
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipChangeError {
    #[error("The Organisation Owner cannot be deactivated.")]
    Owner,
    #[error("That person is not a member of this organisation.")]
    NotFound,
    #[error("You cannot deactivate yourself.")]
    Yourself,
}

/// Deactivates a member: every session of theirs in this organisation ends now, pending
/// invitations are revoked; the account and its history stay.
pub async fn deactivate(
    tx: &mut TenantTx,
    membership_id: Uuid,
    by_user: Uuid,
    now: OffsetDateTime,
) -> Result<Result<(), MembershipChangeError>, DbError> {
    let Some(row) = member(tx, membership_id).await? else {
        return Ok(Err(MembershipChangeError::NotFound));
    };
    if row.is_owner {
        return Ok(Err(MembershipChangeError::Owner));
    }
    if row.user_id == by_user {
        return Ok(Err(MembershipChangeError::Yourself));
    }
    sqlx::query(
        "update membership set status = 'deactivated', deactivated_at = $3
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(membership_id)
    .bind(now)
    .execute(tx.conn())
    .await?;
    end_member_sessions(tx, membership_id, "deactivated", now).await?;
    sqlx::query(
        "update invitation set status = 'revoked', revoked_at = $3
          where organisation_id = $1 and membership_id = $2 and status = 'pending'",
    )
    .bind(tx.org().0)
    .bind(membership_id)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(Ok(()))
}

/// Reactivates a deactivated member (who signs in again as before). A member deactivated
/// before ever accepting goes back to "invited" and needs a fresh invitation.
pub async fn reactivate(tx: &mut TenantTx, membership_id: Uuid) -> Result<bool, DbError> {
    Ok(sqlx::query(
        "update membership
            set status = case when activated_at is null then 'invited' else 'active' end,
                deactivated_at = null
          where organisation_id = $1 and id = $2 and status = 'deactivated'",
    )
    .bind(tx.org().0)
    .bind(membership_id)
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1)
}

// ---------------------------------------------------------------------------------------------
// Invitations

#[derive(Debug, Clone)]
pub struct NewInvitation {
    pub email: String,
    pub name: String,
    pub role: RoleChoice,
    pub scope: Scope,
    pub welcome_message: Option<String>,
    pub is_owner: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    #[error("{0} is already a member of this organisation.")]
    AlreadyMember(String),
    #[error("{0} was deactivated: reactivate them from their page instead.")]
    Deactivated(String),
    #[error("That role does not exist or is archived.")]
    UnknownRole,
}

/// The e-mail of an invitation (first sending and resends).
pub fn invitation_email(
    to_name: &str,
    to_address: &str,
    organisation_name: &str,
    invited_by: Option<&str>,
    welcome: Option<&str>,
    url: &str,
) -> NewEmail {
    let by = invited_by
        .map(|n| format!("{n} has invited you"))
        .unwrap_or_else(|| "You have been invited".to_owned());
    let welcome = welcome
        .filter(|w| !w.trim().is_empty())
        .map(|w| format!("\n\n{}", w.trim()))
        .unwrap_or_default();
    NewEmail {
        to_address: to_address.to_owned(),
        to_name: Some(to_name.to_owned()),
        // The link only in the body: bodies are redacted from the audit log, subjects are not.
        subject: format!("You're invited to {organisation_name} on PropLink"),
        body_text: format!(
            "Hello {to_name},\n\n{by} to join {organisation_name} on PropLink.{welcome}\n\nAccept the invitation here (the link works for 14 days):\n\n    {url}\n\nYou will choose a password and set up your second sign-in step.\n"
        ),
        body_html: None,
        category: "invitation".into(),
    }
}

/// Invites a person: finds or creates their staff user, creates the membership (status
/// invited) with its role and scope, the invitation (token hash) and queues the e-mail.
/// `url_for` turns the invitation's raw token into the link.
#[allow(clippy::too_many_arguments)]
pub async fn invite(
    tx: &mut TenantTx,
    new: &NewInvitation,
    token_hash: &str,
    url: &str,
    organisation_name: &str,
    invited_by: Option<&str>,
    now: OffsetDateTime,
) -> Result<Result<Uuid, InviteError>, DbError> {
    if let RoleChoice::Custom(id) = new.role
        && custom_role(tx, id)
            .await?
            .is_none_or(|r| r.archived_at.is_some())
    {
        return Ok(Err(InviteError::UnknownRole));
    }
    let user_id = crate::staff::find_or_create(tx.conn(), &new.email, &new.name).await?;
    if let Some(existing) = member_by_user(tx, user_id).await? {
        return Ok(Err(if existing.status == "deactivated" {
            InviteError::Deactivated(new.email.clone())
        } else {
            InviteError::AlreadyMember(new.email.clone())
        }));
    }
    let membership_id = Uuid::now_v7();
    let (builtin, custom) = match new.role {
        RoleChoice::BuiltIn(r) => (Some(r.key()), None),
        RoleChoice::Custom(id) => (None, Some(id)),
    };
    sqlx::query(
        "insert into membership (organisation_id, id, user_id, builtin_role, custom_role_id, is_owner)
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tx.org().0)
    .bind(membership_id)
    .bind(user_id)
    .bind(builtin)
    .bind(custom)
    .bind(new.is_owner)
    .execute(tx.conn())
    .await?;
    set_scope(tx, membership_id, &new.scope).await?;
    let invitation_id = Uuid::now_v7();
    sqlx::query(
        "insert into invitation (organisation_id, id, membership_id, email, token_hash, welcome_message,
                                 invited_by_name, expires_at, created_at, invitee_name)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(tx.org().0)
    .bind(invitation_id)
    .bind(membership_id)
    .bind(&new.email)
    .bind(token_hash)
    .bind(new.welcome_message.as_deref().filter(|w| !w.trim().is_empty()))
    .bind(invited_by)
    .bind(now + INVITATION_TTL)
    .bind(now)
    .bind(new.name.trim())
    .execute(tx.conn())
    .await?;
    email::queue(
        tx,
        invitation_email(
            &new.name,
            &new.email,
            organisation_name,
            invited_by,
            new.welcome_message.as_deref(),
            url,
        ),
    )
    .await?;
    Ok(Ok(membership_id))
}

/// Resends a member's invitation with a fresh token and 14 days. False when the member has no
/// invitation to resend (already active or deactivated).
pub async fn resend_invitation(
    tx: &mut TenantTx,
    membership_id: Uuid,
    token_hash: &str,
    url: &str,
    organisation_name: &str,
    now: OffsetDateTime,
) -> Result<bool, DbError> {
    let Some(row) = member(tx, membership_id).await? else {
        return Ok(false);
    };
    if row.status != "invited" {
        return Ok(false);
    }
    let welcome: Option<(Option<String>, Option<String>)> = sqlx::query_as(
        "select welcome_message, invited_by_name from invitation
          where organisation_id = $1 and membership_id = $2 order by created_at desc limit 1",
    )
    .bind(tx.org().0)
    .bind(membership_id)
    .fetch_optional(tx.conn())
    .await?;
    let (welcome, by) = welcome.unwrap_or_default();
    sqlx::query(
        "update invitation set status = 'revoked', revoked_at = $3
          where organisation_id = $1 and membership_id = $2 and status = 'pending'",
    )
    .bind(tx.org().0)
    .bind(membership_id)
    .bind(now)
    .execute(tx.conn())
    .await?;
    sqlx::query(
        "insert into invitation (organisation_id, id, membership_id, email, token_hash, welcome_message,
                                 invited_by_name, expires_at, created_at, invitee_name)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(tx.org().0)
    .bind(Uuid::now_v7())
    .bind(membership_id)
    .bind(&row.email)
    .bind(token_hash)
    .bind(&welcome)
    .bind(&by)
    .bind(now + INVITATION_TTL)
    .bind(now)
    .bind(&row.name)
    .execute(tx.conn())
    .await?;
    email::queue(
        tx,
        invitation_email(
            &row.name,
            &row.email,
            organisation_name,
            by.as_deref(),
            welcome.as_deref(),
            url,
        ),
    )
    .await?;
    Ok(true)
}

/// Revokes a member's pending invitation. False if there was none.
pub async fn revoke_invitation(
    tx: &mut TenantTx,
    membership_id: Uuid,
    now: OffsetDateTime,
) -> Result<bool, DbError> {
    Ok(sqlx::query(
        "update invitation set status = 'revoked', revoked_at = $3
          where organisation_id = $1 and membership_id = $2 and status = 'pending'",
    )
    .bind(tx.org().0)
    .bind(membership_id)
    .bind(now)
    .execute(tx.conn())
    .await?
    .rows_affected()
        > 0)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationView {
    pub id: Uuid,
    pub membership_id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub status: String,
    pub expires_at: OffsetDateTime,
    pub has_password: bool,
    pub membership_status: String,
}

/// Why an invitation link cannot be used, in words for the person who followed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvitationRefusal {
    #[error("This invitation has expired. Ask the person who invited you to send a new one.")]
    Expired,
    #[error(
        "This invitation has been withdrawn. Ask the person who invited you if you still need access."
    )]
    Revoked,
    #[error("This invitation has already been accepted. Sign in instead.")]
    Accepted,
    #[error(
        "This invitation link is not valid. Check that you copied the whole link from the e-mail."
    )]
    Unknown,
}

pub async fn find_invitation(
    tx: &mut TenantTx,
    token_hash: &str,
    now: OffsetDateTime,
) -> Result<Result<InvitationView, InvitationRefusal>, DbError> {
    let found: Option<InvitationView> = sqlx::query_as(
        "select i.id, i.membership_id, m.user_id, i.email, u.name, i.status, i.expires_at,
                u.password_hash is not null as has_password, m.status as membership_status
           from invitation i
           join membership m on m.organisation_id = i.organisation_id and m.id = i.membership_id
           join staff_user u on u.id = m.user_id
          where i.organisation_id = $1 and i.token_hash = $2",
    )
    .bind(tx.org().0)
    .bind(token_hash)
    .fetch_optional(tx.conn())
    .await?;
    Ok(match found {
        None => Err(InvitationRefusal::Unknown),
        Some(i) if i.status == "accepted" => Err(InvitationRefusal::Accepted),
        Some(i) if i.status == "revoked" || i.membership_status == "deactivated" => {
            Err(InvitationRefusal::Revoked)
        }
        Some(i) if i.expires_at <= now => Err(InvitationRefusal::Expired),
        Some(i) => Ok(i),
    })
}

/// Accepts a live invitation: the membership becomes active. False if it was accepted,
/// revoked or expired in the meantime.
pub async fn accept_invitation(
    tx: &mut TenantTx,
    invitation_id: Uuid,
    now: OffsetDateTime,
) -> Result<bool, DbError> {
    let membership: Option<Uuid> = sqlx::query_scalar(
        "update invitation set status = 'accepted', accepted_at = $3
          where organisation_id = $1 and id = $2 and status = 'pending' and expires_at > $3
      returning membership_id",
    )
    .bind(tx.org().0)
    .bind(invitation_id)
    .bind(now)
    .fetch_optional(tx.conn())
    .await?;
    let Some(membership) = membership else {
        return Ok(false);
    };
    let n = sqlx::query(
        "update membership set status = 'active', activated_at = $3
          where organisation_id = $1 and id = $2 and status = 'invited'",
    )
    .bind(tx.org().0)
    .bind(membership)
    .bind(now)
    .execute(tx.conn())
    .await?
    .rows_affected();
    Ok(n == 1)
}

// ---------------------------------------------------------------------------------------------
// Sessions and hand-off codes

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionMember {
    pub session_id: Uuid,
    pub membership_id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub is_owner: bool,
    pub last_seen_at: OffsetDateTime,
}

/// Everything a request needs about its signed-in member, read in one statement: the live
/// session, the member's permissions and scope, and the organisation's modules. A session is
/// live when it has not ended, is within its idle and absolute timeouts, its member is active,
/// and the person has not signed out everywhere since it began. "Last seen" is noted at most
/// once a minute.
#[derive(Debug, Clone)]
pub struct MemberSession {
    pub session: SessionMember,
    pub grants: Grants,
    pub modules: Vec<String>,
    pub setup_done: bool,
    pub absolute_expires_at: OffsetDateTime,
    /// Whether "last seen" was written (the caller commits then; otherwise nothing was written).
    pub touched: bool,
}

#[derive(sqlx::FromRow)]
struct MemberSessionRow {
    session_id: Uuid,
    membership_id: Uuid,
    user_id: Uuid,
    email: String,
    name: String,
    is_owner: bool,
    last_seen_at: OffsetDateTime,
    absolute_expires_at: OffsetDateTime,
    builtin_role: Option<String>,
    custom_permissions: Option<Vec<String>>,
    scope: Option<String>,
    scope_sites: Vec<Uuid>,
    scope_estates: Vec<Uuid>,
    modules: Option<Vec<String>>,
    setup_completed_at: Option<OffsetDateTime>,
}

/// The live session behind this token, from the session cache when it may be trusted (see
/// [`crate::session_cache`]), otherwise from the database (noting "last seen" when due).
pub async fn live_member_session(
    pool: &AppPool,
    ctx: &TenantContext,
    token_hash: &str,
    now: OffsetDateTime,
) -> Result<Option<MemberSession>, DbError> {
    let cache = pool.sessions();
    let epoch = cache.epoch(ctx.org);
    if let Some(epoch) = epoch
        && let Some(hit) = cache.get(ctx.org, token_hash, epoch, now)
    {
        return Ok(Some(hit));
    }
    let mut tx = pool.begin(ctx).await?;
    let found = find_member_session(&mut tx, token_hash, now).await?;
    match &found {
        Some(f) if f.touched => tx.commit_keeping_sessions().await?,
        _ => tx.end_reading(),
    }
    if let (Some(epoch), Some(f)) = (epoch, &found) {
        cache.put(ctx.org, token_hash, epoch, f);
    }
    Ok(found)
}

pub async fn find_member_session(
    tx: &mut TenantTx,
    token_hash: &str,
    now: OffsetDateTime,
) -> Result<Option<MemberSession>, DbError> {
    let row: Option<MemberSessionRow> = sqlx::query_as(
        "select s.id as session_id, s.membership_id, s.user_id, u.email, u.name, m.is_owner, s.last_seen_at,
                s.absolute_expires_at, m.builtin_role, case when r.archived_at is null then r.permissions end as custom_permissions,
                m.scope,
                coalesce(array(select ms.site_id from membership_scope ms
                                where ms.organisation_id = m.organisation_id and ms.membership_id = m.id
                                  and ms.site_id is not null), '{}') as scope_sites,
                coalesce(array(select ms.estate_id from membership_scope ms
                                where ms.organisation_id = m.organisation_id and ms.membership_id = m.id
                                  and ms.estate_id is not null), '{}') as scope_estates,
                p.modules, p.setup_completed_at
           from staff_session s
           join membership m on m.organisation_id = s.organisation_id and m.id = s.membership_id
           join staff_user u on u.id = s.user_id
           left join custom_role r on r.organisation_id = m.organisation_id and r.id = m.custom_role_id
           left join organisation_profile p on p.organisation_id = s.organisation_id
          where s.organisation_id = $1 and s.token_hash = $2 and s.ended_at is null
            and s.absolute_expires_at > $3 and s.last_seen_at > $4
            and m.status = 'active' and s.created_at >= u.sessions_valid_after",
    )
    .bind(tx.org().0)
    .bind(token_hash)
    .bind(now)
    .bind(now - IDLE_TIMEOUT)
    .fetch_optional(tx.conn())
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let touched = now - row.last_seen_at > TOUCH_EVERY;
    if touched {
        sqlx::query(
            "update staff_session set last_seen_at = $3 where organisation_id = $1 and id = $2",
        )
        .bind(tx.org().0)
        .bind(row.session_id)
        .bind(now)
        .execute(tx.conn())
        .await?;
    }
    let grants = grants_from(
        row.builtin_role.as_deref(),
        row.custom_permissions.as_deref(),
        row.scope.as_deref(),
        &row.scope_sites,
        &row.scope_estates,
    );
    Ok(Some(MemberSession {
        session: SessionMember {
            session_id: row.session_id,
            membership_id: row.membership_id,
            user_id: row.user_id,
            email: row.email,
            name: row.name,
            is_owner: row.is_owner,
            last_seen_at: if touched { now } else { row.last_seen_at },
        },
        grants,
        modules: row.modules.unwrap_or_else(|| {
            crate::profile::MODULES
                .iter()
                .map(|(k, _)| (*k).to_owned())
                .collect()
        }),
        setup_done: row.setup_completed_at.is_some(),
        absolute_expires_at: row.absolute_expires_at,
        touched,
    }))
}

/// Starts a session on this organisation's host (a sign-in, audited as the new row).
pub async fn start_session(
    tx: &mut TenantTx,
    membership_id: Uuid,
    user_id: Uuid,
    token_hash: &str,
    ip: Option<&str>,
    user_agent: Option<&str>,
    now: OffsetDateTime,
) -> Result<Uuid, DbError> {
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into staff_session (organisation_id, id, membership_id, user_id, token_hash, created_at,
                                    last_seen_at, absolute_expires_at, ip, user_agent)
         values ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(membership_id)
    .bind(user_id)
    .bind(token_hash)
    .bind(now)
    .bind(now + ABSOLUTE_TIMEOUT)
    .bind(ip)
    .bind(user_agent.map(|ua| truncate(ua, 300)))
    .execute(tx.conn())
    .await?;
    Ok(id)
}

pub async fn end_session(
    tx: &mut TenantTx,
    session_id: Uuid,
    reason: &str,
    now: OffsetDateTime,
) -> Result<(), DbError> {
    sqlx::query(
        "update staff_session set ended_at = $3, ended_reason = $4
          where organisation_id = $1 and id = $2 and ended_at is null",
    )
    .bind(tx.org().0)
    .bind(session_id)
    .bind(now)
    .bind(reason)
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub async fn end_member_sessions(
    tx: &mut TenantTx,
    membership_id: Uuid,
    reason: &str,
    now: OffsetDateTime,
) -> Result<u64, DbError> {
    Ok(sqlx::query(
        "update staff_session set ended_at = $3, ended_reason = $4
          where organisation_id = $1 and membership_id = $2 and ended_at is null",
    )
    .bind(tx.org().0)
    .bind(membership_id)
    .bind(now)
    .bind(reason)
    .execute(tx.conn())
    .await?
    .rows_affected())
}

/// Mints a hand-off code for an active membership (the caller has verified the person).
pub async fn mint_handoff(
    tx: &mut TenantTx,
    membership_id: Uuid,
    user_id: Uuid,
    code_hash: &str,
    now: OffsetDateTime,
) -> Result<(), DbError> {
    sqlx::query(
        "insert into session_handoff (organisation_id, id, membership_id, user_id, code_hash, expires_at, created_at)
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tx.org().0)
    .bind(Uuid::now_v7())
    .bind(membership_id)
    .bind(user_id)
    .bind(code_hash)
    .bind(now + HANDOFF_TTL)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Uses up a hand-off code: (membership, user) when it is live and its member still active.
pub async fn redeem_handoff(
    tx: &mut TenantTx,
    code_hash: &str,
    now: OffsetDateTime,
) -> Result<Option<(Uuid, Uuid)>, DbError> {
    let used: Option<(Uuid, Uuid)> = sqlx::query_as(
        "update session_handoff h set used_at = $3
           from membership m, staff_user u
          where h.organisation_id = $1 and h.code_hash = $2 and h.used_at is null and h.expires_at > $3
            and m.organisation_id = h.organisation_id and m.id = h.membership_id and m.status = 'active'
            and u.id = h.user_id and h.created_at >= u.sessions_valid_after
      returning h.membership_id, h.user_id",
    )
    .bind(tx.org().0)
    .bind(code_hash)
    .bind(now)
    .fetch_optional(tx.conn())
    .await?;
    Ok(used)
}

// ---------------------------------------------------------------------------------------------
// A person's organisations (the picker)

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrgChoice {
    pub organisation_id: Uuid,
    pub membership_id: Uuid,
    pub slug: String,
    pub name: String,
    pub org_status: String,
}

/// The organisations where this person has an active membership (closed ones left out). Uses
/// the `own_memberships` policy: call only for a person who has passed their second factor.
pub async fn organisations_of(pool: &AppPool, user_id: Uuid) -> Result<Vec<OrgChoice>, DbError> {
    let mut tx = pool.raw().begin().await?;
    sqlx::query("select set_config('app.staff_user_id', $1, true)")
        .bind(user_id.to_string())
        .execute(&mut *tx)
        .await?;
    let rows = sqlx::query_as(
        "select o.id as organisation_id, m.id as membership_id, o.slug, o.name, o.status as org_status
           from membership m join organisation o on o.id = m.organisation_id
          where m.user_id = $1 and m.status = 'active' and o.status <> 'closed'
          order by lower(o.name)",
    )
    .bind(user_id)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}

// ---------------------------------------------------------------------------------------------
// Sign-in activity

#[derive(Debug, Clone)]
pub struct AuthEvent<'a> {
    pub user_id: Option<Uuid>,
    pub email: &'a str,
    pub kind: &'a str,
    pub detail: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

pub async fn record_auth_event(tx: &mut TenantTx, event: &AuthEvent<'_>) -> Result<(), DbError> {
    sqlx::query(
        "insert into auth_event (organisation_id, id, user_id, email, kind, detail, ip, user_agent)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(tx.org().0)
    .bind(Uuid::now_v7())
    .bind(event.user_id)
    .bind(truncate(event.email, 254))
    .bind(event.kind)
    .bind(event.detail.map(|d| truncate(d, 500)))
    .bind(event.ip)
    .bind(event.user_agent.map(|ua| truncate(ua, 300)))
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Records the event in every organisation where the person is an active member, so each
/// organisation's audit log shows its members' sign-in activity. Organisations that have only
/// invited them (or deactivated them) learn nothing of it; closed ones are skipped.
pub async fn record_auth_event_everywhere(
    pool: &AppPool,
    actor_name: &str,
    event: &AuthEvent<'_>,
    channel: Channel,
    request_id: Option<String>,
) -> Result<(), DbError> {
    let Some(user_id) = event.user_id else {
        return Ok(());
    };
    let orgs: Vec<Uuid> = {
        let mut tx = pool.raw().begin().await?;
        sqlx::query("select set_config('app.staff_user_id', $1, true)")
            .bind(user_id.to_string())
            .execute(&mut *tx)
            .await?;
        let orgs = sqlx::query_scalar(
            "select m.organisation_id from membership m join organisation o on o.id = m.organisation_id
              where m.user_id = $1 and m.status = 'active' and o.status <> 'closed'",
        )
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        orgs
    };
    for org in orgs {
        let ctx = TenantContext {
            org: OrgId(org),
            actor: Actor {
                id: Some(user_id),
                kind: ActorKind::Staff,
                name: Some(actor_name.to_owned()),
            },
            channel,
            request_id: request_id.clone(),
        };
        let mut tx = pool.begin(&ctx).await?;
        record_auth_event(&mut tx, event).await?;
        tx.commit().await?;
    }
    Ok(())
}
