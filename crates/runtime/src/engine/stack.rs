//! Interned call stacks ("stack depot").
//!
//! Every recorded access carries a [`StackId`] so that a report can print the stack of
//! the *earlier* access, however long ago it happened (TSan restores it from a recycled
//! trace and loses it; we never do). A stack is a chain of nodes `(parent, pc)`, interned
//! so equal stacks share one id. Ids are stable for the whole run and nodes are never
//! freed: their number is bounded by the program's distinct call paths, not by its
//! running time.

use super::chunked::ChunkedVec;
use crate::lock::SpinLock;
use alloc::vec::Vec;
use hashbrown::HashMap;

/// 0 is the empty stack.
pub type StackId = u32;

#[derive(Clone, Copy, Default)]
struct Node {
    parent: StackId,
    pc: usize,
}

pub struct StackDepot {
    nodes: ChunkedVec<Node>,
    index: SpinLock<HashMap<(StackId, usize), StackId>>,
}

impl StackDepot {
    pub fn new() -> Self {
        let nodes = ChunkedVec::new();
        nodes.push(Node::default()); // id 0: the empty stack
        StackDepot {
            nodes,
            index: SpinLock::new(HashMap::new()),
        }
    }

    /// The id of stack `parent` extended by `pc`.
    pub fn intern(&self, parent: StackId, pc: usize) -> StackId {
        let mut index = self.index.lock();
        if let Some(&id) = index.get(&(parent, pc)) {
            return id;
        }
        // Past 2^28 distinct nodes, fall back to the parent: the stack gets shorter, the
        // race is still reported.
        match self.nodes.push(Node { parent, pc }) {
            Some(id) => {
                index.insert((parent, pc), id as StackId);
                id as StackId
            }
            None => parent,
        }
    }

    /// Interns a whole stack given outermost first.
    pub fn intern_all(&self, pcs: &[usize]) -> StackId {
        pcs.iter().fold(0, |parent, &pc| self.intern(parent, pc))
    }

    /// The pcs of stack `id`, innermost first.
    pub fn pcs(&self, mut id: StackId) -> Vec<usize> {
        let mut out = Vec::new();
        while id != 0 {
            let Some(node) = self.nodes.get(id as usize) else {
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
