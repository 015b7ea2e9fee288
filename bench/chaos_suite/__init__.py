"""Chaos and reliability scenarios for edge-embed; bench/chaos.py runs them and prints one table.

Each scenario is a function run(ctx) -> list[Row] that starts the servers it needs, drives them
on 127.0.0.1 with bounded loops, and reports figures against targets. SCENARIOS maps the names
accepted by `--only` to those functions, in the order the suite runs them.
"""

from __future__ import annotations

from typing import Callable

from . import bad_inputs, big_request, correctness, lifecycle, log_floods, overload, poison, restarts, slow_clients, soak
from .results import Context, Row

SCENARIOS: dict[str, Callable[[Context], list[Row]]] = {
    "correctness": correctness.run,
    "poison": poison.run,
    "big_request": big_request.run,
    "runner_kill": restarts.run,
    "sigstop": lifecycle.run_sigstop,
    "gateway_kill": lifecycle.run_gateway_kill,
    "drain": lifecycle.run_drain,
    "overload": overload.run,
    "bad_inputs": bad_inputs.run,
    "log_floods": log_floods.run,
    "slow_loris": slow_clients.run_slow_loris,
    "disconnect_storm": slow_clients.run_disconnect_storm,
    "soak": soak.run,
}
