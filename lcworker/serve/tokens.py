"""Stateless pagination tokens and JWTs signed with the store's secret.

A pagination token is ``payload.signature``: the payload is base64url JSON
with the position after the last scanned event, the page number, the
cumulative stats and a digest of the search it belongs to (oid, query text,
time range, stream). The signature is HMAC-SHA256 over the payload. Any change
to the token, or a token from another search or another store, fails
verification, and a token works under any query id of the same search.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass


class InvalidTokenError(ValueError):
    """Raised for a token whose signature, format or search binding is wrong."""


@dataclass(frozen=True)
class Cursor:
    """The decoded content of a pagination token."""

    after_ts: int
    after_id: int
    page: int
    cumulative: dict


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii"))


def derive_key(secret: bytes, purpose: str) -> bytes:
    """Derive a key for one purpose ("token", "jwt") from the store secret."""
    return hmac.new(secret, purpose.encode(), hashlib.sha256).digest()


def search_digest(oid: str, query: str, start: int, end: int, stream: str) -> str:
    """Return the digest that binds a token to one search."""
    material = json.dumps([oid, query, start, end, stream], separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def _sign(key: bytes, payload: str) -> str:
    return _b64encode(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest())


def encode_cursor(key: bytes, digest: str, cursor: Cursor) -> str:
    """Return the signed token for a cursor of the search with ``digest``."""
    body = {
        "v": 1,
        "s": digest,
        "t": cursor.after_ts,
        "i": cursor.after_id,
        "p": cursor.page,
        "c": cursor.cumulative,
    }
    payload = _b64encode(json.dumps(body, separators=(",", ":")).encode())
    return f"{payload}.{_sign(key, payload)}"


def decode_cursor(key: bytes, digest: str, token: str) -> Cursor:
    """Verify a token for the search with ``digest`` and return its cursor."""
    payload, _, signature = token.partition(".")
    if not payload or not signature:
        raise InvalidTokenError("invalid token")
    try:
        expected = _sign(key, payload)
    except UnicodeEncodeError:
        raise InvalidTokenError("invalid token") from None
    if not hmac.compare_digest(expected, signature):
        raise InvalidTokenError("invalid token")
    try:
        body = json.loads(_b64decode(payload))
        cursor = Cursor(int(body["t"]), int(body["i"]), int(body["p"]), dict(body["c"]))
        bound = body["s"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidTokenError("invalid token") from None
    if bound != digest:
        raise InvalidTokenError("invalid token")
    return cursor


def token_suffix(token: str | None) -> str:
    """Return the last characters of a token, safe to write to a log."""
    if not token:
        return "-"
    return f"...{token[-8:]}"


# --- JWTs -------------------------------------------------------------------


def issue_jwt(key: bytes, oid: str, ttl_seconds: int, now: float | None = None) -> str:
    """Return an HS256 JWT for ``oid`` that expires after ``ttl_seconds``."""
    issued = int(now if now is not None else time.time())
    header = _b64encode(b'{"alg":"HS256","typ":"JWT"}')
    claims = {"oid": oid, "iat": issued, "exp": issued + ttl_seconds}
    body = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{body}"
    return f"{signing_input}.{_sign(key, signing_input)}"


def verify_jwt(key: bytes, jwt: str, now: float | None = None) -> str | None:
    """Return the oid of a valid, unexpired JWT, or None."""
    parts = jwt.split(".")
    if len(parts) != 3:
        return None
    signing_input = f"{parts[0]}.{parts[1]}"
    try:
        if not hmac.compare_digest(_sign(key, signing_input), parts[2]):
            return None
        claims = json.loads(_b64decode(parts[1]))
        oid, expires = claims["oid"], float(claims["exp"])
    except (UnicodeEncodeError, binascii.Error, ValueError, KeyError, TypeError):
        return None
    if expires < (now if now is not None else time.time()):
        return None
    return oid if isinstance(oid, str) else None
