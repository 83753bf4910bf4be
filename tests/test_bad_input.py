"""Generated bad input gets one clean error, never a traceback, and touches no run directory."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ckptnas import CheckpointStore
from ckptnas.cli import main
from ckptnas.config import Config, config_from_dict, to_dict
from ckptnas.errors import CheckpointError, ConfigError
from ckptnas.runtime import connect

VALID = to_dict(Config())
KEYS = [(table, key) for table, keys in VALID.items() for key in keys]

toml_values = st.recursive(
    st.one_of(
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=12),
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=2)
    ),
    max_leaves=4,
)


@st.composite
def bad_configs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid configuration with one key replaced, or one unknown table or key added."""
    values: dict[str, Any] = {t: dict(k) for t, k in VALID.items()}
    kind = draw(st.sampled_from(["value", "key", "table"]))
    if kind == "value":
        table, key = draw(st.sampled_from(KEYS))
        values[table][key] = draw(toml_values)
    elif kind == "key":
        table = draw(st.sampled_from(list(values)))
        values[table][
            draw(st.text(min_size=1, max_size=10).filter(lambda k: k not in values[table]))
        ] = 1
    else:
        values[draw(st.text(min_size=1, max_size=10).filter(lambda t: t not in values))] = {}
    return values


@given(bad_configs())
@settings(max_examples=300, deadline=None)
def test_generated_configs_are_accepted_or_cleanly_refused(values: dict[str, Any]) -> None:
    try:
        config = config_from_dict(values)
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith(("[", "unknown table"))
    else:  # what is accepted must be a well-formed configuration that round-trips
        assert config_from_dict(to_dict(config)) == config


@pytest.fixture(scope="module")
def existing_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("existing")
    (run_dir / "lineage.sqlite").write_bytes(b"a run lives here")
    return run_dir


def _digest(path: Path) -> str:
    return hashlib.sha256(
        b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())
    ).hexdigest()


@given(values=bad_configs(), raw=st.booleans(), junk=st.binary(max_size=40))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_cli_refuses_bad_configs_in_one_line(
    values: dict[str, Any],
    raw: bool,
    junk: bytes,
    existing_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    try:
        config_from_dict(values)
    except ConfigError:
        pass
    else:
        values = {**values, "space": {**values["space"], "num_nodes": -1}}
    path = tmp_path / "bad.toml"
    if raw:  # not TOML at all, or not UTF-8
        path.write_bytes(b"[[[" + junk)
    else:
        text = tomli_w.dumps(values) if _toml_writable(values) else "x = [\n"
        path.write_text(text)
    before = _digest(existing_run)
    for out in (existing_run, tmp_path / "new-run"):
        assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("ckptnas: error: ")
    assert _digest(existing_run) == before
    assert not (tmp_path / "new-run").exists()


def _toml_writable(values: dict[str, Any]) -> bool:
    try:
        tomli_w.dumps(values)
    except (TypeError, ValueError):
        return False
    return True


class _Payload:
    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (Path("unpickled-marker"),))


def test_a_pickle_in_place_of_a_checkpoint_is_never_unpickled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = CheckpointStore(tmp_path)
    store.root.mkdir()
    store.path(1).write_bytes(pickle.dumps({"w": _Payload()}))
    with pytest.raises(CheckpointError):
        store.load(1)
    assert not (tmp_path / "unpickled-marker").exists()


def test_embedded_cluster_listens_on_localhost_only() -> None:
    with connect(Config().replace("cluster", n_workers=1)) as client:
        assert client.scheduler.address.startswith("tls://127.0.0.1:")
        assert "127.0.0.1" in client.dashboard_link
        assert all(w.startswith("tls://127.0.0.1:") for w in client.scheduler_info()["workers"])


@pytest.mark.parametrize("activation", ["__import__('os').system('true')", "lambda x: x"])
def test_config_text_is_never_evaluated(activation: str) -> None:
    with pytest.raises(ConfigError, match="activations"):
        config_from_dict({"space": {"activations": [activation]}})
