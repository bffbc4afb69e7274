"""The run report page (report/index.html), opened in a real headless Chromium.

The run: 240 real SST-2 rows plus seeded exact copies (one holding HTML markup, which must come out
escaped), scored by exact_dedup, minhash, semdedup and density, selected by three drop_flagged
policies and cluster_quota. The screenshot is kept as a test artefact (tests/report/conftest.py).
"""

from __future__ import annotations

import re

import pytest


def test_every_run_writes_a_self_contained_page(run, hostile):
    page = run.report_path.read_text(encoding="utf-8")
    assert run.report_path == run.out_dir / "report" / "index.html"
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page), "the page must not load anything"
    assert "<link" not in page and "@import" not in page and "@font-face" not in page
    assert hostile.upper() not in page.upper().replace("<SCRIPT>DOCUMENT", "")  # the dropped copy is shown escaped
    assert "&lt;SCRIPT&gt;ALERT(&quot;X&quot;)&lt;/SCRIPT&gt; &amp; &lt;B&gt;BOLD&lt;/B&gt;" in page
    assert page.count("<script>") == 1  # the page's own marker script, nothing from the data


def test_the_funnel_accounts_for_every_row(run):
    from datapruner.curation.html_report import funnel_steps

    counts = run.manifest["counts"]
    steps = funnel_steps(run.manifest["config"]["selection"], counts["rows_in"], counts["dropped_by_reason"])
    assert [s["step"] for s in steps[:2]] == ["rows in", "invalid rows"]
    assert steps[-1]["left"] == run.n_kept and sum(s["dropped"] for s in steps) == run.n_rows - run.n_kept
    assert steps[2]["dropped"] == 11  # the seeded exact copies: 10 upper-cased rows and the markup row


@pytest.mark.slow
def test_the_page_renders_in_headless_chromium(run, tmp_path, page_in_browser, artifact):
    view = page_in_browser(run.report_path, tmp_path)
    kept = artifact(view.screenshot, "report-test.png")
    assert view.console == [], f"console messages: {view.console}"
    assert 'data-rendered="yes"' in view.dom, "the page's script did not run"
    for section in ("funnel", "counts", "histograms", "methods", "examples", "manifest"):
        assert f'<section id="{section}">' in view.dom, section
    assert view.dom.count("<svg") >= 3 and "data:image/png;base64," in view.dom  # histograms, DBP plot
    assert "semdedup_eps" in view.dom and "drop_flagged(score=exact_duplicate)" in view.dom
    assert "<SCRIPT>ALERT" not in view.dom.upper() and "&lt;SCRIPT&gt;ALERT" in view.dom
    assert kept.stat().st_size > 20_000  # a real picture, not a blank page
    print(f"screenshot: {kept}")


def test_the_console_check_can_fail(tmp_path, page_in_browser):
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>console.error('broken'); notDefined();</script></body></html>")
    view = page_in_browser(page, tmp_path, height=200)
    assert any("broken" in line for line in view.console) and any("notDefined" in line for line in view.console)
