"""Step 4 — experts: one classifier per modality, each an encoder plus an MLP head.

Layout: one folder per modality — text/ (transformers, DACT adaptive depth), vision/ (timm, CLIP / SigLIP image
towers), tabular/ (FT-Transformer, MFM pretraining), temporal/ (engagement-series encoders) — each with its
config.py (params section) and plugin.py (build / rebuild / train / fold_trainer), registered in registry.py.
Shared beside them: the training engine (engine.py), the recipes (recipes.py), feature extraction and its
content-keyed cache (features/), the inference runtimes (runtime.py) and the stage CLI (train_expert.py).
"""
