"""Code compression on a standard-library file: kept functions keep their signatures, output parses."""

from __future__ import annotations

import ast
import re

import pytest

from datapruner import compress

QUERY = "How are long words broken across lines when they do not fit the width?"


def _signatures(source: str) -> dict[str, set[str]]:
    """First lines of the function/method definitions, by name (a name may be defined more than once)."""
    tree = ast.parse(source)
    lines = source.splitlines()
    out: dict[str, set[str]] = {}
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out.setdefault(n.name, set()).add(lines[n.lineno - 1].strip())
    return out


def _check(result, source):
    assert result.tokens_after <= result.budget
    tree = ast.parse(result.text)  # elision markers are comments (or `...` where a body would be empty)
    assert re.search(r"# \.\.\. \d+ lines elided", result.text)
    kept_defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    assert kept_defs, "nothing of the code was kept"
    signatures = _signatures(source)
    kept_lines = [line.strip() for line in result.text.splitlines()]
    for node in kept_defs:
        # the kept function's signature is one of the original ones of that name
        assert kept_lines[node.lineno - 1] in signatures[node.name]
    for unit in result.units:
        assert source[unit.start : unit.end] == unit.text
    return {n.name for n in kept_defs}


@pytest.mark.slow
def test_code_compression_mig(stdlib_source):
    result = compress(QUERY, [stdlib_source], method="mig", rate=0.2, content="code")
    names = _check(result, stdlib_source)
    assert result.tokens_before / max(result.tokens_after, 1) >= 4
    assert "_handle_long_word" in names


@pytest.mark.slow
def test_code_compression_perplexity(stdlib_source):
    # the module-level functions (wrap, fill, shorten, dedent, indent): about 1,400 tokens of the file
    start = stdlib_source.index("# -- Convenience interface")
    source = stdlib_source[start:]
    result = compress("How does dedent find the common leading whitespace of the lines?", [source],
                      method="perplexity", rate=0.35, content="code")
    names = _check(result, source)
    assert "dedent" in names
    assert "return text" in result.text  # return lines of kept functions are kept


def test_non_python_code_uses_the_documented_fallback():
    js = "\n\n".join(f"function f{i}(x) {{\n  const y = x * {i};\n  return y;\n}}" for i in range(30))
    result = compress("What does f7 return?", [js], method="lead", rate=0.3, content="code", language="javascript")
    assert result.tokens_after <= result.budget
    assert re.search(r"// \.\.\. \d+ lines elided", result.text)
