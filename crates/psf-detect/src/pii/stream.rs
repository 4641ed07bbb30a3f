//! Incremental PII scanning for streams: feed chunks as they arrive, get each finding as
//! soon as it is certain.
//!
//! A finding is certain once [`HOLD`] bytes of text follow it (no entity psf detects,
//! bar a PEM private-key block, is longer, so more text cannot extend or replace it),
//! and the scanner keeps [`LOOK_BEHIND`] bytes of context before the first undecided
//! byte, so an entity split across chunks is still seen whole and the context words
//! that some types need ("born", "passport") are still in view. Memory is bounded by
//! the look-behind plus the hold plus one chunk, whatever the length of the stream.
//!
//! Over any chunking, the findings equal those of one scan of the whole text for text
//! whose context words sit within the look-behind (the property tests pin this).

use crate::finding::Finding;
use crate::pii::PiiDetector;

/// Bytes that must follow a finding before it is reported.
pub const HOLD: usize = 256;
/// Bytes of already-decided text kept as context.
pub const LOOK_BEHIND: usize = 256;

/// The state of one stream's scan. Spans are byte offsets into the whole stream.
#[derive(Debug)]
pub struct StreamScanner<'d> {
    detector: &'d PiiDetector,
    /// The text kept: from `base` to the end of what was fed.
    buf: String,
    /// Stream offset of `buf[0]`.
    base: usize,
    /// Stream offset before which everything is decided and reported.
    decided: usize,
}

impl<'d> StreamScanner<'d> {
    /// A scanner for one stream.
    pub fn new(detector: &'d PiiDetector) -> StreamScanner<'d> {
        StreamScanner { detector, buf: String::new(), base: 0, decided: 0 }
    }

    /// Takes the next chunk; returns the findings that became certain.
    pub fn feed(&mut self, chunk: &str) -> Vec<Finding> {
        self.buf.push_str(chunk);
        let end = self.base + self.buf.len();
        if end < self.decided + HOLD * 2 {
            // Too little new text to decide anything yet; scanning now would only
            // repeat work.
            return Vec::new();
        }
        self.scan_until(end - HOLD)
    }

    /// The stream has ended: the findings in what was held.
    pub fn finish(&mut self) -> Vec<Finding> {
        let end = self.base + self.buf.len();
        self.scan_until(end)
    }

    /// Reports the findings that start at or after `decided` and end by `limit`, then
    /// moves `decided` to `limit` — or to the start of a finding that runs past it, so
    /// that one is decided whole later.
    fn scan_until(&mut self, limit: usize) -> Vec<Finding> {
        let mut found = self.detector.scan(&self.buf);
        for f in &mut found {
            f.span = f.span.start + self.base..f.span.end + self.base;
        }
        let mut next = limit;
        if let Some(straddling) = found.iter().find(|f| f.span.start < limit && f.span.end > limit) {
            next = straddling.span.start.max(self.decided);
        }
        let decided = self.decided;
        found.retain(|f| f.span.start >= decided && f.span.end <= next);
        self.decided = next;
        // Keep the look-behind before the undecided text, cut on a char boundary.
        let mut keep_from = self.decided.saturating_sub(LOOK_BEHIND).max(self.base) - self.base;
        while !self.buf.is_char_boundary(keep_from) {
            keep_from -= 1;
        }
        self.buf.drain(..keep_from);
        self.base += keep_from;
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_split_across_chunks_is_found_once_with_stream_offsets() {
        let d = PiiDetector::new().unwrap();
        let filler = "nothing to see here, just words. ".repeat(20);
        let text = format!("{filler}write to jane.doe@example.com please. {filler}{filler}");
        let mut s = StreamScanner::new(&d);
        let mut found = Vec::new();
        for chunk in text.as_bytes().chunks(7) {
            found.extend(s.feed(std::str::from_utf8(chunk).unwrap()));
        }
        found.extend(s.finish());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(&text[found[0].span.clone()], "jane.doe@example.com");
        // Memory stays bounded: the buffer never holds the whole stream.
        assert!(s.buf.len() <= LOOK_BEHIND + HOLD * 2 + 7, "{}", s.buf.len());
    }
}
