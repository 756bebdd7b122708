"""The Provider protocol every backend implements.

Providers know nothing about cascades: they answer one Request with one Completion (or a stream
of Deltas) and translate their failures into :mod:`edgecascade.errors` at their boundary.
What a backend can do is declared in :class:`Capabilities`, never discovered by isinstance.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..config import TimeoutConfig
from ..types import Completion, Delta, Request

_DEFAULT = TimeoutConfig()  # the documented defaults live in one place: the config schema

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Deadlines for one call to a remote backend, in seconds.

    ``connect``: to open a connection; ``read``: the longest wait for the next bytes (a server that
    stalls mid-stream trips it); ``total``: the whole call, retries included (enforced by the
    retrying wrapper, not by each attempt).
    """

    connect: float = _DEFAULT.connect
    read: float = _DEFAULT.read
    total: float = _DEFAULT.total

    def to_httpx(self) -> httpx.Timeout:
        """The per-attempt deadlines as an ``httpx.Timeout`` (writes get ``read``'s, the pool ``connect``'s);
        ``total`` is the retrying wrapper's business, not one attempt's."""
        import httpx  # here, so in-process-only users do not pay for importing it

        return httpx.Timeout(connect=self.connect, read=self.read, write=self.read, pool=self.connect)


@dataclass(frozen=True, slots=True)
class Capabilities:
    logprobs: bool = False
    streaming: bool = False
    local: bool = False  # runs in this process or on this machine (no network, no per-call bill)
    tools: bool = False
    json_mode: bool = False
    #: the highest sampling temperature the backend accepts (Anthropic's API: 1.0; it refuses more)
    max_temperature: float = 2.0


@runtime_checkable
class Provider(Protocol):
    @property
    def model(self) -> str:
        """The model's name as reported in results."""
        ...

    @property
    def capabilities(self) -> Capabilities: ...

    async def complete(self, request: Request) -> Completion:
        """Answer the request. Raises ProviderError subclasses on failure."""
        ...

    def stream(self, request: Request) -> AsyncIterator[Delta]:
        """Yield the answer piece by piece; the last Delta carries the finish reason."""
        ...

    async def aclose(self) -> None:
        """Release what the provider holds (connections, loaded models)."""
        ...
