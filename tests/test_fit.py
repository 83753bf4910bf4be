"""The training epoch keeps its data on the device: no host round trip per batch.

On a GPU, reading a tensor's value on the host (``.item()``, ``float()``, ``.tolist()``, a
copy to the CPU) waits for every kernel queued before it. The epoch may do that once, for its
mean loss; per batch it would stall the GPU as often as there are batches. The CPU cannot show
the stall, so these tests count the calls themselves.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

from ckptnas.config import Config
from ckptnas.runtime import DeviceData, data_key, get_data, train_epoch
from ckptnas.space import SearchSpace

#: Tensor methods that bring a value, or a whole tensor, to the host (or move it at all).
HOST_READS = frozenset(
    {
        "item",
        "tolist",
        "numpy",
        "cpu",
        "cuda",
        "to",
        "__float__",
        "__int__",
        "__bool__",
        "__index__",
        "__array__",
    }
)
_TORCH = str(Path(torch.__file__).parent)


class HostReads(TorchFunctionMode):
    """Counts :data:`HOST_READS` calls made by code outside torch, by name.

    Methods written in Python (``__array__``) reach the mode through torch's own frames, so a
    call is charged to its first caller outside torch. What torch calls while handling one
    (``__array__`` calls ``numpy``) runs with the mode off, and is not counted again.
    """

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Sequence[type],
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
    ) -> Any:
        name = getattr(func, "__name__", "")
        if name in HOST_READS:
            frame = sys._getframe(1)
            while frame.f_back is not None and frame.f_code.co_filename.startswith(_TORCH):
                frame = frame.f_back
            if not frame.f_code.co_filename.startswith(_TORCH):
                self.counts[name] += 1
        return func(*args, **(kwargs or {}))


@pytest.fixture
def model_and_data(tiny_config: Config) -> tuple[torch.nn.Module, DeviceData]:
    # No rows held out for testing: five batches of 64 need the training rows of all 400.
    key = data_key(replace(tiny_config.data, test_fraction=0.0), 0)
    data = get_data(key)
    space = SearchSpace.from_config(tiny_config.space, data.input_sizes, data.output_size)
    return space.build(tuple([1] * len(space.nodes))), DeviceData.of(key, torch.device("cpu"))


def test_host_reads_are_counted_per_call() -> None:
    t = torch.ones(3)
    with HostReads() as reads:
        for _ in range(4):
            t.sum().item()
            float(t[0])
            t.cpu()
            t.to("cpu")
            t.tolist()
            t.numpy()
            np.asarray(t)
    assert reads.counts == {
        "item": 4,
        "__float__": 4,
        "cpu": 4,
        "to": 4,
        "tolist": 4,
        "numpy": 4,
        "__array__": 4,
    }


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
@pytest.mark.parametrize("batch_size", [16, 64])
def test_train_epoch_reads_the_host_once_whatever_the_batches(
    model_and_data: tuple[torch.nn.Module, DeviceData], batch_size: int, precision: str
) -> None:
    model, data = model_and_data
    assert len(data.train_y) // batch_size >= 5
    # SGD: Adam reads its step count with .item() each step, but that count lives on the host
    # even when training on a GPU, so it costs no wait; SGD keeps the count to the loop's own.
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    with HostReads() as reads:
        loss = train_epoch(model, data, optimizer, batch_size, generator, precision=precision)
    assert np.isfinite(loss)
    assert reads.counts == {"__float__": 1}  # the epoch's mean loss, at the end


def test_device_data_is_moved_once_per_process(tiny_config: Config) -> None:
    # No rows held out for testing: five batches of 64 need the training rows of all 400.
    key = data_key(replace(tiny_config.data, test_fraction=0.0), 0)
    first = DeviceData.of(key, torch.device("cpu"))
    assert DeviceData.of(key, torch.device("cpu")) is first
