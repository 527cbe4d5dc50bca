//! How a round of journal batches is written: the [`APPEND`] script, and its arguments.
//!
//! One script call takes the batches of many sessions (a call's own cost in the store, about
//! ten microseconds, is paid once a round rather than once a session), each fenced on its
//! own. A request both made pending and answered (or forgotten) within one batch is written
//! as neither: the batch is written at once, so nobody could ever read it as pending.

use std::collections::HashMap;

use mcpgw_transport::journal::JournalEntry;
use rmcp::model::RequestId;

use super::store::JournalBatch;

/// Appends the batches of several sessions to their journals, each while this instance
/// holds its session at the batch's epoch: three keys a session (its record, its journal
/// `<record>:j`, its pending requests `<record>:p`); `ARGV[1]` this instance, `ARGV[2]` the
/// bound of a journal, `ARGV[3]` the lifetime in ms, then for each session its epoch, its
/// number of entries, `1` and its new record's `kind`, `cred` and `hs` when the session was
/// created here since the last round (the record is written first, held here at epoch 0) or
/// `0`, and five arguments an entry: `e` (an event: stream, number, message, the request it
/// answers or ''), `p` (a pending request: stream, '', '', the request) or `f` (a forgotten
/// request: '', '', '', the request). For each session, 1 written, 0 not held (nothing of
/// it written).
pub(super) const APPEND: &str = r"
local held = {}
local a = 4
for k = 1, #KEYS, 3 do
  local epoch, n = ARGV[a], tonumber(ARGV[a + 1])
  if ARGV[a + 2] == '1' then
    redis.call('HSET', KEYS[k], 'kind', ARGV[a + 3], 'cred', ARGV[a + 4], 'hs', ARGV[a + 5], 'owner', ARGV[1], 'epoch', '0')
    redis.call('PEXPIRE', KEYS[k], ARGV[3])
    a = a + 3
  end
  local first, last = a + 3, a + 3 + 5 * (n - 1)
  a = last + 5
  local r = redis.call('HMGET', KEYS[k], 'owner', 'epoch')
  if r[1] == ARGV[1] and r[2] == epoch then
    for i = first, last, 5 do
      local kind, request = ARGV[i], ARGV[i + 4]
      if kind == 'e' then
        redis.call('XADD', KEYS[k + 1], 'MAXLEN', '~', ARGV[2], '*', 'st', ARGV[i + 1], 'sq', ARGV[i + 2], 'd', ARGV[i + 3])
        if request ~= '' then redis.call('HDEL', KEYS[k + 2], request) end
      elseif kind == 'p' then
        redis.call('HSET', KEYS[k + 2], request, ARGV[i + 1])
      else
        redis.call('HDEL', KEYS[k + 2], request)
      end
    end
    redis.call('PEXPIRE', KEYS[k + 1], ARGV[3])
    redis.call('PEXPIRE', KEYS[k + 2], ARGV[3])
    held[#held + 1] = 1
  else
    held[#held + 1] = 0
  end
end
return held
";

/// Sessions one call of [`APPEND`] takes at most: a script runs alone in the store, so a
/// round of thousands is cut into calls that let other clients' commands in between.
pub(super) const APPEND_SESSIONS: usize = 64;

/// One entry as the script takes it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step<'a> {
    Event { stream: u32, seq: u64, json: &'a [u8], answers: Option<&'a RequestId> },
    Pending { stream: u32, request: &'a RequestId },
    Forgotten(&'a RequestId),
}

/// The steps that write `entries`, in order, without the requests made pending and settled
/// within them.
fn steps(entries: &[JournalEntry]) -> Vec<Step<'_>> {
    let mut steps: Vec<Option<Step<'_>>> = Vec::with_capacity(entries.len());
    // The requests made pending in this batch and not settled yet, by their step.
    let mut open: HashMap<&RequestId, usize> = HashMap::new();
    for entry in entries {
        match entry {
            JournalEntry::Event { id, json, answers } => {
                let settles = answers.as_ref().and_then(|request| open.remove(request));
                if let Some(pending) = settles {
                    steps[pending] = None;
                }
                let answers = if settles.is_some() { None } else { answers.as_ref() };
                steps.push(Some(Step::Event { stream: id.stream, seq: id.seq, json, answers }));
            }
            JournalEntry::Pending { stream, requests } => {
                for request in requests {
                    open.insert(request, steps.len());
                    steps.push(Some(Step::Pending { stream: *stream, request }));
                }
            }
            JournalEntry::Forgotten(request) => match open.remove(request) {
                Some(pending) => steps[pending] = None,
                None => steps.push(Some(Step::Forgotten(request))),
            },
        }
    }
    steps.into_iter().flatten().collect()
}

/// Adds to `call` (a pipeline whose last command is an `EVALSHA` of [`APPEND`] by its
/// digest) the keys and arguments that write `batches`; `key` names a session's record, `me`
/// is this instance.
pub(super) fn add_batches(
    call: &mut redis::Pipeline,
    batches: &[JournalBatch],
    key: impl Fn(&JournalBatch) -> String,
    me: &str,
    bound: usize,
    ttl_ms: u64,
) {
    call.arg(3 * batches.len());
    for batch in batches {
        let key = key(batch);
        call.arg(&key).arg(format!("{key}:j")).arg(format!("{key}:p"));
    }
    call.arg(me).arg(bound).arg(ttl_ms);
    for batch in batches {
        let steps = steps(&batch.entries);
        call.arg(batch.epoch).arg(steps.len());
        match &batch.create {
            Some(record) => call.arg(1).arg(record.kind.as_str()).arg(&record.cred).arg(&record.handshake),
            None => call.arg(0),
        };
        for step in steps {
            match step {
                Step::Event { stream, seq, json, answers } => {
                    call.arg("e").arg(stream).arg(seq).arg(json).arg(answers.map(request_key).unwrap_or_default());
                }
                Step::Pending { stream, request } => {
                    call.arg("p").arg(stream).arg("").arg("").arg(request_key(request));
                }
                Step::Forgotten(request) => {
                    call.arg("f").arg("").arg("").arg("").arg(request_key(request));
                }
            }
        }
    }
}

/// A request's id as a field of the pending hash: its JSON.
fn request_key(request: &RequestId) -> String {
    serde_json::to_string(request).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use mcpgw_transport::event_log::EventId;

    use super::*;

    fn pending(n: i64) -> JournalEntry {
        JournalEntry::Pending { stream: 7, requests: vec![RequestId::Number(n)] }
    }

    fn answer(seq: u64, n: i64) -> JournalEntry {
        JournalEntry::Event {
            id: EventId { stream: 7, seq },
            json: Bytes::from_static(b"{}"),
            answers: Some(RequestId::Number(n)),
        }
    }

    fn event(seq: u64, answers: Option<&RequestId>) -> Step<'_> {
        Step::Event { stream: 7, seq, json: b"{}", answers }
    }

    #[test]
    fn a_request_made_pending_and_answered_in_one_batch_is_written_as_neither() {
        let entries = [pending(1), pending(2), answer(3, 1)];
        let two = RequestId::Number(2);
        assert_eq!(steps(&entries), [Step::Pending { stream: 7, request: &two }, event(3, None)]);
    }

    #[test]
    fn an_answer_to_a_request_pending_from_an_earlier_batch_clears_it() {
        let entries = [answer(3, 1)];
        let one = RequestId::Number(1);
        assert_eq!(steps(&entries), [event(3, Some(&one))]);
    }

    #[test]
    fn an_id_used_again_after_its_answer_stays_pending() {
        let entries = [pending(1), answer(3, 1), pending(1)];
        let one = RequestId::Number(1);
        assert_eq!(steps(&entries), [event(3, None), Step::Pending { stream: 7, request: &one }]);
    }

    #[test]
    fn a_request_forgotten_in_the_batch_that_made_it_pending_is_not_written() {
        let entries =
            [pending(1), JournalEntry::Forgotten(RequestId::Number(1)), JournalEntry::Forgotten(RequestId::Number(2))];
        let two = RequestId::Number(2);
        assert_eq!(steps(&entries), [Step::Forgotten(&two)]);
    }
}
