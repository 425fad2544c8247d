"""The report's matplotlib figures, each returned as a base64 PNG data URI (the page needs no files)."""
from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SPLIT_TITLES = {"val": "val", "val_unseen": "val_unseen (unseen material, for selection)", "test_seen": "test_seen",
                "test_unseen": "test_unseen (unseen material)"}


def data_uri(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def reliability_figure(reliability: dict, split: str) -> str:
    """One panel per model: accuracy against confidence per bin, before and after temperature scaling."""
    names = list(reliability)
    cols = 4
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        ax.plot([0, 1], [0, 1], color="#999", lw=1, ls="--")
        for when, style in (("before", dict(color="#d62728", marker="o")), ("after", dict(color="#1f77b4", marker="s"))):
            rows_ = reliability[name][split][when]
            ax.plot([r["confidence"] for r in rows_], [r["accuracy"] for r in rows_], ms=3, lw=1.2, label=when, **style)
        ax.set(title=name, xlim=(0.45, 1.0), ylim=(0.0, 1.0), xlabel="confidence", ylabel="accuracy")
        ax.title.set_fontsize(9)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8, loc="upper left")
    fig.suptitle(f"Reliability, {SPLIT_TITLES.get(split, split)}: before (red) and after (blue) temperature scaling")
    fig.tight_layout()
    return data_uri(fig)


def curves_figure(curves: dict, splits: list[str]) -> str:
    """ROC and precision-recall of the best expert and best fusion with bootstrap 95 % bands."""
    fig, axes = plt.subplots(2, len(splits), figsize=(4.2 * len(splits), 7.6), squeeze=False)
    colors = ["#ff7f0e", "#1f77b4"]
    for col, split in enumerate(splits):
        for color, (name, per_split) in zip(colors, curves.items()):
            c = per_split.get(split)
            if c is None:  # one class only in this split
                continue
            for row, (key, xlabel, ylabel) in enumerate((("roc", "false positive rate", "true positive rate"),
                                                         ("pr", "recall", "precision"))):
                ax = axes[row][col]
                ax.plot(c["axis"], c[key], color=color, lw=1.5, label=name)
                ax.fill_between(c["axis"], c[f"{key}_band"][0], c[f"{key}_band"][1], color=color, alpha=0.2, lw=0)
                ax.set(xlabel=xlabel, ylabel=ylabel, xlim=(0, 1), ylim=(0, 1.01),
                       title=f"{'ROC' if key == 'roc' else 'PR'} — {SPLIT_TITLES.get(split, split)}")
                ax.title.set_fontsize(9)
        axes[0][col].plot([0, 1], [0, 1], color="#999", lw=1, ls="--")
        axes[0][col].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return data_uri(fig)


def robustness_figure(robustness: dict, order: list[str], models: list[str], split: str) -> str:
    """AUROC drop from clean per condition (grouped bars, one per model) on one split."""
    conditions = [c for c in order if c != "clean"]
    fig, ax = plt.subplots(figsize=(11, 4.2))
    width = 0.8 / len(models)
    for i, name in enumerate(models):
        drops = [(robustness[name][c].get(split) or {}).get("auroc_drop") for c in conditions]
        xs = [j + i * width for j, d in enumerate(drops) if d is not None]
        ax.bar(xs, [d for d in drops if d is not None], width=width, label=name)
    ax.axhline(0, color="#333", lw=0.8)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(conditions))], conditions, rotation=30, ha="right")
    ax.set(ylabel="AUROC drop from clean", title=f"Robustness, {SPLIT_TITLES.get(split, split)} "
                                                  "(higher bar = more damage; no bar = that expert's input is missing)")
    ax.legend(fontsize=8, ncol=len(models))
    fig.tight_layout()
    return data_uri(fig)


def gates_figure(gates_by_slice: dict, split: str, families: list[str]) -> str:
    """Mean gate weight per modality for each slice value (stacked bars)."""
    per_family = gates_by_slice[split]
    families = [f for f in families if f in per_family]
    fig, axes = plt.subplots(1, len(families), figsize=(3.6 * len(families), 3.8), squeeze=False)
    for ax, family in zip(axes[0], families):
        values = per_family[family]
        labels = list(values)
        modalities = list(next(iter(values.values())))
        left = [0.0] * len(labels)
        for m in modalities:
            widths = [values[v][m] for v in labels]
            ax.barh(labels, widths, left=left, label=m)
            left = [a + b for a, b in zip(left, widths)]
        ax.set(xlim=(0, 1), title=family, xlabel="mean gate weight")
        ax.tick_params(axis="y", labelsize=7)
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"Gate weights per slice, {SPLIT_TITLES.get(split, split)}")
    fig.tight_layout()
    return data_uri(fig)
