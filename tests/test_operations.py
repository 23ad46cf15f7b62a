"""Operations (issue 7): request ids, structured logs without secrets, Prometheus metrics,
health and readiness, CORS and security headers, in-process over the app."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from gateway.logging_setup import ConsoleFormatter, JsonFormatter, configure_logging
from gateway.settings import Settings, load_settings

from .conftest import EXAMPLE_ID

REST_PATH = "/v1/candidates/job-match"
EXPRESS = """
mutation ExpressInterest($input: ExpressInterestInput!) {
  expressInterest(input: $input) { message jobMatchId jobMatch { id candidates { publicId } } }
}
"""
VIEWER = "query WhoAmI { viewer { name scopes } }"


# --------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """configure_logging changes the root logger; leave it as the next test module expects."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


class LogCapture:
    """The app's own handler, pointed at a StringIO (the handler binds its stream when
    ``configure_logging`` runs, i.e. in ``create_app``: attach after the clients exist)."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def attach(self, log_level: str = "INFO") -> None:
        configure_logging(Settings(log_format="json", log_level=log_level), stream=self.stream)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def for_request(self, request_id: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("request_id") == request_id]

    def access(self, request_id: str) -> dict[str, Any]:
        lines = [r for r in self.for_request(request_id) if r["logger"] == "gateway.access"]
        assert len(lines) == 1, f"expected one access line for {request_id}: {self.text}"
        return lines[0]


@pytest.fixture
def logs() -> LogCapture:
    return LogCapture()


def express(
    client: TestClient,
    key: str | None,
    candidates: list[str],
    notes: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    sent = {"X-API-Key": key} if key else {}
    sent.update(headers or {})
    body: dict[str, Any] = {"candidates": [{"publicId": c} for c in candidates]}
    if notes is not None:
        body["additionalNotes"] = notes
    return client.post(REST_PATH, json=body, headers=sent)


def gql(
    client: TestClient,
    key: str | None,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    operation_name: str | None = None,
) -> Any:
    sent = {"X-API-Key": key} if key else {}
    sent.update(headers or {})
    body: dict[str, Any] = {"query": query, "variables": variables or {}}
    if operation_name:
        body["operationName"] = operation_name
    return client.post("/graphql", json=body, headers=sent)


def gql_express(
    client: TestClient,
    key: str | None,
    candidates: list[str],
    notes: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    variables: dict[str, Any] = {"input": {"candidates": [{"publicId": c} for c in candidates]}}
    if notes is not None:
        variables["input"]["additionalNotes"] = notes
    return gql(client, key, EXPRESS, variables, headers, operation_name="ExpressInterest")


def scrape(client: TestClient, **headers: str) -> dict[str, Any]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(response.text)}


def sample(
    families: dict[str, Any], family: str, sample_name: str | None = None, **labels: str
) -> float:
    """The value of the one sample of ``family`` named ``sample_name`` whose labels include
    ``labels``; 0.0 when there is none (Prometheus omits never-seen label sets)."""
    assert family in families, f"no metric family {family}: {sorted(families)}"
    name = sample_name or family
    matches = [
        s.value
        for s in families[family].samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(matches) <= 1, (family, name, labels, matches)
    return matches[0] if matches else 0.0


# --------------------------------------------------------------------------- request id


def test_valid_client_request_id_is_echoed_and_is_the_problem_instance(
    client: TestClient, logs: LogCapture, key: str, candidates: list[str]
) -> None:
    logs.attach()
    request_id = str(uuid.uuid4())
    response = express(client, key, ["unknown-candidate"], headers={"X-Request-ID": request_id})
    assert response.status_code == 404
    assert response.headers["x-request-id"] == request_id
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["instance"] == f"urn:uuid:{request_id}"
    line = logs.access(request_id)
    assert line["status"] == 404 and line["path"] == REST_PATH

    # Any well-formed, bounded id is kept (not only UUIDs), and still names the problem.
    opaque = "trace-01.ab:CD_" + "x" * (128 - 15)
    assert len(opaque) == 128
    response = express(client, key, ["unknown-candidate"], headers={"X-Request-ID": opaque})
    assert response.headers["x-request-id"] == opaque
    assert opaque in response.json()["instance"]
    assert logs.access(opaque)["status"] == 404


@pytest.mark.parametrize(
    "bad_id",
    ["x" * 129, "has spaces", "<script>alert(1)</script>", "semi;colon", "ü-non-ascii", ""],
)
def test_invalid_or_oversized_request_id_is_replaced(
    client: TestClient, logs: LogCapture, key: str, candidates: list[str], bad_id: str
) -> None:
    logs.attach()
    response = client.post(
        REST_PATH,
        content=json.dumps({"candidates": [{"publicId": "unknown-candidate"}]}).encode(),
        headers={
            "Content-Type": "application/json",
            "X-API-Key": key,
            "X-Request-ID": bad_id.encode("utf-8"),  # type: ignore[dict-item]
        },
    )
    assert response.status_code == 404
    generated = response.headers["x-request-id"]
    assert generated != bad_id
    assert str(uuid.UUID(generated)) == generated  # a generated UUID
    assert response.json()["instance"] == f"urn:uuid:{generated}"
    assert logs.access(generated)["status"] == 404
    assert bad_id == "" or bad_id not in logs.text


def test_generated_request_ids_are_unique_and_on_every_response(
    client: TestClient, key: str
) -> None:
    ids = set()
    for path in ("/healthz", "/readyz", "/metrics", "/graphql", "/no-such-route", "/docs"):
        response = client.get(path, headers={"Accept": "text/html"})
        ids.add(uuid.UUID(response.headers["x-request-id"]))
    response = gql(client, key, VIEWER)
    ids.add(uuid.UUID(response.headers["x-request-id"]))
    assert len(ids) == 7


def test_unknown_route_problem_carries_the_request_id(client: TestClient) -> None:
    request_id = str(uuid.uuid4())
    response = client.get("/nowhere", headers={"X-Request-ID": request_id})
    assert response.status_code == 404
    assert response.json()["instance"] == f"urn:uuid:{request_id}"
    assert response.headers["x-request-id"] == request_id


@pytest.fixture
def crashing_service(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Make the job-match service fail with an unexpected error carrying ``message``."""

    def crash_with(message: str) -> None:
        async def boom(*args: object, **kwargs: object) -> None:
            raise RuntimeError(message)

        services = client.app.state.services  # type: ignore[attr-defined]
        monkeypatch.setattr(services.job_matches, "express_interest", boom)

    return crash_with


def test_crash_is_masked_for_the_client_and_logged_with_traceback_and_request_id(
    client: TestClient,
    logs: LogCapture,
    key: str,
    candidates: list[str],
    crashing_service: Callable[[str], None],
) -> None:
    logs.attach()
    crashing_service("internal detail: table job_match exploded")
    request_id = str(uuid.uuid4())
    response = express(client, key, [EXAMPLE_ID], headers={"X-Request-ID": request_id})
    assert response.status_code == 500
    body = response.json()
    assert body["instance"] == f"urn:uuid:{request_id}"
    assert "exploded" not in response.text and "Traceback" not in response.text
    assert response.headers["x-request-id"] == request_id

    lines = logs.for_request(request_id)
    errors = [r for r in lines if r["level"] == "error"]
    assert errors, logs.text
    assert any("RuntimeError: internal detail" in r.get("traceback", "") for r in errors)
    assert logs.access(request_id)["status"] == 500
    # Every line of that request names it: none of its lines lack the id.
    assert all(r["request_id"] == request_id for r in lines)
    orphans = [r for r in logs.records() if r["level"] == "error" and r["request_id"] is None]
    assert orphans == []


def test_graphql_masked_error_is_logged_with_the_request_id(
    client: TestClient,
    logs: LogCapture,
    key: str,
    candidates: list[str],
    crashing_service: Callable[[str], None],
) -> None:
    logs.attach()
    crashing_service("secret internals")
    request_id = str(uuid.uuid4())
    response = gql_express(client, key, [EXAMPLE_ID], headers={"X-Request-ID": request_id})
    assert response.headers["x-request-id"] == request_id
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "secret internals" not in response.text
    logged = [
        r for r in logs.for_request(request_id) if "secret internals" in r.get("traceback", "")
    ]
    assert logged, logs.text
    line = logs.access(request_id)
    assert line["graphql_error_codes"] == ["INTERNAL_SERVER_ERROR"]


# --------------------------------------------------------------------------- access log


def test_access_log_line_fields(
    client: TestClient, logs: LogCapture, key: str, candidates: list[str], engine: sa.Engine
) -> None:
    logs.attach()
    with engine.connect() as connection:
        client_id = connection.exec_driver_sql("SELECT id FROM api_client").scalar_one()

    first_id, replay_id = str(uuid.uuid4()), str(uuid.uuid4())
    idem = {"Idempotency-Key": f"op-{uuid.uuid4()}"}
    first = gql_express(client, key, [EXAMPLE_ID], headers={**idem, "X-Request-ID": first_id})
    assert first.status_code == 200 and "errors" not in first.json(), first.text
    again = gql_express(client, key, [EXAMPLE_ID], headers={**idem, "X-Request-ID": replay_id})
    assert again.json()["data"] == first.json()["data"]

    line = logs.access(first_id)
    assert datetime.fromisoformat(line["time"]).tzinfo is not None
    assert line["level"] == "info"
    assert line["request_id"] == first_id
    assert line["method"] == "POST"
    assert line["path"] == "/graphql"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float | int) and line["duration_ms"] >= 0
    assert line["client_id"] == client_id
    assert line["graphql_operation"] == "ExpressInterest"
    assert line["graphql_operation_type"] == "mutation"
    assert line["idempotent_replay"] is False
    assert logs.access(replay_id)["idempotent_replay"] is True

    # REST: same fields, no GraphQL operation; a replay says so.
    rest_id, rest_replay_id = str(uuid.uuid4()), str(uuid.uuid4())
    idem = {"Idempotency-Key": f"op-{uuid.uuid4()}"}
    assert (
        express(client, key, [EXAMPLE_ID], headers={**idem, "X-Request-ID": rest_id}).status_code
        == 201
    )
    replay = express(client, key, [EXAMPLE_ID], headers={**idem, "X-Request-ID": rest_replay_id})
    assert replay.headers.get("idempotent-replayed") == "true"
    rest = logs.access(rest_id)
    assert rest["path"] == REST_PATH and rest["status"] == 201 and rest["client_id"] == client_id
    assert rest["graphql_operation"] is None and rest["graphql_operation_type"] is None
    assert rest["idempotent_replay"] is False
    assert logs.access(rest_replay_id)["idempotent_replay"] is True

    # A query is logged with its type; an anonymous, unauthenticated request without client.
    query_id = str(uuid.uuid4())
    gql(client, key, VIEWER, operation_name="WhoAmI", headers={"X-Request-ID": query_id})
    query = logs.access(query_id)
    assert (query["graphql_operation"], query["graphql_operation_type"]) == ("WhoAmI", "query")
    anon_id = str(uuid.uuid4())
    gql(client, None, "{ viewer { name } }", headers={"X-Request-ID": anon_id})
    anon = logs.access(anon_id)
    assert anon["client_id"] is None and anon["graphql_operation_type"] == "query"
    assert anon["graphql_error_codes"] == ["UNAUTHENTICATED"]

    # One line per request: nothing else is logged at INFO for a successful request.
    assert len(logs.for_request(first_id)) == 1


def test_logs_never_contain_api_keys_idempotency_keys_or_notes(
    make_client: Callable[..., TestClient],
    logs: LogCapture,
    key: str,
    candidates: list[str],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(log_level="DEBUG")
    logs.attach(log_level="DEBUG")  # the most talkative setting must not leak either

    notes = f"Confidential note about the candidate {uuid.uuid4().hex}"
    unicode_notes = f"Vertraulich: Gehaltsvorstellung {uuid.uuid4().hex} €"
    idem_rest = f"idem-rest-{uuid.uuid4().hex}"
    idem_gql = f"idem-gql-{uuid.uuid4().hex}"
    wrong_key = "jmk_" + uuid.uuid4().hex + "NotARealKey"
    statuses = []

    def record(response: Any) -> Any:
        statuses.append((response.request.url.path, response.status_code))
        return response

    # REST: created, replayed, reused with another body, unknown candidate, invalid, bad JSON.
    record(express(client, key, [EXAMPLE_ID], notes, {"Idempotency-Key": idem_rest}))
    record(express(client, key, [EXAMPLE_ID], notes, {"Idempotency-Key": idem_rest}))
    record(express(client, key, [EXAMPLE_ID, candidates[1]], notes, {"Idempotency-Key": idem_rest}))
    record(express(client, key, ["no-such-candidate"], notes))
    record(express(client, key, ["bad id!", EXAMPLE_ID, EXAMPLE_ID], notes + "x" * 3000))
    record(express(client, key, [EXAMPLE_ID], unicode_notes))
    record(
        client.post(
            REST_PATH,
            content=('{"additionalNotes": "' + notes + '", ').encode(),
            headers={"X-API-Key": key, "Content-Type": "application/json"},
        )
    )
    record(express(client, wrong_key, [EXAMPLE_ID], notes, {"Idempotency-Key": idem_rest}))
    # GraphQL: created, replayed, a coercion error that quotes the input, a validation error,
    # a missing candidate, a wrong key, a GET query.
    record(gql_express(client, key, [EXAMPLE_ID], notes, {"Idempotency-Key": idem_gql}))
    record(gql_express(client, key, [EXAMPLE_ID], notes, {"Idempotency-Key": idem_gql}))
    bogus = {
        "input": {
            "candidates": [{"publicId": EXAMPLE_ID}],
            "additionalNotes": notes,
            "unknownField": 1,
        }
    }
    record(gql(client, key, EXPRESS, bogus, {"Idempotency-Key": idem_gql}, "ExpressInterest"))
    typo = {"input": {"candidates": "nope", "additionalNotes": notes}}
    record(gql(client, key, EXPRESS, typo, operation_name="ExpressInterest"))
    record(gql_express(client, key, ["bad id!"], notes + "y" * 3000))
    record(gql_express(client, key, ["no-such-candidate"], notes))
    inline = (
        f'mutation {{ expressInterest(input: {{candidates: [{{publicId: "{EXAMPLE_ID}"}}], '
        f'additionalNotes: "{notes}", idempotencyKey: "{idem_gql}"}}) {{ jobMatchId }} }}'
    )
    record(gql(client, key, inline))
    record(gql(client, key, inline.replace("{ jobMatchId }", "{ jobMatchId nope }")))
    record(gql_express(client, wrong_key, [EXAMPLE_ID], notes, {"Idempotency-Key": idem_gql}))
    record(
        client.get(
            "/graphql",
            params={"query": VIEWER},
            headers={"X-API-Key": key, "X-Requested-With": "test"},
        )
    )

    codes = [status for _, status in statuses]
    assert 500 not in codes, statuses
    assert {201, 200, 400, 401, 404, 422} <= set(codes), statuses
    # The secrets really were in the requests, so the log had the chance to leak them.
    assert logs.text, "nothing was logged"
    captured = capfd.readouterr()
    everything = "\n".join([logs.text, caplog.text, captured.out, captured.err])
    secrets = {
        "API key": key,
        "API key secret part": key.removeprefix("jmk_"),
        "wrong API key": wrong_key,
        "REST Idempotency-Key": idem_rest,
        "GraphQL Idempotency-Key": idem_gql,
        "additionalNotes": notes,
        "additionalNotes (unicode)": unicode_notes,
        "additionalNotes (JSON-escaped unicode)": json.dumps(unicode_notes)[1:-1],
    }
    leaked = {name: value for name, value in secrets.items() if value in everything}
    assert not leaked, f"secrets in the logs: {sorted(leaked)}"


# --------------------------------------------------------------------------- logging setup


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def _emit_one(stream: io.StringIO, **settings: Any) -> str:
    configure_logging(Settings(**settings), stream=stream)
    logging.getLogger("gateway.test").info("hello", extra={"request_id": "req-1"})
    return stream.getvalue().strip()


def test_human_readable_logs_in_a_development_terminal() -> None:
    line = _emit_one(FakeTTY(), env="development", log_format="auto")
    assert line.startswith("INFO")
    assert "gateway.test: hello" in line and "request_id=req-1" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_gateway", False))
    assert isinstance(handler.formatter, ConsoleFormatter)


@pytest.mark.parametrize(
    ("stream_type", "settings"),
    [
        (io.StringIO, {"env": "development", "log_format": "auto"}),  # not a terminal
        (FakeTTY, {"env": "production", "log_format": "auto"}),  # a terminal, in production
        (FakeTTY, {"env": "development", "log_format": "json"}),  # forced
    ],
)
def test_json_logs_otherwise(stream_type: type[io.StringIO], settings: dict[str, Any]) -> None:
    line = _emit_one(stream_type(), **settings)
    entry = json.loads(line)
    assert entry["message"] == "hello" and entry["request_id"] == "req-1"
    assert entry["level"] == "info" and entry["logger"] == "gateway.test"
    datetime.fromisoformat(entry["time"])
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_gateway", False))
    assert isinstance(handler.formatter, JsonFormatter)


def test_console_format_can_be_forced_and_configuring_twice_keeps_one_handler() -> None:
    stream = io.StringIO()
    configure_logging(Settings(log_format="console"), stream=stream)
    configure_logging(Settings(log_format="console"), stream=stream)
    gateway_handlers = [h for h in logging.getLogger().handlers if getattr(h, "_gateway", False)]
    assert len(gateway_handlers) == 1
    logging.getLogger("gateway.test").warning("once")
    assert stream.getvalue().count("once") == 1
    assert stream.getvalue().startswith("WARNING")


def test_log_level_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_LOG_LEVEL", "WARNING")
    settings = load_settings()
    assert settings.log_level == "WARNING"
    stream = io.StringIO()
    configure_logging(settings.model_copy(update={"log_format": "json"}), stream=stream)
    logging.getLogger("gateway.test").info("quiet")
    logging.getLogger("gateway.test").warning("loud")
    assert "quiet" not in stream.getvalue() and "loud" in stream.getvalue()


def test_default_handler_writes_json_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(Settings(log_format="json"))  # binds the (captured) sys.stdout
    logging.getLogger("gateway.test").info("to stdout", extra={"request_id": "r-9"})
    out = capsys.readouterr().out
    entry = json.loads(out.strip().splitlines()[-1])
    assert entry["message"] == "to stdout" and entry["request_id"] == "r-9"


# --------------------------------------------------------------------------- metrics


def test_metrics_parse_and_count(client: TestClient, key: str, candidates: list[str]) -> None:
    before = scrape(client)
    assert (
        sample(
            before,
            "gateway_http_requests",
            "gateway_http_requests_total",
            route=REST_PATH,
            status="201",
        )
        == 0
    )

    idem = {"Idempotency-Key": f"m-{uuid.uuid4()}"}
    assert express(client, key, [EXAMPLE_ID], "notes", idem).status_code == 201
    assert express(client, key, [EXAMPLE_ID], "notes", idem).status_code == 201  # replay
    assert express(client, key, ["no-such-candidate"]).status_code == 404
    ok = gql_express(client, key, candidates[1:4])
    assert "errors" not in ok.json(), ok.text
    missing = gql_express(client, key, ["no-such-candidate"])
    assert missing.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    gql(client, key, VIEWER, operation_name="WhoAmI")

    m = scrape(client)
    total = "gateway_http_requests_total"
    assert (
        sample(m, "gateway_http_requests", total, route=REST_PATH, method="POST", status="201") == 2
    )
    assert sample(m, "gateway_http_requests", total, route=REST_PATH, status="404") == 1
    assert (
        sample(m, "gateway_http_requests", total, route="/graphql", method="POST", status="200")
        == 3
    )
    # The scrape before this one was counted too, under its route.
    assert sample(m, "gateway_http_requests", total, route="/metrics", status="200") == 1

    latency = "gateway_http_request_duration_seconds"
    assert sample(m, latency, latency + "_count", route=REST_PATH, status="201") == 2
    assert sample(m, latency, latency + "_count", route=REST_PATH, status="404") == 1
    assert sample(m, latency, latency + "_bucket", route=REST_PATH, status="201", le="+Inf") == 2
    assert sample(m, latency, latency + "_sum", route=REST_PATH, status="201") > 0

    ops = "gateway_graphql_operations"
    assert (
        sample(m, ops, ops + "_total", operation="ExpressInterest", type="mutation", error_code="")
        == 1
    )
    assert (
        sample(
            m,
            ops,
            ops + "_total",
            operation="ExpressInterest",
            type="mutation",
            error_code="NOT_FOUND",
        )
        == 1
    )
    assert sample(m, ops, ops + "_total", operation="WhoAmI", type="query", error_code="") == 1

    assert sample(m, "gateway_job_matches_created", "gateway_job_matches_created_total") == 2
    per = "gateway_job_match_candidates"
    assert sample(m, per, per + "_count") == 2
    assert sample(m, per, per + "_sum") == 1 + 3
    assert sample(m, per, per + "_bucket", le="1.0") == 1
    assert sample(m, "gateway_idempotent_replays", "gateway_idempotent_replays_total") == 1
    assert sample(m, "gateway_rate_limited", "gateway_rate_limited_total") == 0
    assert m["gateway_db_pool_in_use"].type == "gauge"
    assert sample(m, "gateway_db_pool_in_use") == 0  # nothing checked out between requests


def test_graphql_operation_labels_stay_bounded(client: TestClient, key: str) -> None:
    weird = "q" * 70  # longer than the label pattern allows
    gql(client, key, f"query {weird} {{ viewer {{ name }} }}", operation_name=weird)
    gql(client, key, "{ viewer { name } }")
    m = scrape(client)
    ops = "gateway_graphql_operations"
    assert sample(m, ops, ops + "_total", operation="other", type="query") == 1
    assert sample(m, ops, ops + "_total", operation="anonymous", type="query") == 1
    assert all(s.labels["operation"] != weird for s in m[ops].samples)


def test_unmatched_routes_share_one_label(client: TestClient) -> None:
    for i in range(3):
        client.get(f"/random-{uuid.uuid4()}-{i}")
    m = scrape(client)
    assert (
        sample(
            m,
            "gateway_http_requests",
            "gateway_http_requests_total",
            route="unmatched",
            status="404",
        )
        == 3
    )


def test_rate_limited_requests_are_counted(
    make_client: Callable[..., TestClient], key: str, candidates: list[str]
) -> None:
    client = make_client(rate_limit_per_hour=3600, rate_limit_burst=1)
    assert express(client, key, [EXAMPLE_ID]).status_code == 201
    refused = express(client, key, [EXAMPLE_ID])
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    limited_gql = gql(client, key, VIEWER)
    assert limited_gql.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    m = scrape(client)
    assert sample(m, "gateway_rate_limited", "gateway_rate_limited_total") >= 2
    assert (
        sample(
            m, "gateway_http_requests", "gateway_http_requests_total", route=REST_PATH, status="429"
        )
        == 1
    )


def test_metrics_token(make_client: Callable[..., TestClient]) -> None:
    client = make_client(metrics_token="scrape-token-123")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "scrape-token-123"}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["status"] == 401 and problem["instance"].startswith("urn:uuid:")
        assert "scrape-token-123" not in response.text
    families = scrape(client, Authorization="Bearer scrape-token-123")
    assert "gateway_http_requests" in families
    # Without a token setting, the scrape is open.
    assert make_client().get("/metrics").status_code == 200


# --------------------------------------------------------------------------- health


def test_health_and_readiness_need_no_key(client: TestClient) -> None:
    live = client.get("/healthz")
    assert live.status_code == 200 and live.json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready" and ready.json()["checks"]["database"] == "ok"
    for response in (live, ready):
        assert "cache-control" not in response.headers  # no key: nothing private to protect
        assert response.headers["x-content-type-options"] == "nosniff"


def test_probes_are_outside_rate_limits_and_auth(
    make_client: Callable[..., TestClient], key: str, candidates: list[str]
) -> None:
    client = make_client(rate_limit_per_hour=3600, rate_limit_burst=1)
    assert express(client, key, [EXAMPLE_ID]).status_code == 201
    assert express(client, key, [EXAMPLE_ID]).status_code == 429  # budget exhausted
    for _ in range(5):
        for headers in ({}, {"X-API-Key": key}, {"X-API-Key": "jmk_not-a-key"}):
            assert client.get("/healthz", headers=headers).status_code == 200
            assert client.get("/readyz", headers=headers).status_code == 200
            assert client.get("/metrics", headers=headers).status_code == 200
    for response in (client.get("/healthz", headers={"X-API-Key": key}),):
        assert not any(h.lower().startswith("ratelimit") for h in response.headers)
    assert express(client, key, [EXAMPLE_ID]).status_code == 429


def _assert_not_ready(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 503
    assert problem["instance"] == f"urn:uuid:{response.headers['x-request-id']}"
    assert int(response.headers["retry-after"]) >= 1
    assert "Traceback" not in response.text


def test_readyz_fails_when_the_schema_is_not_migrated(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    client = make_client(database_url=f"sqlite:///{tmp_path / 'never-migrated.sqlite3'}")
    _assert_not_ready(client.get("/readyz"))
    assert client.get("/healthz").status_code == 200  # liveness needs no database


def test_readyz_fails_when_the_database_is_unreachable(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(database_url="postgresql://postgres@127.0.0.1:1/gone")
    _assert_not_ready(client.get("/readyz"))
    assert client.get("/healthz").status_code == 200


def test_readyz_fails_when_the_database_goes_away_under_a_running_app(
    client: TestClient, engine: sa.Engine, migrated_url: str
) -> None:
    assert client.get("/readyz").status_code == 200
    if migrated_url.startswith("sqlite"):
        # The schema's record goes away under the running app (as if the file were replaced
        # by an unmigrated one).
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE alembic_version")
    else:
        # The tests' schema (conftest sets search_path): drop it with every table in it.
        with engine.begin() as connection:
            schema = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    _assert_not_ready(client.get("/readyz"))
    assert client.get("/healthz").status_code == 200


def test_probes_stay_out_of_the_access_log(client: TestClient, logs: LogCapture) -> None:
    logs.attach()
    for path in ("/healthz", "/readyz", "/metrics"):
        request_id = str(uuid.uuid4())
        assert client.get(path, headers={"X-Request-ID": request_id}).status_code == 200
        assert logs.for_request(request_id) == []


# --------------------------------------------------------------------------- CORS, headers

PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type,x-api-key,idempotency-key",
}


def test_cors_preflight_from_an_allowed_origin(make_client: Callable[..., TestClient]) -> None:
    client = make_client(cors_origins=["https://app.example"])
    response = client.options("/graphql", headers={"Origin": "https://app.example", **PREFLIGHT})
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert {"content-type", "x-api-key", "idempotency-key"} <= allowed
    assert int(response.headers["access-control-max-age"]) > 0
    assert "origin" in response.headers.get("vary", "").lower()
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-request-id"]


def test_cors_actual_request_from_an_allowed_origin_exposes_headers(
    make_client: Callable[..., TestClient], key: str
) -> None:
    client = make_client(cors_origins=["https://app.example"])
    response = gql(client, key, VIEWER, headers={"Origin": "https://app.example"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert {"x-request-id", "retry-after", "idempotent-replayed"} <= exposed


def test_cors_on_the_rest_write_and_the_methods_it_refuses(
    make_client: Callable[..., TestClient], key: str, candidates: list[str]
) -> None:
    client = make_client(cors_origins=["https://app.example"])
    origin = {"Origin": "https://app.example"}
    response = client.post(
        REST_PATH,
        json={"candidates": [{"publicId": candidates[0]}]},
        headers={"X-API-Key": key, **origin},
    )
    assert response.status_code == 201
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    assert "location" in response.headers["access-control-expose-headers"].lower()
    refused = client.post(REST_PATH, json={"candidates": []}, headers={"X-API-Key": key, **origin})
    assert refused.status_code == 400
    assert refused.headers["access-control-allow-origin"] == "https://app.example"
    # Other methods on the path go through the app's router: one CORS layer, a 405 problem.
    wrong = client.get(REST_PATH, headers=origin)
    assert wrong.status_code == 405
    assert wrong.headers["content-type"] == "application/problem+json"
    assert wrong.headers.get_list("access-control-allow-origin") == ["https://app.example"]


def test_cors_preflight_from_a_disallowed_origin(make_client: Callable[..., TestClient]) -> None:
    client = make_client(cors_origins=["https://app.example"])
    for origin in ("https://evil.example", "https://app.example.evil.example", "null"):
        response = client.options("/graphql", headers={"Origin": origin, **PREFLIGHT})
        assert response.status_code >= 400
        assert "access-control-allow-origin" not in response.headers
        actual = client.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"Origin": origin}
        )
        assert "access-control-allow-origin" not in actual.headers
    # On the REST face a refused preflight is a problem like every other error.
    refused = client.options(
        "/v1/candidates/job-match", headers={"Origin": "https://evil.example", **PREFLIGHT}
    )
    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["status"] == 400 and "CORS" in problem["detail"]
    assert problem["type"] == "http://testserver/problems/invalid-request"
    assert problem["instance"] == f"urn:uuid:{refused.headers['x-request-id']}"


def test_no_cors_by_default(client: TestClient) -> None:
    response = client.options("/graphql", headers={"Origin": "https://app.example", **PREFLIGHT})
    assert "access-control-allow-origin" not in response.headers
    assert response.status_code != 200 or "access-control-allow-headers" not in response.headers


def test_security_headers(client: TestClient, key: str, candidates: list[str]) -> None:
    anonymous = [
        client.get("/healthz"),
        client.get("/readyz"),
        client.get("/metrics"),
        client.get("/graphql", headers={"Accept": "text/html"}),
        client.get("/no-such-route"),
        client.get("/docs"),
        client.get("/openapi.json"),
        client.post("/graphql", json={"query": "{ viewer { name } }"}),
        client.post(REST_PATH, json={"candidates": [{"publicId": EXAMPLE_ID}]}),
    ]
    authenticated = [
        express(client, key, [EXAMPLE_ID]),
        express(client, key, ["no-such-candidate"]),
        gql(client, key, VIEWER),
        gql_express(client, key, [EXAMPLE_ID]),
        express(client, "jmk_wrong", [EXAMPLE_ID]),  # a key was sent: still private
        client.get(
            "/graphql",
            params={"query": VIEWER},
            headers={"X-API-Key": key, "X-Requested-With": "t"},
        ),
    ]
    for response in anonymous + authenticated:
        assert response.headers.get("x-content-type-options") == "nosniff", response.url
    for response in authenticated:
        assert "no-store" in response.headers.get("cache-control", ""), response.url
    assert authenticated[0].status_code == 201 and authenticated[2].status_code == 200
