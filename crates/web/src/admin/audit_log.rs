//! Settings → Audit log: the organisation's events, newest first, narrowed by person, kind of
//! record and a range of UK calendar days, 50 to a page; and the same selection as a CSV file.
//!
//! The filters arrive in the query string and are parsed here: a value that is not a person, a
//! record type or a date shows the form again with a sentence saying what to fix, at 422 and
//! with no events, never a 500.

use super::{Member, Shell};
use crate::error::WebError;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Extension, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use proplink_db::access;
use proplink_db::audit::{self, AuditEvent, AuditFilter};
use proplink_domain::dates::{long_date, uk_offset};
use time::macros::format_description;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

const PAGE_SIZE: usize = 50;
/// The most events one CSV file holds; the page says so next to the link.
const EXPORT_CAP: i64 = 100_000;
/// Events read from the database per query while exporting.
const EXPORT_BATCH: i64 = 5_000;

const CSV_HEADER: [&str; 10] = [
    "Sequence",
    "When (UK)",
    "Who",
    "Actor kind",
    "Channel",
    "Record type",
    "Record id",
    "Action",
    "Changes",
    "Request id",
];

/// The filter as it was typed, kept to fill the form in again.
#[derive(Debug, Default)]
struct FilterForm {
    user: String,
    record_type: String,
    from: String,
    to: String,
    before: String,
}

impl FilterForm {
    /// Reads `user`, `type`, `from`, `to` and `before`; unknown keys are ignored and a repeated
    /// key keeps its last value.
    fn from_query(query: Option<&str>) -> Self {
        let mut form = Self::default();
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let slot = match key.as_ref() {
                "user" => &mut form.user,
                "type" => &mut form.record_type,
                "from" => &mut form.from,
                "to" => &mut form.to,
                "before" => &mut form.before,
                _ => continue,
            };
            *slot = value.trim().to_owned();
        }
        form
    }

    fn parse(&self) -> Result<AuditFilter, Vec<String>> {
        let mut errors = Vec::new();
        let actor_id = optional(&self.user, |v| Uuid::parse_str(v).ok()).unwrap_or_else(|| {
            errors.push("“User” must be one of the people in the list.".to_owned());
            None
        });
        let table_name = optional(&self.record_type, |v| {
            is_table_name(v).then(|| v.to_owned())
        })
        .unwrap_or_else(|| {
            errors.push("“Record type” must be one of the types in the list.".to_owned());
            None
        });
        let from = optional(&self.from, parse_date).unwrap_or_else(|| {
            errors.push("“From” is not a date: pick one, or write it as 2026-05-10.".to_owned());
            None
        });
        let to = optional(&self.to, parse_date).unwrap_or_else(|| {
            errors.push("“To” is not a date: pick one, or write it as 2026-05-10.".to_owned());
            None
        });
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            errors.push(format!(
                "“From” ({}) is after “To” ({}): swap them, or clear one.",
                long_date(from),
                long_date(to)
            ));
        }
        let before_seq = optional(&self.before, |v| v.parse::<i64>().ok().filter(|s| *s > 0))
            .unwrap_or_else(|| {
                errors.push(
                    "The “Older events” link is not valid: start again from the newest events."
                        .to_owned(),
                );
                None
            });
        if errors.is_empty() {
            Ok(AuditFilter {
                actor_id,
                table_name,
                from,
                to,
                before_seq,
            })
        } else {
            Err(errors)
        }
    }

    /// The filters as a query string (`?user=…&type=…`), with `before` when given; empty when
    /// nothing is filtered.
    fn query_string(&self, before: Option<i64>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("user", &self.user),
            ("type", &self.record_type),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !value.is_empty() {
                query.append_pair(key, value);
            }
        }
        if let Some(seq) = before {
            query.append_pair("before", &seq.to_string());
        }
        let query = query.finish();
        if query.is_empty() {
            query
        } else {
            format!("?{query}")
        }
    }

    fn is_filtered(&self) -> bool {
        [&self.user, &self.record_type, &self.from, &self.to]
            .iter()
            .any(|v| !v.is_empty())
    }
}

/// `None` inside when the field was left empty; `None` outside when it does not parse.
fn optional<T>(value: &str, parse: impl FnOnce(&str) -> Option<T>) -> Option<Option<T>> {
    if value.is_empty() {
        Some(None)
    } else {
        parse(value).map(Some)
    }
}

fn parse_date(value: &str) -> Option<Date> {
    Date::parse(value, format_description!("[year]-[month]-[day]")).ok()
}

/// A table's name as PostgreSQL would have it unquoted (anything else cannot be in the log).
fn is_table_name(value: &str) -> bool {
    value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A kind of record in words: `staff_session` → "Sign-in session".
fn record_type_label(table: &str) -> String {
    let known = match table {
        "staff_session" => "Sign-in session",
        "auth_event" => "Sign-in activity",
        "session_handoff" => "Sign-in hand-off",
        "membership" => "Member access",
        "membership_scope" => "Member scope",
        "invitation" => "Invitation",
        "custom_role" => "Role",
        "organisation_profile" => "Organisation settings",
        "organisation_event" => "Organisation status",
        "email_message" => "E-mail",
        "email_event" => "E-mail delivery",
        "one_time_code" => "One-time code",
        "job" => "Background job",
        _ => {
            let words = table.replace('_', " ");
            let mut chars = words.chars();
            return match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => words,
            };
        }
    };
    known.to_owned()
}

fn action_label(operation: &str) -> &'static str {
    match operation {
        "insert" => "Created",
        "delete" => "Deleted",
        _ => "Changed",
    }
}

pub(super) fn uk_time(t: OffsetDateTime) -> OffsetDateTime {
    t.to_offset(uk_offset(t))
}

/// "10 May 2026, 14:05" in UK time.
pub(super) fn when_label(t: OffsetDateTime) -> String {
    let t = uk_time(t);
    format!("{}, {:02}:{:02}", long_date(t.date()), t.hour(), t.minute())
}

/// "2026-05-10", for file names and the CSV.
pub(super) fn iso_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The end of a long id, which is what tells ids apart (the start of a v7 UUID is a time).
fn short_id(id: &str) -> String {
    match id.char_indices().rev().nth(7) {
        Some((at, _)) if id.chars().count() > 12 => format!("…{}", &id[at..]),
        _ => id.to_owned(),
    }
}

/// A spreadsheet treats a cell starting with one of these as a formula: prefix it so it reads
/// as text. Every CSV export in the admin app writes its cells through this.
pub(super) fn neutralise(value: String) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value
    }
}

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

struct EventRow {
    when: String,
    who: String,
    channel: String,
    record_type: String,
    action: &'static str,
    fields: String,
    record_id: String,
    record_short: String,
}

impl EventRow {
    fn new(event: &AuditEvent) -> Self {
        Self {
            when: when_label(event.occurred_at),
            who: event.actor_label(),
            channel: event.channel_label(),
            record_type: record_type_label(&event.table_name),
            action: action_label(&event.operation),
            fields: event.changed_fields().join(", "),
            record_id: event.record_id.clone(),
            record_short: short_id(&event.record_id),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "audit_log.html")]
struct AuditLogPage {
    shell: Shell,
    form: FilterForm,
    users: Vec<Choice>,
    types: Vec<Choice>,
    errors: Vec<String>,
    rows: Vec<EventRow>,
    filtered: bool,
    newest_href: Option<String>,
    older_href: Option<String>,
    export_href: Option<String>,
    export_cap: String,
}

/// GET /audit (`audit.read`).
pub async fn page(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let form = FilterForm::from_query(query.as_deref());
    render(&state, &member, form).await
}

async fn render(state: &AppState, member: &Member, form: FilterForm) -> Result<Response, WebError> {
    let parsed = form.parse();
    let mut tx = state.db().begin(&member.ctx()).await?;
    let people = access::members(&mut tx).await?;
    let kinds = audit::record_types(&mut tx).await?;
    let mut events = match &parsed {
        Ok(filter) => audit::search(&mut tx, filter, PAGE_SIZE as i64 + 1).await?,
        Err(_) => Vec::new(),
    };
    tx.commit().await?;

    let more = events.len() > PAGE_SIZE;
    events.truncate(PAGE_SIZE);
    let (status, errors, filter) = match parsed {
        Ok(filter) => (StatusCode::OK, Vec::new(), Some(filter)),
        Err(errors) => (StatusCode::UNPROCESSABLE_ENTITY, errors, None),
    };
    let older_href = events
        .last()
        .filter(|_| more)
        .map(|last| format!("/audit{}", form.query_string(Some(last.seq))));
    let newest_href = filter
        .as_ref()
        .and_then(|f| f.before_seq)
        .map(|_| format!("/audit{}", form.query_string(None)));
    let export_href = (filter.is_some() && member.can("audit.export"))
        .then(|| format!("/audit/export.csv{}", form.query_string(None)));

    let mut users: Vec<Choice> = people
        .iter()
        .map(|p| Choice {
            value: p.user_id.to_string(),
            label: format!("{} ({})", p.name, p.email),
            selected: filter.as_ref().and_then(|f| f.actor_id) == Some(p.user_id),
        })
        .collect();
    if let Some(id) = filter.as_ref().and_then(|f| f.actor_id)
        && !users.iter().any(|c| c.selected)
    {
        // Someone who acted but is no longer a member (or never was one, like support).
        users.push(Choice {
            value: id.to_string(),
            label: format!("Not a current member ({})", short_id(&id.to_string())),
            selected: true,
        });
    }
    let chosen_type = filter.as_ref().and_then(|f| f.table_name.clone());
    let mut types: Vec<Choice> = kinds
        .iter()
        .map(|k| Choice {
            value: k.clone(),
            label: record_type_label(k),
            selected: chosen_type.as_deref() == Some(k.as_str()),
        })
        .collect();
    if let Some(kind) = chosen_type
        && !types.iter().any(|c| c.selected)
    {
        types.push(Choice {
            label: record_type_label(&kind),
            value: kind,
            selected: true,
        });
    }
    types.sort_by(|a, b| a.label.cmp(&b.label));

    let page = AuditLogPage {
        shell: Shell::new(member, "/audit"),
        filtered: form.is_filtered(),
        form,
        users,
        types,
        errors,
        rows: events.iter().map(EventRow::new).collect(),
        newest_href,
        older_href,
        export_href,
        export_cap: "100,000".to_owned(),
    };
    Ok((status, page).into_response())
}

/// GET /audit/export.csv (`audit.export`): the filtered events, newest first, as CSV.
pub async fn export(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let form = FilterForm::from_query(query.as_deref());
    let Ok(mut filter) = form.parse() else {
        // The link came from the page; show the page, with what to fix.
        return render(&state, &member, form).await;
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    // A byte-order mark first, so that Excel reads the file as UTF-8 (names with accents).
    let mut csv = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    csv.write_record(CSV_HEADER).map_err(csv_error)?;
    let mut remaining = EXPORT_CAP;
    let mut rows = 0i64;
    while remaining > 0 {
        let want = remaining.min(EXPORT_BATCH);
        let batch = audit::search(&mut tx, &filter, want).await?;
        for event in &batch {
            csv.write_record(csv_row(event)).map_err(csv_error)?;
        }
        let fetched = batch.len() as i64;
        rows += fetched;
        remaining -= fetched;
        match batch.last() {
            Some(last) if fetched == want => filter.before_seq = Some(last.seq),
            _ => break,
        }
    }
    // Exporting the log is itself recorded (a sensitive read, docs-spec §2.19).
    let detail = format!(
        "{rows} events; filters: {}",
        query.as_deref().unwrap_or("none")
    );
    proplink_db::access::record_auth_event(
        &mut tx,
        &proplink_db::access::AuthEvent {
            user_id: Some(member.user_id),
            email: &member.email,
            kind: "audit_log_exported",
            detail: Some(&detail),
            ip: None,
            user_agent: None,
        },
    )
    .await?;
    tx.commit().await?;
    let body = csv
        .into_inner()
        .map_err(|e| WebError::Internal(format!("finishing the audit CSV: {e}")))?;
    let filename = format!(
        "audit-log-{}-{}.csv",
        member.org.slug,
        iso_date(uk_time(state.now()).date())
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response())
}

fn csv_error(e: csv::Error) -> WebError {
    WebError::Internal(format!("writing the audit CSV: {e}"))
}

fn csv_row(event: &AuditEvent) -> [String; 10] {
    let t = uk_time(event.occurred_at);
    [
        event.seq.to_string(),
        format!(
            "{} {:02}:{:02}:{:02}",
            iso_date(t.date()),
            t.hour(),
            t.minute(),
            t.second()
        ),
        event.actor_label(),
        event.actor_kind.clone(),
        event.channel_label(),
        record_type_label(&event.table_name),
        event.record_id.clone(),
        action_label(&event.operation).to_owned(),
        event.changes.to_string(),
        event.request_id.clone().unwrap_or_default(),
    ]
    .map(neutralise)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_formula_is_made_text_and_other_values_are_untouched() {
        assert_eq!(neutralise("=SUM(A1)".into()), "'=SUM(A1)");
        assert_eq!(neutralise("+44 20".into()), "'+44 20");
        assert_eq!(neutralise("-1".into()), "'-1");
        assert_eq!(neutralise("@cmd".into()), "'@cmd");
        assert_eq!(neutralise("Jane = Doe".into()), "Jane = Doe");
    }

    #[test]
    fn record_types_read_as_words() {
        assert_eq!(record_type_label("staff_session"), "Sign-in session");
        assert_eq!(
            record_type_label("organisation_profile"),
            "Organisation settings"
        );
        assert_eq!(
            record_type_label("service_charge_demand"),
            "Service charge demand"
        );
    }

    #[test]
    fn filters_are_parsed_not_trusted() {
        let form = FilterForm::from_query(Some("user=nobody&from=2026-05-11&to=2026-05-10"));
        let errors = form.parse().unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        let ok = FilterForm::from_query(Some("type=invitation&from=2026-05-10&before=99"))
            .parse()
            .unwrap();
        assert_eq!(ok.table_name.as_deref(), Some("invitation"));
        assert_eq!(ok.before_seq, Some(99));
        assert!(
            FilterForm::from_query(Some("type=x%27%3Bdrop"))
                .parse()
                .is_err()
        );
    }

    #[test]
    fn long_ids_are_shortened_to_their_distinct_end() {
        assert_eq!(
            short_id("0196b0a3-7c1e-7d2a-9f00-0123456789ab"),
            "…456789ab"
        );
        assert_eq!(short_id("42"), "42");
    }
}
