"""``python -m ckptnas``: the command line."""

from ckptnas.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
