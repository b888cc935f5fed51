//! Watches: a connection's registrations, and the routing of changes to them. An event
//! reaches a watcher only if it may read the changed node (checked against the node's
//! permissions at the time of the change), and goes into the watcher's bounded queue:
//! when that is full the event is dropped and counted, never queued without bound.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use crate::path;
use crate::tree::Change;
use crate::wire::{watch_event, Message, PAYLOAD_MAX};
use crate::DomId;

/// One registration.
#[derive(Clone, Debug)]
pub(crate) struct Watch {
    /// Absolute path, or a special `@` path.
    pub(crate) path: String,
    pub(crate) token: Vec<u8>,
    pub(crate) relative: bool,
}

/// A connection's pending events.
#[derive(Debug, Default)]
pub(crate) struct EventQueue {
    pub(crate) queue: VecDeque<Message>,
    pub(crate) dropped: u64,
}

impl EventQueue {
    /// Queues `event`, or drops and counts it if the queue is full or the event is
    /// larger than a client may take (a long path under a watch with a long token).
    pub(crate) fn push(&mut self, event: Message, limit: usize) {
        if self.queue.len() >= limit || event.payload.len() > PAYLOAD_MAX {
            self.dropped += 1;
        } else {
            self.queue.push_back(event);
        }
    }
}

/// The path a watch reports for `change`, if the watch covers it: the changed path if
/// it lies at or below the watch, or the watch's own path if an rm took it away.
fn matched(watch: &Watch, change: &Change) -> Option<String> {
    if path::is_at_or_below(&change.path, &watch.path) {
        Some(change.path.clone())
    } else if change.recurse && path::is_at_or_below(&watch.path, &change.path) {
        Some(watch.path.clone())
    } else {
        None
    }
}

/// Queues the events `change` raises for one connection's watches.
pub(crate) fn route(
    watches: &[Watch],
    domid: DomId,
    privileged: bool,
    change: &Change,
    events: &mut EventQueue,
    limit: usize,
) {
    if !privileged && !change.perms.access_for(domid).can_read() {
        return;
    }
    for watch in watches {
        if let Some(hit) = matched(watch, change) {
            let shown = if watch.relative {
                path::relative_to_home(domid, &hit)
            } else {
                hit
            };
            events.push(watch_event(shown.as_bytes(), &watch.token), limit);
        }
    }
}

/// Queues the events a special path (`@introduceDomain`, `@releaseDomain`) raises.
pub(crate) fn route_special(
    watches: &[Watch],
    special: &str,
    events: &mut EventQueue,
    limit: usize,
) {
    for watch in watches.iter().filter(|w| w.path == special) {
        events.push(watch_event(special.as_bytes(), &watch.token), limit);
    }
}
