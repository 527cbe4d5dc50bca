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
//! far it got; a frame routed to an open
//! stream is held here, with its room on the stream reserved, until the store has its event
//! (`Journal::hold`), and a stream writes an event only once the journal holds it ([`Gate`]),
//! so whatever a client was sent is in the store, for another instance to replay. A journal that cannot be written (the store is
//! down) is reported as written all the same: the session keeps working on its instance,
//! and only a resumption elsewhere loses what was not stored. A journal the store refuses
//! because another instance holds the session now is lost: its streams end without writing
//! anything more, so only one instance ever writes to a session's clients.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use rmcp::model::RequestId;
use tokio::sync::mpsc::OwnedPermit;
use tokio::sync::{Notify, watch};

use crate::event_log::EventId;
use crate::outgoing::Outgoing;

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

/// Rung when a journal's queue gets its first entry since the last batch was taken, and
/// again when an event joins a queue of notes: the binary's writer then takes that
/// journal's next batch ([`Ring::Now`]), or takes it with the next round it writes
/// ([`Ring::Soon`]). Called outside the journal's lock.
pub type Doorbell = Box<dyn Fn(Ring) + Send + Sync>;

/// How soon a journal's queue must be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ring {
    /// An event (or a cancellation) is queued: a client waits to be sent it.
    Now,
    /// Only notes of pending requests are queued. What waits on a note is the request's
    /// acknowledgement (a legacy POST's `202`, a reply stream's priming event), and a
    /// request answered at once settles its note in the same batch as its answer, so the
    /// note goes with the next round the writer makes for any journal; a waiter left
    /// waiting [`NOTE_GRACE`] rings [`Ring::Now`] itself. At low load this spares the
    /// writer a wake-up and a round trip of its own per request.
    Soon,
}

/// How long an acknowledgement waits for its request's note to go with another round
/// before it asks the writer for one of its own.
pub const NOTE_GRACE: Duration = Duration::from_millis(1);

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
    /// The doorbell rang [`Ring::Now`] for these entries.
    rung_now: bool,
    /// Frames routed to open streams whose events the store does not hold yet, in the
    /// order of their numbers, each with the room reserved for it on its stream.
    held: VecDeque<Held>,
}

/// A frame held until the store holds its event ([`Journal::hold`]).
#[derive(Debug)]
struct Held {
    seq: u64,
    room: OwnedPermit<Outgoing>,
    out: Outgoing,
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
        let now = !matches!(entry, JournalEntry::Pending { .. });
        let mut queue = self.queue();
        // At most twice per batch (a first note, then an event): the writer takes
        // everything queued until then at once.
        let ring = if queue.entries.is_empty() {
            Some(if now { Ring::Now } else { Ring::Soon })
        } else {
            (now && !queue.rung_now).then_some(Ring::Now)
        };
        queue.rung_now |= now;
        queue.entries.push(entry);
        queue.last = queue.last.max(seq);
        drop(queue);
        match (&self.doorbell, ring) {
            (Some(doorbell), Some(ring)) => doorbell(ring),
            (Some(_), None) => {}
            (None, _) => self.wake.notify_one(),
        }
    }

    /// Whether the queue holds notes only, which the writer takes when it next writes.
    fn notes_only(&self) -> bool {
        let queue = self.queue();
        !queue.entries.is_empty() && !queue.rung_now
    }

    /// Rings [`Ring::Now`] for a queue of notes only: an acknowledgement waited long
    /// enough for another round to carry them.
    fn hurry(&self) {
        let mut queue = self.queue();
        if queue.entries.is_empty() || queue.rung_now {
            return;
        }
        queue.rung_now = true;
        drop(queue);
        if let Some(doorbell) = &self.doorbell {
            doorbell(Ring::Now);
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
        queue.rung_now = false;
        (!queue.entries.is_empty()).then(|| (std::mem::take(&mut queue.entries), queue.last))
    }

    /// The store holds every entry up to number `seq` (or gave up on them): the frames
    /// held for them go to their streams, then whatever waits on the journal goes on.
    pub fn written_through(&self, seq: u64) {
        // Under the queue's lock, the held frames first: a frame that waited on the gate
        // (its stream was full when it was routed) is sent only after them, so each
        // stream gets its frames in order.
        let mut queue = self.queue();
        let due = queue.held.iter().take_while(|h| h.seq <= seq).count();
        let lost = self.lost.load(Ordering::SeqCst);
        for held in queue.held.drain(..due) {
            if !lost {
                held.room.send(held.out);
            }
        }
        self.written.send_if_modified(|written| {
            let advanced = seq > *written;
            *written = (*written).max(seq);
            advanced
        });
    }

    /// Sends `out`, event number `seq`, into the room reserved for it on its stream once
    /// the store holds that event (at once if it does), or never if the session is lost
    /// to another instance. Its stream is woken once, with a frame it can write, rather
    /// than once to find the frame not stored and again when it is.
    pub(crate) fn hold(&self, seq: u64, room: OwnedPermit<Outgoing>, out: Outgoing) {
        let mut queue = self.queue();
        if self.lost.load(Ordering::SeqCst) {
            return;
        }
        if queue.held.is_empty() && *self.written.borrow() >= seq {
            drop(queue);
            room.send(out);
            return;
        }
        queue.held.push_back(Held { seq, room, out });
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
            let journal = self.journal.clone();
            Box::pin(async move {
                // A journal dropped without closing releases its gates too.
                let stored = written.wait_for(|w| *w >= seq);
                tokio::pin!(stored);
                if journal.notes_only() {
                    // A note waits for another round to carry it, for a while ([`Ring::Soon`]).
                    tokio::select! {
                        biased;
                        _ = &mut stored => return,
                        () = tokio::time::sleep(NOTE_GRACE) => journal.hurry(),
                    }
                }
                drop(stored.await);
            })
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

    fn pending(n: i64) -> JournalEntry {
        JournalEntry::Pending { stream: 0, requests: vec![RequestId::Number(n)] }
    }

    /// A journal whose doorbell's rings are kept, in order.
    fn recorded() -> (std::sync::Arc<Journal>, std::sync::Arc<Mutex<Vec<Ring>>>) {
        let rings = std::sync::Arc::new(Mutex::new(Vec::new()));
        let kept = rings.clone();
        let doorbell = Box::new(move |ring| kept.lock().expect("rings").push(ring));
        (std::sync::Arc::new(Journal::with_doorbell(0, doorbell)), rings)
    }

    #[test]
    fn a_note_rings_soon_and_an_event_after_it_rings_now() {
        let (journal, rings) = recorded();
        journal.push(pending(1), 1);
        journal.push(pending(2), 2);
        assert_eq!(*rings.lock().expect("rings"), [Ring::Soon], "notes alone do not start a round");
        journal.push(event(3), 3);
        journal.push(event(4), 4);
        assert_eq!(*rings.lock().expect("rings"), [Ring::Soon, Ring::Now], "the first event asks for one");
        assert_eq!(journal.take_batch().map(|(batch, last)| (batch.len(), last)), Some((4, 4)));
        journal.push(event(5), 5);
        journal.push(pending(6), 6);
        assert_eq!(*rings.lock().expect("rings"), [Ring::Soon, Ring::Now, Ring::Now]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_acknowledgement_waiting_on_a_note_asks_for_a_round_after_the_grace() {
        let (journal, rings) = recorded();
        journal.push(pending(1), 1);
        let mut gate = journal.gate();
        let acknowledged = tokio::spawn(async move { std::future::poll_fn(|cx| gate.poll_written(1, cx)).await });
        tokio::time::sleep(NOTE_GRACE / 2).await;
        assert_eq!(*rings.lock().expect("rings"), [Ring::Soon], "within the grace the note waits for another round");
        tokio::time::sleep(NOTE_GRACE).await;
        assert_eq!(*rings.lock().expect("rings"), [Ring::Soon, Ring::Now], "then it asks for one");
        assert!(!acknowledged.is_finished(), "not written yet");
        assert!(journal.take_batch().is_some());
        journal.written_through(1);
        assert!(acknowledged.await.expect("task"), "acknowledged once written");

        // A note queued behind an event waits for no grace: the event rang.
        journal.push(event(2), 2);
        journal.push(pending(3), 3);
        let mut gate = journal.gate();
        let waiting = tokio::spawn(async move { std::future::poll_fn(|cx| gate.poll_written(3, cx)).await });
        tokio::time::sleep(NOTE_GRACE * 3).await;
        assert_eq!(*rings.lock().expect("rings"), [Ring::Soon, Ring::Now, Ring::Now], "no ring of its own");
        journal.written_through(3);
        assert!(waiting.await.expect("task"));
    }

    #[test]
    fn the_doorbell_rings_once_per_batch() {
        let rings = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = rings.clone();
        let journal = Journal::with_doorbell(
            0,
            Box::new(move |_| {
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
