"""Feature cache: a frozen encoder's features by content hash, so that only new memes are embedded.

data/feature_cache/<modality>/<fingerprint>.safetensors holds features (N, D) and present (N,) with the
content keys (sha256 of the bytes the encoder reads: the image, or the text) in its metadata. The
fingerprint hashes the encoder's config and weights, so another model, pooling, input size or set of
weights gets its own file and never reads stale features. Only frozen encoders use it: fine-tuned weights
differ on every run. The newest `keep` fingerprints are kept; older files are removed.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save

from core import distributed
from core.files import atomic_write_bytes

# bump when the code that turns content into features changes in a way the config and weights do not show
FEATURE_CODE_VERSION = 4


def fingerprint(encoder: torch.nn.Module, how: dict | None = None) -> str:
    """sha256 over the feature code version, the encoder's class and config, the torch version, how it runs
    (`how`: runtime and precision), and every tensor of its state dict (names, dtypes, shapes, bytes)."""
    head = {"code": FEATURE_CODE_VERSION, "class": type(encoder).__name__, "config": encoder.to_config(),
            "torch": torch.__version__.split("+")[0], **({"how": how} if how else {})}
    digest = hashlib.sha256(json.dumps(head, sort_keys=True).encode())
    for name, tensor in sorted(encoder.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:24]


class FeatureCache:
    """Content key -> (feature vector, present flag) for one encoder; `save` writes atomically."""

    def __init__(self, folder: str | Path, encoder_fingerprint: str, keep: int = 3):
        self.folder = Path(folder)
        self.path = self.folder / f"{encoder_fingerprint}.safetensors"
        self.keep = keep
        self.rows: dict[str, int] = {}
        self.features: list[torch.Tensor] = []
        self.present: list[bool] = []
        self.added = 0
        if self.path.is_file():
            self._load()

    def _load(self) -> None:
        try:
            with safe_open(str(self.path), framework="pt") as fh:
                keys = json.loads(fh.metadata()["keys"])
                features, present = fh.get_tensor("features"), fh.get_tensor("present").bool()
        except Exception:  # a damaged cache is rebuilt, never trusted
            return
        self.features = list(features)
        self.present = present.tolist()
        self.rows = {key: i for i, key in enumerate(keys)}

    def __contains__(self, key: str) -> bool:
        return key in self.rows

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, keys: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(features (N, D), present (N,) bool) for keys that are all in the cache."""
        rows = [self.rows[k] for k in keys]
        return torch.stack([self.features[i] for i in rows]), torch.tensor([self.present[i] for i in rows])

    def add(self, keys: list[str], features: torch.Tensor, present: torch.Tensor) -> None:
        for key, feature, flag in zip(keys, features, present.tolist()):
            if key not in self.rows:
                self.rows[key] = len(self.features)
                self.features.append(feature.clone())
                self.present.append(bool(flag))
                self.added += 1

    def save(self) -> None:
        """Write the cache (only when something was added) and drop all but the newest `keep` fingerprints."""
        if not self.added or not distributed.is_main():  # several processes: rank 0 writes
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        keys = sorted(self.rows, key=self.rows.get)
        atomic_write_bytes(self.path, save({"features": torch.stack(self.features).contiguous(),
                                            "present": torch.tensor(self.present, dtype=torch.uint8)},
                                           metadata={"keys": json.dumps(keys)}))
        self.added = 0
        others = sorted((p for p in self.folder.glob("*.safetensors") if p != self.path),
                        key=lambda p: p.stat().st_mtime, reverse=True)
        for old in others[max(0, self.keep - 1):]:
            old.unlink(missing_ok=True)
