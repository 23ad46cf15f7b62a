"""Loading candidates: from the command line or from CSV / JSON-lines files.

Every row is validated before anything is written, and the write is one transaction, so a bad
file changes nothing and a good one lands whole.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from gateway import models
from gateway.models import utcnow
from gateway.validation import PUBLIC_ID_PATTERN

CHUNK = 5000  # below every driver's bound-parameter limit, large enough to amortise round trips


class ImportFileError(Exception):
    """The file is unreadable or has bad rows; ``problems`` names each by line number."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems[:20]))
        self.problems = problems


@dataclass
class ImportReport:
    added: int = 0
    already_present: list[str] = field(default_factory=list)


def check_public_id(value: object) -> str | None:
    """The reason ``value`` is not a valid publicId, or None."""
    if not isinstance(value, str):
        return "publicId must be a string"
    if not PUBLIC_ID_PATTERN.fullmatch(value):
        return f"publicId {value!r} must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'"
    return None


def read_public_ids(path: Path) -> list[str]:
    """All ids in the file, in order, without repeats; raises ImportFileError naming bad lines."""
    try:
        # utf-8-sig: spreadsheet exports often start with a BOM, which would hide the header.
        with path.open(encoding="utf-8-sig", newline="") as handle:
            first = handle.readline()
            handle.seek(0)
            rows = _json_lines(handle) if first.lstrip().startswith("{") else _csv_rows(handle)
            ids: dict[str, None] = {}
            problems: list[str] = []
            for line, value in rows:
                reason = _reason_for(value)
                if reason:
                    problems.append(f"line {line}: {reason}")
                else:
                    ids[value] = None  # type: ignore[index]
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFileError([f"cannot read {path}: {exc}"]) from None
    if problems:
        raise ImportFileError(problems)
    if not ids:
        raise ImportFileError([f"{path} holds no candidates"])
    return list(ids)


def _csv_rows(handle: Iterable[str]) -> Iterator[tuple[int, object]]:
    reader = csv.DictReader(handle)
    if reader.fieldnames is None or "publicId" not in reader.fieldnames:
        raise ImportFileError(["line 1: the CSV header must have a publicId column"])
    for row in reader:
        yield reader.line_num, (row.get("publicId") or "").strip()


def _json_lines(handle: Iterable[str]) -> Iterator[tuple[int, object]]:
    for line_number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield line_number, _Bad(f"not valid JSON ({exc.msg})")
            continue
        if not isinstance(record, dict) or "publicId" not in record:
            yield line_number, _Bad("expected an object with a publicId field")
            continue
        yield line_number, record["publicId"]


class _Bad(str):
    """A row that failed to parse; check_public_id reports its reason."""


def _reason_for(value: object) -> str | None:
    return str(value) if isinstance(value, _Bad) else check_public_id(value)


def add_candidates(
    connection: sa.Connection,
    public_ids: list[str],
    on_progress: Callable[[int], None] | None = None,
) -> ImportReport:
    report = ImportReport()
    table = models.candidate
    existing_query = sa.select(table.c.public_id).where(
        table.c.public_id.in_(sa.bindparam("ids", expanding=True))
    )
    now = utcnow()
    for start in range(0, len(public_ids), CHUNK):
        chunk = public_ids[start : start + CHUNK]
        present = set(connection.execute(existing_query, {"ids": chunk}).scalars())
        report.already_present.extend(pid for pid in chunk if pid in present)
        rows = [{"public_id": pid, "created_at": now} for pid in chunk if pid not in present]
        if rows:
            connection.execute(sa.insert(table), rows)
            report.added += len(rows)
        if on_progress:
            on_progress(len(chunk))
    return report
