//! Prints what the lowering decided for one kernel: `lower_info FILE KERNEL [NAME=VALUE...]`.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (file, name) = (&args[1], &args[2]);
    let src = tilc_base::SourceFile::new(file.clone(), std::fs::read_to_string(file).expect("read"));
    let defs: Vec<tilc_vm::Define> = args[3..].iter().map(|d| tilc_vm::Define::parse(d).expect("NAME=VALUE")).collect();
    let k = tilc_vm::elaborate_source(&src, Some(name), &defs).expect("elaborates");
    let l = tilc_lower::lower(&k, &tilc_lower::Options::default()).expect("lowers");
    println!("threads {} shared user {} scratch {} insts {} est. registers {}", l.info.threads, l.info.shared_user_bytes, l.info.shared_scratch_bytes, l.kernel.inst_count(), tilc_lower::estimate_registers(&l.kernel));
    for d in &l.info.dots { println!("{d}"); }
    for g in &l.info.global_loads { println!("{g}"); }
}
