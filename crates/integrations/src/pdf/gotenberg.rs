//! Gotenberg 8: HTML to PDF through headless Chromium.
//!
//! `POST /forms/chromium/convert/html`, multipart/form-data, with the page as a file part named
//! `files` whose filename must be `index.html`. Page properties are further form fields:
//! `paperWidth`/`paperHeight` and `marginTop`/`marginBottom`/`marginLeft`/`marginRight` (in
//! inches when given as bare numbers), `printBackground`, `preferCssPageSize`. Gotenberg answers
//! 200 with the PDF (`application/pdf`); 400 when a form field is invalid, 503 when Chromium is
//! busy or the conversion timed out on its side, each with a plain-text body. The
//! `Gotenberg-Trace` request header names the request in Gotenberg's logs and comes back on
//! the response.

use reqwest::multipart::{Form, Part};
use reqwest::{StatusCode, Url};
use std::time::Duration;
use uuid::Uuid;

pub const PROVIDER: &str = "gotenberg";
const CONVERT_HTML_PATH: &str = "/forms/chromium/convert/html";
pub const TRACE_HEADER: &str = "Gotenberg-Trace";

/// How long one conversion may take, Chromium's start included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of an error body is kept: enough for Gotenberg's one-line reasons, not a page.
const ERROR_BODY_LIMIT: usize = 300;

/// The printed page, in inches as Gotenberg takes them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PageSetup {
    pub paper_width: f64,
    pub paper_height: f64,
    pub margin_top: f64,
    pub margin_bottom: f64,
    pub margin_left: f64,
    pub margin_right: f64,
}

impl PageSetup {
    /// A4 (210 × 297 mm) with the margins of PropLink's documents: 18 mm top, 22 mm bottom,
    /// 20 mm at the sides. The HTML's own `@page` rule says the same.
    pub const A4: Self = Self {
        paper_width: 8.27,
        paper_height: 11.7,
        margin_top: 0.71,
        margin_bottom: 0.87,
        margin_left: 0.79,
        margin_right: 0.79,
    };

    fn fields(&self) -> [(&'static str, String); 6] {
        [
            ("paperWidth", self.paper_width.to_string()),
            ("paperHeight", self.paper_height.to_string()),
            ("marginTop", self.margin_top.to_string()),
            ("marginBottom", self.margin_bottom.to_string()),
            ("marginLeft", self.margin_left.to_string()),
            ("marginRight", self.margin_right.to_string()),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GotenbergError {
    #[error("the Gotenberg base URL {0:?} is not an http(s) URL")]
    BadBaseUrl(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("Gotenberg could not be reached: {0}")]
    Unreachable(String),
    #[error("Gotenberg did not answer within {} s", .0.as_secs_f32())]
    Timeout(Duration),
    #[error("Gotenberg answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("Gotenberg answered 200 but not with a PDF (content type {content_type:?})")]
    NotPdf { content_type: String },
}

impl GotenbergError {
    /// Whether sending the same page again later may work: the service was down, busy or slow.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable(_) | Self::Timeout(_) => true,
            Self::Status { status, .. } => *status == 429 || *status >= 500,
            Self::BadBaseUrl(_) | Self::Client(_) | Self::NotPdf { .. } => false,
        }
    }
}

/// Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct GotenbergClient {
    http: reqwest::Client,
    base_url: Url,
    timeout: Duration,
    page: PageSetup,
}

impl GotenbergClient {
    /// `base_url` is the server's root, such as `http://gotenberg:3000`. Install the rustls
    /// crypto provider first.
    pub fn new(base_url: &str) -> Result<Self, GotenbergError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| GotenbergError::Client(e.to_string()))?;
        Ok(Self {
            http,
            base_url: endpoint(base_url)?,
            timeout: DEFAULT_TIMEOUT,
            page: PageSetup::A4,
        })
    }

    /// Replaces [`DEFAULT_TIMEOUT`] for each conversion.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Replaces [`PageSetup::A4`].
    pub fn with_page(mut self, page: PageSetup) -> Self {
        self.page = page;
        self
    }

    /// Prints a standalone HTML page (styles inline, images as data URIs: Gotenberg is sent
    /// this one file only) and gives the PDF's bytes.
    pub async fn html_to_pdf(&self, html: &str) -> Result<Vec<u8>, GotenbergError> {
        let trace = Uuid::now_v7().to_string();
        let converted = self.convert(html, &trace).await;
        if let Err(error) = &converted {
            tracing::warn!(provider = PROVIDER, %trace, %error, "HTML to PDF failed");
        }
        converted
    }

    async fn convert(&self, html: &str, trace: &str) -> Result<Vec<u8>, GotenbergError> {
        let index = Part::text(html.to_owned())
            .file_name("index.html")
            .mime_str("text/html; charset=utf-8")
            .map_err(|e| GotenbergError::Client(e.to_string()))?;
        let mut form = Form::new().part("files", index);
        for (name, value) in self.page.fields() {
            form = form.text(name, value);
        }
        form = form.text("printBackground", "true");

        let response = self
            .http
            .post(self.base_url.clone())
            .timeout(self.timeout)
            .header(TRACE_HEADER, trace)
            .multipart(form)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        if !status.is_success() {
            return Err(status_error(status, &body));
        }
        if !body.starts_with(b"%PDF-") {
            return Err(GotenbergError::NotPdf { content_type });
        }
        Ok(body.to_vec())
    }

    fn transport_error(&self, e: reqwest::Error) -> GotenbergError {
        if e.is_timeout() {
            return GotenbergError::Timeout(self.timeout);
        }
        let e = e.without_url();
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(inner) = source {
            detail.push_str(": ");
            detail.push_str(&inner.to_string());
            source = inner.source();
        }
        GotenbergError::Unreachable(detail)
    }
}

impl std::fmt::Debug for GotenbergClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GotenbergClient")
            .field("endpoint", &self.base_url.as_str())
            .field("timeout", &self.timeout)
            .field("page", &self.page)
            .finish_non_exhaustive()
    }
}

/// `base` followed by the HTML route.
fn endpoint(base: &str) -> Result<Url, GotenbergError> {
    let base = base.trim().trim_end_matches('/');
    let bad = || GotenbergError::BadBaseUrl(base.to_owned());
    let url = Url::parse(&format!("{base}{CONVERT_HTML_PATH}")).map_err(|_| bad())?;
    if matches!(url.scheme(), "http" | "https") {
        Ok(url)
    } else {
        Err(bad())
    }
}

fn status_error(status: StatusCode, body: &[u8]) -> GotenbergError {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let body = match text.char_indices().nth(ERROR_BODY_LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None if text.is_empty() => status
            .canonical_reason()
            .unwrap_or("no reason given")
            .to_owned(),
        None => text.to_owned(),
    };
    GotenbergError::Status {
        status: status.as_u16(),
        body,
    }
}
