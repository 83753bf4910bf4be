"""The listeners ``[tracking]`` asks for, made before the run starts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ckptnas.config import Config
from ckptnas.tracking._mlflow import MlflowListener
from ckptnas.tracking._tensorboard import TensorBoardListener

if TYPE_CHECKING:
    from ckptnas.runtime import RunListener


def tracking_listeners(config: Config) -> list[RunListener]:
    """The MLflow and TensorBoard listeners that ``[tracking]`` configures (none by default).

    ``ckptnas run`` and ``ckptnas resume`` pass them to the run; a script passes them to
    :class:`~ckptnas.Experiment` itself.

    Parameters
    ----------
    config : Config
        Its ``[tracking]`` table: ``mlflow_uri`` (with ``mlflow_experiment``, by default
        ``[experiment] name``) and ``tensorboard_dir``.

    Returns
    -------
    list of RunListener
        An :class:`MlflowListener` and a :class:`TensorBoardListener`, each when configured.

    Raises
    ------
    ConfigError
        If a key names a library that is not installed (``pip install -e ".[tracking]"``).

    Examples
    --------
    >>> config = ckptnas.load_config("experiments/quickstart.toml")      # doctest: +SKIP
    >>> listeners = tracking_listeners(config)                            # doctest: +SKIP
    >>> ckptnas.Experiment(config, "runs/demo", listeners=listeners).run()  # doctest: +SKIP
    """
    table = config.tracking
    made: list[RunListener] = []
    if table.mlflow_uri:
        experiment = table.mlflow_experiment or config.experiment.name
        made.append(MlflowListener(table.mlflow_uri, experiment))
    if table.tensorboard_dir:
        made.append(TensorBoardListener(table.tensorboard_dir))
    return made
