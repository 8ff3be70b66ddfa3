//! Organisation slugs: the subdomain that names an organisation (`goldcrest` in
//! `goldcrest.proplinkcloud.com`). A slug is a DNS label, lower case, and not one of the
//! host names the platform keeps for itself.

use std::fmt;

/// Host labels that belong to the platform and can never name an organisation.
pub const RESERVED: &[&str] = &[
    "admin",
    "api",
    "app",
    "assets",
    "auth",
    "billing",
    "cdn",
    "contractorport",
    "demo",
    "dev",
    "docs",
    "ftp",
    "help",
    "imap",
    "login",
    "mail",
    "mx",
    "ns1",
    "ns2",
    "pop",
    "proplink",
    "residenceport",
    "buildingthread",
    "smtp",
    "static",
    "status",
    "support",
    "test",
    "www",
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgSlug(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    #[error("the subdomain is empty")]
    Empty,
    #[error("the subdomain \"{0}\" is longer than 63 characters")]
    TooLong(String),
    #[error(
        "the subdomain \"{0}\" may contain only lower-case letters a-z, digits 0-9 and hyphens"
    )]
    BadCharacter(String),
    #[error("the subdomain \"{0}\" cannot start or end with a hyphen")]
    EdgeHyphen(String),
    #[error("the subdomain \"{0}\" is reserved by PropLink")]
    Reserved(String),
}

impl OrgSlug {
    pub fn parse(input: &str) -> Result<Self, SlugError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(SlugError::Empty);
        }
        if s.len() > 63 {
            return Err(SlugError::TooLong(s.to_owned()));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(SlugError::BadCharacter(s.to_owned()));
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err(SlugError::EdgeHyphen(s.to_owned()));
        }
        if RESERVED.contains(&s) {
            return Err(SlugError::Reserved(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrgSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A record key from a name: lower-case ASCII letters and digits, each run of anything else one
/// underscore, none at either end ("Window cleaning (rope access)" → `window_cleaning_rope_access`).
/// Empty when the name has no ASCII letters or digits.
pub fn snake_key(name: &str) -> String {
    let mut key = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            key.push(c.to_ascii_lowercase());
        } else if !key.is_empty() && !key.ends_with('_') {
            key.push('_');
        }
    }
    key.trim_end_matches('_').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_labels() {
        for ok in [
            "goldcrest",
            "acme-property-group",
            "a",
            "x9",
            &"a".repeat(63),
        ] {
            assert_eq!(
                OrgSlug::parse(ok).map(|s| s.to_string()),
                Ok(ok.to_string())
            );
        }
    }

    #[test]
    fn rejects_what_is_not_a_dns_label_or_is_reserved() {
        assert_eq!(OrgSlug::parse(""), Err(SlugError::Empty));
        assert!(matches!(
            OrgSlug::parse(&"a".repeat(64)),
            Err(SlugError::TooLong(_))
        ));
        assert!(matches!(
            OrgSlug::parse("Goldcrest"),
            Err(SlugError::BadCharacter(_))
        ));
        assert!(matches!(
            OrgSlug::parse("gold_crest"),
            Err(SlugError::BadCharacter(_))
        ));
        assert!(matches!(
            OrgSlug::parse("gold.crest"),
            Err(SlugError::BadCharacter(_))
        ));
        assert!(matches!(
            OrgSlug::parse("-gold"),
            Err(SlugError::EdgeHyphen(_))
        ));
        assert!(matches!(
            OrgSlug::parse("gold-"),
            Err(SlugError::EdgeHyphen(_))
        ));
        assert!(matches!(
            OrgSlug::parse("login"),
            Err(SlugError::Reserved(_))
        ));
        assert!(matches!(
            OrgSlug::parse("admin"),
            Err(SlugError::Reserved(_))
        ));
    }
}
