"""Rule-based units: sentences (abbreviations, decimals, lists), code units, force-keep patterns."""

from __future__ import annotations

import ast

import pytest

from datapruner.errors import ConfigError
from datapruner.compression.units import code_units, compile_force_keep, force_keep_mask, split_long_span, split_sentences


def _sentences(text):
    return [text[a:b] for a, b in split_sentences(text)]


def test_abbreviations_initials_and_decimals_do_not_split():
    text = "Dr. Smith paid $3.50 for it, e.g. at the U.S. border. Then J. K. Rowling wrote v2.1 of it! Did she?"
    assert _sentences(text) == [
        "Dr. Smith paid $3.50 for it, e.g. at the U.S. border.",
        "Then J. K. Rowling wrote v2.1 of it!",
        "Did she?",
    ]


def test_lists_and_blank_lines_split():
    text = "Steps:\n1. Mix the flour.\n2. Bake it for 20 min.\n- a dash item\n\nNew paragraph without a full stop"
    assert _sentences(text) == ["Steps:", "1. Mix the flour.", "2. Bake it for 20 min.", "- a dash item",
                                "New paragraph without a full stop"]


def test_lower_case_after_full_stop_and_quotes():
    text = 'He said "Stop." She left. approx. five more. The end.'
    assert _sentences(text) == ['He said "Stop."', "She left. approx. five more.", "The end."]


@pytest.mark.parametrize("text", ["", "   \n\t ", "\n\n"])
def test_whitespace_has_no_units(text):
    assert split_sentences(text) == []


def test_spans_index_the_input_and_are_ordered():
    text = "  First one.  Second one!\n\nThird?  "
    spans = split_sentences(text)
    assert [text[a:b] for a, b in spans] == ["First one.", "Second one!", "Third?"]
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))


def test_split_long_span_prefers_whitespace_and_covers_the_unit():
    text = "word " * 50
    span = (0, len(text.rstrip()))
    offsets = [(i * 5, i * 5 + 4) for i in range(50)]  # one token per word
    pieces = split_long_span(text, span, offsets, max_tokens=8)
    assert all(len(text[a:b].split()) <= 8 for a, b in pieces)
    assert " ".join(text[a:b] for a, b in pieces).split() == text.split()


def test_python_code_units(stdlib_source):
    units = code_units(stdlib_source, language="python")
    texts = [stdlib_source[a:b] for a, b in (u.span for u in units)]
    signatures = [t for u, t in zip(units, texts) if u.structural and t.lstrip().startswith("def ")]
    tree = ast.parse(stdlib_source)
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    defs = sorted((n for n in tree.body + [m for c in classes for m in c.body] if isinstance(n, ast.FunctionDef)), key=lambda n: n.lineno)
    assert [s.strip().split("(")[0] for s in signatures] == [f"def {d.name}" for d in defs]
    method = next(u for u, t in zip(units, texts) if t.lstrip().startswith("def _split("))
    header = next(u for u, t in zip(units, texts) if t.startswith("class TextWrapper"))
    assert method.parent == header.chunk and header.structural
    assert any(u.structural and t.strip().startswith("return") for u, t in zip(units, texts))
    # units are whole statements in source order, never overlapping
    assert all(units[i].span[1] < units[i + 1].span[0] for i in range(len(units) - 1))
    for u, t in zip(units, texts):
        if not u.structural:
            ast.parse(t.strip() if "\n" not in t else __import__("textwrap").dedent(t))


def test_one_line_statements_and_fallback():
    units = code_units("a = 1; b = 2\ndef f(): return 3\n", language="python")
    assert len(units) == 2 and units[1].structural
    js = "function a() {\n  return 1;\n}\n\nfunction b() {\n  x();\n\n  return 2;\n}\n"
    units = code_units(js, language="javascript")
    assert [u.chunk for u in units] == [0, 1, 1]
    broken = code_units("def f(:\n    pass\n", language="python")  # does not parse: fallback
    assert len(broken) == 1


def test_force_keep_patterns():
    texts = ["it rose 3%", "nothing here", "then Marie Curie came", "Capital first only", "matches XYZ-12"]
    assert force_keep_mask(texts, compile_force_keep(["numbers"])) == [True, False, False, False, True]
    assert force_keep_mask(texts, compile_force_keep("entities")) == [False, False, True, False, True]
    assert force_keep_mask(texts, compile_force_keep([r"XYZ-\d+"])) == [False, False, False, False, True]
    with pytest.raises(ConfigError, match="force_keep"):
        compile_force_keep(["(unclosed"])
