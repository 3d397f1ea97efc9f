//! Snapshots of the drawings of every fragment layout (what `tilc layout` prints), and of an
//! SVG to pin its format.

use tilc_layout::draw::{draw_svg, draw_text};
use tilc_layout::fragments;

#[test]
fn fragment_drawings() {
    for (name, expr) in fragments::all() {
        let layout = expr.eval();
        insta::assert_snapshot!(name.clone(), draw_text(&layout, &format!("{name} = {expr}")));
    }
}

#[test]
fn replicated_drawing_lists_every_holder() {
    let l = tilc_layout::parse_layout_expr("replicated(2).spatial(2, 2)").unwrap().eval();
    insta::assert_snapshot!(draw_text(&l, "replicated(2).spatial(2, 2)"), @r"
    replicated(2).spatial(2, 2): shape [2, 2], 8 threads × 1 slots, each element in 2 threads
          0     1
    0 0|4:0 1|5:0
    1 2|6:0 3|7:0
    ");
}

#[test]
fn svg_of_a_small_layout() {
    let l = tilc_layout::parse_layout_expr("spatial(1, 2).local(1, 2)").unwrap().eval();
    insta::assert_snapshot!(draw_svg(&l, "spatial(1, 2).local(1, 2)"));
}
