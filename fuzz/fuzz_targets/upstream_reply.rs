//! Arbitrary upstream replies through the gateway's output path: the first byte picks a
//! whole `chat.completion` body or an SSE stream of chunks, the rest is the reply. The
//! boundary's shape check and the output stages must answer with a value or an error,
//! never a panic, whatever the upstream sends.
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use psf_gateway::Compiled;
use psf_gateway::replay;

static GATEWAY: LazyLock<(Compiled, Arc<psf_gateway::replay::ReplayPoint>)> =
    LazyLock::new(|| replay::compiled().expect("the replay manifest compiles"));

fuzz_target!(|data: &[u8]| {
    let Some((mode, reply)) = data.split_first() else { return };
    let (compiled, point) = &*GATEWAY;
    if mode % 2 == 0 {
        let _ = replay::whole(compiled, point, reply);
    } else {
        let _ = replay::streamed(compiled, point, reply);
    }
});
