"""Answer recall at a 4x token reduction on XQuAD, each method against random units at the same budget.

Each question's own paragraph sits among other XQuAD paragraphs (3, or 2 for perplexity); the context is compressed to
25 % of its tokens and we count how often a gold answer string survives. Random units at the same
budget keep an answer in about a third of the cases; every method must clear a floor that random
fails on the same cases.
"""

from __future__ import annotations

import time

import pytest

from datapruner.pipelines.compress import compress_batch

pytestmark = pytest.mark.slow

RATE = 0.25
# method -> (questions, distractors, recall floor). Floors sit below the measured recall
# (docs/compression.md) and well above what random units reach on the same cases. The perplexity
# method runs the 135M LM over every (passage, question) pair, so it gets fewer, shorter cases.
FLOORS = {
    "mig": (30, 3, 0.75),
    "seqlabel": (30, 3, 0.75),
    "hybrid": (30, 3, 0.75),
    "perplexity": (8, 2, 0.75),
}


def _recall(cases, method, answer_recall):
    start = time.perf_counter()
    results = compress_batch([(c.question, c.passages) for c in cases], method=method, rate=RATE, random_state=0)
    seconds = time.perf_counter() - start
    for r in results:
        assert r.tokens_after <= r.budget
        assert r.budget == int(RATE * r.tokens_before)
    return answer_recall(cases, [r.text for r in results]), seconds / len(cases)


@pytest.mark.parametrize("method", list(FLOORS))
def test_answer_recall_at_4x_beats_random(method, xquad_cases, answer_recall, request):
    if method in ("seqlabel", "hybrid"):
        request.getfixturevalue("seqlabel_available")
    n, distractors, floor = FLOORS[method]
    cases = xquad_cases(n, distractors)
    random_recall, _ = _recall(cases, "random", answer_recall)
    recall, per_query = _recall(cases, method, answer_recall)
    print(f"{method}: recall {recall:.2f} (random {random_recall:.2f}) on {n} questions, {per_query:.2f} s/query")
    assert random_recall < floor, f"random units already reach {random_recall:.2f}; the floor {floor} proves nothing"
    assert recall >= floor, f"{method} recall {recall:.2f} < floor {floor} (random: {random_recall:.2f})"
