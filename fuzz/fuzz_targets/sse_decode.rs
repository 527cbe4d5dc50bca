//! `sse::Decoder` on an arbitrary byte stream, fed in fuzzer-chosen chunks.
//!
//! Input layout: byte 0 = number of cuts `n` (mod 8), then `n` little-endian u16 cut
//! positions (mod the stream length), then the stream. A seed that is a plain SSE stream
//! prefixed with `\x00` is fed in one piece.
//!
//! Invariants:
//! - no panic;
//! - the events do not depend on how the stream is chunked: one piece, the fuzzer's cuts,
//!   and one byte at a time all give the same events;
//! - every event has a non-empty type and no id with NUL in it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpgw_transport::sse::{Decoded, Decoder};

fn decode(chunks: &mut dyn Iterator<Item = &[u8]>) -> Vec<Decoded> {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    for chunk in chunks {
        d.feed(chunk);
        while let Some(e) = d.next_event() {
            out.push(e);
        }
    }
    // Draining again after the end adds nothing.
    assert_eq!(d.next_event(), None);
    out
}

fuzz_target!(|input: &[u8]| {
    let Some((&n, rest)) = input.split_first() else { return };
    let n = usize::from(n % 8);
    if rest.len() < 2 * n {
        return;
    }
    let (cuts, stream) = rest.split_at(2 * n);
    let mut cuts: Vec<usize> =
        cuts.chunks_exact(2).map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])) % (stream.len() + 1)).collect();
    cuts.sort_unstable();

    let whole = decode(&mut std::iter::once(stream));

    let mut pieces = Vec::with_capacity(cuts.len() + 1);
    let mut at = 0;
    for cut in cuts {
        pieces.push(&stream[at..cut]);
        at = cut;
    }
    pieces.push(&stream[at..]);
    let chunked = decode(&mut pieces.into_iter());
    assert_eq!(whole, chunked, "chunking at fuzzer cuts changed the events");

    if stream.len() <= 1024 {
        let bytewise = decode(&mut stream.chunks(1));
        assert_eq!(whole, bytewise, "byte-at-a-time feeding changed the events");
    }

    for e in &whole {
        assert!(!e.event.is_empty());
        assert!(e.id.as_ref().is_none_or(|id| !id.contains('\0')));
    }
});
