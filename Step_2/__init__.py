"""Step 2 — OCR manifest: image facts and the caption text read by tesseract."""
