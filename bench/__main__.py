"""`make bench [QUICK=1] [PROFILE=1]`: run the suite, print the table, write the results.

The full run writes `bench/results.{md,png,json}`; the quick one (small sizes, what CI runs
so the suite never rots) writes `bench/quick/`; a profiled run writes `bench/profiles/`,
whose figures are perturbed by the sampling. Every run fails if a figure was not produced;
none fails for being slow (timing gates on shared machines are flaky).
"""

import argparse
import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import latency, load, report, settlement
from bench.figures import Results
from bench.load import ensure_wrk
from bench.profile import Profiler
from bench.stack import local_stack

log = logging.getLogger("bench")
HERE = Path(__file__).resolve().parent
SECTIONS = ("latency", "servers", "settlement", "memory")


@dataclass(frozen=True)
class Sizes:
    settle_counts: tuple[int, ...]
    latency_bets: int
    score_changes: int
    creates: int
    wrk_seconds: float
    wrk_rounds: int


FULL = Sizes((10_000, 100_000, 1_000_000), 1000, 30, 20, 10, 3)
QUICK = Sizes((10_000,), 200, 10, 5, 2, 2)
# Profiling samples the 100k settlement; a 1M one would add many minutes and nothing new.
PROFILED = Sizes((100_000,), 1000, 30, 20, 10, 3)


def measure(sizes: Sizes, profiler: Profiler, keep_logs: Path | None) -> Results:
    results = Results()
    with local_stack() as stack, stack.client() as client:
        log.info("stack up; warming up the pipeline")
        settlement.settle(stack, client, 30)  # every function has joined and done work
        log.info("latency")
        latency.run(
            stack,
            client,
            results,
            bets=sizes.latency_bets,
            changes=sizes.score_changes,
            creates=sizes.creates,
            profiler=profiler,
        )
        log.info("servers throughput")
        load.run(
            stack,
            client,
            results,
            seconds=sizes.wrk_seconds,
            rounds=sizes.wrk_rounds,
            page_player="latency-player-0",
            profiler=profiler,
        )
        log.info("settlement")
        settlement.run(
            stack,
            client,
            results,
            counts=list(sizes.settle_counts),
            profiler=profiler,
            profile_count=100_000 if 100_000 in sizes.settle_counts else sizes.settle_counts[0],
        )
        if keep_logs is not None:  # e.g. the batch sizes the sinks log at each checkpoint
            keep_logs.mkdir(exist_ok=True)
            for path in stack.workdir.glob("*.log"):
                shutil.copy(path, keep_logs)
    return results


def missing(results: Results) -> list[str]:
    """What this run should have produced and did not."""
    problems = [f"{f.section}: {f.name}" for f in results.figures if not f.produced()]
    sections = {f.section for f in results.figures}
    problems += [f"no {s} figures" for s in SECTIONS if s not in sections]
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (about 2 minutes)")
    parser.add_argument("--profile", action="store_true", help="attach py-spy; see bench/profiles")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("httpx", "alembic", "betting"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    command = "make bench" + " QUICK=1" * args.quick + " PROFILE=1" * args.profile
    out = HERE / "profiles" if args.profile else HERE / "quick" if args.quick else HERE
    out.mkdir(exist_ok=True)
    ensure_wrk()  # before minutes of work, not after
    profiler = Profiler(out if args.profile else None)
    about = report.machine()
    started = time.monotonic()
    sizes = QUICK if args.quick else PROFILED if args.profile else FULL
    results = measure(sizes, profiler, out / "logs" if args.profile else None)
    results.notes.append(f"The whole run took {(time.monotonic() - started) / 60:.1f} minutes.")
    print(report.text_table(results))
    comment = {"$comment": f"Every figure and sample of `{command}`; results.md is its table."}
    document = {**comment, **about, **results.as_json()}
    (out / "results.json").write_text(json.dumps(document, indent=1))
    (out / "results.md").write_text(report.markdown(results, command, about, "results.png"))
    report.plot(results, out / "results.png")
    profiler.write_summary()
    log.info("wrote %s", out / "results.md")
    problems = missing(results)
    if problems:
        sys.exit("figures not produced:\n  " + "\n  ".join(problems))


if __name__ == "__main__":
    main()
