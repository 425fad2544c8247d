"""Studies over the trained experts and fusion heads: the comparison with seed noise (compare.py, printed by
comparison_table.py), grouped cross-validation (crossval.py, folds.py), modality ablation (ablation.py) and the
false-positive rate on unfamiliar benign memes (unfamiliar.py)."""
