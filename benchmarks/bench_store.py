"""The checkpoint store: saving a candidate and partially loading a donor, by model size.

The models are ckptnas candidates (a :class:`~ckptnas.space.SearchSpace` with one input and six
dense trunk layers of width ``w``, so about ``6 w**2`` parameters): 100k, 10M and 100M float32
parameters, i.e. 0.4 MB, 40 MB and 400 MB checkpoints. A partial load reads the first half of
the layers, what a child whose middle node mutated takes.
"""

from __future__ import annotations

import math
import tempfile

import torch

from ckptnas.space import SearchSpace
from ckptnas.storage import CheckpointStore

from ._common import smoke

SIZES = smoke((100_000, 10_000_000, 100_000_000), (100_000, 1_000_000))
LAYERS = 6


def sized_model(n_params: int) -> torch.nn.Module:
    """A candidate network of about ``n_params`` parameters."""
    width = round(math.sqrt(n_params / LAYERS))
    space = SearchSpace(
        (("x", width),),
        output_size=1,
        num_nodes=LAYERS,
        input_nodes=0,
        units=(width,),
        activations=("relu",),
        skip_connections=False,
    )
    torch.manual_seed(0)
    return space.build((1,) * LAYERS)


def prefix_names(n_layers: int) -> list[str]:
    """Tensor names of the first ``n_layers`` trunk layers."""
    return [f"trunk.{i}.{t}" for i in range(n_layers) for t in ("weight", "bias")]


class CheckpointSave:
    """``CheckpointStore.save``: hash every tensor, write safetensors, fsync, rename."""

    params = SIZES
    param_names = ("parameters",)
    timeout = 600
    repeat = (1, 3, 30.0)

    def setup(self, n: int) -> None:
        self.tmp = tempfile.TemporaryDirectory(dir=".")
        self.store = CheckpointStore(self.tmp.name)
        self.tensors = sized_model(n).state_dict()

    def teardown(self, n: int) -> None:
        self.tmp.cleanup()

    def time_save(self, n: int) -> None:
        """Seconds to save a checkpoint.

        Good: bounded by hashing and disk, about 1-2 s per GB written, so a few ms at 100k
        parameters; never more than a few percent of the candidate's training.
        """
        self.store.save(1, self.tensors)

    def peakmem_save(self, n: int) -> None:
        """Peak memory of saving, which includes the state dict itself (4 bytes a parameter).

        Good: close to one model's size (0.4 GB at 100M) plus the interpreter; twice that means
        the store copies the whole model while saving.
        """
        self.store.save(1, self.tensors)


class CheckpointPartialLoad:
    """``CheckpointStore.load(id, names, digest)``: read and verify half of a donor's layers."""

    params = SIZES
    param_names = ("parameters",)
    timeout = 600
    repeat = (1, 3, 30.0)

    def setup_cache(self) -> dict[int, str]:
        store = CheckpointStore("store")
        return {n: store.save(n % 997, sized_model(n).state_dict()) for n in SIZES}

    def setup(self, digests: dict[int, str], n: int) -> None:
        self.store = CheckpointStore("store")
        self.names = prefix_names(LAYERS // 2)

    def time_load_partial(self, digests: dict[int, str], n: int) -> None:
        """Seconds to read and hash-check the first half of the layers.

        Good: proportional to the bytes read (about half the file), not to the file's size.
        """
        self.store.load(n % 997, self.names, digests[n])

    def peakmem_load_partial(self, digests: dict[int, str], n: int) -> None:
        """Peak memory of a partial load.

        Good: about the bytes of the requested tensors (0.2 GB at 100M) plus the interpreter.
        """
        self.store.load(n % 997, self.names, digests[n])
