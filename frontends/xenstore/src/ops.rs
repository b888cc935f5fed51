//! The tree operations, run on a [`View`] (the tree or a transaction) on behalf of one
//! domain, with xenstored's permission rules: the privileged domain may do anything;
//! any other reads and writes only what a node's permissions allow, creates below a
//! node it may write, and owns what it creates (the new node otherwise inherits its
//! parent's permissions).

use alloc::vec::Vec;

use crate::error::XsError;
use crate::path;
use crate::perms::{PermEntry, Perms};
use crate::store::Quotas;
use crate::tree::{node_bytes, Change, Node, View};
use crate::DomId;

/// Who is asking, and under which limits.
pub(crate) struct Caller<'q> {
    pub(crate) domid: DomId,
    pub(crate) privileged: bool,
    pub(crate) quotas: &'q Quotas,
}

impl Caller<'_> {
    fn may_read(&self, perms: &Perms) -> bool {
        self.privileged || perms.access_for(self.domid).can_read()
    }

    fn may_write(&self, perms: &Perms) -> bool {
        self.privileged || perms.access_for(self.domid).can_write()
    }
}

/// The error for a node that is not there: `ENOENT` if the caller may read the
/// nearest existing ancestor, `EACCES` otherwise (no probing of others' subtrees).
pub(crate) fn missing(view: &mut dyn View, caller: &Caller<'_>, path: &str) -> XsError {
    let mut at = path;
    while let Some(up) = path::parent(at) {
        if let Some(node) = view.get(up) {
            return if caller.may_read(&node.perms) {
                XsError::Noent
            } else {
                XsError::Acces
            };
        }
        at = up;
    }
    XsError::Noent
}

fn readable<'v>(
    view: &'v mut dyn View,
    caller: &Caller<'_>,
    path: &str,
) -> Result<&'v Node, XsError> {
    let allowed = match view.get(path) {
        Some(node) => caller.may_read(&node.perms),
        None => return Err(missing(view, caller, path)),
    };
    if !allowed {
        return Err(XsError::Acces);
    }
    view.get(path).ok_or(XsError::Noent)
}

/// Whether the caller may watch `path`: it may read the node, or (if absent) the
/// nearest existing ancestor.
pub(crate) fn may_watch(
    view: &mut dyn View,
    caller: &Caller<'_>,
    path: &str,
) -> Result<(), XsError> {
    match readable(view, caller, path) {
        Ok(_) | Err(XsError::Noent) => Ok(()),
        Err(e) => Err(e),
    }
}

pub(crate) fn read(
    view: &mut dyn View,
    caller: &Caller<'_>,
    path: &str,
) -> Result<Vec<u8>, XsError> {
    Ok(readable(view, caller, path)?.value.clone())
}

pub(crate) fn directory(
    view: &mut dyn View,
    caller: &Caller<'_>,
    path: &str,
) -> Result<Vec<u8>, XsError> {
    let node = readable(view, caller, path)?;
    let mut out = Vec::new();
    for child in &node.children {
        out.extend_from_slice(child.as_bytes());
        out.push(0);
    }
    Ok(out)
}

pub(crate) fn get_perms(
    view: &mut dyn View,
    caller: &Caller<'_>,
    path: &str,
) -> Result<Vec<u8>, XsError> {
    Ok(readable(view, caller, path)?.perms.to_wire())
}

/// Creates `path` and any missing parents; the node gets `value`.
fn create(
    view: &mut dyn View,
    caller: &Caller<'_>,
    path: &str,
    value: Vec<u8>,
) -> Result<Change, XsError> {
    let mut chain = Vec::new();
    let mut at = path;
    let ancestor = loop {
        chain.push(at);
        let up = path::parent(at).ok_or(XsError::Inval)?;
        if let Some(node) = view.get(up) {
            break (up, node.clone());
        }
        at = up;
    };
    let (ancestor_path, mut ancestor_node) = ancestor;
    if !caller.may_write(&ancestor_node.perms) {
        return Err(XsError::Acces);
    }
    if !caller.privileged {
        let usage = view.owned(caller.domid);
        let bytes = chain
            .iter()
            .map(|p| node_bytes(p, 0))
            .fold(value.len(), usize::saturating_add);
        if usage.nodes.saturating_add(chain.len()) > caller.quotas.max_nodes
            || usage.bytes.saturating_add(bytes) > caller.quotas.max_node_bytes
        {
            return Err(XsError::Nospc);
        }
    }
    let mut perms = ancestor_node.perms.clone();
    if !caller.privileged {
        perms.set_owner(caller.domid);
    }
    let top = chain.last().copied().ok_or(XsError::Inval)?;
    ancestor_node.children.insert(path::basename(top).into());
    view.set(ancestor_path, ancestor_node);
    let mut value = Some(value);
    for (i, p) in chain.iter().enumerate().rev() {
        let mut node = Node::new(
            if i == 0 {
                value.take().unwrap_or_default()
            } else {
                Vec::new()
            },
            perms.clone(),
        );
        if i > 0 {
            node.children.insert(path::basename(chain[i - 1]).into());
        }
        view.set(p, node);
    }
    Ok(Change {
        path: path.into(),
        recurse: false,
        perms,
    })
}

pub(crate) fn write(
    view: &mut dyn View,
    caller: &Caller<'_>,
    path: &str,
    value: &[u8],
) -> Result<Change, XsError> {
    if !caller.privileged && value.len() > caller.quotas.max_value {
        return Err(XsError::TooBig);
    }
    match view.get(path).cloned() {
        Some(mut node) => {
            if !caller.may_write(&node.perms) {
                return Err(XsError::Acces);
            }
            // A larger value counts against its owner's bytes; checked when the
            // writer is the owner (a domain it lets write its nodes can grow them by
            // at most `max_value` each).
            let growth = value.len().saturating_sub(node.value.len());
            if !caller.privileged
                && growth > 0
                && node.perms.owner() == caller.domid
                && view.owned(caller.domid).bytes.saturating_add(growth)
                    > caller.quotas.max_node_bytes
            {
                return Err(XsError::Nospc);
            }
            node.value = value.to_vec();
            let perms = node.perms.clone();
            view.set(path, node);
            Ok(Change {
                path: path.into(),
                recurse: false,
                perms,
            })
        }
        None => create(view, caller, path, value.to_vec()),
    }
}

/// Creates `path` if absent; `None` if it already existed (no change).
pub(crate) fn mkdir(
    view: &mut dyn View,
    caller: &Caller<'_>,
    path: &str,
) -> Result<Option<Change>, XsError> {
    match view.get(path) {
        Some(node) if caller.may_write(&node.perms) => Ok(None),
        Some(_) => Err(XsError::Acces),
        None => create(view, caller, path, Vec::new()).map(Some),
    }
}

/// Removes `path` and everything below it; `None` if it was already gone but its
/// parent exists (xenstored acknowledges that).
pub(crate) fn rm(
    view: &mut dyn View,
    caller: &Caller<'_>,
    path: &str,
) -> Result<Option<Change>, XsError> {
    let parent = path::parent(path).ok_or(XsError::Inval)?;
    let Some(node) = view.get(path).cloned() else {
        let error = missing(view, caller, path);
        return if error == XsError::Noent && view.get(parent).is_some() {
            Ok(None)
        } else {
            Err(error)
        };
    };
    if !caller.may_write(&node.perms) {
        return Err(XsError::Acces);
    }
    // Every node of the subtree must be the caller's to write, not only its
    // top (stricter than Xen's xenstored): else a backend could remove its
    // device directory and recreate, with values of its own, the nodes the
    // toolstack wrote there for it to read only (`params`, `mode`).
    let mut subtree = alloc::vec![alloc::string::String::from(path)];
    let mut next = 0;
    while let Some(p) = subtree.get(next).cloned() {
        next += 1;
        if let Some(n) = view.get(&p) {
            if !caller.may_write(&n.perms) {
                return Err(XsError::Acces);
            }
            subtree.extend(n.children.iter().map(|c| path::join(&p, c)));
        }
    }
    for p in &subtree {
        view.remove(p);
    }
    if let Some(mut up) = view.get(parent).cloned() {
        up.children.remove(path::basename(path));
        view.set(parent, up);
    }
    Ok(Some(Change {
        path: path.into(),
        recurse: true,
        perms: node.perms,
    }))
}

pub(crate) fn set_perms(
    view: &mut dyn View,
    caller: &Caller<'_>,
    path: &str,
    entries: &[&[u8]],
) -> Result<Change, XsError> {
    let parsed = entries
        .iter()
        .map(|e| PermEntry::parse(e))
        .collect::<Result<Vec<_>, _>>()?;
    let perms = Perms::from_entries(parsed)?;
    let Some(mut node) = view.get(path).cloned() else {
        return Err(missing(view, caller, path));
    };
    if !caller.privileged {
        if node.perms.owner() != caller.domid {
            return Err(XsError::Acces);
        }
        if perms.entries().len() > caller.quotas.max_perms {
            return Err(XsError::Nospc);
        }
        if perms.owner() != caller.domid {
            return Err(XsError::Perm);
        }
    }
    node.perms = perms.clone();
    view.set(path, node);
    Ok(Change {
        path: path.into(),
        recurse: false,
        perms,
    })
}
