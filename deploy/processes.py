"""The suite's programs as real processes (`python -m <module>`): what the end-to-end tests, the
fault suite and the benchmarks start, each on its own free port."""

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
# Cheap hashing keeps tests and benchmarks fast; production uses the defaults of AuthSettings.
CHEAP_ARGON2 = {
    "AUTH_ARGON2_TIME_COST": "1",
    "AUTH_ARGON2_MEMORY_COST": "1024",
    "AUTH_ARGON2_PARALLELISM": "1",
}
_OUR_PREFIXES = ("AUTH_", "TICKETS_", "NOTIFIER_", "PANEL_", "HELPDESK_")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any setting of ours, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OUR_PREFIXES)}
    return env | {"HELPDESK_LOG_FORMAT": "json"} | extra


def auth_env(database_url: str, amqp_url: str, **extra: str) -> dict[str, str]:
    """`clean_env` for auth on `database_url`, with cheap hashing."""
    return clean_env(
        **CHEAP_ARGON2, AUTH_DATABASE_URL=database_url, HELPDESK_AMQP_URL=amqp_url, **extra
    )


def notifier_env(database_url: str, amqp_url: str, smtp_port: int, **extra: str) -> dict[str, str]:
    """`clean_env` for a notifier alone on `database_url`: an inbound port of its own, emails to
    the relay at `smtp_port` on this host, and no auth to ask."""
    return clean_env(
        NOTIFIER_DATABASE_URL=database_url,
        HELPDESK_AMQP_URL=amqp_url,
        NOTIFIER_INBOUND_PORT=str(free_port()),
        NOTIFIER_SMTP_PORT=str(smtp_port),
        NOTIFIER_AUTH_URL="http://127.0.0.1:9",
        **extra,
    )


async def run_module(
    module: str, *args: str, env: dict[str, str], stdin: str = "", timeout: float = 60
) -> tuple[int, str, str]:
    """`python -m <module> <args>` to completion: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def create_operator(
    env: dict[str, str], email: str, password: str, role: str = "admin", name: str = "Ada"
) -> tuple[int, str, str]:
    """`python -m services.auth create-operator`, the password on stdin: (code, stdout, stderr)."""
    return await run_module(
        "services.auth",
        "create-operator",
        "--email",
        email,
        "--name",
        name,
        "--role",
        role,
        "--password-stdin",
        env=env,
        stdin=password + "\n",
    )


class Program:
    """A long-running `python -m <module> <args>`, its output in a log file."""

    def __init__(
        self, name: str, module: str, env: dict[str, str], log_dir: Path, *args: str
    ) -> None:
        self.name = name
        self.module = module
        self.args = args
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> "Program":
        self._log = self.log_path.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.module,
            *self.args,
            cwd=ROOT,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check_running(self) -> None:
        assert self.proc is not None
        if self.proc.returncode is not None:
            raise AssertionError(f"{self.name} exited {self.proc.returncode}:\n{self.log()}")

    async def stop(self, sig: int = signal.SIGTERM) -> int | None:
        """Signal and wait; kill only if it does not stop in time."""
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self._log.close()
        return self.proc.returncode


class Service(Program):
    """`python -m services.<service>` (or `module`) on a free port, with an HTTP helper."""

    def __init__(
        self, service: str, env: dict[str, str], log_dir: Path, name: str = "", module: str = ""
    ) -> None:
        self.port = free_port()
        prefix = service.upper()
        env = env | {f"{prefix}_PORT": str(self.port), f"{prefix}_HOST": "127.0.0.1"}
        super().__init__(name or service, module or f"services.{service}", env, log_dir)
        self.url = f"http://127.0.0.1:{self.port}"

    async def request(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.request(method, self.url + path, **kw) as response,
        ):
            text = await response.text()
            try:
                return response.status, await response.json(content_type=None)
            except ValueError:
                return response.status, text

    async def wait_ready(self, timeout: float = 30, *, all_up: bool = True) -> None:
        """Until /readyz answers 200 and, with `all_up`, reports every dependency up: /readyz
        gates on the database alone, and events published before the service has declared its
        queues would go unrouted."""

        def ready(status: int, body: Any) -> bool:
            if status != 200 or not isinstance(body, dict):
                return False
            return not all_up or all(v == "up" for k, v in body.items() if k != "status")

        await self._wait(
            "/readyz",
            ready,
            timeout,
            f"{self.name} ready" + (" with everything up" if all_up else ""),
        )

    async def wait_ok(self, path: str, timeout: float = 30, message: str = "") -> None:
        """Until GET `path` answers 200; fails at once if the process exits."""
        await self._wait(path, lambda status, _: status == 200, timeout, message)

    async def _wait(
        self, path: str, done: Callable[[int, Any], bool], timeout: float, message: str
    ) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.check_running()
            try:
                status, body = await self.request("GET", path)
            except (aiohttp.ClientError, OSError, TimeoutError):
                status, body = 0, None
            if done(status, body):
                return
            if time.monotonic() > deadline:
                what = message or f"{self.name} {path}"
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            await asyncio.sleep(0.1)
