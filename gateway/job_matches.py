"""The job-match service: the one resolver behind ``expressInterest`` and the REST route,
and the reads that frontends page through."""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from gateway import models
from gateway.auth import Principal
from gateway.database import Database
from gateway.errors import (
    CandidatesNotFound,
    FieldProblem,
    IdempotencyInFlight,
    IdempotencyKeyReused,
    InvalidRequest,
)
from gateway.idempotency import advisory_lock_key, fingerprint
from gateway.metrics import Metrics
from gateway.models import as_utc, utcnow
from gateway.validation import ExpressInterestCommand, Limits, validate_express_interest

SUCCESS_MESSAGE = "Your interest has been successfully recorded."
JOB_MATCH_ID_PREFIX = "job-match-"
MAX_PAGE_SIZE = 100

jm, jmc, cand, idem = (
    models.job_match,
    models.job_match_candidate,
    models.candidate,
    models.idempotency_record,
)


@dataclass(frozen=True)
class JobMatchView:
    row_id: int
    public_id: str
    additional_notes: str | None
    created_at: datetime
    candidate_ids: tuple[str, ...] | None = None  # known when just written; else load in batch


@dataclass(frozen=True)
class ExpressInterestOutcome:
    job_match: JobMatchView
    replayed: bool
    message: str = SUCCESS_MESSAGE


@dataclass(frozen=True)
class JobMatchPage:
    items: list[JobMatchView]
    has_next_page: bool

    def cursor(self, item: JobMatchView) -> str:
        return encode_cursor(item.row_id)


def encode_cursor(row_id: int) -> str:
    return base64.urlsafe_b64encode(f"jm:{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix != "jm" or not number.isdigit():
            raise ValueError(cursor)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest.from_problems(
            [FieldProblem("/after", "after is not a cursor this API returned.")]
        ) from None


# Statements built once: SQLAlchemy then reuses their compiled form from its cache.
def _one_of(column: sa.Column, dialect: str, item_type: sa.types.TypeEngine) -> sa.ColumnElement:
    """``column`` is one of the list bound as ``:ids``, with one parameter whatever the list's
    length: the statement compiles once and stays in SQLAlchemy's cache (an expanding IN is
    re-rendered for every call)."""
    if dialect == "postgresql":
        return column == sa.any_(sa.bindparam("ids", type_=postgresql.ARRAY(item_type)))
    values = sa.select(sa.column("value")).select_from(
        sa.func.json_each(sa.bindparam("ids", type_=sa.JSON))
    )
    return column.in_(values.scalar_subquery())


def _find_candidates(dialect: str) -> sa.Select:
    return sa.select(cand.c.id, cand.c.public_id).where(
        _one_of(cand.c.public_id, dialect, sa.String())
    )


def _candidates_of_statement(dialect: str) -> sa.Select:
    return (
        sa.select(jmc.c.job_match_id, cand.c.public_id)
        .join(cand, cand.c.id == jmc.c.candidate_id)
        .where(_one_of(jmc.c.job_match_id, dialect, sa.Integer()))
        .order_by(jmc.c.job_match_id, jmc.c.position)
    )


_INSERT_JOB_MATCH = sa.insert(jm).returning(jm.c.id)
_INSERT_LINKS = sa.insert(jmc)
_INSERT_IDEMPOTENCY = sa.insert(idem)
_FIND_IDEMPOTENCY = (
    sa.select(
        idem.c.id,
        idem.c.fingerprint,
        idem.c.expires_at,
        jm.c.id.label("row_id"),
        jm.c.public_id,
        jm.c.additional_notes,
        jm.c.created_at,
    )
    .join(jm, jm.c.id == idem.c.job_match_id)
    .where(idem.c.client_id == sa.bindparam("client_id"), idem.c.key == sa.bindparam("key"))
)
_TRY_LOCK = sa.select(
    sa.func.pg_try_advisory_xact_lock(sa.func.hashtextextended(sa.bindparam("lock_key"), 0))
)
_JOB_MATCH_COLUMNS = (jm.c.id, jm.c.public_id, jm.c.additional_notes, jm.c.created_at)


def _view(row: sa.Row, candidate_ids: tuple[str, ...] | None = None) -> JobMatchView:
    return JobMatchView(
        row_id=row[0],
        public_id=row[1],
        additional_notes=row[2],
        created_at=as_utc(row[3]),
        candidate_ids=candidate_ids,
    )


class JobMatchService:
    def __init__(
        self, database: Database, limits: Limits, idempotency_ttl: timedelta, metrics: Metrics
    ) -> None:
        self._database = database
        self.limits = limits
        self._idempotency_ttl = idempotency_ttl
        self._metrics = metrics
        self._find_candidates = _find_candidates(database.dialect)
        self._candidates_of_query = _candidates_of_statement(database.dialect)

    async def express_interest(
        self,
        principal: Principal,
        candidates: object,
        additional_notes: object,
        idempotency_key: str | None = None,
    ) -> ExpressInterestOutcome:
        """Record the client's interest in the candidates: validated first, every candidate
        looked up in one query, the job match and its links written all-or-nothing."""
        command = validate_express_interest(
            candidates, additional_notes, idempotency_key, self.limits
        )
        outcome = await self._database.run(
            lambda connection: self._write(connection, principal, command), mode="write"
        )
        if outcome.replayed:
            self._metrics.idempotent_replays.inc()
        else:
            self._metrics.job_matches_created.inc()
            self._metrics.candidates_per_job_match.observe(len(command.candidate_ids))
        return outcome

    def _write(
        self, connection: sa.Connection, principal: Principal, command: ExpressInterestCommand
    ) -> ExpressInterestOutcome:
        now = utcnow()
        key = command.idempotency_key
        request_fingerprint = ""
        if key is not None:
            request_fingerprint = fingerprint(command.candidate_ids, command.additional_notes)
            replay = self._replay(connection, principal, key, request_fingerprint, now)
            if replay is not None:
                return replay

        found = dict(
            (public_id, row_id)
            for row_id, public_id in connection.execute(
                self._find_candidates, {"ids": list(command.candidate_ids)}
            )
        )
        missing = [public_id for public_id in command.candidate_ids if public_id not in found]
        if missing:
            raise CandidatesNotFound(missing)

        public_id = JOB_MATCH_ID_PREFIX + secrets.token_urlsafe(12)
        row_id = connection.execute(
            _INSERT_JOB_MATCH,
            {
                "public_id": public_id,
                "client_id": principal.client_id,
                "additional_notes": command.additional_notes,
                "created_at": now,
            },
        ).scalar_one()
        connection.execute(
            _INSERT_LINKS,
            [
                {"job_match_id": row_id, "position": position, "candidate_id": found[cid]}
                for position, cid in enumerate(command.candidate_ids)
            ],
        )
        if key is not None:
            try:
                connection.execute(
                    _INSERT_IDEMPOTENCY,
                    {
                        "client_id": principal.client_id,
                        "key": key,
                        "fingerprint": request_fingerprint,
                        "job_match_id": row_id,
                        "created_at": now,
                        "expires_at": now + self._idempotency_ttl,
                    },
                )
            except sa.exc.IntegrityError:
                # Another transaction recorded this key first; the whole write rolls back.
                raise IdempotencyInFlight(_IN_FLIGHT_DETAIL) from None
        view = JobMatchView(row_id, public_id, command.additional_notes, now, command.candidate_ids)
        return ExpressInterestOutcome(view, replayed=False)

    def _replay(
        self,
        connection: sa.Connection,
        principal: Principal,
        key: str,
        request_fingerprint: str,
        now: datetime,
    ) -> ExpressInterestOutcome | None:
        if self._database.is_postgresql:
            # Concurrent requests with one key: the first holds the lock until it commits; the
            # others are told it is in flight instead of queueing behind it.
            locked = connection.execute(
                _TRY_LOCK, {"lock_key": advisory_lock_key(principal.client_id, key)}
            ).scalar()
            if not locked:
                raise IdempotencyInFlight(_IN_FLIGHT_DETAIL)
        prior = connection.execute(
            _FIND_IDEMPOTENCY, {"client_id": principal.client_id, "key": key}
        ).first()
        if prior is None:
            return None
        if as_utc(prior.expires_at) <= now:
            connection.execute(sa.delete(idem).where(idem.c.id == prior.id))
            return None
        if prior.fingerprint != request_fingerprint:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used with a different request body."
            )
        candidate_ids = self._candidates_of(connection, [prior.row_id]).get(prior.row_id, ())
        view = JobMatchView(
            prior.row_id,
            prior.public_id,
            prior.additional_notes,
            as_utc(prior.created_at),
            candidate_ids,
        )
        return ExpressInterestOutcome(view, replayed=True)

    async def find(self, principal: Principal, public_id: str) -> JobMatchView | None:
        """The client's own job match, or None: another client's id is indistinguishable
        from an unknown one."""
        statement = sa.select(*_JOB_MATCH_COLUMNS).where(
            jm.c.public_id == public_id, jm.c.client_id == principal.client_id
        )

        def work(connection: sa.Connection) -> JobMatchView | None:
            row = connection.execute(statement).first()
            return _view(row) if row else None

        return await self._database.run(work)

    async def page(
        self,
        principal: Principal,
        first: int,
        after: str | None,
        with_candidates: bool = False,
    ) -> JobMatchPage:
        """Newest first, keyset-paginated on the row id: no OFFSET scans, no gaps or repeats
        while new job matches arrive. ``with_candidates`` loads every job match's candidates
        in the same transaction, with one more query."""
        if first < 0:
            raise InvalidRequest.from_problems(
                [FieldProblem("/first", "first must not be negative.")]
            )
        size = min(first, MAX_PAGE_SIZE)
        statement = (
            sa.select(*_JOB_MATCH_COLUMNS)
            .where(jm.c.client_id == principal.client_id)
            .order_by(jm.c.id.desc())
            .limit(size + 1)
        )
        if after is not None:
            statement = statement.where(jm.c.id < decode_cursor(after))

        def work(connection: sa.Connection) -> JobMatchPage:
            rows = connection.execute(statement).all()
            has_next_page = len(rows) > size
            rows = rows[:size]
            if not with_candidates or not rows:
                return JobMatchPage([_view(row) for row in rows], has_next_page)
            candidates = self._candidates_of(connection, [row[0] for row in rows])
            return JobMatchPage([_view(row, candidates[row[0]]) for row in rows], has_next_page)

        return await self._database.run(work)

    async def candidates_of(self, row_ids: list[int]) -> dict[int, tuple[str, ...]]:
        """Candidate ids of many job matches in one query, in the order they were listed."""
        return await self._database.run(lambda c: self._candidates_of(c, row_ids))

    def _candidates_of(
        self, connection: sa.Connection, row_ids: list[int]
    ) -> dict[int, tuple[str, ...]]:
        grouped: dict[int, list[str]] = {row_id: [] for row_id in row_ids}
        rows = connection.execute(self._candidates_of_query, {"ids": row_ids})
        for job_match_id, public_id in rows:
            grouped[job_match_id].append(public_id)
        return {row_id: tuple(ids) for row_id, ids in grouped.items()}

    async def candidate_exists(self, public_id: str) -> bool:
        statement = sa.select(cand.c.id).where(cand.c.public_id == public_id)
        return await self._database.run(lambda c: c.execute(statement).first() is not None)


_IN_FLIGHT_DETAIL = "A request with this Idempotency-Key is still in progress. Retry shortly."
