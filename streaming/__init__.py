"""The streaming layer of the CDR platform (see docs/streaming.md)."""
