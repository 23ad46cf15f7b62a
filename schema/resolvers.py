"""The Query and Mutation roots: thin adapters from GraphQL arguments to the core service."""

from __future__ import annotations

import strawberry
from strawberry.types.nodes import FragmentSpread, InlineFragment

from gateway.idempotency import choose_key
from gateway.scopes import Scope
from schema.context import GraphQLContext
from schema.types import Candidate as CandidateType
from schema.types import (
    ExpressInterestInput,
    ExpressInterestPayload,
    JobMatch,
    JobMatchConnection,
    JobMatchEdge,
    PageInfo,
    Viewer,
)

Info = strawberry.Info[GraphQLContext, None]
DEFAULT_PAGE_SIZE = 20


def selects(info: Info, *path: str) -> bool:
    """Whether the query selects the field at ``path`` below the current one (fragments
    included), so that a page can load what will be asked of it in one go."""
    fields = info.selected_fields
    for name in path:
        fields = [
            child
            for field in fields
            for child in _children(field)
            if getattr(child, "name", None) == name
        ]
        if not fields:
            return False
    return True


def _children(field: object) -> list[object]:
    children: list[object] = []
    for selection in getattr(field, "selections", ()):
        if isinstance(selection, (FragmentSpread, InlineFragment)):
            children.extend(_children(selection))
        else:
            children.append(selection)
    return children


@strawberry.type
class Query:
    @strawberry.field(description="The calling client.")
    async def viewer(self, info: Info) -> Viewer:
        principal = await info.context.admit(Scope.JOB_MATCH_READ)
        return Viewer(name=principal.client_name, scopes=sorted(str(s) for s in principal.scopes))

    @strawberry.field(description="One of the caller's job matches; null for any other id.")
    async def job_match(self, info: Info, id: strawberry.ID) -> JobMatch | None:
        principal = await info.context.admit(Scope.JOB_MATCH_READ)
        view = await info.context.services.job_matches.find(principal, str(id))
        return JobMatch.from_view(view) if view else None

    @strawberry.field(description="The caller's job matches, newest first (first ≤ 100).")
    async def job_matches(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> JobMatchConnection:
        principal = await info.context.admit(Scope.JOB_MATCH_READ)
        page = await info.context.services.job_matches.page(
            principal,
            DEFAULT_PAGE_SIZE if first is None else first,
            after,
            with_candidates=selects(info, "edges", "node", "candidates"),
        )
        edges = [
            JobMatchEdge(cursor=page.cursor(v), node=JobMatch.from_view(v)) for v in page.items
        ]
        return JobMatchConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )

    @strawberry.field(description="A candidate by public id; null when unknown.")
    async def candidate(self, info: Info, public_id: str) -> CandidateType | None:
        await info.context.admit(Scope.JOB_MATCH_READ)
        exists = await info.context.services.job_matches.candidate_exists(public_id)
        return CandidateType(public_id=public_id) if exists else None


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Tell the platform that these candidates match a job and that the client "
        "wants to proceed with them."
    )
    async def express_interest(
        self, info: Info, input: ExpressInterestInput
    ) -> ExpressInterestPayload:
        context = info.context
        principal = await context.admit(Scope.JOB_MATCH_WRITE)
        key = choose_key(context.request.headers.get("idempotency-key"), input.idempotency_key)
        outcome = await context.services.job_matches.express_interest(
            principal,
            [{"publicId": c.public_id} for c in input.candidates],
            input.additional_notes,
            key,
        )
        context.state.idempotent_replay = outcome.replayed
        return ExpressInterestPayload(
            message=outcome.message,
            job_match_id=outcome.job_match.public_id,
            job_match=JobMatch.from_view(outcome.job_match),
        )
