"""Step 3 — shard: label taxonomy, leakage-safe splits, WebDataset shards and the shard reader."""
