"""Bulk-load job matches straight into a migrated SQLite database (benchmark data only).

The CLI has no job-match import (job matches are what clients create), so ``make bench-scale``
loads them with this documented script: plain ``sqlite3`` ``executemany`` in one transaction,
``count`` job matches for one client, each with 1 to 3 distinct random candidates (positions
0..n-1), timestamps one second apart, stored in the text form SQLAlchemy's SQLite DateTime
uses. Deterministic for a given seed.

    python -m bench.bulk_job_matches DB_PATH CLIENT_ID COUNT [--seed N]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta


def load(db_path: str, client_id: int, count: int, seed: int = 6) -> int:
    rng = random.Random(seed)
    connection = sqlite3.connect(db_path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA cache_size=-200000")
        candidate_ids = [row[0] for row in connection.execute("SELECT id FROM candidate")]
        first_id = (
            (connection.execute("SELECT coalesce(max(id), 0) FROM job_match").fetchone()[0]) + 1
        )
        start = datetime.now(UTC) - timedelta(seconds=count)
        links: list[tuple[int, int, int]] = []

        def job_matches() -> Iterator[tuple[int, str, int, str, str]]:
            for n in range(count):
                row_id = first_id + n
                for position, candidate in enumerate(rng.sample(candidate_ids, rng.randint(1, 3))):
                    links.append((row_id, position, candidate))
                created = (start + timedelta(seconds=n)).strftime("%Y-%m-%d %H:%M:%S.%f")
                yield row_id, f"job-match-bulk{row_id:010d}", client_id, "bulk", created

        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(
            "INSERT INTO job_match (id, public_id, client_id, additional_notes, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            job_matches(),
        )
        connection.executemany(
            "INSERT INTO job_match_candidate (job_match_id, position, candidate_id)"
            " VALUES (?, ?, ?)",
            links,
        )
        connection.execute("COMMIT")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return len(links)
    finally:
        connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bulk_job_matches")
    parser.add_argument("db_path")
    parser.add_argument("client_id", type=int)
    parser.add_argument("count", type=int)
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args(argv)
    links = load(args.db_path, args.client_id, args.count, args.seed)
    print(f"loaded {args.count} job matches with {links} candidate links")
    return 0


if __name__ == "__main__":
    sys.exit(main())
