//! A Server-Sent Events decoder with a bound on event size.
//!
//! Hand-written rather than taken from a crate because the gateway must bound what an
//! upstream can make it buffer: an event larger than the limit is an error, not an
//! ever-growing buffer. It follows the WHATWG parsing rules that matter for model APIs:
//! `\n`, `\r\n` and `\r` line ends, `:` comments, `data` lines joined with `\n`, one
//! optional space after the colon, an event dispatched at a blank line.

use std::fmt;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// The `event:` field, empty when absent.
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// An event grew past the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge(pub usize);

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a stream event is larger than {} bytes", self.0)
    }
}

/// Incremental decoder: push bytes as they arrive, get whole events.
#[derive(Debug)]
pub struct Decoder {
    line: Vec<u8>,
    event: Event,
    has_data: bool,
    size: usize,
    limit: usize,
    after_cr: bool,
}

impl Decoder {
    /// A decoder that refuses events larger than `limit` bytes.
    pub fn new(limit: usize) -> Decoder {
        Decoder { line: Vec::new(), event: Event::default(), has_data: false, size: 0, limit, after_cr: false }
    }

    /// Feeds bytes; returns the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Event>, TooLarge> {
        let mut out = Vec::new();
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.line_done(&line) {
                        out.push(event);
                    }
                }
                _ => {
                    self.size += 1;
                    if self.size > self.limit {
                        return Err(TooLarge(self.limit));
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(out)
    }

    /// The stream ended: a last event without its blank line is still delivered (many
    /// servers end `data: [DONE]` with a single newline).
    pub fn finish(&mut self) -> Option<Event> {
        let line = std::mem::take(&mut self.line);
        if !line.is_empty() {
            self.line_done(&line);
        }
        self.dispatch()
    }

    fn line_done(&mut self, line: &[u8]) -> Option<Event> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line[0] == b':' {
            return None;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        match field {
            b"data" => {
                if self.has_data {
                    self.event.data.push('\n');
                }
                self.event.data.push_str(&value);
                self.has_data = true;
            }
            b"event" => self.event.event = value.into_owned(),
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<Event> {
        self.size = 0;
        let event = std::mem::take(&mut self.event);
        let had = std::mem::replace(&mut self.has_data, false);
        had.then_some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all(input: &[u8]) -> Vec<Event> {
        let mut d = Decoder::new(1 << 20);
        let mut events = d.push(input).unwrap_or_default();
        events.extend(d.finish());
        events
    }

    #[test]
    fn events_lines_and_comments() {
        let events =
            all(b": keep-alive\nevent: message_start\ndata: {\"a\":1}\n\ndata: x\r\ndata:y\r\n\r\ndata: [DONE]\n");
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].event, "message_start");
        assert_eq!(events[0].data, "{\"a\":1}");
        assert_eq!(events[1].data, "x\ny");
        assert_eq!(events[2].data, "[DONE]");
    }

    #[test]
    fn oversized_event_is_an_error() {
        let mut d = Decoder::new(8);
        assert!(d.push(b"data: 0123456789\n\n").is_err());
    }

    proptest! {
        // However the bytes are split across reads, the same events come out.
        #[test]
        fn chunking_does_not_matter(datas in prop::collection::vec("[a-z{}\":, ]{0,20}", 1..6), cuts in prop::collection::vec(0usize..200, 0..8), crlf: bool) {
            let nl = if crlf { "\r\n" } else { "\n" };
            let text: String = datas.iter().map(|d| format!("data: {d}{nl}{nl}")).collect();
            let bytes = text.as_bytes();
            let whole = all(bytes);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut d = Decoder::new(1 << 20);
            let mut pieces = Vec::new();
            let mut at = 0;
            for c in cuts.into_iter().chain([bytes.len()]) {
                pieces.extend(d.push(&bytes[at..c]).unwrap_or_default());
                at = c;
            }
            pieces.extend(d.finish());
            prop_assert_eq!(&pieces, &whole);
            prop_assert_eq!(whole.len(), datas.len());
        }
    }
}
