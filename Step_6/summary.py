"""The few lines `make run` and the evaluate stage print about an evaluation report."""
from __future__ import annotations


def fmt(value, spec: str = ".3f", missing: str = "n/a") -> str:
    """A number formatted, or `missing` for a figure that does not exist (e.g. AUROC of a one-class slice)."""
    return missing if value is None else format(value, spec)


def summary_lines(report: dict) -> list[str]:
    best, expert = report["best_fusion"], report["best_expert"]
    lines = []
    for s in ("test_seen", "test_unseen"):
        if s not in report["splits"]:
            continue
        c = report["calibration"][best]["splits"][s]
        p = report["paired"][f"{best}_vs_{expert}"][s]
        op = report["operating_points"][best]["max_f1"][s]
        lines.append(f"{s}: {best} ECE {fmt(c['before']['ece'])} -> {fmt(c['after']['ece'])} (T="
                     f"{report['calibration'][best]['temperature']}); AUROC gain over {expert} {fmt(p['diff'], '+.3f')} "
                     f"[{fmt(p['ci95'][0], '+.3f')}, {fmt(p['ci95'][1], '+.3f')}]; at max-F1 precision "
                     f"{fmt(op['precision'], '.2f')} recall {fmt(op['recall'], '.2f')}")
    summary = report["robustness_summary"]
    lines.append(f"robustness: least degraded fusion {summary['least_degraded_fusion']} (mean AUROC drop "
                 f"{summary['mean_auroc_drop'].get(summary['least_degraded_fusion'])})")
    return lines
