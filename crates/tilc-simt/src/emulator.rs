//! The SIMT emulator: runs a [`Kernel`] over a grid on host memory, exactly as the GPU would
//! run the PTX the backend prints, and reports the bugs a GPU would hide.
//!
//! Model:
//! - every block is run on its own (blocks run in parallel with rayon when asked); global memory
//!   is one byte vector per pointer parameter, at base address `(index + 1) << 40`;
//! - inside a block, warps of 32 consecutive linear thread ids execute in lockstep with an active
//!   mask; `if` runs the `then` lanes and then the `else` lanes; a `for` iterates until every
//!   lane has left; since control flow is structured, lanes reconverge after every `if`/`for`;
//! - warps run one after another up to a `bar.sync`; when every warp waits at one, the barrier
//!   releases and a new race-detection epoch starts;
//! - shared memory is per block (`shared_bytes`, zero-initialised);
//! - `cp.async` reads global memory when issued and writes shared memory only when a
//!   `cp.async.wait_group` retires its group, so data is visible only after the matching wait.
//! - tensor memory (sm_100a) is per block, 128 lanes × 512 columns of 32-bit cells, handed out
//!   by `tcgen05.alloc`; a `tcgen05.mma` computes its result when issued, but the columns it
//!   writes count as in flight until a `tcgen05.commit` completes an mbarrier phase *and* a
//!   thread waits for that phase: a `tcgen05.ld`/`st` of them before then is an error.
//!
//! Errors (values, never panics), each with the block, the thread and the instruction:
//! out-of-bounds or misaligned global/shared access; a shared-memory race (two different threads
//! touch one byte between two barriers and at least one writes; a `cp.async` counts as a write
//! by its thread when its group retires; atomics of different threads on one word do not race
//! with each other, but an atomic and a plain access by another thread do); any access to shared bytes that an unretired
//! `cp.async` targets; a barrier reached by only some lanes of a warp (divergent barrier) or by
//! some warps while others finished or wait elsewhere; a warp-collective instruction (`shfl`,
//! `ldmatrix`, `mma`) executed by fewer than 32 lanes; a read of a register-array element never
//! written; integer division by zero; a non-positive loop step.
//!
//! Atomics (`atom`) apply one lane at a time in lane order, warps in the order they run; a global
//! atomic's read-modify-write of its 4 bytes holds one lock shared by all blocks, so atomics from
//! blocks running in parallel are applied whole, one after another (plain global stores write
//! the same bytes directly, as on a GPU where mixing them with atomics of other blocks is a race).
//!
//! Not modelled: global-memory races between blocks, memory ordering beyond the above. The
//! transcendental float instructions (`exp`, `log`, …) compute the f64 function rounded once,
//! which a GPU's approximations do not reproduce exactly.

use crate::eval::{EvalError, eval_pure};
use crate::ir::*;
use crate::semantics as sem;
use crate::types::{Space, Type};
use crate::verify::{VerifyErrors, verify};
use crate::write::inst_to_string;
use rayon::prelude::*;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use tilc_base::{EntityRef, SecondaryMap};

/// A kernel argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    /// A scalar's raw bits (f32 as its IEEE bits).
    Scalar(u64),
    /// The bytes of a global buffer; written back after the run.
    Buffer(Vec<u8>),
}

/// Launch options.
#[derive(Clone, Copy, Debug)]
pub struct Launch {
    /// Number of blocks in x, y, z.
    pub grid: [u32; 3],
    /// Run blocks in parallel (rayon). Results are the same; the first error in block order is
    /// reported either way.
    pub parallel: bool,
}

/// Counters of one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Instructions issued per warp (one per warp per instruction).
    pub warp_insts: u64,
    /// Instructions executed per thread (summed over active lanes).
    pub thread_insts: u64,
    /// Shared-memory wavefronts of loads and stores: per warp-wide access, the largest number
    /// of distinct 32-bit words any one of the 32 banks must serve (the access replays that
    /// many times).
    pub shared_wavefronts: u64,
    /// The wavefronts the same accesses need without bank conflicts: the distinct words each
    /// touches, 32 per wavefront. `shared_wavefronts / shared_ideal_wavefronts` is the
    /// bank-conflict factor (1 means none).
    pub shared_ideal_wavefronts: u64,
}

/// Wavefronts of one warp-wide shared access touching byte ranges `[a, a + size)`: the most
/// distinct 32-bit words in any one bank (bank = word mod 32), and the conflict-free count.
pub fn shared_wavefronts(accesses: &[(u64, u32)]) -> (u64, u64) {
    let mut words: Vec<u64> = accesses.iter().flat_map(|&(a, size)| (a / 4)..(a + u64::from(size.max(1)) + 3) / 4).collect();
    words.sort_unstable();
    words.dedup();
    let mut per_bank = [0u64; 32];
    for w in &words {
        per_bank[(w % 32) as usize] += 1;
    }
    let worst = per_bank.iter().copied().max().unwrap_or(0);
    (worst, (words.len() as u64).div_ceil(32))
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmuErrorKind {
    /// The kernel failed verification.
    Verify(VerifyErrors),
    /// Arguments do not match the parameters.
    BadArgs(String),
    /// An access outside a buffer or outside shared memory.
    OutOfBounds {
        /// Address space.
        space: Space,
        /// Byte address (global: with the buffer base; shared: offset).
        addr: u64,
        /// Access size in bytes.
        size: u32,
        /// Size of the buffer or shared memory.
        len: u64,
    },
    /// An access whose address is not a multiple of its size.
    Misaligned {
        /// Address space.
        space: Space,
        /// Address.
        addr: u64,
        /// Access size in bytes.
        size: u32,
    },
    /// Two threads touched a shared byte between barriers, at least one writing.
    SharedRace {
        /// Shared byte offset.
        addr: u32,
        /// The other thread (linear id), or `None` when several threads read it (or accessed it
        /// atomically).
        other: Option<u32>,
        /// Whether this access is a write.
        write: bool,
    },
    /// An access to shared bytes that a `cp.async` not yet waited for targets.
    CpAsyncInFlight {
        /// Shared byte offset.
        addr: u32,
    },
    /// A barrier reached by only some lanes of a warp.
    DivergentBarrier {
        /// Lanes that arrived.
        arrived: u32,
        /// Lanes of the warp that exist.
        expected: u32,
    },
    /// A barrier that some warps reached while others finished or wait at another barrier.
    BarrierNotReached {
        /// The barrier instruction waited at.
        waiting_at: Inst,
        /// A warp that did not arrive there.
        missing_warp: u32,
    },
    /// A warp-collective instruction executed by fewer than all 32 lanes.
    DivergentCollective {
        /// Active-lane mask.
        active: u32,
    },
    /// A read of a register-array element (or value) never written by this thread.
    UninitRead {
        /// What was read.
        what: String,
    },
    /// A misuse of tensor memory (sm_100a): an access outside an allocation or outside the
    /// warp's lanes, a read of columns a `tcgen05.mma` writes before its completion was waited
    /// for, a failed allocation, or columns still allocated when the block exits.
    TensorMemory(String),
    /// An `mbarrier` wait for a phase that has not completed when the wait is reached (every
    /// arrival tilc emits comes from the waiting thread's own `tcgen05.commit`, so it would
    /// spin forever), or an mbarrier used before `mbarrier.init`.
    Mbarrier(String),
    /// Integer division by zero.
    DivByZero,
    /// A loop with step ≤ 0.
    BadLoopStep(i64),
}

/// An emulator error with its location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmuError {
    /// What went wrong.
    pub kind: EmuErrorKind,
    /// Block index, when inside a block.
    pub block: Option<[u32; 3]>,
    /// Linear thread id within the block, when one thread is at fault.
    pub thread: Option<u32>,
    /// The instruction.
    pub inst: Option<Inst>,
    /// Its text.
    pub inst_text: String,
}

impl fmt::Display for EmuErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use EmuErrorKind::*;
        match self {
            Verify(e) => write!(f, "kernel fails verification:\n{e}"),
            BadArgs(s) => write!(f, "bad arguments: {s}"),
            OutOfBounds { space, addr, size, len } => {
                write!(f, "out-of-bounds {space} access of {size} bytes at 0x{addr:x} (size {len})")
            }
            Misaligned { space, addr, size } => write!(f, "misaligned {space} access of {size} bytes at 0x{addr:x}"),
            SharedRace { addr, other, write } => {
                let what = if *write { "write" } else { "read" };
                match other {
                    Some(o) => write!(f, "shared-memory race: {what} of byte {addr} conflicts with thread {o} since the last barrier"),
                    None => write!(f, "shared-memory race: {what} of byte {addr} conflicts with reads or atomics by several threads since the last barrier"),
                }
            }
            CpAsyncInFlight { addr } => write!(f, "access to shared byte {addr} while a cp.async to it is not yet waited for"),
            DivergentBarrier { arrived, expected } => {
                write!(f, "divergent barrier: lanes {arrived:#010x} of the warp's {expected:#010x} arrived")
            }
            BarrierNotReached { waiting_at, missing_warp } => {
                write!(f, "barrier not reached by all threads: warps wait at {waiting_at} but warp {missing_warp} did not arrive")
            }
            DivergentCollective { active } => {
                write!(f, "warp-collective instruction executed by lanes {active:#010x}, not all 32")
            }
            UninitRead { what } => write!(f, "read of {what}, never written by this thread"),
            TensorMemory(m) => write!(f, "tensor memory: {m}"),
            Mbarrier(m) => write!(f, "mbarrier: {m}"),
            DivByZero => write!(f, "integer division by zero"),
            BadLoopStep(s) => write!(f, "loop step {s} is not positive"),
        }
    }
}

impl fmt::Display for EmuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(b) = self.block {
            write!(f, " [block {b:?}")?;
            if let Some(t) = self.thread {
                write!(f, ", thread {t}")?;
            }
            write!(f, "]")?;
        }
        if let Some(i) = self.inst {
            write!(f, " at {i} `{}`", self.inst_text)?;
        }
        Ok(())
    }
}

impl std::error::Error for EmuError {}

fn global_base(index: usize) -> u64 {
    (index as u64 + 1) << 40
}

/// Runs `k` over `launch.grid` with `args` (one per parameter: `Buffer` for `ptr.global`,
/// `Scalar` otherwise). Buffers are updated in place.
pub fn run(k: &Kernel, launch: Launch, args: &mut [Arg]) -> Result<RunStats, EmuError> {
    let top = |kind| EmuError { kind, block: None, thread: None, inst: None, inst_text: String::new() };
    verify(k).map_err(|e| top(EmuErrorKind::Verify(e)))?;
    if args.len() != k.params.len() {
        return Err(top(EmuErrorKind::BadArgs(format!("{} arguments for {} parameters", args.len(), k.params.len()))));
    }
    let mut params = Vec::new();
    let mut buffers: Vec<Vec<AtomicU8>> = Vec::new();
    for (p, a) in k.params.iter().zip(args.iter()) {
        match (p.ty, a) {
            (Type::Ptr(Space::Global), Arg::Buffer(bytes)) => {
                params.push(global_base(buffers.len()) as u128);
                buffers.push(bytes.iter().map(|&b| AtomicU8::new(b)).collect());
            }
            (t, Arg::Scalar(bits)) if t != Type::GLOBAL_PTR => params.push(*bits as u128 & sem::mask(t.bits())),
            _ => return Err(top(EmuErrorKind::BadArgs(format!("argument for `{}` ({}) has the wrong kind", p.name, p.ty)))),
        }
    }
    let [gx, gy, gz] = launch.grid;
    let blocks: Vec<[u32; 3]> =
        (0..gz).flat_map(|z| (0..gy).flat_map(move |y| (0..gx).map(move |x| [x, y, z]))).collect();
    let shared = Shared {
        k,
        params: &params,
        buffers: &buffers,
        grid: launch.grid,
        layout: ArrayLayout::new(k),
        global_atomics: Mutex::new(()),
    };
    let results: Vec<Result<RunStats, EmuError>> = if launch.parallel {
        blocks.par_iter().map(|&b| run_block(&shared, b)).collect()
    } else {
        blocks.iter().map(|&b| run_block(&shared, b)).collect()
    };
    let mut stats = RunStats::default();
    for r in results {
        let s = r?;
        stats.warp_insts += s.warp_insts;
        stats.thread_insts += s.thread_insts;
        stats.shared_wavefronts += s.shared_wavefronts;
        stats.shared_ideal_wavefronts += s.shared_ideal_wavefronts;
    }
    let mut bi = 0;
    for (p, a) in k.params.iter().zip(args.iter_mut()) {
        if p.ty == Type::GLOBAL_PTR {
            if let Arg::Buffer(bytes) = a {
                for (dst, src) in bytes.iter_mut().zip(&buffers[bi]) {
                    *dst = src.load(Ordering::Relaxed);
                }
            }
            bi += 1;
        }
    }
    Ok(stats)
}

/// Where each register array's elements start in a warp's array storage.
struct ArrayLayout {
    base: SecondaryMap<Array, u32>,
    total: u32,
}

impl ArrayLayout {
    fn new(k: &Kernel) -> ArrayLayout {
        let mut base = SecondaryMap::new();
        let mut total = 0;
        for (a, d) in k.arrays.iter() {
            base[a] = total;
            total += d.len;
        }
        ArrayLayout { base, total }
    }
}

/// What all blocks share.
struct Shared<'a> {
    k: &'a Kernel,
    params: &'a [u128],
    buffers: &'a [Vec<AtomicU8>],
    grid: [u32; 3],
    layout: ArrayLayout,
    /// Held during each global atomic's read-modify-write.
    global_atomics: Mutex<()>,
}

#[derive(Clone, Copy, Default)]
struct Shadow {
    epoch: u32,
    /// Writer thread + 1 (0: none) in this epoch.
    writer: u32,
    /// Reader thread + 1 (0: none, u32::MAX: several) in this epoch.
    reader: u32,
    /// Thread + 1 of the atomic accesses (0: none, u32::MAX: several) in this epoch.
    atomic: u32,
}

/// How a shared byte is accessed, for race detection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
    Atomic,
}

/// The block's tensor memory: 128 lanes × [`TMEM_COLUMNS`] cells of 32 bits.
const TMEM_COLUMNS: u32 = 512;

/// Column ranges `[start, start + cols)` of tensor memory.
type Columns = (u32, u32);

fn overlaps(a: Columns, b: Columns) -> bool {
    a.0 < b.0 + b.1 && b.0 < a.0 + a.1
}

/// An mbarrier's state (kept beside shared memory, keyed by its shared offset).
struct Mbarrier {
    /// Arrivals per phase.
    count: u32,
    /// Arrivals the current phase still needs.
    pending: u32,
    /// Phases completed so far (the current phase's parity is `completed mod 2`).
    completed: u32,
    /// Columns whose `tcgen05.mma`s were committed to the current phase.
    committed: Vec<Columns>,
    /// Columns of completed phases that no thread has waited for yet.
    done: Vec<Columns>,
}

struct PendingCopy {
    dst: u32,
    bytes: Vec<u8>,
}

#[derive(Default)]
struct ThreadAsync {
    uncommitted: Vec<PendingCopy>,
    groups: VecDeque<Vec<PendingCopy>>,
}

/// A block's state.
struct Block<'a> {
    s: &'a Shared<'a>,
    ctaid: [u32; 3],
    smem: Vec<u8>,
    shadow: Vec<Shadow>,
    inflight: Vec<u16>,
    epoch: u32,
    asyncs: Vec<ThreadAsync>,
    /// Tensor memory, lane-major: cell (lane, column) at `lane * TMEM_COLUMNS + column`.
    tmem: Vec<u32>,
    /// Allocated column ranges.
    tmem_allocs: Vec<Columns>,
    /// Columns written by `tcgen05.mma`s issued but not yet committed.
    tmem_issued: Vec<Columns>,
    mbarriers: std::collections::HashMap<u32, Mbarrier>,
    stats: RunStats,
}

enum Frame {
    Region { region: Region, pc: usize, mask: u32 },
    Loop { inst: Inst, entry: u32, mask: u32 },
    If { inst: Inst, mask: u32, cond: u32, stage: u8 },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum WarpState {
    Running,
    AtBarrier(Inst),
    Done,
}

struct Warp {
    id: u32,
    /// Lanes that exist (a partial last warp has fewer than 32).
    live: u32,
    vals: Vec<u128>,
    written: Vec<u32>,
    arrays: Vec<u128>,
    arr_written: Vec<u32>,
    stack: Vec<Frame>,
    state: WarpState,
}

fn lanes(mask: u32) -> impl Iterator<Item = u32> {
    (0..32).filter(move |l| mask >> l & 1 == 1)
}

fn run_block(s: &Shared, ctaid: [u32; 3]) -> Result<RunStats, EmuError> {
    let k = s.k;
    let threads = k.threads_per_block();
    let nwarps = threads.div_ceil(32);
    let nvals = k.values.len();
    let mut block = Block {
        s,
        ctaid,
        smem: vec![0; k.shared_bytes as usize],
        shadow: vec![Shadow::default(); k.shared_bytes as usize],
        inflight: vec![0; k.shared_bytes as usize],
        epoch: 1,
        asyncs: (0..threads).map(|_| ThreadAsync::default()).collect(),
        tmem: Vec::new(),
        tmem_allocs: Vec::new(),
        tmem_issued: Vec::new(),
        mbarriers: Default::default(),
        stats: RunStats::default(),
    };
    let mut warps: Vec<Warp> = (0..nwarps)
        .map(|w| {
            let n = (threads - 32 * w).min(32);
            let live = if n == 32 { u32::MAX } else { (1u32 << n) - 1 };
            let mut warp = Warp {
                id: w,
                live,
                vals: vec![0; nvals * 32],
                written: vec![0; nvals],
                arrays: vec![0; s.layout.total as usize * 32],
                arr_written: vec![0; s.layout.total as usize],
                stack: vec![Frame::Region { region: k.body, pc: 0, mask: live }],
                state: WarpState::Running,
            };
            for (n, &a) in k.regions[k.body].args.iter().enumerate() {
                for l in lanes(live) {
                    warp.vals[a.index() * 32 + l as usize] = s.params[n];
                }
                warp.written[a.index()] = live;
            }
            warp
        })
        .collect();
    loop {
        for w in warps.iter_mut() {
            if w.state == WarpState::Running {
                block.run_warp(w)?;
            }
        }
        let waiting: Vec<Inst> = warps
            .iter()
            .filter_map(|w| match w.state {
                WarpState::AtBarrier(i) => Some(i),
                _ => None,
            })
            .collect();
        if waiting.is_empty() {
            if let Some(&(start, cols)) = block.tmem_allocs.first() {
                let m = format!("columns {start}..{} are still allocated when the block exits (tcgen05.dealloc missing)", start + cols);
                return Err(block.error(EmuErrorKind::TensorMemory(m), None, None));
            }
            break; // all done
        }
        let at = waiting[0];
        if let Some(w) = warps.iter().find(|w| w.state != WarpState::AtBarrier(at)) {
            return Err(block.error(EmuErrorKind::BarrierNotReached { waiting_at: at, missing_warp: w.id }, Some(w.id * 32), Some(at)));
        }
        block.epoch += 1;
        for w in warps.iter_mut() {
            w.state = WarpState::Running;
        }
    }
    Ok(block.stats)
}

impl<'a> Block<'a> {
    fn error(&self, kind: EmuErrorKind, thread: Option<u32>, inst: Option<Inst>) -> EmuError {
        EmuError {
            kind,
            block: Some(self.ctaid),
            thread,
            inst,
            inst_text: inst.map(|i| inst_to_string(self.s.k, i)).unwrap_or_default(),
        }
    }

    fn get(&self, w: &Warp, v: Value, lane: u32, inst: Inst) -> Result<u128, EmuError> {
        if w.written[v.index()] >> lane & 1 == 0 {
            return Err(self.error(EmuErrorKind::UninitRead { what: format!("value {v}") }, Some(w.id * 32 + lane), Some(inst)));
        }
        Ok(w.vals[v.index() * 32 + lane as usize])
    }

    fn set(w: &mut Warp, v: Value, lane: u32, bits: u128) {
        w.vals[v.index() * 32 + lane as usize] = bits;
        w.written[v.index()] |= 1 << lane;
    }

    fn special(&self, sr: Special, tid: u32) -> u128 {
        let [bx, by, bz] = self.s.k.block_dim;
        let t = [tid % bx, (tid / bx) % by, tid / (bx * by)];
        let v = match sr {
            Special::Tid(a) => t[a as usize],
            Special::Ntid(a) => [bx, by, bz][a as usize],
            Special::Ctaid(a) => self.ctaid[a as usize],
            Special::Nctaid(a) => self.s.grid[a as usize],
            Special::LaneId => tid % 32,
        };
        v as u128
    }

    /// Runs a warp until it waits at a barrier or finishes.
    fn run_warp(&mut self, w: &mut Warp) -> Result<(), EmuError> {
        let k = self.s.k;
        loop {
            let Some(top) = w.stack.last_mut() else {
                w.state = WarpState::Done;
                return Ok(());
            };
            match top {
                Frame::Region { region, pc, mask } => {
                    let (region, mask) = (*region, *mask);
                    let insts = &k.regions[region].insts;
                    if *pc >= insts.len() {
                        w.stack.pop();
                        continue;
                    }
                    let inst = insts[*pc];
                    *pc += 1;
                    if self.exec(w, inst, mask)? {
                        return Ok(()); // at a barrier
                    }
                }
                Frame::Loop { inst, entry, mask } => {
                    let (inst, entry, mut mask) = (*inst, *entry, *mask);
                    let InstKind::For { hi, step, body, .. } = &k.insts[inst].kind else { unreachable!("loop frame on a non-loop") };
                    let args = &k.regions[*body].args;
                    for l in lanes(mask) {
                        let iv = self.get(w, args[0], l, inst)? as u32 as i32 as i64;
                        let st = self.get(w, *step, l, inst)? as u32 as i32 as i64;
                        let h = self.get(w, *hi, l, inst)? as u32 as i32 as i64;
                        let next = iv + st;
                        if next < h {
                            Self::set(w, args[0], l, next as u32 as u128);
                        } else {
                            mask &= !(1 << l);
                        }
                    }
                    if mask != 0 {
                        if let Some(Frame::Loop { mask: m, .. }) = w.stack.last_mut() {
                            *m = mask;
                        }
                        w.stack.push(Frame::Region { region: *body, pc: 0, mask });
                    } else {
                        let results = k.insts[inst].results.clone();
                        for (n, r) in results.iter().enumerate() {
                            for l in lanes(entry) {
                                let v = self.get(w, args[n + 1], l, inst)?;
                                Self::set(w, *r, l, v);
                            }
                        }
                        w.stack.pop();
                    }
                }
                Frame::If { inst, mask, cond, stage } => {
                    if *stage == 0 {
                        *stage = 1;
                        let em = *mask & !*cond;
                        let InstKind::If { else_region, .. } = &k.insts[*inst].kind else { unreachable!("if frame on a non-if") };
                        if em != 0 {
                            let r = *else_region;
                            w.stack.push(Frame::Region { region: r, pc: 0, mask: em });
                        }
                    } else {
                        w.stack.pop();
                    }
                }
            }
        }
    }

    /// Adds a warp-wide access's wavefronts to the counters (shared memory only).
    fn count_wavefronts(&mut self, space: Space, touched: &[(u64, u32)]) {
        if space == Space::Shared && !touched.is_empty() {
            let (have, ideal) = shared_wavefronts(touched);
            self.stats.shared_wavefronts += have;
            self.stats.shared_ideal_wavefronts += ideal;
        }
    }

    /// Executes one instruction for the lanes in `mask`; returns true when the warp must wait at
    /// a barrier.
    fn exec(&mut self, w: &mut Warp, inst: Inst, mask: u32) -> Result<bool, EmuError> {
        let k = self.s.k;
        let data = &k.insts[inst];
        self.stats.warp_insts += 1;
        self.stats.thread_insts += mask.count_ones() as u64;
        let wid = w.id;
        let tid = move |l: u32| wid * 32 + l;
        use InstKind::*;
        match &data.kind {
            Special(sr) => {
                let r = data.results[0];
                for l in lanes(mask) {
                    let v = self.special(*sr, tid(l));
                    Self::set(w, r, l, v);
                }
            }
            kind if kind.is_pure() => {
                let r = data.results[0];
                let ty = k.ty(r);
                for l in lanes(mask) {
                    // Check every operand was written, then evaluate.
                    let mut bad = None;
                    kind.for_each_operand(|v| {
                        if bad.is_none() && w.written[v.index()] >> l & 1 == 0 {
                            bad = Some(v);
                        }
                    });
                    if let Some(v) = bad {
                        return Err(self.error(EmuErrorKind::UninitRead { what: format!("value {v}") }, Some(tid(l)), Some(inst)));
                    }
                    let vals = &w.vals;
                    let get = |v: Value| vals[v.index() * 32 + l as usize];
                    let res = eval_pure(k, kind, ty, &get).map_err(|e| match e {
                        EvalError::DivByZero => self.error(EmuErrorKind::DivByZero, Some(tid(l)), Some(inst)),
                        EvalError::NotPure => unreachable!("is_pure instructions evaluate"),
                    })?;
                    Self::set(w, r, l, res);
                }
            }
            Load { space, ty, addr, mask: guard } => {
                let r = data.results[0];
                let size = ty.bytes().unwrap_or(0);
                let mut touched = Vec::new();
                for l in lanes(mask) {
                    let on = match guard {
                        Some(g) => self.get(w, *g, l, inst)? & 1 == 1,
                        None => true,
                    };
                    let v = if on {
                        let a = self.get(w, *addr, l, inst)? as u64;
                        touched.push((a, size));
                        let bytes = self.read(*space, a, size, tid(l), inst)?;
                        bytes.iter().rev().fold(0u128, |acc, &b| acc << 8 | b as u128)
                    } else {
                        0
                    };
                    Self::set(w, r, l, v);
                }
                self.count_wavefronts(*space, &touched);
            }
            Store { space, addr, value, mask: guard } => {
                let size = k.ty(*value).bytes().unwrap_or(0);
                let mut touched = Vec::new();
                for l in lanes(mask) {
                    let on = match guard {
                        Some(g) => self.get(w, *g, l, inst)? & 1 == 1,
                        None => true,
                    };
                    if on {
                        let a = self.get(w, *addr, l, inst)? as u64;
                        touched.push((a, size));
                        let v = self.get(w, *value, l, inst)?;
                        let bytes: Vec<u8> = (0..size).map(|i| (v >> (8 * i)) as u8).collect();
                        self.write(*space, a, &bytes, tid(l), inst)?;
                    }
                }
                self.count_wavefronts(*space, &touched);
            }
            ArrayGet(a, n) => {
                let r = data.results[0];
                let slot = (self.s.layout.base[*a] + n) as usize;
                for l in lanes(mask) {
                    if w.arr_written[slot] >> l & 1 == 0 {
                        let what = format!("register array {a} (\"{}\") element {n}", k.arrays[*a].name);
                        return Err(self.error(EmuErrorKind::UninitRead { what }, Some(tid(l)), Some(inst)));
                    }
                    let v = w.arrays[slot * 32 + l as usize];
                    Self::set(w, r, l, v);
                }
            }
            ArraySet(a, n, v) => {
                let slot = (self.s.layout.base[*a] + n) as usize;
                for l in lanes(mask) {
                    let x = self.get(w, *v, l, inst)?;
                    w.arrays[slot * 32 + l as usize] = x;
                    w.arr_written[slot] |= 1 << l;
                }
            }
            Atomic { op, space, addr, value } => {
                let r = data.results[0];
                for l in lanes(mask) {
                    let a = self.get(w, *addr, l, inst)? as u64;
                    let v = self.get(w, *value, l, inst)? as u32;
                    let old = self.atomic(*space, *op, a, v, tid(l), inst)?;
                    Self::set(w, r, l, old as u128);
                }
            }
            Shfl { mode, value, lane, clamp } => {
                self.collective(w, mask, inst)?;
                let r = data.results[0];
                let mut src = [0u128; 32];
                let mut b = [0u32; 32];
                for l in 0..32 {
                    src[l as usize] = self.get(w, *value, l, inst)?;
                    b[l as usize] = self.get(w, *lane, l, inst)? as u32;
                }
                for l in 0..32u32 {
                    let (j, _) = sem::shfl_source(*mode, l, b[l as usize], *clamp);
                    Self::set(w, r, l, src[j as usize]);
                }
            }
            Ldmatrix { num, addr, trans } => {
                self.collective(w, mask, inst)?;
                let r = data.results[0];
                let n = *num as usize;
                let mut rows = vec![[[0u8; 16]; 8]; n];
                for l in 0..(8 * n) as u32 {
                    let a = self.get(w, *addr, l, inst)? as u64;
                    let bytes = self.read(Space::Shared, a, 16, tid(l), inst)?;
                    rows[l as usize / 8][l as usize % 8].copy_from_slice(&bytes);
                }
                let regs = sem::ldmatrix_distribute(&rows, *trans);
                for l in 0..32u32 {
                    let v = (0..n).fold(0u128, |acc, m| sem::set_lane(acc, 32, m as u32, regs[l as usize][m] as u128));
                    Self::set(w, r, l, v);
                }
            }
            Mma(kind, a, b, c) => {
                self.collective(w, mask, inst)?;
                let r = data.results[0];
                let (mut av, mut bv, mut cv) = ([0u128; 32], [0u128; 32], [0u128; 32]);
                for l in 0..32u32 {
                    av[l as usize] = self.get(w, *a, l, inst)?;
                    bv[l as usize] = self.get(w, *b, l, inst)?;
                    cv[l as usize] = self.get(w, *c, l, inst)?;
                }
                let d = sem::mma(*kind, &av, &bv, &cv);
                for l in 0..32u32 {
                    Self::set(w, r, l, d[l as usize]);
                }
            }
            Wgmma { kind, n, a, b, acc } => {
                self.collective(w, mask, inst)?;
                // The warpgroup's operands: lane 0's addresses (all lanes pass the same ones).
                let (pa, pb) = (self.get(w, *a, 0, inst)? as u64, self.get(w, *b, 0, inst)? as u64);
                let n = usize::from(*n);
                let gather = |emu: &mut Self, base: u64, rows: usize| -> Result<Vec<u8>, EmuError> {
                    let mut out = vec![0u8; rows * 32];
                    for r in 0..rows {
                        for half in 0..2u32 {
                            let at = base + u64::from(crate::ir::wgmma_offset(r as u32, 16 * half));
                            let bytes = emu.read(Space::Shared, at, 16, tid(0), inst)?;
                            out[r * 32 + 16 * half as usize..][..16].copy_from_slice(&bytes);
                        }
                    }
                    Ok(out)
                };
                let ab = gather(self, pa, 64)?;
                let bb = gather(self, pb, n)?;
                let mut accs = Vec::with_capacity(acc.len());
                for &c in acc.iter() {
                    let mut v = [0u128; 32];
                    for l in 0..32u32 {
                        v[l as usize] = self.get(w, c, l, inst)?;
                    }
                    accs.push(v);
                }
                let d = sem::wgmma(*kind, n, &ab, &bb, &accs, w.id % 4);
                for (j, &r) in data.results.iter().enumerate() {
                    for l in 0..32u32 {
                        Self::set(w, r, l, d[j][l as usize]);
                    }
                }
            }
            FenceProxyAsync | Tcgen05Fence { .. } => {}
            TmemAlloc { dst, cols } => {
                self.collective(w, mask, inst)?;
                let d = self.get(w, *dst, 0, inst)? as u64;
                let cols = *cols;
                let start = (0..TMEM_COLUMNS / cols)
                    .map(|i| i * cols)
                    .find(|&s| self.tmem_allocs.iter().all(|&a| !overlaps(a, (s, cols))));
                let Some(start) = start else {
                    let m = format!("no {cols} free columns left (allocated: {:?})", self.tmem_allocs);
                    return Err(self.error(EmuErrorKind::TensorMemory(m), Some(tid(0)), Some(inst)));
                };
                if self.tmem.is_empty() {
                    self.tmem = vec![0; 128 * TMEM_COLUMNS as usize];
                }
                self.tmem_allocs.push((start, cols));
                self.write(Space::Shared, d, &start.to_le_bytes(), tid(0), inst)?;
            }
            TmemDealloc { taddr, cols } => {
                self.collective(w, mask, inst)?;
                let a = self.get(w, *taddr, 0, inst)? as u32;
                let Some(at) = self.tmem_allocs.iter().position(|&r| r == (a & 0xffff, *cols)) else {
                    let m = format!("tcgen05.dealloc of {cols} columns at {a:#x}, which is not an allocation ({:?})", self.tmem_allocs);
                    return Err(self.error(EmuErrorKind::TensorMemory(m), Some(tid(0)), Some(inst)));
                };
                self.tmem_allocs.remove(at);
            }
            TmemStore { taddr, values } => {
                self.collective(w, mask, inst)?;
                let (lane0, col) = self.tmem_cells(w, *taddr, values.len() as u32, inst)?;
                for l in 0..32u32 {
                    for (j, &v) in values.iter().enumerate() {
                        let x = self.get(w, v, l, inst)? as u32;
                        self.tmem[((lane0 + l) * TMEM_COLUMNS + col) as usize + j] = x;
                    }
                }
            }
            TmemLoad { taddr, num, .. } => {
                self.collective(w, mask, inst)?;
                let (lane0, col) = self.tmem_cells(w, *taddr, u32::from(*num), inst)?;
                for l in 0..32u32 {
                    for (j, &r) in data.results.iter().enumerate() {
                        let x = self.tmem[((lane0 + l) * TMEM_COLUMNS + col) as usize + j];
                        Self::set(w, r, l, u128::from(x));
                    }
                }
            }
            Tcgen05Mma { kind, n, d, a, b, accumulate } => {
                let n = usize::from(*n);
                for l in lanes(mask) {
                    let (pa, pb) = (self.get(w, *a, l, inst)? as u64, self.get(w, *b, l, inst)? as u64);
                    let taddr = self.get(w, *d, l, inst)? as u32;
                    let acc = self.get(w, *accumulate, l, inst)? & 1 == 1;
                    let col = taddr & 0xffff;
                    if taddr >> 16 != 0 || !self.tmem_allocs.iter().any(|&r| r.0 <= col && col + n as u32 <= r.0 + r.1) {
                        let m = format!("tcgen05.mma writes lanes 0..128 of columns {col}..{} at {taddr:#x}, outside every allocation ({:?})", col + n as u32, self.tmem_allocs);
                        return Err(self.error(EmuErrorKind::TensorMemory(m), Some(tid(l)), Some(inst)));
                    }
                    let mut gather = |base: u64, rows: usize| -> Result<Vec<u8>, EmuError> {
                        let mut out = vec![0u8; rows * 32];
                        for r in 0..rows {
                            for half in 0..2u32 {
                                let at = base + u64::from(crate::ir::wgmma_offset(r as u32, 16 * half));
                                let bytes = self.read(Space::Shared, at, 16, tid(l), inst)?;
                                out[r * 32 + 16 * half as usize..][..16].copy_from_slice(&bytes);
                            }
                        }
                        Ok(out)
                    };
                    let ab = gather(pa, 128)?;
                    let bb = gather(pb, n)?;
                    let mut cells = vec![0u32; 128 * n];
                    for (r, row) in cells.chunks_mut(n).enumerate() {
                        let at = r * TMEM_COLUMNS as usize + col as usize;
                        row.copy_from_slice(&self.tmem[at..at + n]);
                    }
                    sem::tcgen05_mma(*kind, n, &ab, &bb, &mut cells, acc);
                    for (r, row) in cells.chunks(n).enumerate() {
                        let at = r * TMEM_COLUMNS as usize + col as usize;
                        self.tmem[at..at + n].copy_from_slice(row);
                    }
                    self.tmem_issued.push((col, n as u32));
                }
            }
            Tcgen05Commit { mbar } => {
                for l in lanes(mask) {
                    let at = self.get(w, *mbar, l, inst)? as u32;
                    let issued = std::mem::take(&mut self.tmem_issued);
                    let Some(b) = self.mbarriers.get_mut(&at) else {
                        return Err(self.error(EmuErrorKind::Mbarrier(format!("tcgen05.commit to shared byte {at}, where no mbarrier was initialised")), Some(tid(l)), Some(inst)));
                    };
                    b.committed.extend(issued);
                    b.pending -= 1;
                    if b.pending == 0 {
                        b.completed += 1;
                        b.pending = b.count;
                        let c = std::mem::take(&mut b.committed);
                        b.done.extend(c);
                    }
                }
            }
            MbarrierInit { mbar, count } => {
                for l in lanes(mask) {
                    let at = self.get(w, *mbar, l, inst)? as u64;
                    self.check_shared(at, 8, tid(l), inst)?;
                    let b = Mbarrier { count: *count, pending: *count, completed: 0, committed: Vec::new(), done: Vec::new() };
                    self.mbarriers.insert(at as u32, b);
                }
            }
            MbarrierWait { mbar, parity } => {
                for l in lanes(mask) {
                    let at = self.get(w, *mbar, l, inst)? as u32;
                    let p = (self.get(w, *parity, l, inst)? & 1) as u32;
                    let Some(b) = self.mbarriers.get_mut(&at) else {
                        return Err(self.error(EmuErrorKind::Mbarrier(format!("wait on shared byte {at}, where no mbarrier was initialised")), Some(tid(l)), Some(inst)));
                    };
                    if b.completed % 2 == p {
                        let m = format!("wait for the phase of parity {p}, but {} phases have completed: the current phase has that parity and would never complete", b.completed);
                        return Err(self.error(EmuErrorKind::Mbarrier(m), Some(tid(l)), Some(inst)));
                    }
                    b.done.clear();
                }
            }
            Barrier => {
                if mask != w.live {
                    return Err(self.error(
                        EmuErrorKind::DivergentBarrier { arrived: mask, expected: w.live },
                        Some(tid((!mask & w.live).trailing_zeros())),
                        Some(inst),
                    ));
                }
                w.state = WarpState::AtBarrier(inst);
                return Ok(true);
            }
            CpAsync { dst, src, size, src_size } => {
                for l in lanes(mask) {
                    let d = self.get(w, *dst, l, inst)? as u64;
                    let sa = self.get(w, *src, l, inst)? as u64;
                    let n = match src_size {
                        Some(v) => (self.get(w, *v, l, inst)? as u32).min(*size),
                        None => *size,
                    };
                    self.check_shared(d, *size, tid(l), inst)?;
                    if sa % *size as u64 != 0 {
                        return Err(self.error(EmuErrorKind::Misaligned { space: Space::Global, addr: sa, size: *size }, Some(tid(l)), Some(inst)));
                    }
                    let mut bytes = if n > 0 { self.read(Space::Global, sa, n, tid(l), inst)? } else { Vec::new() };
                    bytes.resize(*size as usize, 0);
                    for i in 0..*size {
                        self.inflight[(d + i as u64) as usize] += 1;
                    }
                    self.asyncs[tid(l) as usize].uncommitted.push(PendingCopy { dst: d as u32, bytes });
                }
            }
            CpAsyncCommit => {
                for l in lanes(mask) {
                    let t = &mut self.asyncs[tid(l) as usize];
                    let group = std::mem::take(&mut t.uncommitted);
                    t.groups.push_back(group);
                }
            }
            CpAsyncWait(n) => {
                for l in lanes(mask) {
                    while self.asyncs[tid(l) as usize].groups.len() > *n as usize {
                        let group = self.asyncs[tid(l) as usize].groups.pop_front().unwrap_or_default();
                        for c in group {
                            for i in 0..c.bytes.len() as u32 {
                                self.inflight[(c.dst + i) as usize] -= 1;
                            }
                            self.write(Space::Shared, c.dst as u64, &c.bytes, tid(l), inst)?;
                        }
                    }
                }
            }
            For { lo, init, body, .. } => {
                let step = match &data.kind {
                    For { step, .. } => *step,
                    _ => unreachable!("matched For"),
                };
                let hi = match &data.kind {
                    For { hi, .. } => *hi,
                    _ => unreachable!("matched For"),
                };
                let args = k.regions[*body].args.clone();
                let mut active = 0u32;
                for l in lanes(mask) {
                    let lo_v = self.get(w, *lo, l, inst)?;
                    let st = self.get(w, step, l, inst)? as u32 as i32;
                    if st <= 0 {
                        return Err(self.error(EmuErrorKind::BadLoopStep(st as i64), Some(tid(l)), Some(inst)));
                    }
                    let h = self.get(w, hi, l, inst)? as u32 as i32;
                    Self::set(w, args[0], l, lo_v);
                    for (n, v) in init.iter().enumerate() {
                        let x = self.get(w, *v, l, inst)?;
                        Self::set(w, args[n + 1], l, x);
                    }
                    if (lo_v as u32 as i32) < h {
                        active |= 1 << l;
                    }
                }
                if active == 0 {
                    for (n, r) in data.results.iter().enumerate() {
                        for l in lanes(mask) {
                            let x = self.get(w, args[n + 1], l, inst)?;
                            Self::set(w, *r, l, x);
                        }
                    }
                } else {
                    w.stack.push(Frame::Loop { inst, entry: mask, mask: active });
                    w.stack.push(Frame::Region { region: *body, pc: 0, mask: active });
                }
            }
            If { cond, then_region, .. } => {
                let mut cm = 0;
                for l in lanes(mask) {
                    if self.get(w, *cond, l, inst)? & 1 == 1 {
                        cm |= 1 << l;
                    }
                }
                w.stack.push(Frame::If { inst, mask, cond: cm, stage: 0 });
                if cm != 0 {
                    w.stack.push(Frame::Region { region: *then_region, pc: 0, mask: cm });
                }
            }
            Yield(vs) => {
                // The owner is the frame below this region's frame.
                let n = w.stack.len();
                let targets: Vec<Value> = match n.checked_sub(2).map(|i| &w.stack[i]) {
                    Some(Frame::Loop { inst: o, .. }) => match &k.insts[*o].kind {
                        For { body, .. } => k.regions[*body].args[1..].to_vec(),
                        _ => unreachable!("loop frame on a non-loop"),
                    },
                    Some(Frame::If { inst: o, .. }) => k.insts[*o].results.clone(),
                    _ => unreachable!("verified yields end loop bodies and if branches"),
                };
                for l in lanes(mask) {
                    let mut vals = Vec::with_capacity(vs.len());
                    for v in vs {
                        vals.push(self.get(w, *v, l, inst)?);
                    }
                    for (t, x) in targets.iter().zip(vals) {
                        Self::set(w, *t, l, x);
                    }
                }
                w.stack.pop();
            }
            _ => unreachable!("every instruction kind is handled above"),
        }
        Ok(false)
    }

    /// The first lane and column a warp-wide `tcgen05.ld`/`st` of `num` columns at `taddr`
    /// touches, after checking the warp's lane quarter, the allocation and in-flight columns.
    fn tmem_cells(&self, w: &Warp, taddr: Value, num: u32, inst: Inst) -> Result<(u32, u32), EmuError> {
        let a = self.get(w, taddr, 0, inst)? as u32;
        let (lane0, col) = (a >> 16, a & 0xffff);
        let fail = |m: String| Err(self.error(EmuErrorKind::TensorMemory(m), Some(w.id * 32), Some(inst)));
        if lane0 != 32 * (w.id % 4) {
            return fail(format!("warp {} may access lanes {}..{} only, not {lane0}.. (address {a:#x})", w.id, 32 * (w.id % 4), 32 * (w.id % 4) + 32));
        }
        if !self.tmem_allocs.iter().any(|&r| r.0 <= col && col + num <= r.0 + r.1) {
            return fail(format!("columns {col}..{} are outside every allocation ({:?})", col + num, self.tmem_allocs));
        }
        let pending = self.tmem_issued.iter().chain(self.mbarriers.values().flat_map(|b| b.committed.iter().chain(&b.done)));
        if let Some(r) = pending.copied().find(|&r| overlaps(r, (col, num))) {
            return fail(format!("columns {col}..{} are written by a tcgen05.mma whose completion no thread has waited for (columns {}..{})", col + num, r.0, r.0 + r.1));
        }
        Ok((lane0, col))
    }

    fn collective(&self, w: &Warp, mask: u32, inst: Inst) -> Result<(), EmuError> {
        if mask != u32::MAX {
            let first_missing = (!mask).trailing_zeros();
            return Err(self.error(EmuErrorKind::DivergentCollective { active: mask }, Some(w.id * 32 + first_missing.min(31)), Some(inst)));
        }
        Ok(())
    }

    fn check_shared(&self, addr: u64, size: u32, tid: u32, inst: Inst) -> Result<(), EmuError> {
        if addr % size as u64 != 0 {
            return Err(self.error(EmuErrorKind::Misaligned { space: Space::Shared, addr, size }, Some(tid), Some(inst)));
        }
        let len = self.smem.len() as u64;
        if addr + size as u64 > len {
            return Err(self.error(EmuErrorKind::OutOfBounds { space: Space::Shared, addr, size, len }, Some(tid), Some(inst)));
        }
        Ok(())
    }

    fn global_slot(&self, addr: u64, size: u32, tid: u32, inst: Inst) -> Result<(usize, usize), EmuError> {
        if addr % size as u64 != 0 {
            return Err(self.error(EmuErrorKind::Misaligned { space: Space::Global, addr, size }, Some(tid), Some(inst)));
        }
        let buf = (addr >> 40) as usize;
        let off = addr & ((1 << 40) - 1);
        let len = if buf >= 1 { self.s.buffers.get(buf - 1).map(|b| b.len() as u64) } else { None };
        match len {
            Some(len) if off + size as u64 <= len => Ok((buf - 1, off as usize)),
            _ => Err(self.error(
                EmuErrorKind::OutOfBounds { space: Space::Global, addr, size, len: len.unwrap_or(0) },
                Some(tid),
                Some(inst),
            )),
        }
    }

    fn read(&mut self, space: Space, addr: u64, size: u32, tid: u32, inst: Inst) -> Result<Vec<u8>, EmuError> {
        match space {
            Space::Global => {
                let (b, off) = self.global_slot(addr, size, tid, inst)?;
                Ok(self.s.buffers[b][off..off + size as usize].iter().map(|x| x.load(Ordering::Relaxed)).collect())
            }
            Space::Shared => {
                self.check_shared(addr, size, tid, inst)?;
                for i in 0..size as u64 {
                    self.track(addr + i, Access::Read, tid, inst)?;
                }
                Ok(self.smem[addr as usize..(addr + size as u64) as usize].to_vec())
            }
        }
    }

    fn write(&mut self, space: Space, addr: u64, bytes: &[u8], tid: u32, inst: Inst) -> Result<(), EmuError> {
        let size = bytes.len() as u32;
        match space {
            Space::Global => {
                let (b, off) = self.global_slot(addr, size, tid, inst)?;
                for (i, &x) in bytes.iter().enumerate() {
                    self.s.buffers[b][off + i].store(x, Ordering::Relaxed);
                }
            }
            Space::Shared => {
                self.check_shared(addr, size.max(1), tid, inst)?;
                for i in 0..size as u64 {
                    self.track(addr + i, Access::Write, tid, inst)?;
                }
                self.smem[addr as usize..addr as usize + bytes.len()].copy_from_slice(bytes);
            }
        }
        Ok(())
    }

    /// Atomically applies `op` with `v` to the word at `addr`; returns the old word.
    fn atomic(&mut self, space: Space, op: AtomicOp, addr: u64, v: u32, tid: u32, inst: Inst) -> Result<u32, EmuError> {
        let rmw = |bytes: &[u8]| -> (u32, [u8; 4]) {
            let old = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            (old, sem::atomic(op, old, v).to_le_bytes())
        };
        match space {
            Space::Global => {
                let (b, off) = self.global_slot(addr, 4, tid, inst)?;
                let buf = &self.s.buffers[b][off..off + 4];
                // A poisoned lock only means another block's thread panicked; the bytes are fine.
                let _guard = self.s.global_atomics.lock().unwrap_or_else(|e| e.into_inner());
                let bytes: Vec<u8> = buf.iter().map(|x| x.load(Ordering::Relaxed)).collect();
                let (old, new) = rmw(&bytes);
                for (dst, x) in buf.iter().zip(new) {
                    dst.store(x, Ordering::Relaxed);
                }
                Ok(old)
            }
            Space::Shared => {
                self.check_shared(addr, 4, tid, inst)?;
                for i in 0..4 {
                    self.track(addr + i, Access::Atomic, tid, inst)?;
                }
                let a = addr as usize;
                let (old, new) = rmw(&self.smem[a..a + 4]);
                self.smem[a..a + 4].copy_from_slice(&new);
                Ok(old)
            }
        }
    }

    /// Race and cp.async checks for one shared byte.
    fn track(&mut self, addr: u64, access: Access, tid: u32, inst: Inst) -> Result<(), EmuError> {
        let a = addr as usize;
        // The retiring cp.async itself writes through here with its count already dropped.
        if self.inflight[a] != 0 {
            return Err(self.error(EmuErrorKind::CpAsyncInFlight { addr: addr as u32 }, Some(tid), Some(inst)));
        }
        let me = tid + 1;
        let sh = &mut self.shadow[a];
        if sh.epoch != self.epoch {
            *sh = Shadow { epoch: self.epoch, writer: 0, reader: 0, atomic: 0 };
        }
        let write = access != Access::Read;
        let race = |other: Option<u32>| EmuErrorKind::SharedRace { addr: addr as u32, other, write };
        // Another thread's plain write conflicts with everything; another thread's atomic with
        // every plain access; another thread's read with every write (atomics included).
        let other = |who: u32| if who == u32::MAX { None } else { Some(who - 1) };
        if sh.writer != 0 && sh.writer != me {
            let o = sh.writer - 1;
            return Err(self.error(race(Some(o)), Some(tid), Some(inst)));
        }
        if access != Access::Atomic && sh.atomic != 0 && sh.atomic != me {
            let o = other(sh.atomic);
            return Err(self.error(race(o), Some(tid), Some(inst)));
        }
        if write && sh.reader != 0 && sh.reader != me {
            let o = other(sh.reader);
            return Err(self.error(race(o), Some(tid), Some(inst)));
        }
        match access {
            Access::Write => sh.writer = me,
            Access::Atomic if sh.atomic == 0 => sh.atomic = me,
            Access::Atomic if sh.atomic != me => sh.atomic = u32::MAX,
            Access::Atomic => {}
            Access::Read if sh.reader == 0 => sh.reader = me,
            Access::Read if sh.reader != me => sh.reader = u32::MAX,
            Access::Read => {}
        }
        Ok(())
    }
}
