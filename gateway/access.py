"""The gate every protected operation passes: who is calling, within budget, allowed to do it."""

from __future__ import annotations

from gateway.auth import Authenticator, Principal
from gateway.errors import DomainError
from gateway.rate_limit import RateLimiter
from gateway.request_state import RequestState
from gateway.scopes import Scope


class AccessGuard:
    def __init__(self, authenticator: Authenticator, rate_limiter: RateLimiter) -> None:
        self.authenticator = authenticator
        self.rate_limiter = rate_limiter

    async def admit(self, state: RequestState, raw_key: str | None, scope: Scope) -> Principal:
        """Authenticate once per request, charge the key's budget once, then check ``scope``.

        A GraphQL document may select several protected fields; each asks here, but only the
        first one authenticates and takes a token, and a refusal is repeated, not retried.
        """
        if state.principal is None:
            if state.admission_error is not None:
                raise state.admission_error
            try:
                principal = await self.authenticator.authenticate(raw_key)
                state.rate_limit = await self.rate_limiter.check(str(principal.key_id))
            except DomainError as error:
                state.admission_error = error
                raise
            state.principal = principal
        state.principal.require(scope)
        return state.principal
