"""Every docstring example in kerasft runs as written: examples a user can paste, checked like code."""

from __future__ import annotations

import doctest
import importlib

import pytest

# module -> the fewest examples it holds, so that examples lost by mistake show as a failure too
MODULES = {
    "accumulation": 1,
    "activations": 3,
    "class_weights": 1,
    "cli": 1,
    "model": 1,
    "optimization": 1,
    "optimizer": 8,
    "recipe": 1,
}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    results = doctest.testmod(importlib.import_module(f"kerasft.{name}"))
    assert results.attempted >= MODULES[name] and results.failed == 0
