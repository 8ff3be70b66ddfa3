//! What the portfolio and people pages share: the member's site scope and the record-level
//! check, forms described in Rust and drawn by one template (`records/form.html`), the values
//! people type parsed with the domain's types, a record's history in words, pages of a list,
//! and CSV downloads.
//!
//! Scope policy: every list, export and search is asked with [`site_scope`]; every page or
//! action about one record calls [`check`] with the record's placement, so a record outside
//! the member's scope is "not found" (404) and one they can see but not change is 403.

use super::audit_log::{iso_date, neutralise, uk_time, when_label};
use super::form::{FieldErrors, FormData};
use super::{Member, Shell};
use crate::error::WebError;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use proplink_db::TenantTx;
use proplink_db::audit;
use proplink_db::portfolio::{Address, SiteScope};
use proplink_domain::authorize::{Decision, Placement};
use proplink_domain::permissions::Permission;
use proplink_domain::uk::{Postcode, parse_uk_date};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Scope and record-level checks

/// The sites this member's lists and searches may show.
pub(super) fn site_scope(member: &Member) -> SiteScope {
    SiteScope::from_scope(member.grants.scope.as_ref())
}

fn permission(key: &str) -> Result<Permission, WebError> {
    Permission::parse(key).ok_or_else(|| WebError::Internal(format!("unknown permission {key}")))
}

/// May the member do `key` to a record at `placement`? Outside their scope (or their role's
/// reading) the record does not exist for them: 404; visible but not allowed: 403.
pub(super) fn check(member: &Member, key: &str, placement: Placement) -> Result<(), WebError> {
    match member.grants.decide(&permission(key)?, placement) {
        Decision::Allowed => Ok(()),
        Decision::NotFound => Err(WebError::NotFound),
        Decision::Forbidden => Err(WebError::Forbidden),
    }
}

/// Whether to offer `key` on a record at `placement` (a button, a link).
pub(super) fn may(member: &Member, key: &str, placement: Placement) -> bool {
    !member.read_only()
        && Permission::parse(key)
            .is_some_and(|p| member.grants.decide(&p, placement) == Decision::Allowed)
}

/// Whether to link to a page of `key` at `placement` (reading is allowed in a read-only
/// organisation).
pub(super) fn may_read(member: &Member, key: &str, placement: Placement) -> bool {
    Permission::parse(key).is_some_and(|p| member.grants.decide(&p, placement) == Decision::Allowed)
}

/// A record id from the path; anything that is not one names nothing.
pub(super) fn parse_id(raw: &str) -> Result<Uuid, WebError> {
    Uuid::parse_str(raw).map_err(|_| WebError::NotFound)
}

// ---------------------------------------------------------------------------------------------
// History

/// One line of a record's history: "10 May 2026, 14:05" and "Name changed from … by …".
pub(super) struct HistoryRow {
    pub when: String,
    pub sentence: String,
}

/// The record's audit events in words, newest first.
pub(super) async fn history(
    tx: &mut TenantTx,
    table: &str,
    id: Uuid,
) -> Result<Vec<HistoryRow>, WebError> {
    Ok(audit::history(tx, table, &id.to_string())
        .await?
        .iter()
        .map(|e| HistoryRow {
            when: when_label(e.occurred_at),
            sentence: e.sentence(),
        })
        .collect())
}

/// A record's history with its own wording of each event (see `proplink_db::money_history`).
pub(super) async fn history_in_words(
    tx: &mut TenantTx,
    table: &str,
    id: Uuid,
    words: fn(&audit::AuditEvent) -> String,
) -> Result<Vec<HistoryRow>, WebError> {
    Ok(in_words(
        &audit::history(tx, table, &id.to_string()).await?,
        words,
    ))
}

/// Events, as `history_in_words` shows them.
pub(super) fn in_words(
    events: &[audit::AuditEvent],
    words: fn(&audit::AuditEvent) -> String,
) -> Vec<HistoryRow> {
    events
        .iter()
        .map(|e| HistoryRow {
            when: when_label(e.occurred_at),
            sentence: words(e),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Lists

/// One choice in a select, checkbox list or radio group.
#[derive(Debug, Clone)]
pub(super) struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

impl Opt {
    pub(super) fn new(value: impl Into<String>, label: impl Into<String>, chosen: &str) -> Self {
        let value = value.into();
        Self {
            selected: value == chosen,
            label: label.into(),
            value,
        }
    }
}

/// Where a list is in its pages, and links to the next and previous ones.
pub(super) struct Pager {
    pub page: i64,
    pub pages: i64,
    pub total: i64,
    /// Only `total` matches were counted and there are more: "1000+", "page 3 of 20+".
    pub capped: bool,
    pub previous: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    /// `path` with the list's `filters` and each neighbouring page number.
    pub(super) fn new(
        path: &str,
        filters: &[(&str, String)],
        page: i64,
        pages: i64,
        total: i64,
    ) -> Self {
        let href = |n: i64| {
            let mut q = filters.to_vec();
            q.push(("page", n.to_string()));
            format!("{path}{}", query_string(&q))
        };
        Self {
            page,
            pages,
            total,
            capped: false,
            previous: (page > 1).then(|| href(page - 1)),
            next: (page < pages).then(|| href(page + 1)),
        }
    }

    /// The count as people write it: "1,000".
    pub fn total_text(&self) -> String {
        proplink_domain::uk::group_thousands(self.total.unsigned_abs())
    }

    /// A list whose count stopped at `total` (see `portfolio::TEXT_COUNT_CAP`) when `capped`:
    /// a full page always offers the next one.
    pub(super) fn counted_up_to(
        path: &str,
        filters: &[(&str, String)],
        page: i64,
        pages: i64,
        total: i64,
        capped: bool,
        full_page: bool,
    ) -> Self {
        let mut pager = Self::new(path, filters, page, pages.max(page), total);
        if capped {
            pager.capped = true;
            if full_page && pager.next.is_none() {
                let mut q = filters.to_vec();
                q.push(("page", (page + 1).to_string()));
                pager.next = Some(format!("{path}{}", query_string(&q)));
            }
        }
        pager
    }
}

/// `?a=1&b=2` of the non-empty pairs, or "" when there are none.
pub(super) fn query_string(pairs: &[(&str, String)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.is_empty() {
            q.append_pair(k, v);
        }
    }
    let q = q.finish();
    if q.is_empty() { q } else { format!("?{q}") }
}

/// A page number from a query string: 1 unless it is a positive number.
pub(super) fn page_number(raw: &str) -> i64 {
    raw.trim()
        .parse::<i64>()
        .ok()
        .filter(|p| *p > 0)
        .unwrap_or(1)
        .min(1_000_000)
}

/// An id chosen in a list's filter; an id that does not parse filters nothing.
pub(super) fn filter_id(raw: &str) -> Option<Uuid> {
    Uuid::parse_str(raw.trim()).ok()
}

/// Exports the rows as a CSV download: UTF-8 with a byte-order mark (so Excel reads accents),
/// every cell made safe from formula injection by [`neutralise`].
pub(super) fn csv_download(
    name: &str,
    org_slug: &str,
    now: OffsetDateTime,
    header_row: &[&str],
    rows: impl IntoIterator<Item = Vec<String>>,
) -> Result<Response, WebError> {
    let fail = |e: csv::Error| WebError::Internal(format!("writing the {name} CSV: {e}"));
    let mut csv = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    csv.write_record(header_row).map_err(fail)?;
    for row in rows {
        csv.write_record(row.into_iter().map(neutralise))
            .map_err(fail)?;
    }
    let body = csv
        .into_inner()
        .map_err(|e| WebError::Internal(format!("finishing the {name} CSV: {e}")))?;
    let filename = format!("{name}-{org_slug}-{}.csv", iso_date(uk_time(now).date()));
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

// ---------------------------------------------------------------------------------------------
// Forms: described here, drawn by `records/form.html` and `records/field.html`

/// One control of a form as the page shows it.
pub(super) struct Field {
    pub name: &'static str,
    pub label: String,
    pub hint: String,
    /// `text`, `textarea`, `select`, `checks`, `radios`, or `lookup` (address look-up, which
    /// fills the four fields in `fills`).
    pub kind: &'static str,
    pub value: String,
    pub options: Vec<Opt>,
    pub error: Option<String>,
    pub maxlength: usize,
    pub fills: Option<[&'static str; 4]>,
    /// For a select: the URL that searches for more choices than the list holds.
    pub search: Option<&'static str>,
}

impl Field {
    pub(super) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = hint.into();
        self
    }

    /// A select that `proplink.js` gives a search box, asking `url` for more choices.
    pub(super) fn searchable(mut self, url: &'static str) -> Self {
        self.search = Some(url);
        self
    }

    pub(super) fn max(mut self, maxlength: usize) -> Self {
        self.maxlength = maxlength;
        self
    }

    /// The ids of the hint and error, for `aria-describedby` (may be empty).
    pub fn described_by(&self) -> String {
        let mut ids = Vec::new();
        if !self.hint.is_empty() {
            ids.push(format!("hint-{}", self.name));
        }
        if self.error.is_some() {
            ids.push(format!("error-{}", self.name));
        }
        ids.join(" ")
    }
}

/// A group of fields under a legend.
pub(super) struct Section {
    pub legend: String,
    pub hint: String,
    pub fields: Vec<Field>,
}

impl Section {
    pub(super) fn new(legend: &str, fields: Vec<Field>) -> Self {
        Self {
            legend: legend.to_owned(),
            hint: String::new(),
            fields,
        }
    }

    pub(super) fn hint(mut self, hint: &str) -> Self {
        self.hint = hint.to_owned();
        self
    }
}

/// A form page: sections of fields, the problems found at the top and beside each field.
#[derive(Template, WebTemplate)]
#[template(path = "records/form.html")]
pub(super) struct FormPage {
    pub shell: Shell,
    pub title: String,
    pub intro: String,
    pub back: Option<(String, String)>,
    pub action: String,
    pub submit: String,
    pub cancel: String,
    pub errors: FieldErrors,
    pub sections: Vec<Section>,
    pub danger: bool,
    /// Whether the address fields offer a look-up (a geocoder is set up).
    pub address_lookup: bool,
}

impl FormPage {
    pub(super) fn new(
        shell: Shell,
        title: impl Into<String>,
        action: impl Into<String>,
        cancel: impl Into<String>,
    ) -> Self {
        Self {
            shell,
            title: title.into(),
            intro: String::new(),
            back: None,
            action: action.into(),
            submit: "Save".to_owned(),
            cancel: cancel.into(),
            errors: FieldErrors::default(),
            sections: Vec::new(),
            danger: false,
            address_lookup: false,
        }
    }

    /// Draws the submit button as a dangerous, final action.
    pub(super) fn danger(mut self) -> Self {
        self.danger = true;
        self
    }

    /// Offers the address look-up on this form's address fields when a geocoder is set up.
    pub(super) fn address_lookup(mut self, state: &AppState) -> Self {
        self.address_lookup = state.settings().geocoder.is_some();
        self
    }

    pub(super) fn intro(mut self, intro: impl Into<String>) -> Self {
        self.intro = intro.into();
        self
    }

    pub(super) fn submit(mut self, label: impl Into<String>) -> Self {
        self.submit = label.into();
        self
    }

    pub(super) fn sections(mut self, errors: FieldErrors, sections: Vec<Section>) -> Self {
        self.errors = errors;
        self.sections = sections;
        self
    }

    /// 200, or 422 when the form was refused.
    pub(super) fn respond(self) -> Response {
        let status = if self.errors.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        (status, self).into_response()
    }
}

/// "Are you sure?" before something that cannot be undone (force delete, merge).
#[derive(Template, WebTemplate)]
#[template(path = "records/confirm.html")]
pub(super) struct ConfirmPage {
    pub shell: Shell,
    pub title: String,
    pub paragraphs: Vec<String>,
    pub error: Option<String>,
    pub allowed: bool,
    pub action: String,
    pub hidden: Vec<(String, String)>,
    pub submit: String,
    pub cancel: String,
}

/// Makes fields filled with the form's values and its errors.
pub(super) struct Fields<'a> {
    pub values: &'a FormData,
    pub errors: &'a FieldErrors,
}

impl Fields<'_> {
    fn field(&self, name: &'static str, label: &str, kind: &'static str) -> Field {
        Field {
            name,
            label: label.to_owned(),
            hint: String::new(),
            kind,
            value: self.values.get(name).to_owned(),
            options: Vec::new(),
            error: self.errors.get(name).map(str::to_owned),
            maxlength: 200,
            fills: None,
            search: None,
        }
    }

    pub(super) fn text(&self, name: &'static str, label: &str) -> Field {
        self.field(name, label, "text")
    }

    pub(super) fn area(&self, name: &'static str, label: &str) -> Field {
        self.field(name, label, "textarea").max(2000)
    }

    /// A select of `(value, label)` choices, the first usually ("", "None").
    pub(super) fn select(
        &self,
        name: &'static str,
        label: &str,
        choices: Vec<(String, String)>,
    ) -> Field {
        let chosen = self.values.get(name);
        Field {
            options: choices
                .into_iter()
                .map(|(v, l)| Opt::new(v, l, chosen))
                .collect(),
            ..self.field(name, label, "select")
        }
    }

    pub(super) fn radios(
        &self,
        name: &'static str,
        label: &str,
        choices: Vec<(String, String)>,
    ) -> Field {
        Field {
            kind: "radios",
            ..self.select(name, label, choices)
        }
    }

    pub(super) fn checks(
        &self,
        name: &'static str,
        label: &str,
        choices: Vec<(String, String)>,
    ) -> Field {
        let chosen: Vec<&str> = self.values.all(name).collect();
        Field {
            options: choices
                .into_iter()
                .map(|(value, label)| Opt {
                    selected: chosen.contains(&value.as_str()),
                    value,
                    label,
                })
                .collect(),
            ..self.field(name, label, "checks")
        }
    }

    /// Four address fields named by `names` (line 1, line 2, town, postcode), after an address
    /// look-up that fills them (shown only when a geocoder is set up, see
    /// [`FormPage::address_lookup`], and only to browsers running scripts).
    pub(super) fn address(&self, names: &AddressNames) -> Vec<Field> {
        vec![
            Field {
                fills: Some(names.0),
                value: String::new(),
                error: None,
                ..self.field(names.0[0], "Find an address", "lookup").hint(
                    "Type a postcode or the start of the address, then pick it from the list to fill in the fields below. Check them before saving.",
                )
            },
            self.text(names.0[0], "Address line 1"),
            self.text(names.0[1], "Address line 2"),
            self.text(names.0[2], "Town or city").max(100),
            self.text(names.0[3], "Postcode")
                .max(10)
                .hint("A UK postcode, such as SW1A 1AA."),
        ]
    }
}

/// The four field names of an address on a form.
pub(super) struct AddressNames(pub [&'static str; 4]);

pub(super) const ADDRESS: AddressNames =
    AddressNames(["address_line_1", "address_line_2", "city", "postcode"]);

/// Choices from a domain enum's `ALL`, keyed and labelled.
pub(super) fn choices<T: Copy>(
    all: &[T],
    key: impl Fn(T) -> &'static str,
    label: impl Fn(T) -> &'static str,
) -> Vec<(String, String)> {
    all.iter()
        .map(|&c| (key(c).to_owned(), label(c).to_owned()))
        .collect()
}

/// `("", none)` then `choices`.
pub(super) fn with_none(none: &str, choices: Vec<(String, String)>) -> Vec<(String, String)> {
    std::iter::once((String::new(), none.to_owned()))
        .chain(choices)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Values: what people type, parsed with the domain's types; each error is a sentence

/// Free text, trimmed; empty is None (see [`super::settings::optional_text`]).
pub(super) fn optional(raw: &str, max: usize, what: &str) -> Result<Option<String>, String> {
    super::settings::optional_text(raw, max, what)
}

/// Free text that must be given.
pub(super) fn required(raw: &str, max: usize, what: &str) -> Result<String, String> {
    optional(raw, max, what)?.ok_or_else(|| format!("Enter {}.", what.to_lowercase()))
}

/// A reference such as `GC-001` or `Flat 2A`: a letter or digit first, then letters, digits and
/// `allowed` punctuation, at most `max` characters.
pub(super) fn reference(
    raw: &str,
    max: usize,
    allowed: &str,
    what: &str,
) -> Result<String, String> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(format!("Enter {}.", what.to_lowercase()));
    }
    let first_ok = value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || allowed.contains(c));
    if !first_ok || !rest_ok || value.chars().count() > max {
        let punctuation: Vec<String> = allowed
            .chars()
            .map(|c| {
                if c == ' ' {
                    "spaces".to_owned()
                } else {
                    format!("“{c}”")
                }
            })
            .collect();
        return Err(format!(
            "{what} can have letters, digits and {}, starting with a letter or digit, at most {max} characters.",
            punctuation.join(", ")
        ));
    }
    Ok(value.to_owned())
}

/// An optional UK postcode, normalised.
pub(super) fn postcode(raw: &str) -> Result<Option<Postcode>, String> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    Postcode::parse(raw).map(Some).map_err(|e| format!("{e}."))
}

/// A whole number between `min` and `max`, or nothing.
pub(super) fn whole_number(
    raw: &str,
    min: i32,
    max: i32,
    what: &str,
) -> Result<Option<i32>, String> {
    let value = raw.trim();
    if value.is_empty() {
        return Ok(None);
    }
    value
        .replace(',', "")
        .parse::<i32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .map(Some)
        .ok_or_else(|| format!("{what} must be a whole number from {min} to {max}."))
}

/// A UK date (dd/mm/yyyy), or nothing.
pub(crate) fn uk_date(raw: &str) -> Result<Option<Date>, String> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    parse_uk_date(raw).map(Some).map_err(|e| format!("{e}."))
}

/// A date as a form field holds it: "05/03/2026".
pub(super) fn uk_date_text(d: Date) -> String {
    format!("{:02}/{:02}/{}", d.day(), u8::from(d.month()), d.year())
}

/// The date in field `name`, which must be filled in ("Enter {what}, as dd/mm/yyyy.").
pub(super) fn required_date(
    values: &FormData,
    name: &'static str,
    what: &str,
    errors: &mut FieldErrors,
) -> Option<Date> {
    let date = errors.take(name, uk_date(values.get(name)));
    if date.is_none() && values.get(name).trim().is_empty() {
        errors.add(name, format!("Enter {what}, as dd/mm/yyyy."));
    }
    date
}

/// An address from its four fields; the parts' errors are recorded against them.
pub(super) fn address(
    values: &FormData,
    names: &AddressNames,
    errors: &mut FieldErrors,
) -> Address {
    let [l1, l2, city, pc] = names.0;
    Address {
        line_1: errors.take(l1, optional(values.get(l1), 200, "Address line 1")),
        line_2: errors.take(l2, optional(values.get(l2), 200, "Address line 2")),
        city: errors.take(city, optional(values.get(city), 100, "The town or city")),
        postcode: errors
            .take(pc, postcode(values.get(pc)))
            .map(|p| p.as_str().to_owned()),
    }
}

/// Values to fill an address's fields in with.
pub(super) fn address_values(names: &AddressNames, a: &Address) -> Vec<(&'static str, String)> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    vec![
        (names.0[0], text(&a.line_1)),
        (names.0[1], text(&a.line_2)),
        (names.0[2], text(&a.city)),
        (names.0[3], text(&a.postcode)),
    ]
}

/// A chosen id that must be one of `allowed` (the choices the form offered).
pub(super) fn chosen_id(raw: &str, allowed: &[Uuid], what: &str) -> Result<Option<Uuid>, String> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(raw.trim())
        .ok()
        .filter(|id| allowed.contains(id))
        .map(Some)
        .ok_or_else(|| format!("Choose {} from the list.", what.to_lowercase()))
}

/// "Not recorded" for an empty value.
pub(super) fn or_not_recorded(v: Option<String>) -> String {
    v.filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "Not recorded".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_checked_and_explained() {
        assert_eq!(
            reference(" GC-001 ", 20, "-", "The reference"),
            Ok("GC-001".into())
        );
        let e = reference("-x", 20, "-", "The reference").unwrap_err();
        assert!(e.contains("starting with a letter or digit"), "{e}");
        assert!(reference("", 20, "-", "The reference").is_err());
    }

    #[test]
    fn query_strings_skip_empty_filters() {
        assert_eq!(
            query_string(&[("q", "a b".into()), ("site", String::new())]),
            "?q=a+b"
        );
        assert_eq!(query_string(&[]), "");
        assert_eq!(page_number("x"), 1);
        assert_eq!(page_number("3"), 3);
    }

    #[test]
    fn dates_round_trip_in_uk_format() {
        let d = uk_date("25/03/2026").unwrap().unwrap();
        assert_eq!((d.day(), u8::from(d.month()), d.year()), (25, 3, 2026));
        assert_eq!(uk_date_text(d), "25/03/2026");
        assert_eq!(uk_date(&uk_date_text(d)).unwrap(), Some(d));
        assert_eq!(uk_date(" ").unwrap(), None);
        assert!(uk_date("2026-03-25x").is_err());
    }
}
