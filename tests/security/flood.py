"""`python -m tests.security.flood PORT`: the flood of the security tests, sent from a process of
its own, so that the test's loop (which times `/healthz` and the receipts) is not the one busy
writing megabytes. Prints one JSON list of [SMTP code, seconds from the start of DATA]."""

import asyncio
import json
import sys

from tests.security.messages import header_bomb, smtp_answer, tiny_lines


async def flood(port: int) -> list[tuple[int, float]]:
    answers: list[tuple[int, float]] = []

    async def sender(message: bytes, rounds: int) -> None:
        for _ in range(rounds):
            answers.append(await smtp_answer(port, message))

    # Eight connections of header bombs, and one of 1 MB of three-byte lines (the message that
    # cost the most to read when DATA was read a line at a time).
    bombs = [sender(header_bomb(), 2) for _ in range(8)]
    await asyncio.gather(*bombs, sender(tiny_lines(), 2))
    return answers


if __name__ == "__main__":
    print(json.dumps(asyncio.run(flood(int(sys.argv[1])))))
