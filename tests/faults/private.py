"""A RabbitMQ node of the fault suite's own, which it may stop, crash and restart without touching
the shared one other developers' tests are using (its PostgreSQL: tests/support/postgres.py).

It runs as the usual OS user (`rabbitmq`; we are root) from a temporary directory owned by that
user, on free ports. The node has its own name, Erlang cookie, Mnesia directory, log directory,
an empty plugin list and a configuration file that does not read /etc/rabbitmq (whose listener is
the shared node's port).
"""

import os
import secrets
import shutil
import subprocess
import uuid
from pathlib import Path

from deploy.processes import free_port
from tests.support.postgres import own_dir, run
from tests.support.waiting import wait_for

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")


class PrivateRabbit:
    """`rabbitmq-server -detached` as node `faults-<id>@localhost`; `stop_app`/`start_app` take
    the AMQP listener (and every connection) away and bring it back, durable queues kept."""

    def __init__(self) -> None:
        self.id = uuid.uuid4().hex[:8]
        self.node = f"faults-{self.id}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.dir = own_dir("helpdesk-faults-rabbit-", "rabbitmq")
        cookie = self.dir / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(20).upper())
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq.conf").write_text("loopback_users.guest = true\n")
        for path in (cookie, self.dir / "enabled_plugins", self.dir / "rabbitmq.conf"):
            shutil.chown(path, "rabbitmq", "rabbitmq")
        cookie.chmod(0o400)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": str(self.dir),  # where the Erlang cookie of this node (and its CLI) is
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_PID_FILE": str(self.dir / "pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.dir / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"

    async def _as_rabbitmq(self, program: str, *args: str, timeout: float = 90) -> str:
        env_args = [f"{k}={v}" for k, v in self.env.items()]
        return await run(
            "runuser", "-u", "rabbitmq", "--", "env", "-i", *env_args,
            str(RABBIT_BIN / program), *args, timeout=timeout,
        )  # fmt: skip

    async def ctl(self, *args: str) -> str:
        return await self._as_rabbitmq("rabbitmqctl", "-q", "-n", self.node, *args)

    async def start(self) -> "PrivateRabbit":
        await self._as_rabbitmq("rabbitmq-server", "-detached")
        await self.ctl("wait", "--timeout", "90", str(self.dir / "pid"))
        return self

    async def stop_app(self) -> None:
        await self.ctl("stop_app")

    async def start_app(self) -> None:
        await self.ctl("start_app")
        await self.ctl("await_startup", "--timeout", "60")

    async def kill(self) -> None:
        """SIGKILL the node's Erlang VM: a crash, no connection is closed cleanly."""
        pid = int((self.dir / "pid").read_text().strip())
        os.kill(pid, 9)
        await wait_for(
            lambda: "zombie" in _state(pid), timeout=30, message="the RabbitMQ node gone"
        )

    async def restart(self) -> None:
        await self.start()

    async def destroy(self) -> None:
        try:
            await self.ctl("stop")
        except (RuntimeError, TimeoutError):
            pid = (self.dir / "pid").read_text().strip() if (self.dir / "pid").exists() else ""
            if pid.isdigit():
                subprocess.run(["kill", "-9", pid], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "zombie"
