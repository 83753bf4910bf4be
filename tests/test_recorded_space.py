"""How a run records its search space: built-in spaces by name, user objects as verified pickles."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
from distributed import Client

import ckptnas
from ckptnas.cli import main
from ckptnas.config import config_from_dict
from ckptnas.errors import RunDirectoryError
from ckptnas.runtime import Experiment
from ckptnas.space import ConvSpace, UntrustedSpaceError, _resolved, make_space, space_from_dict
from ckptnas.storage import LineageRegistry

FIXTURE = Path(__file__).parent / "fixtures" / "release-0.1.0"


def release_record() -> dict[str, Any]:
    """The space record the 0.1.0 release wrote for its conv2d run: a cloudpickle."""
    with LineageRegistry(FIXTURE, readonly=True) as registry:
        return registry.recorded_space()


def pickled(obj: Any, origin: dict[str, Any]) -> dict[str, Any]:
    blob = cloudpickle.dumps(obj)
    return {
        "kind": "pickled",
        "origin": origin,
        "digest": hashlib.sha256(blob).hexdigest(),
        "pickle": base64.b64encode(blob).decode("ascii"),
    }


class Hostile:
    """A pickle that writes a file when it is loaded."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (Path.write_text, (self.path, "ran"))


class Wrapped:
    """A user's own space object: the dense space behind methods of its own."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def sample(self, rng: Any) -> Any:
        return self.inner.sample(rng)

    def mutate(self, arch: Any, rng: Any) -> Any:
        return self.inner.mutate(arch, rng)

    def build(self, arch: Any) -> Any:
        return self.inner.build(arch)


@pytest.fixture
def user_space(combo_space: Any) -> Iterator[Any]:
    """A space object of this module, which travels to the workers by value."""
    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    yield Wrapped(combo_space)
    cloudpickle.unregister_pickle_by_value(module)


@pytest.fixture(autouse=True)
def fresh_process_cache() -> None:
    """Each test reads records as a new process would: nothing rebuilt or recorded before."""
    _resolved.REBUILT.clear()


def test_a_built_in_space_is_recorded_by_name_and_options() -> None:
    space = make_space("conv2d", {"x": (1, 8, 8)}, 10, options={"num_blocks": 2})
    record = space.to_dict()
    assert record == {
        "kind": "builtin",
        "name": "conv2d",
        "options": {"num_blocks": 2},
        "inputs": {"x": [1, 8, 8]},
        "output_size": 10,
    }
    json.dumps(record)  # it goes into the registry as JSON
    rebuilt = space_from_dict(record)
    assert rebuilt.space == space.space


def test_a_release_pickle_of_a_built_in_space_is_rebuilt_by_name_without_unpickling() -> None:
    rebuilt = space_from_dict(release_record())
    assert isinstance(rebuilt.space, ConvSpace)
    assert (rebuilt.space.input_shape, rebuilt.space.output_size) == ((1, 8, 8), 10)
    assert rebuilt.to_dict()["kind"] == "builtin"


def test_a_pickle_that_claims_a_built_in_origin_runs_nothing_without_trust(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"
    record = pickled(Hostile(marker), {"kind": "conv2d", "options": {}})
    with pytest.raises(UntrustedSpaceError, match="trust_code=True"):
        space_from_dict(record)
    assert not marker.exists()


def test_a_pickle_that_does_not_match_its_digest_is_refused_even_when_trusted(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"
    record = pickled(Hostile(marker), {"kind": "python"}) | {"digest": "0" * 64}
    with pytest.raises(RunDirectoryError, match="does not match its digest"):
        space_from_dict(record, trust_code=True)
    assert not marker.exists()


@pytest.fixture
def user_run(tmp_path: Path, client: Client, user_space: Any) -> Path:
    """A finished search of a user's space object, recorded as a pickle by this process."""
    config = config_from_dict(
        {
            "experiment": {"max_candidates": 2},
            "data": {"kind": "synthetic_combo", "n_samples": 400},
            "training": {"epochs": 1},
        }
    )
    run = tmp_path / "run"
    Experiment(config, run, space=user_space, progress=False).run(client)
    return run


def test_a_user_space_object_is_unpickled_only_with_trust(user_run: Path) -> None:
    run = user_run
    best = int(ckptnas.load_results(run).objective.idxmax())
    ckptnas.load_model(run, best)  # the process that ran the search trusts its own space
    _resolved.REBUILT.clear()  # as another process, on a run directory received
    with pytest.raises(UntrustedSpaceError, match="trust_code=True"):
        ckptnas.load_model(run, best)
    assert ckptnas.load_model(run, best, trust_code=True) is not None


def test_export_of_an_untrusted_user_space_says_how_to_trust_it(
    user_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _resolved.REBUILT.clear()  # as another process, on a run directory received
    args = ["export", str(user_run), "--candidate", "1", "--format", "safetensors"]
    assert main(args) == 2
    assert "--trust-code" in capsys.readouterr().err
    assert main([*args, "--trust-code"]) == 0


def test_a_release_run_resumes_with_its_space_recorded_by_name(
    tmp_path: Path, client: Client
) -> None:
    run = Path(shutil.copytree(FIXTURE, tmp_path / "old"))
    config = ckptnas.storage.recorded_config(ckptnas.storage.RunDir(run)).replace(
        "experiment", max_candidates=7
    )
    Experiment(config, run, progress=False, resume=True).run(client)
    with LineageRegistry(run, readonly=True) as registry:
        assert registry.recorded_space()["kind"] == "builtin"
