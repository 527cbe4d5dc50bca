//! The writer of an instance's journals: one task that, in each round, takes what every
//! session held here queued since the last round and writes it to the store in one round
//! trip (one script call for up to 64 sessions, each fenced on its own: `append`), rather
//! than one task and one store round trip per session. While a round is on its way, what the sessions queue next waits for the next
//! round, so the busier the instance the more sessions share a round trip.
//!
//! A session's entries keep their order: only this task takes them, one round at a time.
//! The record of a session created here is written by this task too, in the same script
//! call as the first batch after its handshake (so a legacy session's `initialize` answer
//! costs no round trip of its own, and the records of sessions set up at once share one);
//! its entries wait until then, and a Streamable HTTP session's `initialize` answer, which
//! carries its id, leaves once that round is written.
//! A request's pending note does not start a round ([`Ring::Soon`]): it goes with the
//! next one, usually with the request's own answer, which settles it in the same batch, so a
//! request answered at once costs one round trip, not two (its acknowledgement waits for
//! the round that carries its note, and asks for one after [`NOTE_GRACE`]).
//! The task runs while a journal is live here, and stops once the last one has ended (so it
//! ends at shutdown); the next journal starts it again.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use dashmap::DashMap;
use mcpgw_transport::SessionId;
#[cfg(doc)]
use mcpgw_transport::journal::NOTE_GRACE;
use mcpgw_transport::journal::{Journal, Ring};
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Cluster;
use super::store::{JournalBatch, NewRecord};

/// The journals with something to write, and whether the task runs.
#[derive(Default)]
pub(super) struct Writer {
    state: Mutex<State>,
    wake: Notify,
    /// Journals not yet ended and written for the last time.
    live: AtomicUsize,
    /// The journals of the sessions created here whose records are not written yet.
    unrecorded: DashMap<SessionId, Weak<Slot>>,
}

#[derive(Default)]
struct State {
    /// Rung since the last round, each once per batch (and once more when it ends).
    ready: Vec<Arc<Slot>>,
    /// Rung with notes only since the last round: they go with the next one, which they
    /// do not start ([`Ring::Soon`]).
    soon: Vec<Arc<Slot>>,
    running: bool,
}

/// One session's journal, as the writer keeps it.
struct Slot {
    id: SessionId,
    /// The epoch this instance holds the session at.
    epoch: u64,
    journal: Arc<Journal>,
    /// The session ended: its last batch goes in the next round, then the journal closes.
    ended: AtomicBool,
    /// Another instance holds the session now: nothing more of it is written.
    lost: AtomicBool,
    /// Written for the last time (it can be rung as ended twice in one round).
    closed: AtomicBool,
    /// Whether its record is in the store: [`WAITING`], [`TO_WRITE`], [`RECORDED`] or
    /// [`UNRECORDED`].
    record: AtomicU8,
    /// The record of a session created here, handed over at its handshake, and who waits
    /// for it to be written.
    new_record: Mutex<Option<(NewRecord, Option<oneshot::Sender<bool>>)>>,
    /// Rung while its record was not handed over yet: entries wait in its queue, and no
    /// entry queued after them rings again.
    deferred: AtomicBool,
}

/// The session's record is not written yet: its entries wait.
const WAITING: u8 = 0;
/// The record is written: its entries are written as they come.
const RECORDED: u8 = 1;
/// The record could not be written: its entries are let through unwritten.
const UNRECORDED: u8 = 2;
/// The record is handed over: it goes in the next round, with the entries so far.
const TO_WRITE: u8 = 3;

impl Writer {
    fn ring(&self, slot: Arc<Slot>) {
        self.state().ready.push(slot);
        self.wake.notify_one();
    }

    fn ring_soon(&self, slot: Arc<Slot>) {
        self.state().soon.push(slot);
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Plain data, never left half-written by a panic.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Slot {
    fn new_record(&self) -> std::sync::MutexGuard<'_, Option<(NewRecord, Option<oneshot::Sender<bool>>)>> {
        // Plain data, never left half-written by a panic.
        self.new_record.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Cluster {
    /// Hands the record of session `id`, created here, to the writer: it is written in the
    /// next round, before the entries queued so far, and `written` (if any) is told whether
    /// it was. Without `written`, the round starts once an entry is queued (one may be
    /// already: a legacy session's record is handed over once its `initialize` answer is),
    /// so that the record and the entries go in one round trip. A session already over, or
    /// not journaled here, is not recorded.
    pub(crate) fn create(&self, id: SessionId, record: NewRecord, written: Option<oneshot::Sender<bool>>) {
        let Some(slot) = self.writer.unrecorded.remove(&id).and_then(|(_, slot)| slot.upgrade()) else {
            if let Some(written) = written {
                let _ = written.send(false);
            }
            return;
        };
        let waited = written.is_some();
        *slot.new_record() = Some((record, written));
        slot.record.store(TO_WRITE, Ordering::SeqCst);
        // The writer sets `deferred` and then looks at the record's state again, so one of
        // the two rings when entries wait.
        if waited || slot.deferred.load(Ordering::SeqCst) {
            self.writer.ring(slot);
        }
    }

    /// A journal for session `id`, held here at `epoch`, whose events up to `written` are
    /// stored: this instance's writer writes it until `ended` is cancelled (the session
    /// ended), and then once more. Spawns the writer on `tasks` when it is not running.
    pub(crate) fn journal(
        self: &Arc<Self>,
        id: SessionId,
        epoch: u64,
        written: u64,
        ended: CancellationToken,
        tasks: &TaskTracker,
    ) -> Arc<Journal> {
        let writer = Arc::downgrade(&self.writer);
        let slot = Arc::new_cyclic(|me: &Weak<Slot>| {
            let me = me.clone();
            let doorbell = Box::new(move |ring| {
                if let (Some(writer), Some(slot)) = (writer.upgrade(), me.upgrade()) {
                    match ring {
                        Ring::Now => writer.ring(slot),
                        Ring::Soon => writer.ring_soon(slot),
                    }
                }
            });
            Slot {
                id,
                epoch,
                journal: Arc::new(Journal::with_doorbell(written, doorbell)),
                ended: AtomicBool::new(false),
                lost: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                record: AtomicU8::new(if epoch == 0 { WAITING } else { RECORDED }),
                new_record: Mutex::new(None),
                deferred: AtomicBool::new(false),
            }
        });
        if epoch == 0 {
            self.writer.unrecorded.insert(id, Arc::downgrade(&slot));
        }
        let journal = slot.journal.clone();
        // Counted before the writer can look: a writer about to stop sees it, or stops
        // before this one starts another.
        self.writer.live.fetch_add(1, Ordering::SeqCst);
        let writer = self.writer.clone();
        tasks.spawn(async move {
            ended.cancelled().await;
            slot.ended.store(true, Ordering::SeqCst);
            writer.ring(slot);
        });
        let start = !std::mem::replace(&mut self.writer.state().running, true);
        if start {
            tasks.spawn(self.clone().write_journals());
        }
        journal
    }

    /// Writes the journals rung, a round at a time, until none is live. What cannot be
    /// written because the store is down is let through all the same, so the sessions keep
    /// working here (while the store is known to be down, nothing is sent to it); once
    /// another instance holds a session, nothing more is written to its clients from here.
    async fn write_journals(self: Arc<Self>) {
        let mut failing = false;
        loop {
            let notified = self.writer.wake.notified();
            let ready = {
                let mut state = self.writer.state();
                if state.ready.is_empty() && self.writer.live.load(Ordering::SeqCst) == 0 {
                    // Notes of sessions all ended, and so written (their ends ring now).
                    state.soon.clear();
                    state.running = false;
                    return;
                }
                let mut ready = std::mem::take(&mut state.ready);
                if !ready.is_empty() {
                    // Their notes ride along.
                    ready.append(&mut state.soon);
                }
                ready
            };
            if ready.is_empty() {
                notified.await;
                continue;
            }
            let mut round: Vec<InRound> = Vec::new();
            let mut batches = Vec::new();
            for slot in ready {
                // Whether it ended, read before its batch is taken: a session that ended
                // by then queued all it will, and it is all in this batch.
                let ended = slot.ended.load(Ordering::SeqCst);
                let lost = slot.lost.load(Ordering::SeqCst);
                let mut record = slot.record.load(Ordering::SeqCst);
                if record == WAITING && !ended {
                    // Rung again once its record is handed over (by `create`, or here when
                    // it was handed over meanwhile).
                    slot.deferred.store(true, Ordering::SeqCst);
                    if slot.record.load(Ordering::SeqCst) == TO_WRITE {
                        self.writer.ring(slot);
                    }
                    continue;
                }
                let mut create = None;
                if record == TO_WRITE {
                    // Taken once; a slot rung twice in one round finds it gone and its
                    // batch goes after the one that carries it.
                    if let Some((new, written)) = slot.new_record().take() {
                        if ended {
                            // Over before its record went out: nothing to take over.
                            if let Some(written) = written {
                                let _ = written.send(false);
                            }
                            slot.record.store(UNRECORDED, Ordering::SeqCst);
                            record = UNRECORDED;
                        } else {
                            create = Some((new, written));
                        }
                    }
                }
                let batch = if lost { None } else { slot.journal.take_batch() };
                if record != RECORDED && record != TO_WRITE {
                    // Nothing to write it against: let it through.
                    if let Some((_, through)) = batch {
                        slot.journal.written_through(through);
                    }
                    if ended {
                        self.writer.unrecorded.remove_if(&slot.id, |_, w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(&slot)));
                        round.push(InRound::closing(slot));
                    }
                } else if create.is_some() || batch.is_some() {
                    let (entries, through) =
                        batch.map_or((Vec::new(), None), |(entries, through)| (entries, Some(through)));
                    let (new, written) = create.map_or((None, None), |(new, written)| (Some(new), written));
                    let creates = new.is_some();
                    batches.push(JournalBatch { id: slot.id, epoch: slot.epoch, entries, create: new });
                    round.push(InRound { slot, through, ended, in_call: true, creates, written });
                } else if ended {
                    round.push(InRound::closing(slot));
                }
            }
            // While the store is known to be down, nothing waits for it: streams go on
            // unjournaled until the once-a-second check finds it back.
            let written = if batches.is_empty() || !self.store_up() {
                None
            } else {
                match self.store.append(&batches).await {
                    Ok(held) => {
                        failing = false;
                        Some(held)
                    }
                    Err(e) => {
                        self.metrics.store_error("journal");
                        if !failing {
                            tracing::warn!(error = %e, "could not journal the sessions' events; another instance cannot replay them");
                            failing = true;
                        }
                        None
                    }
                }
            };
            let mut held = written.into_iter().flatten();
            for entry in round {
                let InRound { slot, through, ended, in_call, creates, written } = entry;
                let held_here = if in_call { held.next() } else { None };
                if creates {
                    self.created(&slot, held_here.is_some(), written);
                }
                if let Some(through) = through {
                    if held_here == Some(false) {
                        // Taken over meanwhile (this instance was paused, or cut off): its
                        // streams here end without another frame; the fencing check ends
                        // the session.
                        tracing::info!(session = %slot.id, "the session was taken over by another instance; its streams here end");
                        slot.lost.store(true, Ordering::SeqCst);
                        slot.journal.lose();
                    } else {
                        slot.journal.written_through(through);
                    }
                }
                if ended && !slot.closed.swap(true, Ordering::SeqCst) {
                    // Its streams write the frames already on their way, never one the store
                    // does not have.
                    slot.journal.close();
                    self.writer.live.fetch_sub(1, Ordering::SeqCst);
                    self.release_unheld(&slot).await;
                }
            }
        }
    }

    /// The round that carried the record of `slot`'s session, created here, is over:
    /// `recorded`, it is held here from now on; not, its entries are let through unwritten
    /// (it works here; no other instance can take it over).
    fn created(&self, slot: &Slot, recorded: bool, written: Option<oneshot::Sender<bool>>) {
        if recorded {
            self.hold(slot.id, 0);
            slot.record.store(RECORDED, Ordering::SeqCst);
        } else {
            slot.record.store(UNRECORDED, Ordering::SeqCst);
            self.metrics.store_error("record");
            tracing::warn!(session = %slot.id, "could not record the session; no other instance can take it over");
        }
        if let Some(written) = written {
            let _ = written.send(recorded);
        }
    }

    /// A session created here that ended while the round with its record was out was not
    /// held yet when it ended, so its end did not release the record: released here.
    async fn release_unheld(&self, slot: &Slot) {
        if slot.epoch != 0 || slot.record.load(Ordering::SeqCst) != RECORDED {
            return;
        }
        if let Some(epoch) = self.forget(slot.id) {
            self.release(slot.id, epoch).await;
        }
    }
}

/// A slot in the round being written.
struct InRound {
    slot: Arc<Slot>,
    /// Its entries up to this number are in the round.
    through: Option<u64>,
    /// It ended before its batch was taken.
    ended: bool,
    /// It has a batch in the script call (and so a result).
    in_call: bool,
    /// Its record is in the batch.
    creates: bool,
    /// Who waits for the record to be written.
    written: Option<oneshot::Sender<bool>>,
}

impl InRound {
    /// An ended slot with nothing to write: it closes after the round.
    fn closing(slot: Arc<Slot>) -> Self {
        Self { slot, through: None, ended: true, in_call: false, creates: false, written: None }
    }
}
