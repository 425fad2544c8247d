"""Feature extraction for the experts: batches from the shards, passes over every split, the content-keyed cache."""
