//! Text for people: cut to a length with a visible marker. One copy, used by
//! messages, tables and the report alike.

/// Keeps the first `max` characters of `s`, adding "…" when anything was cut
/// (for text that is not laid out in terminal columns: web pages, messages).
pub fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
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
}
