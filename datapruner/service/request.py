"""The body of ``POST /v1/compress``: parsed and checked before any work, each error naming its field.

A request may send only :data:`REQUEST_FIELDS`: the data (``query``, ``passages``), a budget
(``target_tokens``, ``rate`` or ``threshold``), a ``method`` from the server's allow-list (by
name) and a shorter deadline (``timeout_s``). Everything else, and so every way of naming a
model, a path, a tokenizer or ``trust_remote_code``, is refused (422), because those are fixed
when the server starts.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from datapruner.config import BUDGET_KEYS, ServiceConfig

REQUEST_FIELDS = ("query", "passages", *BUDGET_KEYS, "method", "timeout_s")
MODEL_FIELDS = ("params", "lm", "embedder", "model", "seqlabel_model", "tokenizer", "trust_remote_code",
                "model_path", "path")


class RequestError(Exception):
    """A request the service refuses: HTTP `status`, an error `kind`, the `field` and a message.

    ``extra`` holds machine-readable details (e.g. ``{"limit": "service.max_passages", "max": 1000,
    "value": 1200}``), returned beside the message.
    """

    def __init__(self, status: int, kind: str, field: str | None, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.kind, self.field, self.message, self.extra = status, kind, field, message, extra

    def body(self) -> dict[str, Any]:
        """The JSON error body ``{"error": {"type", "field", "message", ...}}``."""
        return {"error": {"type": self.kind, "field": self.field, "message": self.message, **self.extra}}


def limit_error(limit: str, field: str, value: int, maximum: int, what: str) -> RequestError:
    """413 for a request above one of the ``service`` limits."""
    return RequestError(413, "limit_exceeded", field, f"{what}: {value}; the limit service.{limit} is {maximum}. "
                        "Send less (fewer or shorter passages), or raise the limit when starting the server",
                        limit=f"service.{limit}", value=value, max=maximum)


@dataclass
class CompressRequest:
    """A checked request: what to compress, with which allowed method, under which budget and deadline."""

    query: str
    passages: list[str]
    method: str
    budget: dict[str, Any]  # only the budget keys the request gave (None elsewhere)
    timeout_s: float


def parse_request(body: bytes, *, limits: ServiceConfig, methods: list[str], default_method: str) -> CompressRequest:
    """Parse and check a request body (everything that needs no tokenizer).

    Raises
    ------
    RequestError : 400 for a body that is not a JSON object, 413 for a size limit, 422 for a field
        with a wrong type or value, an unknown field or a method outside the allow-list.
    """
    try:
        payload = json.loads(body.decode("utf-8")) if body.strip() else None
    except UnicodeDecodeError as exc:
        raise RequestError(400, "invalid_json", None, f"body is not UTF-8 (byte {exc.start}); send UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise RequestError(400, "invalid_json", None, f"body is not valid JSON: {exc.msg} at line {exc.lineno} "
                           f"column {exc.colno}; send a JSON object with 'query' and 'passages'") from None
    if not isinstance(payload, dict):
        raise RequestError(400, "invalid_request", None, "body must be a JSON object with 'query' (string) and "
                           f"'passages' (list of strings), got {type(payload).__name__ if payload is not None else 'nothing'}")
    for key in payload:
        if key not in REQUEST_FIELDS:
            why = ("models, tokenizers and method params are fixed when the server starts; a request can choose "
                   f"only a method by name ('method', one of {', '.join(methods)})" if key in MODEL_FIELDS else
                   "the method's params and the options are fixed when the server starts")
            raise RequestError(422, "unknown_field", key, f"field {key!r} (value {_short(payload[key])}) cannot be set "
                               f"per request: {why}; allowed fields: {', '.join(REQUEST_FIELDS)}")
    for key in ("query", "passages"):
        if key not in payload:
            raise RequestError(422, "missing_field", key, f"missing field {key!r}; send 'query' (string) and "
                               "'passages' (list of strings)")
    query, passages = payload["query"], payload["passages"]
    if not isinstance(query, str) or not query.strip():
        raise RequestError(422, "invalid_field", "query", f"field 'query' has value {_short(query)}; send a non-empty string")
    if not isinstance(passages, list):
        raise RequestError(422, "invalid_field", "passages", f"field 'passages' has value {_short(passages)}; "
                           "send a list of strings")
    if not passages:
        raise RequestError(422, "invalid_field", "passages", "field 'passages' is an empty list; send at least one passage")
    if len(passages) > limits.max_passages:
        raise limit_error("max_passages", "passages", len(passages), limits.max_passages, "too many passages")
    for k, passage in enumerate(passages):
        if not isinstance(passage, str):
            raise RequestError(422, "invalid_field", f"passages[{k}]", f"field 'passages[{k}]' has value "
                               f"{_short(passage)} ({type(passage).__name__}); every passage must be a string")
        if len(passage) > limits.max_passage_chars:
            raise limit_error("max_passage_chars", f"passages[{k}]", len(passage), limits.max_passage_chars,
                              f"passage {k} has too many characters")
    method = payload.get("method", default_method)
    if method not in methods:
        raise RequestError(422, "invalid_field", "method", f"field 'method' has value {_short(method)}; this server "
                           f"serves {', '.join(methods)} (chosen when it started)")
    budget = {k: payload.get(k) for k in BUDGET_KEYS}
    for key, value in budget.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            kind = "an integer >= 1" if key == "target_tokens" else "a number"
            raise RequestError(422, "invalid_field", key, f"field {key!r} has value {_short(value)}; send {kind}")
    timeout_s = payload.get("timeout_s", limits.timeout_s)
    if (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not math.isfinite(timeout_s)
            or not 0 < timeout_s <= limits.timeout_s):
        raise RequestError(422, "invalid_field", "timeout_s", f"field 'timeout_s' has value {_short(timeout_s)}; send "
                           f"seconds in (0, {limits.timeout_s:g}] (service.timeout_s is the longest deadline)")
    return CompressRequest(query, passages, method, budget, float(timeout_s))


def _short(value: Any) -> str:
    """`value` as JSON, cut to 60 characters."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
