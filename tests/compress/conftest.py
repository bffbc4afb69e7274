"""Fixtures for the compression tests: XQuAD questions among distractor paragraphs, code, Parquet rows."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class QACase:
    question: str
    passages: list[str]
    answers: list[str]
    gold: int  # index of the passage the question was written for


def _xquad_cases(path, *, n_questions: int, n_distractors: int = 3, seed: int = 0) -> list[QACase]:
    """One question per paragraph, its paragraph placed at a random position among
    `n_distractors` other paragraphs of the sample (seeded, so every run sees the same cases)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    paragraphs = [p for article in data["data"] for p in article["paragraphs"]]
    rng = random.Random(seed)
    cases = []
    for i, para in enumerate(paragraphs[:n_questions]):
        qa = para["qas"][0]
        others = rng.sample([j for j in range(len(paragraphs)) if j != i], n_distractors)
        gold = rng.randrange(n_distractors + 1)
        passages = [paragraphs[j]["context"] for j in others]
        passages.insert(gold, para["context"])
        cases.append(QACase(qa["question"], passages, sorted({a["text"] for a in qa["answers"]}), gold))
    return cases


def _answer_recall(cases: list[QACase], texts: list[str]) -> float:
    """Fraction of cases whose compressed text still contains one of the gold answer strings."""
    return sum(any(a in t for a in c.answers) for c, t in zip(cases, texts)) / len(cases)


@pytest.fixture(scope="session")
def xquad_cases(test_data):
    """Factory: ``xquad_cases(n_questions, n_distractors=3)`` -> list of :class:`QACase`."""
    path = test_data / "qa" / "xquad_en_sample.json"
    return lambda n_questions, n_distractors=3: _xquad_cases(path, n_questions=n_questions, n_distractors=n_distractors)


@pytest.fixture(scope="session")
def answer_recall():
    return _answer_recall


@pytest.fixture(scope="session")
def stdlib_source(test_data) -> str:
    return (test_data / "qa" / "stdlib_textwrap.py").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def rag_rows(test_data):
    return test_data / "qa" / "nq_rag_rows.parquet"


@pytest.fixture(scope="session")
def seqlabel_available():
    """The B1 model lives in scorers/seqlabel.py (another module); skip its tests only if it is absent."""
    return pytest.importorskip("datapruner.scorers.seqlabel")
