"""The registry of Optuna samplers: ``[search] sampler`` names an entry of :data:`SAMPLERS`.

An entry has ``make(seed, options)``, the seeded Optuna sampler. A third-party sampler registers
under the entry point group ``ckptnas.samplers``. :class:`~ckptnas.search.OptunaStrategy` looks
its sampler up here; :mod:`ckptnas.search._registry` re-exports the registry beside the others.
Entries are small: Optuna is imported by ``make``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ckptnas.plugins import Registry

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class OptunaSampler:
    """An Optuna sampler class, by its name in :mod:`optuna.samplers`."""

    class_name: str

    def make(self, seed: int, options: Mapping[str, Any]) -> optuna.samplers.BaseSampler:
        """The sampler, seeded, with ``options`` as its keywords.

        Raises
        ------
        ValueError
            If the sampler refuses an option.
        """
        import optuna

        cls = getattr(optuna.samplers, self.class_name)
        try:
            sampler: optuna.samplers.BaseSampler = cls(seed=seed, **options)
        except TypeError as exc:
            raise ValueError(
                f"sampler {self.class_name} refuses options {dict(options)!r}: {exc}"
            ) from None
        return sampler


#: ``[search] sampler`` to the Optuna sampler of ``strategy = "optuna"``.
SAMPLERS: Registry[Any] = Registry("sampler", key="[search] sampler", group="ckptnas.samplers")
SAMPLERS.register("tpe", OptunaSampler("TPESampler"))
SAMPLERS.register("nsga2", OptunaSampler("NSGAIISampler"))
SAMPLERS.register("nsga3", OptunaSampler("NSGAIIISampler"))
SAMPLERS.register("random", OptunaSampler("RandomSampler"))
SAMPLERS.register("gp", OptunaSampler("GPSampler"))
SAMPLERS.register("qmc", OptunaSampler("QMCSampler"))
