"""When a client tries a request again, and how long it waits first.

Only where the request cannot have been carried out: the connection failed (refused, reset
before sending, timed out while connecting) or the server answered 503 (starting, draining, its
store unreachable). Anything else, a read timeout included, is raised at once: an `add` that may
have been stored is never sent twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from engramdb.errors import InvalidInput, ServerError

__all__ = ["RETRIED_ERRORS", "Retry"]

#: transport errors raised before the request reached the server
RETRIED_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout)


@dataclass(frozen=True)
class Retry:
    """The retry policy of a client.

    Args:
        attempts: tries in all (1: never retry).
        backoff: seconds before the second try, doubled before each next one.
        max_delay: the longest wait between two tries (a `Retry-After` too is capped by it).
        statuses: the HTTP statuses that are tried again.
    """

    attempts: int = 4
    backoff: float = 0.25
    max_delay: float = 8.0
    statuses: frozenset[int] = frozenset({503})

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise InvalidInput("attempts", "expected an integer")
        if self.attempts < 1:
            raise InvalidInput("attempts", f"must be at least 1, got {self.attempts}")
        if not self.backoff >= 0:
            raise InvalidInput("backoff", "expected a number of seconds >= 0")
        if not self.max_delay >= 0:
            raise InvalidInput("max_delay", "expected a number of seconds >= 0")

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait after try `attempt` (0-based) failed."""
        if retry_after is not None and retry_after.strip().isdigit():
            return min(float(retry_after), self.max_delay)
        return float(min(self.backoff * 2**attempt, self.max_delay))

    def after_error(self, attempt: int, exc: httpx.TransportError, url: str) -> float:
        """The wait before trying again after a transport error.

        Raises:
            ServerError: the error is not retried, or this was the last try.
        """
        if isinstance(exc, RETRIED_ERRORS) and attempt + 1 < self.attempts:
            return self.delay(attempt)
        tries = f" after {attempt + 1} tries" if isinstance(exc, RETRIED_ERRORS) else ""
        kind = "no answer in time" if isinstance(exc, httpx.TimeoutException) else "no answer"
        raise ServerError(
            f"{url}: {kind}{tries}: {type(exc).__name__}: {exc}", status=None
        ) from exc

    def after_status(self, attempt: int, status: int, headers: Mapping[str, str]) -> float | None:
        """The wait before trying again after an answer, or None to take the answer."""
        if status in self.statuses and attempt + 1 < self.attempts:
            return self.delay(attempt, headers.get("retry-after"))
        return None
