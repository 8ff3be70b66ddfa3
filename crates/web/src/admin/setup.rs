//! "Set up your organisation" (docs-spec §2.2): the first member's wizard, in three short
//! steps, one page each (`?step=company|branding|modules`): company details, branding,
//! modules. Each step saves as it goes, so leaving half-way loses nothing; the last marks
//! set-up as done and goes to the dashboard. The forms and their checks are the Organisation
//! and Modules pages' own ([`super::settings`]).

use super::form::{FieldErrors, FormData};
use super::settings::{
    BrandingForm, CompanyForm, ModuleOption, TextField, load_profile, module_options, parse_modules,
};
use super::{Member, Shell};
use crate::error::WebError;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use proplink_db::profile::{self, Profile};
use serde::Deserialize;

/// Once set-up is done, the wizard hands over to the settings page that does the same job.
const DONE: &str = "/settings/organisation";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Company,
    Branding,
    Modules,
}

impl Step {
    const ALL: [Step; 3] = [Self::Company, Self::Branding, Self::Modules];

    fn parse(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.key() == key)
    }

    pub fn key(self) -> &'static str {
        match self {
            Self::Company => "company",
            Self::Branding => "branding",
            Self::Modules => "modules",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::Company => "Company details",
            Self::Branding => "Branding",
            Self::Modules => "Modules",
        }
    }

    pub fn number(self) -> usize {
        Self::ALL.iter().position(|s| *s == self).unwrap_or(0) + 1
    }

    fn previous(self) -> Option<Self> {
        match self {
            Self::Company => None,
            Self::Branding => Some(Self::Company),
            Self::Modules => Some(Self::Branding),
        }
    }

    fn href(self) -> String {
        format!("/setup?step={}", self.key())
    }
}

/// One entry of the list of steps at the top of the page.
pub struct StepLink {
    pub href: String,
    pub title: &'static str,
    pub current: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "setup.html")]
struct SetupPage {
    shell: Shell,
    step: Step,
    steps: Vec<StepLink>,
    back: Option<String>,
    errors: FieldErrors,
    fields: Vec<TextField>,
    modules: Vec<ModuleOption>,
    can_manage_modules: bool,
}

impl SetupPage {
    fn new(member: &Member, step: Step, fields: Vec<TextField>, errors: FieldErrors) -> Self {
        Self {
            shell: Shell::new(member, "/setup"),
            step,
            steps: Step::ALL
                .iter()
                .map(|&s| StepLink {
                    href: s.href(),
                    title: s.title(),
                    current: s == step,
                })
                .collect(),
            back: step.previous().map(Step::href),
            errors,
            fields,
            modules: module_options(&member.modules),
            can_manage_modules: member.can("settings.manage_modules"),
        }
    }

    fn for_profile(member: &Member, step: Step, profile: &Profile) -> Self {
        let none = FieldErrors::default();
        let fields = match step {
            Step::Company => CompanyForm::from_profile(profile).fields(&none),
            Step::Branding => BrandingForm::from_profile(profile).fields(&none),
            Step::Modules => Vec::new(),
        };
        Self::new(member, step, fields, none)
    }

    fn refused(self) -> Response {
        (StatusCode::UNPROCESSABLE_ENTITY, self).into_response()
    }
}

#[derive(Debug, Deserialize)]
pub struct StepQuery {
    step: Option<String>,
}

/// GET /setup: the step asked for (the first when none, or one that does not exist).
pub async fn show(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Query(query): Query<StepQuery>,
) -> Result<Response, WebError> {
    if member.setup_done {
        return Ok(Redirect::to(DONE).into_response());
    }
    let step = query
        .step
        .as_deref()
        .and_then(Step::parse)
        .unwrap_or(Step::Company);
    let profile = load_profile(&state, &member).await?;
    Ok(SetupPage::for_profile(&member, step, &profile).into_response())
}

/// POST /setup: saves the step named in the form and moves on.
pub async fn save(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    body: Bytes,
) -> Result<Response, WebError> {
    if member.setup_done {
        return Ok(Redirect::to(DONE).into_response());
    }
    let form = FormData::parse(&body);
    let step = Step::parse(form.get("step")).ok_or(WebError::NotFound)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let next = match step {
        Step::Company => {
            let company = CompanyForm::from_form(&form);
            match company.parse() {
                Ok(details) => profile::save_company(&mut tx, &details).await?,
                Err(errors) => {
                    let fields = company.fields(&errors);
                    return Ok(SetupPage::new(&member, step, fields, errors).refused());
                }
            }
            Step::Branding.href()
        }
        Step::Branding => {
            let branding = BrandingForm::from_form(&form);
            match branding.parse() {
                Ok(b) => {
                    profile::save_branding(&mut tx, b.colour.as_deref(), b.footer.as_deref())
                        .await?
                }
                Err(errors) => {
                    let fields = branding.fields(&errors);
                    return Ok(SetupPage::new(&member, step, fields, errors).refused());
                }
            }
            Step::Modules.href()
        }
        Step::Modules => {
            // Someone whose role cannot switch modules finishes with the modules as they are.
            if member.can("settings.manage_modules") {
                match parse_modules(&form) {
                    Ok(on) => profile::save_modules(&mut tx, &on).await?,
                    Err(errors) => {
                        return Ok(SetupPage::new(&member, step, Vec::new(), errors).refused());
                    }
                }
            }
            profile::complete_setup(&mut tx, state.now()).await?;
            "/dashboard".to_owned()
        }
    };
    tx.commit().await?;
    Ok(Redirect::to(&next).into_response())
}
