//! E-mail addresses, checked enough to be worth sending to.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a valid e-mail address")]
pub struct EmailError(pub String);

impl EmailAddress {
    /// Trims, lower-cases the domain, and checks the shape `local@domain.tld`.
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let s = input.trim();
        let bad = || EmailError(s.to_owned());
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return Err(bad());
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii())
        };
        if !domain.contains('.') || !domain.split('.').all(label_ok) {
            return Err(bad());
        }
        // Built in place: a 100,000-line contacts import parses this for every address.
        let mut address = String::with_capacity(s.len());
        address.push_str(local);
        address.push('@');
        if domain.is_ascii() {
            address.extend(domain.chars().map(|c| c.to_ascii_lowercase()));
        } else {
            address.push_str(&domain.to_lowercase());
        }
        Ok(Self(address))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses_and_normalises_the_domain() {
        assert_eq!(
            EmailAddress::parse(" Jane.Doe@Goldcrest.CO.UK ").map(|e| e.to_string()),
            Ok("Jane.Doe@goldcrest.co.uk".to_owned())
        );
    }

    #[test]
    fn rejects_what_cannot_be_delivered() {
        for bad in [
            "",
            "jane",
            "jane@",
            "@x.com",
            "jane@localhost",
            "ja ne@x.com",
            "jane@-x.com",
            "a@b@c.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
