"""The lines in which each scenario says what it injected and what it checked; conftest prints
them in pytest's terminal summary, so CI shows them without `-s`."""

REPORT: list[str] = []


def report(line: str) -> None:
    print(line)
    REPORT.append(line)
