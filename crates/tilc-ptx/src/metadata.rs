//! Loop metadata (`!llvm.loop`) for the unroll hints the SIMT unroller could not honour itself
//! (bounds that are not constants, or a trip count the factor does not divide).
//!
//! A loop ID must be a node whose first operand is itself, which inkwell cannot build; this is
//! the one place that uses the LLVM C API directly: a temporary node is put in the first slot and
//! then replaced by the node that holds it, as clang's `CGLoopInfo` used to do.

use inkwell::context::Context;
use inkwell::llvm_sys::core::{
    LLVMGetMDKindIDInContext, LLVMMDNodeInContext2, LLVMMDStringInContext2, LLVMMetadataAsValue,
    LLVMSetMetadata, LLVMValueAsMetadata,
};
use inkwell::llvm_sys::debuginfo::{LLVMMetadataReplaceAllUsesWith, LLVMTemporaryMDNode};
use inkwell::llvm_sys::prelude::LLVMMetadataRef;
use inkwell::values::{AsValueRef, InstructionValue};
use tilc_simt::Unroll;

/// Attaches `!llvm.loop !{self, !{"llvm.loop.unroll.full"}}` (or `.count N`) to a loop's
/// back-edge branch.
pub(crate) fn set_unroll(ctx: &Context, back_edge: InstructionValue<'_>, unroll: Unroll) {
    let c = ctx.raw();
    let string = |s: &str| {
        // SAFETY: the pointer and length describe `s`, which outlives the call; LLVM copies it.
        unsafe { LLVMMDStringInContext2(c, s.as_ptr().cast(), s.len()) }
    };
    let node = |ops: &mut [LLVMMetadataRef]| {
        // SAFETY: `ops` is a live slice of metadata of this context; LLVM copies the operands.
        unsafe { LLVMMDNodeInContext2(c, ops.as_mut_ptr(), ops.len()) }
    };
    let option = match unroll {
        Unroll::None => return,
        Unroll::Full => node(&mut [string("llvm.loop.unroll.full")]),
        Unroll::Factor(n) => {
            let count = ctx.i32_type().const_int(n as u64, false);
            // SAFETY: `count` is a constant of this context.
            let count_md = unsafe { LLVMValueAsMetadata(count.as_value_ref()) };
            node(&mut [string("llvm.loop.unroll.count"), count_md])
        }
    };
    // SAFETY: the temporary node is created, used as an operand once, and then replaced (which
    // deletes it) before anything else can see it; the loop ID and the branch belong to `ctx`.
    unsafe {
        let temp = LLVMTemporaryMDNode(c, std::ptr::null_mut(), 0);
        let loop_id = node(&mut [temp, option]);
        LLVMMetadataReplaceAllUsesWith(temp, loop_id);
        let kind_name = "llvm.loop";
        let kind = LLVMGetMDKindIDInContext(c, kind_name.as_ptr().cast(), kind_name.len() as u32);
        LLVMSetMetadata(
            back_edge.as_value_ref(),
            kind,
            LLVMMetadataAsValue(c, loop_id),
        );
    }
}
