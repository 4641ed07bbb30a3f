"""Starting `psf demo` for a client suite, and printing each check.

Used by openai_python.py and anthropic_python.py: starts `psf demo` on a free port with a
throw-away SQLite store and reads the gateway URL and API key from its output.
"""

import subprocess
import sys
import threading
import time


def start_demo(psf: str, store: str, latency_ms: int = 5) -> tuple[subprocess.Popen, str, str]:
    proc = subprocess.Popen(
        [psf, "demo", "--listen", "127.0.0.1:0", "--upstream-latency-ms", str(latency_ms), "--store", store],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    url = key = None
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while (url is None or key is None) and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("Gateway URL: "):
            url = line.removeprefix("Gateway URL: ").strip()
        elif line.startswith("API key: "):
            key = line.removeprefix("API key: ").strip()
    if url is None or key is None:
        proc.kill()
        sys.exit("psf demo did not print its gateway URL and API key")
    # Keep reading so the pipe never fills; the last lines are checked at shutdown.
    tail: list[str] = []
    threading.Thread(target=lambda: tail.extend(proc.stdout), daemon=True).start()
    proc.tail = tail  # type: ignore[attr-defined]
    return proc, url, key


def check(name: str, ok: bool, detail: object = "") -> None:
    if not ok:
        raise AssertionError(f"{name}: {detail}")
    print(f"ok  {name}")


def stop_demo(proc: subprocess.Popen) -> str:
    """Stops the demo as a user would (Ctrl-C) and returns the last of its output."""
    import signal

    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    time.sleep(0.2)
    return "".join(proc.tail)  # type: ignore[attr-defined]
