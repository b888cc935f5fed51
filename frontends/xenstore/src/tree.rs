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

/// What a domain's nodes hold: how many, and their bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) nodes: usize,
    pub(crate) bytes: usize,
}

/// What node `path` costs its owner: its path (the tree's key), its name in its
/// parent's child list, and its value.
pub(crate) fn node_bytes(path: &str, value_len: usize) -> usize {
    path.len() + crate::path::basename(path).len() + value_len
}

/// What operations read and write through.
pub(crate) trait View {
    fn get(&mut self, path: &str) -> Option<&Node>;
    fn set(&mut self, path: &str, node: Node);
    fn remove(&mut self, path: &str);
    fn owned(&self, domid: DomId) -> Usage;
}

/// The committed tree.
#[derive(Debug)]
pub(crate) struct Tree {
    nodes: BTreeMap<String, Node>,
    generation: u64,
    owned: BTreeMap<DomId, Usage>,
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

    /// Forgets `domid` in every node's permissions, as it goes: what it owned
    /// passes to `heir`, the entries naming it are dropped. A later domain given
    /// the same id then inherits nothing (Xen's XSA-322). Returns how many nodes
    /// changed.
    pub(crate) fn forget_domain(&mut self, domid: DomId, heir: DomId) -> usize {
        let changed: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, node)| {
                node.perms
                    .entries()
                    .iter()
                    .any(|entry| entry.domid == domid)
            })
            .map(|(path, _)| path.clone())
            .collect();
        for path in &changed {
            if let Some(mut node) = self.nodes.get(path).cloned() {
                if node.perms.owner() == domid {
                    node.perms.set_owner(heir);
                }
                node.perms.drop_entries_of(domid);
                // Through `set`: the owner's counts move, the generation moves
                // (a transaction that read the node must not commit over it).
                self.set(path, node);
            }
        }
        changed.len()
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

    fn adjust(&mut self, domid: DomId, bytes: usize, up: bool) {
        let usage = self.owned.entry(domid).or_default();
        if up {
            usage.nodes += 1;
            usage.bytes = usage.bytes.saturating_add(bytes);
        } else {
            usage.nodes = usage.nodes.saturating_sub(1);
            usage.bytes = usage.bytes.saturating_sub(bytes);
        }
        if usage.nodes == 0 {
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
        let (owner, bytes) = (node.perms.owner(), node_bytes(path, node.value.len()));
        if let Some(old) = self.nodes.insert(String::from(path), node) {
            self.adjust(old.perms.owner(), node_bytes(path, old.value.len()), false);
        }
        self.adjust(owner, bytes, true);
    }

    fn remove(&mut self, path: &str) {
        if let Some(old) = self.nodes.remove(path) {
            self.adjust(old.perms.owner(), node_bytes(path, old.value.len()), false);
        }
    }

    fn owned(&self, domid: DomId) -> Usage {
        self.owned.get(&domid).copied().unwrap_or_default()
    }
}

/// A transaction's private state.
#[derive(Debug, Default)]
pub(crate) struct Transaction {
    overlay: BTreeMap<String, Option<Node>>,
    seen: BTreeMap<String, u64>,
    /// Per domain, the change in (nodes, bytes) owned.
    owned_delta: BTreeMap<DomId, (i64, i64)>,
    changes: BTreeMap<String, Change>,
    /// Bytes the read set and the overlay hold (paths, values, child names).
    bytes: usize,
    /// Set once the transaction touched more nodes, or held more bytes, than its
    /// quotas allow.
    pub(crate) overflowed: bool,
}

/// What `path` holding `node` costs a transaction's overlay: the copy holds the
/// node's value and the names of all its children.
fn overlay_cost(path: &str, node: Option<&Node>) -> usize {
    path.len()
        + node.map_or(0, |n| {
            n.value.len() + n.children.iter().map(String::len).sum::<usize>()
        })
}

impl Transaction {
    /// Distinct nodes read or written so far.
    pub(crate) fn touched(&self) -> usize {
        self.seen.len()
    }

    /// Bytes the transaction holds.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Gives up a transaction over its quotas: it can only end now (a commit fails
    /// with `ENOSPC`), so what it holds is freed at once.
    pub(crate) fn overflow(&mut self) {
        *self = Self {
            overflowed: true,
            ..Self::default()
        };
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

    /// Domains whose node count or bytes the transaction raises, with the usage it
    /// would reach.
    pub(crate) fn owned_after(&self, tree: &Tree) -> Vec<(DomId, Usage)> {
        self.owned_delta
            .iter()
            .filter(|(_, &(nodes, bytes))| nodes > 0 || bytes > 0)
            .map(|(&domid, &delta)| (domid, apply_delta(tree.owned(domid), delta)))
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

fn apply_delta(base: Usage, (nodes, bytes): (i64, i64)) -> Usage {
    let add = |base: usize, by: i64| {
        usize::try_from(i64::try_from(base).unwrap_or(i64::MAX).saturating_add(by)).unwrap_or(0)
    };
    Usage {
        nodes: add(base.nodes, nodes),
        bytes: add(base.bytes, bytes),
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
            self.tx.bytes = self.tx.bytes.saturating_add(path.len());
        }
    }

    /// Puts `node` (or its removal) in the overlay, keeping the byte count.
    fn put(&mut self, path: &str, node: Option<Node>) {
        let added = overlay_cost(path, node.as_ref());
        let replaced = self
            .tx
            .overlay
            .insert(String::from(path), node)
            .map_or(0, |old| overlay_cost(path, old.as_ref()));
        self.tx.bytes = self.tx.bytes.saturating_add(added).saturating_sub(replaced);
    }

    fn delta(&mut self, domid: DomId, nodes: i64, bytes: usize) {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        let entry = self.tx.owned_delta.entry(domid).or_insert((0, 0));
        entry.0 = entry.0.saturating_add(nodes);
        entry.1 = entry.1.saturating_add(nodes.signum().saturating_mul(bytes));
    }

    /// The current owner of `path` and what the node costs it.
    fn current_owner(&self, path: &str) -> Option<(DomId, usize)> {
        let node = match self.tx.overlay.get(path) {
            Some(node) => node.as_ref(),
            None => self.base.peek(path),
        };
        node.map(|n| (n.perms.owner(), node_bytes(path, n.value.len())))
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
        if let Some((old, bytes)) = self.current_owner(path) {
            self.delta(old, -1, bytes);
        }
        self.delta(node.perms.owner(), 1, node_bytes(path, node.value.len()));
        self.put(path, Some(node));
    }

    fn remove(&mut self, path: &str) {
        self.touch(path);
        if let Some((old, bytes)) = self.current_owner(path) {
            self.delta(old, -1, bytes);
        }
        self.put(path, None);
    }

    fn owned(&self, domid: DomId) -> Usage {
        let delta = self.tx.owned_delta.get(&domid).copied().unwrap_or((0, 0));
        apply_delta(self.base.owned(domid), delta)
    }
}
