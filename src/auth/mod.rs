//! Authentication as the official Huawei Cloud SDKs do it: where credentials come
//! from ([`Credentials::resolve`]), how secrets are kept out of logs ([`Secret`]),
//! and which headers an outgoing request gets ([`Credentials::authorize`]).

pub mod credentials;
pub mod signer;

use std::fmt;

pub use credentials::{CredentialError, CredentialOrigin, Credentials, SdkExtras};
pub use signer::canonical_query_string;

/// A secret string: its `Debug` and `Display` print `***`; it is not `Serialize`.
/// Read it only where it is sent, with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret value itself. Never log or print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// An HTTP request about to be sent, as [`Credentials::authorize`] needs it.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingRequest<'a> {
    pub method: &'a str,
    /// The final URL as sent; its query already in [`canonical_query_string`] form.
    pub url: &'a reqwest::Url,
    /// Headers the client already set (e.g. `Content-Type: application/json`).
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    /// Sent (and signed) as `X-Project-Id`, as the SDK's `BasicCredentials` does.
    pub project_id: Option<&'a str>,
    pub now: chrono::DateTime<chrono::Utc>,
}

/// The `Host` header value for `url`: the host, plus `:port` only when the port
/// is not the scheme's default. This is what reqwest sends.
pub fn host_header(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// Splits a raw (percent-encoded) query string into decoded pairs. `+` is kept
/// literally (the SDK encodes a space as `%20`); a part without `=` has an empty value.
pub fn parse_query(raw: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    raw.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| match part.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(part), String::new()),
        })
        .collect()
}

impl Credentials {
    /// Headers to add to `req` before sending it.
    ///
    /// AK/SK: `X-Project-Id` (when a project id is given), `X-Security-Token`
    /// (temporary credentials), `X-Sdk-Content-Sha256` (non-JSON content type),
    /// `X-Sdk-Date` (unless `req.headers` has one, which is then reused) and
    /// `Authorization`, in that order; all but `Authorization` are signed, as is the
    /// `Host` derived from the URL (see [`host_header`]). Token: `X-Auth-Token`
    /// only (the token carries its project scope). A header already in `req.headers` is not added again.
    /// As in the SDK, a request that already carries `Authorization` is not re-signed.
    pub fn authorize(&self, req: &OutgoingRequest<'_>) -> Vec<(String, String)> {
        let has = |name: &str| {
            req.headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case(name))
        };
        let mut out: Vec<(String, String)> = Vec::new();
        match self {
            Credentials::Token { token, .. } => {
                out.push(("X-Auth-Token".to_owned(), token.expose().to_owned()));
            }
            Credentials::AkSk {
                ak,
                sk,
                security_token,
                ..
            } => {
                if let Some(project) = req.project_id
                    && !has("X-Project-Id")
                {
                    out.push(("X-Project-Id".to_owned(), project.to_owned()));
                }
                if let Some(st) = security_token
                    && !has("X-Security-Token")
                {
                    out.push(("X-Security-Token".to_owned(), st.expose().to_owned()));
                }
                if has("Authorization") {
                    return out;
                }
                let mut headers = req.headers.to_vec();
                headers.extend(out.iter().cloned());
                let host = host_header(req.url);
                let query = parse_query(req.url.query().unwrap_or_default());
                let signed = signer::sign(
                    &signer::Request {
                        method: req.method,
                        host: &host,
                        path: req.url.path(),
                        query: &query,
                        headers: &headers,
                        body: req.body,
                    },
                    ak,
                    sk.expose(),
                    req.now,
                );
                out.extend(
                    signed
                        .added_headers
                        .into_iter()
                        .filter(|(k, _)| !k.eq_ignore_ascii_case("Host")),
                );
                out.push(("Authorization".to_owned(), signed.authorization));
            }
        }
        out
    }
}

#[cfg(test)]
mod vector_tests;
