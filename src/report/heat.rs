//! The reasons-by-week grid (a heat map): one row per top failure reason, one
//! column per week, each cell shaded by that week's failures with the count in
//! its tooltip, and the same in words (first, peak and last week) for readers
//! who cannot see the shades. It is an HTML table whose runs of empty weeks
//! merge into one cell, so a sparse grid costs little of the page's budget.

use std::fmt::Write as _;

use chrono::NaiveDate;

use super::html::escape;
use super::svg::iso_label;
use super::{MAX_WEEKS, ReasonWeeks, ReportData, week_grid};
use crate::text::truncate_chars;

/// Shades of a cell with failures, lightest first (classes `q1` … `q5`).
const SHADES: [&str; 5] = ["#ffcdd2", "#ef9a9a", "#e57373", "#d32f2f", "#8e0000"];

/// Characters of a reason shown as a row label.
const LABEL_CHARS: usize = 60;
/// Characters of a reason in a row label's tooltip and in the grid in words
/// (the reason table above shows more).
const LONG_LABEL_CHARS: usize = 160;

/// The grid's style: fixed columns (the label, then equal weeks), a light
/// square for an empty week.
pub(super) fn css() -> String {
    let mut css = String::from(
        "table.heat { table-layout: fixed; margin: 8px 0 4px; font-size: 12px; }
table.heat col.label { width: 22em; }
table.heat th { background: none; font-weight: normal; color: #57606a; padding: 0 4px 2px 0;
                white-space: nowrap; overflow: hidden; text-overflow: ellipsis; border: 0; }
table.heat td { padding: 0; height: 16px; background: #f6f8fa; border: 1px solid #fff; }
",
    );
    for (i, shade) in SHADES.iter().enumerate() {
        w!(
            css,
            "table.heat td.q{k}, .legend i.q{k} {{ background: {shade}; }}\n",
            k = i + 1
        );
    }
    css
}

/// The shade (1 to 5) of a cell with `n` failures when the fullest has `max`:
/// each shade covers a fifth of `1..=max`.
fn level(n: i64, max: i64) -> usize {
    let levels = SHADES.len() as i64;
    let max = max.max(1);
    ((n * levels + max - 1) / max).clamp(1, levels) as usize
}

/// The failures each shade stands for, `(shade, lowest, highest)`, leaving out
/// shades no count can have (when `max` is below 5).
fn shade_ranges(max: i64) -> Vec<(usize, i64, i64)> {
    let levels = SHADES.len() as i64;
    (1..=levels)
        .map(|k| (k as usize, max * (k - 1) / levels + 1, max * k / levels))
        .filter(|(_, lo, hi)| lo <= hi)
        .collect()
}

/// The section: a note, the shade legend, the grid and the grid in words.
pub(super) fn section(h: &mut String, d: &ReportData) {
    h.push_str("<h2>Failure reasons by week</h2>\n");
    let weeks = week_grid(&d.weeks).filter(|_| !d.reason_weeks.is_empty());
    let Some((weeks, hidden)) = weeks else {
        h.push_str("<p class=\"note\">No failures in this window.</p>\n");
        return;
    };
    let mondays: Vec<NaiveDate> = weeks.into_iter().map(|(monday, _)| monday).collect();
    let (Some(first), Some(last)) = (mondays.first(), mondays.last()) else {
        return;
    };
    let rows = &d.reason_weeks;
    let which = if rows.len() < d.reason_count {
        format!("The {} most common reasons above", rows.len())
    } else {
        "Every reason above".to_owned()
    };
    w!(
        h,
        "<p class=\"note\">{which}, one row each; one column per ISO week (UTC), \
         {} to {}. The darker the cell, the more failures that week; hover over a cell for its count.{}</p>\n",
        iso_label(*first),
        iso_label(*last),
        if hidden > 0 {
            format!(" Showing the last {MAX_WEEKS} weeks; {hidden} earlier weeks are not shown.")
        } else {
            String::new()
        }
    );
    let max = rows
        .iter()
        .flat_map(|r| mondays.iter().filter_map(|m| r.weeks.get(m)))
        .copied()
        .max()
        .unwrap_or(0);
    legend(h, max);
    w!(
        h,
        "<div class=\"wide\" role=\"img\" aria-label=\"Failures per week of each reason in the rows, as shades; \
         the table “In words” below gives each reason's first, peak and last week.\">\n"
    );
    grid_table(h, rows, &mondays, max);
    h.push_str("</div>\n");
    in_words(h, rows);
}

/// What each shade stands for.
fn legend(h: &mut String, max: i64) {
    if max == 0 {
        return;
    }
    h.push_str("<div class=\"legend\"><span>failures per week:</span>");
    for (shade, lo, hi) in shade_ranges(max) {
        let range = if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}–{hi}")
        };
        w!(h, "<span><i class=\"q{shade}\"></i>{range}</span>");
    }
    h.push_str("</div>\n");
}

/// The grid: a header of week labels (about 12 of them), then a row per reason.
fn grid_table(h: &mut String, rows: &[ReasonWeeks], mondays: &[NaiveDate], max: i64) {
    w!(
        h,
        "<table class=\"heat\"><colgroup><col class=\"label\"><col span=\"{}\"></colgroup>\n<thead><tr><th></th>",
        mondays.len()
    );
    let label_every = mondays.len().div_ceil(12).max(1);
    for chunk in mondays.chunks(label_every) {
        h.push_str("<th");
        colspan(h, chunk.len());
        w!(h, ">{}</th>", iso_label(chunk[0]));
    }
    h.push_str("</tr></thead><tbody>\n");
    for row in rows {
        h.push_str("<tr><th scope=\"row\"");
        if row.reason.chars().nth(LABEL_CHARS).is_some() {
            w!(
                h,
                " title=\"{}\"",
                escape(&truncate_chars(&row.reason, LONG_LABEL_CHARS))
            );
        }
        w!(
            h,
            ">{}</th>",
            escape(&truncate_chars(&row.reason, LABEL_CHARS))
        );
        let mut empty = 0;
        for monday in mondays {
            match row.weeks.get(monday) {
                Some(&n) if n > 0 => {
                    empty_cells(h, std::mem::take(&mut empty));
                    w!(
                        h,
                        "<td class=\"q{}\" title=\"{}: {n}\"></td>",
                        level(n, max),
                        iso_label(*monday)
                    );
                }
                _ => empty += 1,
            }
        }
        empty_cells(h, empty);
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table>\n");
}

/// One cell spanning `n` weeks without failures (none when `n` is 0).
fn empty_cells(h: &mut String, n: usize) {
    if n > 0 {
        h.push_str("<td");
        colspan(h, n);
        h.push_str("></td>");
    }
}

fn colspan(h: &mut String, n: usize) {
    if n > 1 {
        w!(h, " colspan=\"{n}\"");
    }
}

/// The grid in words, for screen readers and for copying: each reason's first,
/// peak and last week with failures, over the whole window.
fn in_words(h: &mut String, rows: &[ReasonWeeks]) {
    h.push_str(
        "<details><summary class=\"note\">In words: when each reason started, peaked and stopped</summary>\n\
         <table><thead><tr><th>reason</th><th>first week</th><th>peak week</th><th class=\"num\">failures that week</th>\
         <th>last week</th><th class=\"num\">weeks with failures</th></tr></thead><tbody>\n",
    );
    for row in rows {
        let (Some((first, _)), Some((last, _))) =
            (row.weeks.first_key_value(), row.weeks.last_key_value())
        else {
            continue;
        };
        // The earliest of the fullest weeks.
        let peak = row
            .weeks
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)));
        let Some((peak, peak_n)) = peak else {
            continue;
        };
        w!(
            h,
            "<tr><td class=\"reason\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{peak_n}</td><td>{}</td><td class=\"num\">{}</td></tr>\n",
            escape(&truncate_chars(&row.reason, LONG_LABEL_CHARS)),
            iso_label(*first),
            iso_label(*peak),
            iso_label(*last),
            row.weeks.len()
        );
    }
    h.push_str("</tbody></table></details>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shades_split_the_counts_in_fifths() {
        assert_eq!(level(1, 1), 5);
        assert_eq!((level(1, 10), level(2, 10), level(3, 10)), (1, 1, 2));
        assert_eq!((level(9, 10), level(10, 10)), (5, 5));
        assert_eq!(
            shade_ranges(10),
            [(1, 1, 2), (2, 3, 4), (3, 5, 6), (4, 7, 8), (5, 9, 10)]
        );
        assert_eq!(shade_ranges(2), [(3, 1, 1), (5, 2, 2)]);
        // Every count falls in the range of its shade.
        for max in 1..40 {
            for n in 1..=max {
                let shade = level(n, max);
                let ranges = shade_ranges(max);
                let (_, lo, hi) = ranges.iter().find(|r| r.0 == shade).expect("a shown shade");
                assert!((*lo..=*hi).contains(&n), "{n} of {max}");
            }
        }
    }
}
