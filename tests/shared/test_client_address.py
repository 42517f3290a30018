"""shared.http.client_address and the HELPDESK_TRUSTED_PROXIES setting (SPEC 9.1)."""

from unittest.mock import Mock

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from shared.http import address_key, client_address
from shared.settings import ServiceSettings

PROXIES = ServiceSettings(trusted_proxies="10.0.0.0/8, 192.168.1.1").trusted_proxies


def request_from(peer: str, *forwarded: str):
    headers = CIMultiDict(("X-Forwarded-For", value) for value in forwarded)
    transport = Mock()
    transport.get_extra_info.return_value = (peer, 40000)
    return make_mocked_request("POST", "/v1/token", headers=headers, transport=transport)


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # Not from a trusted proxy: the header is the client's own word, ignored.
        ("203.0.113.5", ("198.51.100.7",), "203.0.113.5"),
        # From a trusted proxy: the entry it added (the last) is the client.
        ("10.1.2.3", ("198.51.100.7",), "198.51.100.7"),
        # What the client wrote in front of it proves nothing.
        ("10.1.2.3", ("1.1.1.1, 198.51.100.7",), "198.51.100.7"),
        # Trusted proxies in a chain are skipped, header lines joined in order.
        ("10.1.2.3", ("1.1.1.1, 198.51.100.7", "192.168.1.1"), "198.51.100.7"),
        # A malformed entry stops the walk at the proxy that passed it on.
        ("10.1.2.3", ("198.51.100.7, not-an-address",), "10.1.2.3"),
        # A trusted proxy without the header is the client itself.
        ("10.1.2.3", (), "10.1.2.3"),
        ("::ffff:203.0.113.5", (), "203.0.113.5"),
    ],
)
def test_client_address_believes_only_trusted_proxies(peer, forwarded, expected):
    assert client_address(request_from(peer, *forwarded), PROXIES) == expected


def test_without_trusted_proxies_the_header_is_ignored():
    default = ServiceSettings().trusted_proxies
    assert default == ()
    assert client_address(request_from("127.0.0.1", "198.51.100.7"), default) == "127.0.0.1"


def test_trusted_proxies_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("HELPDESK_TRUSTED_PROXIES", "127.0.0.1/32,fd00::/8")
    assert [str(n) for n in ServiceSettings().trusted_proxies] == ["127.0.0.1/32", "fd00::/8"]


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::1", "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("unknown", "unknown"),
    ],
)
def test_limits_count_an_ipv6_client_by_its_slash_64(address: str, key: str) -> None:
    assert address_key(address) == key
