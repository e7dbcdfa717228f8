//! The report's charts, drawn as inline SVG: stacked weekly bars and
//! horizontal bar charts. Bar labels and texts reach here already escaped.

use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate};

use super::WeekCounts;
use super::html::escape;
use crate::model::Status;

/// ISO week label of a Monday: `2024-W03`.
pub(super) fn iso_label(monday: NaiveDate) -> String {
    let w = monday.iso_week();
    format!("{}-W{:02}", w.year(), w.week())
}

/// Each status's colour, in the order the weekly bars stack them (bottom up).
const STATUSES: [(Status, &str); 4] = [
    (Status::Succeeded, "#2e7d32"),
    (Status::Failed, "#c62828"),
    (Status::Running, "#1565c0"),
    (Status::Unknown, "#9e9e9e"),
];

/// Stacked bars of jobs per week by status, one bar per week.
pub(super) fn week_chart(h: &mut String, weeks: &[(NaiveDate, WeekCounts)]) {
    let tallest = weeks.iter().map(|(_, c)| c.total()).max().unwrap_or(0);
    // Four gridline steps of a round size (1, 2 or 5 × 10ⁿ).
    let step = nice_step(tallest as f64 / 4.0);
    let max = step * 4;
    let (width, height, left, bottom, top) = (1000.0, 260.0, 44.0, 36.0, 10.0);
    let plot_w = width - left - 8.0;
    let plot_h = height - bottom - top;
    let slot = plot_w / weeks.len() as f64;
    let bar = (slot * 0.8).max(1.0);
    w!(
        h,
        "<svg viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"Jobs per week by status\">\n"
    );
    for k in 0..=4 {
        let value = step * k;
        let y = top + plot_h - plot_h * k as f64 / 4.0;
        w!(
            h,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eaeef2\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            width - 8.0,
            left - 6.0,
            y + 4.0,
            value
        );
    }
    let label_every = weeks.len().div_ceil(12).max(1);
    for (i, (monday, counts)) in weeks.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        let mut y = top + plot_h;
        let week = iso_label(*monday);
        for (status, color) in STATUSES {
            let n = counts.of(status);
            if n == 0 {
                continue;
            }
            let bar_h = plot_h * n as f64 / max as f64;
            y -= bar_h;
            w!(
                h,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{bar_h:.1}\" fill=\"{color}\"><title>{week} (from {monday}): {n} {status}</title></rect>\n"
            );
        }
        if i % label_every == 0 {
            w!(
                h,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{week}</text>\n",
                x + bar / 2.0,
                height - bottom + 16.0
            );
        }
    }
    h.push_str("</svg>\n");
}

/// The smallest of 1, 2, 5 × 10ⁿ at least `raw` (and at least 1).
pub(super) fn nice_step(raw: f64) -> i64 {
    let raw = raw.max(1.0);
    let magnitude = 10f64.powf(raw.log10().floor());
    let mantissa = raw / magnitude;
    let m = if mantissa <= 1.0 {
        1.0
    } else if mantissa <= 2.0 {
        2.0
    } else if mantissa <= 5.0 {
        5.0
    } else {
        10.0
    };
    (m * magnitude).round() as i64
}

pub(super) fn legend(h: &mut String) {
    h.push_str("<div class=\"legend\">");
    for (status, color) in STATUSES {
        w!(
            h,
            "<span><i style=\"background:{color}\"></i>{status}</span>"
        );
    }
    h.push_str("</div>\n");
}

/// One bar of a horizontal bar chart.
pub(super) struct Bar {
    /// Already escaped.
    pub(super) label: String,
    pub(super) value: f64,
    /// A second, darker bar drawn inside the first (p50 inside p95).
    pub(super) inner: Option<f64>,
    pub(super) text: String,
}

/// A horizontal bar chart; `text_room` is the width kept for the value text.
pub(super) fn hbars(
    h: &mut String,
    aria: &str,
    rows: &[Bar],
    max: f64,
    colors: (&str, &str),
    text_room: f64,
) {
    if rows.is_empty() {
        return;
    }
    let (width, label_w, row_h) = (1000.0, 300.0, 22.0);
    let height = row_h * rows.len() as f64 + 4.0;
    let plot_w = width - label_w - text_room;
    let max = if max > 0.0 { max } else { 1.0 };
    let scale = |v: f64| (plot_w * v / max).max(if v > 0.0 { 1.0 } else { 0.0 });
    w!(
        h,
        "<svg viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{}\">\n",
        escape(aria)
    );
    for (i, bar) in rows.iter().enumerate() {
        let y = row_h * i as f64 + 2.0;
        let bar_w = scale(bar.value);
        w!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{label_w}\" y=\"{:.1}\" width=\"{bar_w:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {}</title></rect>",
            label_w - 8.0,
            y + 14.0,
            bar.label,
            y + 3.0,
            row_h - 6.0,
            colors.0,
            bar.label,
            bar.text
        );
        if let Some(inner) = bar.inner {
            w!(
                h,
                "<rect x=\"{label_w}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"/>",
                y + 3.0,
                scale(inner),
                row_h - 6.0,
                colors.1
            );
        }
        w!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
            label_w + bar_w + 6.0,
            y + 14.0,
            bar.text
        );
    }
    h.push_str("</svg>\n");
}
