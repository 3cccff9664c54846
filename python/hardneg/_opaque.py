"""How :class:`hardneg.KnownSet` and :class:`hardneg.TemporalGraph` reach the ``hardneg::`` custom ops
(:mod:`hardneg.ops._library`): each holds a :class:`Handle`, an opaque reference object that torch.compile passes
into a compiled graph as an input without looking inside. (The index classes themselves stay ordinary Python
objects, so compiled code that reads their attributes traces or graph-breaks as before.) torch < 2.10 has no
opaque objects: the handle is then a plain object and the ops that take one are not registered."""
try:
    from torch._opaque_base import OpaqueBase
    HAS_OPAQUE = True
except ImportError:  # pragma: no cover - older torch
    OpaqueBase = object
    HAS_OPAQUE = False

__all__ = ["Handle", "HAS_OPAQUE"]


class Handle(OpaqueBase):
    """The opaque handle of a known set or temporal graph: ``handle.obj`` is the object."""

    def __init__(self, obj):
        self.obj = obj

    def __repr__(self):
        return f"Handle({type(self.obj).__name__})"
