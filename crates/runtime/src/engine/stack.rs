//! Interned call stacks ("stack depot").
//!
//! Every recorded access carries a [`StackId`] so that a report can print the stack of
//! the *earlier* access, however long ago it happened (TSan restores it from a recycled
//! trace and loses it; we never do). A stack is a chain of nodes `(parent, pc)`, interned
//! so equal stacks share one id. Ids are stable for the whole run and nodes are never
//! freed: their number is bounded by the program's distinct call paths, not by its
//! running time.

use super::interner::{Interner, Key, mix};
use alloc::vec::Vec;

/// Recorded stacks keep at most this many frames: the outermost `MAX_DEPTH - 1` and,
/// for deeper stacks, [`ELIDED_PC`] in place of the rest (the access pc stays on top).
pub const MAX_DEPTH: usize = 1024;
/// The pc standing for frames left out of a deeper stack (never a real code address).
pub const ELIDED_PC: usize = 1;

/// 0 is the empty stack.
pub type StackId = u32;

#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Node {
    parent: StackId,
    pc: usize,
}

impl Key for Node {
    #[inline]
    fn hash(&self) -> u64 {
        mix(self.pc as u64 ^ (self.parent as u64).rotate_left(47))
    }
}

/// Interned stacks; lookups of known stacks take no lock (see `interner`).
pub struct StackDepot {
    nodes: Interner<Node>,
}

impl StackDepot {
    pub fn new() -> Self {
        StackDepot {
            nodes: Interner::new(),
        }
    }

    /// The id of stack `parent` extended by `pc`.
    /// Stack nodes interned so far.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
    }

    pub fn intern(&self, parent: StackId, pc: usize) -> StackId {
        // Past 2^28 distinct nodes, fall back to the parent: the stack gets shorter, the
        // race is still reported.
        self.nodes.intern(Node { parent, pc }).unwrap_or(parent)
    }

    /// Interns a whole stack given outermost first.
    pub fn intern_all(&self, pcs: &[usize]) -> StackId {
        pcs.iter().fold(0, |parent, &pc| self.intern(parent, pc))
    }

    /// The pcs of stack `id`, innermost first.
    pub fn pcs(&self, mut id: StackId) -> Vec<usize> {
        let mut out = Vec::new();
        while id != 0 {
            let Some(node) = self.nodes.get(id) else {
                break;
            };
            out.push(node.pc);
            id = node.parent;
        }
        out
    }
}

impl Default for StackDepot {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_stacks_share_an_id_and_unwind_innermost_first() {
        let d = StackDepot::new();
        let a = d.intern_all(&[0x10, 0x20, 0x30]);
        let b = d.intern_all(&[0x10, 0x20, 0x30]);
        let c = d.intern_all(&[0x10, 0x21, 0x30]);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(d.pcs(a), [0x30, 0x20, 0x10]);
        assert!(d.pcs(0).is_empty());
    }
}
