"""The parent side: hand tasks to a worker, detect hangs and crashes, replace dead workers."""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from typing import Any

from acceldoctor.runner.worker import Task, WarmUp, worker_main

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
        self.warm_devices: set[str] = set()
        self.ready = False

    def wait_ready(self) -> None:
        """Block until the worker has imported torch and the checks (started early, this overlaps the
        parent's own imports)."""
        if self.ready:
            return
        reply = self._receive(STARTUP_TIMEOUT_S)
        if not (isinstance(reply, dict) and reply.get("ready")):
            self.kill()
            raise WorkerStartError(
                f"the worker process did not start ({_signal_name(self.process.exitcode)}); "
                "is torch importable in this environment?"
            )
        self.ready = True

    def _receive(self, timeout_s: float, on_progress: ProgressCallback | None = None) -> dict[str, Any] | None:
        """The next non-progress message, or None when the worker died or the time ran out."""
        deadline = time.perf_counter() + timeout_s
        while True:
            ready = wait([self.conn, self.process.sentinel], max(0.0, deadline - time.perf_counter()))
            if self.conn not in ready:
                return None
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                return None
            if "progress" not in message:
                return message
            if on_progress is not None:
                on_progress(*message["progress"])

    def _send(self, message: object) -> bool:
        try:
            self.conn.send(message)
            return True
        except (BrokenPipeError, OSError):
            return False

    def warm_up(self, device: str) -> dict[str, Any] | None:
        """Initialise `device` in the worker; None when that hung or killed the worker."""
        if device in self.warm_devices:
            return {"warm": True}
        reply = self._receive(STARTUP_TIMEOUT_S) if self._send(WarmUp(device)) else None
        if reply and reply.get("warm"):
            self.warm_devices.add(device)
        return reply

    def run(self, task: Task, timeout_s: float, on_progress: ProgressCallback | None = None) -> dict[str, Any]:
        start = time.perf_counter()
        reply = self._receive(timeout_s, on_progress) if self._send(task) else None
        elapsed = time.perf_counter() - start
        if reply is not None:
            return reply
        if self.process.is_alive() and elapsed >= timeout_s:
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
        if self.process.is_alive() and self._send(None):
            self.process.join(5)
        self.kill()


class WorkerPool:
    """Keeps one live worker; replaces it after a crash, a timeout or a device failure."""

    def __init__(self) -> None:
        self._worker: Worker | None = None

    def start(self) -> WorkerPool:
        """Start a worker now, without waiting for it to be ready."""
        if self._worker is None or not self._worker.alive:
            self._worker = Worker()
        return self

    def run(self, task: Task, timeout_s: float, on_progress: ProgressCallback | None = None) -> dict[str, Any]:
        self.start()
        try:
            self._worker.wait_ready()
        except WorkerStartError:
            self._worker = None
            raise
        warm = self._worker.warm_up(task.device)
        if warm is None or not warm.get("warm"):
            self._retire()
            why = warm["error"] if warm else f"it did not respond within {STARTUP_TIMEOUT_S:g} s of first use"
            return {"status": "fail", "duration_s": 0.0, "metrics": [],
                    "message": f"the device {task.device} could not be initialised: {why}"}
        outcome = self._worker.run(task, timeout_s, on_progress)
        if outcome["status"] in ("timeout", "crash") or outcome.get("retire"):
            self._retire()
        return outcome

    def _retire(self) -> None:
        if self._worker is not None:
            self._worker.kill()
            self._worker = None

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
