"""Work for worker-pool tests, in a module that imports next to nothing: a worker process
imports it when it starts."""

import os
import time


def spin(seconds: float) -> int:
    """CPU work holding the GIL, as the email parser does; answers the worker's pid."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return os.getpid()


def die(_: object) -> None:
    os._exit(3)
