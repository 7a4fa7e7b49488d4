"""The runnable examples in the API's docstrings stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "api.app",
    "api.auth",
    "api.body_limit",
    "api.bundle_store",
    "api.bundle_upload",
    "api.errors",
    "api.group_commit",
    "api.metrics",
    "api.runtime",
    "api.schemas",
    "api.settings",
    "tests.fuzz_messages",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
