//! [`Unfinished`]: work a transport's `receive` started and must finish even if its future
//! is dropped.
//!
//! rmcp polls `receive` inside a `select!` and drops it whenever another branch of its loop
//! is ready first (a request going out, a send finishing). A delivery awaited inside
//! `receive` would be dropped with it: the message lost, or overtaken by the one behind it.
//! Kept here instead, it is finished at the start of the next `receive`, before anything
//! else is read.

use std::future::Future;
use std::pin::Pin;

/// At most one piece of work under way, kept across `receive` calls.
#[derive(Default)]
pub(crate) struct Unfinished(Option<Pin<Box<dyn Future<Output = ()> + Send>>>);

impl Unfinished {
    /// Keeps `work` to be finished by [`Unfinished::finish`].
    pub(crate) fn start(&mut self, work: impl Future<Output = ()> + Send + 'static) {
        self.0 = Some(Box::pin(work));
    }

    /// Finishes the work kept, if any; dropped meanwhile, it is still kept.
    pub(crate) async fn finish(&mut self) {
        if let Some(work) = &mut self.0 {
            work.await;
            self.0 = None;
        }
    }
}
