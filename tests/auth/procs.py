"""auth as a real process (`python -m services.auth`), for the tests that need one."""

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


def auth_env(database_url: str, amqp_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "HELPDESK_"))}
    env |= CHEAP_ARGON2 | {"AUTH_DATABASE_URL": database_url, "HELPDESK_LOG_FORMAT": "json"}
    if amqp_url is not None:
        env["HELPDESK_AMQP_URL"] = amqp_url
    return env | extra


async def run_command(
    *args: str, env: dict[str, str], stdin: str = "", timeout: float = 60
) -> tuple[int, str, str]:
    """`python -m services.auth <args>`: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.auth",
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
    return await run_command(
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


class AuthProcess:
    """One `python -m services.auth` serving on a free port; stderr is written to a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.env = env | {"AUTH_PORT": str(self.port), "AUTH_HOST": "127.0.0.1"}
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> "AuthProcess":
        self._log = self.log_path.open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.auth",
            cwd=ROOT,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def get(self, path: str, **kw: Any) -> tuple[int, str]:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
            session.get(self.url + path, **kw) as response,
        ):
            return response.status, await response.text()

    async def request(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
            session.request(method, self.url + path, **kw) as response,
        ):
            return response.status, await response.json(content_type=None)

    async def wait_healthy(self, path: str = "/healthz", timeout: float = 30) -> None:
        async def answers() -> bool:
            assert self.proc is not None
            if self.proc.returncode is not None:
                raise AssertionError(f"auth exited {self.proc.returncode}:\n{self.log()}")
            try:
                status, _ = await self.get(path)
            except (aiohttp.ClientError, OSError, TimeoutError):
                return False
            return status == 200

        await wait_for(answers, timeout=timeout, interval=0.1, message=f"{self.url}{path}")

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
