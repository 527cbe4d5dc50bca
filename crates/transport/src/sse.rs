//! Server-Sent Events framing: an encoder for what we send, and a tolerant incremental
//! decoder (LF, CRLF or CR line ends; comments) for what upstreams and tests read.

use bytes::{BufMut, Bytes, BytesMut};

/// One event to encode.
#[derive(Debug, Default, Clone, Copy)]
pub struct Event<'a> {
    /// `id:` field, used for resumption.
    pub id: Option<&'a str>,
    /// `event:` field; absent means the default `message`.
    pub event: Option<&'a str>,
    /// `data:` payload; newlines in it become separate `data:` lines.
    pub data: &'a [u8],
    /// `retry:` field in milliseconds.
    pub retry: Option<u64>,
}

impl Event<'_> {
    /// The wire form, ending with the blank line that dispatches the event.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.data.len() + 32);
        if let Some(event) = self.event {
            put_field(&mut out, b"event", event.as_bytes());
        }
        if let Some(id) = self.id {
            put_field(&mut out, b"id", id.as_bytes());
        }
        if let Some(retry) = self.retry {
            put_field(&mut out, b"retry", retry.to_string().as_bytes());
        }
        // CR, LF and CRLF all end a line in SSE, so each line of the data is its own `data:`
        // field (empty data is one empty field): a lone CR cannot end the line early and
        // start a field of its own.
        let mut rest = self.data;
        loop {
            let Some(i) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
                put_field(&mut out, b"data", rest);
                break;
            };
            put_field(&mut out, b"data", &rest[..i]);
            let crlf = rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n');
            rest = &rest[i + if crlf { 2 } else { 1 }..];
        }
        out.put_u8(b'\n');
        out.freeze()
    }
}

fn put_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_u8(b'\n');
}

/// A JSON-RPC message as an `event: message` frame.
pub fn message(json: &[u8]) -> Bytes {
    Event { event: Some("message"), data: json, ..Event::default() }.encode()
}

/// A comment line, which clients ignore; it keeps idle connections and proxies alive.
pub fn comment(text: &str) -> Bytes {
    Bytes::from(format!(": {text}\n\n"))
}

/// A decoded event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decoded {
    /// The `event:` field, or `message` when absent.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The last `id:` seen in this event, if any.
    pub id: Option<String>,
    /// A `retry:` field in milliseconds, if any.
    pub retry: Option<u64>,
}

/// An incremental decoder: feed it bytes as they arrive, take complete events out.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: BytesMut,
    pending: Decoded,
    has_data: bool,
    has_fields: bool,
}

impl Decoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes read from the stream.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete event, or `None` when more bytes are needed (not an error).
    pub fn next_event(&mut self) -> Option<Decoded> {
        while let Some((line_len, sep_len)) = find_line(&self.buf) {
            let line = self.buf.split_to(line_len + sep_len);
            let line = &line[..line_len];
            if line.is_empty() {
                if self.has_fields {
                    let mut event = std::mem::take(&mut self.pending);
                    if event.event.is_empty() {
                        event.event.push_str("message");
                    }
                    let had_data = self.has_data;
                    self.has_data = false;
                    self.has_fields = false;
                    if had_data || event.id.is_some() || event.retry.is_some() {
                        return Some(event);
                    }
                }
                continue;
            }
            self.field(line);
        }
        None
    }

    fn field(&mut self, line: &[u8]) {
        if line[0] == b':' {
            return;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        self.has_fields = true;
        match name {
            b"event" => self.pending.event = value.into_owned(),
            b"data" => {
                if self.has_data {
                    self.pending.data.push('\n');
                }
                self.pending.data.push_str(&value);
                self.has_data = true;
            }
            b"id" if !value.contains('\0') => self.pending.id = Some(value.into_owned()),
            b"retry" => self.pending.retry = value.parse().ok(),
            _ => {}
        }
    }
}

/// Length of the first complete line and of its terminator (`\n`, `\r\n` or `\r`).
fn find_line(buf: &[u8]) -> Option<(usize, usize)> {
    let i = buf.iter().position(|&b| b == b'\n' || b == b'\r')?;
    if buf[i] == b'\n' {
        return Some((i, 1));
    }
    // A lone CR at the very end may be the first half of CRLF: wait for more.
    match buf.get(i + 1) {
        Some(b'\n') => Some((i, 2)),
        Some(_) => Some((i, 1)),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Vec<Decoded> {
        let mut d = Decoder::new();
        d.feed(input);
        std::iter::from_fn(|| d.next_event()).collect()
    }

    #[test]
    fn encodes_a_message_frame() {
        assert_eq!(&message(br#"{"a":1}"#)[..], b"event: message\ndata: {\"a\":1}\n\n");
    }

    #[test]
    fn encodes_id_retry_and_empty_data() {
        let e = Event { id: Some("7"), retry: Some(3000), ..Event::default() }.encode();
        assert_eq!(&e[..], b"id: 7\nretry: 3000\ndata: \n\n");
    }

    #[test]
    fn multi_line_data_round_trips() {
        let e = Event { data: b"a\nb", ..Event::default() }.encode();
        let got = decode_all(&e);
        assert_eq!(got[0].data, "a\nb");
    }

    #[test]
    fn a_carriage_return_in_data_cannot_start_a_field() {
        let data = b"{\"a\":1}\rid: forged\revent: forged\r\rdata: x";
        let got = decode_all(&Event { data, ..Event::default() }.encode());
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].event, "message");
        assert_eq!(got[0].id, None);
        assert_eq!(got[0].data, "{\"a\":1}\nid: forged\nevent: forged\n\ndata: x");
    }

    #[test]
    fn decodes_lf_crlf_and_cr() {
        for input in [
            &b"event: endpoint\ndata: /x\n\n"[..],
            b"event: endpoint\r\ndata: /x\r\n\r\n",
            b"event: endpoint\rdata: /x\r\r: a comment after the blank line\r",
        ] {
            let got = decode_all(input);
            assert_eq!(got.len(), 1, "{input:?}");
            assert_eq!(got[0].event, "endpoint");
            assert_eq!(got[0].data, "/x");
        }
    }

    #[test]
    fn skips_comments_and_waits_for_more_bytes() {
        let mut d = Decoder::new();
        d.feed(b": keepalive\n\ndata: {\"x\"");
        assert_eq!(d.next_event(), None);
        d.feed(b":1}\r");
        assert_eq!(d.next_event(), None);
        d.feed(b"\n\r\n");
        let e = d.next_event().expect("one event");
        assert_eq!((e.event.as_str(), e.data.as_str()), ("message", "{\"x\":1}"));
        assert_eq!(d.next_event(), None);
    }

    #[test]
    fn priming_event_has_id_and_empty_data() {
        let got = decode_all(b"id: 0\nretry: 1000\ndata: \n\n");
        assert_eq!(got[0].id.as_deref(), Some("0"));
        assert_eq!(got[0].retry, Some(1000));
        assert_eq!(got[0].data, "");
    }
}
