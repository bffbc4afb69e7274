"""Units of compression: sentences for prose, functions then statement/line blocks for code.

Everything here is rule based and needs no downloaded data (NLTK punkt cannot be installed
offline). Every function returns *character spans* ``(start, end)`` into the input string, so a
unit's text is always ``text[start:end]`` and callers can report exactly where kept text came from.

Sentence splitter
-----------------
A boundary is placed after ``.``, ``!``, ``?`` or ``…`` (plus any closing quotes or brackets)
when whitespace follows and the next word does not start in lower case, except after a known
abbreviation (``Mr.``, ``e.g.``, ``U.S.``, ``Fig.``...), a single-letter initial (``J. K. Rowling``)
or a list number at the start of a line (``1. First``). Decimals (``3.14``), version strings and
URLs never break because no whitespace follows the dot. A blank line, or a new line that starts a
list item (``-``, ``*``, ``•``, ``1.``, ``a)``), also ends a unit. Spans are trimmed of surrounding
whitespace; whitespace-only text has no units.

Code units
----------
Python (parsed with :mod:`ast`): a *chunk* is a top-level function, a method (with its class
header as its own small chunk), or a run of other module-level statements. Inside a function the
signature (decorators and the ``def`` line(s) up to the body) and top-level ``return`` statements
are *structural* units; every other top-level statement of the body (the docstring included) is
one unit. A class header is the ``class`` line(s); a method's chunk has the header's chunk as its
``parent``. Eliding whole
statements and replacing them with a comment (or ``...`` when a body would be empty) keeps the
output parseable.

Other languages, or Python that does not parse, use the documented fallback: chunks start at a
non-indented line that follows a blank line (top-level declarations in C-like languages, shell,
Go, Rust...), and units are the blank-line-separated line groups inside a chunk. The output of the
fallback is not guaranteed to be syntactically valid.

Force-keep patterns
-------------------
:func:`force_keep_mask` marks units matching ``"numbers"``, ``"entities"`` (a capitalised word
that does not start the unit) or any user regular expression.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from datapruner.errors import ConfigError

Span = tuple[int, int]

# Lower-cased abbreviations (without the final dot) that do not end a sentence.
ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr prof sr jr st mt ft vs etc e.g i.e cf al approx appt apt dept est fig figs
    inc ltd co corp no nos vol vols pp p ed eds rev gen gov sen rep col lt sgt capt cmdr adm
    jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thurs fri sat sun
    u.s u.k u.n a.m p.m ph.d b.a m.a b.sc m.sc d.c n.y l.a e.u ca c op ch sec art para eq
    """.split()
)

_TERMINAL = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s)")
_LIST_ITEM = re.compile(r"[ \t]*(?:[-*\u2022\u2023\u25e6]|\d{1,3}[.)]|[a-zA-Z][.)])\s")
_WORD_BEFORE = re.compile(r"([\w.\-]+)$")


def _trim(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if end > start else None


def _is_abbreviation(text: str, dot: int, line_start: int) -> bool:
    """True when the `.` at index `dot` ends an abbreviation, an initial or a list number."""
    match = _WORD_BEFORE.search(text, max(0, dot - 20), dot)
    if not match:
        return False
    word = match.group(1).lower().strip(".-")
    if not word:
        return False
    if word in ABBREVIATIONS:
        return True
    if len(word) == 1 and word.isalpha() and text[match.start(1)].isupper():
        return True  # an initial: "J. K. Rowling"
    if word.isdigit() and text[line_start:match.start(1)].strip() == "":
        return True  # "1. First item" at the start of a line
    return False


def split_sentences(text: str) -> list[Span]:
    """Split prose into sentence spans.

    Parameters
    ----------
    text : the passage.

    Returns
    -------
    list of (start, end) character spans in order, non-overlapping, trimmed of whitespace;
    ``text[start:end]`` is the sentence.
    """
    if not text or text.isspace():
        return []
    cuts: set[int] = set()
    # Line-level boundaries: blank lines and list items.
    pos = 0
    for line in text.splitlines(keepends=True):
        if pos > 0 and (line.strip() == "" or _LIST_ITEM.match(line)):
            cuts.add(pos)
        pos += len(line)
    # Punctuation boundaries.
    for match in _TERMINAL.finditer(text):
        end = match.end()
        nxt = end
        while nxt < len(text) and text[nxt].isspace():
            nxt += 1
        if nxt >= len(text):
            continue
        following = text[nxt]
        if following.islower():
            continue
        punct = match.group(0)
        if punct.startswith(".") and len(punct.rstrip("\"'\u201d\u2019)]")) == 1:
            line_start = text.rfind("\n", 0, match.start()) + 1
            if _is_abbreviation(text, match.start(), line_start):
                # "etc." or "Inc." can still end a sentence when a capital follows a line break.
                if "\n" not in text[end:nxt]:
                    continue
        cuts.add(end)
    spans: list[Span] = []
    start = 0
    for cut in sorted(cuts) + [len(text)]:
        span = _trim(text, start, cut)
        if span:
            spans.append(span)
        start = cut
    return spans


def split_long_span(text: str, span: Span, offsets: list[Span], max_tokens: int) -> list[Span]:
    """Split one span into pieces of at most `max_tokens` tokens, preferring whitespace cuts.

    Parameters
    ----------
    text : the passage the span indexes.
    span : (start, end) of the unit.
    offsets : character offsets (relative to ``text[start:end]``) of each token of the unit, as a
        tokenizer's offset mapping gives them.
    max_tokens : the largest piece, in tokens (>= 1).

    Returns
    -------
    list of spans covering the unit in order (trimmed; whitespace-only pieces dropped).
    """
    start, end = span
    if len(offsets) <= max_tokens:
        return [span]
    pieces, piece_start, i = [], 0, 0
    n = len(offsets)
    while i < n:
        j = min(i + max_tokens, n)
        if j < n:
            # back off to a token that begins with whitespace, if one exists in the second half
            k = j
            while k > i + max_tokens // 2 and not text[start + offsets[k][0] - 1 : start + offsets[k][0]].isspace():
                k -= 1
            if k > i + max_tokens // 2:
                j = k
            cut = offsets[j][0]
        else:
            cut = end - start
        cut = min(max(cut, piece_start), end - start)  # offsets of multi-byte characters can repeat
        piece = _trim(text, start + piece_start, start + cut)
        if piece:
            pieces.append(piece)
        piece_start, i = cut, j
    return pieces


# ---------------------------------------------------------------- code


@dataclass(frozen=True)
class CodeUnit:
    """One unit of code.

    span : (start, end) character span (whole lines, without the final newline).
    chunk : index of the chunk (function, method, class header, module block) it belongs to.
    structural : a signature or top-level ``return`` line; kept whenever its chunk keeps anything.
    indent : the indentation string of the unit's first line (used for elision markers).
    name : the function/class name of the chunk, or ``""``.
    parent : the chunk that must be kept with this one (a method's class header), or -1.
    """

    span: Span
    chunk: int
    structural: bool
    indent: str
    name: str
    parent: int = -1


COMMENT_PREFIX = {
    "python": "#", "shell": "#", "bash": "#", "ruby": "#", "r": "#", "yaml": "#", "perl": "#",
    "javascript": "//", "typescript": "//", "java": "//", "c": "//", "cpp": "//", "c++": "//",
    "go": "//", "rust": "//", "kotlin": "//", "swift": "//", "scala": "//", "csharp": "//", "php": "//",
    "sql": "--", "lua": "--", "haskell": "--",
}


def comment_prefix(language: str) -> str:
    """The line-comment prefix used for elision markers (``#`` when the language is unknown)."""
    return COMMENT_PREFIX.get(language.lower(), "#")


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    return starts


def _lines_span(text: str, starts: list[int], first: int, last: int) -> Span:
    """Span of 1-based lines first..last inclusive, without the final newline."""
    begin = starts[first - 1]
    end = starts[last] - 1 if last < len(starts) else len(text)
    return begin, max(begin, end)


def _indent_of(text: str, start: int) -> str:
    end = start
    while end < len(text) and text[end] in " \t":
        end += 1
    return text[start:end]


def _stmt_first_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", None) or []
    return min([node.lineno] + [d.lineno for d in decorators])


def _python_units(text: str, tree: ast.Module) -> list[CodeUnit]:
    starts = _line_starts(text)
    units: list[CodeUnit] = []
    last_lines: list[int] = []
    chunk = -1

    def add(first: int, last: int, structural: bool, name: str, parent: int) -> None:
        if last_lines and first <= last_lines[-1]:
            # several statements on one line ("a = 1; b = 2"): one unit
            prev = units[-1]
            span = _lines_span(text, starts, _first_line_of(prev), max(last, last_lines[-1]))
            units[-1] = CodeUnit(span, prev.chunk, prev.structural or structural, prev.indent, prev.name, prev.parent)
            last_lines[-1] = max(last, last_lines[-1])
            return
        span = _lines_span(text, starts, first, last)
        if text[span[0] : span[1]].strip():
            units.append(CodeUnit(span, chunk, structural, _indent_of(text, span[0]), name, parent))
            last_lines.append(last)

    def _first_line_of(unit: CodeUnit) -> int:
        return text.count("\n", 0, unit.span[0]) + 1

    def function(node, parent: int) -> None:
        nonlocal chunk
        chunk += 1
        body = node.body
        sig_last = body[0].lineno - 1
        if sig_last < node.lineno:  # one-line def: "def f(): return 1"
            sig_last = node.end_lineno or node.lineno
        add(_stmt_first_line(node), sig_last, True, node.name, parent)
        for stmt in body:
            if stmt.lineno > sig_last:
                last = stmt.end_lineno or stmt.lineno
                add(_stmt_first_line(stmt), last, isinstance(stmt, ast.Return), node.name, parent)

    def statements(nodes: list[ast.stmt], class_name: str = "", parent: int = -1) -> None:
        nonlocal chunk
        run_open = False
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                function(node, parent)
                run_open = False
            elif isinstance(node, ast.ClassDef):
                chunk += 1
                header_chunk = chunk
                body = node.body
                head_last = body[0].lineno - 1
                if head_last < node.lineno:  # one-line class
                    add(_stmt_first_line(node), node.end_lineno or node.lineno, True, node.name, parent)
                    run_open = False
                    continue
                add(_stmt_first_line(node), head_last, True, node.name, parent)
                rest = [s for s in body if s.lineno > head_last]
                nested = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
                # class-level statements other than methods stay in the class-header chunk
                for stmt in rest:
                    if not isinstance(stmt, nested):
                        add(_stmt_first_line(stmt), stmt.end_lineno or stmt.lineno, False, node.name, parent)
                statements([s for s in rest if isinstance(s, nested)], node.name, header_chunk)
                run_open = False
            else:
                if not run_open:
                    chunk += 1
                    run_open = True
                add(_stmt_first_line(node), node.end_lineno or node.lineno, False, class_name, parent)

    statements(tree.body)
    return units


def _fallback_units(text: str) -> list[CodeUnit]:
    starts = _line_starts(text)
    lines = text.split("\n")
    units: list[CodeUnit] = []
    chunk, block_first, prev_blank = -1, None, True

    def close(last: int) -> None:
        if block_first is not None:
            span = _lines_span(text, starts, block_first, last)
            if text[span[0] : span[1]].strip():
                units.append(CodeUnit(span, max(chunk, 0), False, _indent_of(text, span[0]), ""))

    for number, line in enumerate(lines, start=1):
        blank = line.strip() == ""
        if blank:
            close(number - 1)
            block_first = None
        else:
            if prev_blank and not line[:1].isspace():
                chunk += 1
            if block_first is None:
                block_first = number
        prev_blank = blank
    close(len(lines))
    return units


def code_units(text: str, *, language: str = "python") -> list[CodeUnit]:
    """Split source code into units grouped in chunks (see the module docstring).

    Parameters
    ----------
    text : the source file or snippet.
    language : ``"python"`` uses :mod:`ast`; anything else (or Python that does not parse) uses the
        blank-line fallback.

    Returns
    -------
    list of :class:`CodeUnit` in source order.
    """
    if not text.strip():
        return []
    if language.lower() == "python":
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            return _fallback_units(text)
        return _python_units(text, tree)
    return _fallback_units(text)


# ---------------------------------------------------------------- force keep

NAMED_PATTERNS = {
    "numbers": re.compile(r"\d"),
    # a capitalised word that is not the first word of the unit
    "entities": re.compile(r"(?<=[\s(\"'\u201c])[A-Z][\w\-]*[a-z]\w*|(?<=[\s(])[A-Z]{2,}\b"),
}


def compile_force_keep(patterns) -> list[re.Pattern]:
    """Compile a list of ``"numbers"``, ``"entities"`` or regular-expression strings.

    Raises
    ------
    ConfigError : a pattern is not a string or does not compile.
    """
    if patterns is None:
        return []
    if isinstance(patterns, str):
        patterns = [patterns]
    compiled = []
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern:
            raise ConfigError("force_keep", pattern, "'numbers', 'entities' or a non-empty regular expression string")
        if pattern in NAMED_PATTERNS:
            compiled.append(NAMED_PATTERNS[pattern])
            continue
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise ConfigError("force_keep", pattern, f"a valid regular expression ({exc})") from None
    return compiled


def force_keep_mask(texts: list[str], patterns: list[re.Pattern]) -> list[bool]:
    """True for each text that matches any compiled pattern."""
    return [any(p.search(t) for p in patterns) for t in texts]
