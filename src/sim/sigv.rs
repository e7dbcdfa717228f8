//! The simulator's own check of SDK-HMAC-SHA256 signatures, written apart from
//! `crate::auth` so a mistake in our signer cannot be mirrored here and hidden.

use chrono::{DateTime, Utc};

/// A request as the simulator received it.
#[derive(Debug)]
pub struct IncomingRequest<'a> {
    pub method: &'a str,
    /// The path exactly as on the request line (still percent-encoded).
    pub path: &'a str,
    /// The query string exactly as on the request line, without `?`.
    pub raw_query: Option<&'a str>,
    /// Header names as received (any case) and their values.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// Why a signature was refused; the simulator answers 401 with an APIGW body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    #[error("missing or malformed Authorization header: {0}")]
    Malformed(String),
    #[error("unknown access key")]
    UnknownAccessKey,
    #[error("verify aksk signature fail")]
    BadSignature,
    #[error("the request time differs from the server time by more than 15 minutes")]
    ClockSkew,
}

/// Verifies an SDK-HMAC-SHA256 signed request against the expected key pair.
pub fn verify(
    _req: &IncomingRequest<'_>,
    _ak: &str,
    _sk: &str,
    _now: DateTime<Utc>,
) -> Result<(), SigError> {
    // Replaced by the real verifier on the auth branch.
    Err(SigError::Malformed(
        "signature verification is not built yet".into(),
    ))
}
