"""The vision expert: a timm backbone (bundled EfficientNet-Lite0 by default) or a CLIP / SigLIP image tower."""
