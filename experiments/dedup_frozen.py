"""What storing frozen tensors once saves: the quickstart search, frozen, with and without dedup.

Runs ``experiments/quickstart.toml`` with ``[transfer] freeze = true`` for 50 candidates twice on
one LocalCluster, once with ``[transfer] dedup = true`` (the default) and once with it off, and
prints for each run the checkpoints' disk use, the bytes that sharing saved and the workers'
donor cache hit rate (donor tensor reads served from memory, as the run's ``-v`` log says).

    python experiments/dedup_frozen.py                       # ~2 min on 2 cores
    python experiments/dedup_frozen.py --out /tmp/dedup --in-flight 4

With one candidate in flight (the default here) both runs train the same candidates to the same
weights, so their disk use compares directly, and the script checks that they did. With more in
flight, which candidate finishes first (and so which donors exist) depends on timing and the
searches part ways; each run's ``bytes_without_sharing`` is then the fair comparison.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from distributed import Client

from ckptnas.config import Config, load_config
from ckptnas.runtime import Experiment, connect, donor_cache_counts
from ckptnas.storage import CheckpointUsage, LineageRegistry, checkpoint_usage

HERE = Path(__file__).resolve().parent


def frozen_quickstart(candidates: int, dedup: bool, workers: int, in_flight: int = 1) -> Config:
    """The quickstart search with frozen transfer."""
    config = load_config(HERE / "quickstart.toml")
    config = config.replace("experiment", max_candidates=candidates, max_in_flight=in_flight)
    config = config.replace("transfer", freeze=True, dedup=dedup)
    return config.replace("cluster", n_workers=workers) if workers else config


def cache_counts(client: Client) -> tuple[int, int]:
    """Donor tensor reads all workers served from memory and from files, so far."""
    counts = client.run(donor_cache_counts).values()
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def run(config: Config, run_dir: Path, client: Client) -> tuple[CheckpointUsage, float, float]:
    """One search: its checkpoints' disk use, its donor cache hit rate, its wall time."""
    hits0, misses0 = cache_counts(client)
    tic = time.perf_counter()
    Experiment(config, run_dir, progress=False).run(client)
    wall = time.perf_counter() - tic
    hits1, misses1 = cache_counts(client)
    hits, misses = hits1 - hits0, misses1 - misses0
    return checkpoint_usage(run_dir), hits / max(hits + misses, 1), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="parent of the two run directories (new)")
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--workers", type=int, default=0, help="0: one per core")
    parser.add_argument("--in-flight", type=int, default=1, help="candidates trained at once")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="dedup-frozen-"))
    usage: dict[bool, CheckpointUsage] = {}
    with connect(frozen_quickstart(args.candidates, True, args.workers)) as client:
        # The workers' first tasks import torch and build the dataset: a short search first,
        # so that neither measured run pays for it.
        warm_up = frozen_quickstart(2, True, args.workers)
        Experiment(warm_up, out / "warm-up", progress=False).run(client)
        for dedup in (True, False):
            config = frozen_quickstart(args.candidates, dedup, args.workers, args.in_flight)
            run_dir = out / ("dedup" if dedup else "no-dedup")
            usage[dedup], hit_rate, wall = run(config, run_dir, client)
            u = usage[dedup]
            print(
                f"dedup={str(dedup).lower():5}  {run_dir}: {u.n_checkpoints} checkpoints, "
                f"{u.bytes_on_disk:,} bytes on disk, {u.bytes_shared:,} bytes shared "
                f"(unshared they would take {u.bytes_without_sharing:,}); "
                f"donor cache hit rate {hit_rate:.0%}; {wall:.0f} s",
                flush=True,
            )
    shared, plain = usage[True], usage[False]
    print(
        f"\ncheckpoints on disk: {shared.bytes_on_disk:,} bytes with dedup, "
        f"{plain.bytes_on_disk:,} without ({shared.bytes_on_disk / plain.bytes_on_disk:.0%})"
    )
    print(
        f"bytes saved by dedup: {shared.bytes_shared:,} "
        f"({shared.fraction_saved:.0%} of what its checkpoints would take unshared)"
    )
    same = digests(out / "dedup") == digests(out / "no-dedup")
    print(f"both runs trained the same candidates to the same checkpoint digests: {same}")


def digests(run_dir: Path) -> list[tuple[int, str | None]]:
    """Each candidate's id and checkpoint digest, in id order."""
    with LineageRegistry(run_dir, readonly=True) as registry:
        return [(r.id, r.checkpoint_digest) for r in registry.candidates()]


if __name__ == "__main__":
    main()
