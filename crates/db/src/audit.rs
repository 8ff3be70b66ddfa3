//! The audit log: reading a record's history as sentences, and verifying the hash chains.
//!
//! Events are written only by the database's audit triggers (`proplink.audit_stmt`, through
//! `proplink.audit_append`; see `sql/functions.sql`); nothing in Rust inserts them.

use crate::error::DbError;
use crate::pools::PlatformPool;
use crate::tenant::TenantTx;
use proplink_domain::dates::uk_long_date;
use proplink_domain::{ActorKind, Channel, OrgId};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct AuditEvent {
    pub seq: i64,
    pub table_name: String,
    pub record_id: String,
    pub operation: String,
    pub changes: serde_json::Value,
    pub actor_id: Option<Uuid>,
    pub actor_kind: String,
    pub actor_name: Option<String>,
    pub channel: String,
    pub request_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
}

impl AuditEvent {
    /// "Created by Jane Doe via admin on 10 May 2026".
    pub fn sentence(&self) -> String {
        let what = match self.operation.as_str() {
            "insert" => "Created".to_owned(),
            "delete" => "Deleted".to_owned(),
            _ => self.describe_update(),
        };
        format!(
            "{what} by {} via {} on {}",
            self.who(),
            self.via(),
            uk_long_date(self.occurred_at)
        )
    }

    /// "{who} {what} via {channel} on {date}": a record's own wording of what happened, such as
    /// "Bright Spark Plumbing submitted invoice INV-1042 for £450.00 via ContractorPort on 12
    /// May 2026".
    pub fn sentence_with(&self, what: &str) -> String {
        format!(
            "{} {what} via {} on {}",
            self.who(),
            self.via(),
            uk_long_date(self.occurred_at)
        )
    }

    /// The value a field was given (an insert) or changed to (an update).
    pub fn new_value(&self, field: &str) -> Option<&serde_json::Value> {
        self.changes.get(field)?.get("new")
    }

    /// The value a field had before an update or delete.
    pub fn old_value(&self, field: &str) -> Option<&serde_json::Value> {
        self.changes.get(field)?.get("old")
    }

    fn who(&self) -> String {
        if let Some(name) = self.actor_name.as_deref().filter(|n| !n.is_empty()) {
            return match ActorKind::from_db(&self.actor_kind) {
                Some(ActorKind::Webhook) => format!("{name} (webhook)"),
                _ => name.to_owned(),
            };
        }
        match ActorKind::from_db(&self.actor_kind) {
            Some(ActorKind::Staff) => "a staff member",
            Some(ActorKind::Leaseholder) => "a leaseholder",
            Some(ActorKind::Contractor) => "a contractor",
            Some(ActorKind::SiteManager) => "a site manager",
            Some(ActorKind::Regulator) => "the Building Safety Regulator",
            Some(ActorKind::Webhook) => "a provider webhook",
            Some(ActorKind::Platform) => "PropLink support",
            Some(ActorKind::System) | None => "PropLink",
        }
        .to_owned()
    }

    fn via(&self) -> &'static str {
        match Channel::from_db(&self.channel) {
            Some(c) => c.display_name(),
            None => "a direct database change",
        }
    }

    fn describe_update(&self) -> String {
        let Some(fields) = self.changes.as_object() else {
            return "Changed".to_owned();
        };
        let mut names: Vec<&String> = fields
            .keys()
            .filter(|k| k.as_str() != "updated_at")
            .collect();
        if names.is_empty() {
            names = fields.keys().collect();
        }
        if let [only] = names.as_slice() {
            let change = &fields[only.as_str()];
            if let (Some(old), Some(new)) = (scalar(&change["old"]), scalar(&change["new"])) {
                return format!(
                    "{} changed from {old} to {new}",
                    capitalise(&humanise(only))
                );
            }
        }
        let mut words: Vec<String> = names.iter().take(3).map(|n| humanise(n)).collect();
        if names.len() > 3 {
            words.push(format!("{} more", names.len() - 3));
        }
        let list = match words.len() {
            0 => String::new(),
            1 => words.remove(0),
            _ => {
                let last = words.pop().unwrap_or_default();
                format!("{} and {last}", words.join(", "))
            }
        };
        format!("{} changed", capitalise(&list))
    }
}

fn scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) if s.chars().count() <= 60 => Some(format!("“{s}”")),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(if *b { "yes" } else { "no" }.to_owned()),
        serde_json::Value::Null => Some("nothing".to_owned()),
        _ => None,
    }
}

fn humanise(column: &str) -> String {
    column.trim_end_matches("_id").replace('_', " ")
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

macro_rules! event_columns {
    () => {
        "seq, table_name, record_id, operation, changes, actor_id, actor_kind, actor_name, channel, request_id, occurred_at"
    };
}

/// One record's history, newest first.
pub async fn history(
    tx: &mut TenantTx,
    table: &str,
    record_id: &str,
) -> Result<Vec<AuditEvent>, DbError> {
    Ok(sqlx::query_as(concat!(
        "select ",
        event_columns!(),
        " from audit_event
          where organisation_id = $1 and table_name = $2 and record_id = $3
          order by seq desc"
    ))
    .bind(tx.org().0)
    .bind(table)
    .bind(record_id)
    .fetch_all(tx.conn())
    .await?)
}

/// A supplier bill's history, newest first: its own events, and the events of its lines in
/// payment runs (put into a run, taken out of one). Since migration 0046 that step lives on the
/// run's payment lines, not on the bill; lines of single payments are left out, as the bill's
/// own events already say it was paid.
pub async fn bill_history(tx: &mut TenantTx, bill: Uuid) -> Result<Vec<AuditEvent>, DbError> {
    Ok(sqlx::query_as(concat!(
        "select ",
        event_columns!(),
        " from (select ",
        event_columns!(),
        " from audit_event
                 where organisation_id = $1 and table_name = 'bill' and record_id = $2
                union all
                select ",
        event_columns!(),
        " from audit_event e
                 where e.organisation_id = $1 and e.table_name = 'supplier_payment_line'
                   and coalesce(e.changes #>> '{bill_id,new}', e.changes #>> '{bill_id,old}')
                       = $2
                   and not exists (
                       select from supplier_payment p
                        where p.organisation_id = e.organisation_id
                          and p.id = coalesce(e.changes #>> '{payment_id,new}',
                                              e.changes #>> '{payment_id,old}')::uuid
                          and p.payment_run_id is null)) h
          order by seq desc"
    ))
    .bind(tx.org().0)
    .bind(bill.to_string())
    .fetch_all(tx.conn())
    .await?)
}

/// The organisation's most recent events, newest first.
pub async fn recent(tx: &mut TenantTx, limit: i64) -> Result<Vec<AuditEvent>, DbError> {
    Ok(sqlx::query_as(concat!(
        "select ",
        event_columns!(),
        " from audit_event where organisation_id = $1 order by seq desc limit $2"
    ))
    .bind(tx.org().0)
    .bind(limit)
    .fetch_all(tx.conn())
    .await?)
}

/// What `proplink audit verify` found in one organisation's chain.
#[derive(Debug, Clone)]
pub struct ChainReport {
    pub org: OrgId,
    pub slug: String,
    pub events: u64,
    pub broken: Option<ChainBreak>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    pub seq: i64,
    pub reason: String,
}

#[derive(sqlx::FromRow)]
struct ChainRow {
    seq: i64,
    prev_hash: String,
    hash: String,
    table_name: String,
    record_id: String,
    operation: String,
    canonical: String,
    /// An erasure's list of the events it stripped (`contact_erasure` inserts only).
    attests: Option<serde_json::Value>,
}

/// One event stripped by an erasure (migration 0017): the hash of its content as stripped, and
/// whether an erasure event later in the chain has been seen listing that hash.
struct Stripped {
    content_hash: String,
    attested: bool,
}

/// Walks one organisation's chain from the first event, recomputing every hash.
///
/// The walk reads one snapshot (a repeatable-read, read-only transaction), so events committed
/// while it runs are neither half-seen nor mistaken for tampering.
pub async fn verify_chain(pool: &PlatformPool, org: OrgId) -> Result<ChainReport, DbError> {
    let mut snapshot = pool.raw().begin().await?;
    sqlx::query("set transaction isolation level repeatable read, read only")
        .execute(&mut *snapshot)
        .await?;
    let (slug, head_seq, head_hash): (String, i64, String) =
        sqlx::query_as("select slug, audit_seq, audit_head from organisation where id = $1")
            .bind(org.0)
            .fetch_one(&mut *snapshot)
            .await?;
    let mut stripped: std::collections::HashMap<i64, Stripped> =
        sqlx::query_as::<_, (i64, String)>(
            "select seq, content_hash from audit_erasure where organisation_id = $1",
        )
        .bind(org.0)
        .fetch_all(&mut *snapshot)
        .await?
        .into_iter()
        .map(|(seq, content_hash)| {
            (
                seq,
                Stripped {
                    content_hash,
                    attested: false,
                },
            )
        })
        .collect();
    let mut expected_seq = 1_i64;
    let mut expected_prev = String::new();
    let mut events = 0_u64;
    let broken = 'walk: loop {
        let rows: Vec<ChainRow> = sqlx::query_as(
            "select seq, prev_hash, hash, table_name, record_id, operation,
                    proplink.audit_canonical(prev_hash, seq, organisation_id, table_name, record_id,
                        operation, actor_id, actor_kind, actor_name, channel, request_id,
                        occurred_at, changes) as canonical,
                    case when table_name = 'contact_erasure' and operation = 'insert'
                         then changes -> 'stripped_events' -> 'new' end as attests
               from audit_event where organisation_id = $1 and seq >= $2
              order by seq limit 5000",
        )
        .bind(org.0)
        .bind(expected_seq)
        .fetch_all(&mut *snapshot)
        .await?;
        if rows.is_empty() {
            break None;
        }
        for row in rows {
            let label = format!(
                "#{} ({} on {} {})",
                row.seq, row.operation, row.table_name, row.record_id
            );
            if row.seq != expected_seq {
                break 'walk Some(ChainBreak {
                    seq: expected_seq,
                    reason: format!(
                        "event #{expected_seq} is missing: the chain jumps to event {label}"
                    ),
                });
            }
            if row.prev_hash != expected_prev {
                break 'walk Some(ChainBreak {
                    seq: row.seq,
                    reason: format!("event {label} does not link to the event before it"),
                });
            }
            let digest = hex::encode(Sha256::digest(row.canonical.as_bytes()));
            // A stripped event keeps its original hash for the link, and its content must
            // match the hash the erasure recorded for it.
            if let Some(erased) = stripped.get(&row.seq) {
                if digest != erased.content_hash {
                    break 'walk Some(ChainBreak {
                        seq: row.seq,
                        reason: format!(
                            "event {label} was altered after its personal data was erased: its content no longer matches the erasure's record of it"
                        ),
                    });
                }
            } else if digest != row.hash {
                break 'walk Some(ChainBreak {
                    seq: row.seq,
                    reason: format!(
                        "event {label} was altered after it was written: its content no longer matches its hash"
                    ),
                });
            }
            for listed in row.attests.iter().flat_map(attested_events) {
                if let Some(erased) = stripped.get_mut(&listed.0)
                    && listed.0 < row.seq
                    && erased.content_hash == listed.1
                {
                    erased.attested = true;
                }
            }
            events += 1;
            expected_seq += 1;
            expected_prev = row.hash;
        }
    };
    // Every stripped event must be listed by an erasure recorded after it in the chain.
    let broken = broken.or_else(|| {
        stripped
            .iter()
            .filter(|(_, erased)| !erased.attested)
            .map(|(seq, _)| *seq)
            .min()
            .map(|seq| ChainBreak {
                seq,
                reason: format!(
                    "event #{seq} was changed as if erased, but no erasure recorded in the chain lists it"
                ),
            })
    });
    let broken = broken.or_else(|| {
        let last = expected_seq - 1;
        (last != head_seq || expected_prev != head_hash).then(|| ChainBreak {
            seq: last + 1,
            reason: format!(
                "the chain ends at event #{last} but the organisation's head records event #{head_seq}: events were removed or the head was altered"
            ),
        })
    });
    snapshot.rollback().await?;
    Ok(ChainReport {
        org,
        slug,
        events,
        broken,
    })
}

/// The (seq, content hash) pairs an erasure's event lists.
fn attested_events(list: &serde_json::Value) -> Vec<(i64, String)> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| {
                    Some((
                        item.get("seq")?.as_i64()?,
                        item.get("content_hash")?.as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Searching the organisation's log (Settings → Audit log)

use proplink_domain::dates::uk_offset;
use time::Date;

/// What the audit log is narrowed to. Every part is optional; the dates are UK calendar days
/// (Europe/London) and both ends are inclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor_id: Option<Uuid>,
    pub table_name: Option<String>,
    pub from: Option<Date>,
    pub to: Option<Date>,
    /// Keyset paging: only events older than this sequence number.
    pub before_seq: Option<i64>,
}

/// The instant a UK calendar day begins.
fn uk_day_starts(day: Date) -> OffsetDateTime {
    let utc_midnight = day.midnight().assume_utc();
    // UK clocks change at 01:00 UTC, never around midnight, so the offset in force at UTC
    // midnight is the one in force at UK midnight.
    day.midnight().assume_offset(uk_offset(utc_midnight))
}

/// The organisation's events that match `filter`, newest first, at most `limit`.
pub async fn search(
    tx: &mut TenantTx,
    filter: &AuditFilter,
    limit: i64,
) -> Result<Vec<AuditEvent>, DbError> {
    let starts = filter.from.map(uk_day_starts);
    // Up to the start of the day after `to`; no bound when `to` is the last representable day.
    let ends = filter.to.and_then(Date::next_day).map(uk_day_starts);
    Ok(sqlx::query_as(concat!(
        "select ",
        event_columns!(),
        " from audit_event
          where organisation_id = $1
            and ($2::uuid is null or actor_id = $2)
            and ($3::text is null or table_name = $3)
            and ($4::timestamptz is null or occurred_at >= $4)
            and ($5::timestamptz is null or occurred_at < $5)
            and ($6::bigint is null or seq < $6)
          order by seq desc
          limit $7"
    ))
    .bind(tx.org().0)
    .bind(filter.actor_id)
    .bind(filter.table_name.as_deref())
    .bind(starts)
    .bind(ends)
    .bind(filter.before_seq)
    .bind(limit)
    .fetch_all(tx.conn())
    .await?)
}

/// The kinds of record (table names) that appear in the organisation's log, alphabetically.
///
/// A skip scan over the `audit_event_record` index: one index probe per distinct name, so the
/// cost does not grow with the log, which is never compacted.
pub async fn record_types(tx: &mut TenantTx) -> Result<Vec<String>, DbError> {
    Ok(sqlx::query_scalar(
        "with recursive kinds (name) as (
             (select table_name from audit_event
               where organisation_id = $1 order by table_name limit 1)
             union all
             select (select table_name from audit_event
                      where organisation_id = $1 and table_name > kinds.name
                      order by table_name limit 1)
               from kinds where kinds.name is not null
         )
         select name from kinds where name is not null",
    )
    .bind(tx.org().0)
    .fetch_all(tx.conn())
    .await?)
}

impl AuditEvent {
    /// Who acted, for a table cell: the recorded name, or else the kind of actor
    /// ("A staff member", "PropLink").
    pub fn actor_label(&self) -> String {
        let who = self.who();
        if self.actor_name.as_deref().is_some_and(|n| !n.is_empty()) {
            who
        } else {
            capitalise(&who)
        }
    }

    /// The front door the change came through, for a table cell ("Admin", "The API").
    pub fn channel_label(&self) -> String {
        match Channel::from_db(&self.channel) {
            Some(c) => capitalise(c.display_name()),
            None => "Direct database change".to_owned(),
        }
    }

    /// The fields an update changed, in words ("email", "custom role"); the `updated_at`
    /// stamp only when nothing else changed. Empty for creations and deletions.
    pub fn changed_fields(&self) -> Vec<String> {
        let Some(fields) = self
            .changes
            .as_object()
            .filter(|_| self.operation == "update")
        else {
            return Vec::new();
        };
        let names: Vec<String> = fields
            .keys()
            .filter(|k| k.as_str() != "updated_at")
            .map(|k| humanise(k))
            .collect();
        if names.is_empty() {
            fields.keys().map(|k| humanise(k)).collect()
        } else {
            names
        }
    }
}
