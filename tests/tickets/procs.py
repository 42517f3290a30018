"""auth and tickets as real processes (`python -m services.<name>`), for the schemathesis run."""

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
CHEAP_ARGON2 = {
    "AUTH_ARGON2_TIME_COST": "1",
    "AUTH_ARGON2_MEMORY_COST": "1024",
    "AUTH_ARGON2_PARALLELISM": "1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(amqp_url: str, **extra: str) -> dict[str, str]:
    """The environment minus any configuration of ours, plus `extra`."""
    prefixes = ("AUTH_", "TICKETS_", "HELPDESK_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return env | {"HELPDESK_AMQP_URL": amqp_url, "HELPDESK_LOG_FORMAT": "json"} | extra


async def auth_command(*args: str, env: dict[str, str], stdin: str = "") -> tuple[int, str]:
    """`python -m services.auth <args>`: (exit code, stdout and stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.auth",
        *args,
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(stdin.encode()), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


class ServiceProcess:
    """`python -m services.<service>` on a free port, its output in a log file."""

    def __init__(self, service: str, env: dict[str, str], log_path: Path) -> None:
        self.service = service
        self.port = free_port()
        prefix = service.upper()
        self.env = env | {f"{prefix}_PORT": str(self.port), f"{prefix}_HOST": "127.0.0.1"}
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> "ServiceProcess":
        self._log = self.log_path.open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            f"services.{self.service}",
            cwd=ROOT,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def request(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
            session.request(method, self.url + path, **kw) as response,
        ):
            return response.status, await response.json(content_type=None)

    async def wait_ready(self, timeout: float = 30) -> None:
        async def ready() -> bool:
            assert self.proc is not None
            if self.proc.returncode is not None:
                raise AssertionError(f"{self.service} exited {self.proc.returncode}:\n{self.log()}")
            try:
                status, _ = await self.request("GET", "/readyz")
            except (aiohttp.ClientError, OSError, TimeoutError):
                return False
            return status == 200

        await wait_for(ready, timeout=timeout, interval=0.1, message=f"{self.url}/readyz")

    async def stop(self) -> int | None:
        """SIGTERM and wait; kill only if it does not stop in time."""
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self._log.close()
        return self.proc.returncode
