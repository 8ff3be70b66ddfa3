//! Settings → Tickets (docs-spec §2.7): categories (the eight standard ones and the
//! organisation's own) with default priority, default assignee, service-level overrides and
//! whether residents may choose them on ResidencePort; and routing rules, evaluated in order
//! when a ticket is created, the first match assigning it and/or setting its priority.

use crate::error::DbError;
use crate::operations::OpsError;
use crate::tenant::TenantTx;
use proplink_domain::sla::{Priority, SlaSpan};
use uuid::Uuid;

/// The eight standard categories, in their order.
pub const STANDARD: &[(&str, &str)] = &[
    ("maintenance", "Maintenance"),
    ("complaint", "Complaint"),
    ("query", "Query"),
    ("antisocial_behaviour", "Antisocial behaviour"),
    ("compliance", "Compliance"),
    ("insurance", "Insurance"),
    ("account", "Account"),
    ("other", "Other"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketCategory {
    pub key: String,
    pub name: String,
    pub standard: bool,
    pub default_priority: Option<Priority>,
    pub default_assignee_id: Option<Uuid>,
    pub default_assignee_name: Option<String>,
    /// Overrides of the priority's targets, for every priority in the category.
    pub response: Option<SlaSpan>,
    pub resolution: Option<SlaSpan>,
    pub on_residenceport: bool,
    pub archived: bool,
}

impl TicketCategory {
    fn standard(key: &str, name: &str) -> Self {
        Self {
            key: key.to_owned(),
            name: name.to_owned(),
            standard: true,
            default_priority: None,
            default_assignee_id: None,
            default_assignee_name: None,
            response: None,
            resolution: None,
            on_residenceport: true,
            archived: false,
        }
    }

    /// The first-response target for a ticket of this priority in this category.
    pub fn response_for(&self, priority: Priority) -> SlaSpan {
        self.response.unwrap_or(priority.response())
    }

    pub fn resolution_for(&self, priority: Priority) -> SlaSpan {
        self.resolution.unwrap_or(priority.resolution())
    }
}

#[derive(sqlx::FromRow)]
struct CategoryRow {
    key: String,
    name: String,
    default_priority: Option<String>,
    default_assignee_id: Option<Uuid>,
    default_assignee_name: Option<String>,
    response_hours: Option<i32>,
    response_working_days: Option<i32>,
    resolution_hours: Option<i32>,
    resolution_working_days: Option<i32>,
    on_residenceport: bool,
    archived: bool,
    position: i32,
}

fn span(hours: Option<i32>, days: Option<i32>) -> Option<SlaSpan> {
    match (hours, days) {
        (Some(h), _) => u32::try_from(h).ok().map(SlaSpan::Hours),
        (None, Some(d)) => u32::try_from(d).ok().map(SlaSpan::WorkingDays),
        (None, None) => None,
    }
}

/// Every category: standard ones as the organisation has them, then its own; by position.
pub async fn categories(
    tx: &mut TenantTx,
    include_archived: bool,
) -> Result<Vec<TicketCategory>, DbError> {
    let rows: Vec<CategoryRow> = sqlx::query_as(
        "select c.key, c.name, c.default_priority, c.default_assignee_id,
                u.name as default_assignee_name, c.response_hours, c.response_working_days,
                c.resolution_hours, c.resolution_working_days, c.on_residenceport,
                c.archived_at is not null as archived, c.position
           from ticket_category c
           left join membership m on m.organisation_id = c.organisation_id and m.id = c.default_assignee_id
           left join staff_user u on u.id = m.user_id
          where c.organisation_id = $1",
    )
    .bind(tx.org().0)
    .fetch_all(tx.conn())
    .await?;
    let mut out: Vec<(i32, TicketCategory)> = STANDARD
        .iter()
        .enumerate()
        .filter(|(_, (key, _))| !rows.iter().any(|r| r.key == *key))
        .map(|(i, (key, name))| {
            (
                i32::try_from(i).unwrap_or(0) * 10,
                TicketCategory::standard(key, name),
            )
        })
        .collect();
    for r in rows {
        out.push((
            r.position,
            TicketCategory {
                standard: STANDARD.iter().any(|(k, _)| *k == r.key),
                default_priority: r.default_priority.as_deref().and_then(Priority::from_key),
                response: span(r.response_hours, r.response_working_days),
                resolution: span(r.resolution_hours, r.resolution_working_days),
                key: r.key,
                name: r.name,
                default_assignee_id: r.default_assignee_id,
                default_assignee_name: r.default_assignee_name,
                on_residenceport: r.on_residenceport,
                archived: r.archived,
            },
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)));
    Ok(out
        .into_iter()
        .map(|(_, c)| c)
        .filter(|c| include_archived || !c.archived)
        .collect())
}

pub async fn category(tx: &mut TenantTx, key: &str) -> Result<Option<TicketCategory>, DbError> {
    Ok(categories(tx, true)
        .await?
        .into_iter()
        .find(|c| c.key == key))
}

/// A category's name ("Antisocial behaviour"), or the key if it has gone.
pub async fn name_of(tx: &mut TenantTx, key: &str) -> Result<String, DbError> {
    Ok(category(tx, key)
        .await?
        .map_or_else(|| key.to_owned(), |c| c.name))
}

/// What a manager sets on a category.
#[derive(Debug, Clone)]
pub struct CategorySettings {
    pub name: String,
    pub default_priority: Option<Priority>,
    pub default_assignee_id: Option<Uuid>,
    pub response: Option<SlaSpan>,
    pub resolution: Option<SlaSpan>,
    pub on_residenceport: bool,
}

fn check_name(name: &str) -> Result<String, OpsError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
        return Err(OpsError::Invalid(
            "Give the category a name of up to 60 characters.".into(),
        ));
    }
    Ok(name.to_owned())
}

async fn name_free(tx: &mut TenantTx, name: &str, except: &str) -> Result<bool, DbError> {
    Ok(!categories(tx, true)
        .await?
        .iter()
        .any(|c| c.key != except && c.name.eq_ignore_ascii_case(name)))
}

fn split(s: Option<SlaSpan>) -> (Option<i32>, Option<i32>) {
    match s {
        Some(SlaSpan::Hours(h)) => (i32::try_from(h).ok(), None),
        Some(SlaSpan::WorkingDays(d)) => (None, i32::try_from(d).ok()),
        None => (None, None),
    }
}

async fn assignee_active(tx: &mut TenantTx, id: Uuid) -> Result<bool, DbError> {
    Ok(sqlx::query_scalar(
        "select exists (select from membership where organisation_id = $1 and id = $2
                          and status = 'active')",
    )
    .bind(tx.org().0)
    .bind(id)
    .fetch_one(tx.conn())
    .await?)
}

/// Saves a category's settings (a standard one gets its row the first time it is changed).
pub async fn save_category(
    tx: &mut TenantTx,
    key: &str,
    s: &CategorySettings,
) -> Result<(), OpsError> {
    category(tx, key).await?.ok_or(OpsError::NotFound)?;
    let name = check_name(&s.name)?;
    if !name_free(tx, &name, key).await? {
        return Err(OpsError::Invalid(format!(
            "There is already a category called {name}."
        )));
    }
    if let Some(a) = s.default_assignee_id
        && !assignee_active(tx, a).await?
    {
        return Err(OpsError::Invalid(
            "Choose an active member of staff as the default assignee.".into(),
        ));
    }
    let position = STANDARD
        .iter()
        .position(|(k, _)| *k == key)
        .map_or(1000, |i| i32::try_from(i).unwrap_or(0) * 10);
    let (rh, rd) = split(s.response);
    let (xh, xd) = split(s.resolution);
    sqlx::query(
        "insert into ticket_category (organisation_id, id, key, name, default_priority,
                default_assignee_id, response_hours, response_working_days, resolution_hours,
                resolution_working_days, on_residenceport, position)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         on conflict (organisation_id, key) do update set name = excluded.name,
                default_priority = excluded.default_priority,
                default_assignee_id = excluded.default_assignee_id,
                response_hours = excluded.response_hours,
                response_working_days = excluded.response_working_days,
                resolution_hours = excluded.resolution_hours,
                resolution_working_days = excluded.resolution_working_days,
                on_residenceport = excluded.on_residenceport, updated_at = now()",
    )
    .bind(tx.org().0)
    .bind(Uuid::now_v7())
    .bind(key)
    .bind(&name)
    .bind(s.default_priority.map(Priority::as_str))
    .bind(s.default_assignee_id)
    .bind(rh)
    .bind(rd)
    .bind(xh)
    .bind(xd)
    .bind(s.on_residenceport)
    .bind(position)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Adds one of the organisation's own categories; returns its key.
pub async fn add_category(tx: &mut TenantTx, name: &str) -> Result<String, OpsError> {
    let name = check_name(name)?;
    let key = proplink_domain::slug::snake_key(&name);
    if key.is_empty() {
        return Err(OpsError::Invalid(
            "Give the category a name with letters or digits in it.".into(),
        ));
    }
    if !name_free(tx, &name, "").await? || category(tx, &key).await?.is_some() {
        return Err(OpsError::Invalid(format!(
            "There is already a category called {name}."
        )));
    }
    sqlx::query(
        "insert into ticket_category (organisation_id, id, key, name, position)
         values ($1, $2, $3, $4, 1000)",
    )
    .bind(tx.org().0)
    .bind(Uuid::now_v7())
    .bind(&key)
    .bind(&name)
    .execute(tx.conn())
    .await?;
    Ok(key)
}

/// Archives a category (no new tickets in it; existing ones keep it) or restores it. At least
/// one category stays live.
pub async fn set_archived(tx: &mut TenantTx, key: &str, archived: bool) -> Result<(), OpsError> {
    let all = categories(tx, true).await?;
    let c = all
        .iter()
        .find(|c| c.key == key)
        .ok_or(OpsError::NotFound)?
        .clone();
    if c.archived == archived {
        return Err(OpsError::State(format!(
            "{} is {} archived.",
            c.name,
            if archived { "already" } else { "not" }
        )));
    }
    if archived && all.iter().filter(|x| !x.archived).count() == 1 {
        return Err(OpsError::Invalid(
            "Keep at least one category for new tickets.".into(),
        ));
    }
    // A standard category gets its row (its name and place) before archiving, whatever its
    // settings (a default assignee who has since left does not stop it).
    let position = STANDARD
        .iter()
        .position(|(k, _)| *k == key)
        .map_or(1000, |i| i32::try_from(i).unwrap_or(0) * 10);
    sqlx::query(
        "insert into ticket_category (organisation_id, id, key, name, position)
         values ($1, $2, $3, $4, $5) on conflict (organisation_id, key) do nothing",
    )
    .bind(tx.org().0)
    .bind(Uuid::now_v7())
    .bind(key)
    .bind(&c.name)
    .bind(position)
    .execute(tx.conn())
    .await?;
    sqlx::query(
        "update ticket_category set archived_at = case when $3 then now() end, updated_at = now()
          where organisation_id = $1 and key = $2",
    )
    .bind(tx.org().0)
    .bind(key)
    .bind(archived)
    .execute(tx.conn())
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Routing rules

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RoutingRule {
    pub id: Uuid,
    pub position: i32,
    pub site_id: Option<Uuid>,
    pub site_name: Option<String>,
    pub category: Option<String>,
    pub sender_domain: Option<String>,
    pub subject_keyword: Option<String>,
    pub assign_to_id: Option<Uuid>,
    pub assign_to_name: Option<String>,
    pub set_priority: Option<String>,
}

impl RoutingRule {
    /// Whether a new ticket meets every condition the rule sets (words and domains ignoring
    /// case; a domain matches itself and its subdomains).
    pub fn matches(
        &self,
        site: Option<Uuid>,
        category: &str,
        sender: Option<&str>,
        subject: &str,
    ) -> bool {
        let site_ok = self.site_id.is_none_or(|s| Some(s) == site);
        let category_ok = self.category.as_deref().is_none_or(|c| c == category);
        let domain_ok = self.sender_domain.as_deref().is_none_or(|d| {
            sender
                .and_then(|e| e.rsplit_once('@'))
                .map(|(_, host)| {
                    let host = host.to_ascii_lowercase();
                    host == d || host.ends_with(&format!(".{d}"))
                })
                .unwrap_or(false)
        });
        let word_ok = self
            .subject_keyword
            .as_deref()
            .is_none_or(|w| subject.to_lowercase().contains(&w.to_lowercase()));
        site_ok && category_ok && domain_ok && word_ok
    }
}

pub async fn rules(tx: &mut TenantTx) -> Result<Vec<RoutingRule>, DbError> {
    Ok(sqlx::query_as(
        "select r.id, r.position, r.site_id, s.name as site_name, r.category, r.sender_domain,
                r.subject_keyword, r.assign_to_id, u.name as assign_to_name, r.set_priority
           from ticket_routing_rule r
           left join site s on s.organisation_id = r.organisation_id and s.id = r.site_id
           left join membership m on m.organisation_id = r.organisation_id and m.id = r.assign_to_id
           left join staff_user u on u.id = m.user_id
          where r.organisation_id = $1 order by r.position, r.created_at",
    )
    .bind(tx.org().0)
    .fetch_all(tx.conn())
    .await?)
}

#[derive(Debug, Clone, Default)]
pub struct RuleInput {
    pub site_id: Option<Uuid>,
    pub category: Option<String>,
    pub sender_domain: Option<String>,
    pub subject_keyword: Option<String>,
    pub assign_to_id: Option<Uuid>,
    pub set_priority: Option<Priority>,
}

/// Adds a rule at the end of the list.
pub async fn add_rule(tx: &mut TenantTx, r: &RuleInput) -> Result<Uuid, OpsError> {
    let domain = match r.sender_domain.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(d) => {
            let d = d.trim_start_matches('@').to_ascii_lowercase();
            if d.len() > 253
                || !d.contains('.')
                || !d
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            {
                return Err(OpsError::Invalid(
                    "Give the sender's domain like example.co.uk.".into(),
                ));
            }
            Some(d)
        }
    };
    let word = match r.subject_keyword.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(w) if w.chars().count() > 60 || w.chars().any(char::is_control) => {
            return Err(OpsError::Invalid(
                "Keep the subject word to 60 characters.".into(),
            ));
        }
        Some(w) => Some(w.to_owned()),
    };
    if let Some(c) = &r.category
        && category(tx, c).await?.is_none()
    {
        return Err(OpsError::Invalid("Choose a category from the list.".into()));
    }
    if r.site_id.is_none() && r.category.is_none() && domain.is_none() && word.is_none() {
        return Err(OpsError::Invalid(
            "Give at least one condition: a site, a category, the sender's domain or a word in the subject."
                .into(),
        ));
    }
    if r.assign_to_id.is_none() && r.set_priority.is_none() {
        return Err(OpsError::Invalid(
            "Choose what the rule does: assign the ticket, set its priority, or both.".into(),
        ));
    }
    if let Some(a) = r.assign_to_id
        && !assignee_active(tx, a).await?
    {
        return Err(OpsError::Invalid(
            "Choose an active member of staff to assign to.".into(),
        ));
    }
    let position: i32 = sqlx::query_scalar(
        "select coalesce(max(position), 0) + 10 from ticket_routing_rule where organisation_id = $1",
    )
    .bind(tx.org().0)
    .fetch_one(tx.conn())
    .await?;
    if position > 100_000 {
        return Err(OpsError::Invalid(
            "There are too many routing rules.".into(),
        ));
    }
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into ticket_routing_rule (organisation_id, id, position, site_id, category,
                sender_domain, subject_keyword, assign_to_id, set_priority)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(position)
    .bind(r.site_id)
    .bind(&r.category)
    .bind(domain)
    .bind(word)
    .bind(r.assign_to_id)
    .bind(r.set_priority.map(Priority::as_str))
    .execute(tx.conn())
    .await
    .map_err(|e| match DbError::from(e) {
        DbError::MissingReference { .. } => {
            OpsError::Invalid("The site or member of staff no longer exists.".into())
        }
        other => OpsError::Db(other),
    })?;
    Ok(id)
}

pub async fn delete_rule(tx: &mut TenantTx, id: Uuid) -> Result<(), OpsError> {
    let done =
        sqlx::query("delete from ticket_routing_rule where organisation_id = $1 and id = $2")
            .bind(tx.org().0)
            .bind(id)
            .execute(tx.conn())
            .await?;
    if done.rows_affected() == 0 {
        return Err(OpsError::NotFound);
    }
    Ok(())
}

/// Moves a rule one place up (earlier, evaluated sooner) or down.
pub async fn move_rule(tx: &mut TenantTx, id: Uuid, up: bool) -> Result<(), OpsError> {
    let list = rules(tx).await?;
    let i = list
        .iter()
        .position(|r| r.id == id)
        .ok_or(OpsError::NotFound)?;
    let j = if up { i.checked_sub(1) } else { Some(i + 1) };
    let Some(other) = j.and_then(|j| list.get(j)) else {
        return Ok(());
    };
    // Renumber the whole list with the two swapped, so equal positions cannot stick.
    let mut order: Vec<Uuid> = list.iter().map(|r| r.id).collect();
    let k = order
        .iter()
        .position(|x| *x == other.id)
        .ok_or(OpsError::NotFound)?;
    order.swap(i, k);
    for (n, rule) in order.iter().enumerate() {
        sqlx::query(
            "update ticket_routing_rule set position = $3 where organisation_id = $1 and id = $2",
        )
        .bind(tx.org().0)
        .bind(rule)
        .bind(i32::try_from(n).unwrap_or(0) * 10 + 10)
        .execute(tx.conn())
        .await?;
    }
    Ok(())
}

/// The first rule a new ticket matches, if any.
pub async fn route(
    tx: &mut TenantTx,
    site: Option<Uuid>,
    category: &str,
    sender: Option<&str>,
    subject: &str,
) -> Result<Option<RoutingRule>, DbError> {
    Ok(rules(tx)
        .await?
        .into_iter()
        .find(|r| r.matches(site, category, sender, subject)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> RoutingRule {
        RoutingRule {
            id: Uuid::nil(),
            position: 10,
            site_id: None,
            site_name: None,
            category: None,
            sender_domain: None,
            subject_keyword: None,
            assign_to_id: None,
            assign_to_name: None,
            set_priority: None,
        }
    }

    #[test]
    fn rules_match_on_every_condition_they_set() {
        let site = Uuid::from_u128(7);
        let r = RoutingRule {
            site_id: Some(site),
            sender_domain: Some("council.gov.uk".into()),
            subject_keyword: Some("Leak".into()),
            ..rule()
        };
        assert!(r.matches(
            Some(site),
            "query",
            Some("a@housing.council.gov.uk"),
            "A LEAK in flat 3"
        ));
        assert!(r.matches(Some(site), "query", Some("a@Council.gov.uk"), "leak"));
        assert!(!r.matches(None, "query", Some("a@council.gov.uk"), "leak"));
        assert!(!r.matches(Some(site), "query", Some("a@notcouncil.gov.uk"), "leak"));
        assert!(!r.matches(Some(site), "query", None, "leak"));
        assert!(!r.matches(Some(site), "query", Some("a@council.gov.uk"), "noise"));
        let c = RoutingRule {
            category: Some("complaint".into()),
            ..rule()
        };
        assert!(c.matches(None, "complaint", None, ""));
        assert!(!c.matches(None, "query", None, ""));
    }
}
