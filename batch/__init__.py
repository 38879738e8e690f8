"""The batch layer of the CDR platform (see docs/batch.md)."""
