"""The gate every protected operation passes: who is calling, within budget, allowed to do it."""

from __future__ import annotations

import asyncio

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

        A GraphQL document may select several protected fields, resolved concurrently; each
        asks here, but only the first authenticates and takes a token while the others wait
        for its outcome, a refusal included.
        """
        if state.admission is None:
            state.admission = asyncio.get_running_loop().create_future()
            try:
                principal = await self.authenticator.authenticate(raw_key)
                state.rate_limit = await self.rate_limiter.check(str(principal.key_id))
            except DomainError as error:
                state.admission.set_exception(error)
                state.admission.exception()  # retrieved here: no warning if nobody else waits
                raise
            except BaseException:  # cancelled, or a bug: never leave the others waiting
                state.admission.cancel()
                raise
            state.principal = principal
            state.admission.set_result(principal)
        principal = await state.admission
        principal.require(scope)
        return principal
