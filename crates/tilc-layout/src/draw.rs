//! Pictures of register layouts: a text grid of `thread:slot` cells (what `tilc layout` prints
//! and what the fragment snapshots hold) and the same grid as an SVG image, one colour per warp.
//!
//! Rank-2 layouts draw as one grid; rank 1 as a single row; higher ranks as one grid per index
//! of the leading dimensions. Replicated elements list every holder: `0|4|8:1`.

use crate::register::RegisterLayout;
use std::fmt::Write;

/// The 2-D slices to draw: (title, rows, cols, index of (row, col)).
fn slices(layout: &RegisterLayout) -> Vec<(String, usize, usize, Vec<usize>)> {
    let shape = layout.shape();
    match shape.len() {
        0 => vec![(String::new(), 1, 1, vec![])],
        1 => vec![(String::new(), 1, shape[0], vec![])],
        2 => vec![(String::new(), shape[0], shape[1], vec![])],
        r => {
            let lead = &shape[..r - 2];
            let count: usize = lead.iter().product();
            (0..count)
                .map(|mut k| {
                    let mut idx = vec![0; r - 2];
                    for d in (0..r - 2).rev() {
                        idx[d] = k % lead[d];
                        k /= lead[d];
                    }
                    let title = format!("[{}, :, :]", idx.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", "));
                    (title, shape[r - 2], shape[r - 1], idx)
                })
                .collect()
        }
    }
}

fn index_of(layout: &RegisterLayout, lead: &[usize], row: usize, col: usize) -> Vec<usize> {
    let mut idx = lead.to_vec();
    match layout.rank() {
        0 => {}
        1 => idx.push(col),
        _ => {
            idx.push(row);
            idx.push(col);
        }
    }
    idx
}

fn cell(layout: &RegisterLayout, index: &[usize]) -> (Vec<usize>, String) {
    let (threads, slot) = layout.owners(index).expect("drawn indices lie in the tile");
    let names: Vec<String> = threads.iter().map(|t| t.to_string()).collect();
    (threads, format!("{}:{slot}", names.join("|")))
}

/// The layout as a text grid: a header line, then rows of `thread:slot` cells under column
/// numbers, with row numbers on the left.
pub fn draw_text(layout: &RegisterLayout, title: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{title}: shape {:?}, {} threads × {} slots{}",
        layout.shape(),
        layout.num_threads(),
        layout.local_size(),
        if layout.replication() > 1 { format!(", each element in {} threads", layout.replication()) } else { String::new() }
    );
    for (slice_title, rows, cols, lead) in slices(layout) {
        if !slice_title.is_empty() {
            let _ = writeln!(out, "{slice_title}");
        }
        let cells: Vec<Vec<String>> = (0..rows)
            .map(|r| (0..cols).map(|c| cell(layout, &index_of(layout, &lead, r, c)).1).collect())
            .collect();
        let width = cells.iter().flatten().map(String::len).max().unwrap_or(1).max(cols.saturating_sub(1).to_string().len());
        let label = rows.saturating_sub(1).to_string().len();
        let mut header = " ".repeat(label);
        for c in 0..cols {
            let _ = write!(header, " {c:>width$}");
        }
        let _ = writeln!(out, "{}", header.trim_end());
        for (r, row) in cells.iter().enumerate() {
            let mut line = format!("{r:>label$}");
            for c in row {
                let _ = write!(line, " {c:>width$}");
            }
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

/// A fill colour for warp `w` (a fixed palette, light enough for black text).
fn warp_colour(w: usize) -> &'static str {
    const PALETTE: [&str; 8] =
        ["#a6cee3", "#b2df8a", "#fb9a99", "#fdbf6f", "#cab2d6", "#ffff99", "#8dd3c7", "#fccde5"];
    PALETTE[w % PALETTE.len()]
}

/// The same grid as an SVG image; a cell's colour is the warp (`thread / 32`) of its first
/// holder.
pub fn draw_svg(layout: &RegisterLayout, title: &str) -> String {
    let (cw, ch, margin) = (56usize, 22usize, 28usize);
    let mut body = String::new();
    let mut y0 = margin + 10;
    let mut width = 0;
    for (slice_title, rows, cols, lead) in slices(layout) {
        if !slice_title.is_empty() {
            let _ = writeln!(body, r##"<text x="{margin}" y="{}" font-size="12">{slice_title}</text>"##, y0 + 12);
            y0 += 18;
        }
        for c in 0..cols {
            let _ = writeln!(
                body,
                r##"<text x="{}" y="{}" font-size="10" text-anchor="middle" fill="#666">{c}</text>"##,
                margin + c * cw + cw / 2,
                y0 + 12
            );
        }
        y0 += 16;
        for r in 0..rows {
            let _ = writeln!(
                body,
                r##"<text x="{}" y="{}" font-size="10" text-anchor="end" fill="#666">{r}</text>"##,
                margin - 4,
                y0 + r * ch + 15
            );
            for c in 0..cols {
                let (threads, text) = cell(layout, &index_of(layout, &lead, r, c));
                let (x, y) = (margin + c * cw, y0 + r * ch);
                let _ = writeln!(
                    body,
                    r##"<rect x="{x}" y="{y}" width="{cw}" height="{ch}" fill="{}" stroke="#333" stroke-width="0.5"/><text x="{}" y="{}" font-size="11" text-anchor="middle">{text}</text>"##,
                    warp_colour(threads[0] / 32),
                    x + cw / 2,
                    y + 15
                );
            }
        }
        y0 += rows * ch + 12;
        width = width.max(margin * 2 + cols * cw);
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" font-family=\"monospace\">\n<text x=\"{margin}\" y=\"20\" font-size=\"13\">{}</text>\n{body}</svg>\n",
        y0 + margin,
        escape(title)
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
