//! Renumbering: rebuilds a kernel so that values, instructions and regions are numbered densely
//! in printing order and unreachable entities are dropped. Run last, before printing, so that a
//! snapshot diff means a change in meaning, not in pass history.
//!
//! Register arrays that are never used are dropped too. It cannot change meaning.

use super::set_regions;
use crate::ir::*;
use std::collections::HashMap;
use tilc_base::PrimaryMap;

/// Renumbers `k` in place.
pub fn compact(k: &mut Kernel) {
    let mut used_arrays = Vec::new();
    k.walk(&mut |i| match k.insts[i].kind {
        InstKind::ArrayGet(a, _) | InstKind::ArraySet(a, _, _) => {
            if !used_arrays.contains(&a) {
                used_arrays.push(a);
            }
        }
        _ => {}
    });
    used_arrays.sort();
    let mut n = Kernel::new(&k.name, k.block_dim);
    n.params = k.params.clone();
    n.shared_bytes = k.shared_bytes;
    let mut amap = HashMap::new();
    for a in used_arrays {
        amap.insert(a, n.arrays.push(k.arrays[a].clone()));
    }
    let mut vmap: HashMap<Value, Value> = HashMap::new();
    for &a in &k.regions[k.body].args {
        let ty = k.ty(a);
        let body = n.body;
        vmap.insert(a, n.add_region_arg(body, ty));
    }
    let body = n.body;
    copy_region(k, k.body, &mut n, body, &mut vmap, &amap);
    *k = n;
}

fn copy_region(k: &Kernel, src: Region, n: &mut Kernel, dst: Region, vmap: &mut HashMap<Value, Value>, amap: &HashMap<Array, Array>) {
    for &i in &k.regions[src].insts {
        let tys: Vec<_> = k.insts[i].results.iter().map(|&v| k.ty(v)).collect();
        // Results first (they print first), then the regions' arguments and contents.
        let ni = n.make_inst(InstKind::Barrier, &tys);
        for (old, new) in k.insts[i].results.iter().zip(n.insts[ni].results.clone()) {
            vmap.insert(*old, new);
        }
        let mut regions = Vec::new();
        for r in k.insts[i].kind.regions() {
            let nr = n.regions.push(RegionData::default());
            for &a in &k.regions[r].args {
                let na = n.add_region_arg(nr, k.ty(a));
                vmap.insert(a, na);
            }
            regions.push((r, nr));
        }
        for &(r, nr) in &regions {
            copy_region(k, r, n, nr, vmap, amap);
        }
        let mut kind = k.insts[i].kind.clone();
        kind.map_operands(|v| *vmap.get(&v).unwrap_or(&v));
        match &mut kind {
            InstKind::ArrayGet(a, _) | InstKind::ArraySet(a, _, _) => *a = amap[a],
            _ => {}
        }
        let nrs: Vec<Region> = regions.iter().map(|p| p.1).collect();
        set_regions(&mut kind, &nrs);
        n.insts[ni].kind = kind;
        n.regions[dst].insts.push(ni);
    }
    let _: &PrimaryMap<Value, ValueData> = &n.values;
}
