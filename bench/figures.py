"""What a scenario measured: figures with their same-run baselines, and the raw samples."""

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Figure:
    """One measured value beside the baseline it is judged against."""

    section: str
    name: str
    value: float
    unit: str
    baseline: float
    baseline_name: str
    target: str = ""
    # Whether the target holds; None when the figure has no target of its own.
    met: bool | None = None

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else math.nan

    def produced(self) -> bool:
        """Non-empty and finite, baseline included: what the quick run checks."""
        numbers = (self.value, self.baseline, self.ratio)
        return all(math.isfinite(x) for x in numbers) and self.value > 0 and self.baseline > 0


@dataclass
class Results:
    """Everything one run produced."""

    figures: list[Figure] = field(default_factory=list)
    # Raw samples for the plot: name → list of numbers or of rows.
    samples: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, *figures: Figure) -> None:
        self.figures.extend(figures)

    def as_json(self) -> dict[str, Any]:
        return {
            "figures": [{**asdict(f), "ratio": f.ratio} for f in self.figures],
            "samples": self.samples,
            "notes": self.notes,
        }


def percentile(values: list[float], q: float) -> float:
    """The `q`-th percentile (0–100), nearest-rank: a value that was actually measured."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]
