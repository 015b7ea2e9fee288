#!/usr/bin/env python3
"""The runner's serving path around a stub model, for bench/bench_hop_floor.py.

Serves the real RunnerService, CallStream and gRPC server (the secret, the calls in turn) on
the socket named, with a handler whose embed holds its thread busy for --work-ms and returns
one 384-wide vector per text. So a call costs exactly the serving path plus a known compute time.

    .venv/bin/python bench/hop_floor_runner.py unix:///tmp/floor.sock --work-ms 2.5
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from runner.device_profile import unmeasured  # noqa: E402
from runner.handlers.base import EmbedOutput  # noqa: E402
from runner.logs import JsonLogger  # noqa: E402
from runner.server import build_server, make_pool  # noqa: E402

#: What the gateway side passes as the runner's secret.
SECRET = "floor"


class BusyHandler:
    """Computes nothing for work_ms on the calling thread, as a forward pass would hold it."""

    capabilities = ("text-embedding",)
    dimensions = 384
    max_tokens = 512

    def __init__(self, work_ms: float) -> None:
        self._work_s = work_ms / 1000
        self._row = np.linspace(-1, 1, self.dimensions, dtype=np.float32)

    def embed(self, texts, opts) -> EmbedOutput:
        until = time.perf_counter() + self._work_s
        while time.perf_counter() < until:
            pass
        return EmbedOutput(vectors=np.tile(self._row, (len(texts), 1)), token_counts=[8] * len(texts))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("socket")
    p.add_argument("--work-ms", type=float, default=0)
    args = p.parse_args()
    # A CPU's profile: calls are served in turn on the stream's thread.
    server, _ = build_server("floor", "cpu", BusyHandler(args.work_ms), make_pool(1), args.socket, SECRET,
                             JsonLogger("info", model="floor"), unmeasured(torch.device("cpu")))
    server.start()
    print("ready", flush=True)
    server.wait_for_termination()
    return 0


if __name__ == "__main__":
    sys.exit(main())
