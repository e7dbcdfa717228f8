//! Healthchecks-style pings (healthchecks.io, Cronitor, Uptime Kuma's push):
//! `URL/start` when a sync starts, `URL` when it succeeded, `URL/fail`
//! otherwise, each a POST with the summary line as its body. A ping is a
//! courtesy: it is tried twice within a few seconds, and a ping that fails is
//! a warning, never the sync's failure. The URL usually holds a secret (the
//! check's UUID, or a ping key), so it is only ever shown as
//! `scheme://host/…`.

use std::fmt;
use std::time::Duration;

use reqwest::Url;

/// How long one attempt may take, connecting included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// The pause before the one retry.
const RETRY_DELAY: Duration = Duration::from_millis(250);

/// Attempts per ping: the first and one retry. With [`ATTEMPT_TIMEOUT`] and
/// [`RETRY_DELAY`], a ping to an endpoint that never answers costs at most
/// about 4.3 s.
const ATTEMPTS: u32 = 2;

/// A ping URL: http or https with a host. Shown (Display, Debug) only as
/// `scheme://host[:port]/…`, since its path or query carries the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PingUrl(Url);

impl PingUrl {
    /// Reads a ping URL as written in the config or on the command line.
    /// Messages never repeat the URL itself.
    pub fn parse(value: &str) -> Result<PingUrl, String> {
        let url = Url::parse(value.trim()).map_err(|e| format!("not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "unsupported scheme `{}` (use https, or http)",
                url.scheme()
            ));
        }
        if url.host_str().is_none() {
            return Err("the URL has no host".into());
        }
        if url.fragment().is_some() {
            return Err("a ping URL takes no #fragment".into());
        }
        Ok(PingUrl(url))
    }

    /// The URL for one kind of ping: `…/start` and `…/fail` add a path
    /// segment (the query, if any, stays at the end).
    fn for_kind(&self, kind: PingKind) -> Url {
        let mut url = self.0.clone();
        if let Some(segment) = kind.segment()
            && let Ok(mut segments) = url.path_segments_mut()
        {
            segments.pop_if_empty().push(segment);
        }
        url
    }
}

impl fmt::Display for PingUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = self.0.host_str().unwrap_or("");
        match self.0.port() {
            Some(port) => write!(f, "{}://{host}:{port}/…", self.0.scheme()),
            None => write!(f, "{}://{host}/…", self.0.scheme()),
        }
    }
}

impl fmt::Debug for PingUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PingUrl({self})")
    }
}

/// Which moment of a run a ping reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingKind {
    Start,
    Success,
    /// The run failed or was partial.
    Fail,
}

impl PingKind {
    fn segment(self) -> Option<&'static str> {
        match self {
            PingKind::Start => Some("start"),
            PingKind::Success => None,
            PingKind::Fail => Some("fail"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            PingKind::Start => "start",
            PingKind::Success => "success",
            PingKind::Fail => "fail",
        }
    }
}

/// Why a ping was not delivered; the message never holds the URL's secret.
#[derive(Debug, thiserror::Error)]
pub enum PingError {
    #[error("cannot set up the HTTP client for pings: {0}")]
    Setup(String),
    #[error("the {kind} ping to {url} failed: {why}")]
    Failed {
        kind: &'static str,
        /// Redacted: `scheme://host/…`.
        url: String,
        why: String,
    },
}

/// Sends the pings of one run.
#[derive(Debug, Clone)]
pub struct Pinger {
    http: reqwest::Client,
    url: PingUrl,
}

impl Pinger {
    pub fn new(url: PingUrl) -> Result<Pinger, PingError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("jobtrail/", env!("CARGO_PKG_VERSION")))
            .timeout(ATTEMPT_TIMEOUT)
            .connect_timeout(ATTEMPT_TIMEOUT)
            // A redirect could carry the secret path to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| PingError::Setup(e.without_url().to_string()))?;
        Ok(Pinger { http, url })
    }

    /// Sends the start ping in the background, so the sync does not wait
    /// for it; await the handle before the closing ping to keep the order.
    pub fn start(&self, body: String) -> tokio::task::JoinHandle<()> {
        let pinger = self.clone();
        tokio::spawn(async move { pinger.send_or_warn(PingKind::Start, body).await })
    }

    /// Sends a ping; a failure is logged as a warning and goes no further.
    pub async fn send_or_warn(&self, kind: PingKind, body: String) {
        if let Err(e) = self.send(kind, body).await {
            tracing::warn!("{e} (the sync's outcome is unchanged)");
        }
    }

    /// Sends a ping: one retry after a connection error, a timeout or an
    /// answer other than 2xx (except a 4xx, which a retry would not change).
    pub async fn send(&self, kind: PingKind, body: String) -> Result<(), PingError> {
        let url = self.url.for_kind(kind);
        let mut why = String::new();
        for attempt in 1..=ATTEMPTS {
            if attempt > 1 {
                tokio::time::sleep(RETRY_DELAY).await;
            }
            let sent = self
                .http
                .post(url.clone())
                .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(answer) if answer.status().is_success() => return Ok(()),
                Ok(answer) => {
                    why = format!("answered HTTP {}", answer.status().as_u16());
                    if answer.status().is_client_error() {
                        break;
                    }
                }
                Err(e) => why = describe(e),
            }
        }
        Err(PingError::Failed {
            kind: kind.name(),
            url: self.url.to_string(),
            why,
        })
    }
}

/// A request error and its causes, without the URL reqwest would print.
fn describe(e: reqwest::Error) -> String {
    let timed_out = e.is_timeout();
    let e = e.without_url();
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    if timed_out && !text.contains("timed out") {
        text.push_str(" (timed out)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "5f3c9a1e-0b7d-4c3e-9a2f-7e6d5c4b3a21";

    #[test]
    fn the_url_is_shown_without_its_path_or_query() {
        let url = PingUrl::parse(&format!("https://hc-ping.com/{SECRET}?rid=1")).expect("url");
        assert_eq!(url.to_string(), "https://hc-ping.com/…");
        assert_eq!(format!("{url:?}"), "PingUrl(https://hc-ping.com/…)");
        let local = PingUrl::parse("http://127.0.0.1:8000/ping/key/check").expect("url");
        assert_eq!(local.to_string(), "http://127.0.0.1:8000/…");
    }

    #[test]
    fn start_and_fail_add_a_path_segment_before_the_query() {
        let url = PingUrl::parse(&format!("https://hc-ping.com/{SECRET}")).expect("url");
        assert_eq!(
            url.for_kind(PingKind::Start).as_str(),
            format!("https://hc-ping.com/{SECRET}/start")
        );
        assert_eq!(
            url.for_kind(PingKind::Success).as_str(),
            format!("https://hc-ping.com/{SECRET}")
        );
        let slug = PingUrl::parse("https://hc-ping.com/key/backup/?create=1").expect("url");
        assert_eq!(
            slug.for_kind(PingKind::Fail).as_str(),
            "https://hc-ping.com/key/backup/fail?create=1"
        );
    }

    #[test]
    fn only_http_urls_with_a_host_are_ping_urls() {
        for (bad, why) in [
            ("hc-ping.com/abc", "not a URL"),
            ("ftp://example.com/x", "unsupported scheme"),
            ("https://example.com/x#frag", "fragment"),
        ] {
            let err = PingUrl::parse(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
