"""Worker processes that run one CPU-bound function off the event loop, each call in a time limit.

Why processes: Python's `email` parser holds the GIL, so in a thread it would still stall the
loop. Why not `concurrent.futures.ProcessPoolExecutor`: before Python 3.14 it cannot stop one call
that runs too long; here a call that does not finish in time (or is cancelled) kills its worker,
and a fresh one takes its place. Workers fork from a `forkserver` that preloads only the
function's module: forking the service itself (threads, sockets, uvloop) is unsafe, and `spawn`
would import the whole service again.

Each worker has a pipe and a thread of our own that waits on it, so the loop only ever waits on
a future; a killed worker closes its end, and the waiting thread sees EOF at once.
"""

import asyncio
import multiprocessing
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any, Generic, TypeVar

import structlog

log = structlog.get_logger(__name__)

_START_WITHIN = 60.0

A = TypeVar("A")
R = TypeVar("R")


class WorkerBusy(Exception):
    """No worker became free within the time limit."""


class WorkTimedOut(Exception):
    """The call did not finish within the time limit; its worker was killed."""


class WorkerDied(Exception):
    """The worker exited during the call (killed, out of memory...)."""


def _serve(conn: Connection, func: Callable[[Any], Any]) -> None:
    """A worker's life: one call at a time, until the service closes its end of the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the service, which stops us
    conn.send(True)  # ready: `func`'s module is imported (a call's time limit is for the call)
    while True:
        try:
            arg = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send((True, func(arg)))
        except Exception as exc:
            conn.send((False, f"{type(exc).__name__}: {exc}"[:300]))


class _Worker:
    def __init__(self, context: Any, func: Callable[[Any], Any], name: str) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, func), name=name, daemon=True)
        self.process.start()
        child.close()
        if not self.conn.poll(_START_WITHIN):
            self.retire()
            raise RuntimeError(f"a {name} did not start within {_START_WITHIN} s")
        self.conn.recv()

    def call(self, arg: Any) -> tuple[bool, Any]:
        """Blocking: in a thread of the pool's own."""
        try:
            self.conn.send(arg)
            return self.conn.recv()
        except (EOFError, OSError) as exc:
            raise WorkerDied(f"worker {self.process.pid} exited ({exc!r})") from None

    def retire(self) -> None:
        """Blocking; only once no thread waits on the pipe (a closed descriptor's number may
        be reused by the next worker's pipe)."""
        self.process.kill()
        self.conn.close()
        self.process.join(2)


class WorkerPool(Generic[A, R]):
    """`await pool.run(arg)` is `func(arg)` in one of `workers` processes, within `time_limit`
    seconds of waiting for a free worker and as many again of work."""

    def __init__(self, func: Callable[[A], R], *, workers: int, time_limit: float) -> None:
        self.func = func
        self.size = workers
        self.time_limit = time_limit
        self._context = multiprocessing.get_context("forkserver")
        # The forkserver is one per process: the first pool to start it chooses what it preloads.
        self._context.set_forkserver_preload([func.__module__])
        # A thread per worker waits on its pipe, and as many more serve workers being replaced.
        self._threads = ThreadPoolExecutor(2 * workers + 1, thread_name_prefix="worker-pool")
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._workers: set[_Worker] = set()
        self._calls: set[asyncio.Future[Any]] = set()
        self._replacing: set[asyncio.Task[None]] = set()
        self._closed = False

    async def _start_worker(self) -> None:
        """Forking (and the first time, starting the forkserver) blocks: not on the loop."""
        loop = asyncio.get_running_loop()
        name = f"{self.func.__name__}-worker"
        worker = await loop.run_in_executor(self._threads, _Worker, self._context, self.func, name)
        self._workers.add(worker)
        self._idle.put_nowait(worker)

    async def start(self) -> None:
        for _ in range(self.size):
            await self._start_worker()

    async def run(self, arg: A) -> R:
        loop = asyncio.get_running_loop()
        try:
            worker = await asyncio.wait_for(self._idle.get(), self.time_limit)
        except TimeoutError:
            raise WorkerBusy(f"no free worker within {self.time_limit} s") from None
        call = loop.run_in_executor(self._threads, worker.call, arg)
        self._calls.add(call)
        call.add_done_callback(self._calls.discard)
        try:
            async with asyncio.timeout(self.time_limit):
                ok, value = await asyncio.shield(call)
        except TimeoutError:
            self._replace(worker, call)
            raise WorkTimedOut(f"no result within {self.time_limit} s") from None
        except BaseException:  # the worker died, or our caller was cancelled (client gone)
            self._replace(worker, call)
            raise
        self._idle.put_nowait(worker)
        if not ok:
            raise RuntimeError(f"{self.func.__name__} failed: {value}")
        return value

    def _replace(self, worker: _Worker, call: asyncio.Future[Any]) -> None:
        """A worker that did not answer may still be at work: kill it, start another."""
        worker.process.kill()  # only a signal: the thread waiting on its pipe sees EOF at once
        task = asyncio.create_task(self._replace_after(worker, call))
        self._replacing.add(task)
        task.add_done_callback(self._replaced)

    async def _replace_after(self, worker: _Worker, call: asyncio.Future[Any]) -> None:
        await asyncio.wait([call])  # no thread reads its pipe any more
        if not call.cancelled():
            call.exception()  # expected (the worker was killed): not worth a warning
        if self._closed:  # `close` retires every worker
            return
        await asyncio.get_running_loop().run_in_executor(self._threads, worker.retire)
        self._workers.discard(worker)
        if not self._closed:
            await self._start_worker()

    def _replaced(self, task: asyncio.Task[None]) -> None:
        self._replacing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("worker_pool.replace_failed", error=repr(task.exception()))

    async def close(self) -> None:
        self._closed = True
        for worker in self._workers:
            worker.process.kill()
        if pending := self._calls | self._replacing:
            await asyncio.wait(pending)
        loop = asyncio.get_running_loop()
        workers, self._workers = self._workers, set()
        await asyncio.gather(*(loop.run_in_executor(self._threads, w.retire) for w in workers))
        self._threads.shutdown(wait=False, cancel_futures=True)
