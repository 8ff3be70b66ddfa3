//! Planned maintenance, the compliance matrix and service agreements (issue 5; docs-spec
//! §2.7), and the daily operations sweep that raises due work orders and sends the 60-day
//! document-expiry and agreement-renewal reminders.

use crate::email::{self, NewEmail};
use crate::error::DbError;
use crate::operations::{self as ops, InviteRequest, LinkUrl, Location, OpsError, WorkOrderInput};
use crate::portfolio::SiteScope;
use crate::tenant::TenantTx;
use proplink_domain::dates::long_date;
use proplink_domain::operations::{EXPIRY_REMINDER_DAYS, Priority};
use proplink_domain::schedule::{
    ComplianceStatus, DUE_SOON_DAYS, DueBasis, Recurrence, compliance_status, next_due,
};
use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct EventInput {
    pub location: Location,
    pub name: String,
    pub template_key: Option<String>,
    pub compliance: bool,
    pub recurrence: Recurrence,
    pub basis: DueBasis,
    pub first_due: Date,
    pub responsible_name: Option<String>,
    pub vendor_id: Option<Uuid>,
    /// The service category of the work orders it raises.
    pub trade: Option<String>,
    pub raise_days_before: Option<i32>,
}

pub async fn create_event(tx: &mut TenantTx, input: &EventInput) -> Result<Uuid, OpsError> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(OpsError::Invalid(
            "Give the event a name of up to 200 characters.".into(),
        ));
    }
    if input.raise_days_before.is_some() && input.trade.is_none() {
        return Err(OpsError::Invalid(
            "Choose the trade for the work orders this event raises.".into(),
        ));
    }
    if let Some(key) = &input.trade {
        crate::service_categories::for_new_work(tx, key).await?;
    }
    if input
        .raise_days_before
        .is_some_and(|d| !(0..=90).contains(&d))
    {
        return Err(OpsError::Invalid(
            "Raise work orders between 0 and 90 days before the due date.".into(),
        ));
    }
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into maintenance_event (organisation_id, id, site_id, building_id, space_id, name,
                template_key, compliance, rrule, due_basis, anchor_date, next_due, responsible_name,
                vendor_id, trade, raise_days_before)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14, $15)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(input.location.site_id)
    .bind(input.location.building_id)
    .bind(input.location.space_id)
    .bind(name)
    .bind(&input.template_key)
    .bind(input.compliance)
    .bind(input.recurrence.to_rrule())
    .bind(input.basis.as_str())
    .bind(input.first_due)
    .bind(
        input
            .responsible_name
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty()),
    )
    .bind(input.vendor_id)
    .bind(&input.trade)
    .bind(input.raise_days_before)
    .execute(tx.conn())
    .await
    .map_err(|e| match DbError::from(e) {
        DbError::MissingReference { .. } => {
            OpsError::Invalid("The site, place or contractor no longer exists.".into())
        }
        other => OpsError::Db(other),
    })?;
    Ok(id)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Event {
    pub id: Uuid,
    pub site_id: Uuid,
    pub site_name: String,
    pub estate_id: Option<Uuid>,
    pub place: String,
    pub name: String,
    pub template_key: Option<String>,
    pub compliance: bool,
    pub rrule: String,
    pub due_basis: String,
    pub anchor_date: Date,
    pub next_due: Date,
    pub responsible_name: Option<String>,
    pub vendor_id: Option<Uuid>,
    pub vendor_name: Option<String>,
    pub trade: Option<String>,
    pub raise_days_before: Option<i32>,
    pub last_completed_on: Option<Date>,
}

impl Event {
    pub fn recurrence(&self) -> Option<Recurrence> {
        Recurrence::parse_rrule(&self.rrule).ok()
    }

    pub fn status(&self, today: Date) -> ComplianceStatus {
        compliance_status(self.next_due, today)
    }
}

const EVENT_COLUMNS: &str = "e.id, e.site_id, s.name as site_name, s.estate_id,
    coalesce(sp.name || coalesce(', ' || b.name, ''), b.name, s.name) as place, e.name,
    e.template_key, e.compliance, e.rrule, e.due_basis, e.anchor_date, e.next_due,
    e.responsible_name, e.vendor_id, v.name as vendor_name, e.trade, e.raise_days_before,
    e.last_completed_on";

const EVENT_JOINS: &str =
    "join site s on s.organisation_id = e.organisation_id and s.id = e.site_id
    left join building b on b.organisation_id = e.organisation_id and b.id = e.building_id
    left join space sp on sp.organisation_id = e.organisation_id and sp.id = e.space_id
    left join vendor v on v.organisation_id = e.organisation_id and v.id = e.vendor_id";

/// The most events the calendar considers at once.
pub const CALENDAR_EVENTS: i64 = 5000;

/// Live events at live sites within the scope whose next due date is on or before `until`
/// (their later dates are projected from it), for the maintenance calendar.
pub async fn events_due_by(
    tx: &mut TenantTx,
    scope: &SiteScope,
    until: Date,
) -> Result<Vec<Event>, DbError> {
    let sql = format!(
        "select {EVENT_COLUMNS} from maintenance_event e {EVENT_JOINS}
          where e.organisation_id = $1 and e.archived_at is null and s.archived_at is null
            and e.next_due <= $5
            and ($2 or e.site_id = any(array(select x.id from site x where x.organisation_id = $1
                                               and (x.id = any($3) or x.estate_id = any($4)))))
          order by e.next_due, s.name, e.name
          limit {CALENDAR_EVENTS}"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tx.org().0)
        .bind(scope.all)
        .bind(&scope.sites)
        .bind(&scope.estates)
        .bind(until)
        .fetch_all(tx.conn())
        .await?)
}

pub async fn events_of_site(tx: &mut TenantTx, site: Uuid) -> Result<Vec<Event>, DbError> {
    let sql = format!(
        "select {EVENT_COLUMNS} from maintenance_event e {EVENT_JOINS}
          where e.organisation_id = $1 and e.site_id = $2 and e.archived_at is null
          order by e.next_due, e.name"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tx.org().0)
        .bind(site)
        .fetch_all(tx.conn())
        .await?)
}

pub async fn find_event(tx: &mut TenantTx, id: Uuid) -> Result<Option<Event>, DbError> {
    let sql = format!(
        "select {EVENT_COLUMNS} from maintenance_event e {EVENT_JOINS}
          where e.organisation_id = $1 and e.id = $2"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tx.org().0)
        .bind(id)
        .fetch_optional(tx.conn())
        .await?)
}

/// Records that the event's work was done on `completed_on`; its next due date moves on by its
/// recurrence (rolling: from the completion; anchored: along its calendar).
pub async fn record_completion(
    tx: &mut TenantTx,
    event: Uuid,
    completed_on: Date,
    notes: Option<&str>,
    by: &str,
    today: Date,
) -> Result<(Uuid, Date), OpsError> {
    let locked: Option<Uuid> = sqlx::query_scalar(
        "select id from maintenance_event where organisation_id = $1 and id = $2
            and archived_at is null for update",
    )
    .bind(tx.org().0)
    .bind(event)
    .fetch_optional(tx.conn())
    .await?;
    if locked.is_none() {
        return Err(OpsError::NotFound);
    }
    let e = find_event(tx, event).await?.ok_or(OpsError::NotFound)?;
    if completed_on > today {
        return Err(OpsError::Invalid(
            "The completion date is in the future.".into(),
        ));
    }
    if e.last_completed_on.is_some_and(|last| completed_on < last) {
        return Err(OpsError::Invalid(format!(
            "A completion on {} is already recorded; this one is earlier.",
            long_date(e.last_completed_on.unwrap_or(completed_on))
        )));
    }
    let notes = notes.map(str::trim).filter(|s| !s.is_empty());
    if notes.is_some_and(|n| n.chars().count() > 2000) {
        return Err(OpsError::Invalid(
            "Keep the notes to 2,000 characters.".into(),
        ));
    }
    let rec = e
        .recurrence()
        .ok_or_else(|| OpsError::Invalid("The event's schedule cannot be read.".into()))?;
    let basis = DueBasis::parse(&e.due_basis).unwrap_or(DueBasis::Rolling);
    let next = next_due(rec, basis, e.anchor_date, e.next_due, completed_on);
    // The work order raised for this due date, if any.
    let work_order: Option<Uuid> = sqlx::query_scalar(
        "select id from work_order where organisation_id = $1 and maintenance_event_id = $2
            and maintenance_due_on = $3",
    )
    .bind(tx.org().0)
    .bind(event)
    .bind(e.next_due)
    .fetch_optional(tx.conn())
    .await?;
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into maintenance_completion (organisation_id, id, event_id, due_on, completed_on,
                                             notes, work_order_id, recorded_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(event)
    .bind(e.next_due)
    .bind(completed_on)
    .bind(notes)
    .bind(work_order)
    .bind(by)
    .execute(tx.conn())
    .await?;
    sqlx::query(
        "update maintenance_event set next_due = $3, last_completed_on = $4, updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(event)
    .bind(next)
    .bind(completed_on)
    .execute(tx.conn())
    .await?;
    Ok((id, next))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Completion {
    pub id: Uuid,
    pub due_on: Date,
    pub completed_on: Date,
    pub notes: Option<String>,
    pub recorded_by: String,
    pub file_id: Option<Uuid>,
}

pub async fn completions(tx: &mut TenantTx, event: Uuid) -> Result<Vec<Completion>, DbError> {
    Ok(sqlx::query_as(
        "select c.id, c.due_on, c.completed_on, c.notes, c.recorded_by,
                (select f.id from stored_file f where f.organisation_id = c.organisation_id
                    and f.maintenance_completion_id = c.id order by f.created_at limit 1) as file_id
           from maintenance_completion c
          where c.organisation_id = $1 and c.event_id = $2 order by c.completed_on desc limit 20",
    )
    .bind(tx.org().0)
    .bind(event)
    .fetch_all(tx.conn())
    .await?)
}

// ---------------------------------------------------------------------------------------------
// The compliance matrix

/// (site, site name, obligation key, obligation name, soonest due, overdue, due soon, compliant).
type MatrixCellRow = (Uuid, String, String, String, Date, i64, i64, i64);

/// One cell: the soonest due date of the site's events for one obligation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub next_due: Date,
    pub status: ComplianceStatus,
}

#[derive(Debug, Clone)]
pub struct MatrixRow {
    pub site_id: Uuid,
    pub site_name: String,
    pub cells: Vec<Option<Cell>>,
    pub worst: ComplianceStatus,
}

#[derive(Debug, Clone, Default)]
pub struct Matrix {
    /// Obligation keys and names, in column order.
    pub columns: Vec<(String, String)>,
    pub rows: Vec<MatrixRow>,
    pub overdue: i64,
    pub due_soon: i64,
    pub compliant: i64,
}

/// The compliance events of the sites in scope, as sites × obligations. Each cell is the
/// soonest due date of that site's events for that obligation; totals count events.
pub async fn compliance_matrix(
    tx: &mut TenantTx,
    scope: &SiteScope,
    site: Option<Uuid>,
    today: Date,
) -> Result<Matrix, DbError> {
    tx.plan_for_this_organisation().await?;
    // Events are grouped into cells first (a hash aggregate over the events alone), then
    // joined to their sites and sorted: sorting the 20,000 joined events by site name to group
    // them cost twice as much (`proplink bench operations`, case C1).
    let cells: Vec<MatrixCellRow> = sqlx::query_as(
        "with cell as (
             select e.site_id, coalesce(e.template_key, lower(e.name)) as key, min(e.name) as name,
                    min(e.next_due) as due,
                    count(*) filter (where e.next_due < $5) as overdue,
                    count(*) filter (where e.next_due >= $5 and e.next_due <= $5 + $6::int) as soon,
                    count(*) filter (where e.next_due > $5 + $6::int) as ok
               from maintenance_event e
              where e.organisation_id = $1 and e.compliance and e.archived_at is null
                and ($7::uuid is null or e.site_id = $7)
                and ($2 or e.site_id = any(array(select x.id from site x where x.organisation_id = $1
                                                   and (x.id = any($3) or x.estate_id = any($4)))))
              group by e.site_id, 2)
         select c.site_id, s.name, c.key, c.name, c.due, c.overdue, c.soon, c.ok
           from cell c
           join site s on s.organisation_id = $1 and s.id = c.site_id
          where s.archived_at is null
            and ($2 or s.id = any($3) or s.estate_id = any($4))
          order by s.name, c.site_id",
    )
    .bind(tx.org().0)
    .bind(scope.all)
    .bind(&scope.sites)
    .bind(&scope.estates)
    .bind(today)
    .bind(i32::try_from(DUE_SOON_DAYS).unwrap_or(30))
    .bind(site)
    .fetch_all(tx.conn())
    .await?;
    let mut m = Matrix::default();
    for (_, _, key, name, ..) in &cells {
        if !m.columns.iter().any(|(k, _)| k == key) {
            m.columns.push((key.clone(), name.clone()));
        }
    }
    m.columns.sort_by_key(|c| c.1.to_lowercase());
    for (site_id, site_name, key, _, due, overdue, soon, ok) in cells {
        m.overdue += overdue;
        m.due_soon += soon;
        m.compliant += ok;
        let column = m.columns.iter().position(|(k, _)| *k == key).unwrap_or(0);
        if m.rows.last().is_none_or(|r| r.site_id != site_id) {
            m.rows.push(MatrixRow {
                site_id,
                site_name,
                cells: vec![None; m.columns.len()],
                worst: ComplianceStatus::Compliant,
            });
        }
        if let Some(row) = m.rows.last_mut() {
            let status = compliance_status(due, today);
            if rank(status) > rank(row.worst) {
                row.worst = status;
            }
            if let Some(slot) = row.cells.get_mut(column) {
                *slot = Some(Cell {
                    next_due: due,
                    status,
                });
            }
        }
    }
    Ok(m)
}

fn rank(s: ComplianceStatus) -> u8 {
    match s {
        ComplianceStatus::Compliant => 0,
        ComplianceStatus::DueSoon => 1,
        ComplianceStatus::Overdue => 2,
    }
}

// ---------------------------------------------------------------------------------------------
// Raising work orders for due events

/// Raises the work order for an event's current due date (once: a second call finds it).
/// Invites the event's contractor when they have one whose documents are in order.
pub async fn raise_work_order(
    tx: &mut TenantTx,
    event: Uuid,
    org_name: &str,
    link_url: LinkUrl<'_>,
    now: OffsetDateTime,
) -> Result<Option<Uuid>, OpsError> {
    let e = find_event(tx, event).await?.ok_or(OpsError::NotFound)?;
    let existing: Option<Uuid> = sqlx::query_scalar(
        "select id from work_order where organisation_id = $1 and maintenance_event_id = $2
            and maintenance_due_on = $3",
    )
    .bind(tx.org().0)
    .bind(event)
    .bind(e.next_due)
    .fetch_optional(tx.conn())
    .await?;
    if existing.is_some() {
        return Ok(None);
    }
    let Some(category) = (match e.trade.as_deref() {
        Some(key) => crate::service_categories::find(tx, key).await?,
        None => None,
    }) else {
        return Err(OpsError::Invalid(
            "Choose the event's trade before raising work orders for it.".into(),
        ));
    };
    let (wo, _) = ops::insert_work_order(
        tx,
        &WorkOrderInput {
            location: Location {
                site_id: e.site_id,
                building_id: None,
                unit_id: None,
                space_id: None,
            },
            // The event's name is up to 200 characters, and so is a work order's title.
            title: format!(
                "{} due {}",
                e.name.chars().take(170).collect::<String>(),
                long_date(e.next_due)
            ),
            scope: format!(
                "Planned maintenance: {}, due {}. Record the completion and upload the certificate or report.",
                e.name,
                long_date(e.next_due)
            ),
            trade: category.key.clone(),
            priority: if e.next_due < now.date() {
                Priority::High
            } else {
                Priority::Medium
            },
            cost_code: None,
            not_to_exceed_pence: None,
            target_start: None,
            target_completion: Some(e.next_due.max(now.date())),
            access_notes: None,
            manager_name: e
                .responsible_name
                .clone()
                .unwrap_or_else(|| "Planned maintenance".into()),
            manager_email: None,
        },
        &[],
        now,
    )
    .await?;
    sqlx::query(
        "update work_order set maintenance_event_id = $3, maintenance_due_on = $4
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(wo)
    .bind(event)
    .bind(e.next_due)
    .execute(tx.conn())
    .await?;
    if let Some(vendor) = e.vendor_id
        && ops::vendor_compliance(tx, vendor, &category, now.date())
            .await?
            .is_none()
    {
        let invited = ops::invite_contractor(
            tx,
            wo,
            &InviteRequest {
                vendor_id: vendor,
                override_reason: None,
            },
            org_name,
            link_url,
            now,
        )
        .await;
        match invited {
            Ok(_) | Err(OpsError::Invalid(_)) | Err(OpsError::State(_)) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(Some(wo))
}

// ---------------------------------------------------------------------------------------------
// Service agreements

#[derive(Debug, Clone)]
pub struct AgreementInput {
    pub vendor_id: Uuid,
    pub title: String,
    pub scope: Option<String>,
    pub pricing_model: String,
    pub annual_value_pence: Option<i64>,
    pub starts_on: Date,
    pub ends_on: Option<Date>,
    pub notice_days: i32,
    pub auto_renew: bool,
    pub sites: Vec<Uuid>,
    pub manager_name: String,
    pub manager_email: Option<String>,
}

pub async fn create_agreement(tx: &mut TenantTx, a: &AgreementInput) -> Result<Uuid, OpsError> {
    if a.title.trim().is_empty() || a.title.trim().chars().count() > 200 {
        return Err(OpsError::Invalid(
            "Give the agreement a title of up to 200 characters.".into(),
        ));
    }
    if !matches!(
        a.pricing_model.as_str(),
        "fixed_fee" | "recurring_fee" | "schedule_of_rates" | "time_and_materials"
    ) {
        return Err(OpsError::Invalid("Choose the pricing model.".into()));
    }
    if a.ends_on.is_some_and(|e| e < a.starts_on) {
        return Err(OpsError::Invalid(
            "The agreement ends before it starts.".into(),
        ));
    }
    if !(0..=365).contains(&a.notice_days) {
        return Err(OpsError::Invalid(
            "The notice period must be between 0 and 365 days.".into(),
        ));
    }
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into service_agreement (organisation_id, id, vendor_id, title, scope, pricing_model,
                annual_value_pence, starts_on, ends_on, notice_days, auto_renew, manager_name, manager_email)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(a.vendor_id)
    .bind(a.title.trim())
    .bind(a.scope.as_deref().map(str::trim).filter(|s| !s.is_empty()))
    .bind(&a.pricing_model)
    .bind(a.annual_value_pence)
    .bind(a.starts_on)
    .bind(a.ends_on)
    .bind(a.notice_days)
    .bind(a.auto_renew)
    .bind(&a.manager_name)
    .bind(&a.manager_email)
    .execute(tx.conn())
    .await
    .map_err(|e| match DbError::from(e) {
        DbError::MissingReference { .. } => OpsError::Invalid("Choose a vendor.".into()),
        other => OpsError::Db(other),
    })?;
    for site in &a.sites {
        sqlx::query(
            "insert into service_agreement_site (organisation_id, agreement_id, site_id)
             values ($1, $2, $3) on conflict do nothing",
        )
        .bind(tx.org().0)
        .bind(id)
        .bind(site)
        .execute(tx.conn())
        .await
        .map_err(|e| match DbError::from(e) {
            DbError::MissingReference { .. } => {
                OpsError::Invalid("One of the chosen sites no longer exists.".into())
            }
            other => OpsError::Db(other),
        })?;
    }
    Ok(id)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Agreement {
    pub id: Uuid,
    /// Its schedules: "Monthly from 1 December 2026" and so on.
    pub schedules: String,
    pub vendor_id: Uuid,
    pub vendor_name: String,
    pub title: String,
    pub scope: Option<String>,
    pub pricing_model: String,
    pub annual_value_pence: Option<i64>,
    pub starts_on: Date,
    pub ends_on: Option<Date>,
    pub notice_days: i32,
    pub auto_renew: bool,
    pub sites: String,
}

impl Agreement {
    /// The last day to give notice, for a fixed end date.
    pub fn notice_by(&self) -> Option<Date> {
        self.ends_on
            .map(|e| e - Duration::days(i64::from(self.notice_days)))
    }
}

const AGREEMENT_COLUMNS: &str = "a.id,
    coalesce((select string_agg(e.rrule || ' ' || e.next_due::text, '; ') from maintenance_event e
               where e.organisation_id = a.organisation_id and e.service_agreement_id = a.id
                 and e.archived_at is null), '') as schedules,
    a.vendor_id, v.name as vendor_name, a.title, a.scope,
    a.pricing_model, a.annual_value_pence, a.starts_on, a.ends_on, a.notice_days, a.auto_renew,
    coalesce((select string_agg(s.name, ', ' order by s.name) from service_agreement_site x
               join site s on s.organisation_id = x.organisation_id and s.id = x.site_id
              where x.organisation_id = a.organisation_id and x.agreement_id = a.id), '') as sites";

/// Live agreements, soonest ending first. A member scoped to some sites sees those covering
/// one of their sites (and none without sites, which are organisation-wide).
pub async fn agreements(
    tx: &mut TenantTx,
    vendor: Option<Uuid>,
    scope: &SiteScope,
) -> Result<Vec<Agreement>, DbError> {
    let sql = format!(
        "select {AGREEMENT_COLUMNS} from service_agreement a
           join vendor v on v.organisation_id = a.organisation_id and v.id = a.vendor_id
          where a.organisation_id = $1 and a.archived_at is null
            and ($2::uuid is null or a.vendor_id = $2)
            and ($3 or exists (select from service_agreement_site x
                                 join site s on s.organisation_id = x.organisation_id and s.id = x.site_id
                                where x.organisation_id = a.organisation_id and x.agreement_id = a.id
                                  and (s.id = any($4) or s.estate_id = any($5))))
          order by a.ends_on nulls last, a.title limit 2000"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tx.org().0)
        .bind(vendor)
        .bind(scope.all)
        .bind(&scope.sites)
        .bind(&scope.estates)
        .fetch_all(tx.conn())
        .await?)
}

/// The site scope an agreement's file needs: may this member see the agreement?
pub async fn agreement_visible(
    tx: &mut TenantTx,
    agreement: Uuid,
    scope: &SiteScope,
) -> Result<bool, DbError> {
    Ok(agreements(tx, None, scope)
        .await?
        .iter()
        .any(|a| a.id == agreement))
}

// ---------------------------------------------------------------------------------------------
// The daily sweep

/// What one sweep of an organisation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    pub work_orders_raised: usize,
    pub expiry_reminders: usize,
    pub renewal_reminders: usize,
}

/// Renewal reminders go out this many days before the last day to give notice.
pub const RENEWAL_REMINDER_DAYS: i64 = 30;

/// Raises work orders for events falling due, and sends the contractor-document expiry
/// reminders (60 days ahead) and agreement renewal reminders. Safe to run any number of times a
/// day: each reminder and work order is recorded so it happens once.
pub async fn sweep(
    tx: &mut TenantTx,
    org_name: &str,
    link_url: LinkUrl<'_>,
    now: OffsetDateTime,
) -> Result<Swept, OpsError> {
    let today = now.date();
    let mut swept = Swept::default();
    // One sweep of an organisation at a time, whichever process runs it: the reminders'
    // "sent" marks are read and written here, so two at once would send twice.
    sqlx::query("select pg_advisory_xact_lock(hashtextextended('proplink.sweep:' || $1::text, 0))")
        .bind(tx.org().0)
        .execute(tx.conn())
        .await?;
    let due: Vec<Uuid> = sqlx::query_scalar(
        "select e.id from maintenance_event e
           join site s on s.organisation_id = e.organisation_id and s.id = e.site_id
          where e.organisation_id = $1 and e.archived_at is null and e.raise_days_before is not null
            and s.archived_at is null
            and e.next_due - e.raise_days_before <= $2
            and not exists (select from work_order w where w.organisation_id = e.organisation_id
                              and w.maintenance_event_id = e.id and w.maintenance_due_on = e.next_due)
          order by e.next_due limit 500",
    )
    .bind(tx.org().0)
    .bind(today)
    .fetch_all(tx.conn())
    .await?;
    for event in due {
        // A savepoint per event: one that cannot be raised (say, its site's rules changed)
        // is logged and skipped; the rest of the sweep goes on.
        sqlx::query("savepoint sweep_event")
            .execute(tx.conn())
            .await?;
        match raise_work_order(tx, event, org_name, link_url, now).await {
            Ok(Some(_)) => {
                swept.work_orders_raised += 1;
                sqlx::query("release savepoint sweep_event")
                    .execute(tx.conn())
                    .await?;
            }
            Ok(None) => {
                sqlx::query("release savepoint sweep_event")
                    .execute(tx.conn())
                    .await?;
            }
            Err(OpsError::Invalid(why) | OpsError::State(why)) => {
                tracing::warn!(%event, %why, "a due maintenance event could not raise its work order");
                sqlx::query("rollback to savepoint sweep_event")
                    .execute(tx.conn())
                    .await?;
            }
            Err(other) => return Err(other),
        }
    }
    let expiring: Vec<(Uuid, String, String, Date, String, Option<String>)> = sqlx::query_as(
        "select d.id, d.doc_type, d.reference_number, d.expires_on, v.name, v.email
           from vendor_document d join vendor v on v.organisation_id = d.organisation_id and v.id = d.vendor_id
          where d.organisation_id = $1 and d.expiry_reminded_at is null and v.archived_at is null
            and d.expires_on between $2 and $2 + $3::int
            and not exists (select from vendor_document n where n.organisation_id = d.organisation_id
                              and n.vendor_id = d.vendor_id and n.doc_type = d.doc_type
                              and n.expires_on > d.expires_on)",
    )
    .bind(tx.org().0)
    .bind(today)
    .bind(i32::try_from(EXPIRY_REMINDER_DAYS).unwrap_or(60))
    .fetch_all(tx.conn())
    .await?;
    for (id, kind, number, expires, vendor, address) in expiring {
        if let Some(address) = address {
            let label = proplink_domain::operations::DocumentType::parse(&kind)
                .map(|k| k.label())
                .unwrap_or("certificate");
            email::queue(
                tx,
                NewEmail {
                    to_address: address,
                    to_name: Some(vendor.clone()),
                    subject: format!("{org_name}: your {label} expires on {}", long_date(expires)),
                    body_text: format!(
                        "Hello {vendor},\n\nOur records show your {label} ({number}) expires on {}. \
                         Please send us the renewed certificate before then, or we cannot instruct \
                         you for work that needs it.\n",
                        long_date(expires)
                    ),
                    body_html: None,
                    category: "document_expiry".into(),
                },
            )
            .await?;
        }
        sqlx::query(
            "update vendor_document set expiry_reminded_at = $3 where organisation_id = $1 and id = $2",
        )
        .bind(tx.org().0)
        .bind(id)
        .bind(now)
        .execute(tx.conn())
        .await?;
        swept.expiry_reminders += 1;
    }
    for a in agreements(tx, None, &SiteScope::everything()).await? {
        let (Some(ends), Some(notice_by)) = (a.ends_on, a.notice_by()) else {
            continue;
        };
        if notice_by - today > Duration::days(RENEWAL_REMINDER_DAYS) || ends < today {
            continue;
        }
        let reminded: Option<Option<Date>> = sqlx::query_scalar(
            "select renewal_reminded_for from service_agreement where organisation_id = $1 and id = $2",
        )
        .bind(tx.org().0)
        .bind(a.id)
        .fetch_optional(tx.conn())
        .await?;
        if reminded.flatten() == Some(ends) {
            continue;
        }
        let manager: Option<(String, Option<String>)> = sqlx::query_as(
            "select manager_name, manager_email from service_agreement where organisation_id = $1 and id = $2",
        )
        .bind(tx.org().0)
        .bind(a.id)
        .fetch_optional(tx.conn())
        .await?;
        if let Some((name, Some(address))) = manager {
            email::queue(
                tx,
                NewEmail {
                    to_address: address,
                    to_name: Some(name.clone()),
                    subject: format!("Renewal: {} with {}", a.title, a.vendor_name),
                    body_text: format!(
                        "Hello {name},\n\nThe service agreement \"{}\" with {} ends on {}. {} \
                         Notice must be given by {}.\n",
                        a.title,
                        a.vendor_name,
                        long_date(ends),
                        if a.auto_renew {
                            "It renews automatically unless notice is given."
                        } else {
                            "It does not renew automatically."
                        },
                        long_date(notice_by)
                    ),
                    body_html: None,
                    category: "agreement_renewal".into(),
                },
            )
            .await?;
        }
        sqlx::query(
            "update service_agreement set renewal_reminded_for = $3 where organisation_id = $1 and id = $2",
        )
        .bind(tx.org().0)
        .bind(a.id)
        .bind(ends)
        .execute(tx.conn())
        .await?;
        swept.renewal_reminders += 1;
    }
    Ok(swept)
}

/// The compliance status of a due date, re-exported for pages.
pub fn status_of(due: Date, today: Date) -> ComplianceStatus {
    compliance_status(due, today)
}

/// The site (and its estate) of a completion, for checking who may see its evidence.
pub async fn site_of_completion(
    tx: &mut TenantTx,
    completion: Uuid,
) -> Result<Option<(Uuid, Option<Uuid>)>, DbError> {
    Ok(sqlx::query_as(
        "select s.id, s.estate_id from maintenance_completion c
           join maintenance_event e on e.organisation_id = c.organisation_id and e.id = c.event_id
           join site s on s.organisation_id = e.organisation_id and s.id = e.site_id
          where c.organisation_id = $1 and c.id = $2",
    )
    .bind(tx.org().0)
    .bind(completion)
    .fetch_optional(tx.conn())
    .await?)
}

/// Adds a schedule to an agreement: a recurring event at one of its sites whose work orders
/// are raised on each date and go to the agreement's vendor.
pub async fn add_schedule(
    tx: &mut TenantTx,
    agreement: Uuid,
    site: Uuid,
    recurrence: Recurrence,
    first_date: Date,
    trade: &str,
) -> Result<Uuid, OpsError> {
    let found: Option<(Uuid, String, bool)> = sqlx::query_as(
        "select a.vendor_id, a.title,
                exists (select from service_agreement_site x where x.organisation_id = a.organisation_id
                          and x.agreement_id = a.id and x.site_id = $3)
           from service_agreement a where a.organisation_id = $1 and a.id = $2 and a.archived_at is null",
    )
    .bind(tx.org().0)
    .bind(agreement)
    .bind(site)
    .fetch_optional(tx.conn())
    .await?;
    let Some((vendor, title, covers_site)) = found else {
        return Err(OpsError::NotFound);
    };
    if !covers_site {
        return Err(OpsError::Invalid(
            "That site is not covered by the agreement.".into(),
        ));
    }
    let event = create_event(
        tx,
        &EventInput {
            location: Location {
                site_id: site,
                ..Default::default()
            },
            name: title,
            template_key: None,
            compliance: false,
            recurrence,
            basis: DueBasis::Anchored,
            first_due: first_date,
            responsible_name: None,
            vendor_id: Some(vendor),
            trade: Some(trade.to_owned()),
            raise_days_before: Some(0),
        },
    )
    .await?;
    sqlx::query(
        "update maintenance_event set service_agreement_id = $3 where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(event)
    .bind(agreement)
    .execute(tx.conn())
    .await?;
    Ok(event)
}
