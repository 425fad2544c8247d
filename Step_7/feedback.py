"""Reviewed labels into the labelled memory at once: a meme a reviewer labels joins the memory the service
predicts with (and memory.added, the file `python -m Step_5.memory` keeps), so the next similar meme is scored
with it, without retraining. The export (Step_7.export) brings the same labels into the next `dvc repro`."""
from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

from core.files import atomic_write_bytes
from Step_5.memory import expert_hashes, image_features, open_added
from Step_5.memory_store import memory_keys, relayout

log = logging.getLogger("moderation.feedback")
LABELLING = ("hateful", "benign")


class MemoryFeedback:
    """Adds a reviewed meme to the live memory of `engine`'s scorer and to the `added` file, in the model's thread
    (the memory is never changed while a batch reads it)."""

    def __init__(self, engine, added: str | Path):
        self.engine, self.added = engine, Path(added)

    def __call__(self, item_id: str, image: bytes, text: str | None, current_label: Callable[[], str | None]) -> bool:
        """Add the meme under the label the store holds when the model thread gets to it, so that two reviews in
        quick succession leave the memory with the store's final label."""
        scorer = self.engine.scorer
        if scorer is None or scorer.predictor.memory is None:
            return False
        return self.engine.model_pool.submit(self._add, scorer.predictor, f"review-{item_id}", image, text,
                                             current_label).result()

    def _add(self, predictor, meme_id: str, image: bytes, text: str | None,
             current_label: Callable[[], str | None]) -> bool:
        label = current_label()
        if label is None:
            return False
        with tempfile.TemporaryDirectory(prefix="review-") as tmp:
            path = Path(tmp) / "meme"
            atomic_write_bytes(path, image)
            feats, present, _ = image_features(predictor, [path], text)
        layout = [(m, feats[m].shape[1], 1.0) for m in predictor.modalities]
        keys = memory_keys(feats, present, layout)
        index = predictor.classes.index(label)
        hashes = expert_hashes(predictor)
        added = open_added(self.added, predictor.classes, predictor.info.get("positive_index", -1), layout,
                           {"experts": hashes})
        if added.notes.get("experts", hashes) != hashes or added.classes != predictor.classes:
            log.warning("%s holds memes keyed by other experts; %s joins the live memory only", self.added, meme_id)
        else:
            added.add([meme_id], keys, [index])
            added.save(self.added)
        live = predictor.memory
        live.add([meme_id], relayout(keys, layout, live.layout), [index])
        log.info("memory: %s added as %s (%d memes)", meme_id, label, len(live))
        return True


class ReviewsIntoMemory:
    """A label store whose `review` also feeds labelled memes to `feedback`; every other call goes to `store`."""

    def __init__(self, store, feedback: MemoryFeedback):
        self.store, self.feedback = store, feedback

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    def review(self, item_id: str, **kwargs) -> dict:
        event = self.store.review(item_id, **kwargs)
        if event["action"] in LABELLING:
            try:
                image, _ = self.store.image(item_id)
                event["memory"] = self.feedback(item_id, image, self.store.item(item_id).get("text"),
                                                lambda: self.store.item(item_id).get("label"))
            except Exception:  # noqa: BLE001 - the label is stored; the memory catches up at the next build
                log.exception("memory: %s could not be added", item_id)
                event["memory"] = False
        return event
