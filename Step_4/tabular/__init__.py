"""The tabular expert: an FT-Transformer over the metadata fields, pretrained by masked-feature modelling (MFM)."""
