//! Settings (docs-spec §2.18): the index, Organisation (company details and branding), Modules,
//! and Roles (§2.2).
//!
//! The route table lets a member read a section; each change checks its own permission here,
//! so someone who may read but not change sees the values without a form. Forms are checked in
//! Rust first, field by field: a refused form comes back at 422 with what was typed and one
//! message per field, and nothing is saved. The database's constraints stay as the last line.
//! The set-up wizard ([`super::setup`]) reuses the forms and checks defined here.

use super::form::{FieldErrors, FormData};
use super::{Member, Shell};
use crate::error::WebError;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use proplink_db::profile::{self, CompanyDetails, MODULES, Profile};
use proplink_db::{DbError, access};
use proplink_domain::permissions::{Area, BuiltInRole, DOMAINS, Permission};
use serde::Deserialize;
use std::collections::BTreeSet;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Forms: reading them, and reporting what is wrong with them

/// One text field as a page shows it: its value (as typed, or as stored) and its problem.
pub(super) struct TextField {
    pub name: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
    pub value: String,
    pub error: Option<String>,
    pub multiline: bool,
    /// The browser stops typing here; the check in Rust is what counts.
    pub maxlength: usize,
    pub autocomplete: &'static str,
}

impl TextField {
    fn new(spec: &FieldSpec, value: &str, errors: &FieldErrors) -> Self {
        Self {
            name: spec.name,
            label: spec.label,
            hint: spec.hint,
            value: value.to_owned(),
            error: errors.get(spec.name).map(str::to_owned),
            multiline: spec.multiline,
            maxlength: spec.maxlength,
            autocomplete: spec.autocomplete,
        }
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

struct FieldSpec {
    name: &'static str,
    label: &'static str,
    hint: &'static str,
    multiline: bool,
    maxlength: usize,
    autocomplete: &'static str,
}

// ---------------------------------------------------------------------------------------------
// Values: each parser normalises what was typed and says exactly what is wrong

/// Free text: trimmed; empty is None; at most `max` characters; no control characters other
/// than line breaks and tabs (PostgreSQL cannot store some, and none belong in a document).
pub(super) fn optional_text(raw: &str, max: usize, what: &str) -> Result<Option<String>, String> {
    let value = raw.trim().replace("\r\n", "\n");
    let length = value.chars().count();
    if length > max {
        return Err(format!(
            "{what} can be at most {max} characters; this one has {length}."
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        return Err(format!(
            "{what} contains a character that cannot be stored. Retype it rather than pasting it."
        ));
    }
    Ok(Some(value).filter(|v| !v.is_empty()))
}

fn without_spaces_upper(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase()
}

/// A Companies House number: 8 digits, or 2 letters and 6 digits. Spaces are dropped and
/// letters upper-cased.
pub(super) fn company_number(raw: &str) -> Result<Option<String>, String> {
    let value = without_spaces_upper(raw);
    if value.is_empty() {
        return Ok(None);
    }
    let b = value.as_bytes();
    let valid = b.len() == 8
        && (b.iter().all(u8::is_ascii_digit)
            || (b[..2].iter().all(u8::is_ascii_uppercase)
                && b[2..].iter().all(u8::is_ascii_digit)));
    if valid {
        Ok(Some(value))
    } else {
        Err("A Companies House number is 8 digits, or 2 letters and 6 digits, e.g. 01234567 or SC123456.".to_owned())
    }
}

/// A UK VAT number: GB and 9 or 12 digits. Spaces are dropped; 9 or 12 digits on their own get
/// the GB in front.
fn vat_number(raw: &str) -> Result<Option<String>, String> {
    let value = without_spaces_upper(raw);
    if value.is_empty() {
        return Ok(None);
    }
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let digits = value.strip_prefix("GB").unwrap_or(&value);
    if matches!(digits.len(), 9 | 12) && all_digits(digits) {
        Ok(Some(format!("GB{digits}")))
    } else {
        Err(
            "A UK VAT number is GB followed by 9 or 12 digits, e.g. GB123456789 or GB123456789001."
                .to_owned(),
        )
    }
}

/// A colour as `#rrggbb` (lower case); the `#` may be left out.
fn brand_colour(raw: &str) -> Result<Option<String>, String> {
    let value = raw.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let hex = value.strip_prefix('#').unwrap_or(value);
    if hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(Some(format!("#{}", hex.to_ascii_lowercase())))
    } else {
        Err(
            "A colour is # followed by 6 hexadecimal digits (0–9 and a–f), e.g. #1d4e89."
                .to_owned(),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Company details and branding (Settings → Organisation, and the wizard's first two steps)

const COMPANY_FIELDS: [FieldSpec; 5] = [
    FieldSpec {
        name: "trading_name",
        label: "Trading name",
        hint: "The name your clients know you by.",
        multiline: false,
        maxlength: 200,
        autocomplete: "organization",
    },
    FieldSpec {
        name: "registered_name",
        label: "Registered name",
        hint: "As registered at Companies House, e.g. Goldcrest Estates Limited.",
        multiline: false,
        maxlength: 200,
        autocomplete: "",
    },
    FieldSpec {
        name: "company_number",
        label: "Companies House number",
        hint: "8 digits, or 2 letters and 6 digits, e.g. 01234567 or SC123456.",
        multiline: false,
        maxlength: 20,
        autocomplete: "",
    },
    FieldSpec {
        name: "vat_number",
        label: "VAT number",
        hint: "GB followed by 9 or 12 digits. Leave empty if you are not VAT registered.",
        multiline: false,
        maxlength: 24,
        autocomplete: "",
    },
    FieldSpec {
        name: "registered_office",
        label: "Registered office address",
        hint: "Printed on demands, invoices and letters.",
        multiline: true,
        maxlength: 500,
        autocomplete: "",
    },
];

const BRANDING_FIELDS: [FieldSpec; 2] = [
    FieldSpec {
        name: "brand_colour",
        label: "Primary colour",
        hint: "# followed by 6 hexadecimal digits, e.g. #1d4e89. Used in ResidencePort and e-mails.",
        multiline: false,
        maxlength: 7,
        autocomplete: "",
    },
    FieldSpec {
        name: "email_footer",
        label: "E-mail footer",
        hint: "Added to the end of every e-mail you send. Applies to new e-mails only.",
        multiline: true,
        maxlength: 1000,
        autocomplete: "",
    },
];

/// Company details as typed (or as stored).
pub(super) struct CompanyForm {
    trading_name: String,
    registered_name: String,
    company_number: String,
    vat_number: String,
    registered_office: String,
}

impl CompanyForm {
    pub(super) fn from_profile(p: &Profile) -> Self {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        Self {
            trading_name: text(&p.trading_name),
            registered_name: text(&p.registered_name),
            company_number: text(&p.company_number),
            vat_number: text(&p.vat_number),
            registered_office: text(&p.registered_office),
        }
    }

    pub(super) fn from_form(f: &FormData) -> Self {
        Self {
            trading_name: f.get("trading_name").to_owned(),
            registered_name: f.get("registered_name").to_owned(),
            company_number: f.get("company_number").to_owned(),
            vat_number: f.get("vat_number").to_owned(),
            registered_office: f.get("registered_office").to_owned(),
        }
    }

    pub(super) fn parse(&self) -> Result<CompanyDetails, FieldErrors> {
        let mut errors = FieldErrors::default();
        let details = CompanyDetails {
            trading_name: errors.take(
                "trading_name",
                optional_text(&self.trading_name, 200, "The trading name"),
            ),
            registered_name: errors.take(
                "registered_name",
                optional_text(&self.registered_name, 200, "The registered name"),
            ),
            company_number: errors.take("company_number", company_number(&self.company_number)),
            vat_number: errors.take("vat_number", vat_number(&self.vat_number)),
            registered_office: errors.take(
                "registered_office",
                optional_text(
                    &self.registered_office,
                    500,
                    "The registered office address",
                ),
            ),
        };
        errors.or(details)
    }

    pub(super) fn fields(&self, errors: &FieldErrors) -> Vec<TextField> {
        let values = [
            &self.trading_name,
            &self.registered_name,
            &self.company_number,
            &self.vat_number,
            &self.registered_office,
        ];
        COMPANY_FIELDS
            .iter()
            .zip(values)
            .map(|(spec, value)| TextField::new(spec, value, errors))
            .collect()
    }
}

/// Branding ready to save.
pub(super) struct Branding {
    pub colour: Option<String>,
    pub footer: Option<String>,
}

/// Branding as typed (or as stored).
pub(super) struct BrandingForm {
    brand_colour: String,
    email_footer: String,
}

impl BrandingForm {
    pub(super) fn from_profile(p: &Profile) -> Self {
        Self {
            brand_colour: p.brand_colour.clone().unwrap_or_default(),
            email_footer: p.email_footer.clone().unwrap_or_default(),
        }
    }

    pub(super) fn from_form(f: &FormData) -> Self {
        Self {
            brand_colour: f.get("brand_colour").to_owned(),
            email_footer: f.get("email_footer").to_owned(),
        }
    }

    pub(super) fn parse(&self) -> Result<Branding, FieldErrors> {
        let mut errors = FieldErrors::default();
        let branding = Branding {
            colour: errors.take("brand_colour", brand_colour(&self.brand_colour)),
            footer: errors.take(
                "email_footer",
                optional_text(&self.email_footer, 1000, "The e-mail footer"),
            ),
        };
        errors.or(branding)
    }

    pub(super) fn fields(&self, errors: &FieldErrors) -> Vec<TextField> {
        BRANDING_FIELDS
            .iter()
            .zip([&self.brand_colour, &self.email_footer])
            .map(|(spec, value)| TextField::new(spec, value, errors))
            .collect()
    }
}

pub(super) async fn load_profile(state: &AppState, member: &Member) -> Result<Profile, WebError> {
    let mut tx = state.db().begin(&member.ctx()).await?;
    let profile = profile::get(&mut tx).await?;
    tx.commit().await?;
    Ok(profile)
}

/// `?saved=1` after a successful save.
#[derive(Debug, Deserialize)]
pub struct SavedQuery {
    saved: Option<String>,
}

impl SavedQuery {
    fn flash(&self, message: &str) -> Option<String> {
        self.saved.as_ref().map(|_| message.to_owned())
    }
}

// ---------------------------------------------------------------------------------------------
// The index

pub struct SectionLink {
    pub href: &'static str,
    pub label: &'static str,
    pub summary: &'static str,
}

/// (permission, href, label, summary)
const SECTIONS: [(&str, &str, &str, &str); 10] = [
    (
        "settings.read",
        "/settings/organisation",
        "Organisation",
        "Company details printed on documents, and branding.",
    ),
    (
        "settings.read",
        "/settings/modules",
        "Modules",
        "Switch Block management, Facilities, Building safety and Lettings on or off.",
    ),
    (
        "user.read",
        "/settings/users",
        "Users and access",
        "Invite people, change their role and scope, deactivate them.",
    ),
    (
        "role.read",
        "/settings/roles",
        "Roles",
        "The seven built-in roles and the ones your organisation made.",
    ),
    (
        "settings.read",
        "/settings/tickets",
        "Tickets",
        "Ticket categories with their defaults and service levels, and routing rules.",
    ),
    (
        "settings.read",
        "/settings/service-categories",
        "Vendor service categories",
        "The trades contractors work in, and the insurance and certificates each requires.",
    ),
    (
        "ledger.read",
        "/settings/financial",
        "Financial settings",
        "Ledger accounts every site's books are opened from, posting roles, and tax rates.",
    ),
    (
        "workflow.read",
        "/settings/approval-chains",
        "Approval chains",
        "Who must approve demands, credit notes, journals and bills before they post.",
    ),
    (
        "data_import.import",
        "/imports",
        "Data import",
        "Bring in sites, buildings, units, contacts and leases from CSV files.",
    ),
    (
        "audit.read",
        "/audit",
        "Audit log",
        "Who changed what, and when.",
    ),
];

#[derive(Template, WebTemplate)]
#[template(path = "settings_index.html")]
struct IndexPage {
    shell: Shell,
    sections: Vec<SectionLink>,
}

/// GET /settings: the sections this member may use; none → 404 like any page out of reach.
pub async fn index(Extension(member): Extension<Member>) -> Result<Response, WebError> {
    let sections: Vec<SectionLink> = SECTIONS
        .iter()
        .filter(|(permission, ..)| member.can(permission))
        .map(|&(_, href, label, summary)| SectionLink {
            href,
            label,
            summary,
        })
        .collect();
    if sections.is_empty() {
        return Err(WebError::NotFound);
    }
    Ok(IndexPage {
        shell: Shell::new(&member, "/settings"),
        sections,
    }
    .into_response())
}

// ---------------------------------------------------------------------------------------------
// Organisation

#[derive(Template, WebTemplate)]
#[template(path = "settings_organisation.html")]
struct OrganisationPage {
    shell: Shell,
    editable: bool,
    errors: FieldErrors,
    company: Vec<TextField>,
    branding: Vec<TextField>,
    has_logo: bool,
    logo_problem: Option<String>,
}

impl OrganisationPage {
    fn new(
        member: &Member,
        company: &CompanyForm,
        branding: &BrandingForm,
        errors: FieldErrors,
    ) -> Self {
        Self {
            shell: Shell::new(member, "/settings"),
            editable: member.can("settings.update_organisation") && !member.read_only(),
            company: company.fields(&errors),
            branding: branding.fields(&errors),
            errors,
            has_logo: false,
            logo_problem: None,
        }
    }
}

/// GET /settings/organisation
pub async fn organisation(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Query(query): Query<SavedQuery>,
) -> Result<Response, WebError> {
    let profile = load_profile(&state, &member).await?;
    let mut page = OrganisationPage::new(
        &member,
        &CompanyForm::from_profile(&profile),
        &BrandingForm::from_profile(&profile),
        FieldErrors::default(),
    );
    page.has_logo = profile.logo_key.is_some();
    page.shell.flash =
        query.flash("Organisation details saved. New e-mails and documents use them from now on.");
    Ok(page.into_response())
}

/// The largest logo accepted: it is shown small, in a page header.
const LOGO_MAX_BYTES: usize = 1024 * 1024;

/// POST /settings/organisation/logo (multipart): the logo shown in ResidencePort's header (PNG,
/// JPEG or WebP up to 1 MB, checked by its content), or `remove=yes` to take it away.
pub async fn save_logo(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    multipart: axum::extract::Multipart,
) -> Result<Response, WebError> {
    member.require_action("settings.update_organisation")?;
    let refuse = async |problem: String| -> Result<Response, WebError> {
        let profile = load_profile(&state, &member).await?;
        let mut page = OrganisationPage::new(
            &member,
            &CompanyForm::from_profile(&profile),
            &BrandingForm::from_profile(&profile),
            FieldErrors::default(),
        );
        page.has_logo = profile.logo_key.is_some();
        page.logo_problem = Some(problem);
        Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
    };
    let posted = match crate::uploads::read(multipart).await {
        Ok(p) => p,
        Err(problem) => return refuse(problem).await,
    };
    let logo = if posted.values.get("remove") == "yes" {
        None
    } else {
        let Some(file) = posted.files_in("logo").next() else {
            return refuse("Choose an image file for the logo.".into()).await;
        };
        if file.bytes.len() > LOGO_MAX_BYTES {
            return refuse("A logo is at most 1 MB: save it smaller and try again.".into()).await;
        }
        let Some(store) = state.settings().files.as_ref() else {
            return refuse("File storage is not set up on this server.".into()).await;
        };
        let allowed = [
            proplink_files::MediaType::Png,
            proplink_files::MediaType::Jpeg,
            proplink_files::MediaType::Webp,
        ];
        match store
            .put(member.org.id.0, &file.name, file.bytes.clone(), &allowed)
            .await
        {
            Ok(stored) => Some((stored.key, stored.media_type.mime().to_owned())),
            Err(proplink_files::UploadError::Store(inner)) => {
                return Err(WebError::Internal(format!("storing a logo: {inner}")));
            }
            Err(refused) => return refuse(refused.to_string()).await,
        }
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    profile::save_logo(
        &mut tx,
        logo.as_ref().map(|(k, m)| (k.as_str(), m.as_str())),
    )
    .await?;
    tx.commit().await?;
    Ok(Redirect::to("/settings/organisation?saved=1").into_response())
}

/// POST /settings/organisation
pub async fn save_organisation(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    body: Bytes,
) -> Result<Response, WebError> {
    member.require_action("settings.update_organisation")?;
    let form = FormData::parse(&body);
    let company = CompanyForm::from_form(&form);
    let branding = BrandingForm::from_form(&form);
    let (details, brand) = match (company.parse(), branding.parse()) {
        (Ok(details), Ok(brand)) => (details, brand),
        (c, b) => {
            let mut errors = c.err().unwrap_or_default();
            errors.extend(b.err().unwrap_or_default());
            let page = OrganisationPage::new(&member, &company, &branding, errors);
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    profile::save_company(&mut tx, &details).await?;
    profile::save_branding(&mut tx, brand.colour.as_deref(), brand.footer.as_deref()).await?;
    tx.commit().await?;
    Ok(Redirect::to("/settings/organisation?saved=1").into_response())
}

// ---------------------------------------------------------------------------------------------
// Modules

/// One module, as a checkbox or a line of the read-only list.
pub(super) struct ModuleOption {
    pub key: &'static str,
    pub name: &'static str,
    pub about: &'static str,
    pub on: bool,
}

fn module_about(key: &str) -> &'static str {
    match key {
        "block" => "Service charges, demands, leaseholders and their accounts.",
        "facilities" => "Tickets, work orders, quotations and planned maintenance.",
        "hrb" => "The golden thread and safety case for higher-risk buildings.",
        "lettings" => "Tenancies and lettings.",
        _ => "",
    }
}

pub(super) fn module_options(on: &[String]) -> Vec<ModuleOption> {
    MODULES
        .iter()
        .map(|&(key, name)| ModuleOption {
            key,
            name,
            about: module_about(key),
            on: on.iter().any(|m| m == key),
        })
        .collect()
}

/// The modules ticked in a form, in navigation order; a key that is not a module is refused.
pub(super) fn parse_modules(form: &FormData) -> Result<Vec<String>, FieldErrors> {
    let mut errors = FieldErrors::default();
    let ticked: BTreeSet<&str> = form.all("module").collect();
    let unknown: Vec<&str> = ticked
        .iter()
        .copied()
        .filter(|k| !MODULES.iter().any(|(m, _)| m == k))
        .collect();
    if !unknown.is_empty() {
        errors.add(
            "modules",
            format!(
                "There is no module called {}. Nothing was changed; choose from the list.",
                unknown.join(", ")
            ),
        );
    }
    let on = MODULES
        .iter()
        .filter(|(k, _)| ticked.contains(k))
        .map(|(k, _)| (*k).to_owned())
        .collect();
    errors.or(on)
}

#[derive(Template, WebTemplate)]
#[template(path = "settings_modules.html")]
struct ModulesPage {
    shell: Shell,
    editable: bool,
    errors: FieldErrors,
    modules: Vec<ModuleOption>,
}

impl ModulesPage {
    fn new(member: &Member, on: &[String], errors: FieldErrors) -> Self {
        Self {
            shell: Shell::new(member, "/settings"),
            editable: member.can("settings.manage_modules") && !member.read_only(),
            errors,
            modules: module_options(on),
        }
    }
}

/// GET /settings/modules
pub async fn modules(
    Extension(member): Extension<Member>,
    Query(query): Query<SavedQuery>,
) -> Result<Response, WebError> {
    let mut page = ModulesPage::new(&member, &member.modules, FieldErrors::default());
    page.shell.flash = query.flash("Modules saved.");
    Ok(page.into_response())
}

/// POST /settings/modules
pub async fn save_modules(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    body: Bytes,
) -> Result<Response, WebError> {
    member.require_action("settings.manage_modules")?;
    let on = match parse_modules(&FormData::parse(&body)) {
        Ok(on) => on,
        Err(errors) => {
            let page = ModulesPage::new(&member, &member.modules, errors);
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    profile::save_modules(&mut tx, &on).await?;
    tx.commit().await?;
    // The navigation is built from the member's modules on each request: the redirect shows
    // the new set.
    Ok(Redirect::to("/settings/modules?saved=1").into_response())
}

// ---------------------------------------------------------------------------------------------
// Roles: the permission catalogue as a page shows it

pub struct PermissionOption {
    pub key: String,
    pub id: String,
    pub label: &'static str,
    pub checked: bool,
}

/// One record type's permissions: a fieldset on the form, a line on a read-only page.
pub struct DomainGroup {
    pub label: &'static str,
    pub options: Vec<PermissionOption>,
}

impl DomainGroup {
    /// "Read, Create, Pay": what a role allows on this record type.
    pub fn granted(&self) -> String {
        self.options
            .iter()
            .filter(|o| o.checked)
            .map(|o| o.label)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub struct AreaGroup {
    area: Area,
    pub label: &'static str,
    pub domains: Vec<DomainGroup>,
}

fn area_label(area: Area) -> &'static str {
    match area {
        Area::Portfolio => "Portfolio",
        Area::People => "People",
        Area::Money => "Money",
        Area::Operations => "Operations and maintenance",
        Area::Compliance => "Compliance and building safety",
        Area::Lettings => "Lettings",
        Area::Shared => "Shared tools",
        Area::Administration => "Administration",
    }
}

/// The whole catalogue grouped by area then record type, `granted` ticked.
fn catalogue(granted: &BTreeSet<String>) -> Vec<AreaGroup> {
    let mut areas: Vec<AreaGroup> = Vec::new();
    for domain in DOMAINS {
        let actions = domain
            .verbs
            .iter()
            .map(|v| (v.key(), v.label()))
            .chain(domain.extras.iter().copied());
        let options = actions
            .map(|(action, label)| {
                let key = format!("{}.{action}", domain.key);
                PermissionOption {
                    id: format!("perm-{}-{action}", domain.key),
                    checked: granted.contains(&key),
                    key,
                    label,
                }
            })
            .collect();
        let group = DomainGroup {
            label: domain.label,
            options,
        };
        match areas.iter_mut().find(|a| a.area == domain.area) {
            Some(area) => area.domains.push(group),
            None => areas.push(AreaGroup {
                area: domain.area,
                label: area_label(domain.area),
                domains: vec![group],
            }),
        }
    }
    areas
}

/// Only what is granted, for read-only pages.
fn granted_catalogue(granted: &BTreeSet<String>) -> Vec<AreaGroup> {
    let mut areas = catalogue(granted);
    for area in &mut areas {
        area.domains.retain(|d| d.options.iter().any(|o| o.checked));
    }
    areas.retain(|a| !a.domains.is_empty());
    areas
}

fn keys(permissions: &BTreeSet<Permission>) -> BTreeSet<String> {
    permissions.iter().map(|p| p.as_str().to_owned()).collect()
}

/// Stored keys that still exist in the catalogue.
fn known_keys(stored: &[String]) -> BTreeSet<String> {
    stored
        .iter()
        .filter(|k| Permission::parse(k).is_some())
        .cloned()
        .collect()
}

fn role_purpose(role: BuiltInRole) -> &'static str {
    match role {
        BuiltInRole::OrganisationOwner => {
            "Everything, including the subscription and billing. Held by the person who opened the account."
        }
        BuiltInRole::Administrator => "Everything except the subscription and billing.",
        BuiltInRole::Manager => {
            "Runs the portfolio day to day; reads administration and can invite users."
        }
        BuiltInRole::Accountant => "The books: all of Money, and reading everything else.",
        BuiltInRole::SiteManager => {
            "On site: operations and compliance, reading the rest of the portfolio."
        }
        BuiltInRole::MaintenanceCoordinator => {
            "Tickets, work orders, quotations and the vendors who do the work."
        }
        BuiltInRole::ReadOnly => "Reads everything except the audit log; changes nothing.",
    }
}

/// A role in a path: a built-in key (`manager`) or a custom role's id. Anything else is a page
/// that does not exist.
enum RoleRef {
    BuiltIn(BuiltInRole),
    Custom(Uuid),
}

impl RoleRef {
    fn parse(id: &str) -> Result<Self, WebError> {
        BuiltInRole::from_key(id)
            .map(Self::BuiltIn)
            .or_else(|| Uuid::parse_str(id).ok().map(Self::Custom))
            .ok_or(WebError::NotFound)
    }
}

// ---------------------------------------------------------------------------------------------
// Roles: the form

/// A custom role as typed (or as stored).
struct RoleForm {
    name: String,
    description: String,
    permissions: BTreeSet<String>,
}

/// A custom role ready to save.
struct NewRole {
    name: String,
    description: String,
    permissions: BTreeSet<Permission>,
}

impl RoleForm {
    fn empty() -> Self {
        Self {
            name: String::new(),
            description: String::new(),
            permissions: BTreeSet::new(),
        }
    }

    fn from_role(role: &access::CustomRole) -> Self {
        Self {
            name: role.name.clone(),
            description: role.description.clone(),
            permissions: known_keys(&role.permissions),
        }
    }

    fn from_form(f: &FormData) -> Self {
        Self {
            name: f.get("name").to_owned(),
            description: f.get("description").to_owned(),
            permissions: f.all("permission").map(str::to_owned).collect(),
        }
    }

    /// Checks the form against the catalogue; whether the name is taken needs the database
    /// ([`name_taken`]).
    /// `allowed`: the acting member's own permissions. Nobody can give a role more than they
    /// have (otherwise a role editor could raise themselves, or anyone they invite).
    fn parse(&self, allowed: &BTreeSet<Permission>) -> Result<NewRole, FieldErrors> {
        let mut errors = FieldErrors::default();
        let name = errors.take("name", role_name(&self.name));
        let description = errors
            .take(
                "description",
                optional_text(&self.description, 500, "The description"),
            )
            .unwrap_or_default();
        let unknown: Vec<&str> = self
            .permissions
            .iter()
            .filter(|k| Permission::parse(k).is_none())
            .map(String::as_str)
            .collect();
        let permissions: BTreeSet<Permission> = self
            .permissions
            .iter()
            .filter_map(|k| Permission::parse(k))
            .collect();
        if !unknown.is_empty() {
            errors.add(
                "permissions",
                format!(
                    "These permissions do not exist: {}. Reload the page and choose again.",
                    unknown.join(", ")
                ),
            );
        } else if permissions.is_empty() {
            errors.add(
                "permissions",
                "Choose at least one permission: a role without any lets its members do nothing.",
            );
        } else {
            let beyond: Vec<&str> = permissions
                .difference(allowed)
                .map(|p| p.as_str())
                .collect();
            if !beyond.is_empty() {
                errors.add(
                    "permissions",
                    format!(
                        "You can only give a role permissions you have yourself. Not yours: {}.",
                        beyond.join(", ")
                    ),
                );
            }
        }
        errors.or(NewRole {
            name,
            description,
            permissions,
        })
    }
}

/// A custom role's name: required, at most 80 characters, and not a built-in role's name
/// (two roles called "Manager" would be impossible to tell apart in a picker).
fn role_name(raw: &str) -> Result<String, String> {
    let name = optional_text(raw, 80, "A role name")?
        .ok_or_else(|| "Enter a name for the role.".to_owned())?;
    if name.contains(['\n', '\t']) {
        return Err("A role name is a single line: remove the line breaks.".to_owned());
    }
    match BuiltInRole::ALL
        .iter()
        .find(|r| r.name().to_lowercase() == name.to_lowercase())
    {
        Some(builtin) => Err(format!(
            "{} is the name of a built-in role. Choose a different name.",
            builtin.name()
        )),
        None => Ok(name),
    }
}

/// The message when another custom role (archived ones included) already has this name.
async fn name_taken(
    tx: &mut proplink_db::TenantTx,
    name: &str,
    except: Option<Uuid>,
) -> Result<Option<String>, WebError> {
    let wanted = name.to_lowercase();
    let roles = access::custom_roles(tx).await?;
    Ok(roles
        .iter()
        .find(|r| Some(r.id) != except && r.name.to_lowercase() == wanted)
        .map(|r| duplicate_message(&r.name, r.archived_at.is_some())))
}

fn duplicate_message(name: &str, archived: bool) -> String {
    let archived = if archived { " (archived)" } else { "" };
    format!("There is already a role called {name}{archived}. Choose a different name.")
}

/// Offered on a custom role's page to members who may archive it.
pub struct ArchivePanel {
    pub action: String,
    pub name: String,
    /// Active or invited members holding the role now.
    pub holders: i64,
}

#[derive(Template, WebTemplate)]
#[template(path = "settings_role_form.html")]
struct RoleFormPage {
    shell: Shell,
    heading: String,
    action: String,
    submit: &'static str,
    name: String,
    description: String,
    errors: FieldErrors,
    areas: Vec<AreaGroup>,
    archive: Option<ArchivePanel>,
}

impl RoleFormPage {
    fn new(member: &Member, editing: Option<Uuid>, form: &RoleForm, errors: FieldErrors) -> Self {
        let (heading, action, submit) = match editing {
            None => (
                "Add a role".to_owned(),
                "/settings/roles/new".to_owned(),
                "Create role",
            ),
            Some(id) => (
                format!("Edit {}", form.name.trim()),
                format!("/settings/roles/{id}"),
                "Save changes",
            ),
        };
        let known = form
            .permissions
            .iter()
            .filter(|k| Permission::parse(k).is_some())
            .cloned()
            .collect();
        Self {
            shell: Shell::new(member, "/settings"),
            heading,
            action,
            submit,
            name: form.name.clone(),
            description: form.description.clone(),
            errors,
            areas: catalogue(&known),
            archive: None,
        }
    }

    fn refused(self) -> Response {
        (StatusCode::UNPROCESSABLE_ENTITY, self).into_response()
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "settings_role.html")]
struct RolePage {
    shell: Shell,
    name: String,
    kind: &'static str,
    summary: String,
    archived: bool,
    count: usize,
    areas: Vec<AreaGroup>,
    problem: Option<String>,
    archive: Option<ArchivePanel>,
}

impl RolePage {
    fn built_in(member: &Member, role: BuiltInRole) -> Self {
        let granted = keys(&role.permissions());
        Self {
            shell: Shell::new(member, "/settings"),
            name: role.name().to_owned(),
            kind: "Built-in role",
            summary: role_purpose(role).to_owned(),
            archived: false,
            count: granted.len(),
            areas: granted_catalogue(&granted),
            problem: None,
            archive: None,
        }
    }

    fn custom(member: &Member, role: &access::CustomRole) -> Self {
        let granted = known_keys(&role.permissions);
        Self {
            shell: Shell::new(member, "/settings"),
            name: role.name.clone(),
            kind: "Custom role",
            summary: role.description.clone(),
            archived: role.archived_at.is_some(),
            count: granted.len(),
            areas: granted_catalogue(&granted),
            problem: None,
            archive: None,
        }
    }
}

/// How many members (active or invited) hold a custom role.
async fn holders(tx: &mut proplink_db::TenantTx, role: Uuid) -> Result<i64, WebError> {
    let members = access::members(tx).await?;
    let n = members
        .iter()
        .filter(|m| m.custom_role_id == Some(role) && m.status != "deactivated")
        .count();
    Ok(i64::try_from(n).unwrap_or(i64::MAX))
}

fn members_phrase(n: i64) -> String {
    match n {
        1 => "1 member".to_owned(),
        n => format!("{n} members"),
    }
}

// ---------------------------------------------------------------------------------------------
// Roles: handlers

pub struct RoleRow {
    pub href: String,
    pub name: String,
    pub summary: String,
    pub permissions: usize,
    pub archived: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "settings_roles.html")]
struct RolesPage {
    shell: Shell,
    can_create: bool,
    built_in: Vec<RoleRow>,
    custom: Vec<RoleRow>,
}

/// GET /settings/roles
pub async fn roles(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
) -> Result<Response, WebError> {
    let mut tx = state.db().begin(&member.ctx()).await?;
    let custom = access::custom_roles(&mut tx).await?;
    tx.commit().await?;
    let built_in = BuiltInRole::ALL
        .iter()
        .map(|&r| RoleRow {
            href: format!("/settings/roles/{}", r.key()),
            name: r.name().to_owned(),
            summary: role_purpose(r).to_owned(),
            permissions: r.permissions().len(),
            archived: false,
        })
        .collect();
    let custom = custom
        .iter()
        .map(|r| RoleRow {
            href: format!("/settings/roles/{}", r.id),
            name: r.name.clone(),
            summary: r.description.clone(),
            permissions: known_keys(&r.permissions).len(),
            archived: r.archived_at.is_some(),
        })
        .collect();
    Ok(RolesPage {
        shell: Shell::new(&member, "/settings"),
        can_create: member.can("role.create") && !member.read_only(),
        built_in,
        custom,
    }
    .into_response())
}

/// GET /settings/roles/new
pub async fn new_role(Extension(member): Extension<Member>) -> Result<Response, WebError> {
    Ok(
        RoleFormPage::new(&member, None, &RoleForm::empty(), FieldErrors::default())
            .into_response(),
    )
}

/// POST /settings/roles/new
pub async fn create_role(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = RoleForm::from_form(&FormData::parse(&body));
    let role = match form.parse(&member.grants.permissions) {
        Ok(role) => role,
        Err(errors) => return Ok(RoleFormPage::new(&member, None, &form, errors).refused()),
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    if let Some(message) = name_taken(&mut tx, &role.name, None).await? {
        let mut errors = FieldErrors::default();
        errors.add("name", message);
        return Ok(RoleFormPage::new(&member, None, &form, errors).refused());
    }
    let saved = access::save_custom_role(
        &mut tx,
        None,
        &role.name,
        &role.description,
        &role.permissions,
    )
    .await;
    let id = match saved {
        Ok(id) => id,
        // Someone else took the name since the check above.
        Err(DbError::Duplicate { .. }) => {
            let mut errors = FieldErrors::default();
            errors.add("name", duplicate_message(&role.name, false));
            return Ok(RoleFormPage::new(&member, None, &form, errors).refused());
        }
        Err(e) => return Err(e.into()),
    };
    tx.commit().await?;
    Ok(Redirect::to(&format!("/settings/roles/{id}?saved=1")).into_response())
}

#[derive(Debug, Deserialize)]
pub struct RoleQuery {
    saved: Option<String>,
    archived: Option<String>,
}

impl RoleQuery {
    fn flash(&self) -> Option<String> {
        if let Some(n) = self.archived.as_deref().and_then(|n| n.parse::<i64>().ok()) {
            return Some(match n {
                0 => "Role archived. Nobody holds it.".to_owned(),
                n => format!(
                    "Role archived. {} still {} it: they keep the role name, but it grants nothing until you give them another role in Users and access.",
                    members_phrase(n),
                    if n == 1 { "holds" } else { "hold" }
                ),
            });
        }
        self.saved.as_ref().map(|_| "Role saved.".to_owned())
    }
}

/// GET /settings/roles/{id}: a built-in role (read-only), or a custom role: its form for
/// members who may change it, else read-only.
pub async fn role(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    Query(query): Query<RoleQuery>,
) -> Result<Response, WebError> {
    let id = match RoleRef::parse(&id)? {
        RoleRef::BuiltIn(role) => return Ok(RolePage::built_in(&member, role).into_response()),
        RoleRef::Custom(id) => id,
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    let role = access::custom_role(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    let live = role.archived_at.is_none() && !member.read_only();
    let archive = if live && member.can("role.archive") {
        Some(ArchivePanel {
            action: format!("/settings/roles/{id}/archive"),
            name: role.name.clone(),
            holders: holders(&mut tx, id).await?,
        })
    } else {
        None
    };
    tx.commit().await?;
    let flash = query.flash();
    if live && member.can("role.update") {
        let mut page = RoleFormPage::new(
            &member,
            Some(id),
            &RoleForm::from_role(&role),
            FieldErrors::default(),
        );
        page.archive = archive;
        page.shell.flash = flash;
        return Ok(page.into_response());
    }
    let mut page = RolePage::custom(&member, &role);
    page.archive = archive;
    page.shell.flash = flash;
    Ok(page.into_response())
}

/// POST /settings/roles/{id}
pub async fn update_role(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    member.require_action("role.update")?;
    let id = match RoleRef::parse(&id)? {
        // Built-in roles are the same for every organisation: nobody changes them.
        RoleRef::BuiltIn(_) => return Err(WebError::Forbidden),
        RoleRef::Custom(id) => id,
    };
    let form = RoleForm::from_form(&FormData::parse(&body));
    let mut tx = state.db().begin(&member.ctx()).await?;
    let existing = access::custom_role(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    if existing.archived_at.is_some() {
        let mut page = RolePage::custom(&member, &existing);
        page.problem = Some(
            "This role is archived, so it can no longer be changed. Nothing was saved.".to_owned(),
        );
        return Ok((StatusCode::CONFLICT, page).into_response());
    }
    // Nobody edits the role they hold themselves (they could give themselves anything).
    let own = access::member(&mut tx, member.membership_id).await?;
    if own.is_some_and(|m| m.custom_role_id == Some(id)) {
        let mut page = RolePage::custom(&member, &existing);
        page.problem = Some(
            "You hold this role yourself, so another administrator must change it. Nothing was saved."
                .to_owned(),
        );
        return Ok((StatusCode::FORBIDDEN, page).into_response());
    }
    let role = match form.parse(&member.grants.permissions) {
        Ok(role) => role,
        Err(errors) => return Ok(RoleFormPage::new(&member, Some(id), &form, errors).refused()),
    };
    if let Some(message) = name_taken(&mut tx, &role.name, Some(id)).await? {
        let mut errors = FieldErrors::default();
        errors.add("name", message);
        return Ok(RoleFormPage::new(&member, Some(id), &form, errors).refused());
    }
    let saved = access::save_custom_role(
        &mut tx,
        Some(id),
        &role.name,
        &role.description,
        &role.permissions,
    )
    .await;
    match saved {
        Ok(_) => {}
        Err(DbError::Duplicate { .. }) => {
            let mut errors = FieldErrors::default();
            errors.add("name", duplicate_message(&role.name, false));
            return Ok(RoleFormPage::new(&member, Some(id), &form, errors).refused());
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(Redirect::to(&format!("/settings/roles/{id}?saved=1")).into_response())
}

/// POST /settings/roles/{id}/archive: the role stays (members keep its name) but grants
/// nothing. The page then says how many members still hold it.
pub async fn archive_role(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let RoleRef::Custom(id) = RoleRef::parse(&id)? else {
        return Err(WebError::NotFound);
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    let role = access::custom_role(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    if role.archived_at.is_some() {
        // A second click, or a second tab: it is done already.
        tx.rollback().await?;
        return Ok(Redirect::to(&format!("/settings/roles/{id}")).into_response());
    }
    let still_holding = access::archive_custom_role(&mut tx, id, state.now()).await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/settings/roles/{id}?archived={still_holding}")).into_response())
}
