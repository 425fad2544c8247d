"""Step 7: serve the deployed model over HTTP, queue memes for review, and turn reviews back into labels."""
