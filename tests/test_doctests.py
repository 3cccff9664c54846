"""The docstring examples of the public modules run and print what they say (``+SKIP`` ones excepted)."""
import doctest
import importlib

import pytest

MODULES = ["hardneg.ops.mining", "hardneg.ops.filtering", "hardneg.ops.temporal", "hardneg.known", "hardneg.temporal",
           "hardneg.samplers", "hardneg.samplers.base", "hardneg.samplers.basic", "hardneg.samplers.hard",
           "hardneg.samplers.khop", "hardneg.samplers.scorers", "hardneg.losses", "hardneg.metrics"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(mod, name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = []
    for t in tests:
        runner.run(t, out=report.append)
    assert runner.failures == 0, "".join(report)


def test_every_public_module_has_examples():
    examples = sum(len(t.examples) for name in MODULES
                   for t in doctest.DocTestFinder().find(importlib.import_module(name), name))
    assert examples >= 20
