//! Arbitrary client requests and gateway streams through the front doors' translations
//! (`psf_providers::door`): a request that is a JSON object is translated or refused by
//! name, and any sequence of JSON values fed to the stream translators gives events,
//! never a panic. The first byte picks the door; the rest is the request, then, after a
//! newline, one chunk per line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use psf_providers::door::{messages, responses};
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let Some((door, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let mut lines = text.lines();
    let request: Option<Map<String, Value>> = lines.next().and_then(|l| serde_json::from_str(l).ok());
    let chunks: Vec<Value> = lines.filter_map(|l| serde_json::from_str(l).ok()).collect();
    if door % 2 == 0 {
        if let Some(r) = &request {
            let _ = messages::request(r);
        }
        let mut events = messages::Events::new("msg_fuzz", "m");
        for c in &chunks {
            let _ = messages::reply(c, "msg_fuzz");
            if c.get("error").is_some() {
                events.error(500, c);
            } else {
                events.chunk(c);
            }
        }
        events.done();
    } else {
        let echo = request.as_ref().and_then(|r| responses::request(r).ok()).map(|t| t.echo).unwrap_or_default();
        let mut events = responses::Events::new(echo.clone(), "resp_fuzz", 0, "m");
        for c in &chunks {
            let _ = responses::reply(&echo, "resp_fuzz", 0, c);
            if c.get("error").is_some() {
                events.error(c);
            } else {
                events.chunk(c);
            }
        }
        events.done();
    }
});
