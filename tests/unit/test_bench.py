"""The benchmark suite's own arithmetic: percentiles, completeness, profile shares."""

import math
from collections import Counter

from bench.__main__ import SECTIONS, missing
from bench.figures import Figure, Results, percentile
from bench.profile import Profile, shares


def _figure(section: str, value: float, baseline: float = 1.0) -> Figure:
    return Figure(section, "x", value, "ms", baseline, "floor")


def test_percentile_is_a_measured_value_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([3.0, 1.0, 2.0], 50) == 2
    assert math.isnan(percentile([], 50))


def test_a_figure_without_a_finite_positive_value_or_baseline_was_not_produced() -> None:
    assert _figure("latency", 12.0).produced()
    assert not _figure("latency", math.nan).produced()
    assert not _figure("latency", 12.0, baseline=0.0).produced()
    assert not _figure("latency", 0.0).produced()
    assert not _figure("latency", math.inf).produced()


def test_a_run_missing_a_section_or_a_figure_is_reported() -> None:
    complete = Results()
    complete.add(*(_figure(s, 1.0) for s in SECTIONS))
    assert missing(complete) == []
    partial = Results()
    partial.add(_figure("latency", math.nan), _figure("gateway", 1.0), _figure("book", 1.0))
    assert missing(partial) == [
        "latency: x",
        "no settlement figures",
        "no memory figures",
        "no stream figures",
    ]
    assert missing(partial, ("gateway", "book")) == ["latency: x"]


def test_profile_shares_count_the_running_function_and_every_caller_once() -> None:
    stacks = Counter(
        {
            "main (app.py:1);loop (app.py:5);score (score.py:10)": 6,
            "main (app.py:1);loop (app.py:5);score (score.py:11);dump (json.py:3)": 2,
            "main (app.py:1);loop (app.py:6)": 2,
        }
    )
    own, inclusive = shares(Profile("phase", "scorer", 1.0, "active", stacks))
    assert dict(own) == {"score (score.py)": 60.0, "loop (app.py)": 20.0, "dump (json.py)": 20.0}
    assert dict(inclusive)["main (app.py)"] == 100.0
    assert dict(inclusive)["score (score.py)"] == 80.0
