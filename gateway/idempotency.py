"""Idempotency-Key handling (IETF draft semantics), kept beside the write it protects.

A success is remembered under (client, key) with a fingerprint of the request, in the same
transaction as the job match itself: a crash leaves both or neither. Failures store nothing.
"""

from __future__ import annotations

import hashlib

import orjson

from gateway.errors import FieldProblem, InvalidRequest

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"


def fingerprint(candidate_ids: tuple[str, ...], additional_notes: str | None) -> str:
    """Identify a request by what it asks for, so either face's retry matches the original."""
    canonical = orjson.dumps({"candidates": candidate_ids, "additionalNotes": additional_notes})
    return hashlib.sha256(canonical).hexdigest()


def choose_key(header_value: str | None, input_value: str | None) -> str | None:
    """The GraphQL input's ``idempotencyKey`` and the header are one thing: both, and
    different, is a contradiction."""
    if header_value is not None and input_value is not None and header_value != input_value:
        raise InvalidRequest.from_problems(
            [
                FieldProblem(
                    "/idempotencyKey",
                    "idempotencyKey differs from the Idempotency-Key header; send one or the "
                    "same value in both.",
                )
            ]
        )
    return input_value if input_value is not None else header_value


def advisory_lock_key(client_id: int, key: str) -> str:
    return f"{client_id}:{key}"
