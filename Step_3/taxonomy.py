"""Unified label taxonomy and the mapping from every source's own label values."""
from __future__ import annotations

from dataclasses import dataclass

from core.errors import PipelineError
from core.params import check

UNLABELLED = -1


@dataclass
class TaxonomyConfig:
    """Unified classes (index = class id); `positive` is the class scored by AUROC/AUPRC."""

    classes: list[str]
    positive: str

    def __post_init__(self) -> None:
        check(len(self.classes) >= 2, "taxonomy needs at least two classes")
        check(len(set(self.classes)) == len(self.classes), "taxonomy classes must be unique")
        check(self.positive in self.classes, f"positive class {self.positive!r} is not in classes {self.classes}")


def build_taxonomy(cfg: TaxonomyConfig, sources: list[dict]) -> dict:
    """Taxonomy document: classes and, per source, its label value → unified class. A `reviews` source without a
    label_map names classes directly: each class maps to itself."""
    mapping = {}
    for source in sources:
        label_map = {str(k): v for k, v in (source.get("label_map") or {}).items()}
        if not label_map and source.get("kind") == "reviews":
            label_map = {c: c for c in cfg.classes}
        bad = sorted({v for v in label_map.values() if v not in cfg.classes})
        if bad:
            raise PipelineError(f"source '{source['name']}': label_map targets {bad} are not unified classes {cfg.classes}")
        mapping[source["name"]] = label_map
    return {"classes": list(cfg.classes), "positive": cfg.positive,
            "positive_index": cfg.classes.index(cfg.positive), "sources": mapping}


def map_label(taxonomy: dict, source: str, raw, where: str) -> int:
    """Unified class index for a raw source label; None/empty means unlabelled (-1)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return UNLABELLED
    label_map = taxonomy["sources"].get(source)
    if label_map is None:
        raise PipelineError(f"{where}: source '{source}' has no label_map in params.yaml (prepare.sources)")
    key = str(raw).strip()
    if isinstance(raw, float) and raw.is_integer():
        key = str(int(raw))
    if key not in label_map:
        raise PipelineError(f"{where}: label {raw!r} of source '{source}' is not in its label_map; "
                            f"allowed values: {sorted(label_map)}")
    return taxonomy["classes"].index(label_map[key])
