"""What a handler runs in and why: the precision gate's verdict, kept apart from the gate itself so
that handlers can carry it without importing the gate (which imports the handlers)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .fidelity import Fidelity


@dataclass(frozen=True)
class PrecisionReport:
    """What a handler runs in, and why: logged at start and shown in Info."""

    precision: str
    #: The backend and activation precision, e.g. "openvino int8 weights, bf16 activations".
    detail: str
    fidelity: Fidelity | None = None
    converted: bool = False
    #: Each candidate's best time on the gate's corpus, and its fidelity, for the log line.
    candidates: dict[str, dict] = field(default_factory=dict)
