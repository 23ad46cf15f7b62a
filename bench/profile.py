"""Profile the gateway under load with pyinstrument: ``python -m bench.profile``.

Seeds a fresh SQLite database through the CLI, serves the gateway (production settings, the
same uvicorn options as ``gateway serve``, pinned to core 0) inside a wrapper that starts the
sampling profiler on SIGUSR1 and writes a report on SIGUSR2, so start-up is not profiled.
For each scenario: 2 s warm-up, then N seconds of wrk (core 1) while the profiler samples.
Reports (text, call tree and flat "self time" view, plus HTML) go to bench/results/profile/.

Sampling with ``async_mode="disabled"`` shows the stack running on the event-loop thread at
each sample, i.e. where the one core actually goes, across all concurrent requests.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from bench import common
from bench.common import log

OUT = common.RESULTS / "profile"


def serve(port: int, out_dir: Path, interval: float) -> None:
    import asyncio

    import uvicorn
    from pyinstrument import Profiler
    from pyinstrument.renderers import ConsoleRenderer, HTMLRenderer

    config = uvicorn.Config(
        "gateway.app:create_app",
        factory=True,
        host=common.HOST,
        port=port,
        loop="asyncio",
        access_log=False,
        log_config=None,
        proxy_headers=True,
        server_header=False,
    )
    server = uvicorn.Server(config)
    state: dict[str, object] = {}

    def start() -> None:
        profiler = Profiler(interval=interval, async_mode="disabled")
        profiler.start()
        state["profiler"] = profiler

    def stop() -> None:
        profiler = state.pop("profiler")
        session = profiler.stop()  # type: ignore[attr-defined]
        name = (out_dir / "current").read_text().strip()
        tree = ConsoleRenderer(unicode=True, show_all=False, short_mode=False).render(session)
        flat = ConsoleRenderer(flat=True).render(session)
        (out_dir / f"{name}.txt").write_text(tree)
        (out_dir / f"{name}-flat.txt").write_text(flat)
        (out_dir / f"{name}.html").write_text(HTMLRenderer().render(session))
        session.save(out_dir / f"{name}.pyisession")  # re-render: pyinstrument --load FILE
        (out_dir / f"{name}.done").write_text("ok")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, start)
        loop.add_signal_handler(signal.SIGUSR2, stop)
        await server.serve()

    asyncio.run(main())  # the stdlib loop, as `gateway serve` uses


def drive(args: argparse.Namespace) -> None:
    out_dir = common.fresh_dir(OUT)
    db_path = out_dir / "profile.sqlite3"
    seeded = common.seed(common.sqlite_url(db_path), out_dir, 10_000)
    command = [
        common.PYTHON, "-m", "bench.profile", "--serve", "--port", "{port}",
        "--out-dir", str(out_dir), "--interval", str(args.interval),
    ]  # fmt: skip
    env = common._env(seeded.database_url)
    with common.running(
        common.start_server, "gateway", command, env, out_dir / "gateway.log"
    ) as gw:
        for mode in args.modes.split(","):
            # The read scenario wants a full page: fill one first.
            common.wrk(gw.url, "rest-write", seeded.key, 10_000, 4, 1, out_dir)
            common.wrk(gw.url, mode, seeded.key, 10_000, args.connections, 2, out_dir)
            name = f"{mode}-c{args.connections}"
            (out_dir / "current").write_text(name)
            os.kill(gw.process.pid, signal.SIGUSR1)
            run = common.wrk(
                gw.url, mode, seeded.key, 10_000, args.connections, args.duration, out_dir
            )
            os.kill(gw.process.pid, signal.SIGUSR2)
            deadline = time.monotonic() + 60
            while not (out_dir / f"{name}.done").exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            log(f"{name}: {run.rps} req/s under the profiler -> {out_dir / (name + '.txt')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", type=Path, default=OUT, help=argparse.SUPPRESS)
    parser.add_argument("--interval", type=float, default=0.0005)
    parser.add_argument("--modes", default="rest-write,graphql-write,graphql-read")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.port, args.out_dir, args.interval)
    else:
        drive(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
