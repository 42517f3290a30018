"""resources.periodic: a housekeeping chore at start, then at every turn, until the app stops."""

import asyncio

import pytest
from aiohttp import web

from shared.resources import periodic
from tests.support.waiting import wait_for


async def test_a_chore_runs_at_start_then_every_turn_and_survives_its_failures() -> None:
    calls: list[web.Application] = []

    async def chore(app: web.Application) -> None:
        calls.append(app)
        if len(calls) == 2:
            raise ConnectionError("the database is away")

    app = web.Application()
    context = periodic("test-chore", 0.02, chore)(app)
    await anext(context)  # the app starts
    await wait_for(lambda: len(calls) >= 4, timeout=5, message="four turns, one failed")
    assert all(a is app for a in calls)
    with pytest.raises(StopAsyncIteration):
        await anext(context)  # the app stops
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "test-chore"]
