"""The authorities an API key can carry. Writing job matches is separate from reading them."""

from enum import StrEnum


class Scope(StrEnum):
    JOB_MATCH_WRITE = "job-match:write"
    JOB_MATCH_READ = "job-match:read"


ALL_SCOPES: tuple[Scope, ...] = tuple(Scope)


def parse_scopes(text: str) -> frozenset[Scope]:
    return frozenset(Scope(part) for part in text.split())


def format_scopes(scopes: frozenset[Scope] | tuple[Scope, ...]) -> str:
    return " ".join(sorted(str(scope) for scope in scopes))
