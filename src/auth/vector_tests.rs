//! The official SDK's own signatures (tests/fixtures/signer-vectors.json),
//! reproduced stage by stage by our signer and by `Credentials::authorize`.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;

use super::signer::{self, Request};
use super::{CredentialOrigin, Credentials, OutgoingRequest, Secret, canonical_query_string};

#[derive(Debug, Deserialize)]
struct Vector {
    name: String,
    method: String,
    url: String,
    path: String,
    query: Vec<(String, String)>,
    headers: BTreeMap<String, String>,
    body: String,
    timestamp: String,
    ak: String,
    sk: String,
    project_id: Option<String>,
    security_token: Option<String>,
    added_headers: BTreeMap<String, String>,
    final_headers: BTreeMap<String, String>,
    sent_url: Option<String>,
    expected_signed_headers: String,
    expected_canonical_request: String,
    expected_string_to_sign: String,
    expected_signature: String,
    expected_authorization: String,
}

fn vectors() -> Vec<Vector> {
    let v: Vec<Vector> =
        serde_json::from_str(include_str!("../../tests/fixtures/signer-vectors.json"))
            .expect("signer-vectors.json parses");
    assert_eq!(v.len(), 14, "all vectors loaded");
    v
}

fn date(v: &Vector) -> DateTime<Utc> {
    NaiveDateTime::parse_from_str(&v.timestamp, signer::DATE_FORMAT)
        .expect("vector timestamp")
        .and_utc()
}

/// Header maps compare with values trimmed: the vectors record `final_headers`
/// values trimmed (HTTP drops outer whitespace on the wire anyway).
fn trimmed(h: BTreeMap<String, String>) -> BTreeMap<String, String> {
    h.into_iter()
        .map(|(k, v)| (k, v.trim().to_owned()))
        .collect()
}

fn is(name: &str, other: &str) -> bool {
    name.eq_ignore_ascii_case(other)
}

/// Headers present before the signer runs: the caller's, plus what the SDK's
/// credentials/client add before signing (X-Project-Id, X-Security-Token,
/// User-Agent) — i.e. `added_headers` without what the signer itself adds.
fn pre_sign_headers(v: &Vector) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = v.headers.clone().into_iter().collect();
    h.extend(
        v.added_headers
            .iter()
            .filter(|(k, _)| {
                !is(k, "Host") && !is(k, "Authorization") && !is(k, "X-Sdk-Content-Sha256")
            })
            .map(|(k, val)| (k.clone(), val.clone())),
    );
    h
}

#[test]
fn signer_reproduces_every_vector_stage_by_stage() {
    for v in vectors() {
        let url = reqwest::Url::parse(&v.url).expect("vector url");
        let host = super::host_header(&url);
        let headers = pre_sign_headers(&v);
        let signed = signer::sign(
            &Request {
                method: &v.method,
                host: &host,
                path: &v.path,
                query: &v.query,
                headers: &headers,
                body: v.body.as_bytes(),
            },
            &v.ak,
            &v.sk,
            date(&v),
        );
        let n = &v.name;
        assert_eq!(
            signed.canonical_request, v.expected_canonical_request,
            "{n}"
        );
        assert_eq!(signed.string_to_sign, v.expected_string_to_sign, "{n}");
        assert_eq!(signed.signed_headers, v.expected_signed_headers, "{n}");
        assert_eq!(signed.signature, v.expected_signature, "{n}");
        assert_eq!(signed.authorization, v.expected_authorization, "{n}");

        // What the signer added is what the SDK added (X-Sdk-Date was given).
        let mut expected_added: Vec<(String, String)> = v
            .added_headers
            .iter()
            .filter(|(k, _)| is(k, "Host") || is(k, "X-Sdk-Content-Sha256"))
            .map(|(k, val)| (k.clone(), val.clone()))
            .collect();
        expected_added.sort();
        let mut added = signed.added_headers.clone();
        added.sort();
        assert_eq!(added, expected_added, "{n}");

        // Request headers + added + Authorization = the SDK's final headers.
        let mut all: BTreeMap<String, String> = headers.into_iter().collect();
        all.extend(signed.added_headers);
        all.insert("Authorization".into(), signed.authorization);
        assert_eq!(trimmed(all), trimmed(v.final_headers.clone()), "{n}");

        // The wire URL: path as given + canonical query.
        if let Some(sent) = &v.sent_url {
            let query = canonical_query_string(&v.query);
            let origin = url.origin().ascii_serialization();
            let rebuilt = if query.is_empty() {
                format!("{origin}{}", v.path)
            } else {
                format!("{origin}{}?{query}", v.path)
            };
            assert_eq!(&rebuilt, sent, "{n}");
        }
    }
}

#[test]
fn sent_urls_round_trip_through_reqwest_url() {
    // The HTTP client will build a reqwest::Url from path + canonical query;
    // check reqwest keeps it byte for byte.
    for v in vectors() {
        let Some(sent) = &v.sent_url else { continue };
        let url = reqwest::Url::parse(sent).expect("sent url");
        assert_eq!(url.as_str(), sent, "{}", v.name);
        assert_eq!(url.path(), v.path, "{}", v.name);
        assert_eq!(
            url.query().unwrap_or_default(),
            canonical_query_string(&v.query),
            "{}",
            v.name
        );
        assert_eq!(
            super::parse_query(url.query().unwrap_or_default()).len(),
            v.query.len()
        );
    }
}

fn creds_for(v: &Vector) -> Credentials {
    Credentials::AkSk {
        ak: v.ak.clone(),
        sk: Secret::new(v.sk.clone()),
        security_token: v.security_token.clone().map(Secret::new),
        origin: CredentialOrigin::Env("HUAWEICLOUD_SDK_AK/HUAWEICLOUD_SDK_SK"),
    }
}

#[test]
fn authorize_reproduces_every_vector_end_to_end() {
    for v in vectors() {
        let n = &v.name;
        let sent = reqwest::Url::parse(v.sent_url.as_deref().unwrap_or(&v.url)).expect("url");
        // The client sets Content-Type (and User-Agent for the SDK client
        // vectors); X-Sdk-Date is left to `authorize`, from `now`.
        let mut client_headers: Vec<(String, String)> = v
            .headers
            .iter()
            .filter(|(k, _)| !is(k, "X-Sdk-Date"))
            .map(|(k, val)| (k.clone(), val.clone()))
            .collect();
        if let Some(ua) = v.added_headers.get("User-Agent") {
            client_headers.push(("User-Agent".into(), ua.clone()));
        }
        let out = creds_for(&v).authorize(&OutgoingRequest {
            method: &v.method,
            url: &sent,
            headers: &client_headers,
            body: v.body.as_bytes(),
            project_id: v.project_id.as_deref(),
            now: date(&v),
        });
        let get = |name: &str| {
            out.iter()
                .find(|(k, _)| is(k, name))
                .map(|(_, x)| x.as_str())
        };
        assert_eq!(
            get("Authorization"),
            Some(v.expected_authorization.as_str()),
            "{n}"
        );
        assert_eq!(get("X-Sdk-Date"), Some(v.timestamp.as_str()), "{n}");
        assert_eq!(get("X-Project-Id"), v.project_id.as_deref(), "{n}");
        assert_eq!(get("X-Security-Token"), v.security_token.as_deref(), "{n}");
        assert_eq!(
            get("Host"),
            None,
            "authorize leaves Host to the HTTP client"
        );

        // Client headers + authorize's + Host (from the URL) = the SDK's final set.
        let mut all: BTreeMap<String, String> = client_headers.into_iter().collect();
        let before = all.len();
        all.extend(out.iter().cloned());
        assert_eq!(all.len(), before + out.len(), "{n}: no header added twice");
        all.insert("Host".into(), super::host_header(&sent));
        assert_eq!(trimmed(all), trimmed(v.final_headers.clone()), "{n}");
    }
}

#[test]
fn authorize_with_security_token_signs_it() {
    let v = vectors()
        .into_iter()
        .find(|v| v.name == "workspace_show_image_job_security_token")
        .expect("vector present");
    let url = reqwest::Url::parse(&v.url).expect("url");
    let out = creds_for(&v).authorize(&OutgoingRequest {
        method: "GET",
        url: &url,
        headers: &[("Content-Type".into(), "application/json".into())],
        body: b"",
        project_id: v.project_id.as_deref(),
        now: date(&v),
    });
    let names: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "X-Project-Id",
            "X-Security-Token",
            "X-Sdk-Date",
            "Authorization"
        ]
    );
    let auth = &out[3].1;
    assert!(
        auth.contains("SignedHeaders=content-type;host;x-project-id;x-sdk-date;x-security-token")
    );
    assert_eq!(auth, &v.expected_authorization);
}

#[test]
fn authorize_with_token_sends_x_auth_token_only() {
    let url = reqwest::Url::parse("https://dbss.cn-north-4.myhuaweicloud.com/v1/p/audit/instances")
        .expect("url");
    let creds = Credentials::Token {
        token: Secret::new("tok"),
        origin: CredentialOrigin::Env("CLOUD_SDK_TOKEN"),
    };
    let out = creds.authorize(&OutgoingRequest {
        method: "GET",
        url: &url,
        headers: &[],
        body: b"",
        project_id: Some("p"),
        now: Utc::now(),
    });
    assert_eq!(out, vec![("X-Auth-Token".to_owned(), "tok".to_owned())]);
}

#[test]
fn host_header_omits_default_ports_only() {
    let h = |u: &str| super::host_header(&reqwest::Url::parse(u).expect("url"));
    assert_eq!(h("https://a.example.com/x"), "a.example.com");
    assert_eq!(h("https://a.example.com:443/x"), "a.example.com");
    assert_eq!(h("http://127.0.0.1:80/x"), "127.0.0.1");
    assert_eq!(h("http://127.0.0.1:8080/x"), "127.0.0.1:8080");
    assert_eq!(h("https://a.example.com:8443/"), "a.example.com:8443");
}

#[test]
fn non_default_port_is_signed_in_host() {
    let url = reqwest::Url::parse("http://127.0.0.1:8080/v3/p/jobs?limit=10").expect("url");
    let creds = Credentials::AkSk {
        ak: "AK".into(),
        sk: Secret::new("SK"),
        security_token: None,
        origin: CredentialOrigin::Env("CLOUD_SDK_AK/CLOUD_SDK_SK"),
    };
    let now = Utc::now();
    let out = creds.authorize(&OutgoingRequest {
        method: "GET",
        url: &url,
        headers: &[],
        body: b"",
        project_id: None,
        now,
    });
    let signed = signer::sign(
        &Request {
            method: "GET",
            host: "127.0.0.1:8080",
            path: "/v3/p/jobs",
            query: &[("limit".into(), "10".into())],
            headers: &[],
            body: b"",
        },
        "AK",
        "SK",
        now,
    );
    assert!(signed.canonical_request.contains("\nhost:127.0.0.1:8080\n"));
    assert_eq!(out.last().map(|(_, v)| v), Some(&signed.authorization));
}
