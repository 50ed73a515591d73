"""The webhook key and signature, per Standard Webhooks: `v1,` + base64 HMAC-SHA256 over
`{webhook-id}.{webhook-timestamp}.{body}`, with a `whsec_` + base64 key read as Svix reads it."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from worker.errors import ConfigError

SECRET_PREFIX = "whsec_"  # noqa: S105 - the key format's prefix, not a key


class WebhookSecretError(ConfigError, ValueError):
    """WEBHOOK_SECRET cannot be used as a key; the message never contains the secret.

    A configuration error, not a job's: the sender turns it into a failed delivery (the row's
    `webhook_error`), never the job's `error`. Still a ValueError for callers that check values.
    """


def secret_bytes(secret: str) -> bytes:
    """The HMAC key: `whsec_` + base64 is decoded (as Svix keys are), raw text is UTF-8."""
    if not secret:
        raise WebhookSecretError("WEBHOOK_SECRET is empty")
    if not secret.startswith(SECRET_PREFIX):
        return secret.encode("utf-8")
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        # Padding is often dropped when keys are copied around; the libraries accept that.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookSecretError(
            "WEBHOOK_SECRET starts with whsec_ but the rest is not valid base64"
        ) from None
    if not key:
        raise WebhookSecretError("WEBHOOK_SECRET has nothing after whsec_")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value for one attempt: `v1,` + base64 HMAC-SHA256."""
    return signature(secret_bytes(secret), msg_id, timestamp, body)


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """`sign` with the key already decoded (the sender decodes it once per delivery)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")
