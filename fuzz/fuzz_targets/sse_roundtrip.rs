//! `sse::Event { .. }.encode()` then `sse::Decoder`: what is encoded decodes back.
//!
//! Input layout (so that seeds can be written by hand): byte 0 = flags (bit 0: an id,
//! bit 1: an event type, bit 2: a retry); then, for each field present in that order, the
//! id and the event type as one length byte + that many bytes (lossy UTF-8), the retry as
//! 8 little-endian bytes; then a little-endian u16 cut position; the rest is the data.
//!
//! Invariants (SSE has a UTF-8 text payload, and CR, LF and CRLF all end a line, so the
//! data comes back as lossy UTF-8 with every line end turned into LF; nothing else changes):
//! - the encoded event decodes to exactly one event, whether fed whole or cut in two;
//! - its type is the one given (`message` when none or empty), its id the one given (an id
//!   with NUL in it is ignored by decoders), its retry the one given;
//! - its data is the data given, normalised as above;
//! - two encoded events back to back decode to the two events.
//!
//! An id or event type with CR or LF in it cannot be encoded (the encoder has no error
//! path); such inputs are outside the encoder's contract and skipped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpgw_transport::sse::{Decoded, Decoder, Event};

fn take<'a>(input: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if input.len() < n {
        return None;
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Some(head)
}

fn text(input: &mut &[u8]) -> Option<String> {
    let len = usize::from(*take(input, 1)?.first()?);
    Some(String::from_utf8_lossy(take(input, len)?).into_owned())
}

/// What any SSE decoder makes of `data`: lossy UTF-8, CRLF / CR / LF line ends as LF.
fn normalised(data: &[u8]) -> String {
    String::from_utf8_lossy(data).replace("\r\n", "\n").replace('\r', "\n")
}

fn decode(chunks: &[&[u8]]) -> Vec<Decoded> {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    for chunk in chunks {
        d.feed(chunk);
        while let Some(e) = d.next_event() {
            out.push(e);
        }
    }
    out
}

fuzz_target!(|input: &[u8]| {
    let mut input = input;
    let Some(&[flags]) = take(&mut input, 1) else { return };
    let id = if flags & 1 != 0 { text(&mut input) } else { None };
    let event = if flags & 2 != 0 { text(&mut input) } else { None };
    let retry = if flags & 4 != 0 {
        take(&mut input, 8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    } else {
        None
    };
    let Some(cut) = take(&mut input, 2) else { return };
    let cut = usize::from(u16::from_le_bytes([cut[0], cut[1]]));
    let data = input;

    let breaks_lines = |s: &Option<String>| s.as_deref().is_some_and(|s| s.contains(['\r', '\n']));
    if breaks_lines(&id) || breaks_lines(&event) {
        return;
    }

    let wire = Event { id: id.as_deref(), event: event.as_deref(), data, retry }.encode();
    let expected = Decoded {
        event: event.filter(|e| !e.is_empty()).unwrap_or_else(|| "message".to_owned()),
        data: normalised(data),
        id: id.filter(|id| !id.contains('\0')),
        retry,
    };

    let whole = decode(&[&wire]);
    assert_eq!(whole, std::slice::from_ref(&expected), "wire: {:?}", String::from_utf8_lossy(&wire));

    let (a, b) = wire.split_at(cut % (wire.len() + 1));
    assert_eq!(decode(&[a, b]), whole, "cut at {}", a.len());

    let twice = [&wire[..], &wire[..]].concat();
    assert_eq!(decode(&[&twice]), [expected.clone(), expected], "two events back to back");
});
