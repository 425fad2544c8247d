"""Step 1 — prepare: unified meme records from every configured source."""
