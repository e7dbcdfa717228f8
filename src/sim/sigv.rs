//! The simulator's own check of SDK-HMAC-SHA256 signatures, written apart from
//! `crate::auth` so a mistake in our signer cannot be mirrored here and hidden.
//!
//! It re-derives the canonical request from the request exactly as received (raw
//! path, raw query, headers in any case), with its own percent-coding, and
//! compares signatures in constant time.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

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

/// How far `X-Sdk-Date` may be from the server clock (API Gateway rule).
const MAX_SKEW_SECONDS: i64 = 15 * 60;
const SCHEME: &str = "SDK-HMAC-SHA256";

/// The parts of an `Authorization: SDK-HMAC-SHA256 Access=…, SignedHeaders=…, Signature=…` header.
struct AuthHeader<'a> {
    access: &'a str,
    signed_headers: Vec<String>,
    signature: &'a str,
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn parse_authorization(value: &str) -> Result<AuthHeader<'_>, SigError> {
    let rest = value
        .trim()
        .strip_prefix(SCHEME)
        .filter(|r| r.starts_with(' '))
        .ok_or_else(|| SigError::Malformed(format!("algorithm is not {SCHEME}")))?;
    let (mut access, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| SigError::Malformed("expected Name=value parts".into()))?;
        let slot = match k {
            "Access" => &mut access,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => return Err(SigError::Malformed(format!("unexpected part {k}"))),
        };
        if slot.replace(v).is_some() {
            return Err(SigError::Malformed(format!("{k} given twice")));
        }
    }
    let missing = |name: &str| SigError::Malformed(format!("no {name}"));
    let access = access
        .filter(|a| !a.is_empty())
        .ok_or_else(|| missing("Access"))?;
    let signed = signed
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| missing("Signature"))?;
    Ok(AuthHeader {
        access,
        signed_headers: signed.split(';').map(|h| h.to_ascii_lowercase()).collect(),
        signature,
    })
}

/// `%XX` → byte; anything else (including a stray `%`) is kept as is. Invalid
/// UTF-8 becomes U+FFFD, like Python's `unquote`.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2]))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Unreserved characters (`A-Z a-z 0-9 - _ . ~`) stay; every other UTF-8 byte
/// becomes `%XX` with upper-case hex.
fn escape(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

fn canonical_path(raw: &str) -> String {
    let decoded = unescape(raw);
    let mut out: Vec<String> = Vec::new();
    for segment in decoded.split('/') {
        out.push(escape(segment));
    }
    let mut joined = out.join("/");
    if !joined.ends_with('/') {
        joined.push('/');
    }
    joined
}

fn canonical_query(raw: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for part in raw.unwrap_or("").split('&') {
        if part.is_empty() {
            continue;
        }
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        pairs.push((unescape(k), unescape(v)));
    }
    pairs.sort();
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&escape(k));
        out.push('=');
        out.push_str(&escape(v));
    }
    out
}

/// Verifies an SDK-HMAC-SHA256 signed request against the expected key pair.
///
/// Checks, in order: the `Authorization` header parses (`Malformed`), its
/// `Access` is `ak` (`UnknownAccessKey`), `host` and `x-sdk-date` are signed and
/// every signed header is present (`Malformed`), `X-Sdk-Date` is within 15
/// minutes of `now` (`ClockSkew`), and the signature matches (`BadSignature`).
pub fn verify(
    req: &IncomingRequest<'_>,
    ak: &str,
    sk: &str,
    now: DateTime<Utc>,
) -> Result<(), SigError> {
    let auth_value = header(req.headers, "authorization")
        .ok_or_else(|| SigError::Malformed("no Authorization header".into()))?;
    let auth = parse_authorization(auth_value)?;
    if auth.access != ak {
        return Err(SigError::UnknownAccessKey);
    }
    for required in ["host", "x-sdk-date"] {
        if !auth.signed_headers.iter().any(|h| h == required) {
            return Err(SigError::Malformed(format!(
                "{required} is not a signed header"
            )));
        }
    }

    let date_text = header(req.headers, "x-sdk-date")
        .map(str::trim)
        .ok_or_else(|| SigError::Malformed("no X-Sdk-Date header".into()))?;
    let date = NaiveDateTime::parse_from_str(date_text, "%Y%m%dT%H%M%SZ")
        .map_err(|_| SigError::Malformed("X-Sdk-Date is not YYYYMMDDTHHMMSSZ".into()))?
        .and_utc();
    if (now - date).abs() > TimeDelta::seconds(MAX_SKEW_SECONDS) {
        return Err(SigError::ClockSkew);
    }

    let mut canonical_headers = String::new();
    for name in &auth.signed_headers {
        let value = header(req.headers, name)
            .ok_or_else(|| SigError::Malformed(format!("signed header {name} is missing")))?;
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(value.trim());
        canonical_headers.push('\n');
    }
    let payload_hash = match header(req.headers, "x-sdk-content-sha256") {
        Some(v) => v.trim().to_owned(),
        None => hex::encode(Sha256::digest(req.body)),
    };
    let canonical_request = [
        req.method.to_ascii_uppercase(),
        canonical_path(req.path),
        canonical_query(req.raw_query),
        canonical_headers,
        auth.signed_headers.join(";"),
        payload_hash,
    ]
    .join("\n");
    let string_to_sign = format!(
        "{SCHEME}\n{date_text}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );

    let given = hex::decode(auth.signature).map_err(|_| SigError::BadSignature)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(sk.as_bytes()).map_err(|_| SigError::BadSignature)?;
    mac.update(string_to_sign.as_bytes());
    // `verify_slice` compares in constant time.
    mac.verify_slice(&given).map_err(|_| SigError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const VECTORS: &str = include_str!("../../tests/fixtures/signer-vectors.json");

    /// An owned incoming request rebuilt from a vector's `final_headers` and `sent_url`.
    struct Rebuilt {
        method: String,
        path: String,
        query: Option<String>,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        ak: String,
        sk: String,
        now: DateTime<Utc>,
    }

    impl Rebuilt {
        fn request(&self) -> IncomingRequest<'_> {
            IncomingRequest {
                method: &self.method,
                path: &self.path,
                raw_query: self.query.as_deref(),
                headers: &self.headers,
                body: &self.body,
            }
        }

        fn verify(&self) -> Result<(), SigError> {
            verify(&self.request(), &self.ak, &self.sk, self.now)
        }

        fn set_header(&mut self, name: &str, value: String) {
            for (k, v) in &mut self.headers {
                if k.eq_ignore_ascii_case(name) {
                    *v = value;
                    return;
                }
            }
            panic!("no header {name}");
        }

        fn get_header(&self, name: &str) -> String {
            header(&self.headers, name).expect("header").to_owned()
        }
    }

    fn s(v: &Value, key: &str) -> String {
        v[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key}"))
            .to_owned()
    }

    fn rebuilt() -> Vec<(String, Rebuilt)> {
        let all: Value = serde_json::from_str(VECTORS).expect("json");
        let list = all.as_array().expect("array");
        assert_eq!(list.len(), 14);
        list.iter()
            .map(|v| {
                let url = reqwest::Url::parse(&s(v, "sent_url")).expect("sent_url");
                let headers = v["final_headers"]
                    .as_object()
                    .expect("final_headers")
                    .iter()
                    .map(|(k, val)| (k.clone(), val.as_str().expect("str").to_owned()))
                    .collect();
                let now = NaiveDateTime::parse_from_str(&s(v, "timestamp"), "%Y%m%dT%H%M%SZ")
                    .expect("timestamp")
                    .and_utc();
                let r = Rebuilt {
                    method: s(v, "method"),
                    path: url.path().to_owned(),
                    query: url.query().map(str::to_owned),
                    headers,
                    body: s(v, "body").into_bytes(),
                    ak: s(v, "ak"),
                    sk: s(v, "sk"),
                    now,
                };
                (s(v, "name"), r)
            })
            .collect()
    }

    #[test]
    fn every_sdk_vector_verifies() {
        for (name, r) in rebuilt() {
            assert_eq!(r.verify(), Ok(()), "{name}");
        }
    }

    #[test]
    fn header_names_are_case_insensitive() {
        for (name, mut r) in rebuilt() {
            for (k, _) in &mut r.headers {
                *k = k.to_ascii_lowercase();
            }
            assert_eq!(r.verify(), Ok(()), "{name} lower-case");
            for (k, _) in &mut r.headers {
                *k = k.to_ascii_uppercase();
            }
            assert_eq!(r.verify(), Ok(()), "{name} upper-case");
        }
    }

    #[test]
    fn within_fifteen_minutes_is_accepted_either_way() {
        for (name, mut r) in rebuilt() {
            let base = r.now;
            r.now = base + TimeDelta::minutes(15);
            assert_eq!(r.verify(), Ok(()), "{name} +15");
            r.now = base - TimeDelta::minutes(15);
            assert_eq!(r.verify(), Ok(()), "{name} -15");
        }
    }

    #[test]
    fn sixteen_minutes_off_is_clock_skew() {
        for (name, mut r) in rebuilt() {
            let base = r.now;
            r.now = base + TimeDelta::minutes(16);
            assert_eq!(r.verify(), Err(SigError::ClockSkew), "{name} +16");
            r.now = base - TimeDelta::minutes(16);
            assert_eq!(r.verify(), Err(SigError::ClockSkew), "{name} -16");
        }
    }

    #[test]
    fn flipped_signature_byte_fails() {
        for (name, mut r) in rebuilt() {
            let auth = r.get_header("Authorization");
            let mut bytes = auth.into_bytes();
            let last = bytes.len() - 1;
            bytes[last] = if bytes[last] == b'0' { b'1' } else { b'0' };
            r.set_header("Authorization", String::from_utf8(bytes).expect("ascii"));
            assert_eq!(r.verify(), Err(SigError::BadSignature), "{name}");
        }
    }

    #[test]
    fn wrong_sk_fails() {
        for (name, mut r) in rebuilt() {
            r.sk.push('x');
            assert_eq!(r.verify(), Err(SigError::BadSignature), "{name}");
        }
    }

    #[test]
    fn wrong_ak_is_unknown_access_key() {
        let (_, mut r) = rebuilt().remove(0);
        r.ak = "SOMEOTHERAK".into();
        assert_eq!(r.verify(), Err(SigError::UnknownAccessKey));
    }

    #[test]
    fn tampered_query_value_fails() {
        let mut checked = 0;
        for (name, mut r) in rebuilt() {
            let Some(q) = r.query.clone() else { continue };
            // Change the first value: limit=50 → limit=51 style edits.
            let tampered = match q.find('=') {
                Some(at) => format!("{}=X{}", &q[..at], &q[at + 1..]),
                None => continue,
            };
            r.query = Some(tampered);
            assert_eq!(r.verify(), Err(SigError::BadSignature), "{name}");
            checked += 1;
        }
        assert!(checked >= 4);
    }

    #[test]
    fn query_order_and_encoding_case_do_not_matter() {
        // The gateway re-canonicalizes what it receives.
        let (_, mut r) = rebuilt()
            .into_iter()
            .find(|(n, _)| n == "nosql_list_jobs_query_sorting_encoding")
            .expect("vector");
        let q = r.query.clone().expect("query");
        let mut parts: Vec<&str> = q.split('&').collect();
        parts.reverse();
        r.query = Some(parts.join("&").replace("%3A", "%3a"));
        assert_eq!(r.verify(), Ok(()));
    }

    #[test]
    fn tampered_body_or_path_or_method_fails() {
        let (_, r) = rebuilt()
            .into_iter()
            .find(|(n, _)| n == "post_json_body")
            .expect("vector");
        let mut t = Rebuilt {
            body: b"{}".to_vec(),
            ..r
        };
        assert_eq!(t.verify(), Err(SigError::BadSignature));
        let (_, r) = rebuilt().remove(0);
        t = Rebuilt {
            path: format!("{}x", r.path),
            ..r
        };
        assert_eq!(t.verify(), Err(SigError::BadSignature));
        let (_, r) = rebuilt().remove(0);
        t = Rebuilt {
            method: "DELETE".into(),
            ..r
        };
        assert_eq!(t.verify(), Err(SigError::BadSignature));
    }

    #[test]
    fn tampered_signed_header_fails() {
        let (_, mut r) = rebuilt().remove(0);
        r.set_header("X-Project-Id", "ffffffffffffffffffffffffffffffff".into());
        assert_eq!(r.verify(), Err(SigError::BadSignature));
    }

    #[test]
    fn malformed_requests_say_why() {
        let (_, r) = rebuilt().remove(0);
        let mut no_auth = Rebuilt {
            headers: r
                .headers
                .iter()
                .filter(|(k, _)| k != "Authorization")
                .cloned()
                .collect(),
            ..r
        };
        assert!(matches!(no_auth.verify(), Err(SigError::Malformed(_))));

        for bad in [
            "AWS4-HMAC-SHA256 Access=HPUAEXAMPLEAKID00001, SignedHeaders=host;x-sdk-date, Signature=00",
            "SDK-HMAC-SHA256 Access=HPUAEXAMPLEAKID00001, Signature=00",
            "SDK-HMAC-SHA256 garbage",
            "SDK-HMAC-SHA256 Access=HPUAEXAMPLEAKID00001, SignedHeaders=content-type;x-sdk-date, Signature=00",
        ] {
            no_auth.headers.retain(|(k, _)| k != "Authorization");
            no_auth
                .headers
                .push(("Authorization".into(), bad.to_owned()));
            assert!(
                matches!(no_auth.verify(), Err(SigError::Malformed(_))),
                "{bad}"
            );
        }

        let (_, mut r) = rebuilt().remove(0);
        r.set_header("X-Sdk-Date", "2024-05-20T10:39:49Z".into());
        assert!(matches!(r.verify(), Err(SigError::Malformed(_))));

        let (_, mut r) = rebuilt().remove(0);
        r.headers.retain(|(k, _)| k != "X-Project-Id");
        assert!(matches!(r.verify(), Err(SigError::Malformed(_))));
    }

    #[test]
    fn round_trip_with_credentials_authorize() {
        use crate::auth::{CredentialOrigin, Credentials, OutgoingRequest, Secret};

        let creds = Credentials::AkSk {
            ak: "LOCALAK".into(),
            sk: Secret::new("local-secret"),
            security_token: Some(Secret::new("sts+token/=")),
            origin: CredentialOrigin::Env("CLOUD_SDK_AK/CLOUD_SDK_SK"),
        };
        let now = Utc::now();
        let pairs = vec![
            (
                "start_time".to_owned(),
                "2024-01-01T00:00:00+0800".to_owned(),
            ),
            ("name".to_owned(), "Create Instance ü/测试".to_owned()),
            ("limit".to_owned(), "50".to_owned()),
            ("offset".to_owned(), "0".to_owned()),
        ];
        for (method, base, body, ct) in [
            (
                "GET",
                "http://127.0.0.1:18080",
                &b""[..],
                "application/json",
            ),
            (
                "POST",
                "https://sim.example.com",
                &br#"{"a":"\u00fc"}"#[..],
                "application/json",
            ),
            (
                "POST",
                "http://localhost:9",
                &b"plain text"[..],
                "text/plain",
            ),
        ] {
            let query = crate::auth::canonical_query_string(&pairs);
            let url =
                reqwest::Url::parse(&format!("{base}/v3/proj/job%20id/jobs?{query}")).expect("url");
            let client_headers = vec![("Content-Type".to_owned(), ct.to_owned())];
            let added = creds.authorize(&OutgoingRequest {
                method,
                url: &url,
                headers: &client_headers,
                body,
                project_id: Some("proj"),
                now,
            });
            let mut headers = client_headers.clone();
            headers.extend(added);
            headers.push(("host".to_owned(), crate::auth::host_header(&url)));
            let req = IncomingRequest {
                method,
                path: url.path(),
                raw_query: url.query(),
                headers: &headers,
                body,
            };
            assert_eq!(
                verify(&req, "LOCALAK", "local-secret", now),
                Ok(()),
                "{method} {base}"
            );
            assert_eq!(
                verify(&req, "LOCALAK", "other", now),
                Err(SigError::BadSignature)
            );
        }
    }

    #[test]
    fn escaping_helpers() {
        assert_eq!(escape("a b+~/ü"), "a%20b%2B~%2F%C3%BC");
        assert_eq!(unescape("a%20b%zz%2"), "a b%zz%2");
        assert_eq!(canonical_path(""), "/");
        assert_eq!(canonical_query(Some("b=2&&a")), "a=&b=2");
    }
}
