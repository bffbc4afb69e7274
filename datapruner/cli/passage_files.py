"""Read the passages of ``datapruner compress --passages FILE`` (a file or ``-`` for stdin).

Formats (``--passages-format``, default ``auto``):

``json``
    A list whose items are strings or objects with a string ``text`` field
    (``["first passage", {"text": "second"}]``), or an object ``{"passages": [...]}`` (the body of
    a ``POST /v1/compress`` request).
``jsonl``
    One passage per non-blank line: a JSON string or an object with a ``text`` field.
``text``
    Passages separated by blank lines (with ``--content code``: the whole input is one passage).

``auto`` picks by the file's extension (``.json``; ``.jsonl`` / ``.ndjson``; anything else is
text). For stdin, ``auto`` looks at the first character that is not white space: ``[`` or ``{``
means JSON (or JSONL when the input is one JSON value per line), anything else text. Every error
names the source, the line (or item) and the fix.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from datapruner.errors import InputDataError

PASSAGE_FORMATS = ("auto", "json", "jsonl", "text")


def read_passages(path: str, *, fmt: str = "auto", content: str = "text") -> list[str]:
    """The passages of `path` (``"-"``: stdin) in format `fmt` (:data:`PASSAGE_FORMATS`).

    Raises
    ------
    InputDataError : a missing file, invalid JSON (with its line and column), an item that is not
        a string or ``{"text": str}``, or input holding no passage at all.
    """
    if fmt not in PASSAGE_FORMATS:
        raise InputDataError(f"--passages-format {fmt!r} is not a format; use one of {', '.join(PASSAGE_FORMATS)}")
    if path == "-":
        source, text = "stdin", sys.stdin.read()
    else:
        p = Path(path)
        if not p.is_file():
            raise InputDataError(f"--passages {path!r} is not a file; give a .json, .jsonl or text file, or '-' for stdin")
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InputDataError(f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
        source = path
    if fmt == "auto":
        fmt = _format_of(source, text, stdin=path == "-")
    if fmt == "json":
        passages = _read_json(source, text)
    elif fmt == "jsonl":
        passages = _read_jsonl(source, text)
    elif content == "code":
        passages = [text] if text.strip() else []
    else:
        passages = [block.strip() for block in text.split("\n\n") if block.strip()]
    if not passages:
        what = "is empty" if not text.strip() else f"holds no passage (read as {fmt})"
        raise InputDataError(f"{source} {what}; give at least one passage (see `datapruner compress --help`)")
    return passages


def _format_of(source: str, text: str, *, stdin: bool) -> str:
    """The format ``auto`` means for this input (see the module docstring)."""
    if not stdin:
        suffix = Path(source).suffix.lower()
        return {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suffix, "text")
    head = text.lstrip()[:1]
    if head not in ("[", "{"):
        return "text"
    lines = [line for line in text.splitlines() if line.strip()]
    if head == "{" and len(lines) > 1 and all(_is_json(line) for line in lines):
        return "jsonl"
    return "json"


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except json.JSONDecodeError:
        return False
    return True


def _read_json(source: str, text: str) -> list[str]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputDataError(
            f"{source}:{exc.lineno}:{exc.colno}: invalid JSON ({exc.msg}); fix it, or pass "
            "--passages-format text to read the input as plain text (passages separated by blank lines)") from None
    if isinstance(data, dict):
        if "passages" not in data:
            raise InputDataError(f"{source}: a JSON object needs a 'passages' list (found keys {sorted(data)[:5]}); "
                                 "or give a JSON list of passages")
        data = data["passages"]
    if not isinstance(data, list):
        raise InputDataError(f"{source}: expected a JSON list of passages (strings or {{\"text\": ...}}), "
                             f"got a JSON {type(data).__name__}")
    return [_passage_text(item, f"{source}: item {k}") for k, item in enumerate(data)]


def _read_jsonl(source: str, text: str) -> list[str]:
    passages = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputDataError(f"{source}:{n}: invalid JSON on this line ({exc.msg}, column {exc.colno}); "
                                 "each line must be a JSON string or {\"text\": ...}") from None
        passages.append(_passage_text(item, f"{source}:{n}"))
    return passages


def _passage_text(item: Any, where: str) -> str:
    """The text of one JSON item: a string, or an object's string ``text`` field."""
    if isinstance(item, dict):
        if "text" not in item:
            raise InputDataError(f"{where}: an object needs a 'text' field (found keys {sorted(item)[:5]})")
        if not isinstance(item["text"], str):
            raise InputDataError(f"{where}: field 'text' must be a string, got {type(item['text']).__name__} "
                                 f"{item['text']!r:.40}")
        return item["text"]
    if not isinstance(item, str):
        raise InputDataError(f"{where}: a passage must be a string or {{\"text\": \"...\"}}, "
                             f"got {type(item).__name__} {item!r:.40}")
    return item
