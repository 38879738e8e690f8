"""A resume that would drop state is refused, naming the operators (streaming/jobs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdr.errors import BadInput
from streaming.jobs import _refuse_state_loss

# Flink's own words when a checkpoint's state has no operator left in the new plan (seen on this
# stack after the detection job's SQL changed: `cdr stream start` exit 2, docs/streaming.md).
FLINK_REFUSAL = (
    "java.lang.IllegalStateException: Failed to rollback to checkpoint/savepoint file:/x/chk-144. Cannot map "
    "checkpoint/savepoint state for operator 4e6b828534cd2fdbaa7dbb26e9aa8211 to the new program, because the "
    "operator is not available in the new program. If you want to allow to skip this, you can set the "
    "--allowNonRestoredState option on the CLI.")


def test_a_restore_that_would_drop_state_is_refused_naming_the_operator_and_the_way_out():
    with pytest.raises(BadInput) as refused:
        _refuse_state_loss("cdr-detection", Path("/x/chk-144"), "submitting...\n" + FLINK_REFUSAL + "\n" + FLINK_REFUSAL)
    assert "cdr-detection's plan changed since /x/chk-144" in str(refused.value)
    assert "operator 4e6b828534cd2fdbaa7dbb26e9aa8211 cannot be restored" in str(refused.value)
    assert "--allow-state-loss" in refused.value.hint and "--fresh" in refused.value.hint


def test_other_failures_and_fresh_starts_are_not_mistaken_for_state_loss():
    _refuse_state_loss("cdr-detection", Path("/x/chk-1"), "java.net.ConnectException: Connection refused")
    _refuse_state_loss("cdr-detection", None, FLINK_REFUSAL)  # nothing was restored: not this refusal
