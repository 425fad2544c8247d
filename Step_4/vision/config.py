"""params.yaml section vision_expert as dataclasses (no runtime code: importing this module is cheap)."""
from __future__ import annotations

from dataclasses import dataclass

from Step_4.config import ShardExpertConfig


@dataclass
class VisionExpertConfig(ShardExpertConfig):
    model: str = "tf_efficientnet_lite0"  # any timm model name, or hf:<CLIP / SigLIP folder or hub id>
    weights: str = "bundled"  # timm: bundled | hub | none | path to a weights file; hf: pretrained | none
    projection: bool = False  # hf: CLIP / SigLIP image tower's projected, L2-normalised embedding
    trainable_blocks: int = 1  # finetune: top layer groups (timm group_matcher stages) to train (-1: all)

    @property
    def trainable(self) -> int:
        return self.trainable_blocks
