"""``ckptnas predict``, ``evaluate`` and ``export``: a trained candidate put to use."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ckptnas.cli._common import add_trust_flag

if TYPE_CHECKING:
    from ckptnas.cli._common import Subparsers


def register(sub: Subparsers) -> None:
    """Add the ``predict``, ``evaluate`` and ``export`` commands."""
    predict = sub.add_parser("predict", help="a trained candidate's predictions for a netCDF file")
    predict.add_argument("run_dir")
    predict.add_argument("data", help="netCDF file with the run's input variables, raw")
    predict.add_argument("--candidate", type=int, required=True, help="the candidate's id")
    predict.add_argument("--out", help="output file (default: DATA.predictions.nc)")
    add_trust_flag(predict)
    predict.set_defaults(func=cmd_predict)

    evaluate = sub.add_parser(
        "evaluate", help="a trained candidate's metric on held-out test rows or a labelled file"
    )
    evaluate.add_argument("run_dir")
    evaluate.add_argument(
        "data", nargs="?", help="netCDF file with the run's input and target variables, raw"
    )
    evaluate.add_argument("--candidate", type=int, required=True, help="the candidate's id")
    evaluate.add_argument(
        "--split",
        choices=["test", "val"],
        default="test",
        help="the run's held-out test rows (default) or its validation rows",
    )
    evaluate.add_argument(
        "--init",
        choices=["scratch", "checkpoint"],
        help="score the weights of the candidate's full training with this init",
    )
    add_trust_flag(evaluate)
    evaluate.set_defaults(func=cmd_evaluate, reread=evaluate.parse_intermixed_args)

    export = sub.add_parser(
        "export", help="write a trained candidate as a model file other programs load"
    )
    export.add_argument("run_dir")
    export.add_argument("--candidate", type=int, required=True, help="the candidate's id")
    export.add_argument(
        "--format",
        choices=["torch-export", "onnx", "safetensors"],
        default="torch-export",
        help="torch.export program (.pt2), ONNX graph, or tensors for ckptnas.load_exported",
    )
    export.add_argument("--out", help="output folder (default: RUN_DIR/export)")
    add_trust_flag(export)
    export.set_defaults(func=cmd_export)


def cmd_predict(args: argparse.Namespace) -> int:
    """Write a candidate's predictions for the inputs of ``args.data``."""
    from ckptnas.runtime import predict_file

    out = Path(args.out) if args.out else Path(args.data).with_suffix(".predictions.nc")
    ds = predict_file(args.run_dir, args.candidate, args.data, out, args.trust_code)
    print(f"wrote {out}: {ds.sizes[next(iter(ds.dims))]} predictions of candidate {args.candidate}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Print a candidate's metric on a split of the run's data or on ``args.data``."""
    from ckptnas.runtime import score_candidate
    from ckptnas.storage import Init

    score = score_candidate(
        args.run_dir,
        args.candidate,
        split=args.split,
        data=args.data,
        init=None if args.init is None else Init(args.init),
        trust_code=args.trust_code,
    )
    print(score.line())
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write a candidate as a model file in ``args.format``, with its description."""
    from ckptnas.runtime import export_model

    exported = export_model(
        args.run_dir, args.candidate, args.format, args.out, trust_code=args.trust_code
    )
    print(f"wrote {exported.model_file} and {exported.description_file}")
    return 0
