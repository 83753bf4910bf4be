"""HPC clusters through dask-jobqueue: ``[cluster] kind`` and ``ckptnas cluster-script``."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import tomli_w
import torch

from ckptnas import Experiment
from ckptnas.cli import main
from ckptnas.config import Config, ConfigError, config_from_dict, load_config
from ckptnas.errors import ClusterError
from ckptnas.runtime import _experiment

jobqueue = pytest.importorskip("dask_jobqueue", reason="dask-jobqueue starts batch clusters")

GPU_PARTITION = {
    "queue": "gpu",
    "account": "nas-project",
    "walltime": "02:00:00",
    "cores": 8,
    "memory": "64GB",
    "processes": 4,
    "job_extra_directives": ["--gres=gpu:4"],
    "worker_extra_args": ["--resources", "GPU=1"],
}


def config_file(tmp_path: Path, kind: str, options: dict[str, Any]) -> Path:
    path = tmp_path / f"{kind}.toml"
    path.write_text(tomli_w.dumps({"cluster": {"kind": kind, "n_workers": 8, "jobqueue": options}}))
    return path


def without_address(script: str) -> str:
    """A job script with its scheduler's address (a fresh port each time) taken out."""
    return re.sub(r"tcp://\S+", "tcp://SCHEDULER", script)


@pytest.mark.parametrize(
    ("kind", "cls", "options"),
    [
        ("slurm", "SLURMCluster", GPU_PARTITION),
        ("pbs", "PBSCluster", GPU_PARTITION | {"job_extra_directives": ["-l ngpus=4"]}),
    ],
)
def test_cluster_script_is_dask_jobqueues_own(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    cls: str,
    options: dict[str, Any],
) -> None:
    path = config_file(tmp_path, kind, options)
    assert load_config(path).cluster.jobqueue == options
    assert main(["cluster-script", str(path)]) == 0
    printed = capsys.readouterr().out
    with getattr(jobqueue, cls)(**options) as cluster:
        expected = cluster.job_script()
    assert without_address(printed.strip()) == without_address(expected.strip())
    assert "--resources GPU=1" in printed and "02:00:00" in printed


def test_a_keyword_dask_jobqueue_does_not_take_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_file(tmp_path, "slurm", {"cores": 4, "memory": "8GB", "partition": "gpu"})
    assert main(["cluster-script", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "[cluster.jobqueue] SLURMCluster" in err[0] and "partition" in err[0]


@pytest.mark.parametrize(
    ("cluster", "message"),
    [
        ({"kind": "slurm"}, "needs n_workers (workers to start) or adapt_maximum"),
        ({"kind": "address"}, "scheduler must name an address when kind = 'address'"),
        ({"kind": "slurm", "n_workers": 2, "scheduler": "tcp://h:8786"}, "is for kind = 'address'"),
        ({"jobqueue": {"cores": 4}}, "options are for kind = slurm, pbs, lsf or sge"),
        ({"kind": "pbs", "adapt_minimum": 4, "adapt_maximum": 2}, "must not be below"),
        ({"kind": "condor"}, "must be one of local, address, slurm, pbs, lsf, sge"),
        (
            {"kind": "slurm", "n_workers": 1, "jobqueue": ["cores"]},
            "jobqueue = ['cores'] must be a table",
        ),
    ],
)
def test_bad_cluster_tables_are_refused(cluster: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from_dict({"cluster": cluster})


def test_cluster_script_of_a_local_run_says_what_it_is_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "local.toml"
    path.write_text("[cluster]\nn_workers = 2\n")
    assert main(["cluster-script", str(path)]) == 2
    assert "cluster-script is for kind = slurm, pbs, lsf or sge" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="about a machine with no GPU")
@pytest.mark.parametrize(("kind", "refused"), [("slurm", False), ("local", True)])
def test_a_login_node_without_a_gpu_may_start_gpu_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, refused: bool
) -> None:
    def connect(config: Config) -> None:
        raise ClusterError("connecting")

    monkeypatch.setattr(_experiment, "connect", connect)
    cluster: dict[str, Any] = {"kind": kind, "n_workers": 1}
    if kind != "local":
        cluster["jobqueue"] = {"cores": 1}
    config = config_from_dict({"cluster": cluster, "training": {"device": "cuda"}})
    expected = "no CUDA device" if refused else "connecting"
    with pytest.raises(ConfigError if refused else ClusterError, match=expected):
        Experiment(config, tmp_path / "run").run()


SMALL_JOB = {"cores": 1, "memory": "1GB"}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("queue", "gpu\ntouch pwned"),
        ("job_name", "nas\r\ntouch pwned"),
        ("walltime", "01:00:00\ntouch pwned"),
        ("job_extra_directives", ["--gres=gpu:1", "--x\ntouch pwned"]),
        ("job_script_prologue", ["module load cuda\x00"]),
        ("python", "python; touch pwned"),
        ("python", "$(touch pwned) python"),
        ("worker_command", "distributed.cli.dask_worker && touch pwned"),
        ("interface", "ib0`touch pwned`"),
        ("worker_extra_args", "--resources GPU=1"),
    ],
)
@pytest.mark.parametrize("command", ["cluster-script", "run"])
def test_jobqueue_values_that_would_add_shell_lines_are_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    key: str,
    value: Any,
) -> None:
    monkeypatch.chdir(tmp_path)
    path = config_file(tmp_path, "slurm", SMALL_JOB | {key: value})
    assert main([command, str(path)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and f"[cluster.jobqueue] {key} = " in err[0], err
    assert "pwned" not in captured.out and not (tmp_path / "runs").exists()


def test_jobqueue_arguments_reach_the_worker_command_line_as_one_argument_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = SMALL_JOB | {
        "local_directory": "/scratch/my dir",
        "worker_extra_args": ["--resources", "GPU=1", "--x", "$(touch pwned); touch pwned"],
    }
    assert main(["cluster-script", str(config_file(tmp_path, "slurm", options))]) == 0
    command = capsys.readouterr().out.strip().splitlines()[-1]
    words = shlex.split(command)
    assert words[-4:] == ["--resources", "GPU=1", "--x", "$(touch pwned); touch pwned"]
    assert words[words.index("--local-directory") + 1] == "/scratch/my dir"
    assert "--resources GPU=1" in command  # plain arguments are written as they were


def test_jobqueue_arguments_keep_environment_variables_for_the_job_to_expand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = SMALL_JOB | {"local_directory": "$TMPDIR", "python": "srun ~/venv/bin/python"}
    assert main(["cluster-script", str(config_file(tmp_path, "slurm", options))]) == 0
    command = capsys.readouterr().out.strip().splitlines()[-1]
    assert command.startswith("srun ~/venv/bin/python -m ")
    assert "--local-directory $TMPDIR" in command
