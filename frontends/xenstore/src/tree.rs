//! The node tree, stored flat by absolute path, and the views operations run on: the
//! tree itself, or a transaction's copy-on-write overlay over it. Every change stamps
//! the node with a fresh generation; a transaction records the generation of every
//! node it touched and commits only if none moved meanwhile.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;

use crate::perms::{Access, Perms};
use crate::DomId;

/// One node.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) value: Vec<u8>,
    pub(crate) perms: Perms,
    pub(crate) children: BTreeSet<String>,
    pub(crate) generation: u64,
}

impl Node {
    pub(crate) fn new(value: Vec<u8>, perms: Perms) -> Self {
        Self {
            value,
            perms,
            children: BTreeSet::new(),
            generation: 0,
        }
    }
}

/// A change for the watches: the path changed, whether everything below it went with
/// it (rm), and the permissions that decide who may hear of it.
#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub(crate) path: String,
    pub(crate) recurse: bool,
    pub(crate) perms: Perms,
}

/// What operations read and write through.
pub(crate) trait View {
    fn get(&mut self, path: &str) -> Option<&Node>;
    fn set(&mut self, path: &str, node: Node);
    fn remove(&mut self, path: &str);
    fn owned(&self, domid: DomId) -> usize;
}

/// The committed tree.
#[derive(Debug)]
pub(crate) struct Tree {
    nodes: BTreeMap<String, Node>,
    generation: u64,
    owned: BTreeMap<DomId, usize>,
}

impl Tree {
    /// A tree holding only `/`, owned by `privileged`, closed to everyone else.
    pub(crate) fn new(privileged: DomId) -> Self {
        let mut tree = Self {
            nodes: BTreeMap::new(),
            generation: 0,
            owned: BTreeMap::new(),
        };
        tree.set(
            "/",
            Node::new(Vec::new(), Perms::new(privileged, Access::None)),
        );
        tree
    }

    pub(crate) fn peek(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    pub(crate) fn generation_of(&self, path: &str) -> u64 {
        self.nodes.get(path).map_or(0, |n| n.generation)
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    fn adjust(&mut self, domid: DomId, up: bool) {
        let count = self.owned.entry(domid).or_insert(0);
        *count = if up {
            *count + 1
        } else {
            count.saturating_sub(1)
        };
        if *count == 0 {
            self.owned.remove(&domid);
        }
    }
}

impl View for Tree {
    fn get(&mut self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    fn set(&mut self, path: &str, mut node: Node) {
        self.generation += 1;
        node.generation = self.generation;
        let owner = node.perms.owner();
        if let Some(old) = self.nodes.insert(String::from(path), node) {
            self.adjust(old.perms.owner(), false);
        }
        self.adjust(owner, true);
    }

    fn remove(&mut self, path: &str) {
        if let Some(old) = self.nodes.remove(path) {
            self.adjust(old.perms.owner(), false);
        }
    }

    fn owned(&self, domid: DomId) -> usize {
        self.owned.get(&domid).copied().unwrap_or(0)
    }
}

/// A transaction's private state.
#[derive(Debug, Default)]
pub(crate) struct Transaction {
    overlay: BTreeMap<String, Option<Node>>,
    seen: BTreeMap<String, u64>,
    owned_delta: BTreeMap<DomId, i64>,
    changes: BTreeMap<String, Change>,
    /// Set once the transaction touched more nodes than its quota allows.
    pub(crate) overflowed: bool,
}

impl Transaction {
    /// Distinct nodes read or written so far.
    pub(crate) fn touched(&self) -> usize {
        self.seen.len()
    }

    /// Records a change to fire at commit; one per path, so a loop of writes inside a
    /// transaction cannot grow this without bound.
    pub(crate) fn record(&mut self, change: Change) {
        let recurse = change.recurse || self.changes.get(&change.path).is_some_and(|c| c.recurse);
        self.changes
            .insert(change.path.clone(), Change { recurse, ..change });
    }

    /// Whether every node touched is still at the generation first seen.
    pub(crate) fn still_valid(&self, tree: &Tree) -> bool {
        self.seen
            .iter()
            .all(|(path, &gen)| tree.generation_of(path) == gen)
    }

    /// Domains whose node count the transaction raises, with the count it would reach.
    pub(crate) fn owned_after(&self, tree: &Tree) -> Vec<(DomId, usize)> {
        self.owned_delta
            .iter()
            .filter(|(_, &d)| d > 0)
            .map(|(&domid, &d)| {
                (
                    domid,
                    tree.owned(domid).saturating_add(d.unsigned_abs() as usize),
                )
            })
            .collect()
    }

    /// Writes the overlay into the tree; returns the changes for the watches.
    pub(crate) fn apply(self, tree: &mut Tree) -> Vec<Change> {
        for (path, node) in self.overlay {
            match node {
                Some(node) => tree.set(&path, node),
                None => tree.remove(&path),
            }
        }
        self.changes.into_values().collect()
    }
}

/// A transaction seen as a view over the committed tree.
pub(crate) struct TxView<'a> {
    pub(crate) base: &'a Tree,
    pub(crate) tx: &'a mut Transaction,
}

impl TxView<'_> {
    fn touch(&mut self, path: &str) {
        if !self.tx.seen.contains_key(path) {
            self.tx
                .seen
                .insert(String::from(path), self.base.generation_of(path));
        }
    }

    fn delta(&mut self, domid: DomId, by: i64) {
        *self.tx.owned_delta.entry(domid).or_insert(0) += by;
    }

    fn current_owner(&self, path: &str) -> Option<DomId> {
        match self.tx.overlay.get(path) {
            Some(node) => node.as_ref().map(|n| n.perms.owner()),
            None => self.base.peek(path).map(|n| n.perms.owner()),
        }
    }
}

impl View for TxView<'_> {
    fn get(&mut self, path: &str) -> Option<&Node> {
        self.touch(path);
        match self.tx.overlay.get(path) {
            Some(node) => node.as_ref(),
            None => self.base.peek(path),
        }
    }

    fn set(&mut self, path: &str, node: Node) {
        self.touch(path);
        if let Some(old) = self.current_owner(path) {
            self.delta(old, -1);
        }
        self.delta(node.perms.owner(), 1);
        self.tx.overlay.insert(String::from(path), Some(node));
    }

    fn remove(&mut self, path: &str) {
        self.touch(path);
        if let Some(old) = self.current_owner(path) {
            self.delta(old, -1);
        }
        self.tx.overlay.insert(String::from(path), None);
    }

    fn owned(&self, domid: DomId) -> usize {
        let delta = self.tx.owned_delta.get(&domid).copied().unwrap_or(0);
        let base = self.base.owned(domid) as i64;
        usize::try_from(base + delta).unwrap_or(0)
    }
}
