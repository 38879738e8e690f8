"""The serving layer: the batch and speed layers' views merged in PostgreSQL (docs/serving.md)."""
