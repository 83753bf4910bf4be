"""MLflow: one parent run per search, a nested run per candidate, the best model at the end.

:class:`MlflowListener` talks to the tracking store through an explicit
:class:`mlflow.tracking.MlflowClient`, never through MLflow's active run or its global tracking
URI, so a script that uses MLflow for its own runs is not disturbed. A resumed search finds its
parent run again (by a tag naming the run directory and when it was made) and logs only what
the stopped process had not.
"""

from __future__ import annotations

import inspect
import logging
import math
import socket
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ckptnas.space import Architecture, space_from_dict
from ckptnas.storage import CandidateStatus, LineageRegistry
from ckptnas.tracking import _mlflow_values as values
from ckptnas.tracking._base import Tracker, require
from ckptnas.tracking._feed import ResultFeed, Update

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)

#: Where the best model is logged among the parent run's artifacts.
MODEL_PATH = "best_model"
#: Seconds a tracking server has to accept a connection before each write.
CONNECT_SECONDS = 5.0


class MlflowListener(Tracker):
    """Log a search to MLflow while it runs: a parent run, and a nested run per candidate.

    Each candidate's nested run (named ``candidate-<id>``) has its architecture choices
    (``arch.<node>``) and searched hyperparameters as params, its per-epoch ``train_loss``,
    ``val_loss``, ``val_metric`` and ``epoch_time`` as metrics stepped by epoch, its
    ``objective``, and tags ``ckptnas.parent``, ``ckptnas.frac_params_transferred`` and
    ``ckptnas.status``; a candidate a scheduler continues gets its new epochs in the same nested
    run. The parent run has the configuration as params and ``best_objective`` per finished
    candidate. When the search finishes, the best candidate is logged as an MLflow PyTorch
    model with its preprocessing inside (``runs:/<parent run id>/best_model``), so that
    ``mlflow.pytorch.load_model`` gives a module that takes a dict of raw inputs, as
    :func:`ckptnas.load_model` does.

    A failing tracking store costs one warning and ends the logging for the run (see
    :class:`~ckptnas.tracking._base.Tracker`); the search goes on. A server (``http(s)``) is
    connected to before each write, so that one that is down is found at once rather than
    after MLflow's retries.

    Parameters
    ----------
    tracking_uri : str
        Where MLflow keeps runs: a server (``http://host:5000``), a database
        (``sqlite:///mlflow.db``) or a directory.
    experiment : str
        The MLflow experiment, made if it does not exist.
    run_name : str
        The parent run's name; empty: the run directory's name.

    Raises
    ------
    ConfigError
        If MLflow is not installed.

    Examples
    --------
    >>> listener = MlflowListener("sqlite:///mlflow.db", experiment="demo")  # doctest: +SKIP
    >>> Experiment(config, "runs/demo", listeners=[listener]).run()         # doctest: +SKIP
    """

    WHAT = "MLflow"

    def __init__(self, tracking_uri: str, experiment: str = "ckptnas", run_name: str = "") -> None:
        require("mlflow", "[tracking] mlflow_uri")
        super().__init__(tracking_uri)
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.run_name = run_name
        #: The parent run's id, once the run started.
        self.parent_run_id = ""
        self._client: MlflowClient | None = None
        self._experiment_id = ""
        self._runs: dict[int, str] = {}  # candidate id to its nested run's id
        self._node_names: list[str] = []
        self._describe: Callable[[Architecture], str] = str
        self._best_logged: int | None = None

    # -- start -----------------------------------------------------------------------------
    def start(self, registry: LineageRegistry) -> None:
        """Find or make the experiment and the parent run; learn what a stopped run logged."""
        from mlflow.tracking import MlflowClient

        _reach(self.tracking_uri)
        client = MlflowClient(self.tracking_uri)
        found = client.get_experiment_by_name(self.experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(self.experiment)
        key = values.run_key(registry)
        parents = client.search_runs(
            [experiment_id], f"tags.`ckptnas.run_key` = '{key}'", max_results=1
        )
        logged: dict[int, int] = {}
        self._runs, self._best_logged = {}, None
        if parents:
            parent = parents[0]
            self.parent_run_id = parent.info.run_id
            client.update_run(self.parent_run_id, status="RUNNING")
            best = parent.data.tags.get("ckptnas.best_model_candidate")
            self._best_logged = int(best) if best else None
            for run in _children(client, experiment_id, self.parent_run_id):
                cid = int(run.data.tags["ckptnas.candidate"])
                self._runs[cid] = run.info.run_id
                logged[cid] = int(run.data.tags.get("ckptnas.epochs_logged", 0))
        else:
            name = self.run_name or registry.run_dir.root.name
            run = client.create_run(experiment_id, tags=values.run_tags(registry, name))
            self.parent_run_id = run.info.run_id
            params = values.config_params(registry)
            _log(client, self.parent_run_id, params=params.items())
        self._client, self._experiment_id = client, experiment_id
        self.feed = ResultFeed(logged.get)
        self._node_names = values.node_names(registry)
        self._describe = _describer(registry)

    # -- each write ------------------------------------------------------------------------
    def write(self, registry: LineageRegistry, running: bool) -> None:
        """Log the candidates new or trained on since the last write; at the end, the model."""
        client = self._client
        assert client is not None
        _reach(self.tracking_uri)
        updates = self.feed.updates(registry)
        for update in updates:
            self._log_candidate(client, update)
        so_far = [("best_objective", u.best_so_far, u.finished) for u in updates]
        _log(client, self.parent_run_id, metrics=[p for p in so_far if math.isfinite(p[1])])
        if running:
            return
        pending = len(registry) - self.feed.n_finished
        # A stopped search is resumed into this same parent run, which runs again then.
        client.set_terminated(self.parent_run_id, "KILLED" if pending else "FINISHED")
        best = self.feed.best()
        if not pending and best is not None and best != self._best_logged:
            self._log_model(client, registry, best)

    def close(self) -> None:
        """Forget the client; a resumed run makes a new one."""
        self._client = None

    def _log_candidate(self, client: MlflowClient, update: Update) -> None:
        record = update.record
        run_id = self._runs.get(record.id)
        params: Iterable[tuple[str, str]] = ()
        if run_id is None:
            tags = {
                "mlflow.parentRunId": self.parent_run_id,
                "mlflow.runName": f"candidate-{record.id}",
                "ckptnas.candidate": str(record.id),
            }
            run = client.create_run(self._experiment_id, _ms(record.start_time), tags=tags)
            run_id = run.info.run_id
            self._runs[record.id] = run_id
            params = values.candidate_params(record, self._node_names).items()
        tags = values.candidate_tags(record, self._describe(record.arch), self._runs)
        # Sent last, after every metric: what a resumed run trusts to be logged already.
        tags["ckptnas.epochs_logged"] = str(len(update.curve))
        points = values.candidate_points(update)
        _log(client, run_id, params=params, metrics=points, tags=tags.items())
        status = "FINISHED" if record.status == CandidateStatus.OK else "FAILED"
        client.set_terminated(run_id, status, end_time=_ms(record.end_time))

    def _log_model(self, client: MlflowClient, registry: LineageRegistry, best: int) -> None:
        """Log the best candidate as an MLflow PyTorch model, preprocessing inside."""
        import mlflow.pytorch
        import torch

        from ckptnas._version import package_version
        from ckptnas.runtime import load_model

        model = load_model(registry.run_dir.root, best)
        version = package_version()
        # What loading the model needs: its classes are ckptnas's, its tensors torch's.
        ckptnas = "ckptnas" if "unknown" in version else f"ckptnas=={version}"
        requirements = [f"torch=={torch.__version__}", ckptnas]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / MODEL_PATH
            mlflow.pytorch.save_model(model, str(path), pip_requirements=requirements, **_pickled())
            client.log_artifacts(self.parent_run_id, str(path), MODEL_PATH)
        client.set_tag(self.parent_run_id, "ckptnas.best_model_candidate", str(best))
        self._best_logged = best
        logger.info(
            "MLflow: candidate %d logged as runs:/%s/%s", best, self.parent_run_id, MODEL_PATH
        )


def _reach(uri: str) -> None:
    """Connect to a tracking server once, so that one that is down fails at once.

    MLflow retries a request that cannot connect with growing waits (about four minutes with
    its default settings) before it raises, and the search's client loop would wait as long.
    A server reached through a proxy is left to MLflow: only the proxy can reach it.

    Raises
    ------
    OSError
        If nothing answers at the server's address within :data:`CONNECT_SECONDS`.
    """
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    if parts.scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(
        parts.hostname
    ):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with socket.create_connection((parts.hostname, port), timeout=CONNECT_SECONDS):
        pass


def _children(client: MlflowClient, experiment_id: str, parent_run_id: str) -> Iterator[Any]:
    """The nested runs of a parent run, page after page."""
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}'", page_token=token
        )
        yield from page
        token = page.token
        if not token:
            return


def _log(
    client: MlflowClient,
    run_id: str,
    metrics: Iterable[values.Point] = (),
    params: Iterable[tuple[str, str]] = (),
    tags: Iterable[tuple[str, str]] = (),
) -> None:
    """Log in as few requests as MLflow's limits allow (100 params, 100 tags, 1000 in all).

    Params go first, tags last: a tag written only once the metrics are can vouch for them.
    """
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    entities: list[Any] = [Param(k, v) for k, v in params]
    entities += [Metric(k, v, now, step) for k, v, step in metrics]
    entities += [RunTag(k, v) for k, v in tags]
    batches: list[list[Any]] = [[]]
    counts: dict[type, int] = {Param: 0, Metric: 0, RunTag: 0}
    for entity in entities:
        kind = type(entity)
        if counts[kind] == (1000 if kind is Metric else 100) or len(batches[-1]) == 1000:
            batches.append([])
            counts = dict.fromkeys(counts, 0)
        batches[-1].append(entity)
        counts[kind] += 1
    for batch in batches:
        if batch:
            client.log_batch(
                run_id,
                metrics=[e for e in batch if isinstance(e, Metric)],
                params=[e for e in batch if isinstance(e, Param)],
                tags=[e for e in batch if isinstance(e, RunTag)],
            )


def _pickled() -> dict[str, str]:
    """Save the whole module pickled, as MLflow 2 always did.

    MLflow 3's default format, ``torch.export``, traces ``forward`` with one tensor example;
    the model takes a mapping of named inputs and checks their shapes, which tracing refuses.
    """
    import mlflow.pytorch

    parameters = inspect.signature(mlflow.pytorch.save_model).parameters
    return {"serialization_format": "pickle"} if "serialization_format" in parameters else {}


def _ms(seconds: float) -> int | None:
    """Seconds since the epoch as MLflow's milliseconds; ``None`` when not known."""
    return int(seconds * 1000) if math.isfinite(seconds) else None


def _describer(registry: LineageRegistry) -> Callable[[Architecture], str]:
    """A function from an architecture to its words, as the run's space describes it."""
    try:
        space = space_from_dict(registry.recorded_space())
    # Stopped before it recorded a space, or a user's space this process may not unpickle:
    # the choices are then told as they are.
    except Exception:
        return str
    return space.describe
