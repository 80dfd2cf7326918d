"""The Dask cluster fpi trains and scores on: one given by its scheduler's address, or a local one.

Without a scheduler address a `LocalCluster` is started (2 worker processes
of 1 thread, no dashboard), so the same command works on a laptop.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator


from fpi.errors import FpiError

__all__ = ["dask_client", "worker_count"]


LOCAL_WORKERS = 2
TASKS_PER_WORKER = 2
"""At least this many buckets per worker when scoring, so every worker has work."""


@contextlib.contextmanager
def dask_client(address: str | None = None, *, n_workers: int = LOCAL_WORKERS) -> Iterator[Any]:
    """A `distributed.Client` for `address`, or for a new local cluster closed on exit."""
    from distributed import Client, LocalCluster

    if address:
        try:
            client = Client(address, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise FpiError(f"cannot reach the Dask scheduler at {address} ({exc}); check the address "
                           "(e.g. tcp://host:8786) and that the scheduler is running") from exc
        with client:
            yield client
        return
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR)
    with cluster, Client(cluster) as client:
        yield client


def worker_count(client: Any) -> int:
    return max(1, len(client.scheduler_info(n_workers=-1)["workers"]))
