"""Step 5 — fusion: concat, gated mixture-of-experts, transformer and late fusion over the experts."""
