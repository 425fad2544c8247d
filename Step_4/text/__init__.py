"""The text expert: a transformer (bundled MiniLM by default) or CLIP / SigLIP text tower; DACT adaptive depth."""
