"""The deployment files, checked where no Docker engine or cluster runs: the compose file against
the Compose specification (Debian's docker-compose validates it offline), the gateway's routes,
the Kubernetes manifests and the Procfile of `make run`."""

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("auth", "tickets", "notifier", "panel")


def compose_config() -> dict:
    docker_compose = shutil.which("docker-compose")
    assert docker_compose, "docker-compose is missing: `make test` installs it (apt-get)"
    result = subprocess.run(
        [docker_compose, "-f", "docker-compose.yml", "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_file_is_valid_and_runs_the_whole_suite() -> None:
    services = compose_config()["services"]
    assert {"postgres", "rabbitmq", "mailpit", "gateway", *SERVICES} <= set(services)
    assert "management" in services["rabbitmq"]["image"]
    for name in SERVICES:
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert service["command"] == ["python", "-m", f"services.{name}"]
        assert "/readyz" in " ".join(service["healthcheck"]["test"])
        assert service["environment"]["HELPDESK_AMQP_URL"].startswith("amqp://")
    assert services["notifier"]["environment"]["NOTIFIER_SMTP_HOST"] == "mailpit"


def test_make_run_starts_the_four_services_and_the_mail_sink() -> None:
    procfile = (ROOT / "deploy" / "Procfile").read_text().splitlines()
    commands = dict(line.split(": ", 1) for line in procfile if line.strip())
    for name in SERVICES:
        assert commands[name] == f".venv/bin/python -m services.{name}"
    assert "deploy.mailsink" in commands["mailsink"]
