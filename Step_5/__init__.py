"""Step 5 — fusion: concat, gated mixture-of-experts, transformer, late, align (contrastive alignment) and cross
(outer-product interaction) heads over the experts' embeddings (train_fusion.py, models.py), end-to-end
fine-tuning (finetune.py) and prediction on new memes (predict.py). studies/ holds what is not fusion training:
compare, crossval, ablation, unfamiliar."""
