//! Text for people: cut to a length with a visible marker, control characters
//! shown as escapes instead of reaching a terminal, credentials cut out of URLs.
//! One copy of each, used by messages, logs, tables and the report alike.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Keeps the first `max` characters of `s`, adding "…" when anything was cut
/// (for text that is not laid out in terminal columns: web pages, messages).
pub fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}

/// Keeps the first `max` characters of `s`; when anything was cut, ends with
/// a marker that says how much (`…[+4999000 chars]`), so a cut never passes
/// for the whole value.
pub fn cut_chars(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        Some((end, _)) => {
            let rest = s[end..].chars().count();
            Cow::Owned(format!("{}…[+{rest} chars]", &s[..end]))
        }
        None => Cow::Borrowed(s),
    }
}

/// One line of text from anywhere (a job name, an API's `error_msg`, an ID, a
/// path) made safe to print on a terminal: every control character (C0 with
/// tab, CR and LF, DEL, C1) and every bidirectional-text control becomes a
/// visible escape (`\x1b`, `\r`, `\n`, `\u{9b}`, `\u{202e}`), so no escape
/// sequence, clipboard write (OSC 52), title change, overwritten or forged line
/// or reordered text can come of it. Other text (accents, CJK, emoji) is kept.
pub fn for_terminal(s: &str) -> Cow<'_, str> {
    escape_where(s, |_| true)
}

/// [`for_terminal`] for text of several lines that we laid out ourselves (a
/// configuration error quoting its line): line feeds stay, a CR before one is
/// dropped, everything else is escaped.
pub fn for_terminal_lines(s: &str) -> Cow<'_, str> {
    if !s.contains("\r\n") {
        return escape_where(s, |c| c != '\n');
    }
    Cow::Owned(escape_where(&s.replace("\r\n", "\n"), |c| c != '\n').into_owned())
}

/// Whether a terminal could act on `c` instead of showing it: a control
/// character, a bidirectional-text control, or a line or paragraph separator.
pub fn is_unsafe_for_terminal(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// Escapes the characters that are unsafe for a terminal and for which
/// `escape` says yes.
fn escape_where(s: &str, escape: impl Fn(char) -> bool) -> Cow<'_, str> {
    let needs = |c: char| is_unsafe_for_terminal(c) && escape(c);
    let Some(first) = s.find(needs) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        if !needs(c) {
            out.push(c);
            continue;
        }
        let _ = match c {
            '\t' => out.write_str("\\t"),
            '\n' => out.write_str("\\n"),
            '\r' => out.write_str("\\r"),
            c if u32::from(c) < 0x80 => write!(out, "\\x{:02x}", u32::from(c)),
            c => write!(out, "\\u{{{:x}}}", u32::from(c)),
        };
    }
    Cow::Owned(out)
}

/// JSON text (as serde_json writes it) with the characters it leaves raw but a
/// terminal could act on (DEL, C1 controls, bidirectional-text controls, line
/// and paragraph separators) written as `\uXXXX` escapes. The value read back
/// is the same. Such characters only ever occur inside JSON strings, where an
/// escape means the same character, so this can run over a whole document
/// (its layout's line breaks, outside strings, stay).
pub fn json_terminal_safe(json: &str) -> Cow<'_, str> {
    // serde_json escapes every C0 control inside strings itself.
    let escape = |c: char| c >= '\u{7f}' && is_unsafe_for_terminal(c);
    let Some(first) = json.find(escape) else {
        return Cow::Borrowed(json);
    };
    let mut out = String::with_capacity(json.len() + 8);
    out.push_str(&json[..first]);
    for c in json[first..].chars() {
        if escape(c) {
            // Every such character is in the Basic Multilingual Plane: one escape.
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A URL to show to people: a user name and password in it (`https://user:secret@host`,
/// or a token as the user name) become `***`. Everything else is kept.
pub fn redact_url(url: &url::Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    // Only URLs that cannot have credentials refuse these, and those have none.
    let _ = shown.set_username("***");
    if url.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

/// [`redact_url`] for a URL held as text; text that does not parse as a URL
/// is shown up to its first `@` only when it has one (it may hold credentials).
pub fn redact_url_text(text: &str) -> Cow<'_, str> {
    match url::Url::parse(text) {
        Ok(url) if url.username().is_empty() && url.password().is_none() => Cow::Borrowed(text),
        Ok(url) => Cow::Owned(redact_url(&url)),
        Err(_) => match text.split_once("://").zip(text.rfind('@')) {
            Some(((scheme, _), at)) => Cow::Owned(format!("{scheme}://***{}", &text[at..])),
            None => Cow::Borrowed(text),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncating_by_characters_keeps_whole_characters() {
        assert_eq!(truncate_chars("abcdef", 4), "abcd…");
        assert_eq!(truncate_chars("中文中文", 3), "中文中…");
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("", 0), "");
    }

    #[test]
    fn cutting_says_how_much_was_cut() {
        assert_eq!(cut_chars("abcdef", 4), "abcd…[+2 chars]");
        assert_eq!(cut_chars("中文中文", 3), "中文中…[+1 chars]");
        assert!(matches!(cut_chars("abc", 3), Cow::Borrowed("abc")));
    }

    #[test]
    fn every_control_becomes_a_visible_escape() {
        let hostile = "a\u{1b}[31mred\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}]0;title\u{7}\u{8}\r\n\0\u{7f}\u{9b}\t\u{202e}gnp.exe\u{2066}x\u{200f}\u{61c}\u{2028}";
        let shown = for_terminal(hostile);
        assert!(
            !shown.chars().any(is_unsafe_for_terminal),
            "raw control left: {shown:?}"
        );
        assert_eq!(
            shown,
            "a\\x1b[31mred\\x1b]52;c;ZXZpbA==\\x07\\x1b]0;title\\x07\\x08\\r\\n\\x00\\x7f\\u{9b}\\t\\u{202e}gnp.exe\\u{2066}x\\u{200f}\\u{61c}\\u{2028}"
        );
    }

    #[test]
    fn ordinary_text_is_kept_and_not_copied() {
        for text in [
            "plain ascii",
            "Ünïcödé",
            "中文の日本語한국어",
            "emoji 👨‍👩‍👧 🎉",
            "C:\\path",
        ] {
            assert!(matches!(for_terminal(text), Cow::Borrowed(t) if t == text));
        }
    }

    #[test]
    fn lines_keep_their_line_feeds_only() {
        assert_eq!(
            for_terminal_lines("line 3\r\n  |\n  ^ \u{1b}[2J\r"),
            "line 3\n  |\n  ^ \\x1b[2J\\r"
        );
    }

    #[test]
    fn json_keeps_its_value_and_loses_raw_bidi_and_c1() {
        let value = serde_json::json!({"r": "x\u{202e}y\u{9b}z\u{7f}\u{1b}", "中": "文"});
        let raw = serde_json::to_string(&value).expect("json");
        assert!(raw.contains('\u{202e}'), "serde_json leaves it raw");
        let safe = json_terminal_safe(&raw);
        assert!(!safe.chars().any(is_unsafe_for_terminal), "{safe}");
        assert_eq!(
            json_terminal_safe("[\n  1\n]\n"),
            "[\n  1\n]\n",
            "layout stays"
        );
        assert!(safe.contains("\\u202e") && safe.contains("\\u009b") && safe.contains("\\u007f"));
        let back: serde_json::Value = serde_json::from_str(&safe).expect("still JSON");
        assert_eq!(back, value);
    }

    #[test]
    fn credentials_in_urls_are_redacted() {
        let url = |s: &str| url::Url::parse(s).expect("url");
        assert_eq!(
            redact_url(&url("https://user:s3cret@example.com:8443/v3/p?x=1")),
            "https://***:***@example.com:8443/v3/p?x=1"
        );
        assert_eq!(
            redact_url(&url("https://tok3n@example.com/")),
            "https://***@example.com/"
        );
        assert_eq!(
            redact_url(&url("https://example.com/a")),
            "https://example.com/a"
        );
        assert_eq!(
            redact_url_text("http://u:p@127.0.0.1:1/x"),
            "http://***:***@127.0.0.1:1/x"
        );
        assert_eq!(redact_url_text("http://u:p@[bad/x"), "http://***@[bad/x");
        assert_eq!(redact_url_text("not a url"), "not a url");
    }
}
