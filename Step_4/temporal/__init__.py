"""The temporal expert: a 1D-CNN or transformer over a meme's hourly engagement series."""
