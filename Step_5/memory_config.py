"""The `memory` section of params.yaml: the few-shot labelled memory and its adaptation study (no runtime code)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from core.params import check
from Step_3.splits import SPLITS, TESTS, UNSEEN
from Step_4.registry import modalities

EVALUATION = (*UNSEEN, *TESTS)  # scored by the study or the report: never part of the base memory


@dataclass
class AdaptationStudyConfig:
    """Stage `adaptation`: AUROC on test_unseen as k labelled memes of each new trend join the memory."""

    k: list[int] = field(default_factory=lambda: [0, 5, 10, 25])  # memes per trend added (sorted, 0 = base only)
    draws: int = 3  # pools drawn per trend kind, seeds seed, seed + 1, ...
    seed: int = 0
    finetune_weight: float = 5.0  # sample weight of the new memes in the fine-tuned comparison
    sweep_weights: list[float] = field(default_factory=lambda: [0.3, 0.5, 0.7])  # grid on val_unseen, k = 0
    sweep_temperatures: list[float] = field(default_factory=lambda: [0.05, 0.1])

    def __post_init__(self) -> None:
        check(bool(self.k) and all(k >= 0 for k in self.k), f"study.k must be non-negative counts, got {self.k}")
        check(self.k == sorted(set(self.k)), f"study.k must be sorted without repeats, got {self.k}")
        check(self.draws >= 1, f"study.draws must be >= 1, got {self.draws}")
        check(self.finetune_weight > 0, f"study.finetune_weight must be > 0, got {self.finetune_weight}")
        check(all(0 <= w <= 1 for w in self.sweep_weights), "study.sweep_weights must lie in [0, 1]")
        check(all(t > 0 for t in self.sweep_temperatures), "study.sweep_temperatures must be > 0")


@dataclass
class MemoryConfig:
    # key = concatenation of each modality's L2-normalised expert features times its weight
    modalities: dict[str, float] = field(default_factory=lambda: {"text": 1.0, "vision": 0.5})
    splits: list[str] = field(default_factory=lambda: ["train", "val"])  # labelled rows of these form the base
    neighbours: int = 32  # labels voting per query
    temperature: float = 0.1  # softmax(similarity / temperature) weights the votes
    weight: float = 0.7  # combined = (1 - weight) * head + weight * kNN
    combine: Literal["interpolate"] = "interpolate"
    index: Literal["exact", "faiss"] = "exact"  # faiss needs `pip install faiss-cpu`
    added: str = "memory/added.safetensors"  # users' additions (git-ignored, outside DVC)
    study: AdaptationStudyConfig = field(default_factory=AdaptationStudyConfig)

    def __post_init__(self) -> None:
        unknown = [m for m in self.modalities if m not in modalities()]
        check(bool(self.modalities) and not unknown,
              f"modalities: unknown {unknown}; allowed: {list(modalities())}")
        check(all(w > 0 for w in self.modalities.values()), f"modalities: weights must be > 0, got {self.modalities}")
        # one fixed order, so the key layout does not depend on how params.yaml lists them
        self.modalities = {m: float(self.modalities[m]) for m in modalities() if m in self.modalities}
        evaluation = [s for s in self.splits if s in EVALUATION]
        check(not evaluation, f"splits: {evaluation} are evaluation splits; the base memory holds only "
                              f"{[s for s in SPLITS if s not in EVALUATION]} (users add other memes with "
                              "`python -m Step_5.memory add`)")
        bad = [s for s in self.splits if s not in SPLITS]
        check(bool(self.splits) and not bad, f"splits: unknown {bad}; allowed: {list(SPLITS)}")
        check(self.neighbours >= 1, f"neighbours must be >= 1, got {self.neighbours}")
        check(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")
        check(0 <= self.weight <= 1, f"weight must be in [0, 1], got {self.weight}")
