//! Generates the parser from `src/grammar.lalrpop` (into OUT_DIR).
fn main() {
    lalrpop::process_src().expect("the grammar in src/grammar.lalrpop must be valid LR(1)");
}
