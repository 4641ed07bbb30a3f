#!/usr/bin/env python3
"""Load benchmark of `psf serve`: the mock upstream directly vs. through the gateway.

What it does, in order:
  1. installs the open-loop load generator `oha` from crates.io if it is not on PATH
     (fixed request rate with `--latency-correction`, so a slow response does not hide
     the requests that should have been sent meanwhile);
  2. builds psf in release mode;
  3. starts `psf mock-upstream` with a fixed 50 ms latency and `psf serve` with
     bench/psf.yaml (every input and output control on, the SQLite audit log writing);
  4. for each rate, runs oha against the mock directly and then through the gateway, with
     the same body, and reports throughput, errors and latency percentiles; the added
     latency is the difference of the two runs' percentiles, and the gateway's own
     `psf_overhead_seconds` histogram gives the time spent inside psf;
  5. the same for streamed calls (time to first byte and to the end of the stream);
  6. holds N concurrent long streams open and samples the gateway's resident memory.

Usage:
  python3 bench/gateway.py [--duration 20] [--rates 500,2000,5000] [--stream-rate 500]
                           [--streams 1000] [--json results.json]

Only the standard library; run it from the repository root on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OHA_VERSION = "1.16.0"
UPSTREAM_LATENCY_MS = 50
PROMPT = (
    "Hello, I ordered a blue kettle last week and the tracking page has not changed since "
    "Monday. Could you tell me when it will arrive and whether I can still change the address?"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def oha_path() -> str:
    found = shutil.which("oha") or shutil.which(str(Path.home() / ".cargo/bin/oha"))
    if found:
        return found
    print(f"installing oha {OHA_VERSION} from crates.io (a few minutes on 2 cores)", flush=True)
    subprocess.run(["cargo", "install", "oha", "--locked", "--version", OHA_VERSION], check=True)
    return str(Path.home() / ".cargo/bin/oha")


def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"{url} did not answer within {timeout} s")


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, in KiB."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                values[key] = int(value.split()[0])
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


class RssSampler:
    """Samples a process's resident memory every 50 ms and keeps the peak."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid)[0])
            time.sleep(0.05)


def overhead_buckets(metrics_url: str) -> dict[float, float]:
    """Cumulative counts of `psf_overhead_seconds`, summed over decision points, by bound."""
    with urllib.request.urlopen(metrics_url, timeout=5) as r:
        text = r.read().decode()
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("psf_overhead_seconds_bucket{"):
            labels, value = line.rsplit(" ", 1)
            le = labels.split('le="', 1)[1].split('"', 1)[0]
            bound = float("inf") if le == "+Inf" else float(le)
            buckets[bound] = buckets.get(bound, 0.0) + float(value)
    return buckets


def bucket_quantile(before: dict[float, float], after: dict[float, float], q: float) -> str:
    """The upper bound of the histogram bucket holding quantile q of what was added."""
    bounds = sorted(after)
    total = after[bounds[-1]] - before.get(bounds[-1], 0.0)
    if total <= 0:
        return "n/a"
    for bound in bounds:
        if after[bound] - before.get(bound, 0.0) >= q * total:
            return "> 60 s" if bound == float("inf") else f"<= {bound * 1000:g} ms"
    return "n/a"


def oha(tool: str, url: str, body: str, *, rate: int | None, duration: int, connections: int,
        key: str | None = None) -> dict:
    args = [tool, url, "-m", "POST", "-T", "application/json", "-d", body, "-z", f"{duration}s",
            "-c", str(connections), "--no-tui", "--output-format", "json", "-w", "-t", "30s"]
    if rate is not None:
        args += ["-q", str(rate), "--latency-correction"]
    if key is not None:
        args += ["-H", f"Authorization: Bearer {key}"]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def summarise(result: dict) -> dict:
    codes = result.get("statusCodeDistribution") or {}
    ok = codes.get("200", 0)
    errors = sum(v for k, v in codes.items() if k != "200") + sum((result.get("errorDistribution") or {}).values())
    lat = result["latencyPercentiles"]
    first = result.get("firstBytePercentiles") or {}
    return {
        "requests_per_s": round(result["summary"]["requestsPerSec"], 1),
        "ok": ok,
        "errors": errors,
        "error_kinds": {**{k: v for k, v in codes.items() if k != "200"}, **(result.get("errorDistribution") or {})},
        "p50_ms": round((lat.get("p50") or 0) * 1000, 3),
        "p99_ms": round((lat.get("p99") or 0) * 1000, 3),
        "p99.9_ms": round((lat.get("p99.9") or 0) * 1000, 3),
        "ttfb_p50_ms": round((first.get("p50") or 0) * 1000, 3),
        "ttfb_p99_ms": round((first.get("p99") or 0) * 1000, 3),
    }


def body(model: str, stream: bool) -> str:
    return json.dumps({"model": model, "stream": stream, "messages": [{"role": "user", "content": PROMPT}]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=20, help="seconds per run (default 20)")
    parser.add_argument("--rates", default="500,2000,5000", help="request rates, comma-separated")
    parser.add_argument("--stream-rate", type=int, default=500, help="rate of the streaming runs")
    parser.add_argument("--streams", type=int, default=1000, help="concurrent streams held for the memory run")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--manifest", default="bench/psf.yaml",
                        help="the manifest psf serves (bench/psf-monitored.yaml adds alert rules, "
                             "quality sampling of every answer and drift windows)")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",") if r]

    tool = oha_path()
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "psf-cli"], cwd=ROOT, check=True)
    psf = str(ROOT / "target/release/psf")

    results: dict = {"upstream_latency_ms": UPSTREAM_LATENCY_MS, "duration_s": args.duration, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        mock_port, gw_port = free_port(), free_port()
        store = f"sqlite://{tmp}/bench.db"
        mock = subprocess.Popen([psf, "mock-upstream", "--listen", f"127.0.0.1:{mock_port}",
                                 "--latency-ms", str(UPSTREAM_LATENCY_MS)], stdout=subprocess.DEVNULL)
        created = subprocess.run([psf, "keys", "create", "--app", "bench", "--manifest", args.manifest,
                                  "--store", store], cwd=ROOT, check=True, capture_output=True, text=True).stdout
        key = next(line.split(": ", 1)[1] for line in created.splitlines() if line.startswith("API key: "))
        env = {**os.environ, "PSF_BENCH_UPSTREAM": f"http://127.0.0.1:{mock_port}/v1", "PSF_LOG": "warn"}
        gateway = subprocess.Popen([psf, "serve", "--manifest", args.manifest, "--listen", f"127.0.0.1:{gw_port}",
                                    "--store", store], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        try:
            wait_ready(f"http://127.0.0.1:{mock_port}/v1/models")
            wait_ready(f"http://127.0.0.1:{gw_port}/readyz")
            direct_url = f"http://127.0.0.1:{mock_port}/v1/chat/completions"
            gw_url = f"http://127.0.0.1:{gw_port}/v1/chat/completions"
            metrics_url = f"http://127.0.0.1:{gw_port}/metrics"
            print(f"gateway pid {gateway.pid}; warming up", flush=True)
            oha(tool, gw_url, body("assistant", False), rate=200, duration=3, connections=50, key=key)

            plan = [(rate, False) for rate in rates] + [(args.stream_rate, True)]
            for rate, stream in plan:
                # Enough connections for the rate at the upstream's latency, with room for tails.
                conns = max(64, int(rate * UPSTREAM_LATENCY_MS / 1000 * 3))
                direct = summarise(oha(tool, direct_url, body("demo-model", stream), rate=rate,
                                       duration=args.duration, connections=conns))
                before = overhead_buckets(metrics_url)
                with RssSampler(gateway.pid) as rss:
                    through = summarise(oha(tool, gw_url, body("assistant", stream), rate=rate,
                                            duration=args.duration, connections=conns, key=key))
                after = overhead_buckets(metrics_url)
                run = {
                    "rate": rate, "stream": stream, "connections": conns, "direct": direct, "gateway": through,
                    "added_p50_ms": round(through["p50_ms"] - direct["p50_ms"], 3),
                    "added_p99_ms": round(through["p99_ms"] - direct["p99_ms"], 3),
                    "added_p99.9_ms": round(through["p99.9_ms"] - direct["p99.9_ms"], 3),
                    "overhead_p50": bucket_quantile(before, after, 0.50),
                    "overhead_p99": bucket_quantile(before, after, 0.99),
                    "overhead_p99.9": bucket_quantile(before, after, 0.999),
                    "gateway_peak_rss_mib": round(rss.peak / 1024, 1),
                }
                results["runs"].append(run)
                print_run(run)

            # Long streams: 1 token every 200 ms for ~10 s each, N held at once.
            cfg = json.dumps({"latency_ms": UPSTREAM_LATENCY_MS, "token_delay_ms": 200}).encode()
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{mock_port}/__mock/config", data=cfg,
                                                          headers={"Content-Type": "application/json"}), timeout=5)
            with RssSampler(gateway.pid) as rss:
                held = summarise(oha(tool, gw_url, body("assistant", True), rate=None, duration=args.duration,
                                     connections=args.streams, key=key))
            results["streams"] = {"concurrent": args.streams, "gateway": held, "gateway_peak_rss_mib": round(rss.peak / 1024, 1)}
            print(f"\n{args.streams} concurrent streams (~10 s each): {held['ok']} completed, {held['errors']} errors, "
                  f"gateway peak RSS {rss.peak / 1024:.1f} MiB", flush=True)
        finally:
            gateway.terminate()
            gateway.wait(timeout=60)
            mock.terminate()
            mock.wait(timeout=10)
        with sqlite3.connect(f"{tmp}/bench.db") as db:
            results["audit_records"] = db.execute("SELECT count(*) FROM audit_log").fetchone()[0]
        print(f"audit records written: {results['audit_records']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


def print_run(run: dict) -> None:
    d, g = run["direct"], run["gateway"]
    kind = "streaming" if run["stream"] else "non-streaming"
    print(f"\n{kind} at {run['rate']} req/s ({run['connections']} connections)")
    print(f"  {'':8} {'req/s':>8} {'ok':>8} {'errors':>7} {'p50 ms':>9} {'p99 ms':>9} {'p99.9 ms':>9} {'ttfb p99':>9}")
    for name, r in (("direct", d), ("gateway", g)):
        print(f"  {name:8} {r['requests_per_s']:>8} {r['ok']:>8} {r['errors']:>7} {r['p50_ms']:>9} {r['p99_ms']:>9} "
              f"{r['p99.9_ms']:>9} {r['ttfb_p99_ms']:>9}")
    if g["error_kinds"]:
        print(f"  gateway errors: {g['error_kinds']}")
    print(f"  added latency: p50 {run['added_p50_ms']} ms, p99 {run['added_p99_ms']} ms, p99.9 {run['added_p99.9_ms']} ms")
    print(f"  time inside psf (psf_overhead_seconds): p50 {run['overhead_p50']}, p99 {run['overhead_p99']}, "
          f"p99.9 {run['overhead_p99.9']}; gateway peak RSS {run['gateway_peak_rss_mib']} MiB", flush=True)


if __name__ == "__main__":
    main()
