"""Optuna's samplers as strategies: ask/tell with several trials open, replay, two objectives."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from distributed import Client
from optuna.study import StudyDirection
from optuna.trial import TrialState

from ckptnas.config import Config, config_from_dict
from ckptnas.errors import ConfigError
from ckptnas.runtime import Experiment
from ckptnas.search import HyperparameterSpace, OptunaStrategy, Suggestion, make_strategy
from ckptnas.space import SearchSpace
from ckptnas.storage import LineageRegistry

HYPER = HyperparameterSpace.from_config(
    {"learning_rate": {"low": 1e-4, "high": 1e-1, "log": True}, "batch_size": [32, 64]}
)


def test_optuna_proposes_valid_unseen_architectures(combo_space: SearchSpace) -> None:
    tpe = OptunaStrategy(combo_space, seed=0, sampler_options={"n_startup_trials": 3})
    asked = []
    for i in range(12):
        suggestion = tpe.ask()
        combo_space.validate(suggestion.arch)
        tpe.tell(suggestion, [float(i % 5)])
        asked.append(suggestion.arch)
    assert len(set(asked)) == 12
    assert not tpe.open


def test_optuna_is_seeded(combo_space: SearchSpace) -> None:
    def run(seed: int) -> list[tuple[int, ...]]:
        tpe = OptunaStrategy(combo_space, seed=seed, sampler_options={"n_startup_trials": 2})
        out = []
        for i in range(6):
            s = tpe.ask()
            tpe.tell(s, [float(i)])
            out.append(s.arch)
        return out

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_optuna_keeps_several_trials_open_and_tells_each_its_own(combo_space: SearchSpace) -> None:
    tpe = OptunaStrategy(combo_space, seed=0)
    open_ = [tpe.ask() for _ in range(3)]
    assert len(tpe.open) == 3
    for suggestion, value in zip(reversed(open_), (0.1, 0.2, math.nan), strict=True):
        tpe.tell(suggestion, [value])
    trials = {t.number: t for t in tpe.study.get_trials()}
    assert trials[open_[2].trial].values == [0.1]
    assert trials[open_[1].trial].values == [0.2]
    assert trials[open_[0].trial].state == TrialState.FAIL
    for suggestion in open_:
        params = trials[suggestion.trial].params
        assert tuple(params[name] for name in tpe.node_params) == suggestion.arch


def test_optuna_learns_replayed_candidates_as_finished_trials(combo_space: SearchSpace) -> None:
    """On resume the registry's candidates are told without an open trial: they are added."""
    tpe = OptunaStrategy(combo_space, seed=0, hyperparameters=HYPER)
    arch = combo_space.sample(np.random.default_rng(0))
    replayed = Suggestion.of(arch, {"learning_rate": 0.01, "batch_size": 64})
    tpe.seen.add(replayed)
    tpe.tell(replayed, [0.7])
    (trial,) = tpe.study.get_trials()
    assert trial.state == TrialState.COMPLETE and trial.values == [0.7]
    assert trial.params["learning_rate"] == 0.01 and trial.params["batch_size"] == 64
    assert tpe.ask() != replayed


def test_optuna_samples_hyperparameters_in_their_ranges(combo_space: SearchSpace) -> None:
    tpe = OptunaStrategy(combo_space, seed=0, hyperparameters=HYPER)
    for _ in range(20):
        values = tpe.ask().hyperparameters
        assert 1e-4 <= values["learning_rate"] <= 1e-1
        assert values["batch_size"] in (32, 64)


def test_nsga2_with_two_objectives(combo_space: SearchSpace) -> None:
    config = config_from_dict(
        {
            "search": {
                "strategy": "optuna",
                "sampler": "nsga2",
                "sampler_options": {"population_size": 4},
                "objectives": ["val_metric", "n_params"],
            }
        }
    )
    nsga = make_strategy(config, combo_space)
    assert isinstance(nsga, OptunaStrategy)
    for _ in range(10):
        s = nsga.ask()
        nsga.tell(s, [float(sum(s.arch)), float(combo_space.n_params(s.arch))])
    assert nsga.study.directions == [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE]
    assert nsga.study.best_trials


def test_a_duplicate_proposal_is_closed_not_left_open() -> None:
    tiny = SearchSpace(
        (("x", 2),),
        1,
        num_nodes=1,
        input_nodes=0,
        units=(4,),
        activations=("relu",),
        skip_connections=False,
    )
    tpe = OptunaStrategy(tiny, sampler="random", seed=0)
    first, second = tpe.ask(), tpe.ask()
    tpe.tell(first, [0.5])
    tpe.tell(second, [0.6])
    assert {first.arch, second.arch} == {(0,), (1,)}
    with pytest.raises(Exception, match="exhausted"):
        tpe.ask()
    assert not tpe.open
    assert all(t.state != TrialState.RUNNING for t in tpe.study.get_trials())


def test_bad_sampler_option_is_a_config_error(combo_space: SearchSpace) -> None:
    config = config_from_dict(
        {"search": {"strategy": "optuna", "sampler_options": {"n_startup": 3}}}
    )
    with pytest.raises(ConfigError, match=r"\[search.sampler_options\].*n_startup"):
        make_strategy(config, combo_space)


def test_optuna_search_records_hyperparameters_and_resumes(
    tiny_config: Config, tmp_path: Path, client: Client
) -> None:
    config = tiny_config.replace(
        "search",
        strategy="optuna",
        sampler_options={"n_startup_trials": 3},
        hyperparameters={
            "learning_rate": {"low": 1e-3, "high": 1e-2, "log": True},
            "batch_size": [32, 64],
        },
    ).replace("experiment", max_candidates=5)
    Experiment(config, tmp_path, progress=False).run(client)
    config = config.replace("experiment", max_candidates=8)
    ds = Experiment(config, tmp_path, progress=False, resume=True).run(client)
    assert ds.sizes["candidate"] == 8 and (ds["status"] == "ok").all()
    assert ds["learning_rate"].attrs["units"] == "1" and ds["batch_size"].attrs["long_name"]
    with LineageRegistry(tmp_path, readonly=True) as registry:
        records = registry.candidates()
    assert all(1e-3 <= r.hyperparameters["learning_rate"] <= 1e-2 for r in records)
    assert list(ds["batch_size"].values) == [r.hyperparameters["batch_size"] for r in records]
    assert len({(r.arch, r.hyperparameters["learning_rate"]) for r in records}) == 8
    assert (ds["parent"] >= 0).any()  # hyperparameters never stop a warm start


def test_a_strategy_object_replaces_the_configured_one(
    tiny_config: Config, tmp_path: Path, client: Client
) -> None:
    made: list[OptunaStrategy] = []

    def tpe(space: SearchSpace) -> OptunaStrategy:
        made.append(OptunaStrategy(space, sampler="random", seed=5))
        return made[-1]

    config = tiny_config.replace("experiment", max_candidates=4)
    ds = Experiment(config, tmp_path, progress=False, strategy=tpe).run(client)
    (strategy,) = made
    told = {tuple(int(t.params[n]) for n in strategy.node_params) for t in strategy.study.trials}
    assert told == {tuple(a) for a in ds["arch"].values.tolist()}
    assert all(t.state == TrialState.COMPLETE for t in strategy.study.trials)


@pytest.mark.parametrize(
    ("sampler", "options", "stages"),
    [
        # TPE learns once n_startup_trials have finished: a failed trial does not count
        ("tpe", {"n_startup_trials": 2}, ["startup", "startup", "startup", "sampler"]),
        # NSGA-II breeds from its second generation: the first population_size asked
        ("nsga2", {"population_size": 2}, ["startup", "startup", "sampler", "sampler"]),
        ("random", {}, ["random"] * 4),
    ],
)
def test_optuna_tags_its_random_start_and_what_it_learnt(
    combo_space: SearchSpace, sampler: str, options: dict[str, int], stages: list[str]
) -> None:
    strategy = OptunaStrategy(combo_space, sampler, options, seed=0)
    told = []
    for values in ([0.5], [math.nan], [0.4], [0.3]):
        suggestion = strategy.ask()
        strategy.tell(suggestion, values)
        told.append(str(suggestion.stage))
    assert told == stages


def test_a_seeded_optuna_strategy_enqueues_its_seeds_as_trials(combo_space: SearchSpace) -> None:
    rng = np.random.default_rng(0)
    seeds = [combo_space.sample(rng) for _ in range(2)]
    tpe = OptunaStrategy(combo_space, seed=0, hyperparameters=HYPER)
    tpe.seed_population(seeds, 3)
    asked = [tpe.ask() for _ in range(4)]
    assert [s.arch for s in asked[:2]] == seeds
    assert [s.stage for s in asked] == ["seeded"] * 3 + ["startup"]
    assert [s.trial for s in asked] == [0, 1, 2, 3]
    assert set(tpe.open) == {0, 1, 2, 3}
    for k, s in enumerate(asked):
        assert set(s.hyperparameters) == {"learning_rate", "batch_size"}
        tpe.tell(s, [float(k)])
    trials = tpe.study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert tuple(trials[0].params[f"node:{n.name}"] for n in combo_space.nodes) == seeds[0]
