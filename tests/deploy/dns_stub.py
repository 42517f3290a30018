"""A DNS server on the loopback for the gateway's tests: it answers A queries for the names it is
given (each with one address or several, as Docker's DNS answers a scaled service) and NXDOMAIN
for the rest, the way Docker's resolver at 127.0.0.11 does for a compose network."""

import socket
import struct
import threading


class DnsStub:
    def __init__(self, records: dict[str, list[str]]) -> None:
        self.records = {name.lower(): addresses for name, addresses in records.items()}
        self.queries: list[str] = []
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.port = self._socket.getsockname()[1]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="dns-stub", daemon=True)

    def __enter__(self) -> "DnsStub":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._socket.close()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                query, client = self._socket.recvfrom(512)
            except TimeoutError:
                continue
            answer = self.answer(query)
            if answer:
                self._socket.sendto(answer, client)

    def answer(self, query: bytes) -> bytes | None:
        if len(query) < 12:
            return None
        ident, _flags, qdcount = struct.unpack("!HHH", query[:6])
        if qdcount != 1:
            return None
        labels, offset = [], 12
        while query[offset]:
            length = query[offset]
            labels.append(query[offset + 1 : offset + 1 + length].decode("ascii").lower())
            offset += 1 + length
        qtype, _qclass = struct.unpack("!HH", query[offset + 1 : offset + 5])
        question = query[12 : offset + 5]
        name = ".".join(labels)
        self.queries.append(name)
        addresses = self.records.get(name, [])
        known = name in self.records
        answers = addresses if qtype == 1 else []  # A records only; other types: none
        flags = 0x8180 if known else 0x8183  # a response, recursion available; 3: NXDOMAIN
        header = struct.pack("!HHHHHH", ident, flags, 1, len(answers), 0, 0)
        body = b"".join(
            struct.pack("!HHHIH", 0xC00C, 1, 1, 1, 4) + socket.inet_aton(address)
            for address in answers
        )
        return header + question + body
