"""The URL check, pure: every spelling of a refused address is refused before any socket.

These run `check_url_syntax` only (no DNS, no connection), so they may name any address,
the metadata service and private ranges included.
"""

from __future__ import annotations

import pytest
from spellings import (
    LOOPBACK_IPV6,
    LOOPBACK_NUMERIC,
    LOOPBACK_UNICODE,
    LOOPBACK_ZONE_IDS,
    METADATA_AND_PRIVATE,
)
from yarl import URL

from worker.fetch import UnsafeURLError, check_url_syntax
from worker.fetch.hostname import literal_address

NOT_CANONICAL = "not written as a plain IPv4 address"
NOT_ASCII = "non-ASCII digits or dots"


def refusal(host: str, *, allow_private: bool = False) -> str:
    with pytest.raises(UnsafeURLError) as caught:
        check_url_syntax(f"http://{host}:8080/a.mp4?token=SECRET", allow_private=allow_private)
    message = str(caught.value)
    assert "SECRET" not in message
    return message


@pytest.mark.parametrize("host", LOOPBACK_UNICODE)
@pytest.mark.parametrize("allow_private", [False, True])
def test_unicode_digits_and_dots_are_refused_outright(host, allow_private):
    """Refused even with ALLOW_PRIVATE_URLS: the spelling is the problem, not the address."""
    message = refusal(host, allow_private=allow_private)
    assert message.startswith("the URL's host ") and NOT_ASCII in message
    assert "write the address with ASCII digits and dots" in message


def test_the_refusal_names_the_odd_characters():
    assert "(U+3002)" in refusal("127\u30020\u30020\u30021")
    assert "(U+FF10, U+FF11, U+FF12, U+FF17)" in refusal("\uff11\uff12\uff17.\uff10.\uff10.\uff11")


@pytest.mark.parametrize(
    "host",
    [
        "8\u30028\u30028\u30028",
        "\uff18.\uff18.\uff18.\uff18",
        "example\uff0ecom",
        "cdn\u3002example.com",
        "127\u24880\u24880\u24881",  # DIGIT ONE FULL STOP: yarl makes 1271.01.01.1
    ],
)
def test_unicode_spellings_of_public_hosts_are_refused_too(host):
    """One rule for every address: no guessing which spellings are harmless."""
    assert NOT_ASCII in refusal(host)


@pytest.mark.parametrize("host", LOOPBACK_NUMERIC)
@pytest.mark.parametrize("allow_private", [False, True])
def test_numeric_forms_other_than_the_dotted_quad_are_refused(host, allow_private):
    message = refusal(host, allow_private=allow_private)
    assert NOT_CANONICAL in message and "like 203.0.113.7" in message


@pytest.mark.parametrize(
    "host",
    ["8.8.8.8.", "134744072", "0x08080808", "010.8.8.8", "8.8.2056", "1.2.3.4.5", "256.1.1.1"],
)
def test_numeric_forms_of_public_addresses_are_refused_too(host):
    assert NOT_CANONICAL in refusal(host)


@pytest.mark.parametrize("host", LOOPBACK_IPV6)
def test_ipv6_spellings_of_loopback_are_refused(host):
    message = refusal(host)
    assert "is a loopback address" in message
    assert "ALLOW_PRIVATE_URLS=true" in message  # the hint for a developer testing locally


@pytest.mark.parametrize("host", LOOPBACK_ZONE_IDS)
@pytest.mark.parametrize("allow_private", [False, True])
def test_ipv6_zone_ids_are_refused(host, allow_private):
    assert "zone id" in refusal(host, allow_private=allow_private)


@pytest.mark.parametrize(("host", "words"), METADATA_AND_PRIVATE)
def test_metadata_and_private_addresses_are_refused_in_every_spelling(host, words):
    message = refusal(host)
    assert words in message, message


@pytest.mark.parametrize(
    "host", ["a..b.example", ".example.com", "example.com..", "ex%2eample.com"]
)
def test_malformed_names_are_refused(host):
    assert "is not a valid host name" in refusal(host, allow_private=True)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://cdn.example.com/a.mp4", "cdn.example.com"),
        ("https://CDN.Example.com./a.mp4", "cdn.example.com."),
        ("https://b\u00fccher.example/a.mp4", "xn--bcher-kva.example"),
        ("https://my_bucket.s3.example.com/a.mp4", "my_bucket.s3.example.com"),
        ("https://8.8.8.8/a.mp4", "8.8.8.8"),
        ("https://[2606:4700:4700::1111]/a.mp4", "2606:4700:4700::1111"),
        ("http://1.2.3.4.example.com/a.mp4", "1.2.3.4.example.com"),
        ("http://0x7f.example.com/a.mp4", "0x7f.example.com"),
    ],
)
def test_ordinary_hosts_pass_and_come_back_as_the_client_will_use_them(url, host):
    parsed = check_url_syntax(url, allow_private=False)
    assert isinstance(parsed, URL)
    assert parsed.raw_host == host
    assert parsed == URL(url)  # exactly what aiohttp would have made of the text


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "10.0.0.1"])
def test_allow_private_lets_canonical_private_literals_through(host):
    check_url_syntax(f"http://{host}:8080/a.mp4", allow_private=True)


def test_a_host_name_is_not_a_literal():
    assert literal_address("cdn.example.com") is None
    assert str(literal_address("203.0.113.7")) == "203.0.113.7"
