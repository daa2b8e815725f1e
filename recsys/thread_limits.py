"""One BLAS/OpenMP thread budget per serving worker, for numpy, scipy, torch and faiss alike.

A request's products are small. With a pool of one thread per core in every worker
(numpy's and scipy's OpenBLAS, torch's and faiss' OpenMP), two workers on two cores
wake each other's idle spinning threads between requests and starve each other:
two workers served six times less than one should. Every serving process therefore
keeps each pool to ``RECSYS_API_TORCH_THREADS`` (default 1), whatever the
environment says, in two places:

- `recsys serve` sets the pools' environment variables before any worker starts, so
  no pool even starts its extra threads (:func:`thread_environment`);
- the app's lifespan limits every pool loaded in the process (threadpoolctl, and
  torch's own setting), which covers an app run under any other server
  (:func:`limit_threads`).
"""

from __future__ import annotations

import importlib
from pathlib import Path

# The variables BLAS and OpenMP runtimes read when they start their pools.
POOL_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

# What loads each pool: numpy's OpenBLAS, scipy's own, faiss' OpenMP and OpenBLAS.
POOL_MODULES = ("numpy", "scipy.linalg", "faiss")


def thread_environment(n_threads: int) -> dict[str, str]:
    """The environment that starts every pool with ``n_threads`` threads."""
    return dict.fromkeys(POOL_VARIABLES, str(n_threads))


def limit_threads(n_threads: int) -> dict[str, int]:
    """Limit every BLAS/OpenMP pool of this process to ``n_threads``; what each now has.

    The libraries the request path uses are imported first, so that their pools are
    loaded and limited here rather than started later at full size. Returns the
    threads per pool: each loaded library file by name, and ``torch``.
    """
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    for module in POOL_MODULES:
        importlib.import_module(module)
    threadpool_limits(limits=n_threads)  # kept for the life of the process, never restored
    torch.set_num_threads(n_threads)
    pools = {Path(pool["filepath"]).name: int(pool["num_threads"]) for pool in threadpool_info()}
    pools["torch"] = torch.get_num_threads()
    return pools
