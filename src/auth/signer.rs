//! The SDK-HMAC-SHA256 request signer, stage by stage, exactly as the official
//! Huawei Cloud SDKs build it (canonical request → string to sign → signature →
//! `Authorization`). Pure: no clock, no environment, no I/O.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// The algorithm name that opens the string to sign and the `Authorization` header.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";
/// The date header the SDK signs.
pub const HEADER_DATE: &str = "X-Sdk-Date";
/// The header that replaces the payload hash for non-JSON bodies.
pub const HEADER_CONTENT_SHA256: &str = "X-Sdk-Content-Sha256";
/// The literal used instead of a body hash.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// `strftime` format of `X-Sdk-Date` (always UTC).
pub const DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// Python's `urllib.parse.quote(s, safe='~')`: everything but `A-Z a-z 0-9 - _ . ~`
/// is percent-encoded (UTF-8, upper-case hex).
const QUOTE_SAFE_TILDE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Encodes one path segment, query key or query value the way the SDK does.
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, QUOTE_SAFE_TILDE).to_string()
}

/// The query string the SDK signs and sends: pairs sorted as raw strings
/// (key, then value), each side encoded with [`encode`], joined `k=v&…`.
/// An empty list gives `""`.
pub fn canonical_query_string(pairs: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
    sorted.sort();
    sorted
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The canonical URI: percent-decode the path, split on `/`, re-encode each
/// segment, join with `/`, and end with `/`. So `/a/b` and `/a/b/` sign alike.
pub fn canonical_uri(path: &str) -> String {
    let decoded = percent_decode_str(path).decode_utf8_lossy();
    let mut uri = decoded.split('/').map(encode).collect::<Vec<_>>().join("/");
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// Lower-hex SHA-256.
pub fn hex_sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A request to be signed. `headers` are those that will be sent, without
/// `Authorization`; the signer adds what the SDK adds (see [`Signed::added_headers`]).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// `host` or `host:port` (port only when not the scheme default); used for
    /// the `Host` header when `headers` has none.
    pub host: &'a str,
    /// The path as it will be on the request line (may be percent-encoded).
    pub path: &'a str,
    /// Query parameters, raw (not encoded), in any order.
    pub query: &'a [(String, String)],
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// Every stage of one signature, so tests can compare each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// Headers the signer added, in the SDK's order: `X-Sdk-Content-Sha256`
    /// (non-JSON content type), `X-Sdk-Date` (when absent), `Host` (when absent).
    pub added_headers: Vec<(String, String)>,
    pub canonical_request: String,
    pub string_to_sign: String,
    /// `h1;h2;…`
    pub signed_headers: String,
    /// Lower-hex HMAC-SHA256.
    pub signature: String,
    /// The full `Authorization` header value.
    pub authorization: String,
}

fn find_header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Signs `req` with the key pair at time `now` (used only when the request has
/// no `X-Sdk-Date`; an existing one is reused verbatim, trimmed).
pub fn sign(req: &Request<'_>, ak: &str, sk: &str, now: DateTime<Utc>) -> Signed {
    let mut headers: Vec<(String, String)> = req.headers.to_vec();
    let mut added = Vec::new();

    // (1) Non-JSON/BSON content types are not hashed.
    if let Some(ct) = find_header(&headers, "Content-Type")
        && !ct.starts_with("application/json")
        && !ct.starts_with("application/bson")
        && find_header(&headers, HEADER_CONTENT_SHA256).is_none()
    {
        added.push((
            HEADER_CONTENT_SHA256.to_owned(),
            UNSIGNED_PAYLOAD.to_owned(),
        ));
    }
    // (2) The date.
    let date = match find_header(&headers, HEADER_DATE) {
        Some(d) => d.trim().to_owned(),
        None => {
            let d = now.format(DATE_FORMAT).to_string();
            added.push((HEADER_DATE.to_owned(), d.clone()));
            d
        }
    };
    // (3) The host.
    if find_header(&headers, "Host").is_none() {
        added.push(("Host".to_owned(), req.host.to_owned()));
    }
    headers.extend(added.iter().cloned());

    // (4) Signed headers: every name without '_', lower-cased, sorted. A name
    // given twice (in any case) is signed once, with its last value.
    let mut canon: Vec<(String, String)> = Vec::new();
    for (name, value) in &headers {
        if name.contains('_') {
            continue;
        }
        let lower = name.to_ascii_lowercase();
        let value = value.trim().to_owned();
        match canon.iter_mut().find(|(n, _)| *n == lower) {
            Some(slot) => slot.1 = value,
            None => canon.push((lower, value)),
        }
    }
    canon.sort();
    let signed_headers = canon
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = canon.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();

    let payload = match find_header(&headers, HEADER_CONTENT_SHA256) {
        Some(v) => v.to_owned(),
        None => hex_sha256(req.body),
    };

    // (5) Canonical request.
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method.to_ascii_uppercase(),
        canonical_uri(req.path),
        canonical_query_string(req.query),
        canonical_headers,
        signed_headers,
        payload,
    );
    // (6) String to sign.
    let string_to_sign = format!(
        "{ALGORITHM}\n{date}\n{}",
        hex_sha256(canonical_request.as_bytes())
    );
    // (7) Signature.
    let signature = hex::encode(hmac_sha256(sk.as_bytes(), string_to_sign.as_bytes()));
    // (8) Authorization.
    let authorization =
        format!("{ALGORITHM} Access={ak}, SignedHeaders={signed_headers}, Signature={signature}");

    Signed {
        added_headers: added,
        canonical_request,
        string_to_sign,
        signed_headers,
        signature,
        authorization,
    }
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key).expect("HMAC-SHA256 accepts keys of any length");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_matches_python_quote_safe_tilde() {
        assert_eq!(encode("a b+c/d:e~f-g_h.i"), "a%20b%2Bc%2Fd%3Ae~f-g_h.i");
        assert_eq!(encode("*'()!$,;@&="), "%2A%27%28%29%21%24%2C%3B%40%26%3D");
        assert_eq!(encode("ü测"), "%C3%BC%E6%B5%8B");
    }

    #[test]
    fn canonical_query_sorts_raw_pairs() {
        let q = |pairs: &[(&str, &str)]| {
            canonical_query_string(
                &pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(q(&[]), "");
        assert_eq!(
            q(&[("z", "2"), ("z", "10"), ("Upper", "X"), ("empty", "")]),
            "Upper=X&empty=&z=10&z=2"
        );
    }

    #[test]
    fn canonical_uri_decodes_then_encodes_and_ends_with_slash() {
        assert_eq!(canonical_uri("/a/b"), "/a/b/");
        assert_eq!(canonical_uri("/a/b/"), "/a/b/");
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(
            canonical_uri("/x/job%20id%3a%C3%A4"),
            "/x/job%20id%3A%C3%A4/"
        );
        assert_eq!(canonical_uri("/x/a:b"), "/x/a%3Ab/");
    }
}
