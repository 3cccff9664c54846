"""The base class that lets :class:`hardneg.KnownSet` and :class:`hardneg.TemporalGraph` be passed to
``torch.library`` custom ops as opaque reference objects (:mod:`hardneg.ops._library`). torch < 2.10 has no
opaque objects: the base is then ``object`` and the ops that take these objects are not registered."""
try:
    from torch._opaque_base import OpaqueBase
    HAS_OPAQUE = True
except ImportError:  # pragma: no cover - older torch
    OpaqueBase = object
    HAS_OPAQUE = False

__all__ = ["OpaqueBase", "HAS_OPAQUE"]
