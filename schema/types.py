"""GraphQL object types: plain annotated classes over the core's read models."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import strawberry

from gateway.job_matches import JobMatchView
from schema.inputs import planned_input

if TYPE_CHECKING:
    from schema.context import GraphQLContext


@strawberry.type(description="A candidate, known to the platform by an opaque public id.")
class Candidate:
    public_id: str


@strawberry.type(description="A recorded expression of interest in one or more candidates.")
class JobMatch:
    id: strawberry.ID = strawberry.field(description="The same string as `jobMatchId`.")
    additional_notes: str | None
    created_at: datetime
    view: strawberry.Private[JobMatchView]

    @strawberry.field(description="The candidates, in the order the client listed them.")
    def candidates(self, info: strawberry.Info[GraphQLContext, None]) -> list[Candidate]:
        # Synchronous when the ids came with the job match (a page, a new record): a page of
        # 50 then costs no coroutine per node. Otherwise one batched load for all of them.
        ids = self.view.candidate_ids
        if ids is None:
            return self._load_candidates(info)  # type: ignore[return-value]  # awaited by graphql-core
        return [Candidate(public_id=public_id) for public_id in ids]

    async def _load_candidates(
        self, info: strawberry.Info[GraphQLContext, None]
    ) -> list[Candidate]:
        ids = await info.context.candidates_loader.load(self.view.row_id)
        return [Candidate(public_id=public_id) for public_id in ids]

    @classmethod
    def from_view(cls, view: JobMatchView) -> JobMatch:
        return cls(
            id=strawberry.ID(view.public_id),
            additional_notes=view.additional_notes,
            created_at=view.created_at,
            view=view,
        )


@strawberry.type
class ExpressInterestPayload:
    message: str
    job_match_id: str
    job_match: JobMatch


@strawberry.type(description="The calling client and the scopes of its API key.")
class Viewer:
    name: str
    scopes: list[str]


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class JobMatchEdge:
    cursor: str
    node: JobMatch


@strawberry.type
class JobMatchConnection:
    edges: list[JobMatchEdge]
    page_info: PageInfo


@planned_input
@strawberry.input
class CandidateInput:
    public_id: str


@planned_input
@strawberry.input
class ExpressInterestInput:
    candidates: list[CandidateInput]
    additional_notes: str | None = None
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="Same as the Idempotency-Key header: a retry with the same key and input "
        "replays the first result instead of recording a second job match.",
    )
