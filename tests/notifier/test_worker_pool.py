"""Work off the event loop in worker processes: a call over its time limit is stopped (its worker
killed and replaced), and the loop keeps turning meanwhile."""

import asyncio
import os
import time
from collections.abc import AsyncIterator

import pytest

from services.notifier.worker_pool import WorkerBusy, WorkerDied, WorkerPool, WorkTimedOut
from tests.support.waiting import wait_for
from tests.support.work import die, spin


class LoopWatch:
    """The longest the loop went without running this task (which asks for a turn every 5 ms)."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last - 0.005)
            last = now

    def __enter__(self) -> "LoopWatch":
        self._task = asyncio.get_running_loop().create_task(self._watch())
        return self

    def __exit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool[float, int]]:
    workers = WorkerPool(spin, workers=1, time_limit=1.0)
    await workers.start()
    yield workers
    await workers.close()


async def test_a_call_runs_in_another_process(pool: WorkerPool[float, int]) -> None:
    pid = await pool.run(0)
    assert pid != os.getpid()
    assert await pool.run(0) == pid  # a worker serves many calls


async def test_a_call_over_the_time_limit_is_killed_and_its_worker_replaced(
    pool: WorkerPool[float, int],
) -> None:
    first = await pool.run(0)
    started = time.perf_counter()
    with LoopWatch() as watch, pytest.raises(WorkTimedOut):
        await pool.run(30)
    took = time.perf_counter() - started
    assert took < 3, f"the time limit is 1 s, the call took {took:.2f} s"
    # Generous for a crowded machine; a blocked loop would show the whole second.
    assert watch.longest < 0.5, f"the loop stalled {watch.longest * 1000:.0f} ms"
    replacement = await pool.run(0)
    assert replacement != first
    with pytest.raises(ProcessLookupError):
        os.kill(first, 0)


async def test_callers_beyond_the_workers_wait_their_turn_within_the_limit() -> None:
    pool = WorkerPool(spin, workers=1, time_limit=1.0)
    await pool.start()
    try:
        first = asyncio.create_task(pool.run(0.6))
        second = asyncio.create_task(pool.run(0.6))  # waits 0.6 s for its turn, then runs
        await asyncio.sleep(0)
        with pytest.raises(WorkerBusy):  # its turn would come at 1.2 s: past the limit
            await pool.run(0)
        assert await first == await second
    finally:
        await pool.close()


async def test_a_cancelled_call_does_not_leave_its_answer_to_the_next_caller(
    pool: WorkerPool[float, int],
) -> None:
    call = asyncio.create_task(pool.run(0.9))
    # Cancelled once the worker has it, before it can answer (however slow the machine).
    await wait_for(lambda: pool._calls, timeout=5, message="the call handed to the worker")
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    # The next caller gets its own answer from a fresh worker, not the cancelled call's.
    assert await pool.run(0) > 0


async def test_a_worker_that_dies_is_replaced() -> None:
    pool = WorkerPool(die, workers=1, time_limit=2)
    await pool.start()
    try:
        for _ in range(2):
            with pytest.raises(WorkerDied):
                await pool.run(None)
    finally:
        await pool.close()
