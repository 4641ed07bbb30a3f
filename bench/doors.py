"""Each front door beside Chat Completions, timed against it: one client, one request at a
time, through `psf demo` (the mock upstream answering at once, every control of the demo
manifest on), so what differs between the doors is psf's own work: the translation of the
request and of the answer, whole and streamed.

For each door: p50 and p99 of the whole call, and for streams the time to the first text
event (the first `content` delta, `response.output_text.delta` or `content_block_delta`).
Standard library only; builds nothing: pass the psf binary.

Usage: python3 bench/doors.py [PATH/TO/psf] [--requests 300]
"""

import argparse
import http.client
import json
import os
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "clients"))
from demo import start_demo, stop_demo  # noqa: E402

QUESTION = "Where is my order 5521? It left the warehouse on Monday and has not moved since."

DOORS = {
    "chat": ("/v1/chat/completions", {"model": "assistant", "messages": [{"role": "user", "content": QUESTION}]}),
    "responses": ("/v1/responses", {"model": "assistant", "input": QUESTION}),
    "messages": (
        "/v1/messages",
        {"model": "assistant", "max_tokens": 200, "messages": [{"role": "user", "content": QUESTION}]},
    ),
    "embeddings": ("/v1/embeddings", {"model": "embeddings", "input": [QUESTION, "Returns take 14 days"]}),
}

FIRST_TEXT = {
    "chat": b'"content":"[mock]',
    "responses": b"response.output_text.delta",
    "messages": b'"text_delta"',
}


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def call(conn: http.client.HTTPConnection, path: str, body: dict, key: str, stream: bool) -> tuple[float, float]:
    """The call's whole time and (for a stream) its time to the first text, in ms."""
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json", "anthropic-version": "2023-06-01"}
    data = json.dumps(dict(body, stream=True) if stream else body).encode()
    t0 = time.perf_counter()
    conn.request("POST", path, data, headers)
    r = conn.getresponse()
    if r.status != 200:
        raise SystemExit(f"{path} answered {r.status}: {r.read()[:300]!r}")
    first = None
    marker = FIRST_TEXT.get(next(k for k, v in DOORS.items() if v[0] == path), b"")
    seen = b""
    while True:
        chunk = r.read1(65536) if stream else r.read()
        if not chunk:
            break
        if stream and first is None:
            seen += chunk
            if marker in seen:
                first = (time.perf_counter() - t0) * 1000
        if not stream:
            break
    total = (time.perf_counter() - t0) * 1000
    return total, first if first is not None else total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("psf", nargs="?", default="target/release/psf")
    ap.add_argument("--requests", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, key = start_demo(args.psf, "sqlite://" + os.path.join(tmp, "bench.db"), latency_ms=0)
        try:
            u = urllib.parse.urlparse(url)
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            rows = []
            for door, (path, body) in DOORS.items():
                for stream in [False, True] if door != "embeddings" else [False]:
                    for _ in range(20):  # warm up
                        call(conn, path, body, key, stream)
                    times, firsts = [], []
                    for _ in range(args.requests):
                        total, first = call(conn, path, body, key, stream)
                        times.append(total)
                        firsts.append(first)
                    rows.append((door + (" (stream)" if stream else ""), times, firsts if stream else None))
        finally:
            stop_demo(proc)
    print(f"{'door':<22}{'p50 ms':>9}{'p99 ms':>9}{'first text p50':>16}")
    for name, times, firsts in rows:
        first = f"{pct(firsts, 50):.2f}" if firsts else "-"
        print(f"{name:<22}{pct(times, 50):>9.2f}{pct(times, 99):>9.2f}{first:>16}")


if __name__ == "__main__":
    main()
