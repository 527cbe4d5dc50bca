//! The log's writer: lines gathered in memory and written to stderr in batches.
//!
//! With an audit line for every tool call, a write of its own per line (and the stderr
//! lock taken for it, contended by every worker thread) cost a third of a busy gateway's
//! CPU (`make profile`). Here a line is appended to a buffer under a lock held only for the
//! copy, and a thread of its own writes the buffer out every [`PERIOD`]. A buffer that
//! grows past [`HIGH_WATER`] in a burst is written out at once by the thread that logged
//! the line that filled it, so memory stays bounded and no line is ever dropped. Lines keep
//! their order: one lock orders the writes out.
//!
//! What the batching costs: a line reaches stderr up to [`PERIOD`] after it was logged, and
//! the lines of the last [`PERIOD`] are lost if the process is killed (`SIGKILL`, a crash);
//! an orderly exit writes everything out ([`Log`] is the guard that does).

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the gathered lines are written out.
pub(crate) const PERIOD: Duration = Duration::from_millis(10);

/// A buffer this large is written out at once, not at the next period.
const HIGH_WATER: usize = 256 * 1024;

/// Gathered lines and where they go.
struct Shared<W> {
    /// Lines not yet written out.
    pending: Mutex<Vec<u8>>,
    /// The destination, and the buffer being written out; its lock orders the writes.
    out: Mutex<Out<W>>,
    stop: AtomicBool,
}

struct Out<W> {
    sink: W,
    /// The last batch's buffer, kept for its capacity: the next batch swaps into it.
    spare: Vec<u8>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<W: Write> Shared<W> {
    fn append(&self, line: &[u8]) {
        let full = {
            let mut pending = lock(&self.pending);
            pending.extend_from_slice(line);
            pending.len() >= HIGH_WATER
        };
        if full {
            self.write_out();
        }
    }

    /// Writes out what has gathered. A failed write (stderr closed) loses that batch: the
    /// log has nowhere else to go, and the gateway keeps serving.
    fn write_out(&self) {
        let mut out = lock(&self.out);
        let Out { sink, spare } = &mut *out;
        std::mem::swap(&mut *lock(&self.pending), spare);
        if spare.is_empty() {
            return;
        }
        let _ = sink.write_all(spare).and_then(|()| sink.flush());
        spare.clear();
        // A burst's buffer is not kept at its peak size.
        if spare.capacity() > 4 * HIGH_WATER {
            spare.shrink_to(HIGH_WATER);
        }
    }
}

/// The writer the log's formatting layer writes each line to (one `write` per line), and
/// the audit log its lines.
pub(crate) struct Writer<W: Write + Send + 'static>(Arc<Shared<W>>);

impl<W: Write + Send + 'static> Writer<W> {
    /// Logs whole lines (each with its newline).
    pub(crate) fn append(&self, lines: &[u8]) {
        self.0.append(lines);
    }
}

impl<W: Write + Send + 'static> Clone for Writer<W> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

/// One line's writer, borrowed from [`Writer`] (no reference count touched per line).
pub(crate) struct LineWriter<'a, W: Write + Send + 'static>(&'a Shared<W>);

impl<W: Write + Send + 'static> Write for LineWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a, W: Write + Send + 'static> tracing_subscriber::fmt::MakeWriter<'a> for Writer<W> {
    type Writer = LineWriter<'a, W>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(&self.0)
    }
}

/// The writing thread; dropping it writes out what is left and ends the thread.
pub(crate) struct Log<W: Write + Send + 'static> {
    shared: Arc<Shared<W>>,
    thread: Option<JoinHandle<()>>,
}

impl<W: Write + Send + 'static> Drop for Log<W> {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
        self.shared.write_out();
    }
}

/// A batching writer to `sink`, and the guard of its thread.
pub(crate) fn batched<W: Write + Send + 'static>(sink: W) -> io::Result<(Writer<W>, Log<W>)> {
    let shared = Arc::new(Shared {
        pending: Mutex::new(Vec::new()),
        out: Mutex::new(Out { sink, spare: Vec::new() }),
        stop: AtomicBool::new(false),
    });
    let flusher = shared.clone();
    let thread = std::thread::Builder::new().name("mcpgw-log".into()).spawn(move || {
        while !flusher.stop.load(Ordering::Acquire) {
            std::thread::park_timeout(PERIOD);
            flusher.write_out();
        }
    })?;
    Ok((Writer(shared.clone()), Log { shared, thread: Some(thread) }))
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    /// A sink the test can read, counting the writes it took.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut s = lock(&self.0);
            s.0.extend_from_slice(buf);
            s.1 += 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn line(writer: &Writer<Sink>, text: &str) {
        writer.make_writer().write_all(text.as_bytes()).expect("write");
    }

    #[test]
    fn lines_from_many_threads_all_arrive_whole_in_each_threads_order_in_few_writes() {
        let sink = Sink::default();
        let (writer, log) = batched(sink.clone()).expect("thread");
        let writer = Arc::new(writer);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..2000 {
                        line(&writer, &format!("t{t} line {i}\n"));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("join");
        }
        drop(log);
        let (bytes, writes) = lock(&sink.0).clone();
        let text = String::from_utf8(bytes).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8000);
        for t in 0..4 {
            let own: Vec<usize> = lines
                .iter()
                .filter_map(|l| l.strip_prefix(&format!("t{t} line ")))
                .map(|n| n.parse().expect("number"))
                .collect();
            assert_eq!(own, (0..2000).collect::<Vec<_>>(), "thread {t}'s lines, in order");
        }
        assert!(writes < 8000 / 10, "{writes} writes for 8000 lines: not batched");
    }

    #[test]
    fn a_line_reaches_the_sink_within_a_few_periods_without_a_flush() {
        let sink = Sink::default();
        let (writer, _log) = batched(sink.clone()).expect("thread");
        line(&writer, "hello\n");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while lock(&sink.0).0.is_empty() {
            assert!(std::time::Instant::now() < deadline, "the line was never written out");
            std::thread::park_timeout(PERIOD);
        }
        assert_eq!(lock(&sink.0).0, b"hello\n");
    }

    #[test]
    fn a_burst_past_the_high_water_mark_is_written_out_by_the_logging_thread() {
        let sink = Sink::default();
        let shared = Shared {
            pending: Mutex::new(Vec::new()),
            out: Mutex::new(Out { sink: sink.clone(), spare: Vec::new() }),
            stop: AtomicBool::new(false),
        };
        let chunk = vec![b'x'; HIGH_WATER / 4];
        for _ in 0..3 {
            shared.append(&chunk);
        }
        assert!(lock(&sink.0).0.is_empty(), "below the mark, nothing is written yet");
        shared.append(&chunk);
        assert_eq!(lock(&sink.0).0.len(), HIGH_WATER, "at the mark, the buffer went out at once");
        assert!(lock(&shared.pending).is_empty());
    }
}
