from __future__ import annotations

import math
from dataclasses import replace

import pytest

from ckptnas.errors import SearchExhaustedError
from ckptnas.search import RandomSearch, RegularizedEvolution, Suggestion
from ckptnas.space import SearchSpace
from ckptnas.storage import SearchStage


def test_random_search_is_seeded_and_never_repeats(combo_space: SearchSpace) -> None:
    a = [RandomSearch(combo_space, seed=4).ask() for _ in range(1)]
    b = [RandomSearch(combo_space, seed=4).ask() for _ in range(1)]
    assert a == b
    s = RandomSearch(combo_space, seed=1)
    asked = [s.ask().arch for _ in range(200)]
    assert len(set(asked)) == 200


def test_exhausted_space_raises() -> None:
    tiny = SearchSpace(
        (("x", 2),),
        1,
        num_nodes=1,
        input_nodes=0,
        units=(4,),
        activations=("relu",),
        skip_connections=False,
    )
    s = RandomSearch(tiny, seed=0)
    assert {s.ask().arch, s.ask().arch} == {(0,), (1,)}
    with pytest.raises(SearchExhaustedError, match="exhausted"):
        s.ask()
    assert RandomSearch(tiny, seed=0, allow_duplicates=True).ask().arch in {(0,), (1,)}


def test_evolution_starts_random_then_mutates_population(combo_space: SearchSpace) -> None:
    evo = RegularizedEvolution(combo_space, population_size=4, sample_size=2, seed=0)
    first = [evo.ask() for _ in range(4)]
    for i, arch in enumerate(first):
        evo.tell(arch, [float(i)])
    for _ in range(20):
        child = evo.ask()
        members = [m.arch for m, _ in evo.population]
        distance = min(sum(a != b for a, b in zip(child.arch, m, strict=True)) for m in members)
        assert distance == 1
        evo.tell(child, [0.0])


def test_evolution_ages_out_old_members(combo_space: SearchSpace) -> None:
    evo = RegularizedEvolution(combo_space, population_size=3, sample_size=3, seed=0)
    archs = [evo.ask() for _ in range(5)]
    for arch in archs:
        evo.tell(arch, [1.0])
    assert [m for m, _ in evo.population] == archs[-3:]


def test_failed_candidates_never_become_parents(combo_space: SearchSpace) -> None:
    evo = RegularizedEvolution(combo_space, population_size=2, sample_size=2, seed=0)
    a, b, c = evo.ask(), evo.ask(), evo.ask()
    evo.tell(a, [0.5])
    evo.tell(b, [math.nan])
    evo.tell(c, [0.1])
    assert [m for m, _ in evo.population] == [a, c]
    for _ in range(30):
        child = evo.ask().arch
        assert min(sum(x != y for x, y in zip(child, m.arch, strict=True)) for m in (a, c)) == 1


def test_evolution_is_seeded(combo_space: SearchSpace) -> None:
    def run(seed: int) -> list[tuple[int, ...]]:
        evo = RegularizedEvolution(combo_space, population_size=3, sample_size=2, seed=seed)
        out = []
        for i in range(10):
            arch = evo.ask()
            evo.tell(arch, [float(i % 4)])
            out.append(arch.arch)
        return out

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_each_suggestion_says_its_stage(combo_space: SearchSpace) -> None:
    assert RandomSearch(combo_space, seed=0).ask().stage == SearchStage.RANDOM
    evo = RegularizedEvolution(combo_space, population_size=2, sample_size=1, seed=0)
    first = [evo.ask() for _ in range(2)]
    assert [s.stage for s in first] == [SearchStage.INITIAL_POPULATION] * 2
    for k, suggestion in enumerate(first):
        evo.tell(suggestion, [0.1 * k])
    assert evo.ask().stage == SearchStage.MUTATION
    # the stage is not part of what makes two suggestions the same
    assert first[0] == replace(first[0], stage="something else")


def _distance(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    return sum(x != y for x, y in zip(a, b, strict=True))


def test_a_seeded_evolution_proposes_its_seeds_then_mutations_of_them(
    combo_space: SearchSpace,
) -> None:
    seeds = [RandomSearch(combo_space, seed=k).ask().arch for k in range(2)]
    evo = RegularizedEvolution(combo_space, population_size=5, sample_size=2, seed=0)
    evo.seed_population([*seeds, seeds[0]], 5)  # a repeated seed is proposed once
    first = [evo.ask() for _ in range(7)]  # more than the population: none reported yet
    assert [s.arch for s in first[:2]] == seeds
    assert {s.stage for s in first} == {SearchStage.SEEDED}
    for s in first[2:]:
        assert min(_distance(s.arch, seed) for seed in seeds) == 1
    for k, s in enumerate(first[:5]):
        evo.tell(s, [float(k)])
    assert evo.ask().stage == SearchStage.MUTATION


def test_a_seeded_random_search_proposes_its_seeds_first_only(combo_space: SearchSpace) -> None:
    seeds = [RandomSearch(combo_space, seed=k).ask().arch for k in range(3)]
    search = RandomSearch(combo_space, seed=0)
    search.seed_population(seeds, 4)
    asked = [search.ask() for _ in range(6)]
    assert [s.arch for s in asked[:3]] == seeds
    assert [s.stage for s in asked] == [SearchStage.SEEDED] * 4 + [SearchStage.RANDOM] * 2
    assert min(_distance(asked[3].arch, seed) for seed in seeds) == 1


def test_seeding_skips_what_the_run_proposed_and_needs_seeds(combo_space: SearchSpace) -> None:
    seeds = [RandomSearch(combo_space, seed=k).ask().arch for k in range(3)]
    search = RandomSearch(combo_space, seed=0)
    search.tell(Suggestion.of(seeds[0]), [0.5])  # a resumed run's seed, replayed
    search.seed_population(seeds, 2)  # what the first population still lacks
    assert [search.ask().arch for _ in range(2)] == seeds[1:]
    assert search.ask().stage == SearchStage.RANDOM
    search.seed_population([], 5)
    assert search.ask().stage == SearchStage.RANDOM
