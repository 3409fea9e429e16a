"""Run every benchmark and print one table: ours against its floor, as ratios.

    uv run python bench/run.py                  # all, about 3 minutes on 2 cores
    uv run python bench/run.py --only cold_start,tokens
    uv run python bench/run.py --readme         # also rewrite the table in bench/README.md

Results also go to ``bench/results/latest.json`` (not committed). Benchmarks are not tests: nothing
here fails a build; a missed target is printed as MISSED.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from common import BENCH, Row, machine

README = BENCH / "README.md"
RESULTS = BENCH / "results"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def benches(quick: bool) -> dict[str, Callable[[], list[Row]]]:
    import cold_start
    import http_flood
    import per_call
    import redis_tools
    import run_sql
    import startup_profile
    import throughput
    import tokens
    import waits

    return {
        "cold_start": lambda: cold_start.run(runs=6 if quick else 12),
        "startup": lambda: startup_profile.run(samples=3 if quick else 5),
        "per_call": lambda: per_call.run(calls=60 if quick else 200),
        "waits": lambda: waits.run(instances=20 if quick else 100, per_instance=10),
        "replicas": lambda: waits.run_matrix(instances=20 if quick else 100, per_instance=10),
        "throughput": lambda: throughput.run(seconds=2 if quick else 5, clients=50),
        "tokens": tokens.run,
        "http_flood": lambda: http_flood.run(count=2000 if quick else 10_000),
        "run_sql": lambda: run_sql.run(samples=30 if quick else 100),
        "redis_tools": lambda: redis_tools.run(samples=60 if quick else 600),
    }


def fmt(value: float | None) -> str:
    if value is None:
        return ""
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def table(rows: list[Row]) -> str:
    lines = [
        "| bench | measure | ours | floor | unit | ratio | target | | notes |",
        "|---|---|--:|--:|---|--:|---|---|---|",
    ]
    for r in rows:
        verdict = "" if r.ok is None else ("ok" if r.ok else "**MISSED**")
        lines.append(
            f"| {r.bench} | {r.measure.strip()} | {fmt(r.ours)} | {fmt(r.floor)} | {r.unit} | "
            f"{fmt(r.ratio)} | {r.target} | {verdict} | {r.note} |"
        )
    return "\n".join(lines)


def machine_line(info: dict[str, str]) -> str:
    return f"{info['nproc']} CPUs ({info['cpu']}), Python {info['python']}, mcp {info['mcp']}, {info['os']}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="comma-separated subset: " + ", ".join(benches(False)))
    parser.add_argument("--quick", action="store_true", help="fewer runs: a smoke check, not a measurement")
    parser.add_argument("--readme", action="store_true", help="write the table into bench/README.md")
    args = parser.parse_args()
    selected = benches(args.quick)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = set(names) - set(selected)
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
        selected = {n: selected[n] for n in names}

    info = machine()
    print(f"machine: {machine_line(info)}", flush=True)
    rows: list[Row] = []
    timings: dict[str, float] = {}
    started = time.monotonic()
    for name, bench in selected.items():
        print(f"running {name} ...", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        rows.extend(bench())
        timings[name] = round(time.monotonic() - t0, 1)
    total = time.monotonic() - started

    text = table(rows)
    print()
    print(text)
    print(f"\n{len(selected)} benchmarks in {total:.0f} s ({', '.join(f'{n} {s:g} s' for n, s in timings.items())})")
    missed = [f"{r.bench}: {r.measure.strip()}" for r in rows if r.ok is False]
    if missed:
        print("missed targets: " + "; ".join(missed))

    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    (RESULTS / "latest.json").write_text(
        json.dumps(
            {
                "when": stamp,
                "machine": info,
                "seconds": timings,
                "quick": args.quick,
                "rows": [r.as_dict() for r in rows],
            },
            indent=1,
        )
    )
    if args.readme:
        write_readme(text, info, stamp, total, args)
    return 0


def write_readme(text: str, info: dict[str, str], stamp: str, total: float, args: argparse.Namespace) -> None:
    body = README.read_text()
    if BEGIN not in body or END not in body:
        raise SystemExit(f"{README} has no {BEGIN} … {END} markers")
    how = (
        "uv run python bench/run.py"
        + (f" --only {args.only}" if args.only else "")
        + (" --quick" if args.quick else "")
    )
    block = (
        f"{BEGIN}\nLast run {stamp[:16].replace('T', ' ')} UTC, `{how}`, {total:.0f} s, on "
        f"{machine_line(info)}:\n\n{text}\n{END}"
    )
    head, rest = body.split(BEGIN, 1)
    README.write_text(head + block + rest.split(END, 1)[1])
    print(f"wrote the table into {Path(README).relative_to(BENCH.parent)}")


if __name__ == "__main__":
    sys.exit(main())
