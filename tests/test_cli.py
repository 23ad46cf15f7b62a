"""Every `gateway` command end to end, in a subprocess, as an operator runs it.

Each command costs an interpreter start, so independent invocations run concurrently
(``gateway_many``) and each test keeps its round trips few. The children cache their bytecode
in a directory outside the source tree (some machines set PYTHONDONTWRITEBYTECODE, which makes
every start recompile SQLAlchemy, Alembic and friends: twice the cost).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from gateway import migrate
from gateway.database import create_sync_engine
from tests.conftest import EXAMPLE_ID, test_settings

ROOT = Path(__file__).resolve().parent.parent
KEY_PATTERN = re.compile(r"jmk_[A-Za-z0-9_-]{43,}")
BOTH_SCOPES = ["job-match:read", "job-match:write"]
PYCACHE = Path(tempfile.gettempdir()) / "jobmatch-gateway-test-pycache"


@dataclass
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return (
            f"gateway {' '.join(self.args)} -> {self.returncode}\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


def _env(url: str, extra: dict[str, str] | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GATEWAY_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(
        PYTHONPYCACHEPREFIX=str(PYCACHE),
        GATEWAY_DATABASE_URL=url,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        COLUMNS="200",  # rich tables at full width
        NO_COLOR="1",
        TERM="dumb",
    )
    env.update(extra or {})
    return env


def _start(url: str, args: tuple[str, ...], env: dict[str, str] | None, cwd: Path):
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", *args],
        env=_env(url, env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def gateway_many(url: str, cwd: Path, *calls: tuple[str, ...] | tuple[tuple[str, ...], dict]):
    """Run several independent commands at once; each call is ``args`` or ``(args, env)``."""
    started = []
    for call in calls:
        args, env = (call[0], call[1]) if call and isinstance(call[0], tuple) else (call, None)
        started.append((args, _start(url, args, env, cwd)))
    results = []
    for args, process in started:
        stdout, stderr = process.communicate(timeout=120)
        results.append(Result(args, process.returncode, stdout, stderr))
    return results


@pytest.fixture
def run(tmp_path: Path):
    """``run(url, *args)`` for one command, ``run.many(url, call, ...)`` for several at once."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()

    class Runner:
        def __call__(self, url: str, *args: str, env: dict[str, str] | None = None) -> Result:
            return gateway_many(url, workdir, (args, env or {}))[0]

        def many(self, url: str, *calls):
            return gateway_many(url, workdir, *calls)

    return Runner()


def ok(result: Result) -> Result:
    assert result.returncode == 0, str(result)
    assert "Traceback" not in result.stdout + result.stderr, str(result)
    return result


def one_line_error(result: Result, status: int, *fragments: str) -> str:
    """A CLI failure: the given exit status, one `error:` line on stderr, no traceback."""
    assert result.returncode == status, str(result)
    assert "Traceback" not in result.stdout + result.stderr, str(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), str(result)
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} missing from: {lines[0]}"
    return lines[0]


def rows(url: str, query: str, **params: object) -> list[tuple]:
    engine = create_sync_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(query), params)]
    finally:
        engine.dispose()


def _moment(value: object) -> datetime:
    """A timestamp from a raw SQL row: SQLite returns text, PostgreSQL a datetime."""
    return datetime.fromisoformat(str(value))


def table_names(url: str) -> set[str]:
    engine = create_sync_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def candidate_ids(url: str) -> set[str]:
    return {pid for (pid,) in rows(url, "SELECT public_id FROM candidate")}


def dump_database(url: str) -> str:
    """Every column of every row of every table, as text."""
    engine = create_sync_engine(url)
    try:
        with engine.connect() as connection:
            parts = []
            for table in sa.inspect(connection).get_table_names():
                for row in connection.execute(sa.text(f'SELECT * FROM "{table}"')):
                    parts.extend(f"{table}: {value!s}" for value in row)
            return "\n".join(parts)
    finally:
        engine.dispose()


def sqlite_file_bytes(url: str) -> bytes | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    main = Path(parsed.database)
    return b"".join(p.read_bytes() for p in sorted(main.parent.glob(main.name + "*")))


# --- migrate ---------------------------------------------------------------------------------


def test_migrate_command_builds_the_schema_and_is_idempotent(run, database_url):
    head = migrate.head_revision()

    first = ok(run(database_url, "migrate"))
    assert first.stdout.strip() == f"database at revision {head}"
    assert {"api_client", "api_key", "candidate", "job_match", "job_match_candidate"} <= (
        table_names(database_url)
    )

    second = ok(run(database_url, "migrate"))
    assert second.stdout.strip() == f"database at revision {head}"
    assert rows(database_url, "SELECT version_num FROM alembic_version") == [(head,)]


# --- keys ------------------------------------------------------------------------------------


def test_keys_create_list_revoke(run, migrated_url):
    # A new client, default scopes, JSON output.
    created = ok(run(migrated_url, "keys", "create", "--client", "Acme Recruiting", "--json"))
    payload = json.loads(created.stdout)
    assert set(payload) == {"id", "key", "client", "scopes"}
    assert payload["client"] == "Acme Recruiting"
    assert payload["scopes"] == BOTH_SCOPES
    assert KEY_PATTERN.fullmatch(payload["key"])
    acme_id = payload["id"]

    # A second key for the same client (human output), and a new client with one scope.
    second, beta = run.many(
        migrated_url,
        (
            "keys",
            "create",
            "--client",
            "Acme Recruiting",
            "--scope",
            "job-match:read",
            "--expires-in",
            "3",
        ),
        (
            "keys",
            "create",
            "--client",
            "Beta Talent",
            "--scope",
            "job-match:write",
            "--scope",
            "job-match:write",  # repeated: stored once
            "--json",
        ),
    )
    ok(second)
    second_key = second.stdout.strip().splitlines()[-1]
    assert KEY_PATTERN.fullmatch(second_key)
    assert "for Acme Recruiting (job-match:read)" in second.stdout
    assert "not shown again" in second.stdout
    beta_payload = json.loads(ok(beta).stdout)
    assert beta_payload["scopes"] == ["job-match:write"]
    keys = [payload["key"], second_key, beta_payload["key"]]
    assert len(set(keys)) == 3

    clients = rows(migrated_url, "SELECT name FROM api_client ORDER BY name")
    assert clients == [("Acme Recruiting",), ("Beta Talent",)]
    stored = rows(
        migrated_url,
        "SELECT k.id, c.name, k.prefix, k.key_hash, k.scopes, k.created_at, k.expires_at, "
        "k.revoked_at FROM api_key k JOIN api_client c ON c.id = k.client_id ORDER BY k.key_hash",
    )
    by_hash = {row[3]: row for row in stored}
    assert set(by_hash) == {hashlib.sha256(k.encode()).hexdigest() for k in keys}
    acme = by_hash[hashlib.sha256(payload["key"].encode()).hexdigest()]
    assert acme[:3] == (acme_id, "Acme Recruiting", payload["key"][:12])
    assert acme[4] == "job-match:read job-match:write" and acme[6] is None and acme[7] is None
    expiring = by_hash[hashlib.sha256(second_key.encode()).hexdigest()]
    assert expiring[1:3] == ("Acme Recruiting", second_key[:12])
    assert expiring[4] == "job-match:read"
    assert _moment(expiring[6]) - _moment(expiring[5]) == timedelta(days=3)
    assert by_hash[hashlib.sha256(beta_payload["key"].encode()).hexdigest()][4] == "job-match:write"

    # Only hashes are stored: no key, nor its secret part, anywhere in the database.
    dump = dump_database(migrated_url)
    raw = sqlite_file_bytes(migrated_url)
    for key in keys:
        secret = key[12:]  # everything after the displayed prefix
        assert key not in dump and secret not in dump
        if raw is not None:
            assert key.encode() not in raw and secret.encode() not in raw

    revoked, missing = run.many(
        migrated_url, ("keys", "revoke", str(acme_id)), ("keys", "revoke", "999999")
    )
    assert ok(revoked).stdout.strip() == f"Revoked key {acme_id}."
    one_line_error(missing, 1, "no API key with id 999999")
    revoked_rows = rows(migrated_url, "SELECT id FROM api_key WHERE revoked_at IS NOT NULL")
    assert revoked_rows == [(acme_id,)]

    table, listed = run.many(migrated_url, ("keys", "list"), ("keys", "list", "--json"))
    entries = json.loads(ok(listed).stdout)
    assert sorted(e["prefix"] for e in entries) == sorted(k[:12] for k in keys)
    assert all("key" not in e for e in entries)
    status = {e["id"]: e["status"] for e in entries}
    assert status[acme_id] == "revoked" and sorted(status.values()) == [
        "active",
        "active",
        "revoked",
    ]
    ok(table)
    for key in keys:
        assert key[12:] not in listed.stdout and key[12:] not in table.stdout
        assert key[:12] in table.stdout
    assert "Acme Recruiting" in table.stdout and "revoked" in table.stdout


# --- candidates ------------------------------------------------------------------------------


def test_candidates_add(run, migrated_url):
    bad, good = run.many(
        migrated_url,
        ("candidates", "add", "never-written", "bad id", "also!bad"),
        ("candidates", "add", "cand-a", "cand-b", "cand-a"),
    )
    line = one_line_error(bad, 1, "'bad id'", "'also!bad'")
    assert "never-written" not in line
    assert ok(good).stdout.strip() == "added 2 candidates; 0 already present"

    again = ok(run(migrated_url, "candidates", "add", "cand-a", "cand-c"))
    assert again.stdout.splitlines() == [
        "added 1 candidates; 1 already present",
        "already present: cand-a",
    ]
    assert candidate_ids(migrated_url) == {"cand-a", "cand-b", "cand-c"}


def test_candidates_import_csv_and_json_lines(run, migrated_url, tmp_path):
    files = {
        # With a byte-order mark, as spreadsheets export it.
        "good.csv": "\ufeffpublicId,name\ncsv-1,Ada\ncsv-2,Grace\ncsv-1,Ada again\n",
        "good.jsonl": '{"publicId": "csv-2"}\n\n{"publicId": "json-1", "extra": true}\n',
        "bad_rows.csv": 'publicId\nok-a\nbad id\nok-b\n"x!"\n',
        "no_header.csv": "name\nok-c\n",
        "bad.jsonl": '{"publicId": "ok-d"}\n{not json\n{"other": 1}\n{"publicId": 5}\n',
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")

    first = ok(run(migrated_url, "candidates", "import", str(tmp_path / "good.csv")))
    assert first.stdout.strip() == "added 2 candidates; 0 already present"
    assert candidate_ids(migrated_url) == {"csv-1", "csv-2"}
    created = dict(rows(migrated_url, "SELECT public_id, created_at FROM candidate"))

    jsonl, again, bad_rows, no_header, bad_json, missing = run.many(
        migrated_url,
        ("candidates", "import", str(tmp_path / "good.jsonl")),
        ("candidates", "import", str(tmp_path / "good.csv")),
        ("candidates", "import", str(tmp_path / "bad_rows.csv")),
        ("candidates", "import", str(tmp_path / "no_header.csv")),
        ("candidates", "import", str(tmp_path / "bad.jsonl")),
        ("candidates", "import", str(tmp_path / "missing.csv")),
    )
    assert ok(jsonl).stdout.splitlines() == [
        "added 1 candidates; 1 already present",
        "already present: csv-2",
    ]
    assert ok(again).stdout.splitlines() == [
        "added 0 candidates; 2 already present",
        "already present: csv-1, csv-2",
    ]

    line = one_line_error(bad_rows, 1, "bad_rows.csv", "nothing imported", "line 3", "line 5")
    assert "'bad id'" in line and "'x!'" in line
    assert "line 2" not in line and "line 4" not in line
    one_line_error(no_header, 1, "nothing imported", "line 1", "publicId")
    line = one_line_error(
        bad_json, 1, "bad.jsonl", "nothing imported", "line 2", "line 3", "line 4"
    )
    assert "not valid JSON" in line and "line 1" not in line
    one_line_error(missing, 1, "missing.csv", "cannot read")

    # Bad files changed nothing (their good rows included); re-import rewrote nothing.
    assert candidate_ids(migrated_url) == {"csv-1", "csv-2", "json-1"}
    after = dict(rows(migrated_url, "SELECT public_id, created_at FROM candidate"))
    assert {pid: after[pid] for pid in created} == created


# --- demo ------------------------------------------------------------------------------------


def test_demo_is_idempotent_and_only_the_newest_key_works(run, database_url):
    first = ok(run(database_url, "demo"))  # on an empty database: demo migrates it
    second = ok(run(database_url, "demo"))

    first_key, second_key = (KEY_PATTERN.search(r.stdout).group(0) for r in (first, second))
    assert first_key != second_key
    for result, key in ((first, first_key), (second, second_key)):
        curl = next(line for line in result.stdout.splitlines() if "curl" in line)
        assert "/v1/candidates/job-match" in curl and key in curl and EXAMPLE_ID in curl

    assert rows(database_url, "SELECT name FROM api_client") == [("Demo Recruiting Ltd",)]
    ids = candidate_ids(database_url)
    assert EXAMPLE_ID in ids and len(ids) >= 3
    keys = rows(database_url, "SELECT key_hash, revoked_at IS NOT NULL FROM api_key ORDER BY id")
    assert keys == [
        (hashlib.sha256(first_key.encode()).hexdigest(), True),
        (hashlib.sha256(second_key.encode()).hexdigest(), False),
    ]

    from gateway.app import create_app

    body = {"candidates": [{"publicId": EXAMPLE_ID}], "additionalNotes": "demo check"}
    with TestClient(create_app(test_settings(database_url)), raise_server_exceptions=False) as http:
        stale = http.post("/v1/candidates/job-match", json=body, headers={"X-API-Key": first_key})
        fresh = http.post("/v1/candidates/job-match", json=body, headers={"X-API-Key": second_key})
    assert stale.status_code == 401, stale.text
    assert fresh.status_code == 201, fresh.text
    assert fresh.json()["jobMatchId"].startswith("job-match-")


# --- schema ----------------------------------------------------------------------------------


def test_schema_export_writes_sdl(run, database_url, tmp_path):
    from gateway.settings import Settings
    from schema import build_schema

    target = tmp_path / "out" / "schema.graphql"
    target.parent.mkdir()
    to_file, to_stdout = run.many(
        database_url, ("schema", "export", str(target)), ("schema", "export")
    )
    assert ok(to_file).stdout.strip() == f"wrote {target}"
    live = build_schema(Settings(database_url=database_url)).as_str() + "\n"
    assert target.read_text(encoding="utf-8") == live
    assert ok(to_stdout).stdout == live
    assert "type Query" in live and "type Mutation" in live


# --- errors ----------------------------------------------------------------------------------


def test_errors_are_one_line_without_traceback(run, database_url, tmp_path):
    (tmp_path / "ids.csv").write_text("publicId\nsome-id\n", encoding="utf-8")
    (
        bad_url,
        bad_number,
        bad_number_export,
        unmigrated_list,
        unmigrated_create,
        unmigrated_import,
        unreachable,
        bad_scope,
        bad_key_id,
    ) = run.many(
        database_url,
        (("migrate",), {"GATEWAY_DATABASE_URL": "mysql://x"}),
        (("keys", "list"), {"GATEWAY_MAX_CANDIDATES": "abc"}),
        (("schema", "export"), {"GATEWAY_MAX_CANDIDATES": "abc"}),
        ("keys", "list"),
        ("keys", "create", "--client", "Nobody"),
        ("candidates", "import", str(tmp_path / "ids.csv")),
        (("keys", "list"), {"GATEWAY_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}),
        ("keys", "create", "--client", "X", "--scope", "job-match:everything"),
        ("keys", "revoke", "not-a-number"),
    )
    one_line_error(bad_url, 2, "invalid setting", "GATEWAY_DATABASE_URL")
    one_line_error(bad_number, 2, "invalid setting", "GATEWAY_MAX_CANDIDATES")
    one_line_error(bad_number_export, 2, "GATEWAY_MAX_CANDIDATES")
    for result in (unmigrated_list, unmigrated_create, unmigrated_import):
        one_line_error(result, 1, "not migrated", "gateway migrate")
    one_line_error(unreachable, 1, "cannot use the database")
    # Usage errors are the argument parser's usual message: exit 2, no traceback.
    for result, fragment in ((bad_scope, "--scope"), (bad_key_id, "key_id")):
        assert result.returncode == 2, str(result)
        assert "Traceback" not in result.stderr and fragment in result.stderr, str(result)

    # Nothing was created on the unmigrated database.
    assert table_names(database_url) == set()
