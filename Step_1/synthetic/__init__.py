"""Built-in synthetic meme source: real photos and drawn scenes, captions, metadata, labels."""
