"""``[experiment]``: the run's name, folder, seed and budget."""

from __future__ import annotations

from dataclasses import dataclass

from ckptnas.config._fields import non_negative, option, positive


def _plain_name(x: str) -> bool:
    return bool(x) and x.isprintable() and x not in (".", "..") and not {"/", "\\"} & set(x)


@dataclass(frozen=True)
class ExperimentConfig:
    """``[experiment]``: what the run is called, where it is written, how many candidates."""

    name: str = option(
        "quickstart",
        _plain_name,
        "a plain name: the folder under runs/ (no '/', not '.' or '..'; [experiment] out "
        "takes a path)",
    )
    out: str = option("", why="a directory path; empty means runs/<name>")
    seed: int = option(0, non_negative, ">= 0")
    max_candidates: int = option(30, positive, "> 0")
    max_in_flight: int = option(0, non_negative, ">= 0 (0: sized from task and turn-around times)")
    allow_duplicates: bool = option(False)
    flush_interval: float = option(5.0, positive, "> 0 seconds")
    max_retries: int = option(2, non_negative, ">= 0")
    max_training_epochs: int = option(0, non_negative, ">= 0 (0: no limit)")
