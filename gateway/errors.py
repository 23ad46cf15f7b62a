"""One taxonomy of domain errors, raised in the core and rendered by each face.

Each kind knows its HTTP status, its GraphQL ``extensions.code``, the slug of its problem
``type`` page and a fixed title. ``detail`` is always safe to show to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class FieldProblem:
    """One bad field: a JSON Pointer into the request body and what is wrong with it."""

    pointer: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"detail": self.detail, "pointer": self.pointer}


@dataclass(frozen=True)
class ProblemKind:
    status: int
    code: str
    slug: str
    title: str
    explanation: str  # shown on the problem's HTML page: what happened and how to fix it


class DomainError(Exception):
    kind: ClassVar[ProblemKind]

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions
        self.headers: dict[str, str] = {}

    @property
    def status(self) -> int:
        return self.kind.status


def _kind(status: int, code: str, slug: str, title: str, explanation: str) -> ProblemKind:
    return ProblemKind(status, code, slug, title, explanation)


class InvalidRequest(DomainError):
    kind = _kind(
        400,
        "BAD_USER_INPUT",
        "invalid-request",
        "Invalid Request",
        "The request body or its fields are not valid. The `errors` member lists every bad "
        "field with a JSON Pointer to it; fix them all and send the request again.",
    )

    def __init__(self, detail: str, problems: list[FieldProblem] | None = None) -> None:
        extensions = {"errors": [p.as_dict() for p in problems]} if problems else {}
        super().__init__(detail, **extensions)
        self.problems = problems or []

    @classmethod
    def from_problems(cls, problems: list[FieldProblem]) -> InvalidRequest:
        listed = "; ".join(f"{p.pointer}: {p.detail}" if p.pointer else p.detail for p in problems)
        if len(problems) == 1:
            return cls(listed, problems)
        return cls(f"The request has {len(problems)} problems: {listed}", problems)


class Unauthenticated(DomainError):
    kind = _kind(
        401,
        "UNAUTHENTICATED",
        "authentication-required",
        "Authentication required",
        "Send a valid, unexpired and unrevoked API key in the `X-API-Key` header.",
    )


class Forbidden(DomainError):
    kind = _kind(
        403,
        "FORBIDDEN",
        "forbidden",
        "Forbidden",
        "The API key is valid but lacks the scope this operation needs. Ask for a key with "
        "the `job-match:write` scope to submit job matches, or `job-match:read` to read them.",
    )


class NotFound(DomainError):
    kind = _kind(
        404,
        "NOT_FOUND",
        "not-found",
        "Resource not found",
        "The resource does not exist, or it belongs to another client.",
    )


class CandidatesNotFound(NotFound):
    kind = _kind(
        404,
        "NOT_FOUND",
        "candidate-not-found",
        "Resource not found",
        "One or more candidates in the request are unknown. The `missingPublicIds` member "
        "lists them; nothing was recorded. Check the ids and send the request again.",
    )

    def __init__(self, missing: list[str]) -> None:
        noun = "Candidate" if len(missing) == 1 else "Candidates"
        listed = ", ".join(missing)
        super().__init__(
            f"{noun} with the provided publicId {'was' if len(missing) == 1 else 'were'} "
            f"not found: {listed}.",
            missingPublicIds=missing,
        )
        self.missing = missing


class MethodNotAllowed(DomainError):
    kind = _kind(
        405,
        "METHOD_NOT_ALLOWED",
        "method-not-allowed",
        "Method Not Allowed",
        "The route exists but does not accept this HTTP method; the `Allow` header lists "
        "the methods it does accept.",
    )


class IdempotencyInFlight(DomainError):
    kind = _kind(
        409,
        "IDEMPOTENCY_IN_FLIGHT",
        "idempotency-in-flight",
        "Request in progress",
        "A request with the same Idempotency-Key is still being processed. Wait for it to "
        "finish, then retry: the retry will replay its result.",
    )


class PayloadTooLarge(DomainError):
    kind = _kind(
        413,
        "PAYLOAD_TOO_LARGE",
        "payload-too-large",
        "Payload Too Large",
        "The request body is larger than the gateway accepts. Send fewer candidates or "
        "shorter notes.",
    )


class IdempotencyKeyReused(DomainError):
    kind = _kind(
        422,
        "IDEMPOTENCY_KEY_REUSED",
        "idempotency-key-reused",
        "Idempotency-Key reused",
        "This Idempotency-Key was already used for a request with a different body. Use a "
        "new key for a new request; reuse a key only to retry the very same request.",
    )


class RateLimited(DomainError):
    kind = _kind(
        429,
        "RATE_LIMITED",
        "rate-limited",
        "Too Many Requests",
        "The API key has used up its request budget. Wait for the number of seconds in "
        "`Retry-After`, then retry.",
    )

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Rate limit exceeded. Retry in {retry_after} seconds.")
        self.headers["Retry-After"] = str(retry_after)


class InternalError(DomainError):
    kind = _kind(
        500,
        "INTERNAL_SERVER_ERROR",
        "internal-error",
        "Service Unavailable",
        "Something went wrong on our side. Nothing you sent was wrong; retry later and "
        "quote the `instance` if it persists.",
    )

    def __init__(self) -> None:
        super().__init__("An unexpected error occurred. Please try again later.")


class ServiceUnavailable(DomainError):
    kind = _kind(
        503,
        "SERVICE_UNAVAILABLE",
        "service-unavailable",
        "Service Unavailable",
        "A service the gateway depends on is unavailable. Retry after the number of seconds "
        "in `Retry-After`.",
    )

    RETRY_AFTER_SECONDS = 2

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.headers["Retry-After"] = str(self.RETRY_AFTER_SECONDS)


class RouteNotFound(NotFound):
    kind = _kind(
        404,
        "NOT_FOUND",
        "route-not-found",
        "Resource not found",
        "There is no route at this path. See /docs for the routes the gateway serves.",
    )


def all_problem_kinds() -> dict[str, ProblemKind]:
    """Every problem kind by slug, for the problem pages and the docs."""
    kinds: dict[str, ProblemKind] = {}
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        kind = cls.__dict__.get("kind")
        if kind is not None:
            kinds[kind.slug] = kind
    return kinds
