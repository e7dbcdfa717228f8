//! INTERIM (replaced by the auth branch): token credentials only, with the
//! interface the HTTP client codes against.

use std::fmt;

use chrono::{DateTime, Utc};

/// A secret value whose Debug and Display never show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone)]
pub enum Credentials {
    Token { token: Secret, origin: String },
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("no credentials found: set CLOUD_SDK_TOKEN")]
    Missing,
}

pub struct OutgoingRequest<'a> {
    pub method: &'a str,
    pub url: &'a reqwest::Url,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    pub project_id: Option<&'a str>,
    pub now: DateTime<Utc>,
}

impl Credentials {
    pub fn from_environment() -> Result<Credentials, CredentialError> {
        Self::resolve(&|k| std::env::var(k).ok(), None)
    }
    pub fn resolve(
        lookup: &dyn Fn(&str) -> Option<String>,
        _home: Option<&std::path::Path>,
    ) -> Result<Credentials, CredentialError> {
        match lookup("CLOUD_SDK_TOKEN").filter(|v| !v.is_empty()) {
            Some(t) => Ok(Credentials::Token {
                token: Secret(t),
                origin: "CLOUD_SDK_TOKEN".into(),
            }),
            None => Err(CredentialError::Missing),
        }
    }
    pub fn describe(&self) -> String {
        match self {
            Credentials::Token { origin, .. } => format!("IAM token ({origin})"),
        }
    }
    pub fn authorize(&self, _req: &OutgoingRequest<'_>) -> Vec<(String, String)> {
        match self {
            Credentials::Token { token, .. } => {
                vec![("X-Auth-Token".into(), token.expose().to_owned())]
            }
        }
    }
}

pub fn canonical_query_string(pairs: &[(String, String)]) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const SET: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
    sorted.sort();
    sorted
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, SET),
                utf8_percent_encode(v, SET)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}
