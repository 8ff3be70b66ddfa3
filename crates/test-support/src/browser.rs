//! Headless Chromium for end-to-end tests of the web front doors.
//!
//! [`Browser::launch`] starts Debian's `chromium` with a profile of its own (nextest runs tests
//! as parallel processes, and chromiumoxide's default profile directory is shared), and
//! [`Page`] wraps a tab with helpers that wait: each polls for up to ten seconds, then panics
//! naming the selector and the page's URL. Waiting by polling keeps the tests free of races
//! between a click and the navigation or script it starts.
//!
//! A missing Chromium is a failure with the way to install it, never a skip.

use chromiumoxide::cdp::browser_protocol::network::{CookieParam, GetCookiesParams};
use chromiumoxide::error::CdpError;
use futures::StreamExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

pub use chromiumoxide::cdp::browser_protocol::network::Cookie;

/// How long a helper waits before it fails the test.
pub const TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);

/// A headless Chromium with its own profile directory, removed on [`Browser::close`] (and, as
/// far as possible, on drop).
pub struct Browser {
    inner: chromiumoxide::Browser,
    handler: JoinHandle<()>,
    profile: PathBuf,
}

impl Browser {
    /// Starts Chromium: `$PROPLINK_CHROMIUM`, else `chromium` on `PATH`, else `/usr/bin/chromium`.
    pub async fn launch() -> Self {
        let executable = chromium_executable();
        let profile = std::env::temp_dir().join(format!(
            "proplink-chromium-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&profile)
            .unwrap_or_else(|e| panic!("create the profile directory {}: {e}", profile.display()));
        let config = chromiumoxide::BrowserConfig::builder()
            .chrome_executable(&executable)
            .no_sandbox()
            .new_headless_mode()
            .user_data_dir(&profile)
            .arg("disable-gpu")
            .arg("disable-quic")
            .arg("disable-component-update")
            .arg("no-default-browser-check")
            .launch_timeout(LAUNCH_TIMEOUT)
            .build()
            .unwrap_or_else(|e| panic!("Chromium configuration: {e}"));
        let (inner, mut handler) = match chromiumoxide::Browser::launch(config).await {
            Ok(launched) => launched,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&profile);
                panic!("launching {}: {e}", executable.display());
            }
        };
        // The handler is the CDP connection: nothing reaches the browser unless it is polled.
        let handler = tokio::spawn(async move {
            while let Some(event) = handler.next().await {
                // A message this version cannot parse is no reason to drop the connection.
                if let Err(CdpError::Ws(_)) = event {
                    break;
                }
            }
        });
        Self {
            inner,
            handler,
            profile,
        }
    }

    /// Opens a blank tab.
    pub async fn new_page(&self) -> Page {
        match tokio::time::timeout(TIMEOUT, self.inner.new_page("about:blank")).await {
            Ok(Ok(inner)) => Page { inner },
            Ok(Err(e)) => panic!("opening a tab: {e}"),
            Err(_) => panic!("opening a tab: no answer within {TIMEOUT:?}"),
        }
    }

    /// Closes Chromium, waits for it to exit and removes its profile directory.
    pub async fn close(mut self) {
        let inner = &mut self.inner;
        let closed = tokio::time::timeout(TIMEOUT, inner.close()).await;
        if !matches!(closed, Ok(Ok(_))) {
            let _ = inner.kill().await;
        }
        if tokio::time::timeout(TIMEOUT, inner.wait()).await.is_err() {
            let _ = inner.kill().await;
        }
        // Drop stops the handler and removes the profile.
    }
}

impl Drop for Browser {
    /// After `close`, or for a test that panicked before it: kill Chromium if it still runs,
    /// then remove its profile.
    fn drop(&mut self) {
        self.handler.abort();
        if let Some(child) = self.inner.get_mut_child() {
            let child = child.as_mut_inner();
            let _ = child.start_kill();
            // Drop cannot await; the exit after SIGKILL takes milliseconds.
            let deadline = Instant::now() + Duration::from_secs(2);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        remove_profile(&self.profile);
    }
}

/// Chromium's helper processes can still be writing for a moment after the browser exits.
fn remove_profile(profile: &Path) {
    for _ in 0..20 {
        match std::fs::remove_dir_all(profile) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                std::thread::sleep(Duration::from_millis(50));
            }
            _ => return,
        }
    }
}

fn chromium_executable() -> PathBuf {
    const HOW: &str = "run .ci/run, or `apt-get install chromium`";
    if let Some(path) = std::env::var_os("PROPLINK_CHROMIUM") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "PROPLINK_CHROMIUM={} does not exist: {HOW}",
            path.display()
        );
        return path;
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromium"))
            .find(|candidate| candidate.is_file())
    });
    let path = on_path.unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.is_file(),
        "Chromium is not installed (no `chromium` on PATH, no /usr/bin/chromium): {HOW}"
    );
    path
}

/// A browser tab. Every helper waits up to [`TIMEOUT`], then panics with the page's URL.
#[derive(Clone, Debug)]
pub struct Page {
    inner: chromiumoxide::Page,
}

impl Page {
    /// The chromiumoxide page, for what the helpers do not cover.
    pub fn inner(&self) -> &chromiumoxide::Page {
        &self.inner
    }

    /// Brings the tab to the front, as a person switching tabs would. Chromium delivers
    /// synthetic mouse clicks only to the tab in front: with several tabs open, switch before
    /// clicking in another.
    pub async fn bring_to_front(&self) {
        match tokio::time::timeout(TIMEOUT, self.inner.bring_to_front()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("bringing a tab to the front: {e}"),
            Err(_) => panic!("bringing a tab to the front: no answer within {TIMEOUT:?}"),
        }
    }

    /// Navigates to `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        match tokio::time::timeout(TIMEOUT, self.inner.goto(url)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("goto {url}: {e}"),
            Err(_) => panic!("goto {url}: not loaded within {TIMEOUT:?}"),
        }
    }

    /// Waits until an element matches `css`.
    pub async fn wait_for(&self, css: &str) {
        self.poll(&format!("waiting for `{css}`"), async || {
            self.find(css).await.map(drop)
        })
        .await;
    }

    /// Clears the field matching `css`, then types `text` into it as a user would.
    pub async fn fill(&self, css: &str, text: &str) {
        let what = format!("filling `{css}`");
        self.poll(&what, async || {
            let field = self.find(css).await?;
            field
                .call_js_fn(
                    "function() { this.focus(); this.value = ''; \
                     this.dispatchEvent(new Event('input', { bubbles: true })); }",
                    false,
                )
                .await
                .map_err(|e| e.to_string())?;
            field.type_str(text).await.map_err(|e| e.to_string())?;
            Ok(())
        })
        .await;
        let value = self
            .evaluate_string(&format!(
                "String(document.querySelector({}).value)",
                js_string(css)
            ))
            .await;
        if value != text {
            let url = self.current_url_for_message().await;
            panic!("filling `{css}` on {url}: typed {text:?} but the field holds {value:?}");
        }
    }

    /// Chooses `paths` in the file input matching `css`, as a person picking files would.
    pub async fn set_files(&self, css: &str, paths: &[&std::path::Path]) {
        use chromiumoxide::cdp::browser_protocol::dom::SetFileInputFilesParams;
        let files: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        self.poll(&format!("choosing files in `{css}`"), async || {
            let input = self.find(css).await?;
            let mut params = SetFileInputFilesParams::new(files.clone());
            params.backend_node_id = Some(input.backend_node_id);
            self.inner
                .execute(params)
                .await
                .map_err(|e| e.to_string())?;
            Ok(())
        })
        .await;
    }

    /// Clicks the element matching `css` with the mouse. For a click that loads a new page,
    /// use [`Page::click_and_wait_navigation`].
    pub async fn click(&self, css: &str) {
        self.poll(&format!("clicking `{css}`"), async || {
            let element = self.find(css).await?;
            element.click().await.map_err(|e| e.to_string())?;
            Ok(())
        })
        .await;
    }

    /// Clicks the element matching `css` and waits until a new document has loaded (a form
    /// submission or a link; not a change of the URL's fragment or `history.pushState`).
    pub async fn click_and_wait_navigation(&self, css: &str) {
        // The marker lives in the old document's window, so its absence means a new document.
        let marker = "window.__proplinkBeforeNavigation";
        self.evaluate_string(&format!("{marker} = 'set'")).await;
        self.click(css).await;
        self.poll(&format!("a page load after clicking `{css}`"), async || {
            let loaded = self
                .evaluate(&format!(
                    "{marker} === undefined && document.readyState === 'complete'"
                ))
                .await?;
            if loaded == serde_json::Value::Bool(true) {
                Ok(())
            } else {
                Err("still on the old document".to_owned())
            }
        })
        .await;
    }

    /// The `innerText` of the first element matching `css`, once there is one.
    pub async fn text(&self, css: &str) -> String {
        self.poll(&format!("reading `{css}`"), async || {
            self.inner_text(css).await
        })
        .await
    }

    /// Waits until the `innerText` of the element matching `css` contains `fragment`.
    pub async fn wait_for_text(&self, css: &str, fragment: &str) -> String {
        let what = format!("waiting for `{css}` to contain {fragment:?}");
        self.poll(&what, async || {
            let text = self.inner_text(css).await?;
            if text.contains(fragment) {
                Ok(text)
            } else {
                Err(format!("its text is {text:?}"))
            }
        })
        .await
    }

    /// The URL of the page's main frame.
    pub async fn url(&self) -> String {
        match tokio::time::timeout(TIMEOUT, self.inner.url()).await {
            Ok(Ok(url)) => url.unwrap_or_default(),
            Ok(Err(e)) => panic!("reading the page's URL: {e}"),
            Err(_) => panic!("reading the page's URL: no answer within {TIMEOUT:?}"),
        }
    }

    /// Waits until the page's URL contains `fragment`, and returns the URL.
    pub async fn wait_for_url_containing(&self, fragment: &str) -> String {
        let what = format!("waiting for the URL to contain {fragment:?}");
        self.poll(&what, async || {
            let url = self.inner.url().await.map_err(|e| e.to_string())?;
            match url {
                Some(url) if url.contains(fragment) => Ok(url),
                _ => Err("the URL does not match".to_owned()),
            }
        })
        .await
    }

    /// The page's current HTML (the live DOM serialised, not the bytes the server sent).
    pub async fn html(&self) -> String {
        self.poll("reading the page's HTML", async || {
            self.inner.content().await.map_err(|e| e.to_string())
        })
        .await
    }

    /// Evaluates `js` in the page (awaiting a promise) and returns its result, which must be a
    /// string.
    pub async fn evaluate_string(&self, js: &str) -> String {
        match tokio::time::timeout(TIMEOUT, self.evaluate(js)).await {
            Ok(Ok(serde_json::Value::String(value))) => value,
            Ok(Ok(other)) => {
                let url = self.current_url_for_message().await;
                panic!("evaluating `{js}` on {url}: expected a string, got {other}")
            }
            Ok(Err(e)) => {
                let url = self.current_url_for_message().await;
                panic!("evaluating `{js}` on {url}: {e}")
            }
            Err(_) => {
                let url = self.current_url_for_message().await;
                panic!("evaluating `{js}` on {url}: no answer within {TIMEOUT:?}")
            }
        }
    }

    /// The cookies Chromium would send to the page's current URL.
    pub async fn cookies(&self) -> Vec<Cookie> {
        let url = self.url().await;
        self.cookies_for(&url).await
    }

    /// Gives the browser a cookie for `url`'s host (such as a session made by the test), as if
    /// that host had set it.
    pub async fn set_cookie(&self, url: &str, name: &str, value: &str) {
        let cookie = CookieParam::builder()
            .name(name)
            .value(value)
            .url(url)
            .build()
            .unwrap_or_else(|e| panic!("a cookie for {url}: {e}"));
        match tokio::time::timeout(TIMEOUT, self.inner.set_cookie(cookie)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("setting a cookie for {url}: {e}"),
            Err(_) => panic!("setting a cookie for {url}: no answer within {TIMEOUT:?}"),
        }
    }

    /// The cookies Chromium would send to `url`, `HttpOnly` ones included.
    pub async fn cookies_for(&self, url: &str) -> Vec<Cookie> {
        let params = GetCookiesParams::builder().url(url).build();
        match tokio::time::timeout(TIMEOUT, self.inner.execute(params)).await {
            Ok(Ok(response)) => response.result.cookies,
            Ok(Err(e)) => panic!("reading the cookies for {url}: {e}"),
            Err(_) => panic!("reading the cookies for {url}: no answer within {TIMEOUT:?}"),
        }
    }

    /// Fetches `url` (relative to the page) from inside the page, with its cookies, as a click
    /// on a download link would, and reports what came back.
    pub async fn fetch(&self, url: &str) -> Fetched {
        let js = format!(
            "(async () => {{ const r = await fetch({}, {{ credentials: 'same-origin' }}); \
               const b = new Uint8Array(await r.arrayBuffer()); \
               return JSON.stringify({{ status: r.status, \
                 content_type: r.headers.get('content-type') || '', \
                 disposition: r.headers.get('content-disposition') || '', \
                 size: b.length, \
                 start: String.fromCharCode(...b.slice(0, 16)) }}); }})()",
            js_string(url)
        );
        let json = self.evaluate_string(&js).await;
        let v: serde_json::Value =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("fetching {url}: {e} in {json}"));
        let text = |key: &str| v[key].as_str().unwrap_or_default().to_owned();
        let number = |key: &str| v[key].as_u64().unwrap_or_default();
        Fetched {
            status: u16::try_from(number("status")).unwrap_or_default(),
            content_type: text("content_type"),
            disposition: text("disposition"),
            size: number("size"),
            start: text("start"),
        }
    }

    async fn find(&self, css: &str) -> Result<chromiumoxide::Element, String> {
        self.inner
            .find_element(css)
            .await
            .map_err(|e| format!("no element matches: {e}"))
    }

    async fn inner_text(&self, css: &str) -> Result<String, String> {
        let js = format!(
            "(() => {{ const e = document.querySelector({}); return e ? e.innerText : null; }})()",
            js_string(css)
        );
        match self.evaluate(&js).await? {
            serde_json::Value::String(text) => Ok(text),
            _ => Err("no element matches".to_owned()),
        }
    }

    async fn evaluate(&self, js: &str) -> Result<serde_json::Value, String> {
        let result = self.inner.evaluate(js).await.map_err(|e| e.to_string())?;
        result.into_value().map_err(|e| e.to_string())
    }

    /// Retries `attempt` every [`POLL`] until it succeeds or [`TIMEOUT`] passes, then panics
    /// with `what`, the last reason it gave and the URL.
    async fn poll<T>(&self, what: &str, mut attempt: impl AsyncFnMut() -> Result<T, String>) -> T {
        let deadline = Instant::now() + TIMEOUT;
        let mut reason = String::from("no answer from the browser");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, attempt()).await {
                Ok(Ok(value)) => return value,
                Ok(Err(why)) => reason = why,
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                let url = self.current_url_for_message().await;
                panic!("{what} on {url}: gave up after {TIMEOUT:?}; last: {reason}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The URL for a failure message: never waits long, never panics.
    async fn current_url_for_message(&self) -> String {
        match tokio::time::timeout(Duration::from_secs(2), self.inner.url()).await {
            Ok(Ok(Some(url))) => url,
            _ => "<unknown URL>".to_owned(),
        }
    }
}

/// Signs a resident in to ResidencePort as a person would: the e-mail address on the sign-in
/// page of `portal` (`http://<org>.residenceport.localhost:<port>`), then the 6-digit code
/// e-mailed to it (read from the outbox); returns once their home page has loaded.
pub async fn resident_signs_in(page: &Page, db: &crate::TestDb, portal: &str, email: &str) {
    page.goto(&format!("{portal}/sign-in")).await;
    page.fill("#resident-email", email).await;
    page.click_and_wait_navigation(r#"form[action="/sign-in"] [type=submit]"#)
        .await;
    page.wait_for_text(
        "#sign-in-message",
        "If this address belongs to a resident here",
    )
    .await;
    let mut su = db.superuser().await;
    let body: String = sqlx::query_scalar(
        "select body_text from email_message where category = 'sign_in_code' and to_address = $1
          order by created_at desc limit 1",
    )
    .bind(email)
    .fetch_one(&mut su)
    .await
    .unwrap_or_else(|e| panic!("no sign-in code was e-mailed to {email}: {e}"));
    let code = body
        .split_whitespace()
        .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no code in the e-mail to {email}: {body}"));
    page.fill("#resident-code", code).await;
    page.click_and_wait_navigation(r#"form[action="/sign-in/verify"] [type=submit]"#)
        .await;
    page.wait_for("#balance-due").await;
}

/// What [`Page::fetch`] got back.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub status: u16,
    pub content_type: String,
    /// The `Content-Disposition` header, or empty.
    pub disposition: String,
    /// The body's length in bytes.
    pub size: u64,
    /// The body's first 16 bytes, one character each (`%PDF-1.4`, PNG's signature).
    pub start: String,
}

/// A 2 × 1 pixel PNG, so the server has a real image to decode and thumbnail.
pub const TINY_PNG: [u8; 72] = [
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 2, 0, 0, 0, 1, 8, 2, 0,
    0, 0, 123, 64, 232, 221, 0, 0, 0, 15, 73, 68, 65, 84, 120, 156, 99, 144, 245, 187, 241, 255,
    255, 127, 0, 11, 149, 4, 65, 239, 129, 131, 79, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
];

/// The smallest PDF the upload checks accept.
pub const TINY_PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n";

/// Files on disk for a browser to upload (a file input takes paths), removed on drop.
pub struct UploadFiles {
    dir: PathBuf,
}

impl UploadFiles {
    /// An empty directory of its own under the system's temporary directory.
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "proplink-browser-files-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("create the upload directory {}: {e}", dir.display()));
        Self { dir }
    }

    /// Writes `bytes` as `name`; its path.
    pub fn add(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// A photo ([`TINY_PNG`]) called `name`.
    pub fn png(&self, name: &str) -> PathBuf {
        self.add(name, &TINY_PNG)
    }

    /// A PDF ([`TINY_PDF`]) called `name`.
    pub fn pdf(&self, name: &str) -> PathBuf {
        self.add(name, TINY_PDF)
    }
}

impl Default for UploadFiles {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for UploadFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `s` as a JavaScript string literal (JSON's syntax is a subset of JavaScript's).
fn js_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}
