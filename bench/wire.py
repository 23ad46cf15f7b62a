"""Latency on the wire beside wrk's figure: ``python -m bench.wire`` (needs root and tcpdump).

wrk corrects its latency histogram for coordinated omission before it reports it (wrk.c,
``stats_correct``): every sample longer than the expected interval between two requests of
one connection adds synthetic samples for the requests that connection did not send. A few
slow requests therefore move wrk's p99 far more than their share. This script measures the
same run from a loopback capture instead: for every request, the time from its first segment
reaching the server's port to the first segment of the response, plus how long each new
connection waited for its first response. It seeds a fresh database through the CLI, starts
the gateway and the baselines (uvloop and asyncio) like ``make bench``, and runs wrk against
each while ``tcpdump`` captures headers only.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import time
from pathlib import Path

from bench import common
from bench.common import log

SEGMENT = re.compile(r"^(\d+\.\d+) IP [\d.]+\.(\d+) > [\d.]+\.(\d+): tcp (\d+)")


def wire_latencies(pcap: Path, port: int) -> tuple[list[float], list[float]]:
    """Per request and per new connection (first request only), in ms."""
    text = subprocess.run(
        ["tcpdump", "-r", str(pcap), "-tt", "-n", "-q"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pending: dict[int, float] = {}
    answered: set[int] = set()
    requests, first = [], []
    for line in text.splitlines():
        match = SEGMENT.match(line)
        if not match or match.group(4) == "0":
            continue
        at, source, target = float(match.group(1)), int(match.group(2)), int(match.group(3))
        if target == port:
            pending.setdefault(source, at)
        elif source == port and target in pending:
            latency = (at - pending.pop(target)) * 1000
            requests.append(latency)
            if target not in answered:
                answered.add(target)
                first.append(latency)
    return requests, first


def measure(
    server: common.Server, mode: str, seeded: common.Seeded, args: argparse.Namespace, workdir: Path
) -> str:
    pcap = workdir / f"{server.port}.pcap"
    tcpdump = ["tcpdump", "-i", "lo", "-s", "96", "-w", str(pcap), f"tcp port {server.port}"]
    capture = subprocess.Popen(
        ["taskset", "-c", common.WRK_CORE, *tcpdump], stderr=subprocess.DEVNULL
    )
    time.sleep(1)  # tcpdump is listening
    try:
        run = common.wrk(
            server.url, mode, seeded.key, seeded.candidates, args.connections, args.duration,
            workdir,
        )  # fmt: skip
    finally:
        time.sleep(0.5)
        capture.terminate()
        capture.wait()
    requests, first = wire_latencies(pcap, server.port)
    q = statistics.quantiles(requests, n=100)
    return (
        f"{server.name:18} {mode:14} wrk: {run.rps:7.1f} req/s p50 {run.p50_ms:6.1f} "
        f"p99 {run.p99_ms:6.1f} ms | wire: n={len(requests)} p50 {q[49]:6.1f} p99 {q[98]:6.1f} "
        f"max {max(requests):6.1f} ms | new connections' first response max {max(first):6.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.wire", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    workdir = common.fresh_dir(common.RESULTS / "wire")
    db_path = workdir / "bench.sqlite3"
    seeded = common.seed(common.sqlite_url(db_path), workdir, 10_000)
    with (
        common.running(common.start_baseline, db_path, workdir / "baseline.log") as uvloop,
        common.running(
            common.start_baseline, db_path, workdir / "baseline-asyncio.log", "asyncio"
        ) as stdlib_loop,
        common.running(common.start_gateway, seeded.database_url, workdir / "gw.log") as gateway,
    ):
        targets = [
            (uvloop, "rest-write"),
            (stdlib_loop, "rest-write"),
            (gateway, "rest-write"),
            (gateway, "graphql-write"),
        ]
        for server, mode in targets:  # warm-up
            common.wrk(server.url, mode, seeded.key, seeded.candidates, args.connections, 2,
                       workdir)  # fmt: skip
        for _ in range(args.rounds):
            for server, mode in targets:
                log(measure(server, mode, seeded, args, workdir))


if __name__ == "__main__":
    main()
