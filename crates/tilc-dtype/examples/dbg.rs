use tilc_dtype::*;
fn main() {
    let d = DType::parse("e8m0").unwrap();
    for x in [1.5f64 * 2f64.powi(-127), 1.5, 3.0 * 2f64.powi(-128), 1.25*2f64.powi(-127)] {
        println!("{x:e} {:#x}", d.encode(x, Rounding::NearestEven, Overflow::NonSaturating));
    }
}
