//! Text for people: cut to a length with a visible marker, or made safe for a
//! terminal. One copy, used by messages, tables and the report alike.

use std::borrow::Cow;

/// Keeps the first `max` characters of `s`, adding "…" when anything was cut
/// (for text that is not laid out in terminal columns: web pages, messages).
pub fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}

/// Text from outside (the cloud, the database) made safe to print on a
/// terminal line: control characters (escape sequences, line breaks) and the
/// bidirectional overrides that reorder what is shown are written as `\u{..}`
/// escapes (`\n`, `\r`, `\t` for the common ones), so they can neither act
/// on the terminal nor forge a line. Borrowed when nothing needs escaping.
pub fn for_terminal(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Control characters, and the Unicode controls that reorder text on screen.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_text_escapes_controls_and_keeps_the_rest() {
        assert!(matches!(for_terminal("disk full 磁盘"), Cow::Borrowed(_)));
        assert_eq!(
            for_terminal("a\x1b[31mred\nfake line\r\t\u{202e}x\u{7f}"),
            "a\\u{1b}[31mred\\nfake line\\r\\t\\u{202e}x\\u{7f}"
        );
    }

    #[test]
    fn truncating_by_characters_keeps_whole_characters() {
        assert_eq!(truncate_chars("abcdef", 4), "abcd…");
        assert_eq!(truncate_chars("中文中文", 3), "中文中…");
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("", 0), "");
    }
}
