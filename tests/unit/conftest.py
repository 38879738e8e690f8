"""Small generated datasets shared by the unit tests (generated once per test session)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from generator.dataset import GenerateOptions, generate_dataset

SMALL = dict(subscribers=5000, days=2, start=dt.date(2025, 12, 31), seed=7, defect_rate=0.01)


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory) -> dict[str, Path]:
    """One small dataset per file format, spanning New Year's Eve."""
    root = tmp_path_factory.mktemp("datasets")
    out = {}
    for fmt in ("parquet", "csv", "jsonl"):
        out[fmt] = generate_dataset(GenerateOptions(out=root / fmt, file_format=fmt, **SMALL)).out
    return out
