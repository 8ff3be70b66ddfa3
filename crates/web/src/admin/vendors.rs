//! People → Vendors: contractors and suppliers. Bank details are checked (sort code and
//! account number), sealed by `people::save_vendor` with the data key, and only ever shown
//! masked; an edit form never shows them back, and leaving them blank keeps what is stored.
//!
//! Vendors belong to the organisation, not to a site, so every member who may read vendors
//! sees them all.

use super::form::{FieldErrors, FormData};
use super::portfolio::done_flash;
use super::records::{self, ADDRESS, Fields, FormPage, HistoryRow, Opt, Section, parse_id};
use super::{Member, Shell};
use crate::error::WebError;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use proplink_db::people::{self, BankDetails, Vendor, VendorInput};
use proplink_db::portfolio::{self, Archivable, Showing};
use proplink_db::{DbError, TenantTx};
use proplink_domain::EmailAddress;
use proplink_domain::uk::{AccountNumber, PhoneNumber, SortCode, VatNumber};
use uuid::Uuid;

type Page = Result<Response, WebError>;

async fn vendor_for(tx: &mut TenantTx, id: Uuid) -> Result<Vendor, WebError> {
    people::vendor(tx, id).await?.ok_or(WebError::NotFound)
}

pub struct VendorRow {
    id: Uuid,
    name: String,
    trade: String,
    contact: String,
    email: String,
    phone: String,
    archived: bool,
}

impl VendorRow {
    fn new(v: &Vendor) -> Self {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        Self {
            id: v.id,
            name: v.name.clone(),
            trade: v.trade.clone(),
            contact: text(&v.contact_name),
            email: text(&v.email),
            phone: text(&v.phone),
            archived: v.archived_at.is_some(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "people/vendors.html")]
struct VendorsPage {
    shell: Shell,
    rows: Vec<VendorRow>,
    q: String,
    showing: Vec<Opt>,
    can_create: bool,
    export_href: Option<String>,
}

fn filters(query: &FormData) -> (Showing, String) {
    (
        Showing::parse(query.get("showing")),
        query.get("q").trim().chars().take(100).collect(),
    )
}

/// GET /vendors (`vendor.read`).
pub async fn list(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(query): RawQuery,
) -> Page {
    let query = FormData::parse(query.unwrap_or_default().as_bytes());
    let (showing, q) = filters(&query);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let vendors = people::list_vendors(&mut tx, showing, &q).await?;
    tx.commit().await?;
    let pairs = [
        ("q", q.clone()),
        (
            "showing",
            if showing == Showing::Live {
                String::new()
            } else {
                showing.key().to_owned()
            },
        ),
    ];
    Ok(VendorsPage {
        shell: Shell::new(&member, "/vendors"),
        rows: vendors.iter().map(VendorRow::new).collect(),
        q,
        showing: [
            ("live", "Live"),
            ("archived", "Archived"),
            ("all", "Live and archived"),
        ]
        .into_iter()
        .map(|(v, l)| Opt::new(v, l, showing.key()))
        .collect(),
        can_create: member.can("vendor.create") && !member.read_only(),
        export_href: member
            .can("data_import.export")
            .then(|| format!("/vendors/export.csv{}", records::query_string(&pairs))),
    }
    .into_response())
}

/// GET /vendors/export.csv (`data_import.export`): bank details masked, as on the page.
pub async fn export(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(query): RawQuery,
) -> Page {
    let query = FormData::parse(query.unwrap_or_default().as_bytes());
    let (showing, q) = filters(&query);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let vendors = people::list_vendors(&mut tx, showing, &q).await?;
    tx.commit().await?;
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    records::csv_download(
        "vendors",
        &member.org.slug,
        state.now(),
        &[
            "Name",
            "Trade",
            "Contact",
            "E-mail",
            "Phone",
            "Companies House number",
            "VAT number",
            "Address",
            "Bank account",
            "Archived",
        ],
        vendors.iter().map(|v| {
            vec![
                v.name.clone(),
                v.trade.clone(),
                text(&v.contact_name),
                text(&v.email),
                text(&v.phone),
                text(&v.company_number),
                text(&v.vat_number),
                v.address().one_line(),
                v.masked_bank().unwrap_or_default(),
                if v.archived_at.is_some() { "Yes" } else { "No" }.to_owned(),
            ]
        }),
    )
}

#[derive(Template, WebTemplate)]
#[template(path = "people/vendor.html")]
struct VendorPage {
    shell: Shell,
    vendor: VendorRow,
    facts: Vec<(String, String)>,
    bank: String,
    history: Vec<HistoryRow>,
    documents: Vec<super::operations::DocumentRow>,
    performance: Vec<(String, String)>,
    preferences: Vec<(uuid::Uuid, String)>,
    preference_sites: Vec<Opt>,
    preference_trades: Vec<Opt>,
    doc_types: Vec<Opt>,
    problem: Option<String>,
    can_edit: bool,
    can_archive: bool,
    /// The supplier's statement spans every site: bill readers who see them all.
    can_statement: bool,
}

/// GET /vendors/{id} (`vendor.read`).
pub async fn show(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    let query = FormData::parse(query.unwrap_or_default().as_bytes());
    let mut tx = state.db().begin(&member.ctx()).await?;
    let v = vendor_for(&mut tx, id).await?;
    let history = records::history(&mut tx, "vendor", id).await?;
    let documents = super::operations::document_rows(&mut tx, id, state.now().date()).await?;
    let performance = proplink_db::operations::vendor_performance(&mut tx, id, state.now()).await?;
    let preferences = super::operations::preference_rows(&mut tx, id).await?;
    let preference_sites = super::operations::site_options(&mut tx, &member).await?;
    let preference_trades = super::operations::trade_options(&mut tx).await?;
    tx.commit().await?;
    let text = |v: Option<String>| records::or_not_recorded(v);
    let problem = Some(query.get("problem").trim().to_owned()).filter(|p| !p.is_empty());
    let flash = Some(query.get("flash").trim().to_owned()).filter(|p| !p.is_empty());
    let writable = !member.read_only();
    Ok(VendorPage {
        shell: Shell::new(&member, "/vendors").with_flash(flash.or(done_flash(&query, "Vendor"))),
        facts: vec![
            ("Trade".to_owned(), v.trade.clone()),
            ("Contact".to_owned(), text(v.contact_name.clone())),
            ("E-mail".to_owned(), text(v.email.clone())),
            ("Phone".to_owned(), text(v.phone.clone())),
            (
                "Companies House number".to_owned(),
                text(v.company_number.clone()),
            ),
            ("VAT number".to_owned(), text(v.vat_number.clone())),
            ("Address".to_owned(), text(Some(v.address().one_line()))),
            ("Notes".to_owned(), text(v.notes.clone())),
        ],
        bank: match v.masked_bank() {
            Some(masked) => match &v.bank_account_name {
                Some(name) => format!("{name}, {masked}"),
                None => masked,
            },
            None => "Not recorded".to_owned(),
        },
        history,
        documents,
        performance: performance_lines(&performance),
        preferences,
        preference_sites,
        preference_trades,
        doc_types: super::operations::document_types(),
        problem,
        can_edit: writable && member.can("vendor.update"),
        can_archive: writable && member.can("vendor.archive"),
        can_statement: member.can("bill.read")
            && matches!(
                member.grants.scope,
                Some(proplink_domain::permissions::Scope::AllSites)
            ),
        vendor: VendorRow::new(&v),
    }
    .into_response())
}

/// The performance card's lines: (measure, figure), "—" where there is nothing to measure.
fn performance_lines(p: &proplink_db::operations::Performance) -> Vec<(String, String)> {
    let pct = |r: Option<f64>| r.map_or_else(|| "—".to_owned(), |r| format!("{:.0}%", r * 100.0));
    vec![
        ("Invitations to quote".into(), p.invitations.to_string()),
        ("Answered".into(), pct(p.acceptance_rate)),
        ("Quoted".into(), pct(p.quote_rate)),
        (
            "Time to quote".into(),
            p.days_to_quote
                .map_or_else(|| "—".to_owned(), |d| format!("{d:.1} days")),
        ),
        ("Work orders awarded".into(), p.awarded.to_string()),
        ("Completed".into(), pct(p.completion_rate)),
        ("Completed on time".into(), pct(p.on_time_rate)),
        (
            "Final cost against quotation".into(),
            p.cost_vs_quote
                .map_or_else(|| "—".to_owned(), |c| format!("{:.0}%", c * 100.0)),
        ),
        (
            "Compliance rate (days their documents were in order)".into(),
            pct(p.compliance_rate),
        ),
        (
            "Average rating (never shown to the contractor)".into(),
            p.average_rating
                .map_or_else(|| "—".to_owned(), |r| format!("{r:.1} of 5")),
        ),
    ]
}

fn vendor_values(v: &Vendor) -> FormData {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut values = FormData::from_pairs([
        ("name", v.name.clone()),
        ("trade", v.trade.clone()),
        ("contact_name", text(&v.contact_name)),
        ("email", text(&v.email)),
        ("phone", text(&v.phone)),
        ("company_number", text(&v.company_number)),
        ("vat_number", text(&v.vat_number)),
        ("bank_account_name", text(&v.bank_account_name)),
        ("notes", text(&v.notes)),
    ]);
    for (k, val) in records::address_values(&ADDRESS, &v.address()) {
        values.push(k, val);
    }
    values
}

fn vendor_sections(
    values: &FormData,
    errors: &FieldErrors,
    masked: Option<String>,
) -> Vec<Section> {
    let f = Fields { values, errors };
    let bank_hint = match masked {
        Some(m) => format!("Stored: {m}. Leave both blank to keep them."),
        None => "Give both, or leave both blank.".to_owned(),
    };
    vec![
        Section::new(
            "Vendor",
            vec![
                f.text("name", "Name"),
                f.text("trade", "Trade")
                    .max(100)
                    .hint("Such as Electrician or Cleaning."),
                f.text("contact_name", "Contact name"),
                f.text("email", "E-mail address").max(254),
                f.text("phone", "Phone number").max(30),
                f.text("company_number", "Companies House number")
                    .max(20)
                    .hint("8 digits, or 2 letters and 6 digits."),
                f.text("vat_number", "VAT number")
                    .max(24)
                    .hint("Such as GB 123 4567 89. Leave empty if not VAT registered."),
            ],
        ),
        Section::new("Address", f.address(&ADDRESS)),
        Section::new(
            "Bank details",
            vec![
                f.text("bank_account_name", "Account name"),
                f.text("sort_code", "Sort code")
                    .max(8)
                    .hint("6 digits, such as 12-34-56."),
                f.text("account_number", "Account number")
                    .max(10)
                    .hint("8 digits."),
            ],
        )
        .hint(&bank_hint),
        Section::new("Notes", vec![f.area("notes", "Notes")]),
    ]
}

fn parse_vendor(values: &FormData) -> Result<VendorInput, FieldErrors> {
    let mut errors = FieldErrors::default();
    let optional_parse = |raw: &str, parse: &dyn Fn(&str) -> Result<String, String>| {
        if raw.trim().is_empty() {
            Ok(None)
        } else {
            parse(raw).map(Some)
        }
    };
    let email = errors.take(
        "email",
        optional_parse(values.get("email"), &|s| {
            EmailAddress::parse(s)
                .map(|e| e.as_str().to_owned())
                .map_err(|e| format!("{e}."))
        }),
    );
    let phone = errors.take(
        "phone",
        optional_parse(values.get("phone"), &|s| {
            PhoneNumber::parse(s)
                .map(|p| p.as_str().to_owned())
                .map_err(|e| format!("{e}."))
        }),
    );
    let vat_number = errors.take(
        "vat_number",
        optional_parse(values.get("vat_number"), &|s| {
            VatNumber::parse(s)
                .map(|v| v.as_str().to_owned())
                .map_err(|e| format!("{e}."))
        }),
    );
    let (sort_raw, account_raw) = (values.get("sort_code"), values.get("account_number"));
    let bank = match (sort_raw.trim().is_empty(), account_raw.trim().is_empty()) {
        (true, true) => None,
        (false, true) => {
            errors.add(
                "account_number",
                "Enter the account number too, or clear the sort code.",
            );
            None
        }
        (true, false) => {
            errors.add(
                "sort_code",
                "Enter the sort code too, or clear the account number.",
            );
            None
        }
        (false, false) => {
            let sort = errors.take(
                "sort_code",
                SortCode::parse(sort_raw)
                    .map(Some)
                    .map_err(|e| format!("{e}.")),
            );
            let account = errors.take(
                "account_number",
                AccountNumber::parse(account_raw)
                    .map(Some)
                    .map_err(|e| format!("{e}.")),
            );
            match (sort, account) {
                (Some(sort), Some(account)) => Some(BankDetails {
                    sort_code: sort.digits(),
                    account_number: account.as_str().to_owned(),
                }),
                _ => None,
            }
        }
    };
    let input = VendorInput {
        name: errors.take(
            "name",
            records::required(values.get("name"), 200, "The name"),
        ),
        trade: errors.take(
            "trade",
            records::required(values.get("trade"), 100, "The trade"),
        ),
        contact_name: errors.take(
            "contact_name",
            records::optional(values.get("contact_name"), 200, "The contact name"),
        ),
        email,
        phone,
        company_number: errors.take(
            "company_number",
            super::settings::company_number(values.get("company_number")),
        ),
        vat_number,
        address: records::address(values, &ADDRESS, &mut errors),
        bank_account_name: errors.take(
            "bank_account_name",
            records::optional(values.get("bank_account_name"), 200, "The account name"),
        ),
        bank,
        notes: errors.take(
            "notes",
            records::optional(values.get("notes"), 2000, "The notes"),
        ),
    };
    errors.or(input)
}

fn render_vendor_form(
    state: &AppState,
    member: &Member,
    existing: Option<&Vendor>,
    values: &FormData,
    errors: FieldErrors,
) -> Response {
    let (title, action, cancel) = match existing {
        Some(v) => (
            "Edit vendor",
            format!("/vendors/{}/edit", v.id),
            format!("/vendors/{}", v.id),
        ),
        None => (
            "Add vendor",
            "/vendors/new".to_owned(),
            "/vendors".to_owned(),
        ),
    };
    let sections = vendor_sections(values, &errors, existing.and_then(Vendor::masked_bank));
    FormPage::new(Shell::new(member, "/vendors"), title, action, cancel)
        .address_lookup(state)
        .submit("Save vendor")
        .sections(errors, sections)
        .respond()
}

/// GET /vendors/new (`vendor.create`).
pub async fn new_vendor(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
) -> Page {
    let values = FormData::from_pairs(Vec::<(String, String)>::new());
    Ok(render_vendor_form(
        &state,
        &member,
        None,
        &values,
        FieldErrors::default(),
    ))
}

/// GET /vendors/{id}/edit (`vendor.update`).
pub async fn edit_vendor(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let v = vendor_for(&mut tx, id).await?;
    tx.commit().await?;
    Ok(render_vendor_form(
        &state,
        &member,
        Some(&v),
        &vendor_values(&v),
        FieldErrors::default(),
    ))
}

/// POST /vendors/new (`vendor.create`).
pub async fn create_vendor(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    body: Bytes,
) -> Page {
    save_vendor(&state, &member, None, FormData::parse(&body)).await
}

/// POST /vendors/{id}/edit (`vendor.update`).
pub async fn update_vendor(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    save_vendor(
        &state,
        &member,
        Some(parse_id(&id)?),
        FormData::parse(&body),
    )
    .await
}

async fn save_vendor(
    state: &AppState,
    member: &Member,
    existing: Option<Uuid>,
    values: FormData,
) -> Page {
    let mut tx = state.db().begin(&member.ctx()).await?;
    let stored = match existing {
        Some(id) => Some(vendor_for(&mut tx, id).await?),
        None => None,
    };
    let input = match parse_vendor(&values) {
        Ok(input) => input,
        Err(errors) => {
            return Ok(render_vendor_form(
                state,
                member,
                stored.as_ref(),
                &values,
                errors,
            ));
        }
    };
    match people::save_vendor(&mut tx, &state.settings().data_key, existing, &input).await {
        Ok(id) => {
            tx.commit().await?;
            let done = if existing.is_some() {
                "saved"
            } else {
                "created"
            };
            Ok(Redirect::to(&format!("/vendors/{id}?done={done}")).into_response())
        }
        Err(DbError::Duplicate { constraint }) if constraint == "vendor_name" => {
            let mut errors = FieldErrors::default();
            errors.add(
                "name",
                format!("There is already a vendor called {}.", input.name),
            );
            Ok(render_vendor_form(
                state,
                member,
                stored.as_ref(),
                &values,
                errors,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// POST /vendors/{id}/archive (`vendor.archive`).
pub async fn archive_vendor(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    set_archived(&state, &member, &id, true).await
}

/// POST /vendors/{id}/restore (`vendor.archive`: there is no vendor.restore in the catalogue).
pub async fn restore_vendor(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    set_archived(&state, &member, &id, false).await
}

async fn set_archived(state: &AppState, member: &Member, id: &str, archived: bool) -> Page {
    let id = parse_id(id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    vendor_for(&mut tx, id).await?;
    portfolio::set_archived(&mut tx, Archivable::Vendor, id, archived).await?;
    tx.commit().await?;
    let done = if archived { "archived" } else { "restored" };
    Ok(Redirect::to(&format!("/vendors/{id}?done={done}")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bank_details_come_in_pairs_and_are_checked() {
        let base = [("name", "Sparks Ltd"), ("trade", "Electrician")];
        let half = FormData::from_pairs(base.into_iter().chain([("sort_code", "12-34-56")]));
        assert!(
            parse_vendor(&half)
                .unwrap_err()
                .get("account_number")
                .is_some()
        );
        let bad = FormData::from_pairs(
            base.into_iter()
                .chain([("sort_code", "12-34-5"), ("account_number", "12345678")]),
        );
        assert!(parse_vendor(&bad).unwrap_err().get("sort_code").is_some());
    }
}
