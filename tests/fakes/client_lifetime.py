"""One check of an HTTP provider's client lifetime, shared by the providers' tests.

``Cascade.run_sync`` runs each query in its own ``asyncio.run`` and closes the providers at its end,
so a provider must create its ``httpx.AsyncClient`` lazily, in the loop that uses it, close it in
``aclose`` and make a fresh one next time, while a client passed in by the caller is never closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from edgecascade.providers.base import Timeouts

Handler = Callable[[httpx.Request], httpx.Response]


def check_fresh_client_per_event_loop(monkeypatch: pytest.MonkeyPatch, handler: Handler,
                                      make_provider: Callable[[Timeouts], Any],
                                      one_call: Callable[[Any], Awaitable[Any]], expected: Any) -> None:
    made: list[httpx.AsyncClient] = []

    class Mocked(httpx.AsyncClient):
        def __init__(self, **kw: Any) -> None:
            super().__init__(transport=httpx.MockTransport(handler), **kw)
            made.append(self)

    monkeypatch.setattr(httpx, "AsyncClient", Mocked)
    p = make_provider(Timeouts(connect=1.5, read=9.0))
    assert made == [] and p._client is None  # nothing is created before the first call

    async def one_run() -> Any:
        try:
            return await one_call(p)
        finally:
            await p.aclose()

    assert asyncio.run(one_run()) == expected
    assert asyncio.run(one_run()) == expected
    assert len(made) == 2 and all(c.is_closed for c in made) and p._client is None
    assert made[0].timeout == httpx.Timeout(connect=1.5, read=9.0, write=9.0, pool=1.5)


def check_given_client_is_kept_open(p: Any, one_call: Callable[[Any], Awaitable[Any]], expected: Any) -> None:
    given = p._client
    assert given is not None

    async def one_run() -> Any:
        try:
            return await one_call(p)
        finally:
            await p.aclose()

    assert asyncio.run(one_run()) == expected and asyncio.run(one_run()) == expected
    assert p._client is given and not given.is_closed
    asyncio.run(given.aclose())
