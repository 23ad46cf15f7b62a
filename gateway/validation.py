"""The rules for an expression of interest, shared by both faces.

Input arrives as decoded JSON (REST) or as GraphQL input values; both are plain Python values
here. Every problem is collected before anything is raised, so one response names every bad
field, each with a JSON Pointer into the request body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.errors import FieldProblem, InvalidRequest

PUBLIC_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
IDEMPOTENCY_KEY_PATTERN = re.compile(r"[\x20-\x7e]{1,255}")
MISSING = object()


@dataclass(frozen=True)
class ExpressInterestCommand:
    """A validated expression of interest."""

    candidate_ids: tuple[str, ...]
    additional_notes: str | None
    idempotency_key: str | None


@dataclass(frozen=True)
class Limits:
    max_candidates: int
    max_notes_length: int


def validate_express_interest(
    candidates: object,
    additional_notes: object,
    idempotency_key: str | None,
    limits: Limits,
) -> ExpressInterestCommand:
    problems: list[FieldProblem] = []
    candidate_ids = _candidate_ids(candidates, limits, problems)
    notes = _notes(additional_notes, limits, problems)
    if idempotency_key is not None and not IDEMPOTENCY_KEY_PATTERN.fullmatch(idempotency_key):
        problems.append(
            FieldProblem(
                "/idempotencyKey", "Idempotency-Key must be 1 to 255 printable ASCII characters."
            )
        )
    if problems:
        raise InvalidRequest.from_problems(problems)
    return ExpressInterestCommand(tuple(candidate_ids), notes, idempotency_key)


def _candidate_ids(candidates: object, limits: Limits, problems: list[FieldProblem]) -> list[str]:
    if candidates is MISSING or candidates is None:
        problems.append(FieldProblem("/candidates", "candidates is required."))
        return []
    if not isinstance(candidates, list):
        problems.append(FieldProblem("/candidates", "candidates must be an array."))
        return []
    if not candidates:
        problems.append(FieldProblem("/candidates", "candidates must list at least one candidate."))
    elif len(candidates) > limits.max_candidates:
        problems.append(
            FieldProblem(
                "/candidates",
                f"candidates must list at most {limits.max_candidates} candidates "
                f"(got {len(candidates)}).",
            )
        )
        return []
    ids: list[str] = []
    first_seen: dict[str, int] = {}
    for index, item in enumerate(candidates):
        pointer = f"/candidates/{index}"
        if not isinstance(item, dict):
            problems.append(FieldProblem(pointer, "each candidate must be an object."))
            continue
        unknown = sorted(set(item) - {"publicId"})
        if unknown:
            # Only publicId identifies a candidate; anything else is a client mistake that would
            # otherwise make two entries for one candidate look different.
            problems.append(
                FieldProblem(
                    f"{pointer}/{unknown[0]}",
                    f"unknown candidate field(s): {', '.join(unknown)}; only publicId is allowed.",
                )
            )
        public_id = item.get("publicId", MISSING)
        if public_id is MISSING or public_id is None:
            problems.append(FieldProblem(f"{pointer}/publicId", "publicId is required."))
        elif not isinstance(public_id, str):
            problems.append(FieldProblem(f"{pointer}/publicId", "publicId must be a string."))
        elif not PUBLIC_ID_PATTERN.fullmatch(public_id):
            problems.append(
                FieldProblem(
                    f"{pointer}/publicId",
                    "publicId must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'.",
                )
            )
        elif public_id in first_seen:
            problems.append(
                FieldProblem(
                    f"{pointer}/publicId",
                    f"publicId {public_id} is listed twice (first at /candidates/"
                    f"{first_seen[public_id]}).",
                )
            )
        else:
            first_seen[public_id] = index
            ids.append(public_id)
    return ids


def _notes(notes: object, limits: Limits, problems: list[FieldProblem]) -> str | None:
    if notes is MISSING or notes is None:
        return None
    if not isinstance(notes, str):
        problems.append(FieldProblem("/additionalNotes", "additionalNotes must be a string."))
        return None
    if len(notes) > limits.max_notes_length:  # len() counts Unicode code points
        problems.append(
            FieldProblem(
                "/additionalNotes",
                f"additionalNotes must be at most {limits.max_notes_length} characters "
                f"(got {len(notes)}).",
            )
        )
    elif "\x00" in notes or not _is_encodable(notes):
        problems.append(
            FieldProblem(
                "/additionalNotes", "additionalNotes must be valid Unicode text without NUL."
            )
        )
    return notes


def _is_encodable(text: str) -> bool:
    # Lone surrogates decode from JSON escapes but cannot be stored as UTF-8.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
