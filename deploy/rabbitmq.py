"""RabbitMQ vhosts made for one run (a test session, a benchmark) and deleted after it, so that
its events never reach the services of `make run` on the default vhost."""

import json
import subprocess


def rabbitmqctl(*args: str, stdin: str = "") -> None:
    subprocess.run(
        ["rabbitmqctl", "-q", *args],
        input=stdin.encode(),
        check=True,
        capture_output=True,
        timeout=60,
    )


def create_vhost(name: str, host: str = "127.0.0.1") -> str:
    """The vhost `name`, open to the guest user; its AMQP URL."""
    # One call for the vhost and guest's permissions on it: each call starts an Erlang VM, slow
    # and costly in CPU.
    definitions = {
        "vhosts": [{"name": name}],
        "permissions": [
            {"user": "guest", "vhost": name, "configure": ".*", "write": ".*", "read": ".*"}
        ],
    }
    rabbitmqctl("import_definitions", "--format", "json", stdin=json.dumps(definitions))
    return f"amqp://guest:guest@{host}:5672/{name}"


def delete_vhost(name: str) -> None:
    rabbitmqctl("delete_vhost", name)
