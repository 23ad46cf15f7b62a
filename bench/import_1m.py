"""Benchmark: import 1,000,000 candidate ids with `gateway candidates import` into fresh SQLite.

Not a timed test: run it by hand (``.venv/bin/python bench/import_1m.py``) and read the numbers.
It generates a CSV in a temporary directory, migrates a fresh SQLite database there, runs the
import as a user would (a subprocess of the real CLI), then counts the stored rows.

Options: ``--rows N`` (default 1,000,000), ``--format csv|jsonl``, ``--reimport`` (also time a
second import of the same file, which must add nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def gateway_command() -> list[str]:
    return [sys.executable, "-m", "gateway"]


def write_ids(path: Path, rows: int, fmt: str) -> None:
    salt = secrets.token_hex(4)
    with path.open("w", encoding="utf-8", newline="") as handle:
        if fmt == "csv":
            handle.write("publicId\n")
            handle.writelines(f"cand-{salt}-{i:07d}\n" for i in range(rows))
        else:
            handle.writelines(
                json.dumps({"publicId": f"cand-{salt}-{i:07d}"}) + "\n" for i in range(rows)
            )


def run(args: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    result = subprocess.run(
        [*gateway_command(), *args], env=env, cwd=ROOT, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"`gateway {' '.join(args)}` failed ({result.returncode}): {result.stderr}")
    return elapsed, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    parser.add_argument("--reimport", action="store_true")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        directory = Path(tmp)
        source = directory / f"candidates.{options.format}"
        database = directory / "gateway.sqlite3"
        env = {
            **os.environ,
            "GATEWAY_DATABASE_URL": f"sqlite:///{database}",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }

        started = time.perf_counter()
        write_ids(source, options.rows, options.format)
        generated = time.perf_counter() - started
        size_mb = source.stat().st_size / 1e6
        print(f"generated {options.rows:,} rows ({size_mb:.1f} MB) in {generated:.1f}s")

        run(["migrate"], env)
        startup, _ = run(["--help"], env)  # interpreter + import cost, paid by every command
        elapsed, result = run(["candidates", "import", str(source)], env)
        with sqlite3.connect(database) as connection:
            stored = connection.execute("SELECT count(*) FROM candidate").fetchone()[0]
        print(result.stdout.strip())
        print(
            f"imported {stored:,} rows in {elapsed:.1f}s "
            f"({stored / elapsed:,.0f} rows/s; CLI start-up alone {startup:.1f}s)"
        )
        if stored != options.rows:
            sys.exit(f"expected {options.rows:,} rows, found {stored:,}")

        if options.reimport:
            again, result = run(["candidates", "import", str(source)], env)
            print(result.stdout.strip().splitlines()[0])
            print(f"re-import (no-op) took {again:.1f}s")


if __name__ == "__main__":
    main()
