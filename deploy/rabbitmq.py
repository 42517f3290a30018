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
    create_vhosts([name])
    return vhost_url(name, host)


def create_vhosts(names: list[str]) -> None:
    """The vhosts `names`, open to the guest user."""
    # One call for the vhosts and guest's permissions on them: each call starts an Erlang VM, slow
    # and costly in CPU, and one makes ten vhosts in hardly more time than one.
    definitions = {
        "vhosts": [{"name": name} for name in names],
        "permissions": [
            {"user": "guest", "vhost": name, "configure": ".*", "write": ".*", "read": ".*"}
            for name in names
        ],
    }
    rabbitmqctl("import_definitions", "--format", "json", stdin=json.dumps(definitions))


def vhost_url(name: str, host: str = "127.0.0.1") -> str:
    return f"amqp://guest:guest@{host}:5672/{name}"


def delete_vhost(name: str) -> None:
    rabbitmqctl("delete_vhost", name)


def delete_vhosts(names: list[str]) -> None:
    """The vhosts `names` that exist deleted: in one call, through the function `delete_vhost`
    calls (each call starts an Erlang VM); one call each where that internal function is not
    there."""
    listed = ", ".join(f'<<"{name}">>' for name in names)
    try:
        rabbitmqctl(
            "eval",
            f'[ok = rabbit_vhost:delete(V, <<"helpdesk">>) || V <- [{listed}],'
            " rabbit_vhost:exists(V)].",
        )
    except subprocess.CalledProcessError:
        for name in names:
            rabbitmqctl("delete_vhost", name)
