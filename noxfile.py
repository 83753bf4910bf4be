"""Development sessions: ``nox -s tests``, ``lint``, ``bench``, ``bench_smoke``, ``docs``."""

from __future__ import annotations

import subprocess

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True

# A bare ``torch`` requirement pulls a multi-GB CUDA build; the CPU wheel is installed first.
TORCH = "torch==2.13.0"


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (slow tests excluded unless ``-- -m slow`` is passed)."""
    session.install(TORCH)
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint and format check) and mypy in strict mode."""
    session.install(TORCH)
    session.install("-e", ".[lint]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Run the asv suite once (``--quick``) on this commit and publish the pages.

    ``nox -s bench -- --bench WarmStart`` passes extra arguments to ``asv run``; view the pages
    with ``asv preview`` (they are written to ``.asv/html``).
    """
    session.install(TORCH)
    session.install("-e", ".[bench]")
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    session.run("asv", "machine", "--yes")
    session.run(
        "asv", "run", "--python=same", "--quick", "--set-commit-hash", commit, *session.posargs
    )
    session.run("asv", "publish")


@nox.session
def bench_smoke(session: nox.Session) -> None:
    """Every benchmark once, shrunk (``CKPTNAS_BENCH_SMOKE=1``): fails if any benchmark fails.

    What CI runs (``.ci/bench-smoke``), about two minutes on two cores; its figures mean
    nothing. ``nox -s bench_smoke -- --bench TransferStep`` passes extra arguments to ``asv run``.
    """
    session.install(TORCH)
    session.install("-e", ".[bench]")
    session.run("bash", ".ci/bench-smoke", *session.posargs, external=True)


@nox.session
def docs(session: nox.Session) -> None:
    """Regenerate the configuration and API pages from the code, then build the site strictly."""
    session.install(TORCH)
    session.install("-e", ".[docs]")
    session.run("python", "docs/gen_config_reference.py")
    session.run("python", "docs/gen_api.py")
    session.run("mkdocs", "build", "--strict", "-d", ".site-docs")
