"""One back-off policy for every retry of the suite: a pause that doubles after each failure, up
to a ceiling, and starts small again after a success.

`retrying` calls an action until it succeeds (a database call while PostgreSQL restarts);
`Backoff.pauses` gives the pauses of a loop that supervises something for as long as the
service runs (the broker's connection, the outbox relay), which starts them anew itself.
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import structlog

log = structlog.get_logger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    first: float = 0.1
    ceiling: float = 10.0

    def pauses(self) -> Iterator[float]:
        pause = self.first
        while True:
            yield pause
            pause = min(pause * 2, self.ceiling)


async def retrying(
    action: Callable[[], Awaitable[T]],
    *,
    retry_on: tuple[type[BaseException], ...],
    what: str,
    backoff: Backoff = Backoff(),
    attempts: int | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> T:
    """`action()`'s result, calling it again after each failure of a `retry_on` kind (logged as
    `<what>.retry`, then a pause); after `attempts` calls (None: no limit) the last failure is
    raised. Any other exception is raised at once."""
    pauses = backoff.pauses()
    attempt = 0
    while True:
        attempt += 1
        try:
            return await action()
        except retry_on as exc:
            if attempts is not None and attempt >= attempts:
                raise
            pause = next(pauses)
            log.warning(f"{what}.retry", attempt=attempt, error=repr(exc), retry_in=pause)
            await sleep(pause)
