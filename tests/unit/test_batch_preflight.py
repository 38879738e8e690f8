"""The batch commands' input and name checks (batch.preflight), on local folders through Hadoop's
file system as the batch layer reads them: each broken layout gets the one line that names it."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from batch.preflight import check_input, check_labels, check_names
from batch.testing import spark  # noqa: F401  (spark: session-scoped fixture)
from cdr.errors import BadInput

pytestmark = pytest.mark.spark
D1 = dt.date(2026, 1, 5)


def _dataset(root: Path) -> Path:
    """The layout the batch layer lands, with one tiny file per folder (contents are not read)."""
    for folder in ("subscribers", "cells", f"cdr/record_type=voice/date={D1}", f"cdr/record_type=sms/date={D1}",
                   "labels"):
        (root / folder).mkdir(parents=True)
        (root / folder / "part-0.parquet").write_bytes(b"PAR1")
    (root / "manifest.json").write_text('{"seed": 7}')
    return root


def test_a_complete_layout_passes_and_gives_its_days(spark, tmp_path):
    src = _dataset(tmp_path / "ds")
    assert check_input(spark, f"file://{src}", None, reference=True) == [D1]
    assert check_input(spark, f"file://{src}", [D1, D1 + dt.timedelta(days=1)], reference=True) == [D1]
    check_labels(spark, f"file://{src}")


def _broken(src: Path, change: str) -> None:
    match change:
        case "missing":
            shutil.rmtree(src)
        case "empty":
            shutil.rmtree(src)
            src.mkdir()
        case "no-subscribers":
            shutil.rmtree(src / "subscribers")
        case "empty-cells":
            (src / "cells" / "part-0.parquet").unlink()
        case "unknown-format":
            (src / f"cdr/record_type=voice/date={D1}/notes.xlsx").write_bytes(b"x")
        case "mixed-formats":
            (src / f"cdr/record_type=voice/date={D1}/part-1.csv").write_text("a\n")
        case "unknown-type":
            (src / "cdr/record_type=fax").mkdir()
        case "bad-date":
            (src / "cdr/record_type=voice/date=yesterday").mkdir()
        case "no-cdrs":
            shutil.rmtree(src / "cdr")
        case "bad-manifest":
            (src / "manifest.json").write_text('{"seed": ')


@pytest.mark.parametrize("change, message", [
    ("missing", "does not exist"),
    ("empty", "is empty"),
    ("no-subscribers", "has no subscribers/ folder"),
    ("empty-cells", "cells holds no data files"),
    ("unknown-format", "notes.xlsx is not a data file"),
    ("mixed-formats", "mixes file formats (csv, parquet)"),
    ("unknown-type", "record_type=fax is not a record type folder"),
    ("bad-date", "date=yesterday is not a date=YYYY-MM-DD folder"),
    ("no-cdrs", "holds no CDR partitions"),
    ("bad-manifest", "manifest.json is not valid JSON"),
])
def test_each_broken_layout_is_named(spark, tmp_path, change, message):
    src = _dataset(tmp_path / "ds")
    _broken(src, change)
    with pytest.raises(BadInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_input(spark, f"file://{src}", None, reference=True)


def test_days_the_input_does_not_hold_are_refused(spark, tmp_path):
    src = _dataset(tmp_path / "ds")
    with pytest.raises(BadInput, match=r"holds no CDRs of 2026-02-01.*\n?") as raised:
        check_input(spark, f"file://{src}", [dt.date(2026, 2, 1)], reference=True)
    assert raised.value.hint == f"it holds {D1} to {D1}"


def test_a_reference_only_drop_lands_for_the_days_asked(spark, tmp_path):
    src = _dataset(tmp_path / "ds")
    shutil.rmtree(src / "cdr")
    assert check_input(spark, f"file://{src}", [D1], reference=True) == [D1]


def test_the_bronze_landing_needs_no_reference_folders(spark, tmp_path):
    src = _dataset(tmp_path / "ds")
    shutil.rmtree(src / "subscribers")
    shutil.rmtree(src / "cells")
    assert check_input(spark, f"file://{src}", None, reference=False) == [D1]


@pytest.mark.parametrize("remove, message", [("labels", "holds no labels"), ("manifest.json", "holds no manifest.json")])
def test_labels_must_be_a_generated_dataset(spark, tmp_path, remove, message):
    src = _dataset(tmp_path / "ds")
    target = src / remove
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(BadInput, match=message):
        check_labels(spark, f"file://{src}")
    with pytest.raises(BadInput, match="do not exist"):
        check_labels(spark, f"file://{tmp_path}/nowhere")


@pytest.mark.parametrize("root, prefix", [
    (None, "it_"), ("hdfs://127.0.0.1:9000/cdr", ""), ("file:///tmp/cdr-it/batch-1", "x1_"), ("/data/cdr", ""),
])
def test_plain_names_pass(root, prefix):
    check_names(root, prefix)


@pytest.mark.parametrize("root, prefix, option", [
    (None, "it'; DROP DATABASE cdr_dw; --", "--db-prefix"),
    (None, "My Prefix", "--db-prefix"),
    (None, "x" * 33, "--db-prefix"),
    ("hdfs://h:9000/cdr' x", "", "--root"),
    ("/tmp/with space", "", "--root"),
    ("relative/path", "", "--root"),
])
def test_names_that_would_reach_sql_unquoted_are_refused(root, prefix, option):
    with pytest.raises(BadInput, match=f"^{option} "):
        check_names(root, prefix)
