//! Authenticator apps: TOTP (RFC 6238) with SHA-1, 6 digits, 30-second steps and one step of
//! clock skew either side — what every authenticator app supports. A code is accepted once: the
//! caller stores the step returned and passes it back as `last_step`.

use totp_rs::{Builder, Secret, Totp};

pub const ISSUER: &str = "PropLink";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    #[error("That code is not right. Check the time on your phone and try the newest code.")]
    Wrong,
    #[error("That code has already been used. Wait for the next one.")]
    Replayed,
    #[error("the stored authenticator secret is damaged")]
    BadSecret,
}

/// A new random secret, base32 (160 bits).
pub fn new_secret() -> String {
    Secret::generate().to_base32()
}

fn totp(secret_base32: &str, account: &str) -> Result<Totp, TotpError> {
    let secret = Secret::try_from_base32(secret_base32).map_err(|_| TotpError::BadSecret)?;
    Builder::new()
        .with_secret(secret)
        .with_account_name(account.replace(':', ""))
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|_| TotpError::BadSecret)
}

/// The `otpauth://` URI an authenticator app scans (shown as a QR code and as text).
pub fn otpauth_uri(secret_base32: &str, account: &str) -> Result<String, TotpError> {
    totp(secret_base32, account)?
        .to_url()
        .map_err(|_| TotpError::BadSecret)
}

/// Checks `code` at `unix_time`. Returns the matched step, which must be stored.
pub fn verify(
    secret_base32: &str,
    code: &str,
    unix_time: u64,
    last_step: Option<u64>,
) -> Result<u64, TotpError> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let step = totp(secret_base32, "user")?
        .check(&code, unix_time)
        .ok_or(TotpError::Wrong)?;
    match last_step {
        Some(last) if step <= last => Err(TotpError::Replayed),
        _ => Ok(step),
    }
}

/// The current code, for tests and for enrolment screens that confirm the app is set up.
pub fn code_at(secret_base32: &str, unix_time: u64) -> Result<String, TotpError> {
    Ok(totp(secret_base32, "user")?.generate(unix_time).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B: the SHA-1 secret "12345678901234567890".
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn rfc_6238_test_vectors() {
        // The RFC lists 8-digit codes; ours are their last six digits.
        for (time, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(code_at(RFC_SECRET, time).unwrap(), eight[2..], "at {time}");
        }
    }

    #[test]
    fn one_step_of_skew_is_allowed_and_a_used_step_is_refused() {
        let secret = new_secret();
        let now = 1_800_000_015;
        let code = code_at(&secret, now).unwrap();
        let step = verify(&secret, &code, now, None).unwrap();
        assert_eq!(step, now / 30);
        assert_eq!(
            verify(&secret, &code, now, Some(step)),
            Err(TotpError::Replayed)
        );
        // The previous step's code still works 30 s later, once; two steps back does not.
        let previous = code_at(&secret, now - 30).unwrap();
        assert_eq!(
            verify(&secret, &previous, now, Some(step - 2)),
            Ok(step - 1)
        );
        let older = code_at(&secret, now - 60).unwrap();
        assert_eq!(verify(&secret, &older, now, None), Err(TotpError::Wrong));
        assert_eq!(
            verify(&secret, "12 34 56", now, None).is_ok(),
            code == "123456"
        );
        assert_eq!(verify(&secret, "abcdef", now, None), Err(TotpError::Wrong));
    }

    #[test]
    fn the_otpauth_uri_names_the_issuer_and_account() {
        let uri = otpauth_uri(RFC_SECRET, "jane@goldcrest.co.uk").unwrap();
        assert!(uri.starts_with("otpauth://totp/PropLink:jane%40goldcrest.co.uk?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), "{uri}");
        assert!(uri.contains("issuer=PropLink"), "{uri}");
        assert_eq!(otpauth_uri("not base32!", "x"), Err(TotpError::BadSecret));
    }
}

/// The `otpauth://` URI as an SVG QR code, to show on the enrolment page (the URI is shown as
/// text beside it for people who cannot scan).
pub fn qr_svg(uri: &str) -> Result<String, TotpError> {
    let code = qrcode::QrCode::new(uri.as_bytes()).map_err(|_| TotpError::BadSecret)?;
    Ok(code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod qr_tests {
    #[test]
    fn the_enrolment_qr_code_is_an_svg() {
        let uri = super::otpauth_uri(&super::new_secret(), "jane@goldcrest.co.uk").unwrap();
        let svg = super::qr_svg(&uri).unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"));
        assert!(svg.len() > 1000);
    }
}
