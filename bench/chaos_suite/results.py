"""Table rows, run-wide options and figures: what every scenario reports through."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .texts import Reference


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class Row:
    """One line of the final table. ok=None marks a figure reported for information only."""

    scenario: str
    measure: str
    figure: str
    target: str
    ok: bool | None

    @property
    def verdict(self) -> str:
        """pass / FAIL / info, as printed in the table."""
        return "info" if self.ok is None else ("pass" if self.ok else "FAIL")


def check(scenario: str, measure: str, figure: Any, target: str, ok: bool | None) -> Row:
    """A row whose figure is formatted here, so that scenarios only pass raw values."""
    if isinstance(figure, float):
        figure = f"{figure:.3g}" if abs(figure) < 1000 else f"{figure:.0f}"
    return Row(scenario, measure, str(figure), target, ok)


def info(scenario: str, measure: str, figure: Any) -> Row:
    """A row that reports a figure without judging it."""
    return check(scenario, measure, figure, "-", None)


@dataclass
class Context:
    """Run-wide options every scenario reads: how long to run, where to write, the references."""

    quick: bool
    soak_seconds: float
    workdir: Path
    seed: int = 1234
    notes: list[str] = field(default_factory=list)
    _reference: "Reference | None" = None

    def pick(self, default: Any, quick: Any) -> Any:
        """The quick value under --quick, otherwise the default one."""
        return quick if self.quick else default

    @property
    def reference(self) -> "Reference":
        """The in-process sentence-transformers model, loaded on first use."""
        if self._reference is None:
            self._reference = Reference()
        return self._reference

    def say(self, message: str) -> None:
        """Progress output, flushed so that a long run shows where it is."""
        print(f"  [{time.strftime('%H:%M:%S')}] {message}", flush=True)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    """Seconds as a short millisecond figure."""
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.0f} ms"
