"""SQLModel tables: the one description of the schema, used by Alembic and by Core statements."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

# Timestamps are stored timezone-aware on PostgreSQL; SQLite hands them back naive (always UTC).
Timestamp = sa.DateTime(timezone=True)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back naive; everything the gateway stores is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class ApiClient(SQLModel, table=True):
    """An employer or recruiter account that owns API keys and job matches."""

    __tablename__ = "api_client"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, sa_column_kwargs={"unique": True}, nullable=False)
    created_at: datetime = Field(sa_type=Timestamp, nullable=False)


class ApiKey(SQLModel, table=True):
    """An API key; only its SHA-256 hash is stored, the plaintext is shown once."""

    __tablename__ = "api_key"
    __table_args__ = (sa.Index("ix_api_key_client_id", "client_id"),)

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="api_client.id", nullable=False, ondelete="CASCADE")
    prefix: str = Field(max_length=32, nullable=False)
    key_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True}, nullable=False)
    scopes: str = Field(max_length=200, nullable=False)  # space-separated, like OAuth scopes
    created_at: datetime = Field(sa_type=Timestamp, nullable=False)
    last_used_at: datetime | None = Field(default=None, sa_type=Timestamp)
    expires_at: datetime | None = Field(default=None, sa_type=Timestamp)
    revoked_at: datetime | None = Field(default=None, sa_type=Timestamp)


class Candidate(SQLModel, table=True):
    __tablename__ = "candidate"

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(max_length=64, sa_column_kwargs={"unique": True}, nullable=False)
    created_at: datetime = Field(sa_type=Timestamp, nullable=False)


class JobMatch(SQLModel, table=True):
    """One expression of interest: a client's interest in one or more candidates."""

    __tablename__ = "job_match"
    # Keyset pagination walks (client_id, id) newest first.
    __table_args__ = (sa.Index("ix_job_match_client_id_id", "client_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(max_length=64, sa_column_kwargs={"unique": True}, nullable=False)
    client_id: int = Field(foreign_key="api_client.id", nullable=False)
    additional_notes: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = Field(sa_type=Timestamp, nullable=False)


class JobMatchCandidate(SQLModel, table=True):
    """Link between a job match and a candidate, in the order the client listed them."""

    __tablename__ = "job_match_candidate"
    __table_args__ = (
        sa.UniqueConstraint("job_match_id", "candidate_id", name="uq_job_match_candidate_pair"),
        sa.Index("ix_job_match_candidate_candidate_id", "candidate_id"),
    )

    job_match_id: int = Field(foreign_key="job_match.id", primary_key=True, ondelete="CASCADE")
    position: int = Field(primary_key=True)
    candidate_id: int = Field(foreign_key="candidate.id", nullable=False)


class IdempotencyRecord(SQLModel, table=True):
    """A successful write remembered under the client's Idempotency-Key, for replays."""

    __tablename__ = "idempotency_record"
    __table_args__ = (
        sa.UniqueConstraint("client_id", "key", name="uq_idempotency_record_client_key"),
        sa.Index("ix_idempotency_record_expires_at", "expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="api_client.id", nullable=False)
    key: str = Field(max_length=255, nullable=False)
    fingerprint: str = Field(max_length=64, nullable=False)
    job_match_id: int = Field(foreign_key="job_match.id", nullable=False, ondelete="CASCADE")
    created_at: datetime = Field(sa_type=Timestamp, nullable=False)
    expires_at: datetime = Field(sa_type=Timestamp, nullable=False)


api_client = ApiClient.__table__
api_key = ApiKey.__table__
candidate = Candidate.__table__
job_match = JobMatch.__table__
job_match_candidate = JobMatchCandidate.__table__
idempotency_record = IdempotencyRecord.__table__
metadata = SQLModel.metadata
