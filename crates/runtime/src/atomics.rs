//! Performs Go's `sync/atomic` operations on their ABI0 argument blocks.
//!
//! In race mode Go never executes a `sync/atomic` operation itself: the thunk in
//! `runtime/race_amd64.s` hands the runtime a pointer to the Go argument frame and
//! expects the result written back into it (layout: `go-race-abi.md` §3.2). The address
//! is at `args+0`; operands follow at +8 (and +12/+16 for compare-and-swap); results
//! go to the slot after the operands. The operations themselves are sequentially
//! consistent, as on every Go platform.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};

/// Which operation an entry point performs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AtomicOp {
    Load,
    Store,
    Exchange,
    FetchAdd,
    FetchAnd,
    FetchOr,
    CompareExchange,
}

/// What an operation did, for the race engine.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AtomicEffect {
    pub addr: usize,
    pub size: usize,
    /// Whether memory was written (a failed compare-and-swap only reads).
    pub wrote: bool,
}

impl AtomicOp {
    /// Memory-model effect of the operation: (acquires, releases).
    pub fn sync_kind(self, wrote: bool) -> (bool, bool) {
        match self {
            AtomicOp::Load => (true, false),
            AtomicOp::Store => (false, true),
            AtomicOp::CompareExchange if !wrote => (true, false),
            _ => (true, true),
        }
    }
}

macro_rules! perform_width {
    ($name:ident, $int:ty, $atomic:ty, $cas_new:expr, $cas_res:expr) => {
        /// Performs `op` on the argument block `args`.
        ///
        /// # Safety
        /// `args` must be a Go ABI0 frame of the matching `sync/atomic` function whose
        /// first word is a valid, suitably aligned address.
        pub unsafe fn $name(op: AtomicOp, args: *mut u8) -> AtomicEffect {
            const W: usize = core::mem::size_of::<$int>();
            // SAFETY: the layout is Go's ABI0 frame (go-race-abi.md §3.2); the caller
            // guarantees the address word points at a live, aligned atomic cell.
            unsafe {
                let addr = *(args as *const usize);
                let cell = &*(addr as *const $atomic);
                let operand = (args.add(8) as *const $int).read_unaligned();
                // Go aligns the result slot to the pointer size: +16 for both widths.
                let result = args.add(16);
                let mut wrote = true;
                match op {
                    AtomicOp::Load => {
                        (args.add(8) as *mut $int).write_unaligned(cell.load(SeqCst));
                        wrote = false;
                    }
                    AtomicOp::Store => cell.store(operand, SeqCst),
                    AtomicOp::Exchange => {
                        (result as *mut $int).write_unaligned(cell.swap(operand, SeqCst))
                    }
                    AtomicOp::FetchAdd => {
                        (result as *mut $int).write_unaligned(cell.fetch_add(operand, SeqCst))
                    }
                    AtomicOp::FetchAnd => {
                        (result as *mut $int).write_unaligned(cell.fetch_and(operand, SeqCst))
                    }
                    AtomicOp::FetchOr => {
                        (result as *mut $int).write_unaligned(cell.fetch_or(operand, SeqCst))
                    }
                    AtomicOp::CompareExchange => {
                        let new = (args.add($cas_new) as *const $int).read_unaligned();
                        wrote = cell.compare_exchange(operand, new, SeqCst, SeqCst).is_ok();
                        *args.add($cas_res) = wrote as u8;
                    }
                }
                AtomicEffect {
                    addr,
                    size: W,
                    wrote,
                }
            }
        }
    };
}

perform_width!(perform32, u32, AtomicU32, 12, 16);
perform_width!(perform64, u64, AtomicU64, 16, 24);

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(C, align(8))]
    struct Frame([u8; 32]);

    fn frame_for(addr: usize) -> Frame {
        let mut f = Frame([0; 32]);
        f.0[..8].copy_from_slice(&addr.to_ne_bytes());
        f
    }

    #[test]
    fn add32_returns_old_value_and_adds() {
        let cell = AtomicU32::new(40);
        let mut f = frame_for(&cell as *const _ as usize);
        f.0[8..12].copy_from_slice(&2u32.to_ne_bytes());
        // SAFETY: the frame is Go's argument layout and points at a live atomic.
        let eff = unsafe { perform32(AtomicOp::FetchAdd, f.0.as_mut_ptr()) };
        assert_eq!(cell.load(SeqCst), 42);
        assert_eq!(u32::from_ne_bytes(f.0[16..20].try_into().unwrap()), 40);
        assert_eq!(eff.size, 4);
        assert!(eff.wrote);
    }

    #[test]
    fn cas64_reports_success_and_failure() {
        let cell = AtomicU64::new(7);
        let mut f = frame_for(&cell as *const _ as usize);
        f.0[8..16].copy_from_slice(&7u64.to_ne_bytes());
        f.0[16..24].copy_from_slice(&9u64.to_ne_bytes());
        // SAFETY: the frame is Go's argument layout and points at a live atomic.
        let eff = unsafe { perform64(AtomicOp::CompareExchange, f.0.as_mut_ptr()) };
        assert!(eff.wrote);
        assert_eq!(f.0[24], 1);
        assert_eq!(cell.load(SeqCst), 9);
        // SAFETY: the frame is Go's argument layout and points at a live atomic.
        let eff = unsafe { perform64(AtomicOp::CompareExchange, f.0.as_mut_ptr()) };
        assert!(!eff.wrote);
        assert_eq!(f.0[24], 0);
        assert_eq!(cell.load(SeqCst), 9);
    }

    #[test]
    fn cas32_layout_uses_offsets_8_12_16() {
        let cell = AtomicU32::new(1);
        let mut f = frame_for(&cell as *const _ as usize);
        f.0[8..12].copy_from_slice(&1u32.to_ne_bytes());
        f.0[12..16].copy_from_slice(&5u32.to_ne_bytes());
        // SAFETY: the frame is Go's argument layout and points at a live atomic.
        unsafe { perform32(AtomicOp::CompareExchange, f.0.as_mut_ptr()) };
        assert_eq!(f.0[16], 1);
        assert_eq!(cell.load(SeqCst), 5);
    }

    #[test]
    fn load_and_store64() {
        let cell = AtomicU64::new(0);
        let mut f = frame_for(&cell as *const _ as usize);
        f.0[8..16].copy_from_slice(&0xdead_beefu64.to_ne_bytes());
        // SAFETY: the frame is Go's argument layout and points at a live atomic.
        unsafe { perform64(AtomicOp::Store, f.0.as_mut_ptr()) };
        assert_eq!(cell.load(SeqCst), 0xdead_beef);
        f.0[8..16].copy_from_slice(&[0; 8]);
        // SAFETY: the frame is Go's argument layout and points at a live atomic.
        let eff = unsafe { perform64(AtomicOp::Load, f.0.as_mut_ptr()) };
        assert!(!eff.wrote);
        assert_eq!(
            u64::from_ne_bytes(f.0[8..16].try_into().unwrap()),
            0xdead_beef
        );
    }
}
