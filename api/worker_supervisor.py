"""uvicorn's worker supervisor, told at once when a worker dies during its health check."""

from __future__ import annotations

from uvicorn.supervisors import Multiprocess


class WorkerSupervisor(Multiprocess):
    """Restarts a dead worker and honours SIGTERM whenever a worker dies.

    uvicorn pings each worker every half second over a socket pair and waits for the
    answer up to ``timeout_worker_healthcheck`` (300 s here: see
    recsys.cli.serve_command). The supervisor keeps its copy of the worker's end of
    that pair, so a worker killed while the supervisor waits for its answer never
    closes the pair: the supervisor waited the whole 300 s, leaving one worker of two
    and ignoring SIGTERM meanwhile. Closing that copy once the worker holds its own makes
    a dead worker's end read as closed, and the ping fails at once.
    """

    def keep_subprocess_alive(self) -> None:
        for worker in self.processes:
            # Started workers inherited their end when spawned; closing twice is a no-op.
            if worker.pid is not None:
                worker.child_conn.close()
        super().keep_subprocess_alive()
