"""The tables and lines of the results pages (README.md, docs/results.md), and the helpers every generator of
tools.docs_numbers shares: reading the metrics files, mean ± std cells, Markdown tables."""
from __future__ import annotations

import json
from pathlib import Path

SPLITS = ("val", "val_unseen", "test_seen", "test_unseen")
TESTS = ("test_seen", "test_unseen")


class DocsError(Exception):
    """A missing metrics file, an unknown region name or an unclosed region."""


class Metrics:
    """The metrics files of one folder, each read once: metrics.get("comparison") is metrics/comparison.json."""
    def __init__(self, folder: Path):
        self.folder, self.files = folder, {}

    def get(self, name: str) -> dict:
        if name not in self.files:
            path = self.folder / f"{name}.json"
            if not path.is_file():
                raise DocsError(f"{path} is missing (it is written by `dvc repro`)")
            self.files[name] = json.loads(path.read_text(encoding="utf-8"))
        return self.files[name]


def pm(scores: dict, key: str, digits: int = 3) -> str:
    """'0.751 ± 0.002' (mean ± std over seeds or folds), or the bare value when there is no std."""
    value = f"{scores[key]:.{digits}f}"
    return f"{value} ± {scores[key + '_std']:.{digits}f}" if key + "_std" in scores else value


def signed(value: float, digits: int = 3) -> str:
    return f"{value:+.{digits}f}"


def scored(*found: dict, splits: tuple[str, ...] = SPLITS) -> tuple[str, ...]:
    """The splits every given dict holds, in order (val_unseen only where the data has one)."""
    return tuple(s for s in splits if all(s in d for d in found))


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def marked(comparison: dict, name: str) -> str:
    best = name in (comparison["best_expert"], comparison["best_fusion"])
    return f"{name} *" if best else name


def with_ensembles(comparison: dict):
    """(label, kind, scores per split) per model: its mean ± std over seeds, then its seed ensemble, experts
    first."""
    for name, model in sorted(comparison["models"].items(), key=lambda item: (item[1]["kind"], item[0])):
        yield marked(comparison, name), model["kind"], model
        if "ensemble" in model:
            yield f"{name} ensemble", "seed ensemble", model["ensemble"]


def results_table(m: Metrics) -> list[str]:
    """Headline: AUROC per split and macro-F1 on the test splits, mean ± std over seeds, and each model's seed
    ensemble below it, 3 decimals."""
    comparison = m.get("comparison")
    splits, tests = scored(*comparison["models"].values()), scored(*comparison["models"].values(), splits=TESTS)
    header = ["model", "kind"] + [f"{s} AUROC" for s in splits] + [f"{s} macro-F1" for s in tests]
    rows = [[label, kind] + [pm(scores[s], "auroc") for s in splits] + [pm(scores[s], "macro_f1") for s in tests]
            for label, kind, scores in with_ensembles(comparison)]
    return table(header, rows)


def results_full(m: Metrics) -> list[str]:
    """Every figure of comparison.json: AUROC, macro-F1 and accuracy per split, 4 decimals."""
    comparison = m.get("comparison")
    keys = (("auroc", "AUROC"), ("macro_f1", "macro-F1"), ("accuracy", "accuracy"))
    splits = scored(*comparison["models"].values())
    header = ["model", "kind"] + [f"{s} {label}" for key, label in keys for s in splits]
    rows = [[label, kind] + [pm(scores[s], key, 4) for key, _ in keys for s in splits]
            for label, kind, scores in with_ensembles(comparison)]
    return table(header, rows)


def versus(diff: dict) -> str:
    """'+0.104 (beyond seed noise 0.007)' for one {diff, seed_noise, beyond_noise}."""
    where = "beyond" if diff["beyond_noise"] else "within"
    return f"{signed(diff['diff'])} ({where} seed noise {diff['seed_noise']:.3f})"


def bootstrap_lines(comparison: dict) -> list[str]:
    lines = []
    for split, test in sorted(comparison.get("paired_bootstrap_test", {}).items()):
        low, high = test["ci95"]
        lines.append(f"- paired bootstrap over the memes, the two seed ensembles, {split}: AUROC gain {signed(test['auroc_gain'])}, "
                     f"95 % interval [{signed(low)}, {signed(high)}]")
    return lines


def results_headline(m: Metrics) -> list[str]:
    """README bullets: best fusion vs best expert, the paired bootstrap, false positives on unfamiliar memes."""
    comparison, fpr, fusion = m.get("comparison"), m.get("unfamiliar")["methods"], m.get("comparison")["best_fusion"]
    chosen = comparison.get("selected_on", "val AUROC").split(" (")[0]
    gain = comparison.get("deployed_minus_best_expert") or comparison["fusion_minus_best_expert"]
    lines = [f"- deployed model (the seed ensemble of `{fusion}`) vs best expert `{comparison['best_expert']}` "
             f"(its seed ensemble; both chosen on {chosen}), AUROC: test_seen {versus(gain['test_seen']['auroc'])}, "
             f"test_unseen {versus(gain['test_unseen']['auroc'])}"]
    lines += bootstrap_lines(comparison)
    method = fusion.removeprefix("fusion_")
    if method in fpr:
        others = ", ".join(f"{k} {v['fpr']:.0%}" for k, v in sorted(fpr.items()) if k != method)
        lines.append(f"- benign memes of unfamiliar material flagged as hateful: {method} {fpr[method]['fpr']:.0%} "
                     f"({others})")
    return lines


def results_diffs(m: Metrics) -> list[str]:
    """Every difference compare reports, with its seed noise: 2·sqrt(std_a² + std_b²) per seed, divided by
    sqrt(seeds) between seed ensembles."""
    comparison = m.get("comparison")
    fusion, lines = comparison["best_fusion"], []
    if "deployed_minus_best_expert" in comparison:
        diff = comparison["deployed_minus_best_expert"]
        lines.append(f"- seed ensembles, {fusion} − {comparison['best_expert']}: " + "; ".join(
            f"{split} AUROC {versus(diff[split]['auroc'])}, macro-F1 {versus(diff[split]['macro_f1'])}"
            for split in scored(diff, splits=TESTS)))
    for against, diff in [(comparison["best_expert"], comparison["fusion_minus_best_expert"])] + sorted(
            comparison["best_fusion_minus_other_fusions"].items()):
        lines.append(f"- per seed, {fusion} − {against}: " + "; ".join(
            f"{split} AUROC {versus(diff[split]['auroc'])}, macro-F1 {versus(diff[split]['macro_f1'])}"
            for split in scored(diff, splits=TESTS)))
    return lines + bootstrap_lines(comparison)


def models_of(m: Metrics, kind: str) -> list[str]:
    return sorted(name for name, model in m.get("comparison")["models"].items() if model["kind"] == kind)


def adaptation(m: Metrics) -> list[str]:
    """The adaptation curves: AUROC mean ± std over draws per k, the head alone on the same sets, the gain."""
    curves = m.get("adaptation")["curves"]
    ks = sorted({int(k[1:]) for cells in curves.values() for k in cells})

    def cell(found: dict | None, key: str = "auroc") -> str:
        if not found or found.get(key) is None:
            return "-"
        return f"{found[key]:.3f}" + (f" ± {found['auroc_std']:.3f}" if key == "auroc" and found.get("auroc_std") else "")

    rows = [[curve] + [cell(cells.get(f"k{k}")) for k in ks] + [cell(cells.get(f"k{ks[0]}"), "head_auroc"),
            signed(cells[f"k{ks[-1]}"]["gain_over_k0"]) if cells.get(f"k{ks[-1]}", {}).get("gain_over_k0") is not None
            else "-"] for curve, cells in curves.items()]
    return table(["curve"] + [f"k={k}" for k in ks] + ["head, same sets", f"gain k={ks[-1]} over k={ks[0]}"], rows)
