//! Charts as inline SVG, drawn on the server: nothing to load, readable without
//! scripts, and each chart carries a title and a text summary for screen readers.

use std::fmt::Write as _;

use crate::html::esc;

const W: f64 = 560.0;
const H: f64 = 160.0;
const PAD_L: f64 = 44.0;
const PAD_B: f64 = 22.0;
const COLOURS: [&str; 4] = ["#1f5fa8", "#b3261e", "#2e7d32", "#8e5b00"];

/// One line of a chart.
#[derive(Debug)]
pub(crate) struct Series<'a> {
    pub name: &'a str,
    pub values: Vec<f64>,
}

/// A line chart of `series` over the same buckets (oldest first); `unit` labels the axis.
pub(crate) fn lines(title: &str, unit: &str, series: &[Series<'_>], x_label: &str) -> String {
    let n = series.iter().map(|s| s.values.len()).max().unwrap_or(0).max(2);
    let max = series.iter().flat_map(|s| s.values.iter().copied()).fold(0.0_f64, f64::max);
    let top = nice(max);
    let x = |i: usize| PAD_L + (W - PAD_L - 8.0) * i as f64 / (n - 1) as f64;
    let y = |v: f64| 8.0 + (H - PAD_B - 8.0) * (1.0 - v / top);
    let summary: Vec<String> = series
        .iter()
        .map(|s| {
            format!(
                "{} now {} (peak {})",
                s.name,
                fmt(s.values.last().copied().unwrap_or(0.0)),
                fmt(s.values.iter().copied().fold(0.0, f64::max))
            )
        })
        .collect();
    let mut out = format!(
        "<figure class=\"chart\"><svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\"><title>{}</title>",
        esc(&format!("{title}: {}", summary.join("; "))),
        esc(title)
    );
    for frac in [0.0, 0.5, 1.0] {
        let v = top * frac;
        let _ = write!(
            out,
            "<line x1=\"{PAD_L}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#d0d0d5\"/><text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#444\">{}</text>",
            W - 8.0,
            PAD_L - 4.0,
            y(v) + 4.0,
            esc(&fmt(v)),
            y = y(v)
        );
    }
    let _ = write!(
        out,
        "<text x=\"{PAD_L}\" y=\"{}\" font-size=\"11\" fill=\"#444\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\" fill=\"#444\">now</text>",
        H - 6.0,
        esc(x_label),
        W - 8.0,
        H - 6.0
    );
    for (s, colour) in series.iter().zip(COLOURS.iter().cycle()) {
        let points: Vec<String> =
            s.values.iter().enumerate().map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v))).collect();
        let _ = write!(
            out,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            points.join(" ")
        );
    }
    out.push_str("</svg><figcaption>");
    let _ = write!(out, "<strong>{}</strong> ({})", esc(title), esc(unit));
    for (s, colour) in series.iter().zip(COLOURS.iter().cycle()) {
        let _ = write!(
            out,
            " <span class=\"key\"><svg width=\"12\" height=\"12\" aria-hidden=\"true\"><rect width=\"12\" height=\"12\" fill=\"{colour}\"/></svg> {} {}</span>",
            esc(s.name),
            esc(&fmt(s.values.last().copied().unwrap_or(0.0)))
        );
    }
    out.push_str("</figcaption></figure>");
    out
}

/// A horizontal bar chart of labelled counts, largest first.
pub(crate) fn bars(title: &str, items: &[(String, f64)]) -> String {
    if items.is_empty() {
        return format!(
            "<figure class=\"chart\"><figcaption><strong>{}</strong>: none</figcaption></figure>",
            esc(title)
        );
    }
    let max = items.iter().map(|(_, v)| *v).fold(0.0_f64, f64::max).max(1.0);
    let row = 22.0;
    let height = row * items.len() as f64 + 4.0;
    let text: Vec<String> = items.iter().map(|(k, v)| format!("{k} {}", fmt(*v))).collect();
    let mut out = format!(
        "<figure class=\"chart\"><svg viewBox=\"0 0 {W} {height}\" role=\"img\" aria-label=\"{}\"><title>{}</title>",
        esc(&format!("{title}: {}", text.join(", "))),
        esc(title)
    );
    for (i, (label, v)) in items.iter().enumerate() {
        let y = i as f64 * row + 2.0;
        let w = (W - 200.0) * v / max;
        let _ = write!(
            out,
            "<text x=\"0\" y=\"{:.1}\" font-size=\"12\" fill=\"#1d1d1f\">{}</text><rect x=\"140\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{}\" fill=\"#b3261e\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"#1d1d1f\">{}</text>",
            y + 14.0,
            esc(label),
            row - 6.0,
            146.0 + w,
            y + 14.0,
            esc(&fmt(*v))
        );
    }
    let _ = write!(out, "</svg><figcaption><strong>{}</strong></figcaption></figure>", esc(title));
    out
}

/// A round upper bound for an axis.
fn nice(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|v| *v >= max).unwrap_or(max)
}

fn fmt(v: f64) -> String {
    if v >= 100.0 || v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.2}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_round_up_and_labels_are_escaped() {
        assert_eq!(nice(0.0), 1.0);
        assert_eq!(nice(7.0), 10.0);
        assert_eq!(nice(120.0), 200.0);
        let svg = lines("Latency <ms>", "ms", &[Series { name: "p50", values: vec![1.0, 3.0] }], "60 min ago");
        assert!(svg.contains("Latency &lt;ms&gt;") && !svg.contains("<ms>"));
        assert!(svg.contains("p50 now 3"), "the summary says the latest value: {svg}");
        let b = bars("Blocked", &[("IG-1".into(), 4.0), ("OV-3".into(), 2.0)]);
        assert!(b.contains("IG-1 4, OV-3 2"), "{b}");
    }
}
