"""``ckptnas predict`` and ``ckptnas export``: a trained candidate put to use."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ckptnas.cli._common import Subparsers


def register(sub: Subparsers) -> None:
    """Add the ``predict`` and ``export`` commands."""
    predict = sub.add_parser("predict", help="a trained candidate's predictions for a netCDF file")
    predict.add_argument("run_dir")
    predict.add_argument("data", help="netCDF file with the run's input variables, raw")
    predict.add_argument("--candidate", type=int, required=True, help="the candidate's id")
    predict.add_argument("--out", help="output file (default: DATA.predictions.nc)")
    predict.set_defaults(func=cmd_predict)

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
    export.set_defaults(func=cmd_export)


def cmd_predict(args: argparse.Namespace) -> int:
    """Write a candidate's predictions for the inputs of ``args.data``."""
    from ckptnas.runtime import predict_file

    out = Path(args.out) if args.out else Path(args.data).with_suffix(".predictions.nc")
    ds = predict_file(args.run_dir, args.candidate, args.data, out)
    print(f"wrote {out}: {ds.sizes[next(iter(ds.dims))]} predictions of candidate {args.candidate}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write a candidate as a model file in ``args.format``, with its description."""
    from ckptnas.runtime import export_model

    exported = export_model(args.run_dir, args.candidate, args.format, args.out)
    print(f"wrote {exported.model_file} and {exported.description_file}")
    return 0
