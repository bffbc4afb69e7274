"""The optional bearer token of the service (``serve --token`` or ``$DATAPRUNER_TOKEN``)."""

from __future__ import annotations

import hmac
import os

TOKEN_ENV = "DATAPRUNER_TOKEN"


def token_from_env() -> str | None:
    """The token in ``$DATAPRUNER_TOKEN``, or None when it is unset or empty."""
    return os.environ.get(TOKEN_ENV) or None


def authorized(header: str | None, token: str | None) -> bool:
    """Whether an ``Authorization`` header carries `token` (always true when no token is set).

    The comparison takes the same time wherever the first wrong character is
    (:func:`hmac.compare_digest`), so the token cannot be guessed one character at a time.
    """
    if token is None:
        return True
    scheme, _, given = (header or "").partition(" ")
    return hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8")) and scheme.lower() == "bearer"
