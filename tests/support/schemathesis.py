"""Schemathesis (`st run`) against a running service's own OpenAPI document."""

import asyncio
import os
import sys
from pathlib import Path

ST = Path(sys.executable).with_name("st")
# No 5xx, and every answer (status, content type, body) is one the document allows.
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)


async def run_schemathesis(
    base_url: str,
    token: str,
    workdir: Path,
    *,
    max_examples: int,
    timeout: float,
) -> tuple[int, str]:
    """`st run <base_url>/openapi.json` as `token`, in `workdir`: (exit code, output).

    Bounded by examples, not by time: every operation goes through the coverage, fuzzing
    (`max_examples` cases) and stateful phases once, from the same seed however loaded the
    machine is. With `--max-time`, schemathesis repeats fuzzing and stateful cycles until the budget
    is spent, so a run lasts its budget whatever it finds, and how much it tries depends on the
    machine's load. A run that outlasts `timeout` seconds is killed and counts as a failure
    (-1)."""
    workdir.mkdir(parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        str(ST),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        str(max_examples),
        # One worker: with several threads, hypothesis' code generation hits CPython 3.11's
        # "SystemError: AST constructor recursion depth mismatch" (gh-106905) now and then.
        "--workers",
        "1",
        "--seed",
        "20261125",
        "--request-timeout",
        "10",
        "-H",
        f"Authorization: Bearer {token}",
        "--report-dir",
        str(workdir / "report"),
        cwd=workdir,
        env=os.environ | {"NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        return -1, "schemathesis timed out\n" + out.decode(errors="replace")
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def assert_conforms(
    base_url: str, tokens: dict[str, str], workdir: Path, *, max_examples: int, timeout: float
) -> None:
    """`run_schemathesis` as each of `tokens` ({who: access token}) at once, since each run waits
    on the service as much as it computes; every run's output is printed, and a run that found
    anything fails the test."""
    runs = await asyncio.gather(
        *(
            run_schemathesis(
                base_url, token, workdir / f"as-{who}", max_examples=max_examples, timeout=timeout
            )
            for who, token in tokens.items()
        )
    )
    for who, (code, output) in zip(tokens, runs, strict=True):
        print(f"--- schemathesis as {who} ---\n{output}")
        assert code == 0, f"schemathesis as {who}:\n{output}"
