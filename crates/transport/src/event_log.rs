//! Event ids and the bounded per-session event log that `Last-Event-ID` resumption
//! replays from.
//!
//! An event id is `<prefix>-<stream>-<seq>`. The prefix is the session's own (its id for a
//! legacy session, whose reconnect has nothing else to find it by; a random salt for a
//! Streamable one), so an id from another session is recognised as foreign and nothing is
//! replayed. Stream 0 is the session's standalone stream (every GET, or the legacy event
//! stream); POST streams get 1, 2, 3… `seq` increases across the whole session.

use std::collections::VecDeque;

use bytes::Bytes;

/// Where an event sits: its stream and its place in the session's sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventId {
    /// The stream: 0 for the standalone stream, 1… for POST streams.
    pub stream: u32,
    /// The event's number within the session.
    pub seq: u64,
}

/// Why a `Last-Event-ID` cannot be resumed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    /// Not an id this gateway writes.
    #[error("the Last-Event-ID is malformed")]
    Malformed,
    /// Another session's id, or a stream this session never had.
    #[error("the Last-Event-ID belongs to no stream of this session")]
    Foreign,
}

impl EventId {
    /// The wire form, with the session's prefix.
    pub fn format(&self, prefix: &str) -> String {
        format!("{prefix}-{}-{}", self.stream, self.seq)
    }

    /// Splits a wire id into its prefix and the event id.
    pub fn parse(text: &str) -> Result<(&str, EventId), ResumeError> {
        let mut parts = text.trim().rsplitn(3, '-');
        let seq = parts.next().and_then(|s| s.parse().ok()).ok_or(ResumeError::Malformed)?;
        let stream = parts.next().and_then(|s| s.parse().ok()).ok_or(ResumeError::Malformed)?;
        let prefix = parts
            .next()
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or(ResumeError::Malformed)?;
        Ok((prefix, EventId { stream, seq }))
    }
}

/// The last events a session sent, bounded in count and bytes; the oldest go first.
#[derive(Debug)]
pub struct EventLog {
    events: VecDeque<(EventId, Bytes)>,
    bytes: usize,
    max_events: usize,
    max_bytes: usize,
}

impl EventLog {
    /// An empty log keeping at most `max_events` events and `max_bytes` bytes.
    pub fn new(max_events: usize, max_bytes: usize) -> Self {
        Self { events: VecDeque::new(), bytes: 0, max_events, max_bytes }
    }

    /// Records an event's JSON.
    pub fn push(&mut self, id: EventId, json: Bytes) {
        if self.max_events == 0 || json.len() > self.max_bytes {
            return;
        }
        self.bytes += json.len();
        self.events.push_back((id, json));
        while self.events.len() > self.max_events || self.bytes > self.max_bytes {
            if let Some((_, old)) = self.events.pop_front() {
                self.bytes -= old.len();
            }
        }
    }

    /// The logged events of `stream` after `seq`, oldest first.
    pub fn after(&self, stream: u32, seq: u64) -> Vec<(EventId, Bytes)> {
        self.events.iter().filter(|(id, _)| id.stream == stream && id.seq > seq).cloned().collect()
    }

    /// How many events it holds.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.events.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_garbage_is_malformed() {
        let id = EventId { stream: 3, seq: 17 };
        let text = id.format("0a1b2c3d");
        assert_eq!(EventId::parse(&text), Ok(("0a1b2c3d", id)));
        for bad in ["", "17", "x-1-2", "abc-1", "abc-x-1", "-1-2", "ab cd-1-2"] {
            assert_eq!(EventId::parse(bad), Err(ResumeError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn replays_one_stream_after_a_point() {
        let mut log = EventLog::new(10, 1 << 20);
        for seq in 1..=6 {
            log.push(EventId { stream: (seq % 2) as u32, seq }, Bytes::from(format!("{seq}")));
        }
        let got: Vec<u64> = log.after(1, 2).iter().map(|(id, _)| id.seq).collect();
        assert_eq!(got, [3, 5]);
        assert!(log.after(0, 6).is_empty());
    }

    #[test]
    fn stays_within_its_bounds() {
        let mut log = EventLog::new(3, 10);
        for seq in 1..=5 {
            log.push(EventId { stream: 0, seq }, Bytes::from_static(b"abc"));
        }
        assert_eq!(log.len(), 3);
        log.push(EventId { stream: 0, seq: 6 }, Bytes::from_static(b"0123456789"));
        assert_eq!(log.len(), 1, "the byte bound evicts the older events");
        log.push(EventId { stream: 0, seq: 7 }, Bytes::from(vec![b'x'; 11]));
        assert_eq!(log.after(0, 0).len(), 1, "an event larger than the whole log is not kept");
    }
}
