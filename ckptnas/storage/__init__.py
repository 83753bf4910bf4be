"""Everything a run keeps on disk, and the only code that touches those files.

:class:`RunDir` names every file of a run, holds its lock and says what a folder holds. The
SQLite registries (:class:`LineageRegistry` for the search, :class:`TopKRegistry` for full
training) share one base with a schema version; :class:`CheckpointStore` keeps each candidate's
tensors as a safetensors file with per-tensor hashes (tensors a frozen child inherited unchanged
stay in its donor's file, shared as a blob); ``results.nc`` and ``topk.nc`` are the
labelled xarray views of the registries. Every file is replaced atomically, never rewritten in
place.

Storage defines the records it keeps (:class:`Transfer`, :class:`CandidateOutcome`,
:class:`FullTrainOutcome`, :class:`RunMeta`, :class:`CandidateRecord`); the layers above build
them and hand them over, so nothing here imports the search, the runtime or full training, not
even for type checking (``tests/test_layout.py`` reads the source to make sure).

May import: :mod:`ckptnas.space` (for the architecture type), :mod:`ckptnas.config`,
:mod:`ckptnas.plugins`, :mod:`ckptnas.errors`. torch is imported with the checkpoint store only.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
