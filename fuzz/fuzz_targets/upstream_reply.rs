//! Arbitrary upstream replies through the gateway's output path: the first byte picks a
//! whole `chat.completion` body or an SSE stream of chunks, the rest is the reply. The
//! boundary's shape check and the output stages must answer with a value or an error,
//! never a panic, whatever the upstream sends.
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use psf_gateway::Compiled;
use psf_gateway::replay::{self, REPLAY_MANIFEST};

static GATEWAY: LazyLock<(Compiled, Arc<psf_gateway::replay::ReplayPoint>)> = LazyLock::new(|| {
    let options = psf_core::CheckOptions { today: jiff::civil::date(2026, 11, 23) };
    let manifest = psf_core::load(REPLAY_MANIFEST, &options, &|_| None).expect("the replay manifest is valid");
    let compiled = Compiled::new(manifest, &|_| None).expect("it compiles");
    let point = compiled.points.get("chat").cloned().expect("its decision point");
    (compiled, point)
});

fuzz_target!(|data: &[u8]| {
    let Some((mode, reply)) = data.split_first() else { return };
    let (compiled, point) = &*GATEWAY;
    if mode % 2 == 0 {
        let _ = replay::whole(compiled, point, reply);
    } else {
        let _ = replay::streamed(compiled, point, reply);
    }
});
