"""Step 4 — experts: text (transformers), vision (timm) and tabular (FT-Transformer) classifiers."""
