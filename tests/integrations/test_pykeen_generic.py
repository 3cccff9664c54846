"""PyKEEN's generic negative-sampler test case, run for every hardneg sampler behind ``HardNegativeSampler``.

The case is ``NegativeSamplerGenericTestCase`` from pykeen/pykeen ``tests/test_sampling/cases.py``
(https://github.com/pykeen/pykeen/blob/master/tests/test_sampling/cases.py, built on ``unittest_templates``).
The PyKEEN 1.11.1 wheel does not ship its tests, so this module imports the class when a PyKEEN source checkout
makes it importable (``tests.test_sampling.cases`` with ``unittest_templates`` installed) and otherwise runs
:class:`GenericCase`, a faithful re-statement of its five checks:

* ``test_instance`` (from ``unittest_templates.GenericTestCase``): the instance is of the class under test;
* ``test_sample_no_filter``, ``test_sample_set_filtered`` (``filterer=PythonSetFilterer``) and
  ``test_sample_bloom_filtered`` (``filterer=BloomFilterer``), each through ``check_sample``: with a filterer the
  mask is a bool ``(batch_size, num_negs_per_pos)`` tensor, without one it is None; the negatives have shape
  ``(batch, num_negs_per_pos, 3)``; heads, relations and tails are in range; where the mask keeps a negative,
  it differs from its positive;
* ``test_small_batch``: sampling a batch of one positive works.

Set-up as in the original (its PyKEEN 1.11-era version): Nations' training triples, 16 positives drawn with
``numpy.random.RandomState(42)`` from ``BatchedSLCWAInstances.from_triples_factory``, ``num_negs_per_pos=10``.
Samplers that need the model run without one here (PyKEEN builds samplers from the triples alone): they
fall back to filtered uniform negatives and warn once, which these tests expect.
"""
import importlib
import unittest
import warnings

import pytest
import torch

pytest.importorskip("pykeen", reason="PyKEEN is not installed (extra hardneg[pykeen])")

import numpy  # noqa: E402
from pykeen.datasets import Nations  # noqa: E402
from pykeen.sampling.filtering import BloomFilterer, PythonSetFilterer  # noqa: E402
from pykeen.triples.instances import BatchedSLCWAInstances  # noqa: E402

from hardneg import samplers  # noqa: E402
from hardneg.integrations.pykeen import HardNegativeSampler  # noqa: E402


def _pykeen_case():
    try:
        mod = importlib.import_module("tests.test_sampling.cases")
        return getattr(mod, "NegativeSamplerGenericTestCase", None)
    except Exception:  # noqa: BLE001  (no PyKEEN checkout, no unittest_templates, or our own tests package)
        return None


def _array_check_bounds(array, low, high) -> bool:
    return bool((low <= array).all() and (array < high).all())


class GenericCase(unittest.TestCase):
    """Re-statement of PyKEEN's ``NegativeSamplerGenericTestCase`` (see the module docstring)."""

    __test__ = False  # abstract: the subclasses below run it
    cls = None
    kwargs = {"num_negs_per_pos": 10}
    batch_size = 16
    seed = 42

    def setUp(self):
        if self.cls is None:
            self.skipTest("abstract case")
        self.triples_factory = _nations_training()
        self.training_instances = BatchedSLCWAInstances.from_triples_factory(self.triples_factory)
        random_state = numpy.random.RandomState(seed=self.seed)
        batch_indices = random_state.randint(low=0, high=len(self.training_instances), size=(self.batch_size,))
        self.positive_batch = self.training_instances.mapped_triples[batch_indices]
        self.instance_kwargs = dict(self.kwargs, mapped_triples=self.triples_factory.mapped_triples,
                                    num_entities=self.triples_factory.num_entities,
                                    num_relations=self.triples_factory.num_relations)
        self.instance = self.cls(**self.instance_kwargs)

    def test_instance(self):
        self.assertIsInstance(self.instance, self.cls)

    def check_sample(self, instance):
        negative_batch, batch_filter = instance.sample(positive_batch=self.positive_batch)
        if instance.filterer is not None:
            assert batch_filter is not None
            assert batch_filter.shape == (self.batch_size, instance.num_negs_per_pos)
            assert batch_filter.dtype == torch.bool
        else:
            assert batch_filter is None
        assert negative_batch.shape == (self.positive_batch.shape[0], instance.num_negs_per_pos, 3)
        tf = self.triples_factory
        assert _array_check_bounds(negative_batch[..., 0], low=0, high=tf.num_entities)
        assert _array_check_bounds(negative_batch[..., 1], low=0, high=tf.num_relations)
        assert _array_check_bounds(negative_batch[..., 2], low=0, high=tf.num_entities)
        if instance.filterer is not None:
            positive_batch = self.positive_batch.unsqueeze(dim=1).repeat(1, instance.num_negs_per_pos, 1)
            positive_batch = positive_batch[batch_filter]
            negative_batch = negative_batch[batch_filter]
            assert (negative_batch != positive_batch).any(dim=-1).all()

    def test_sample_no_filter(self):
        self.check_sample(self.instance)

    def test_sample_set_filtered(self):
        self.check_sample(self.cls(**self.instance_kwargs, filterer=PythonSetFilterer))

    def test_sample_bloom_filtered(self):
        self.check_sample(self.cls(**self.instance_kwargs, filterer=BloomFilterer))

    def test_small_batch(self):
        self.instance.sample(positive_batch=self.positive_batch[:1])


_NATIONS = []


def _nations_training():
    if not _NATIONS:
        _NATIONS.append(Nations().training)
    return _NATIONS[0]


_BASE = _pykeen_case() or GenericCase
USING_PYKEEN_CASE = _BASE is not GenericCase

for _name in samplers.available():
    _cls = type(f"Test_HardNegativeSampler_{_name}", (_BASE,),
                {"cls": HardNegativeSampler, "kwargs": {"num_negs_per_pos": 10, "sampler": _name, "seed": 0},
                 "__module__": __name__, "__test__": True})
    globals()[_cls.__name__] = _cls
del _cls, _name


@pytest.fixture(autouse=True)
def _quiet_fallback():
    """The samplers that mine with the model warn once that they fall back to uniform without one."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="HardNegativeSampler: sampler", category=UserWarning)
        yield
