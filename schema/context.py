"""Per-request GraphQL context: the request, its state, the services and the DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request
from strawberry.dataloader import DataLoader

from gateway.auth import Principal
from gateway.request_state import RequestState
from gateway.scopes import Scope
from gateway.services import Services


@dataclass
class GraphQLContext:
    request: Request
    state: RequestState
    services: Services
    _candidates_loader: DataLoader[int, tuple[str, ...]] | None = field(default=None, init=False)

    @property
    def candidates_loader(self) -> DataLoader[int, tuple[str, ...]]:
        """One query for the candidates of every job match resolved in this request; built on
        first use, since most requests (the mutation, pages) never need it."""
        if self._candidates_loader is None:

            async def load(row_ids: list[int]) -> list[tuple[str, ...]]:
                by_id = await self.services.job_matches.candidates_of(row_ids)
                return [by_id[row_id] for row_id in row_ids]

            self._candidates_loader = DataLoader(load_fn=load)
        return self._candidates_loader

    async def admit(self, scope: Scope) -> Principal:
        return await self.services.guard.admit(
            self.state, self.request.headers.get("x-api-key"), scope
        )
