"""``[training] precision``: bfloat16 forward passes, float32 weights, and the run's record."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import torch
from distributed import Client

from ckptnas import LineageRegistry, load_results
from ckptnas.config import Config, config_from_dict
from ckptnas.errors import ConfigError
from ckptnas.runtime import (
    CandidateResult,
    CandidateSpec,
    Curves,
    DeviceData,
    Experiment,
    TrainingSettings,
    _fit,
    data_key,
    get_data,
    train_candidate,
)
from ckptnas.search import plan_transfer
from ckptnas.space import SearchSpace
from ckptnas.storage import CheckpointStore, Init, TopKRegistry
from ckptnas.topk import TopKSettings, full_train, topk_store, train_topk
from ckptnas.topk._run import _specs
from tests.conftest import TINY

# The trainer below runs on worker processes, which cannot import this test module.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def train_in_bfloat16_only(spec: CandidateSpec) -> CandidateResult:
    """The usual training, once the candidate is seen to be sent to train in bfloat16."""
    if spec.settings.precision != "bfloat16":
        raise AssertionError(f"candidate {spec.candidate_id} sent to train in float32")
    return train_candidate(spec)


@pytest.fixture
def setting(tiny_config: Config, tmp_path: Path) -> tuple[SearchSpace, CandidateSpec]:
    key = data_key(tiny_config.data, 0)
    data = get_data(key)
    space = SearchSpace.from_config(tiny_config.space, data.input_sizes, data.output_size)
    spec = CandidateSpec(
        candidate_id=1,
        arch=tuple([1] * len(space.nodes)),
        space=space.to_dict(),
        run_dir=str(tmp_path),
        data_key=key,
        settings=TrainingSettings(
            epochs=2, batch_size=64, learning_rate=1e-3, freeze=True, precision="bfloat16"
        ),
        seed=11,
    )
    return space, spec


def assert_float32(tensors: dict[str, torch.Tensor]) -> None:
    assert tensors
    assert {t.dtype for t in tensors.values()} == {torch.float32}


@pytest.mark.parametrize("value", ["fp16", "float16", "bf16", "auto"])
def test_precision_rejects_an_unknown_type_in_one_line(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_dict({"training": {"precision": value}})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"[training] precision = {value!r}")
    assert "float32 or bfloat16" in message


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_forward_passes_autocast_only_in_bfloat16_and_losses_are_float32(
    setting: tuple[SearchSpace, CandidateSpec],
    precision: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    space, spec = setting
    model = space.build(spec.arch)
    autocast: list[tuple[bool, torch.dtype]] = []
    model.register_forward_hook(
        lambda module, args, out: autocast.append((torch.is_autocast_enabled("cpu"), out.dtype))
    )
    loss_inputs: list[torch.dtype] = []
    loss_fn = _fit._loss_fn

    def recording(task: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        inner = loss_fn(task)

        def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            loss_inputs.append(out.dtype)
            return inner(out, y)

        return loss

    monkeypatch.setattr(_fit, "_loss_fn", recording)
    data = DeviceData.of(spec.data_key, torch.device("cpu"))
    optimizer = torch.optim.Adam(model.parameters())
    generator = torch.Generator().manual_seed(0)
    Curves().fit_epoch(model, data, optimizer, 64, generator, precision=precision)
    _fit.inference_latency(model, data, precision=precision)
    bf16 = precision == "bfloat16"
    # training batches, one validation chunk, and the untimed and timed latency passes
    assert len(autocast) == math.ceil(len(data.train_y) / 64) + 1 + 6
    assert set(autocast) == {(bf16, torch.bfloat16 if bf16 else torch.float32)}
    assert loss_inputs and set(loss_inputs) == {torch.float32}
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_bfloat16_candidate_trains_to_finite_losses_and_a_float32_checkpoint(
    setting: tuple[SearchSpace, CandidateSpec],
) -> None:
    _, spec = setting
    result = train_candidate(spec)
    assert result.status == "ok", result.error
    curves = (result.train_loss, result.val_loss, result.val_metric)
    assert all(math.isfinite(v) for curve in curves for v in curve)
    assert math.isfinite(result.latency)
    assert_float32(CheckpointStore(spec.run_dir).load(1, digest=result.checkpoint_digest))
    # The same candidate in float32 follows another curve: bfloat16 was in effect.
    as_float32 = replace(spec, settings=replace(spec.settings, precision="float32"))
    assert train_candidate(as_float32).val_loss != result.val_loss


@pytest.mark.parametrize("child_precision", ["float32", "bfloat16"])
def test_warm_start_from_a_bfloat16_donor_copies_its_float32_tensors(
    setting: tuple[SearchSpace, CandidateSpec], child_precision: str
) -> None:
    space, donor = setting
    digest = train_candidate(donor).checkpoint_digest
    child_arch = space.mutate(donor.arch, np.random.default_rng(0), bias=50.0)
    plan = plan_transfer(space, child_arch, donor.arch, donor.candidate_id)
    assert plan.is_warm
    child = replace(
        donor,
        candidate_id=2,
        arch=child_arch,
        plan=plan,
        donor_digest=digest,
        settings=replace(donor.settings, precision=child_precision),
    )
    result = train_candidate(child)
    assert result.status == "ok", result.error
    assert result.plan == plan
    store = CheckpointStore(donor.run_dir)
    donor_tensors, trained = store.load(1), store.load(2)
    assert_float32(trained)
    for name in plan.tensors:  # frozen: bit for bit the donor's
        assert torch.equal(trained[name], donor_tensors[name]), name


@pytest.fixture(scope="module")
def bfloat16_run(tmp_path_factory: pytest.TempPathFactory, client: Client) -> tuple[Path, Config]:
    config = (
        config_from_dict(TINY)
        .replace("training", precision="bfloat16", epochs=1)
        .replace("experiment", max_candidates=4)
    )
    run_dir = tmp_path_factory.mktemp("bf16") / "run"
    Experiment(config, run_dir, progress=False, trainer=train_in_bfloat16_only).run(client)
    return run_dir, config


def test_search_records_its_precision(bfloat16_run: tuple[Path, Config]) -> None:
    run_dir, _ = bfloat16_run
    ds = load_results(run_dir)
    assert set(ds.status.values) == {"ok"}
    assert np.isfinite(ds.val_loss.values).all()
    assert ds.attrs["precision"] == "bfloat16"
    with LineageRegistry(run_dir, readonly=True) as registry:
        assert registry.get_meta("precision") == "bfloat16"
        assert 'precision = "bfloat16"' in (registry.get_meta("config") or "")


def test_full_training_keeps_the_searchs_precision(bfloat16_run: tuple[Path, Config]) -> None:
    run_dir, config = bfloat16_run
    with LineageRegistry(run_dir) as lineage, TopKRegistry(run_dir) as registry:
        (spec,) = _specs(config, registry, lineage, TopKSettings(k=1), [Init.CHECKPOINT])
    assert spec.precision == "bfloat16"
    spec = replace(spec, max_epochs=2, device="cpu")
    result = full_train(spec)
    assert result.status == "ok", result.error
    assert all(math.isfinite(v) for v in result.val_loss)
    assert_float32(topk_store(run_dir, Init.CHECKPOINT).load(spec.candidate_id))
    # The same run in float32 follows another curve: bfloat16 was in effect.
    assert full_train(replace(spec, precision="float32")).val_loss != result.val_loss


def test_full_training_refuses_another_precision_than_the_searchs(
    bfloat16_run: tuple[Path, Config],
) -> None:
    run_dir, config = bfloat16_run
    float32 = config.replace("training", precision="float32")
    with pytest.raises(ConfigError, match=r"precision = 'float32' differs .* 'bfloat16'"):
        train_topk(run_dir, TopKSettings(k=1), config=float32, progress=False)
