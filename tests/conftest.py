"""Fixtures shared by every test package.

``local_stack`` brings the real services up once per test session through the same code as
`cdr stack up` (a running stack is reused, only probed) and leaves them running afterwards:
the next session or a developer reuses them, `cdr stack down` stops them. The services run
detached in their own sessions, so pytest exits without waiting for them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from stack.lifecycle import Stack


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """STACK_TESTS=0 skips the tests that need the local stack (see the Makefile)."""
    if os.environ.get("STACK_TESTS") != "0":
        return
    skip = pytest.mark.skip(reason="STACK_TESTS=0: the local stack is not used in this run")
    for item in items:
        if "stack" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def local_stack() -> Stack:
    from stack.lifecycle import Stack

    stack = Stack.from_settings()
    stack.up()
    return stack
