//! Where credentials come from: the SDK environment variables, the names used in
//! the cloud's code samples, an IAM token, or the SDKs' credentials file — in that
//! order — and the errors that say what to fix. No error or description ever
//! contains a secret value.

use std::fmt;
use std::path::{Path, PathBuf};

use super::Secret;

/// The SDK's own variable names.
pub const HUAWEICLOUD_SDK_AK: &str = "HUAWEICLOUD_SDK_AK";
pub const HUAWEICLOUD_SDK_SK: &str = "HUAWEICLOUD_SDK_SK";
pub const HUAWEICLOUD_SDK_SECURITY_TOKEN: &str = "HUAWEICLOUD_SDK_SECURITY_TOKEN";
/// The names in the cloud's code samples.
pub const CLOUD_SDK_AK: &str = "CLOUD_SDK_AK";
pub const CLOUD_SDK_SK: &str = "CLOUD_SDK_SK";
pub const CLOUD_SDK_SECURITY_TOKEN: &str = "CLOUD_SDK_SECURITY_TOKEN";
/// A ready IAM token, sent as `X-Auth-Token`.
pub const CLOUD_SDK_TOKEN: &str = "CLOUD_SDK_TOKEN";
/// Overrides the credentials file location.
pub const HUAWEICLOUD_SDK_CREDENTIALS_FILE: &str = "HUAWEICLOUD_SDK_CREDENTIALS_FILE";
/// The project ID the SDKs use instead of asking IAM.
pub const HUAWEICLOUD_SDK_PROJECT_ID: &str = "HUAWEICLOUD_SDK_PROJECT_ID";

/// One environment AK/SK pair and its optional security token.
#[derive(Debug, Clone, Copy)]
struct EnvPair {
    ak: &'static str,
    sk: &'static str,
    token: &'static str,
    /// "AK/SK" as shown in messages.
    label: &'static str,
}

const ENV_PAIRS: [EnvPair; 2] = [
    EnvPair {
        ak: HUAWEICLOUD_SDK_AK,
        sk: HUAWEICLOUD_SDK_SK,
        token: HUAWEICLOUD_SDK_SECURITY_TOKEN,
        label: "HUAWEICLOUD_SDK_AK/HUAWEICLOUD_SDK_SK",
    },
    EnvPair {
        ak: CLOUD_SDK_AK,
        sk: CLOUD_SDK_SK,
        token: CLOUD_SDK_SECURITY_TOKEN,
        label: "CLOUD_SDK_AK/CLOUD_SDK_SK",
    },
];

/// Where credentials came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialOrigin {
    /// Environment variables, e.g. `"HUAWEICLOUD_SDK_AK/HUAWEICLOUD_SDK_SK"` or
    /// `"CLOUD_SDK_TOKEN"`.
    Env(&'static str),
    /// The `[basic]` section of an SDK credentials file.
    File(PathBuf),
}

impl fmt::Display for CredentialOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialOrigin::Env(names) => f.write_str(names),
            CredentialOrigin::File(path) => {
                write!(f, "credentials file {} [basic]", path.display())
            }
        }
    }
}

/// Resolved credentials. `Debug` shows the AK and origin only; secrets print `***`.
#[derive(Debug, Clone)]
pub enum Credentials {
    AkSk {
        ak: String,
        sk: Secret,
        security_token: Option<Secret>,
        origin: CredentialOrigin,
    },
    Token {
        token: Secret,
        origin: CredentialOrigin,
    },
}

/// Why no usable credentials were found. Messages name the variables, file,
/// line or key to fix, and never a value.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("{set} is set but {missing} is not: set both (or unset {set})")]
    IncompletePair {
        set: &'static str,
        missing: &'static str,
    },
    #[error(
        "{token} is set but {ak} and {sk} are not: a security token is only used with \
         its temporary AK/SK; set {ak} and {sk} too, or unset {token}"
    )]
    OrphanSecurityToken {
        token: &'static str,
        ak: &'static str,
        sk: &'static str,
    },
    #[error(
        "both an AK/SK pair ({pair}) and an IAM token ({CLOUD_SDK_TOKEN}) are set, so it is \
         unclear which to use: unset {CLOUD_SDK_TOKEN} to sign requests with the AK/SK, \
         or unset {pair} to send the token"
    )]
    Ambiguous { pair: &'static str },
    #[error(
        "no Huawei Cloud credentials found; set one of: \
         {HUAWEICLOUD_SDK_AK} and {HUAWEICLOUD_SDK_SK} (optionally {HUAWEICLOUD_SDK_SECURITY_TOKEN}); \
         or {CLOUD_SDK_AK} and {CLOUD_SDK_SK} (optionally {CLOUD_SDK_SECURITY_TOKEN}); \
         or {CLOUD_SDK_TOKEN} (an IAM token); \
         or put ak and sk (optionally security_token) in the [basic] section of {file} \
         (another file can be named with {HUAWEICLOUD_SDK_CREDENTIALS_FILE})"
    )]
    NotFound { file: String },
    #[error(
        "credentials file {} (named by {HUAWEICLOUD_SDK_CREDENTIALS_FILE}) does not exist: \
         create it or fix the variable",
        path.display()
    )]
    FileMissing { path: PathBuf },
    #[error("cannot read credentials file {}: {source}", path.display())]
    FileUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "credentials file {} line {line}: {problem} (expected `[section]`, `key = value`, \
         or a `#`/`;` comment)",
        path.display()
    )]
    FileSyntax {
        path: PathBuf,
        line: usize,
        problem: &'static str,
    },
    #[error(
        "credentials file {} has no [basic] section: add one with ak = … and sk = …",
        path.display()
    )]
    FileNoBasic { path: PathBuf },
    #[error(
        "credentials file {} [basic] section (line {line}) has no `{key}`: add `{key} = …`",
        path.display()
    )]
    FileMissingKey {
        path: PathBuf,
        line: usize,
        key: &'static str,
    },
}

/// Reads a variable, treating empty as unset.
fn read(lookup: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    lookup(name).filter(|v| !v.is_empty())
}

impl Credentials {
    /// Real process environment and the SDK credentials file under the home directory.
    pub fn from_environment() -> Result<Credentials, CredentialError> {
        let home = std::env::home_dir();
        Credentials::resolve(&|name| std::env::var(name).ok(), home.as_deref())
    }

    /// Resolves credentials from `lookup` (reads an environment variable) and the
    /// credentials file (`HUAWEICLOUD_SDK_CREDENTIALS_FILE`, else
    /// `<home>/.huaweicloud/credentials`). Order: `HUAWEICLOUD_SDK_AK`/`_SK`,
    /// `CLOUD_SDK_AK`/`_SK`, `CLOUD_SDK_TOKEN`, the file's `[basic]` section.
    /// Empty values count as unset.
    pub fn resolve(
        lookup: &dyn Fn(&str) -> Option<String>,
        home: Option<&Path>,
    ) -> Result<Credentials, CredentialError> {
        // Check every pair for consistency before picking one, so a half-set
        // variable is reported even when another pair would work.
        let mut found: Option<(Credentials, &'static str)> = None;
        for pair in ENV_PAIRS {
            let ak = read(lookup, pair.ak);
            let sk = read(lookup, pair.sk);
            let token = read(lookup, pair.token);
            match (ak, sk) {
                (Some(ak), Some(sk)) => {
                    if found.is_none() {
                        let creds = Credentials::AkSk {
                            ak,
                            sk: Secret::new(sk),
                            security_token: token.map(Secret::new),
                            origin: CredentialOrigin::Env(pair.label),
                        };
                        found = Some((creds, pair.label));
                    }
                }
                (Some(_), None) => {
                    return Err(CredentialError::IncompletePair {
                        set: pair.ak,
                        missing: pair.sk,
                    });
                }
                (None, Some(_)) => {
                    return Err(CredentialError::IncompletePair {
                        set: pair.sk,
                        missing: pair.ak,
                    });
                }
                (None, None) => {
                    if token.is_some() {
                        return Err(CredentialError::OrphanSecurityToken {
                            token: pair.token,
                            ak: pair.ak,
                            sk: pair.sk,
                        });
                    }
                }
            }
        }
        let iam_token = read(lookup, CLOUD_SDK_TOKEN);
        match (found, iam_token) {
            (Some((_, pair)), Some(_)) => return Err(CredentialError::Ambiguous { pair }),
            (Some((creds, _)), None) => return Ok(creds),
            (_, Some(token)) => {
                return Ok(Credentials::Token {
                    token: Secret::new(token),
                    origin: CredentialOrigin::Env(CLOUD_SDK_TOKEN),
                });
            }
            (None, None) => {}
        }

        // The credentials file.
        let (path, explicit) = match read(lookup, HUAWEICLOUD_SDK_CREDENTIALS_FILE) {
            Some(p) => (Some(PathBuf::from(p)), true),
            None => (
                home.map(|h| h.join(".huaweicloud").join("credentials")),
                false,
            ),
        };
        let not_found = |path: Option<&Path>| CredentialError::NotFound {
            file: path.map_or_else(
                || "~/.huaweicloud/credentials".to_owned(),
                |p| p.display().to_string(),
            ),
        };
        let Some(path) = path else {
            return Err(not_found(None));
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(if explicit {
                    CredentialError::FileMissing { path }
                } else {
                    not_found(Some(&path))
                });
            }
            Err(source) => return Err(CredentialError::FileUnreadable { path, source }),
        };
        from_file_text(&text, path)
    }

    /// One line for messages: the kind and origin, never a value. E.g.
    /// `AK/SK (HUAWEICLOUD_SDK_AK/HUAWEICLOUD_SDK_SK, with security token)` or
    /// `IAM token (CLOUD_SDK_TOKEN)`.
    pub fn describe(&self) -> String {
        match self {
            Credentials::AkSk {
                security_token,
                origin,
                ..
            } => match security_token {
                Some(_) => format!("AK/SK ({origin}, with security token)"),
                None => format!("AK/SK ({origin})"),
            },
            Credentials::Token { origin, .. } => format!("IAM token ({origin})"),
        }
    }

    /// Where these credentials came from.
    pub fn origin(&self) -> &CredentialOrigin {
        match self {
            Credentials::AkSk { origin, .. } | Credentials::Token { origin, .. } => origin,
        }
    }
}

/// What the SDKs read beside the keys, each with where it came from: a
/// project ID (used instead of asking IAM) and an IAM endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SdkExtras {
    /// `(id, origin)`: `HUAWEICLOUD_SDK_PROJECT_ID`, else the credentials
    /// file's `project_id` when the keys came from that file.
    pub project_id: Option<(String, String)>,
    /// `(url, origin)`: the credentials file's `iam_endpoint`, when the keys
    /// came from that file (the SDKs read the file only then).
    pub iam_endpoint: Option<(String, String)>,
}

impl Credentials {
    /// The SDK settings that go with these credentials, read through `lookup`
    /// (an environment variable) and, for keys from the credentials file, that
    /// file again. Empty values count as unset.
    pub fn sdk_extras(&self, lookup: &dyn Fn(&str) -> Option<String>) -> SdkExtras {
        let from_file = match self.origin() {
            CredentialOrigin::File(path) => file_extras(path),
            CredentialOrigin::Env(_) => SdkExtras::default(),
        };
        let project_id = read(lookup, HUAWEICLOUD_SDK_PROJECT_ID)
            .map(|id| (id, HUAWEICLOUD_SDK_PROJECT_ID.to_owned()))
            .or(from_file.project_id);
        SdkExtras {
            project_id,
            iam_endpoint: from_file.iam_endpoint,
        }
    }

    /// A short fingerprint of the credentials (a hash, never the key or token
    /// itself): what IAM answered for one key pair is not reused for another.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        match self {
            Credentials::AkSk { ak, .. } => {
                hash.update(b"aksk:");
                hash.update(ak.as_bytes());
            }
            Credentials::Token { token, .. } => {
                hash.update(b"token:");
                hash.update(token.expose().as_bytes());
            }
        }
        hex::encode(&hash.finalize()[..8])
    }
}

/// `project_id` and `iam_endpoint` of a credentials file's `[basic]` section
/// (read again: the keys were read from it a moment ago).
fn file_extras(path: &Path) -> SdkExtras {
    let Ok(text) = std::fs::read_to_string(path) else {
        return SdkExtras::default();
    };
    let Ok(ini) = parse_ini(&text) else {
        return SdkExtras::default();
    };
    let Some(basic) = ini.iter().find(|s| s.name == "basic") else {
        return SdkExtras::default();
    };
    let get = |key: &str| {
        basic
            .entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
            .map(|v| {
                (
                    v,
                    format!("credentials file {} [basic] {key}", path.display()),
                )
            })
    };
    SdkExtras {
        project_id: get("project_id"),
        iam_endpoint: get("iam_endpoint"),
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Takes `ak`, `sk` and `security_token` from the `[basic]` section of an
/// INI-style credentials file.
fn from_file_text(text: &str, path: PathBuf) -> Result<Credentials, CredentialError> {
    let ini = match parse_ini(text) {
        Ok(ini) => ini,
        Err((line, problem)) => {
            return Err(CredentialError::FileSyntax {
                path,
                line,
                problem,
            });
        }
    };
    let Some(basic) = ini.iter().find(|s| s.name == "basic") else {
        return Err(CredentialError::FileNoBasic { path });
    };
    let get = |key: &str| {
        basic
            .entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let (ak, sk) = match (get("ak"), get("sk")) {
        (Some(ak), Some(sk)) => (ak, sk),
        (None, _) => {
            return Err(CredentialError::FileMissingKey {
                path,
                line: basic.line,
                key: "ak",
            });
        }
        (_, None) => {
            return Err(CredentialError::FileMissingKey {
                path,
                line: basic.line,
                key: "sk",
            });
        }
    };
    Ok(Credentials::AkSk {
        ak,
        sk: Secret::new(sk),
        security_token: get("security_token").map(Secret::new),
        origin: CredentialOrigin::File(path),
    })
}

/// One `[section]` of an INI file: its name, the line it starts on, and its
/// `key = value` entries (keys lower-cased, values trimmed) in file order.
#[derive(Debug)]
struct IniSection {
    name: String,
    line: usize,
    entries: Vec<(String, String)>,
}

/// A small INI reader in the spirit of Python's `configparser` (which the SDK
/// uses): `[section]`, `key = value` or `key: value`, whole-line `#`/`;`
/// comments, blank lines; keys are case-insensitive. Errors give the 1-based line
/// and a problem that never quotes the line (it may hold a secret).
fn parse_ini(text: &str) -> Result<Vec<IniSection>, (usize, &'static str)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut sections: Vec<IniSection> = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err((line_no, "section header without closing `]`"));
            };
            sections.push(IniSection {
                name: name.trim().to_owned(),
                line: line_no,
                entries: Vec::new(),
            });
            continue;
        }
        let split = match (line.find('='), line.find(':')) {
            (Some(e), Some(c)) => Some(e.min(c)),
            (e, c) => e.or(c),
        };
        let Some(at) = split else {
            return Err((
                line_no,
                "line is neither a section, a `key = value` pair nor a comment",
            ));
        };
        let key = line[..at].trim().to_ascii_lowercase();
        if key.is_empty() {
            return Err((line_no, "`=` without a key before it"));
        }
        let value = line[at + 1..].trim().to_owned();
        let Some(section) = sections.last_mut() else {
            return Err((line_no, "`key = value` before any `[section]`"));
        };
        section.entries.push((key, value));
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SK: &str = "SecretKeyValue0123456789";
    const SK2: &str = "OtherSecretKey9876";
    const TOKEN: &str = "MIIexampleIAMtokenvalue";
    const STS: &str = "TemporarySecurityToken+/=";

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn resolve_with(
        vars: &HashMap<String, String>,
        home: Option<&Path>,
    ) -> Result<Credentials, CredentialError> {
        Credentials::resolve(&|k| vars.get(k).cloned(), home)
    }

    fn no_home() -> tempfile::TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    fn assert_no_secret(text: &str) {
        for s in [SK, SK2, TOKEN, STS] {
            assert!(!text.contains(s), "secret leaked in: {text}");
        }
    }

    fn expect_aksk(c: &Credentials) -> (&str, &str, Option<&str>, &CredentialOrigin) {
        match c {
            Credentials::AkSk {
                ak,
                sk,
                security_token,
                origin,
            } => (
                ak,
                sk.expose(),
                security_token.as_ref().map(|s| s.expose()),
                origin,
            ),
            Credentials::Token { .. } => panic!("expected AK/SK, got {c:?}"),
        }
    }

    #[test]
    fn huaweicloud_sdk_vars() {
        let home = no_home();
        let vars = env(&[
            ("HUAWEICLOUD_SDK_AK", "AK1"),
            ("HUAWEICLOUD_SDK_SK", SK),
            ("HUAWEICLOUD_SDK_SECURITY_TOKEN", STS),
        ]);
        let c = resolve_with(&vars, Some(home.path())).expect("resolves");
        let (ak, sk, st, origin) = expect_aksk(&c);
        assert_eq!((ak, sk, st), ("AK1", SK, Some(STS)));
        assert_eq!(
            *origin,
            CredentialOrigin::Env("HUAWEICLOUD_SDK_AK/HUAWEICLOUD_SDK_SK")
        );
        assert_eq!(
            c.describe(),
            "AK/SK (HUAWEICLOUD_SDK_AK/HUAWEICLOUD_SDK_SK, with security token)"
        );
        assert_eq!(c.to_string(), c.describe());
    }

    #[test]
    fn cloud_sdk_vars() {
        let home = no_home();
        let vars = env(&[("CLOUD_SDK_AK", "AK2"), ("CLOUD_SDK_SK", SK2)]);
        let c = resolve_with(&vars, Some(home.path())).expect("resolves");
        let (ak, sk, st, _) = expect_aksk(&c);
        assert_eq!((ak, sk, st), ("AK2", SK2, None));
        assert_eq!(c.describe(), "AK/SK (CLOUD_SDK_AK/CLOUD_SDK_SK)");
    }

    #[test]
    fn cloud_sdk_security_token_goes_with_its_pair() {
        let home = no_home();
        let vars = env(&[
            ("CLOUD_SDK_AK", "AK2"),
            ("CLOUD_SDK_SK", SK2),
            ("CLOUD_SDK_SECURITY_TOKEN", STS),
        ]);
        let c = resolve_with(&vars, Some(home.path())).expect("resolves");
        assert_eq!(expect_aksk(&c).2, Some(STS));
    }

    #[test]
    fn huaweicloud_pair_wins_over_cloud_pair() {
        let home = no_home();
        let vars = env(&[
            ("CLOUD_SDK_AK", "AK2"),
            ("CLOUD_SDK_SK", SK2),
            ("CLOUD_SDK_SECURITY_TOKEN", STS),
            ("HUAWEICLOUD_SDK_AK", "AK1"),
            ("HUAWEICLOUD_SDK_SK", SK),
        ]);
        let c = resolve_with(&vars, Some(home.path())).expect("resolves");
        let (ak, sk, st, _) = expect_aksk(&c);
        assert_eq!((ak, sk, st), ("AK1", SK, None));
    }

    #[test]
    fn iam_token() {
        let home = no_home();
        let vars = env(&[("CLOUD_SDK_TOKEN", TOKEN)]);
        let c = resolve_with(&vars, Some(home.path())).expect("resolves");
        match &c {
            Credentials::Token { token, origin } => {
                assert_eq!(token.expose(), TOKEN);
                assert_eq!(*origin, CredentialOrigin::Env("CLOUD_SDK_TOKEN"));
            }
            other => panic!("expected token, got {other:?}"),
        }
        assert_eq!(c.describe(), "IAM token (CLOUD_SDK_TOKEN)");
    }

    #[test]
    fn empty_strings_are_unset() {
        let home = no_home();
        let vars = env(&[
            ("HUAWEICLOUD_SDK_AK", ""),
            ("HUAWEICLOUD_SDK_SK", ""),
            ("HUAWEICLOUD_SDK_SECURITY_TOKEN", ""),
            ("CLOUD_SDK_AK", "AK2"),
            ("CLOUD_SDK_SK", SK2),
            ("CLOUD_SDK_SECURITY_TOKEN", ""),
            ("CLOUD_SDK_TOKEN", ""),
        ]);
        let c = resolve_with(&vars, Some(home.path())).expect("resolves");
        let (ak, _, st, _) = expect_aksk(&c);
        assert_eq!((ak, st), ("AK2", None));
    }

    #[test]
    fn ak_without_sk_names_both_variables() {
        let home = no_home();
        for (set, missing) in [
            ("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK"),
            ("HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_AK"),
            ("CLOUD_SDK_AK", "CLOUD_SDK_SK"),
            ("CLOUD_SDK_SK", "CLOUD_SDK_AK"),
        ] {
            // Even when the other pair is complete, a half-set pair is an error.
            let mut vars = env(&[(set, SK), (missing, "")]);
            if set.starts_with("CLOUD") {
                vars.extend(env(&[
                    ("HUAWEICLOUD_SDK_AK", "AK1"),
                    ("HUAWEICLOUD_SDK_SK", SK2),
                ]));
            }
            let err = resolve_with(&vars, Some(home.path())).expect_err("half a pair");
            let msg = err.to_string();
            assert!(
                matches!(err, CredentialError::IncompletePair { .. }),
                "{msg}"
            );
            assert!(msg.contains(set) && msg.contains(missing), "{msg}");
            assert_no_secret(&msg);
        }
    }

    #[test]
    fn security_token_without_its_pair() {
        let home = no_home();
        let vars = env(&[
            ("HUAWEICLOUD_SDK_SECURITY_TOKEN", STS),
            ("CLOUD_SDK_AK", "AK2"),
            ("CLOUD_SDK_SK", SK2),
        ]);
        let err = resolve_with(&vars, Some(home.path())).expect_err("orphan token");
        let msg = err.to_string();
        assert!(msg.contains("HUAWEICLOUD_SDK_SECURITY_TOKEN"), "{msg}");
        assert!(msg.contains("HUAWEICLOUD_SDK_AK") && msg.contains("HUAWEICLOUD_SDK_SK"));
        assert_no_secret(&msg);
    }

    #[test]
    fn aksk_and_token_together_are_ambiguous() {
        let home = no_home();
        for (ak, sk, label) in [
            (
                "HUAWEICLOUD_SDK_AK",
                "HUAWEICLOUD_SDK_SK",
                "HUAWEICLOUD_SDK_AK/HUAWEICLOUD_SDK_SK",
            ),
            ("CLOUD_SDK_AK", "CLOUD_SDK_SK", "CLOUD_SDK_AK/CLOUD_SDK_SK"),
        ] {
            let vars = env(&[(ak, "AK1"), (sk, SK), ("CLOUD_SDK_TOKEN", TOKEN)]);
            let err = resolve_with(&vars, Some(home.path())).expect_err("ambiguous");
            let msg = err.to_string();
            assert!(matches!(err, CredentialError::Ambiguous { .. }), "{msg}");
            assert!(msg.contains(label), "{msg}");
            assert!(msg.contains("unset CLOUD_SDK_TOKEN"), "{msg}");
            assert_no_secret(&msg);
        }
    }

    #[test]
    fn nothing_found_lists_every_option() {
        let home = no_home();
        let err = resolve_with(&env(&[]), Some(home.path())).expect_err("nothing");
        let msg = err.to_string();
        for name in [
            "HUAWEICLOUD_SDK_AK",
            "HUAWEICLOUD_SDK_SK",
            "HUAWEICLOUD_SDK_SECURITY_TOKEN",
            "CLOUD_SDK_AK",
            "CLOUD_SDK_SK",
            "CLOUD_SDK_SECURITY_TOKEN",
            "CLOUD_SDK_TOKEN",
            "HUAWEICLOUD_SDK_CREDENTIALS_FILE",
            "[basic]",
        ] {
            assert!(msg.contains(name), "missing {name} in: {msg}");
        }
        let expected = home.path().join(".huaweicloud").join("credentials");
        assert!(msg.contains(&expected.display().to_string()), "{msg}");
        // Without a home directory the default location is still named.
        let msg = resolve_with(&env(&[]), None)
            .expect_err("nothing")
            .to_string();
        assert!(msg.contains("~/.huaweicloud/credentials"), "{msg}");
    }

    fn write_home_file(home: &Path, text: &str) -> PathBuf {
        let dir = home.join(".huaweicloud");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("credentials");
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn credentials_file_in_home() {
        let home = no_home();
        let path = write_home_file(
            home.path(),
            &format!(
                "\u{feff}# SDK profile\n; another comment\n[global]\nak = GLOBALAK\nsk = x\n\n\
                 [basic]\n  AK = FILEAK  \nsk={SK}\nsecurity_token: {STS}\nproject_id = p1\n"
            ),
        );
        let c = resolve_with(&env(&[]), Some(home.path())).expect("resolves");
        let (ak, sk, st, origin) = expect_aksk(&c);
        assert_eq!((ak, sk, st), ("FILEAK", SK, Some(STS)));
        assert_eq!(*origin, CredentialOrigin::File(path.clone()));
        assert_eq!(
            c.describe(),
            format!(
                "AK/SK (credentials file {} [basic], with security token)",
                path.display()
            )
        );
    }

    #[test]
    fn environment_wins_over_file_and_token_wins_over_file() {
        let home = no_home();
        write_home_file(home.path(), &format!("[basic]\nak = FILEAK\nsk = {SK}\n"));
        let vars = env(&[("CLOUD_SDK_AK", "AK2"), ("CLOUD_SDK_SK", SK2)]);
        let c = resolve_with(&vars, Some(home.path())).expect("resolves");
        assert_eq!(expect_aksk(&c).0, "AK2");
        let vars = env(&[("CLOUD_SDK_TOKEN", TOKEN)]);
        let c = resolve_with(&vars, Some(home.path())).expect("resolves");
        assert!(matches!(c, Credentials::Token { .. }));
    }

    #[test]
    fn credentials_file_named_by_variable() {
        let dir = no_home();
        let path = dir.path().join("my-creds.ini");
        std::fs::write(&path, format!("[basic]\nak = NAMEDAK\nsk = {SK}\n")).expect("write");
        let vars = env(&[(
            "HUAWEICLOUD_SDK_CREDENTIALS_FILE",
            path.to_str().expect("utf-8 path"),
        )]);
        let c = resolve_with(&vars, None).expect("resolves");
        assert_eq!(expect_aksk(&c).0, "NAMEDAK");

        let missing = dir.path().join("nope.ini");
        let vars = env(&[(
            "HUAWEICLOUD_SDK_CREDENTIALS_FILE",
            missing.to_str().expect("utf-8 path"),
        )]);
        let msg = resolve_with(&vars, None).expect_err("missing").to_string();
        assert!(msg.contains(&missing.display().to_string()), "{msg}");
        assert!(msg.contains("HUAWEICLOUD_SDK_CREDENTIALS_FILE"), "{msg}");
    }

    #[test]
    fn credentials_file_errors_name_file_and_key_or_line() {
        let home = no_home();
        let path = write_home_file(home.path(), &format!("[global]\nak = A\nsk = {SK}\n"));
        let msg = resolve_with(&env(&[]), Some(home.path()))
            .expect_err("no basic")
            .to_string();
        assert!(
            msg.contains(&path.display().to_string()) && msg.contains("[basic]"),
            "{msg}"
        );
        assert_no_secret(&msg);

        write_home_file(home.path(), &format!("# c\n[basic]\nsk = {SK}\n"));
        let msg = resolve_with(&env(&[]), Some(home.path()))
            .expect_err("no ak")
            .to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("`ak`") && msg.contains("line 2"), "{msg}");
        assert_no_secret(&msg);

        write_home_file(home.path(), "[basic]\nak = A\nsk =\n");
        let msg = resolve_with(&env(&[]), Some(home.path()))
            .expect_err("empty sk")
            .to_string();
        assert!(msg.contains("`sk`"), "{msg}");

        write_home_file(home.path(), &format!("[basic]\nak = A\n{SK}\n"));
        let err = resolve_with(&env(&[]), Some(home.path())).expect_err("syntax");
        let msg = err.to_string();
        assert!(
            matches!(err, CredentialError::FileSyntax { line: 3, .. }),
            "{msg}"
        );
        assert!(
            msg.contains("line 3") && msg.contains(&path.display().to_string()),
            "{msg}"
        );
        assert_no_secret(&msg);

        write_home_file(home.path(), &format!("sk = {SK}\n[basic]\n"));
        let err = resolve_with(&env(&[]), Some(home.path())).expect_err("no section");
        assert!(matches!(err, CredentialError::FileSyntax { line: 1, .. }));
        assert_no_secret(&err.to_string());
    }

    #[test]
    fn unreadable_credentials_file_names_it() {
        // A directory where the file should be cannot be read as text.
        let home = no_home();
        let path = home.path().join(".huaweicloud").join("credentials");
        std::fs::create_dir_all(&path).expect("mkdir");
        let err = resolve_with(&env(&[]), Some(home.path())).expect_err("unreadable");
        let msg = err.to_string();
        assert!(
            matches!(err, CredentialError::FileUnreadable { .. }),
            "{msg}"
        );
        assert!(msg.contains(&path.display().to_string()), "{msg}");
    }

    #[test]
    fn the_sdks_project_id_and_iam_endpoint_come_with_their_origin() {
        let home = no_home();
        let path = write_home_file(
            home.path(),
            &format!(
                "[basic]\nak = FILEAK\nsk = {SK}\nproject_id = p-file\niam_endpoint = https://iam.example\n"
            ),
        );
        let c = resolve_with(&env(&[]), Some(home.path())).expect("resolves");
        let none = |_: &str| None;
        let extras = c.sdk_extras(&none);
        let origin = |key: &str| format!("credentials file {} [basic] {key}", path.display());
        assert_eq!(
            extras.project_id,
            Some(("p-file".to_owned(), origin("project_id")))
        );
        assert_eq!(
            extras.iam_endpoint,
            Some(("https://iam.example".to_owned(), origin("iam_endpoint")))
        );
        // The variable wins over the file.
        let vars = env(&[("HUAWEICLOUD_SDK_PROJECT_ID", "p-env")]);
        let extras = c.sdk_extras(&|k| vars.get(k).cloned());
        assert_eq!(
            extras.project_id,
            Some(("p-env".to_owned(), "HUAWEICLOUD_SDK_PROJECT_ID".to_owned()))
        );
        // Keys from the environment: the file is not read, as in the SDKs.
        let vars = env(&[("HUAWEICLOUD_SDK_AK", "AK1"), ("HUAWEICLOUD_SDK_SK", SK)]);
        let from_env = resolve_with(&vars, Some(home.path())).expect("resolves");
        assert_eq!(from_env.sdk_extras(&none), SdkExtras::default());
    }

    #[test]
    fn fingerprints_tell_credentials_apart_and_show_no_secret() {
        let home = no_home();
        let a = resolve_with(
            &env(&[("HUAWEICLOUD_SDK_AK", "AK1"), ("HUAWEICLOUD_SDK_SK", SK)]),
            Some(home.path()),
        )
        .expect("a");
        let b = resolve_with(
            &env(&[("HUAWEICLOUD_SDK_AK", "AK2"), ("HUAWEICLOUD_SDK_SK", SK)]),
            Some(home.path()),
        )
        .expect("b");
        let t = resolve_with(&env(&[("CLOUD_SDK_TOKEN", TOKEN)]), Some(home.path())).expect("t");
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), t.fingerprint());
        assert_eq!(a.fingerprint().len(), 16);
        assert!(!t.fingerprint().contains("MII") && !a.fingerprint().contains("AK1"));
    }

    #[test]
    fn debug_and_describe_never_show_secrets() {
        let home = no_home();
        let aksk = resolve_with(
            &env(&[
                ("HUAWEICLOUD_SDK_AK", "AK1"),
                ("HUAWEICLOUD_SDK_SK", SK),
                ("HUAWEICLOUD_SDK_SECURITY_TOKEN", STS),
            ]),
            Some(home.path()),
        )
        .expect("resolves");
        let token =
            resolve_with(&env(&[("CLOUD_SDK_TOKEN", TOKEN)]), Some(home.path())).expect("resolves");
        for c in [&aksk, &token] {
            for text in [
                format!("{c:?}"),
                format!("{c:#?}"),
                c.describe(),
                c.to_string(),
            ] {
                assert_no_secret(&text);
            }
        }
        assert!(format!("{aksk:?}").contains("***"));
        assert_eq!(format!("{}", Secret::new(SK)), "***");
        assert_eq!(format!("{:?}", Secret::new(SK)), "***");
    }
}
