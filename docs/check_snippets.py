"""Run the Python snippets of the documentation against a finished quickstart run.

Each page's ```python blocks run in order in one namespace (as a reader would paste them), in a
temporary directory where ``runs/quickstart`` points to the given run and ``experiments`` to the
repository's. A block preceded by ``<!-- check: skip -->`` is not run (it needs a cluster that
is not here).

Usage::

    ckptnas run experiments/quickstart.toml --out /tmp/docs-run --workers 2
    python docs/check_snippets.py /tmp/docs-run
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import traceback
from pathlib import Path

DOCS = Path(__file__).resolve().parent
PAGES = [
    "getting-started.md",
    "report.md",
    "concepts.md",
    "configuration.md",
    "results-schema.md",
    "cluster.md",
]
BLOCK = re.compile(r"(<!-- check: skip -->\s*\n)?```python\n(.*?)```", re.DOTALL)


def blocks(page: Path) -> list[tuple[bool, str]]:
    """The page's Python blocks and whether each is to be skipped."""
    return [(bool(m.group(1)), m.group(2)) for m in BLOCK.finditer(page.read_text("utf-8"))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", help="a finished run of experiments/quickstart.toml")
    parser.add_argument("pages", nargs="*", default=PAGES)
    args = parser.parse_args()
    run_dir = Path(args.run_dir).resolve()
    failures = 0
    with tempfile.TemporaryDirectory(prefix="ckptnas-docs-") as tmp:
        (Path(tmp) / "runs").mkdir()
        (Path(tmp) / "runs" / "quickstart").symlink_to(run_dir)
        (Path(tmp) / "experiments").symlink_to(DOCS.parent / "experiments")
        os.chdir(tmp)
        for name in args.pages:
            namespace: dict[str, object] = {"__name__": "__main__"}
            for i, (skip, code) in enumerate(blocks(DOCS / name), 1):
                label = f"{name} block {i}"
                if skip:
                    print(f"--- {label}: skipped")
                    continue
                print(f"--- {label}")
                try:
                    exec(compile(code, label, "exec"), namespace)
                except Exception:
                    traceback.print_exc()
                    failures += 1
    print(f"{failures} failing block(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
