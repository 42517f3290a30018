"""RabbitMQ vhosts made for one run (a test session, a benchmark) and deleted after it, so that
its events never reach the services of `make run` on the default vhost."""

import subprocess


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def create_vhost(name: str, host: str = "127.0.0.1") -> str:
    """The vhost `name`, open to the guest user; its AMQP URL."""
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    return f"amqp://guest:guest@{host}:5672/{name}"


def delete_vhost(name: str) -> None:
    rabbitmqctl("delete_vhost", name)
