"""Ways to write a host that mean an address the guard must refuse, shared by the fetch tests.

Each LOOPBACK_* spelling, if it were accepted, could only reach 127.0.0.1 or ::1, so tests may
aim it at a loopback server they started. Spellings of other addresses (the metadata service,
private ranges, NAT64) are only ever given to the pure check functions: no socket.
"""

from __future__ import annotations

# Unicode dots (IDNA maps them to ".") and digits (NFKC maps them to ASCII digits): yarl turns
# each into the literal 127.0.0.1, which aiohttp connects to without asking a resolver.
LOOPBACK_UNICODE = [
    "127\u30020\u30020\u30021",  # IDEOGRAPHIC FULL STOP
    "127\uff0e0\uff0e0\uff0e1",  # FULLWIDTH FULL STOP
    "127\uff610\uff610\uff611",  # HALFWIDTH IDEOGRAPHIC FULL STOP
    "127\u30020.0\uff0e1",  # mixed dots
    "127\ufe520\ufe520\ufe521",  # SMALL FULL STOP
    "127\u20240\u20240\u20241",  # ONE DOT LEADER
    "127.0.0.1\u3002",  # a trailing ideographic full stop
    "\uff11\uff12\uff17.\uff10.\uff10.\uff11",  # fullwidth digits
    "127.0.0.\uff11",  # one fullwidth digit
    "\uff11\uff12\uff17\u3002\uff10\u3002\uff10\u3002\uff11",  # fullwidth digits and dots
    "\U0001d7cf\U0001d7d0\U0001d7d5.0.0.1",  # mathematical bold digits
    "\u2460\u2461\u2466.\u24ea.\u24ea.\u2460",  # circled digits
    "\u0661\u0662\u0667.\u0660.\u0660.\u0661",  # Arabic-Indic digits
    "\u0967\u0968\u096d.0.0.1",  # Devanagari digits
]

# Numeric forms inet_aton (and aiohttp 3.10 to 3.14.0) read as 127.0.0.1.
LOOPBACK_NUMERIC = [
    "127.1",
    "127.0.1",
    "2130706433",
    "017700000001",
    "0177.0.0.1",
    "0177.0.0.01",
    "127.0.0.01",
    "127.000.000.001",
    "0x7f.0.0.1",
    "0X7F.0.0.1",
    "0x7f.1",
    "0x7f000001",
    "0x7f.0x0.0x0.0x1",
    "0x7f.0.0.0x1",
    "127.0.0.0x1",
    "0177.1",
    "127.0.0.1.",
]

# IPv6 spellings of loopback (brackets as in a URL).
LOOPBACK_IPV6 = [
    "[::1]",
    "[0:0:0:0:0:0:0:1]",
    "[0000:0000:0000:0000:0000:0000:0000:0001]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[0:0:0:0:0:ffff:127.0.0.1]",
    "[::FFFF:127.0.0.1]",
]

LOOPBACK_ZONE_IDS = ["[::1%25lo]", "[::ffff:127.0.0.1%25lo]", "[fe80::1%25lo]"]

# Names that resolve to loopback: judged by the resolver and the connector, not the spelling.
LOOPBACK_NAMES = [
    "localhost",
    "LocalHost",
    "\u24db\u24de\u24d2\u24d0\u24db\u24d7\u24de\u24e2\u24e3",
]

# Other refused addresses, for the pure checks only. (host, words the refusal must hold)
METADATA_AND_PRIVATE = [
    ("169.254.169.254", "link-local"),
    ("169\u3002254\u3002169\u3002254", "non-ASCII digits or dots"),
    ("\uff11\uff16\uff19.254.169.254", "non-ASCII digits or dots"),
    ("2852039166", "not written as a plain IPv4"),
    ("0xa9fea9fe", "not written as a plain IPv4"),
    ("0251.0376.0251.0376", "not written as a plain IPv4"),
    ("169.254.43518", "not written as a plain IPv4"),
    ("169.254.169.254.", "not written as a plain IPv4"),
    ("[::ffff:169.254.169.254]", "link-local"),
    ("[::ffff:a9fe:a9fe]", "link-local"),
    ("[64:ff9b::169.254.169.254]", "link-local"),
    ("[2002:a9fe:a9fe::]", "link-local"),
    ("[fd00:ec2::254]", "private"),
    ("10.0.0.1", "private"),
    ("10.1", "not written as a plain IPv4"),
    ("012.0.0.1", "not written as a plain IPv4"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("192.168.257", "not written as a plain IPv4"),
    ("0xc0.0xa8.1.1", "not written as a plain IPv4"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("0.0.0.0", "unspecified"),
    ("0", "not written as a plain IPv4"),
    ("[::]", "unspecified"),
    ("[::127.0.0.1]", "reserved"),
    ("[fe80::1]", "link-local"),
    ("[fe80::1%25eth0]", "zone id"),
    ("[2001:4860:4860::8888%25eth0]", "zone id"),
    ("224.0.0.1", "multicast"),
    ("255.255.255.255", "reserved"),
]
