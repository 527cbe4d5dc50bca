//! The writer of an instance's journals: one task that, in each round, takes what every
//! session held here queued since the last round and writes it to the store in one round
//! trip (one script call for up to 64 sessions, each fenced on its own: `append`), rather
//! than one task and one store round trip per session. While a round is on its way, what the sessions queue next waits for the next
//! round, so the busier the instance the more sessions share a round trip.
//!
//! A session's entries keep their order: only this task takes them, one round at a time.
//! Those of a session created here wait until its record is in the store (the script that
//! writes them checks the record), which is before the answer to its `initialize` leaves.
//! The task runs while a journal is live here, and stops once the last one has ended (so it
//! ends at shutdown); the next journal starts it again.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use dashmap::DashMap;
use mcpgw_transport::SessionId;
use mcpgw_transport::journal::Journal;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Cluster;
use super::store::JournalBatch;

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
    /// Whether its record is in the store: [`WAITING`], [`RECORDED`] or [`UNRECORDED`].
    record: AtomicU8,
}

/// The session's record is not written yet: its entries wait.
const WAITING: u8 = 0;
/// The record is written: its entries are written as they come.
const RECORDED: u8 = 1;
/// The record could not be written: its entries are let through unwritten.
const UNRECORDED: u8 = 2;

impl Writer {
    fn ring(&self, slot: Arc<Slot>) {
        self.state().ready.push(slot);
        self.wake.notify_one();
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Plain data, never left half-written by a panic.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Cluster {
    /// The record of session `id`, created here, is in the store (`true`), or could not be
    /// written: its journal's entries go on, written or let through.
    pub(crate) fn recorded(&self, id: SessionId, written: bool) {
        let Some((_, slot)) = self.writer.unrecorded.remove(&id) else { return };
        let Some(slot) = slot.upgrade() else { return };
        slot.record.store(if written { RECORDED } else { UNRECORDED }, Ordering::SeqCst);
        self.writer.ring(slot);
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
            let doorbell = Box::new(move || {
                if let (Some(writer), Some(slot)) = (writer.upgrade(), me.upgrade()) {
                    writer.ring(slot);
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
                    state.running = false;
                    return;
                }
                std::mem::take(&mut state.ready)
            };
            if ready.is_empty() {
                notified.await;
                continue;
            }
            let mut round = Vec::new();
            let mut batches = Vec::new();
            for slot in ready {
                // Whether it ended, read before its batch is taken: a session that ended
                // by then queued all it will, and it is all in this batch.
                let ended = slot.ended.load(Ordering::SeqCst);
                let lost = slot.lost.load(Ordering::SeqCst);
                let record = slot.record.load(Ordering::SeqCst);
                if record == WAITING && !ended {
                    // Rung again once its record is written.
                    continue;
                }
                let batch = if lost { None } else { slot.journal.take_batch() };
                if record != RECORDED {
                    // Nothing to write it against: let it through.
                    if let Some((_, through)) = batch {
                        slot.journal.written_through(through);
                    }
                    if ended {
                        self.writer.unrecorded.remove_if(&slot.id, |_, w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(&slot)));
                        round.push((slot, None, true));
                    }
                } else if let Some((entries, through)) = batch {
                    batches.push(JournalBatch { id: slot.id, epoch: slot.epoch, entries });
                    round.push((slot.clone(), Some(through), ended));
                } else if ended {
                    round.push((slot, None, true));
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
            for (slot, through, ended) in round {
                if let Some(through) = through {
                    if held.next() == Some(false) {
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
                }
            }
        }
    }
}
