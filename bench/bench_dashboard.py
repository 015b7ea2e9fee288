#!/usr/bin/env python3
"""What the dashboard costs: its size over the wire, and throughput with it open against closed.

    .venv/bin/python bench/bench_dashboard.py

"Open" does what the page does while it is shown: it follows /stats/stream and fetches
/v1/models and /health every 2 seconds. Each round measures 32 clients sending one text each
and 4 clients sending 32 texts each (bench_embeddings.py's corpus and clients), once with the page
closed and once open, back to back; the figures are medians of the per-round ratios. This is a
measurement, not a test.
"""

from __future__ import annotations

import argparse
import http.client
import signal
import statistics
import sys
import threading
from urllib.parse import urlparse

from bench_embeddings import corpus, load, start_server

ASSETS = ["/", "/ui/app.js", "/ui/app.css", "/ui/vendor/uPlot.iife.min.js", "/ui/vendor/uPlot.min.css"]


def page_bytes(url: str) -> dict[str, int]:
    """Bytes of the page and each asset as served, headers excluded."""
    u = urlparse(url)
    sizes = {}
    for path in ASSETS:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        conn.request("GET", path, headers={"accept-encoding": "gzip, br"})
        sizes[path] = len(conn.getresponse().read())
        conn.close()
    return sizes


class OpenPage:
    """Follows the stats stream and polls the model list and health every 2 s, until closed."""

    def __init__(self, url: str) -> None:
        self._u = urlparse(url)
        self._stop = threading.Event()
        self.events = 0
        self._threads = [threading.Thread(target=self._stream, daemon=True),
                         threading.Thread(target=self._poll, daemon=True)]
        for t in self._threads:
            t.start()

    def _stream(self) -> None:
        conn = http.client.HTTPConnection(self._u.hostname, self._u.port, timeout=10)
        conn.request("GET", "/stats/stream")
        res = conn.getresponse()
        while not self._stop.is_set():
            if res.readline().startswith(b"event: sample"):
                self.events += 1
        conn.close()

    def _poll(self) -> None:
        conn = http.client.HTTPConnection(self._u.hostname, self._u.port, timeout=10)
        while not self._stop.wait(2):
            for path in ("/v1/models", "/health"):
                conn.request("GET", path)
                conn.getresponse().read()

    def close(self) -> None:
        self._stop.set()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    from machine import cpu_description

    cpu, flags = cpu_description()
    print(f"CPU: {cpu}\nflags: {flags}", flush=True)
    texts = corpus()
    proc, url = start_server({"PRECISION": "fp32"})
    try:
        sizes = page_bytes(url)
        print(f"page over the wire: {sum(sizes.values()) / 1024:.1f} KiB in all, uncompressed ("
              + ", ".join(f"{path} {n / 1024:.1f} KiB" for path, n in sizes.items()) + ")")
        load(url, texts[:64], 4, 16)  # warm
        ratios: dict[str, list[float]] = {"32 x 1": [], "4 x 32": []}
        events = 0
        for _ in range(args.rounds):
            for shape, (clients, per) in {"32 x 1": (32, 1), "4 x 32": (4, 32)}.items():
                closed = load(url, texts, clients, per)["texts_per_s"]
                page = OpenPage(url)
                opened = load(url, texts, clients, per)["texts_per_s"]
                page.close()
                events += page.events
                ratios[shape].append(opened / closed)
                print(f"  {shape}: closed {closed:.1f} texts/s, open {opened:.1f} texts/s", flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    for shape, r in ratios.items():
        print(f"{shape}: throughput with the page open = {statistics.median(r):.3f}x closed (median of {len(r)} rounds)")
    print(f"the open page received {events} stream events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
