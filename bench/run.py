"""``make bench``: the gateway against a bare Starlette + sqlite3 baseline, in one run.

1. Seeds a fresh SQLite database through the gateway's own CLI (migrate, 10,000 candidates
   via ``candidates import``, one key).
2. Starts the gateway (``gateway serve``, production settings, JSON access log to a file, rate
   limit raised above the offered load) and the baseline (``bench/baseline_app.py``) twice, on
   uvloop and on the stdlib asyncio loop (the gateway's), each one uvicorn worker pinned to
   core 0; wrk runs pinned to core 1. Loopback only.
3. For 1 and 32 connections, for each scenario (REST write, GraphQL ``expressInterest``,
   GraphQL ``jobMatches(first: 50)``): a short warm-up of each, then rounds interleaved
   baseline, baseline (asyncio), gateway, baseline, ... Medians of the rounds are reported;
   ratios are taken against the stricter baseline (the higher req/s, the lower p99).
4. After every write run: every success wrk saw has its row, no duplicate public ids, the
   row delta matches the successes (allowing for requests in flight when wrk stopped).
5. The REST and GraphQL write scenarios again with the gateway on the local PostgreSQL
   (schema reset first), reported beside SQLite.
6. Writes bench/results/latest.json and prints the table.

Options: ``--quick`` for a smoke run; see ``--help``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from bench import common
from bench.common import log, median

# name, gateway mode, baseline mode, writes?
SCENARIOS = [
    ("rest-write", "rest-write", "rest-write", True),
    ("graphql-write", "graphql-write", "rest-write", True),
    ("graphql-read", "graphql-read", "baseline-read", False),
]
PG_SCENARIOS = [s for s in SCENARIOS if s[3]]
# At 32 connections, in one run: (scenario, minimum req/s ratio, maximum p99 ratio).
TARGETS = [("rest-write", 0.5, 3.0), ("graphql-write", 0.3, 3.0)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round of 2 s")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per target")
    parser.add_argument("--connections", default="1,32", help="comma-separated")
    parser.add_argument("--candidates", type=int, default=10_000)
    parser.add_argument("--scenarios", default=",".join(s[0] for s in SCENARIOS))
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL runs")
    parser.add_argument("--pg-url", default=common.PG_URL, help="its public schema is reset!")
    parser.add_argument("--redis-url", default=None, help="rate-limit buckets in Redis")
    parser.add_argument("--out", type=Path, default=common.RESULTS / "latest.json")
    parser.add_argument("--report", type=Path, help="only print the table of a result file")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 2.0, 1.0
    args.connections = [int(c) for c in args.connections.split(",")]
    args.scenarios = args.scenarios.split(",")
    return args


def _summary(runs: list[common.WrkRun]) -> dict[str, object]:
    return {
        "rps": median([r.rps for r in runs]),
        "p50_ms": median([r.p50_ms for r in runs]),
        "p99_ms": median([r.p99_ms for r in runs]),
        "rounds": [r.public() for r in runs],
    }


def _one(target: common.Server, mode: str, writes: bool, seeded: common.Seeded,
         connections: int, seconds: float, workdir: Path) -> common.WrkRun:  # fmt: skip
    wrk_args = (target.url, mode, seeded.key, seeded.candidates, connections, seconds, workdir)
    if writes:
        run = common.checked_write_run(seeded.database_url, *wrk_args)
    else:
        run = common.checked_read_run(*wrk_args)
    flag = "" if run.check["ok"] else f"  CHECK FAILED: {run.check['problems']}"
    log(
        f"  {target.name:18} {mode:14} c={connections:<3} {run.rps:8.1f} req/s  "
        f"p50 {run.p50_ms:7.2f} ms  p99 {run.p99_ms:7.2f} ms{flag}"
    )
    return run


def measure(
    targets: dict[str, tuple[common.Server, str]],
    writes: bool,
    seeded: common.Seeded,
    connections: int,
    args: argparse.Namespace,
    workdir: Path,
) -> dict[str, list]:
    """Warm each target up, then interleave them round by round: A B A B ..."""
    for server, mode in targets.values():
        _one(server, mode, writes, seeded, connections, args.warmup, workdir)
    runs: dict[str, list[common.WrkRun]] = {name: [] for name in targets}
    for _ in range(args.rounds):
        for name, (server, mode) in targets.items():
            runs[name].append(
                _one(server, mode, writes, seeded, connections, args.duration, workdir)
            )
    return runs


BASELINES = ("baseline", "baseline_asyncio")


def _reference(rounds: list[dict[str, object]]) -> dict[str, float]:
    """The strictest baseline figure of a set of runs: the highest req/s, the lowest p99."""
    return {
        "rps": max(r["rps"] for r in rounds),
        "p99_ms": min(r["p99_ms"] for r in rounds),
    }


def _ratios(entry: dict[str, object]) -> None:
    """Ratios against the stricter of the two baselines (uvloop is the faster, asyncio has the
    shorter tail), so that neither loop choice flatters the gateway."""
    baselines = [entry[name] for name in BASELINES if entry.get(name)]
    gw = entry["gateway"]
    ref = _reference(baselines)
    entry["reference"] = ref
    entry["ratio_rps"] = round(gw["rps"] / ref["rps"], 3)
    entry["ratio_p99"] = round(gw["p99_ms"] / ref["p99_ms"], 3)
    # Paired: round i of the gateway against round i of the baselines (run just before it),
    # which cancels most of the drift when other work shares the machine.
    pairs = []
    for i, g in enumerate(gw["rounds"]):
        same_round = [b["rounds"][i] for b in baselines if i < len(b["rounds"])]
        if same_round:
            pairs.append((_reference(same_round), g))
    entry["paired_ratio_rps"] = median([g["rps"] / b["rps"] for b, g in pairs])
    entry["paired_ratio_p99"] = median([g["p99_ms"] / b["p99_ms"] for b, g in pairs])


def run_sqlite(args: argparse.Namespace, workdir: Path) -> list[dict[str, object]]:
    db_path = workdir / "bench.sqlite3"
    log(f"seeding {db_path} through the gateway CLI ({args.candidates} candidates)")
    seeded = common.seed(common.sqlite_url(db_path), workdir, args.candidates)
    extra = {"GATEWAY_REDIS_URL": args.redis_url} if args.redis_url else None
    entries = []
    with (
        common.running(common.start_baseline, db_path, workdir / "baseline.log") as baseline,
        common.running(
            common.start_baseline, db_path, workdir / "baseline-asyncio.log", "asyncio"
        ) as baseline_asyncio,
        common.running(
            common.start_gateway, seeded.database_url, workdir / "gateway-sqlite.log", extra
        ) as gateway,
    ):
        log(
            f"baselines on {baseline.url} (uvloop) and {baseline_asyncio.url} (asyncio), "
            f"gateway on {gateway.url} (all on core 0)"
        )
        for connections in args.connections:
            for name, gw_mode, base_mode, writes in SCENARIOS:
                if name not in args.scenarios:
                    continue
                log(f"scenario {name}, {connections} connection(s)")
                targets = {
                    "baseline": (baseline, base_mode),
                    "baseline_asyncio": (baseline_asyncio, base_mode),
                    "gateway": (gateway, gw_mode),
                }
                runs = measure(targets, writes, seeded, connections, args, workdir)
                entry = {
                    "scenario": name,
                    "connections": connections,
                    "database": "sqlite",
                    "baseline_mode": base_mode,
                    **{target: _summary(rounds) for target, rounds in runs.items()},
                }
                _ratios(entry)
                entries.append(entry)
    return entries


def run_postgres(args: argparse.Namespace, workdir: Path,
                 sqlite_entries: list[dict[str, object]]) -> list[dict[str, object]]:  # fmt: skip
    log(f"resetting the public schema of {args.pg_url} and seeding it through the CLI")
    common.reset_postgres(args.pg_url)
    seeded = common.seed(args.pg_url, workdir, args.candidates)
    extra = {"GATEWAY_REDIS_URL": args.redis_url} if args.redis_url else None
    entries = []
    baselines = {(e["scenario"], e["connections"]): e for e in sqlite_entries}
    with common.running(
        common.start_gateway, args.pg_url, workdir / "gateway-postgres.log", extra
    ) as gateway:
        log(f"gateway on PostgreSQL at {gateway.url}")
        for connections in args.connections:
            names = [s for s in PG_SCENARIOS if s[0] in args.scenarios]
            for name, gw_mode, _base_mode, writes in names:
                log(f"scenario {name} (PostgreSQL), {connections} connection(s)")
                runs = measure({"gateway": (gateway, gw_mode)}, writes, seeded, connections,
                               args, workdir)  # fmt: skip
                entry = {
                    "scenario": name,
                    "connections": connections,
                    "database": "postgresql",
                    "gateway": _summary(runs["gateway"]),
                }
                # The SQLite baselines of the same run: a reference, not a like-for-like.
                sqlite_entry = baselines.get((name, connections))
                if sqlite_entry:
                    entry.update({b: sqlite_entry[b] for b in BASELINES if b in sqlite_entry})
                    _ratios(entry)
                entries.append(entry)
    return entries


def evaluate(entries: list[dict[str, object]]) -> list[dict[str, object]]:
    verdicts = []
    for name, min_ratio, max_p99 in TARGETS:
        for entry in entries:
            if (
                entry["scenario"] == name
                and entry["connections"] == 32
                and entry["database"] == "sqlite"
            ):
                verdicts.append(
                    {
                        "scenario": name,
                        "ratio_rps": entry["ratio_rps"],
                        "target_ratio_rps": min_ratio,
                        "ratio_p99": entry["ratio_p99"],
                        "target_ratio_p99": max_p99,
                        "met": entry["ratio_rps"] >= min_ratio and entry["ratio_p99"] <= max_p99,
                    }
                )
    return verdicts


def _all_checks(entries: list[dict[str, object]]) -> tuple[bool, list[str]]:
    problems = []
    for entry in entries:
        for side in (*BASELINES, "gateway"):
            if entry["database"] == "postgresql" and side != "gateway":
                continue  # the SQLite baselines' rounds, already checked
            if entry.get(side):
                for run in entry[side]["rounds"]:
                    if not run["check"]["ok"]:
                        problems.append(
                            f"{entry['database']} {entry['scenario']} c={entry['connections']} "
                            f"{side}: {run['check']['problems']}"
                        )
    return not problems, problems


def table(entries: list[dict[str, object]]) -> str:
    lines = [
        "| database | scenario | conns | baseline req/s uvloop / asyncio | gateway req/s | "
        "ratio (paired) | baseline p99 ms uvloop / asyncio | gateway p50 / p99 ms | "
        "p99 ratio (paired) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in entries:
        b, a, g = e.get("baseline") or {}, e.get("baseline_asyncio") or {}, e["gateway"]
        lines.append(
            f"| {e['database']} | {e['scenario']} | {e['connections']} | "
            f"{b.get('rps', '-')} / {a.get('rps', '-')} | {g['rps']} | "
            f"{e.get('ratio_rps', '-')} ({e.get('paired_ratio_rps', '-')}) | "
            f"{b.get('p99_ms', '-')} / {a.get('p99_ms', '-')} | {g['p50_ms']} / {g['p99_ms']} | "
            f"{e.get('ratio_p99', '-')} ({e.get('paired_ratio_p99', '-')}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        entries = json.loads(args.report.read_text())["entries"]
        for entry in entries:
            if any(entry.get(b) for b in BASELINES):
                _ratios(entry)
        print(table(entries))
        return 0
    started = time.time()
    load_before = list(os.getloadavg())
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    workdir = common.fresh_dir(common.RESULTS / "work")
    entries = run_sqlite(args, workdir)
    if not args.no_postgres:
        entries += run_postgres(args, workdir, entries)
    checks_ok, problems = _all_checks(entries)
    verdicts = evaluate(entries)
    result = {
        "meta": {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "elapsed_s": round(time.time() - started, 1),
            "python": sys.version.split()[0],
            "machine": platform.platform(),
            "cpu_pinning": {"servers": common.SERVER_CORE, "wrk": common.WRK_CORE},
            "rounds": args.rounds,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "candidates": args.candidates,
            "quick": args.quick,
            "redis": bool(args.redis_url),
            "statistic": "median of interleaved rounds",
            # Other work on the machine shares core 0 with the servers: keep it on record.
            "loadavg_before": load_before,
            "loadavg_after": list(os.getloadavg()),
        },
        "entries": entries,
        "targets": verdicts,
        "checks_ok": checks_ok,
        "check_problems": problems,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(table(entries))
    print()
    for v in verdicts:
        print(
            f"target {v['scenario']}: ratio {v['ratio_rps']} (>= {v['target_ratio_rps']}), "
            f"p99 ratio {v['ratio_p99']} (<= {v['target_ratio_p99']}): "
            f"{'met' if v['met'] else 'NOT met'}"
        )
    print(f"integrity checks: {'all passed' if checks_ok else 'FAILED'}")
    for problem in problems:
        print("  " + problem)
    print(f"wrote {args.out} ({result['meta']['elapsed_s']} s)")
    return 0 if checks_ok else 1


if __name__ == "__main__":
    sys.exit(main())
