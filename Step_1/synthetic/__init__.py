"""Built-in synthetic meme source: caption grammar, scenes, label rule, simulated annotators, held-out pools."""
