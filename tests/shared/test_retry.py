"""shared.retry: the one back-off policy (pure logic: the pauses are recorded, not waited)."""

import itertools

import pytest

from shared.retry import Backoff, retrying


def test_pauses_double_up_to_the_ceiling():
    assert list(itertools.islice(Backoff(first=0.1, ceiling=1.0).pauses(), 6)) == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    )


class Clock:
    """Records the pauses instead of waiting them."""

    def __init__(self) -> None:
        self.pauses: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_retrying_calls_again_after_each_failure_of_the_kinds_given(clock):
    calls = iter([ConnectionError(), OSError(), "done"])

    async def action() -> str:
        outcome = next(calls)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert await retrying(action, retry_on=(OSError,), what="test", sleep=clock.sleep) == "done"
    assert clock.pauses == pytest.approx([0.1, 0.2])


async def test_retrying_raises_other_failures_at_once(clock):
    async def action() -> None:
        raise ValueError("not a retry's business")

    with pytest.raises(ValueError):
        await retrying(action, retry_on=(OSError,), what="test", sleep=clock.sleep)
    assert clock.pauses == []


async def test_retrying_gives_up_after_its_attempts(clock):
    calls = 0

    async def action() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("still away")

    with pytest.raises(ConnectionError):
        await retrying(action, retry_on=(OSError,), what="test", attempts=3, sleep=clock.sleep)
    assert calls == 3
    assert len(clock.pauses) == 2
