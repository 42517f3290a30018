"""The compose gateway (deploy/nginx.conf), run: Debian's nginx with the file as it is, but for
its port, its log's path and its resolver, which is a DNS server of the test's own on the
loopback answering for auth, tickets and panel as Docker's DNS would (tickets with two
addresses: a `--scale tickets=2`). Behind it, stub services on loopback addresses record what
reaches them."""

import http.client
import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.deploy.dns_stub import DnsStub
from tests.deploy.support import DEPLOY, program

NGINX_HINT = "`make test` installs it (Debian package nginx, /usr/sbin/nginx)"
# Each stub service on an address of its own, at the port the gateway's config names.
BACKENDS = {
    "auth": [("127.0.0.2", 8081)],
    "tickets": [("127.0.0.3", 8082), ("127.0.0.4", 8082)],
    "panel": [("127.0.0.5", 8080)],
}
ORIGINALS = {
    "resolver": "resolver 127.0.0.11 valid=10s ipv6=off;",
    "listen": "listen 80;",
    "access_log": "access_log /var/log/nginx/access.log gateway;",
}


@dataclass
class Gateway:
    port: int
    access_log: Path
    seen: list[dict] = field(default_factory=list)

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


def stub_service(name: str, address: str, port: int, seen: list[dict]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            record = {"service": name, "address": address, "path": self.path}
            record["headers"] = {k.lower(): v for k, v in self.headers.items()}
            seen.append(record)
            body = json.dumps(record).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    try:
        server = ThreadingHTTPServer((address, port), Handler)
    except OSError as exc:
        pytest.fail(f"cannot listen on {address}:{port} for the stub {name}: {exc}")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gateway_config(directory: Path, port: int, dns_port: int) -> Path:
    """deploy/nginx.conf with the three lines that name this machine's places replaced, inside
    the http {} block of a main configuration of the test's own (as the nginx image's is)."""
    conf = (DEPLOY / "nginx.conf").read_text()
    replacements = {
        ORIGINALS["resolver"]: f"resolver 127.0.0.1:{dns_port} valid=1s ipv6=off;",
        ORIGINALS["listen"]: f"listen 127.0.0.1:{port};",
        ORIGINALS["access_log"]: f"access_log {directory}/access.log gateway;",
    }
    for original, replacement in replacements.items():
        assert conf.count(original) == 1, f"deploy/nginx.conf no longer has `{original}`"
        conf = conf.replace(original, replacement)
    (directory / "gateway.conf").write_text(conf)
    temp_paths = "\n".join(
        f"    {kind}_temp_path {directory}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = directory / "nginx.conf"
    main.write_text(
        f"pid {directory}/nginx.pid;\n"
        f"error_log {directory}/error.log notice;\n"
        "worker_processes 1;\n"
        "events { worker_connections 64; }\n"
        "http {\n"
        f"{temp_paths}\n"
        f"    include {directory}/gateway.conf;\n"
        "}\n"
    )
    return main


def nginx_command(main: Path) -> list[str]:
    nginx = program("nginx", NGINX_HINT)
    directory = main.parent
    return [nginx, "-p", str(directory), "-e", str(directory / "error.log"), "-c", str(main)]


def wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"nginx exited: {log.read_text() if log.exists() else ''}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail("nginx did not start listening within 10 s")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    directory = tmp_path_factory.mktemp("gateway")
    directory.chmod(0o755)  # nginx's workers run as another user when the tests run as root
    records = {name: [a for a, _ in addresses] for name, addresses in BACKENDS.items()}
    seen: list[dict] = []
    servers = [
        stub_service(name, address, port, seen)
        for name, addresses in BACKENDS.items()
        for address, port in addresses
    ]
    port = free_port()
    with DnsStub(records) as dns:
        main = gateway_config(directory, port, dns.port)
        process = subprocess.Popen([*nginx_command(main), "-g", "daemon off;"])
        try:
            wait_for_port(port, process, directory / "error.log")
            yield Gateway(port=port, access_log=directory / "access.log", seen=seen)
        finally:
            process.send_signal(signal.SIGQUIT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
            for server in servers:
                server.shutdown()
                server.server_close()


def test_nginx_accepts_the_gateway_config(tmp_path: Path) -> None:
    main = gateway_config(tmp_path, free_port(), 53)
    result = subprocess.run(
        [*nginx_command(main), "-t"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


@pytest.mark.parametrize(
    ("path", "service", "seen_path"),
    [
        ("/api/auth/v1/token?grant=password", "auth", "/v1/token?grant=password"),
        ("/api/auth/.well-known/jwks.json", "auth", "/.well-known/jwks.json"),
        ("/api/tickets/v1/tickets?status=open", "tickets", "/v1/tickets?status=open"),
        ("/api/tickets/v1/tickets/a%20b", "tickets", "/v1/tickets/a%20b"),
        ("/", "panel", "/"),
        ("/tickets/new?category=2", "panel", "/tickets/new?category=2"),
        # The file forms' own location (a larger body, unbuffered) still goes to the panel.
        ("/tickets/12/reply", "panel", "/tickets/12/reply"),
        ("/tickets/12/attachments/0b9f", "panel", "/tickets/12/attachments/0b9f"),
    ],
)
def test_the_gateway_serves_the_panel_and_both_apis(
    gateway: Gateway, path: str, service: str, seen_path: str
) -> None:
    status, body = gateway.get(path, headers={"X-Forwarded-For": "198.51.100.7"})
    assert status == 200, body
    record = json.loads(body)
    assert (record["service"], record["path"]) == (service, seen_path)
    headers = record["headers"]
    assert len(headers["x-request-id"]) == 32
    assert headers["x-forwarded-for"] == "198.51.100.7, 127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"


@pytest.mark.parametrize(
    "path",
    [
        "/metrics",
        "/readyz",
        "/openapi.json",
        "/api/auth/metrics",
        "/api/auth/readyz",
        "/api/auth/healthz",
        "/api/auth/openapi.json",
        "/api/tickets/metrics",
        "/api/tickets/openapi.json",
        "/api/auth//metrics",
        "/api/tickets/%6detrics",
        "/%72eadyz",
    ],
)
def test_operational_routes_are_not_public(gateway: Gateway, path: str) -> None:
    before = len(gateway.seen)
    status, _ = gateway.get(path)
    assert status == 404
    assert len(gateway.seen) == before, gateway.seen[before:]


def test_the_gateway_answers_its_own_health_check(gateway: Gateway) -> None:
    before = len(gateway.seen)
    assert gateway.get("/healthz") == (200, b"ok\n")
    assert len(gateway.seen) == before


def test_a_scaled_service_gets_requests_on_every_instance(gateway: Gateway) -> None:
    # nginx's resolver hands out a name's addresses from a random one on: eight requests all
    # went to the same one of two now and then (one run in 128); 64 will not.
    instances = {address for address, _ in BACKENDS["tickets"]}
    addresses = set()
    for _ in range(64):
        status, body = gateway.get("/api/tickets/v1/categories")
        assert status == 200
        addresses.add(json.loads(body)["address"])
        if addresses == instances:
            break
    assert addresses == instances


def test_one_time_tokens_are_not_logged(gateway: Gateway) -> None:
    secret = "Sup3rS3cretT0ken"
    gateway.get(f"/password/reset?token={secret}")
    gateway.get(f"/email/confirm?lang=es&token={secret}")
    gateway.get("/static/panel.css", headers={"Referer": f"http://x/password/reset?token={secret}"})
    last = f"/tickets?status=open&page={time.monotonic_ns()}"
    gateway.get(last)
    # nginx writes a request's line after answering it: wait for the last one.
    deadline = time.monotonic() + 5
    while last not in gateway.access_log.read_text():
        assert time.monotonic() < deadline, "the access log did not get the requests"
        time.sleep(0.05)
    log = gateway.access_log.read_text()
    assert secret not in log
    assert "GET /password/reset?[redacted] HTTP/1.1" in log
    assert "GET /email/confirm?[redacted] HTTP/1.1" in log
    assert '"http://x/password/reset?[redacted]"' in log
    assert f"GET {last} HTTP/1.1" in log
