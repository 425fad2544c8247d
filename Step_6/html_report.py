"""Stage `report`: reports/evaluation.html from reports/evaluation.json, a static page that opens from disk.

Figures (reliability, ROC/PR with bootstrap bands, robustness bars, gate weights per slice) are
matplotlib PNGs and the mistakes' thumbnails are JPEGs, all embedded as data URIs: no server, no
network, no side files. The page layout is Step_6/report_template.html ($placeholders); changing it
reruns only this stage.
"""
from __future__ import annotations

import argparse
import base64
import html
import io
from pathlib import Path
from string import Template

from core.cli import run_cli
from core.errors import PipelineError
from core.files import atomic_write_text, read_json
from Step_3.reader import IMAGE_KEYS, ShardReader
from Step_6 import figures
from Step_6.summary import fmt, summary_lines

TEMPLATE = Path(__file__).with_name("report_template.html")
SLICE_FAMILIES = ["content", "intent", "agreement", "caption_length", "engagement"]


class Markup(str):
    """A cell that already is HTML (a number with its interval, a warning span); other text is escaped."""


def table(header: list[str], rows: list[list], name_columns: int = 1) -> str:
    """An HTML table; the first `name_columns` columns are left-aligned names; None shows as an en dash;
    plain strings (slice values, ids) are escaped, Markup cells are not."""
    def cell(i, value, tag):
        css = ' class="name"' if i < name_columns else ""
        text = "–" if value is None else value if isinstance(value, Markup) else html.escape(f"{value}")
        return f"<{tag}{css}>{text}</{tag}>"
    head = "".join(cell(i, h, "th") for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell(i, v, "td") for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def num(value, spec: str = ".3f") -> str:
    """A number formatted, or an en dash in the page's tables."""
    return fmt(value, spec, missing="–")


def ci(value, interval, spec: str = ".3f") -> str:
    lo, hi = interval or (None, None)
    text = num(value, spec)
    return Markup(text if lo is None or value is None
                  else f"{text} <span class=muted>[{num(lo, spec)}, {num(hi, spec)}]</span>")


def calibration_table(report: dict) -> str:
    rows = []
    for name, c in report["calibration"].items():
        for split in report["splits"]:
            b, a = c["splits"][split]["before"], c["splits"][split]["after"]
            rows.append([name, split, c["temperature"]] + [f"{num(b[k])} → {num(a[k])}"
                                                            for k in ("ece", "ece_adaptive", "brier", "nll")])
    return table(["model", "split", "T", "ECE", "adaptive ECE", "Brier", "NLL"], rows, 2)


def operating_table(report: dict) -> str:
    rows = []
    for name, points in report["operating_points"].items():
        for op, p in points.items():
            reached = "" if p["reached_on_val"] else " <span class=bad>(target not reached on val)</span>"
            op_cell = Markup(html.escape(op) + reached)
            for split in report["splits"]:
                r = p[split]
                rows.append([name, op_cell, split, f"{p['threshold']:.3f}", ci(r["precision"], r["precision_ci95"]),
                             ci(r["recall"], r["recall_ci95"]), ci(r["flag_rate"], r["flag_rate_ci95"]),
                             ci(r["macro_f1"], r["macro_f1_ci95"])])
    return table(["model", "operating point", "split", "threshold", "precision", "recall", "flag rate", "macro-F1"],
                 rows, 3)


def paired_table(report: dict) -> str:
    rows = [[pair.replace("_vs_", " − "), split, num(per[split]["diff"], "+.4f"),
             f"[{num(per[split]['ci95'][0], '+.4f')}, {num(per[split]['ci95'][1], '+.4f')}]", per[split]["share_not_better"]]
            for pair, per in report["paired"].items() for split in report["splits"]]
    return table(["AUROC difference", "split", "diff", "95 % interval", "share of resamples not better"], rows, 2)


def robustness_table(report: dict) -> str:
    robustness, rows, conditions = report["robustness"], [], report["robustness_conditions"]
    for split in report["splits"]:
        for name, per in robustness.items():
            cells = [(per[c].get(split) or {}).get("auroc") for c in conditions]
            rows.append([name, split] + [num(v) for v in cells])
    return table(["model (AUROC)", "split"] + conditions, rows, 2)


def slices_tables(report: dict, model: str) -> str:
    parts = []
    for split in report["splits"]:
        rows = [[family, value, r["n"], r["positives"], ci(r["auroc"], r["auroc_ci95"]), ci(r["macro_f1"], r["macro_f1_ci95"])]
                for family, values in report["slices"][model][split].items() for value, r in values.items()]
        parts.append(f"<h3>{html.escape(split)}</h3>" + table(["family", "slice", "n", "positives", "AUROC", "macro-F1"],
                                                              rows, 2))
    return "".join(parts)


def highlights_table(report: dict) -> str:
    rows = []
    for name, per in report["slice_highlights"].items():
        for split, h in per.items():
            worst, small = h["worst"], h["smallest"]
            rows.append([name, split, f"{worst['family']}={worst['value']} (n={worst['n']}, AUROC {worst['auroc']})"
                         if worst else None, f"{small['family']}={small['value']} (n={small['n']})"])
    return table(["model", "split", "worst slice", "smallest slice"], rows, 4)


def thumbnails(reader: ShardReader, wanted: dict[str, set[str]], size: int = 320) -> dict[str, str]:
    """id -> JPEG data URI for the wanted ids of each split (read from the shards, decoded only when wanted)."""
    from PIL import Image

    out = {}
    for split, ids in wanted.items():
        for raw in reader.samples(split, raw=True):
            if raw["__key__"] in ids:
                image = Image.open(io.BytesIO(next(raw[k] for k in IMAGE_KEYS if k in raw))).convert("RGB")
                image.thumbnail((size, size))
                buffer = io.BytesIO()
                image.save(buffer, format="JPEG", quality=80)
                out[raw["__key__"]] = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return out


def mistakes_html(report: dict, thumbs: dict[str, str]) -> str:
    parts = []
    for split, rows in report["mistakes"].items():
        cards = []
        for r in rows:
            gates = ", ".join(f"{m} {w:.2f}" for m, w in (r.get("gates") or {}).items())
            cards.append(
                f'<div class="card"><img src="{thumbs.get(r["id"], "")}" alt="{html.escape(r["id"])}">'
                f"<div><b>{html.escape(r['id'])}</b> — label <b>{html.escape(r['label'])}</b>, predicted "
                f"{html.escape(r['predicted'])} ({r['confidence']:.2f})</div>"
                f"<div>OCR: {html.escape(r['ocr_text'])}</div><div class=muted>gold: {html.escape(r['gold_text'])}</div>"
                + (f"<div>gates ({html.escape(report['gates_model'] or '')}): {gates}</div>" if gates else "") + "</div>")
        parts.append(f"<h3>{html.escape(split)}</h3><div class=gallery>{''.join(cards)}</div>")
    return "".join(parts)


def summary_html(report: dict) -> str:
    best, expert = report["best_fusion"], report["best_expert"]
    items = []
    for split in report["splits"]:
        p = report["paired"][f"{best}_vs_{expert}"][split]
        items.append(f"<li><b>{split}</b>: {best} − {expert} AUROC {num(p['diff'], '+.3f')} "
                     f"[{num(p['ci95'][0], '+.3f')}, {num(p['ci95'][1], '+.3f')}]</li>")
    s = report["robustness_summary"]
    items.append(f"<li>least degraded fusion under corruption: <b>{s['least_degraded_fusion']}</b> "
                 f"(mean AUROC drop {s['mean_auroc_drop'].get(s['least_degraded_fusion'])})</li>")
    return "<ul>" + "".join(items) + "</ul>"


def render(report: dict, thumbs: dict[str, str], template: str) -> str:
    splits = report["splits"]
    fusions = [n for n in report["robustness"] if n.startswith("fusion_")]
    samples = report["robustness_samples"]
    values = {
        "lead": f"Best expert <b>{report['best_expert']}</b>, best fusion <b>{report['best_fusion']}</b> (both chosen "
                f"on {html.escape(report.get('selected_on', 'val AUROC').split(' (')[0])}); splits {', '.join(splits)}.",
        "summary": summary_html(report), "bins": report["settings"]["ece_bins"],
        "positive": html.escape(report["positive"]), "resamples": report["settings"]["bootstrap"],
        "calibration_table": calibration_table(report),
        "reliability_figures": "".join(f'<img class="figure" alt="reliability {s}" src="{figures.reliability_figure(report["reliability"], s)}">'
                                       for s in splits if s != "val"),
        "operating_table": operating_table(report), "paired_table": paired_table(report),
        "curves_figure": f'<img class="figure" alt="ROC and PR" src="{figures.curves_figure(report["curves"], [s for s in splits if s != "val"])}">',
        "robustness_lead": f"{sum(samples.values())} memes ({', '.join(f'{n} {s}' for s, n in samples.items())}) "
                           "go through each condition on the real path: corrupted image → OCR → experts → fusion. "
                           f"Least degraded fusion (mean AUROC drop): <b>{report['robustness_summary']['least_degraded_fusion']}</b>.",
        "robustness_table": robustness_table(report),
        "robustness_figures": "".join(f'<img class="figure" alt="robustness {s}" src="{figures.robustness_figure(report["robustness"], report["robustness_conditions"], fusions + [report["best_expert"]], s)}">'
                                      for s in splits if s != "val"),
        "best_fusion": html.escape(report["best_fusion"]), "slice_min": report["settings"]["slice_min_size"],
        "highlights_table": highlights_table(report), "slices_tables": slices_tables(report, report["best_fusion"]),
        "gates_figures": "".join(f'<img class="figure" alt="gates {s}" src="{figures.gates_figure(report["gates_by_slice"], s, SLICE_FAMILIES)}">'
                                 for s in splits if s != "val" and report["gates_by_slice"]),
        "mistakes": mistakes_html(report, thumbs),
    }
    return Template(template).substitute(values)


def markdown(report: dict) -> str:
    """The measured tables as Markdown (for a page of docs/): calibration, operating points, robustness."""
    splits = report["splits"]
    lines = ["| model | T | " + " | ".join(f"ECE {s} before → after" for s in splits) + " |",
             "|---|---|" + "---|" * len(splits)]
    for name, c in report["calibration"].items():
        cells = [f"{num(c['splits'][s]['before']['ece'])} → {num(c['splits'][s]['after']['ece'])}" for s in splits]
        lines.append(f"| {name} | {c['temperature']} | " + " | ".join(cells) + " |")
    lines += ["", "| model | operating point | threshold | " + " | ".join(f"{s} precision / recall / flag rate"
                                                                       for s in splits) + " |",
              "|---|---|---|" + "---|" * len(splits)]
    for name in (report["best_fusion"], report["best_expert"]):
        for op, p in report["operating_points"][name].items():
            cells = [f"{num(p[s]['precision'], '.2f')} / {num(p[s]['recall'], '.2f')} / {num(p[s]['flag_rate'], '.2f')}"
                     for s in splits]
            lines.append(f"| {name} | {op}{'' if p['reached_on_val'] else ' (not reached on val)'} | "
                         f"{p['threshold']:.3f} | " + " | ".join(cells) + " |")
    conditions = [c for c in report["robustness_conditions"] if c != "clean"]
    for s in splits:
        lines += ["", f"AUROC drop from clean, {s} ({report['robustness_samples'][s]} memes):", "",
                  "| model | clean AUROC | " + " | ".join(conditions) + " |", "|---|---|" + "---|" * len(conditions)]
        for name, per in report["robustness"].items():
            cells = [num((per[c].get(s) or {}).get("auroc_drop"), "+.3f") for c in conditions]
            lines.append(f"| {name} | {num(per['clean'][s]['auroc'])} | " + " | ".join(cells) + " |")
    summary = report["robustness_summary"]
    lines += ["", "Mean AUROC drop over conditions and splits: " + ", ".join(
        f"{k} {num(v)}" for k, v in summary["mean_auroc_drop"].items()) +
        f"; least degraded: {summary['least_degraded_fusion']}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m Step_6.html_report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--evaluation", default="reports/evaluation.json", help="the evaluate stage's report")
    parser.add_argument("--shards", default="data/shards", help="shards, for the mistakes' thumbnails")
    parser.add_argument("--template", default=str(TEMPLATE), help="HTML template with $placeholders")
    parser.add_argument("--out", default="reports/evaluation.html", help="output page")
    parser.add_argument("--summary", action="store_true", help="only print the evaluation summary and where the "
                                                               "page is (what `make run` ends with)")
    parser.add_argument("--markdown", action="store_true", help="only print the calibration, operating-point and "
                                                                "robustness tables as Markdown")
    args = parser.parse_args()
    if not Path(args.evaluation).is_file():
        raise PipelineError(f"{args.evaluation} not found; run the evaluate stage first (dvc repro evaluate)")
    report = read_json(args.evaluation)
    if args.markdown:
        print(markdown(report))
        return
    if args.summary:
        print("\n".join(summary_lines(report)))
        print(f"evaluation report: {Path(args.out).resolve().as_uri()}")
        return
    wanted = {s: {r["id"] for r in rows} for s, rows in report["mistakes"].items()}
    page = render(report, thumbnails(ShardReader(args.shards), wanted), Path(args.template).read_text(encoding="utf-8"))
    atomic_write_text(args.out, page)
    print(f"report: {Path(args.out).resolve().as_uri()} ({len(page) // 1024} KB)")


if __name__ == "__main__":
    run_cli(main)
