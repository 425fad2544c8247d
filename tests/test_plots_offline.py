"""`dvc plots show` with the shipped template renders every plot in a browser that has no network."""
from __future__ import annotations

import configparser
import json
import re
from pathlib import Path

from tools.browser import render_dom, summarize
from tools.smoke import dvc

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "plots" / "offline.html"
REMOTE_SCRIPT = re.compile(r"""<script[^>]*\bsrc\s*=\s*["']?(https?:)?//""", re.IGNORECASE)


def test_template_is_self_contained_and_configured():
    page = TEMPLATE.read_text(encoding="utf8")
    assert "{plot_divs}" in page
    assert "{scripts}" not in page, "DVC would put its CDN script tags there"
    assert not REMOTE_SCRIPT.search(page)
    for name in ("vega", "vega-lite", "vega-embed"):
        assert re.search(rf"/\* {name}@\d+\.\d+\.\d+ ", page), name
        assert (ROOT / "plots" / "vendor" / "LICENSES" / f"{name}.LICENSE").is_file(), name
    config = configparser.ConfigParser()
    config.read(ROOT / ".dvc" / "config")
    assert (ROOT / ".dvc" / config["plots"]["html_template"]).resolve() == TEMPLATE


def test_plots_show_renders_every_plot_offline(tmp_path, chromium):
    (tmp_path / "loss.json").write_text(json.dumps([{"step": i, "loss": 1 / (i + 1)} for i in range(5)]))
    (tmp_path / "confusion.json").write_text(json.dumps(
        [{"actual": a, "predicted": p} for a, p in [("hate", "hate"), ("hate", "benign"), ("benign", "benign")]]))
    (tmp_path / "dvc.yaml").write_text(
        "plots:\n"
        "  - loss.json:\n      template: simple\n      x: step\n      y: loss\n"
        "  - Confusion:\n      template: confusion\n      x: actual\n      y:\n        confusion.json: predicted\n")
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text(
        "[core]\n    no_scm = true\n    analytics = false\n    check_update = false\n"
        f"[plots]\n    html_template = {TEMPLATE}\n")

    shown = dvc(tmp_path, "plots", "show")
    assert shown.returncode == 0, shown.stderr
    page = tmp_path / "dvc_plots" / "index.html"
    source = page.read_text(encoding="utf8")
    assert not REMOTE_SCRIPT.search(source)

    summary = summarize(render_dom(page, wait_ms=3000), source=source)
    assert len(summary.vega_targets) == 2, summary.vega_targets
    assert summary.unrendered == [], f"no svg/canvas drawn in {summary.unrendered}"
    assert all(count == 1 for count in summary.rendered.values()), summary.rendered
