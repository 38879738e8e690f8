"""Realistic, labelled, vectorised CDR generator (see docs/generator.md)."""
