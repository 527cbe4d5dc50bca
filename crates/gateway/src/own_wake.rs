//! A connection's wake-ups of itself, taken in place.
//!
//! hyper serves a request in the connection's own task, and wakes that task from inside
//! its own poll: taking the request body out of hyper's body channel wakes the sender,
//! which is the connection (`hyper::body::chan`). tokio treats a task woken while it runs
//! as one that yielded: it goes to the back of the run queue and an idle worker is woken
//! to take it (a futex or eventfd write, and a context switch on each side). With one
//! request in flight that was one needless thread wake-up per request, both workers
//! switching about once per request (measured with `sched:sched_waking` at one client).
//!
//! [`OwnWakes`] polls the connection with a waker of its own: a wake that arrives while
//! the connection is being polled (from this thread or another) is answered by polling it
//! again at once, up to [`AGAIN`] times per poll, after which the wake is passed on as
//! before (a busy connection still yields to the others); a wake that arrives between
//! polls goes to the task's waker. No wake is lost: the state is set before the poll and
//! checked after it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures::task::AtomicWaker;

/// Wakes taken in place per poll before the task yields as tokio would have it.
const AGAIN: u32 = 4;

/// Not being polled: a wake goes to the task.
const IDLE: u8 = 0;
/// Being polled, not woken yet.
const POLLING: u8 = 1;
/// Woken while being polled: poll again.
const WOKEN: u8 = 2;

struct Shared {
    state: AtomicU8,
    task: AtomicWaker,
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        match self.state.compare_exchange(POLLING, WOKEN, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) | Err(WOKEN) => {}
            Err(_) => self.task.wake(),
        }
    }
}

pin_project_lite::pin_project! {
    /// `inner`, polled again in place when it wakes itself (module doc).
    pub(crate) struct OwnWakes<F> {
        #[pin]
        inner: F,
        shared: Arc<Shared>,
        waker: Waker,
    }
}

impl<F> OwnWakes<F> {
    pub(crate) fn new(inner: F) -> Self {
        let shared = Arc::new(Shared { state: AtomicU8::new(IDLE), task: AtomicWaker::new() });
        let waker = Waker::from(shared.clone());
        Self { inner, shared, waker }
    }
}

impl<F: Future> Future for OwnWakes<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        this.shared.task.register(cx.waker());
        let mut own = Context::from_waker(this.waker);
        for _ in 0..=AGAIN {
            this.shared.state.store(POLLING, Ordering::Release);
            if let Poll::Ready(output) = this.inner.as_mut().poll(&mut own) {
                this.shared.state.store(IDLE, Ordering::Release);
                return Poll::Ready(output);
            }
            if this.shared.state.compare_exchange(POLLING, IDLE, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                return Poll::Pending;
            }
        }
        // Woken again every time: let the other tasks run first.
        this.shared.state.store(IDLE, Ordering::Release);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// The task's waker: counts its wakes.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    impl Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Wakes itself on each of its first `times` polls, then stays pending and keeps the
    /// last waker it was given.
    struct SelfWaking {
        times: usize,
        polls: usize,
        kept: Arc<Mutex<Option<Waker>>>,
    }

    impl Future for SelfWaking {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls += 1;
            *self.kept.lock().expect("lock") = Some(cx.waker().clone());
            if self.polls <= self.times {
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        }
    }

    fn poll_once<F: Future + Unpin>(future: &mut OwnWakes<F>, task: &Arc<Counting>) -> Poll<F::Output> {
        let waker = Waker::from(task.clone());
        Pin::new(future).poll(&mut Context::from_waker(&waker))
    }

    fn self_waking(times: usize) -> (OwnWakes<SelfWaking>, Arc<Mutex<Option<Waker>>>) {
        let kept = Arc::new(Mutex::new(None));
        (OwnWakes::new(SelfWaking { times, polls: 0, kept: kept.clone() }), kept)
    }

    #[test]
    fn a_wake_from_inside_the_poll_is_answered_by_polling_again_not_by_waking_the_task() {
        let task = Arc::new(Counting::default());
        let (mut future, _) = self_waking(2);
        assert!(poll_once(&mut future, &task).is_pending());
        assert_eq!(future.inner.polls, 3, "polled again for each wake");
        assert_eq!(task.0.load(Ordering::SeqCst), 0, "the task was not woken");
    }

    #[test]
    fn a_future_that_always_wakes_itself_still_yields_to_the_others() {
        let task = Arc::new(Counting::default());
        let (mut future, _) = self_waking(usize::MAX);
        assert!(poll_once(&mut future, &task).is_pending());
        assert_eq!(future.inner.polls, AGAIN as usize + 1);
        assert_eq!(task.0.load(Ordering::SeqCst), 1, "the task is woken to run again later");
    }

    #[test]
    fn a_wake_between_polls_reaches_the_task_from_any_thread() {
        let task = Arc::new(Counting::default());
        let (mut future, kept) = self_waking(0);
        assert!(poll_once(&mut future, &task).is_pending());
        let waker = kept.lock().expect("lock").take().expect("a waker was kept");
        std::thread::spawn(move || waker.wake()).join().expect("joined");
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_wake_during_the_poll_from_another_thread_is_not_lost() {
        /// Wakes itself from another thread, and waits for that wake, within its first poll.
        struct WokenElsewhere {
            polls: usize,
        }
        impl Future for WokenElsewhere {
            type Output = ();
            fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
                self.polls += 1;
                if self.polls == 1 {
                    let waker = cx.waker().clone();
                    std::thread::spawn(move || waker.wake()).join().expect("joined");
                    return Poll::Pending;
                }
                Poll::Ready(())
            }
        }
        let task = Arc::new(Counting::default());
        let mut future = OwnWakes::new(WokenElsewhere { polls: 0 });
        assert!(poll_once(&mut future, &task).is_ready(), "polled again in place and finished");
    }
}
