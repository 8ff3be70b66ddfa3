//! How errors reach people.
//!
//! Policy: a page never shows internals. Each error renders the shared error page with a
//! sentence the reader can act on, and the request's reference so support can find the log
//! line. Database trouble is a 503 ("nothing was saved"), a read-only organisation a 409 with
//! the database's own sentence, anything unexpected a 500 that is logged in full.

use askama::Template;
use askama_web::WebTemplate;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use proplink_db::DbError;

tokio::task_local! {
    /// The current request's id, for error pages (set by the request-context middleware).
    pub static REQUEST_ID: String;
}

pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("not found")]
    NotFound,
    /// The member may see this but not do it (their role does not include the permission).
    #[error("forbidden")]
    Forbidden,
    /// Too many attempts: the message says when to try again.
    #[error("{0}")]
    TooManyRequests(String),
    #[error("{0}")]
    ReadOnly(String),
    /// The change would duplicate something that exists.
    #[error("duplicate: {0}")]
    Conflict(String),
    /// A value was refused by the database's rules.
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<DbError> for WebError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound => Self::NotFound,
            DbError::ReadOnly(m) => Self::ReadOnly(m),
            DbError::Unavailable(m) => Self::Unavailable(m),
            DbError::Duplicate { constraint } => Self::Conflict(constraint),
            DbError::Invalid { constraint } | DbError::MissingReference { constraint } => {
                Self::Invalid(constraint)
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub title: String,
    pub message: String,
    pub reference: Option<String>,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let reference = current_request_id();
        let (status, title, message) = match &self {
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                "Page not found",
                "There is nothing at this address. Check the link you followed, or ask the person who sent it.".to_owned(),
            ),
            Self::Forbidden => (
                StatusCode::FORBIDDEN,
                "You do not have permission to do that",
                "Your role in this organisation does not allow this. Nothing was changed. If you need it, ask an administrator to change your role.".to_owned(),
            ),
            Self::TooManyRequests(m) => (StatusCode::TOO_MANY_REQUESTS, "Too many attempts", m.clone()),
            Self::ReadOnly(m) => (StatusCode::CONFLICT, "This organisation is read-only", m.clone()),
            Self::Conflict(detail) => {
                tracing::info!(constraint = %detail, "duplicate refused");
                (
                    StatusCode::CONFLICT,
                    "That already exists",
                    "Nothing was saved: it would duplicate a record that already exists.".to_owned(),
                )
            }
            Self::Invalid(detail) => {
                tracing::info!(constraint = %detail, "value refused");
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Something in the form was not accepted",
                    "Nothing was saved: one of the values is not allowed (too long, or containing characters that cannot be stored). Go back, correct it and try again.".to_owned(),
                )
            }
            Self::Unavailable(detail) => {
                tracing::error!(error = %detail, "database unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "PropLink is briefly unavailable",
                    "We cannot reach our database just now. Nothing you sent was saved; please try again in a minute.".to_owned(),
                )
            }
            Self::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Something went wrong on our side and nothing was changed. If it happens again, contact support and quote the reference below.".to_owned(),
                )
            }
        };
        let page = ErrorPage {
            title: title.to_owned(),
            message,
            reference,
        };
        (status, page).into_response()
    }
}
