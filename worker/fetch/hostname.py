"""A URL's host exactly as aiohttp will connect to it, and the spellings we refuse to guess at.

URL parsers disagree. Python's `urlsplit` keeps `127。0。0。1` (U+3002 dots) or `１２７.０.０.１`
(fullwidth digits) as a host *name*, while yarl, which aiohttp uses, maps them through IDNA to
the literal `127.0.0.1`, and aiohttp then connects to it without asking any resolver. Older
aiohttp also handed `127.1`, `2130706433` or `0177.0.0.1` to the socket layer, which reads them
as loopback. So the host is taken from yarl, the parser the client itself uses, and the
ambiguous spellings are refused outright rather than interpreted:

- a host typed with non-ASCII digits or dots (nobody needs them for a real address);
- a numeric IPv4 host that is not the plain dotted quad (`127.1`, `2130706433`, `0x7f.0.0.1`,
  `0177.0.0.1`, `127.0.0.1.`): following the WHATWG URL rule, a host whose last label is a
  number is an IPv4 address, and we accept only its canonical form;
- an IPv6 zone id (`fe80::1%25eth0`), empty labels, and characters no host name has.

Everything here is pure (no DNS, no sockets), so it costs microseconds per URL.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import urlsplit

from yarl import URL

from worker.errors import PermanentError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# UTS 46 (the IDNA mapping yarl applies) turns these into "." although NFKC does not.
_IDNA_DOTS = frozenset("\u3002\uff0e\uff61")
# [0-9], never \d: in a str pattern \d also matches Arabic-Indic or fullwidth digits.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_NUMBER_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*", re.IGNORECASE)
_NAME = re.compile(r"[a-z0-9_.-]+", re.IGNORECASE)
_SHOWN_MAX = 80


class HostSpellingError(PermanentError, ValueError):
    """The host is written in a form we refuse to interpret; the message says which.

    Permanent, like the guard's refusals it becomes; a ValueError for the payload's validators.
    """


def shown(host: str) -> str:
    """The host as it may appear in an error: cut to a readable length."""
    return host if len(host) <= _SHOWN_MAX else host[:_SHOWN_MAX] + "…"


def client_url(url: str) -> URL:
    """Parse `url` as aiohttp will (yarl), refusing hosts typed with non-ASCII digits or dots.

    The typed host is checked before yarl normalises it away; a host yarl maps onto a number
    from non-ASCII text is refused too, whatever characters did it.
    """
    typed = _typed_host(url)
    _refuse_unicode_digits_or_dots(typed)
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        raise HostSpellingError("the URL is not valid") from None
    host = parsed.raw_host or ""
    if not typed.isascii() and (_ends_in_number(host) or ":" in host):
        raise HostSpellingError(_unicode_message(typed, ""))
    return parsed


def literal_address(host: str) -> IPAddress | None:
    """The IP address `host` (yarl's `raw_host`) denotes, or None for a host name.

    Raises HostSpellingError for the spellings listed in the module docstring.
    """
    if ":" in host:
        return _ipv6(host)
    if _ends_in_number(host):
        if not _CANONICAL_IPV4.fullmatch(host):
            raise HostSpellingError(
                f"the URL's host {shown(host)} is a number that is not written as a plain "
                "IPv4 address (four decimal numbers from 0 to 255, like 203.0.113.7)"
            )
        return ipaddress.IPv4Address(host)
    _check_name(host)
    return None


def _typed_host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        raise HostSpellingError("the URL is not valid") from None


def _refuse_unicode_digits_or_dots(typed: str) -> None:
    if typed.isascii():
        return
    odd = sorted({c for c in typed if not c.isascii() and _is_digit_or_dot(c)})
    if odd:
        codes = ", ".join(f"U+{ord(c):04X}" for c in odd)
        raise HostSpellingError(_unicode_message(typed, f" ({codes})"))


def _unicode_message(typed: str, codes: str) -> str:
    return (
        f"the URL's host {shown(typed)} is written with non-ASCII digits or dots{codes}; "
        "write the address with ASCII digits and dots"
    )


def _is_digit_or_dot(char: str) -> bool:
    """True for any character an IDNA mapping could turn into a digit or a dot."""
    if char in _IDNA_DOTS or unicodedata.digit(char, None) is not None:
        return True
    return any(c in "0123456789." for c in unicodedata.normalize("NFKC", char))


def _ends_in_number(host: str) -> bool:
    """WHATWG's rule: a host whose last label (one trailing dot ignored) is a number is IPv4."""
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()
    return bool(_NUMBER_LABEL.fullmatch(labels[-1]))


def _ipv6(host: str) -> ipaddress.IPv6Address:
    if "%" in host:
        raise HostSpellingError(
            f"the URL's host {shown(host)} has an IPv6 zone id (%…), which is not allowed"
        )
    try:
        return ipaddress.IPv6Address(host)
    except ValueError:
        raise HostSpellingError(f"the URL's host {shown(host)} is not a valid address") from None


def _check_name(host: str) -> None:
    name = host[:-1] if host.endswith(".") else host
    if not _NAME.fullmatch(name) or "" in name.split("."):
        raise HostSpellingError(
            f"the URL's host {shown(host)} is not a valid host name "
            "(letters, digits, hyphens and single dots only)"
        )
