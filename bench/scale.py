"""``make bench-scale``: does latency hold when the tables are big?

Two fresh SQLite databases, each seeded through the gateway's CLI (``migrate``,
``candidates import`` from a CSV, one key), then given job matches for that key's client with
``bench/bulk_job_matches.py`` (one transaction, 1-3 links each):

- small: 10,000 candidates, 10,000 job matches
- large: 1,000,000 candidates, 1,000,000 job matches

Both gateways run at once (production settings, pinned to core 0; wrk on core 1) and are
measured interleaved, small, large, small, large: the p50 of the REST write route (3 random
candidates out of all of them) and of a GraphQL ``jobMatches(first: 50)`` first page with
candidates, at 1 connection (latency, not throughput). Target: large p50 <= 1.5 x small p50.
Writes bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from bench import bulk_job_matches, common
from bench.common import log, median

SIZES = {"small": (10_000, 10_000), "large": (1_000_000, 1_000_000)}
SCENARIOS = [("rest-write", True), ("graphql-read", False)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--large", type=int, default=1_000_000, help="candidates = job matches")
    args = parser.parse_args(argv)
    sizes = dict(SIZES, large=(args.large, args.large))
    started = time.time()
    workdir = common.fresh_dir(common.RESULTS / "scale")
    seeded: dict[str, common.Seeded] = {}
    load_times: dict[str, dict[str, float]] = {}
    for name, (n_candidates, n_job_matches) in sizes.items():
        db_path = workdir / f"{name}.sqlite3"
        t0 = time.monotonic()
        seeded[name] = common.seed(common.sqlite_url(db_path), workdir, n_candidates)
        t1 = time.monotonic()
        links = bulk_job_matches.load(str(db_path), seeded[name].client_id, n_job_matches)
        t2 = time.monotonic()
        load_times[name] = {
            "candidates_import_s": round(t1 - t0, 1),
            "job_matches_s": round(t2 - t1, 1),
        }
        log(f"{name}: {n_candidates} candidates (CLI, {t1 - t0:.0f} s), {n_job_matches} job "
            f"matches with {links} links (bulk script, {t2 - t1:.0f} s)")  # fmt: skip
    results: dict[str, dict[str, list[common.WrkRun]]] = {
        s: {name: [] for name in sizes} for s, _ in SCENARIOS
    }
    small_url, large_url = seeded["small"].database_url, seeded["large"].database_url
    with (
        common.running(common.start_gateway, small_url, workdir / "small.log") as small,
        common.running(common.start_gateway, large_url, workdir / "large.log") as large,
    ):
        servers = {"small": small, "large": large}
        for scenario, writes in SCENARIOS:
            for name, server in servers.items():  # warm-up (caches, page cache)
                common.wrk(server.url, scenario, seeded[name].key, seeded[name].candidates,
                           args.connections, 2, workdir)  # fmt: skip
            for _ in range(args.rounds):
                for name, server in servers.items():
                    s = seeded[name]
                    wrk_args = (server.url, scenario, s.key, s.candidates, args.connections,
                                args.duration, workdir)  # fmt: skip
                    run = (
                        common.checked_write_run(s.database_url, *wrk_args)
                        if writes
                        else common.checked_read_run(*wrk_args)
                    )
                    results[scenario][name].append(run)
                    check = "ok" if run.check["ok"] else run.check
                    log(
                        f"  {scenario:13} {name:5} {run.rps:8.1f} req/s  p50 {run.p50_ms:6.2f} ms"
                        f"  p99 {run.p99_ms:6.2f} ms  check {check}"
                    )
    report = []
    for scenario, _ in SCENARIOS:
        small_p50 = median([r.p50_ms for r in results[scenario]["small"]])
        large_p50 = median([r.p50_ms for r in results[scenario]["large"]])
        ratio = round(large_p50 / small_p50, 3)
        report.append(
            {
                "scenario": scenario,
                "connections": args.connections,
                "small_p50_ms": small_p50,
                "large_p50_ms": large_p50,
                "ratio": ratio,
                "target": 1.5,
                "met": ratio <= 1.5,
                "rounds": {
                    name: [r.public() for r in runs] for name, runs in results[scenario].items()
                },
            }
        )
    checks_ok = all(
        r.check["ok"] for per in results.values() for runs in per.values() for r in runs
    )
    out = {
        "meta": {
            "elapsed_s": round(time.time() - started, 1),
            "sizes": {k: {"candidates": v[0], "job_matches": v[1]} for k, v in sizes.items()},
            "load_times": load_times,
            "rounds": args.rounds,
            "duration_s": args.duration,
            "loadavg": list(__import__("os").getloadavg()),
        },
        "scenarios": report,
        "checks_ok": checks_ok,
    }
    (common.RESULTS / "scale.json").write_text(json.dumps(out, indent=2) + "\n")
    print()
    print("| scenario | small (10k) p50 ms | large p50 ms | ratio | target ≤ 1.5 |")
    print("|---|---:|---:|---:|---|")
    for r in report:
        met = "met" if r["met"] else "NOT met"
        print(
            f"| {r['scenario']} | {r['small_p50_ms']} | {r['large_p50_ms']} | {r['ratio']} "
            f"| {met} |"
        )
    print(f"integrity checks: {'all passed' if checks_ok else 'FAILED'}")
    print(f"wrote {common.RESULTS / 'scale.json'} ({out['meta']['elapsed_s']} s)")
    return 0 if checks_ok else 1


if __name__ == "__main__":
    sys.exit(main())
