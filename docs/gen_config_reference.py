"""Regenerate the key tables of ``docs/configuration.md`` from :mod:`ckptnas.config`.

Field names, types, defaults and the allowed-value text (the fields' ``why`` metadata, or the
installed names of the registry a key names an entry of) come from the dataclasses; the
one-line meanings below are the only hand-written part, and the script refuses to run when a
key has no meaning or a meaning names a key that no longer exists.

Usage: ``python docs/gen_config_reference.py [--check]``
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import sys
import typing
from pathlib import Path
from typing import Any

import tomli_w

from ckptnas import config as cfg
from ckptnas.config._fields import why

PAGE = Path(__file__).with_name("configuration.md")
BEGIN = "<!-- BEGIN GENERATED: gen_config_reference.py -->"
END = "<!-- END GENERATED: gen_config_reference.py -->"

MEANINGS: dict[str, str] = {
    "experiment.name": "Name of the run; the default run directory is `runs/<name>`.",
    "experiment.out": "Run directory. `--out` overrides it.",
    "experiment.seed": "Seeds the strategy, the synthetic data, the train/validation split and "
    "each candidate's initialisation and batch order.",
    "experiment.max_candidates": "Candidates the search registers in total (a resumed run "
    "counts those already recorded). `--max-candidates` overrides it.",
    "experiment.max_in_flight": "Candidates submitted to Dask at once; 0 sizes it from the "
    "measured task time and turn-around: 2 to 16 per worker, enough that no worker waits.",
    "experiment.allow_duplicates": "Let the strategy propose an architecture already proposed in "
    "the run; when false, a strategy that finds no new one in 1000 tries stops the run.",
    "experiment.flush_interval": "Seconds between rewrites of `results.nc` while the run goes "
    "on; it is always written at the end.",
    "experiment.max_training_epochs": "Training epochs the search may spend in total, "
    "counted as candidates are submitted or continued; the fair budget when strategies or "
    "schedulers are compared. 0: only `max_candidates` limits the search.",
    "experiment.max_retries": "Times a candidate whose task raised (or whose worker died) is "
    "submitted again before it is recorded as `failed`.",
    "data.kind": "Where the data come from: generated Combo-like drug-pair data, a dataset "
    "bundled with scikit-learn, or a netCDF file.",
    "data.name": "The scikit-learn dataset; `digits_images` is `digits` as 1x8x8 images "
    "(channel, height, width), for the conv2d and cell spaces.",
    "data.path": "The netCDF file.",
    "data.inputs": "Input variables of the netCDF file; each becomes one named input with the "
    "samples first and its other dimensions after, in order: `(sample, feature)`, "
    "`(sample, length)`, `(sample, channel, height, width)`.",
    "data.target": "Target variable of the netCDF file, one-dimensional.",
    "data.sample_dim": "The dimension that indexes samples: the target's only dimension, and a "
    "dimension of every input (inputs are transposed to put it first). Empty: the target's "
    "dimension.",
    "data.task": "`auto` treats integer or boolean targets as classification, others as "
    "regression.",
    "data.val_fraction": "Share of rows held out for validation (seeded split): they score "
    "candidates, stop training early and rank the search.",
    "data.test_fraction": "Share of rows held out for testing (seeded split): nothing of the "
    "search or of full training sees them; only finished models are scored on them (top-K "
    "full training, `ckptnas evaluate`). 0: no test split.",
    "data.split_variable": "netCDF data: the variable along the sample dimension whose values, "
    "`train`, `val` or `test` (text or bytes), assign each row to a split, instead of the "
    "seeded split of the two fractions.",
    "data.n_samples": "Rows of the synthetic data.",
    "data.noise": "Standard deviation of the noise added to the standardised synthetic target.",
    "space.kind": "`dense`: the layered space of the keys below; `conv1d`, `conv2d`, `cell`: the "
    "built-in conv/pool and NAS-Bench-201 cell spaces; `python`: a space of your own made by "
    "`factory` (see [Your own search space](own-space.md)).",
    "space.factory": "The function that makes the space, called as "
    "`function(inputs, output_size, **options)`; a file path is relative to the configuration "
    "file.",
    "space.options": "Keyword arguments of the space's factory, for every kind but `dense` "
    "(the built-in kinds' options are listed in [Your own search space](own-space.md)).",
    "space.num_nodes": "Dense space: op nodes of the shared trunk.",
    "space.input_nodes": "Op nodes in each input branch; 0 feeds the inputs to the trunk as "
    "they are.",
    "space.units": "Widths a dense layer may take.",
    "space.activations": "Activations a dense layer may take; every (units, activation) pair is "
    "one choice, besides `identity`.",
    "space.skip_connections": "Follow each trunk op node with a skip node.",
    "space.max_skip": "How many nodes a skip connection may span at most.",
    "space.shared_inputs": "Groups of inputs of equal width that go through one branch with "
    'shared weights, e.g. `[["drug1", "drug2"]]`.',
    "search.strategy": "`evolution` (regularized evolution), `random` search, or `optuna` (the "
    "Optuna sampler `sampler` names, through ask/tell; one categorical parameter per variable "
    "node).",
    "search.population_size": "Regularized evolution: architectures are drawn at random until "
    "this many candidates have reported; then the size of the aging population.",
    "search.sample_size": "Regularized evolution: population members drawn to pick each "
    "parent (the best of them); at most `population_size`.",
    "search.mutation_bias": "Regularized evolution: node *i* is mutated with probability "
    "proportional to (*i* + 1) ** bias; larger values favour later nodes.",
    "search.sampler": 'With `strategy = "optuna"`: TPE, NSGA-II (several objectives), '
    "NSGA-III, random, Gaussian-process or quasi-Monte Carlo sampling.",
    "search.sampler_options": 'With `strategy = "optuna"`: keyword arguments of the '
    "sampler's class, e.g. `{n_startup_trials = 5}` for TPE or `{population_size = 20}` for "
    "NSGA-II; its seed is `[experiment] seed`.",
    "search.objectives": "What a candidate is judged by: the final validation metric, loss, "
    "parameter count, or inference latency (the median time of a forward pass over 256 "
    "validation rows, measured after training). The first, `val_metric`, is the primary "
    "objective (summaries, top-K, evolution's parents); with two or more, `results.nc` marks "
    "the Pareto front.",
    "search.directions": "`maximize` or `minimize` for each objective; empty: `val_metric` "
    "up, the others down.",
    "search.hyperparameters": "Training hyperparameters sampled per candidate (see "
    "[Hyperparameters](#hyperparameters)): `learning_rate`, `weight_decay`, `dropout` as "
    "`{low, high, log}` or a list, `batch_size` as a list. They override `[training]`.",
    "search.scheduler": "How long each candidate trains: `none`, each `[training] epochs`; "
    "`asha`: asynchronous successive halving, each candidate trains `min_epochs` and the best "
    "are continued from their own checkpoints to the next rungs (`min_epochs` times "
    "`reduction_factor` to the power *k*, up to `max_epochs`); `hyperband`: asynchronous "
    "Hyperband, several ASHA brackets starting at successive rungs; `median`: the median "
    "stopping rule, each candidate trains on in steps unless its best metric so far is below "
    "the median of the others' running averages. Any scheduler a plugin registers may be named.",
    "search.scheduler_options": "Options of the scheduler, which checks them: `hyperband` "
    "takes `brackets` (default all the rungs allow); `median` takes `grace_epochs` (default "
    "`min_epochs`), `step_epochs` (default `grace_epochs`) and `min_candidates` (default 3).",
    "search.min_epochs": "With `asha` and `hyperband`: epochs of the first rung; with `median`: "
    "the default `grace_epochs`.",
    "search.max_epochs": "With a scheduler other than `none`: epochs of the longest training; "
    "0 takes `[training] epochs`.",
    "search.reduction_factor": "With `asha` and `hyperband`: one in this many candidates of "
    "a rung is continued to the next, whose epochs are this many times as many.",
    "transfer.policy": "`lcp` warm-starts each candidate from the donor with the longest "
    "common architecture prefix (the published method); `aligned` from the donor sharing the "
    "most parameters by layer identity, wherever the layers are; `widen` takes the `lcp` "
    "donor and also copies the overlapping block of layers that differ only in width (not "
    "function-preserving); `none` trains every candidate from scratch.",
    "transfer.freeze": "Keep transferred parameters fixed (`requires_grad = False`) while the "
    "candidate trains.",
    "transfer.dedup": "With `freeze`, a child's checkpoint refers to the frozen tensors it "
    "holds unchanged in its donor's checkpoint (hard-linked under `checkpoints/blobs/`) instead "
    "of writing them again; no effect without `freeze`.",
    "transfer.seed_population": "With `donor_runs`: the strategy's first `[search] "
    "population_size` candidates are the donor runs' best distinct architectures, then "
    "mutations of them (stage `seeded`), rather than drawn at random; no effect without "
    "`donor_runs`.",
    "transfer.donor_runs": "Finished search run directories (relative to the configuration "
    "file) whose trained candidates are donors too, read only: a new search warm-starts from "
    "them where layer identities match. A run listed that is missing, unfinished, of no "
    "matching candidate, or changed since this run started is refused at start-up.",
    "training.epochs": "Epochs each candidate is trained; the objective is the validation "
    "metric after the last one.",
    "training.batch_size": "Rows per optimisation step (Adam).",
    "training.learning_rate": "Adam learning rate.",
    "training.device": "`auto` uses CUDA when the worker sees a GPU, else the CPU.",
    "training.precision": "`bfloat16` runs the forward passes of training, validation and the "
    "latency measurement under `torch.autocast` (bfloat16 matrix products on the GPU's tensor "
    "cores); weights, Adam's state and checkpoints stay float32 and losses are computed in "
    "float32, so warm-starts and checkpoint files are the same either way. The results record "
    "it in the attribute `precision`.",
    "training.max_seconds": "How long one candidate may run on its worker, in seconds. One past "
    "it is stopped (its Dask worker is restarted, which ends even a `build()` that never "
    "returns) and recorded as failed with the reason, not retried; the run goes on. `0`: no "
    "limit.",
    "training.measure_latency": "Time each candidate's forward pass once it is trained: the "
    "median of five passes over 256 validation rows, recorded as `latency`. Always on when "
    "`[search] objectives` has `latency`; off otherwise, as it costs a small candidate a few "
    "percent of its time (NaN is recorded).",
    "cluster.scheduler": "Address of a running Dask scheduler, e.g. `tcp://host:8786`. "
    "`--scheduler` overrides it.",
    "cluster.kind": "`local` starts a LocalCluster on this machine; `address` connects to "
    "`scheduler`; `slurm`, `pbs`, `lsf` and `sge` start workers as batch jobs through "
    'dask-jobqueue. A `scheduler` with `kind = "local"` connects to it, as `address` does.',
    "cluster.n_workers": "Workers of the embedded LocalCluster, or the batch workers to start. "
    "`--workers` overrides it.",
    "cluster.candidates_per_gpu": "Embedded cluster on a GPU machine: worker processes, so "
    "candidates trained at once, per GPU. Small networks leave a GPU mostly idle while Python "
    "launches kernels; several processes overlap that.",
    "cluster.adapt_minimum": "Batch kinds: the fewest workers Dask's adaptive scaling keeps.",
    "cluster.adapt_maximum": "Batch kinds: the most workers Dask's adaptive scaling starts; 0 "
    "starts `n_workers` and keeps them.",
    "cluster.jobqueue": "Batch kinds: keywords of dask-jobqueue's cluster class (`queue`, "
    "`account`, `walltime`, `cores`, `memory`, `processes`, `job_extra_directives`, ...), "
    "passed as they are. `ckptnas cluster-script` prints the job script they make.",
    "cluster.worker_profile": "Dask's statistical profiler on the embedded LocalCluster's "
    "workers (the dashboard's Profile page). It samples the training thread every 10 ms and "
    "slows the epochs of small networks; workers of a cluster named by `scheduler` follow their "
    "own Dask configuration.",
    "tracking.mlflow_uri": "Log the run to MLflow: one parent run, a nested run per candidate, "
    "the best model at the end (see [Following a run in MLflow and TensorBoard]"
    "(report.md#following-a-run-in-mlflow-and-tensorboard)). A relative directory, `file:` or "
    "`sqlite:///` path is taken from the configuration file's folder. Needs "
    '`pip install -e ".[tracking]"`.',
    "tracking.mlflow_experiment": "The MLflow experiment the run is logged in, made if it does "
    "not exist; empty: `[experiment] name`.",
    "storage.keep": "`all` keeps every candidate's checkpoint; `useful` deletes one once no "
    "candidate can be planned, continued or fully trained from it: not among the last "
    "`[search] population_size` to finish (the donor pool, the only candidates the planner "
    "offers as donors then), nor the best `keep_top`, nor one the scheduler could still "
    "continue, nor the donor of a task in flight (see [Disk budget](concepts.md#disk-budget)).",
    "storage.keep_top": "The best candidates by objective whose checkpoints are never deleted: "
    "`ckptnas train-topk -k` up to this many trains from their checkpoints (`--init "
    "checkpoint`). 5, as `-k` by default.",
    "storage.max_bytes": "A cap on the bytes the run's checkpoints take on disk (blobs and "
    "training states included), room for the checkpoints of the tasks in flight counted: past "
    "it, the worst candidates by objective are deleted first, never one of the best "
    "`keep_top`, one the scheduler could continue or one a task in flight reads. When only "
    "those are left the run says so once and goes on. 0: no cap.",
    "tracking.tensorboard_dir": "Write TensorBoard event files under `<dir>/<run directory's "
    "name>/`: one folder per candidate and one for the search's best-so-far. A relative path "
    "is taken from the configuration file's folder.",
}


def type_name(annotation: Any) -> str:
    """A TOML-flavoured name for a field type."""
    if typing.get_origin(annotation) is list:
        (inner,) = typing.get_args(annotation)
        return f"list of {type_name(inner)}"
    if typing.get_origin(annotation) is dict:
        return "table"
    names = {int: "integer", float: "float", str: "string", bool: "boolean"}
    return names[annotation]


def toml_value(value: Any) -> str:
    """A value as it would be written in the TOML file, on one line (it sits in a table cell)."""
    if isinstance(value, dict):
        inner = ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items())
        return f"{{ {inner} }}" if inner else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return tomli_w.dumps({"x": value}).strip().removeprefix("x = ")


def tables() -> list[tuple[str, type[Any]]]:
    """TOML table name and its dataclass, in the order of :class:`ckptnas.config.Config`."""
    hints = typing.get_type_hints(cfg.Config)
    return [(f.name, hints[f.name]) for f in dataclasses.fields(cfg.Config)]


def default_of(field: dataclasses.Field[Any]) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def render() -> str:
    """The generated Markdown: one section and one key table per TOML table."""
    seen: set[str] = set()
    out = [BEGIN, ""]
    for table, cls in tables():
        hints = typing.get_type_hints(cls)
        doc = (cls.__doc__ or "").strip().split("\n")[0]
        summary = doc.split(":", 1)[1].strip() if ":" in doc else doc
        out += [f"### `[{table}]`", "", summary[0].upper() + summary[1:], ""]
        out += ["| key | type | default | allowed | meaning |", "| --- | --- | --- | --- | --- |"]
        for field in dataclasses.fields(cls):
            key = f"{table}.{field.name}"
            if key not in MEANINGS:
                sys.exit(f"gen_config_reference.py: no meaning written for {key}")
            seen.add(key)
            allowed = why(field) or "any"
            cells = [
                f"`{field.name}`",
                type_name(hints[field.name]),
                f"`{toml_value(default_of(field))}`",
                html.escape(allowed, quote=False).replace("|", "\\|"),
                MEANINGS[key].replace("|", "\\|"),
            ]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    stale = sorted(set(MEANINGS) - seen)
    if stale:
        sys.exit(f"gen_config_reference.py: meanings for keys that do not exist: {stale}")
    out.append(END)
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if the page is out of date")
    args = parser.parse_args()
    page = PAGE.read_text(encoding="utf-8")
    if BEGIN not in page or END not in page:
        sys.exit(f"{PAGE}: markers {BEGIN!r} and {END!r} not found")
    head, rest = page.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    new = head + render() + tail
    if args.check:
        if new != page:
            sys.exit(f"{PAGE} is out of date; run python docs/gen_config_reference.py")
        return 0
    PAGE.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
