from __future__ import annotations

from pathlib import Path

import pytest

from ckptnas.config import Config, config_from_dict, load_config
from ckptnas.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_config_loads() -> None:
    config = load_config(ROOT / "experiments" / "quickstart.toml")
    assert config.transfer.policy == "lcp"
    assert config.space.shared_inputs == [["drug1", "drug2"]]


def test_empty_config_is_all_defaults() -> None:
    assert config_from_dict({}) == Config()


def test_resolved_toml_round_trips(tmp_path: Path) -> None:
    config = Config().replace("search", strategy="random").replace("space", units=[3, 5])
    path = tmp_path / "c.toml"
    path.write_text(config.to_toml())
    assert load_config(path) == config


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"spaec": {}}, r"unknown table \[spaec\]"),
        ({"a\nb": {}}, r"unknown table \['a\\nb'\]"),  # one line, even for a name like that
        ({"cluster": {"worker_profile": "yes"}}, r"\[cluster\] worker_profile = 'yes'"),
        ({"space": {"nodes": 3}}, r"\[space\] unknown key 'nodes'"),
        ({"space": {"num_nodes": "3"}}, r"\[space\] num_nodes = '3' must be an integer"),
        ({"space": {"num_nodes": 0}}, r"num_nodes = 0 must be > 0"),
        ({"space": {"units": [8, -1]}}, r"units"),
        ({"space": {"activations": ["relu", "swish"]}}, r"activations"),
        ({"training": {"epochs": True}}, r"epochs"),
        ({"training": {"learning_rate": -1.0}}, r"learning_rate"),
        (
            {"transfer": {"policy": "closest"}},
            r"\[transfer\] policy = 'closest' must be one of lcp, none, aligned",
        ),
        ({"data": {"kind": "csv"}}, r"\[data\] kind"),
        ({"data": {"val_fraction": 1.0}}, r"val_fraction"),
        (
            {"data": {"kind": "sklearn", "name": "iris"}},
            r"diabetes, breast_cancer, digits or digits_images",
        ),
        ({"data": {"kind": "netcdf", "inputs": ["x"], "target": "y"}}, r"path"),
        ({"search": {"population_size": 3, "sample_size": 5}}, r"sample_size"),
        ({"experiment": []}, r"\[experiment\] must be a table"),
        ({"experiment": {"max_training_epochs": 1}}, r"max_training_epochs = 1 is less than"),
        ({"search": {"objectives": ["n_params"]}}, r"must start with 'val_metric'"),
        (
            {"search": {"objectives": ["val_metric", "n_params"], "directions": ["maximize"]}},
            r"one direction for each of the 2 objectives",
        ),
        ({"search": {"objectives": ["val_metric", "accuracy"]}}, r"objectives"),
        ({"search": {"sampler": "cmaes"}}, r"\[search\] sampler = 'cmaes' must be one of tpe"),
        ({"search": {"scheduler": "bohb"}}, r"\[search\] scheduler = 'bohb'"),
        ({"search": {"reduction_factor": 1}}, r"reduction_factor = 1 must be >= 2"),
        ({"search": {"hyperparameters": 3}}, r"\[search\] hyperparameters = 3 must be a table"),
    ],
)
def test_bad_values_name_the_key(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict(values)


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[experiment\nname = 1")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.toml")


def test_every_activation_of_the_dense_space_is_settable(tmp_path: Path) -> None:
    from ckptnas.space import ACTIVATIONS

    path = tmp_path / "linear.toml"
    path.write_text(f"[space]\nactivations = {list(ACTIVATIONS)!r}\n".replace("'", '"'))
    assert load_config(path).space.activations == list(ACTIVATIONS)
    assert "linear" in ACTIVATIONS


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"space": {"kind": "conv1d", "factory": "m:f"}}, "factory is for kind = 'python'"),
        ({"space": {"options": {"a": 1}}}, r"\[space.options\] are for kinds other than dense"),
        ({"space": {"kind": "python", "factory": "nothing"}}, "must be 'module:function'"),
        ({"search": {"strategy": "optuna", "sampler_options": {"seed": 1}}}, "seed is not"),
        ({"training": {"batch_size": 100}, "data": {"n_samples": 50}}, "exceeds"),
        ({"data": {"kind": "netcdf", "path": "x.nc", "target": "y"}}, r"\[data\] inputs"),
    ],
)
def test_each_entry_checks_its_own_options(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict(values)
