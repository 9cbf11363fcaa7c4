"""`make bench [QUICK=1] [PROFILE=1] [SECTIONS=...]`: run the suite, print the table, write the
results.

The full run writes `bench/results.{md,png,json}`; the quick one (small sizes, what CI runs
so the suite never rots) writes `bench/quick/`; a profiled run writes `bench/profiles/`,
whose figures are perturbed by the sampling. Every run fails if a figure was not produced;
none fails for being slow (timing gates on shared machines are flaky). `SECTIONS=gateway` (a
comma-separated subset of latency, gateway, settlement, book, stream; memory comes with
settlement) runs only those, to iterate on one part: such a run writes `bench/partial/`, never
the suite's results. The book (an event with 1M bets) and the stream (1,000 subscribers) run
last, on the same stack: their rows would only slow the sections before them.
"""

import argparse
import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import api, book, latency, load, report, settlement, stream
from bench.figures import Results
from bench.load import ensure_wrk
from bench.profile import Profiler
from bench.stack import local_stack
from betting.auth import Role

log = logging.getLogger("bench")
_ABOUT_JSON = {"$comment": "make bench's figures as data; results.md is the same as a table."}
HERE = Path(__file__).resolve().parent
SECTIONS = ("latency", "gateway", "settlement", "memory", "book", "stream")
# memory is sampled during settlement
RUNNABLE = ("latency", "gateway", "settlement", "book", "stream")
PAGE_PLAYER = "latency-player-0"


@dataclass(frozen=True)
class Sizes:
    settle_counts: tuple[int, ...]
    latency_bets: int
    score_changes: int
    creates: int
    wrk_seconds: float
    wrk_rounds: int
    book_bets: int
    subscribers: int
    slow_subscribers: int
    stream_rounds: int


FULL = Sizes((10_000, 100_000, 1_000_000), 1000, 30, 20, 10, 3, 1_000_000, 1000, 50, 20)
QUICK = Sizes((10_000,), 200, 10, 5, 2, 2, 20_000, 50, 5, 3)
# Profiling samples the 100k settlement; a 1M one would add many minutes and nothing new.
PROFILED = Sizes((100_000,), 1000, 30, 20, 10, 3, 100_000, 1000, 50, 10)


def measure(
    sizes: Sizes, profiler: Profiler, keep_logs: Path | None, sections: tuple[str, ...] = RUNNABLE
) -> Results:
    results = Results()
    with local_stack() as stack, stack.client() as client:
        log.info("stack up; warming up the pipeline")
        settlement.settle(stack, client, 30)  # every function has joined and done work
        if "latency" in sections:
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
        elif "gateway" in sections:  # the page it reads holds what the latency section leaves
            _seed_page(client, sizes.latency_bets // latency.PLAYERS)
        if "gateway" in sections:
            log.info("gateway throughput")
            load.run(
                stack,
                client,
                results,
                seconds=sizes.wrk_seconds,
                rounds=sizes.wrk_rounds,
                page_player=PAGE_PLAYER,
                profiler=profiler,
            )
        if "settlement" in sections:
            log.info("settlement")
            settlement.run(
                stack,
                client,
                results,
                counts=list(sizes.settle_counts),
                profiler=profiler,
                profile_count=100_000 if 100_000 in sizes.settle_counts else sizes.settle_counts[0],
            )
        if "book" in sections:
            log.info("book")
            book.run(stack, client, results, bets=sizes.book_bets)
        if "stream" in sections:
            log.info("stream")
            stream.run(
                stack,
                results,
                subscribers=sizes.subscribers,
                slow=sizes.slow_subscribers,
                rounds_=sizes.stream_rounds,
            )
        if keep_logs is not None:  # e.g. the batch sizes the sinks log at each checkpoint
            keep_logs.mkdir(exist_ok=True)
            for path in stack.workdir.glob("*.log"):
                shutil.copy(path, keep_logs)
    return results


def _seed_page(client: httpx.Client, bets: int) -> None:
    """The page player's bets, as the latency section would have placed them."""
    event_id = api.create_event(client, api.bearer("bench-operator", Role.OPERATOR))
    api.wait_event(client, event_id)
    player = api.bearer(PAGE_PLAYER, Role.PLAYER)
    for n in range(bets):
        api.place_bet(client, player, event_id, api.MARKETS[n % len(api.MARKETS)])


def missing(results: Results, sections: tuple[str, ...] = RUNNABLE) -> list[str]:
    """What this run should have produced and did not."""
    problems = [f"{f.section}: {f.name}" for f in results.figures if not f.produced()]
    produced = {f.section for f in results.figures}
    expected = [
        s for s in SECTIONS if s in sections or (s == "memory" and "settlement" in sections)
    ]
    problems += [f"no {s} figures" for s in expected if s not in produced]
    return problems


def _sections(value: str) -> tuple[str, ...]:
    chosen = tuple(s.strip() for s in value.split(",") if s.strip())
    unknown = [s for s in chosen if s not in RUNNABLE]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose among {', '.join(RUNNABLE)}")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (about 2 minutes)")
    parser.add_argument("--profile", action="store_true", help="attach py-spy; see bench/profiles")
    parser.add_argument(
        "--sections",
        type=_sections,
        default=RUNNABLE,
        help=f"a comma-separated subset of {','.join(RUNNABLE)} (default: all)",
    )
    args = parser.parse_args()
    partial = args.sections != RUNNABLE
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("httpx", "alembic", "betting"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    command = "make bench" + " QUICK=1" * args.quick + " PROFILE=1" * args.profile
    command += f" SECTIONS={','.join(args.sections)}" * partial
    out = HERE / "profiles" if args.profile else HERE / "quick" if args.quick else HERE
    if partial:  # never overwrites the whole suite's results
        out = HERE / "partial" / out.relative_to(HERE)
    out.mkdir(parents=True, exist_ok=True)
    ensure_wrk()  # before minutes of work, not after
    profiler = Profiler(out if args.profile else None)
    about = report.machine()
    started = time.monotonic()
    sizes = QUICK if args.quick else PROFILED if args.profile else FULL
    results = measure(sizes, profiler, out / "logs" if args.profile else None, args.sections)
    results.notes.append(f"The whole run took {(time.monotonic() - started) / 60:.1f} minutes.")
    print(report.text_table(results))
    (out / "results.json").write_text(
        json.dumps({**_ABOUT_JSON, **about, **results.as_json()}, indent=1)
    )
    (out / "results.md").write_text(report.markdown(results, command, about, "results.png"))
    if not partial:  # the plot's panels are the latency and settlement sections
        report.plot(results, out / "results.png")
    profiler.write_summary()
    log.info("wrote %s", out / "results.md")
    problems = missing(results, args.sections)
    if problems:
        sys.exit("figures not produced:\n  " + "\n  ".join(problems))


if __name__ == "__main__":
    main()
