"""An upload over the limit, sent to a real tickets process: refused while it streams in, and
the process never holds more than a couple of chunks of it (SPEC 9.2).

What is measured: VmRSS before and after the 11 MiB upload, and its peak (VmHWM, reset just
before) against the highest peak of accepted 4 MiB uploads, which hold what any long upload
holds (the socket's and aiohttp's buffers filled by a client sending faster than PostgreSQL
takes the chunks, a chunk on its way there: 1 to 2 MiB here, whatever the file's size). A service
that read the whole file would peak 7 MiB higher. The process allocates with glibc's malloc
alone (PYTHONMALLOC: pymalloc's 1 MiB arenas stay resident for one live object), every buffer
of 16 KiB or more in memory of its own, returned when freed (a fixed mmap threshold: by default
it rises with every large buffer freed, and freed buffers then stay in the heap, fragmented):
RSS then tells the request's cost rather than the allocators' history.
"""

from pathlib import Path

from deploy.processes import Service, auth_env, clean_env, create_operator
from services.tickets.attachments import CHUNK_BYTES
from tests.support.files import MULTIPART, form, streamed_file
from tests.support.sealing import SEALING_ENV
from tests.support.waiting import wait_for

MiB = 1024 * 1024
TWO_CHUNKS = CHUNK_BYTES + CHUNK_BYTES // 2
OPERATOR = ("rss-operator@helpdesk.example", "an operator passphrase for rss")


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (the peak since the last reset), in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def reset_peak(pid: int) -> None:
    """VmHWM starts again from the current RSS (Linux: `echo 5 > /proc/<pid>/clear_refs`)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


async def test_eleven_mib_stream_is_413_and_rss_grows_less_than_two_chunks(
    databases, amqp_url, tmp_path
):
    env = auth_env(await databases.empty("auth"), amqp_url, **SEALING_ENV)
    code, _, err = await create_operator(env, *OPERATOR, role="operator", name="Rita RSS")
    assert code == 0, err
    auth = await Service("auth", env, tmp_path).start()
    tickets = None
    try:
        await auth.wait_ready()
        tickets_env = clean_env(
            HELPDESK_AMQP_URL=amqp_url,
            TICKETS_DATABASE_URL=await databases.empty("tickets"),
            TICKETS_AUTH_URL=auth.url,
            MALLOC_MMAP_THRESHOLD_=str(16 * 1024),
            PYTHONMALLOC="malloc",
        )
        tickets = await Service("tickets", tickets_env, tmp_path).start()
        status, pair = await auth.request(
            "POST", "/v1/token", json={"username": OPERATOR[0], "password": OPERATOR[1]}
        )
        assert status == 200, pair
        headers = {"Authorization": f"Bearer {pair['access_token']}", "Content-Type": MULTIPART}
        await tickets.wait_ready()
        assert tickets.proc is not None
        pid = tickets.proc.pid

        async def upload(size: int) -> tuple[int, dict, dict[str, int], dict[str, int]]:
            reset_peak(pid)
            before = memory_kib(pid)
            status, body = await tickets.request(
                "POST", "/v1/attachments", data=streamed_file(size), headers=headers
            )
            return status, body, before, memory_kib(pid)

        # Warm up the path an upload takes (the pool's connections, asyncpg's buffers, the
        # allocator's arenas), and that of a refusal (the problem answer, and the rest of the
        # body read to the void): what is measured is then what an upload costs, not the first.
        status, body = await tickets.request(
            "POST",
            "/v1/attachments",
            data=form(b"\0" * 11 * MiB, "declarado.bin"),
            headers={"Authorization": headers["Authorization"]},
        )
        assert status == 413, body  # by its Content-Length, before a byte of it is stored
        for _ in range(2):
            status, body, _, _ = await upload(TWO_CHUNKS)
            assert status == 201, body
        any_upload_kib = 0
        for _ in range(3):
            status, body, before, after = await upload(4 * MiB)
            assert status == 201, body
            any_upload_kib = max(any_upload_kib, after["VmHWM"] - before["VmRSS"])

        status, body, before, after = await upload(11 * MiB)
        assert status == 413, body
        assert body["max_bytes"] == 10 * MiB
        bound_kib = 2 * CHUNK_BYTES // 1024
        print(f"4 MiB peak +{any_upload_kib} KiB; 11 MiB: {before} -> {after}")
        assert after["VmHWM"] - before["VmRSS"] <= any_upload_kib + bound_kib, (
            any_upload_kib,
            before,
            after,
        )

        # Nothing of it is kept: once the service has read the rest of the body to the void
        # (after its answer), RSS is back within two chunks of where it was.
        def settled() -> bool:
            return memory_kib(pid)["VmRSS"] - before["VmRSS"] <= bound_kib

        await wait_for(settled, timeout=10, message=f"RSS back near {before['VmRSS']} KiB")
    finally:
        if tickets is not None:
            await tickets.stop()
        await auth.stop()
