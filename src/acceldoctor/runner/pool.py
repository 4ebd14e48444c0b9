"""The parent side: hand tasks to a worker, detect hangs and crashes, replace dead workers."""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from typing import Any

from acceldoctor.runner.worker import Task, worker_main

STARTUP_TIMEOUT_S = 180.0

ProgressCallback = Callable[[int, int, str], None]


class WorkerStartError(RuntimeError):
    pass


def _signal_name(exitcode: int | None) -> str:
    if exitcode is None:
        return "unknown"
    if exitcode < 0:
        try:
            return signal.Signals(-exitcode).name
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"


class Worker:
    """One child process running tasks sequentially."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # fork is unsafe once a device runtime has started
        self.conn, child_conn = ctx.Pipe()
        self.process = ctx.Process(target=worker_main, args=(child_conn,), daemon=True,
                                   name="acceldoctor-worker")
        self.process.start()
        child_conn.close()
        self._await_ready()

    def _await_ready(self) -> None:
        ready = wait([self.conn, self.process.sentinel], STARTUP_TIMEOUT_S)
        if self.conn in ready:
            try:
                if self.conn.recv().get("ready"):
                    return
            except EOFError:
                pass
        self.kill()
        raise WorkerStartError(
            f"the worker process did not start ({_signal_name(self.process.exitcode)}); "
            "is torch importable in this environment?"
        )

    def run(self, task: Task, timeout_s: float, on_progress: ProgressCallback | None = None) -> dict[str, Any]:
        start = time.perf_counter()
        self.conn.send(task)
        while True:
            ready = wait([self.conn, self.process.sentinel], max(0.0, start + timeout_s - time.perf_counter()))
            elapsed = time.perf_counter() - start
            if self.conn not in ready:
                break
            try:
                message = self.conn.recv()
            except EOFError:
                break  # died right after sending; handled as a crash below
            if "progress" not in message:
                return message
            if on_progress is not None:
                on_progress(*message["progress"])
        if not ready:
            self.kill()
            return {"status": "timeout", "duration_s": elapsed, "metrics": [],
                    "message": f"the check did not finish within {timeout_s:g} s and was stopped; "
                               "the device or its driver may be hung"}
        self.process.join(5)
        how = _signal_name(self.process.exitcode)
        return {"status": "crash", "duration_s": elapsed, "metrics": [],
                "message": f"the process running the check died ({how}); the device, driver or an "
                           "operator crashed"}

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(10)
        self.conn.close()

    def close(self) -> None:
        if self.process.is_alive():
            try:
                self.conn.send(None)
                self.process.join(5)
            except (BrokenPipeError, OSError):
                pass
        self.kill()


class WorkerPool:
    """Keeps one live worker; replaces it after a crash or timeout."""

    def __init__(self) -> None:
        self._worker: Worker | None = None

    def run(self, task: Task, timeout_s: float, on_progress: ProgressCallback | None = None) -> dict[str, Any]:
        if self._worker is None or not self._worker.alive:
            self._worker = Worker()
        outcome = self._worker.run(task, timeout_s, on_progress)
        if outcome["status"] in ("timeout", "crash"):
            self._worker.kill()
            self._worker = None
        return outcome

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
