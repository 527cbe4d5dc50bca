//! [`Journal`]: what a session in a cluster must have in the shared store before a client
//! sees it, queued in order for the binary to write, and the gate that holds each frame
//! back until it is written.
//!
//! The transport knows no store. A session that has a journal (cluster mode only; a single
//! node has none and pays nothing) pushes an entry, under its routing lock so entries keep
//! the order of their event numbers, for every event it will send with an id, for the
//! requests whose answers will come on an event stream (pending until answered: an
//! instance that takes the session over answers those its predecessor left), and for a
//! request the client cancelled. The binary drains the queue in batches (one store round
//! trip per batch, however many entries; its [`Doorbell`] tells it which journals have
//! something queued, so one writer can serve every session of an instance) and reports how
//! far it got; a stream writes an
//! event only once the journal holds it ([`Gate`]), so whatever a client was sent is in the
//! store, for another instance to replay. A journal that cannot be written (the store is
//! down) is reported as written all the same: the session keeps working on its instance,
//! and only a resumption elsewhere loses what was not stored. A journal the store refuses
//! because another instance holds the session now is lost: its streams end without writing
//! anything more, so only one instance ever writes to a session's clients.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use rmcp::model::RequestId;
use tokio::sync::{Notify, watch};

use crate::event_log::EventId;

/// One thing the store must hold before a client sees what follows it.
#[derive(Debug, Clone, PartialEq)]
pub enum JournalEntry {
    /// An event, before any client is sent it.
    Event {
        /// Its stream and number.
        id: EventId,
        /// The message, as sent.
        json: Bytes,
        /// The request it answers, when it is a response: no longer pending.
        answers: Option<RequestId>,
    },
    /// Requests whose answers will come on event stream `stream`: pending until answered.
    Pending {
        /// The stream their answers go on.
        stream: u32,
        /// The requests.
        requests: Vec<RequestId>,
    },
    /// A request the client cancelled: no answer will come for it.
    Forgotten(RequestId),
}

/// Rung when a journal's queue gets its first entry since the last batch was taken: the
/// binary's writer then takes that journal's next batch. Called outside the journal's lock.
pub type Doorbell = Box<dyn Fn() + Send + Sync>;

/// A session's queue of entries for the store, and how far the store holds them.
pub struct Journal {
    queue: Mutex<Queue>,
    wake: Notify,
    doorbell: Option<Doorbell>,
    /// The number of the last event the store holds (or that needs no storing).
    written: watch::Sender<u64>,
    /// Another instance holds the session now: nothing more may be written to its clients.
    lost: AtomicBool,
}

#[derive(Debug, Default)]
struct Queue {
    entries: Vec<JournalEntry>,
    /// The number the last entry queued was given.
    last: u64,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("written", &*self.written.borrow()).finish_non_exhaustive()
    }
}

impl Journal {
    /// An empty journal of a session whose events so far, up to `written`, are stored,
    /// drained by [`Journal::next_batch`].
    pub fn new(written: u64) -> Self {
        Self {
            queue: Mutex::default(),
            wake: Notify::new(),
            doorbell: None,
            written: watch::Sender::new(written),
            lost: AtomicBool::new(false),
        }
    }

    /// [`Journal::new`], ringing `doorbell` each time its queue stops being empty: for a
    /// writer that drains many journals with [`Journal::take_batch`].
    pub fn with_doorbell(written: u64, doorbell: Doorbell) -> Self {
        Self { doorbell: Some(doorbell), ..Self::new(written) }
    }

    /// Queues an entry numbered `seq` (an event's number; the number given to a pending
    /// note). Called in the order of the numbers.
    pub(crate) fn push(&self, entry: JournalEntry, seq: u64) {
        let mut queue = self.queue();
        let first = queue.entries.is_empty();
        queue.entries.push(entry);
        queue.last = queue.last.max(seq);
        drop(queue);
        match &self.doorbell {
            // Once per batch: the writer takes everything queued until then at once.
            Some(ring) if first => ring(),
            Some(_) => {}
            None => self.wake.notify_one(),
        }
    }

    /// The entries queued since the last batch, oldest first, and the number to report
    /// ([`Journal::written_through`]) once they are written; waits while there are none.
    pub async fn next_batch(&self) -> (Vec<JournalEntry>, u64) {
        loop {
            let notified = self.wake.notified();
            if let Some(batch) = self.take_batch() {
                return batch;
            }
            notified.await;
        }
    }

    /// The entries queued since the last batch, if any, without waiting.
    pub fn take_batch(&self) -> Option<(Vec<JournalEntry>, u64)> {
        let mut queue = self.queue();
        (!queue.entries.is_empty()).then(|| (std::mem::take(&mut queue.entries), queue.last))
    }

    /// The store holds every entry up to number `seq` (or gave up on them).
    pub fn written_through(&self, seq: u64) {
        self.written.send_if_modified(|written| {
            let advanced = seq > *written;
            *written = (*written).max(seq);
            advanced
        });
    }

    /// No more writes: every stream waiting on the journal goes on (the session ended).
    pub fn close(&self) {
        self.written_through(u64::MAX);
    }

    /// Another instance holds the session now: every stream waiting on the journal ends
    /// without writing what it waited to write, and so does every later one.
    pub fn lose(&self) {
        self.lost.store(true, Ordering::SeqCst);
        self.close();
    }

    /// A gate for one stream's frames.
    pub(crate) fn gate(self: &std::sync::Arc<Self>) -> Gate {
        Gate { journal: self.clone(), written: self.written.subscribe(), waiting: None }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        // Plain data, never left half-written by a panic.
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Holds a stream's frames back until the journal holds them.
pub struct Gate {
    journal: std::sync::Arc<Journal>,
    written: watch::Receiver<u64>,
    waiting: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate").field("written", &*self.written.borrow()).finish_non_exhaustive()
    }
}

impl Gate {
    /// Ready once the journal holds every entry up to number `seq`: `true` to write the
    /// frame, `false` when the session was lost to another instance (write nothing more).
    pub(crate) fn poll_written(&mut self, seq: u64, cx: &mut Context<'_>) -> Poll<bool> {
        if *self.written.borrow() >= seq {
            self.waiting = None;
            return Poll::Ready(!self.journal.lost.load(Ordering::SeqCst));
        }
        let waiting = self.waiting.get_or_insert_with(|| {
            let mut written = self.written.clone();
            // A journal dropped without closing releases its gates too.
            Box::pin(async move { drop(written.wait_for(|w| *w >= seq).await) })
        });
        match waiting.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.waiting = None;
                Poll::Ready(!self.journal.lost.load(Ordering::SeqCst))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn event(seq: u64) -> JournalEntry {
        JournalEntry::Event { id: EventId { stream: 0, seq }, json: Bytes::from_static(b"{}"), answers: None }
    }

    #[tokio::test]
    async fn batches_come_out_in_order_and_gates_open_when_written() {
        let journal = std::sync::Arc::new(Journal::new(10));
        journal.push(event(11), 11);
        journal.push(event(12), 12);
        let (batch, last) = journal.next_batch().await;
        assert_eq!((batch, last), (vec![event(11), event(12)], 12));
        let mut gate = journal.gate();
        let waiter = tokio::spawn(async move { std::future::poll_fn(|cx| gate.poll_written(12, cx)).await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "not written yet");
        journal.written_through(12);
        tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("released").expect("task");
        let mut gate = journal.gate();
        let old = std::future::poll_fn(|cx| Poll::Ready(gate.poll_written(5, cx))).await;
        assert_eq!(old, Poll::Ready(true), "old events pass");
    }

    #[tokio::test]
    async fn closing_releases_every_gate_and_losing_stops_every_stream() {
        let journal = std::sync::Arc::new(Journal::new(0));
        let mut gate = journal.gate();
        journal.close();
        assert_eq!(std::future::poll_fn(|cx| Poll::Ready(gate.poll_written(99, cx))).await, Poll::Ready(true));
        let lost = std::sync::Arc::new(Journal::new(0));
        let mut waiting = lost.gate();
        let waiter = tokio::spawn(async move { std::future::poll_fn(|cx| waiting.poll_written(1, cx)).await });
        lost.lose();
        assert!(!waiter.await.expect("task"), "a waiting frame is not written");
        let mut later = lost.gate();
        assert_eq!(std::future::poll_fn(|cx| Poll::Ready(later.poll_written(1, cx))).await, Poll::Ready(false));
    }

    #[test]
    fn the_doorbell_rings_once_per_batch() {
        let rings = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = rings.clone();
        let journal = Journal::with_doorbell(
            0,
            Box::new(move || {
                counted.fetch_add(1, Ordering::SeqCst);
            }),
        );
        journal.push(event(1), 1);
        journal.push(event(2), 2);
        assert_eq!(rings.load(Ordering::SeqCst), 1, "rung when the queue stopped being empty, not again");
        assert_eq!(journal.take_batch(), Some((vec![event(1), event(2)], 2)));
        journal.push(event(3), 3);
        assert_eq!(rings.load(Ordering::SeqCst), 2, "rung again for the next batch");
        assert_eq!(journal.take_batch(), Some((vec![event(3)], 3)));
        assert_eq!(journal.take_batch(), None);
    }
}
