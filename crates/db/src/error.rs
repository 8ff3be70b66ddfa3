//! Database errors, classified by what the caller should tell a person.
//!
//! Policy: the variants say what happened in words a user can act on; the underlying
//! `sqlx::Error` is kept for logs only and never reaches a page or an API body.

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached (down, restarting, network, pool exhausted).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The organisation is read-only or closed; the message is written for people.
    #[error("{0}")]
    ReadOnly(String),
    /// A uniqueness rule was broken; `constraint` names it.
    #[error("that would duplicate an existing record ({constraint})")]
    Duplicate { constraint: String },
    /// A reference points at a record that does not exist (in this organisation).
    #[error("a referenced record does not exist ({constraint})")]
    MissingReference { constraint: String },
    /// A check constraint refused a value.
    #[error("a value was refused by the rule {constraint}")]
    Invalid { constraint: String },
    #[error("not found")]
    NotFound,
    /// Anything else: a bug or an unexpected state. Logged in full, shown as a reference.
    #[error("database error: {0}")]
    Other(#[source] sqlx::Error),
}

impl DbError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => Self::Unavailable(e.to_string()),
            sqlx::Error::Database(db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                let constraint = db.constraint().unwrap_or("unnamed").to_owned();
                match code.as_str() {
                    "PL001" => Self::ReadOnly(db.message().to_owned()),
                    "23505" | "23P01" => Self::Duplicate { constraint },
                    "23503" => Self::MissingReference { constraint },
                    "23514" | "23502" => Self::Invalid { constraint },
                    // A value PostgreSQL cannot store (a NUL byte, too long, not a number…).
                    c if c.starts_with("22") => Self::Invalid {
                        constraint: db.message().to_owned(),
                    },
                    // Statement timeout, serialization failure, deadlock: try again.
                    "57014" | "40001" | "40P01" => Self::Unavailable(db.message().to_owned()),
                    // connection exceptions, shutdown, too many connections
                    c if c.starts_with("08") || c.starts_with("57P") || c == "53300" => {
                        Self::Unavailable(db.message().to_owned())
                    }
                    _ => Self::Other(e),
                }
            }
            _ => Self::Other(e),
        }
    }
}
