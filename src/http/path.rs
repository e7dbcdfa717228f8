//! Request paths built from their segments, each percent-encoded as the SDK
//! encodes it. A segment that would change which path is asked for is refused:
//! `.` and `..` (the URL library resolves them, encoded or not, so the request
//! would go to another path of the same host), an empty one, and one with a
//! `/` or `\` (a server that decodes before routing would see more segments).

use crate::auth::signer::encode;

/// A value that cannot be sent as one path segment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} cannot be sent as one URL path segment: {why}")]
pub struct UnsafeSegment {
    /// The value, cut to a readable length.
    pub value: String,
    pub why: &'static str,
}

/// Why `value` cannot be one path segment, if it cannot.
pub fn segment_problem(value: &str) -> Option<&'static str> {
    match value {
        "" => Some("it is empty"),
        "." | ".." => Some("`.` and `..` would make the request go to another path"),
        v if v.contains(['/', '\\']) => Some("it contains `/` or `\\`"),
        _ => None,
    }
}

/// `/s1/s2/…` from raw segments, each percent-encoded; refuses any segment
/// [`segment_problem`] names.
pub fn api_path(segments: &[&str]) -> Result<String, UnsafeSegment> {
    let mut path = String::new();
    for segment in segments {
        if let Some(why) = segment_problem(segment) {
            return Err(UnsafeSegment {
                value: crate::text::truncate_chars(segment, 80),
                why,
            });
        }
        path.push('/');
        path.push_str(&encode(segment));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded_and_dot_segments_refused() {
        assert_eq!(
            api_path(&["v1", "p", "image-server-jobs", "a b%2e"]).as_deref(),
            Ok("/v1/p/image-server-jobs/a%20b%252e")
        );
        for bad in [".", "..", "", "a/..", "..\\x"] {
            assert!(api_path(&["v1", bad]).is_err(), "{bad:?}");
        }
        assert!(api_path(&["v1", "...", ".x", "%2e%2e"]).is_ok());
    }
}
