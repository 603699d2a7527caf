"""lanchat's own thread pool: at most `max_workers` named workers and a shared work queue.

Callers use `submit` (queues when every worker is busy), `try_submit` (refuses at once
instead: the server answers `server_full` rather than leave a client waiting), the
`busy`/`idle` counts, and `shutdown` or the context manager. Workers start on demand up to
`max_workers`; an idle worker blocks on the queue and uses no CPU, and with `idle_timeout`
it ends once it has had nothing to do for that long, so threads and their memory go back
after a rush. A task that raises is logged and its worker lives on; its exception is kept
in its `Task`.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
import time
from types import TracebackType
from typing import Any, Callable, List, Optional, Type

log = logging.getLogger(__name__)

_pool_numbers = itertools.count(1)


def default_workers() -> int:
    """A pool size for this machine when tasks are short: a few workers per core."""
    return min(16, (os.cpu_count() or 1) + 2)


class PoolShutDown(RuntimeError):
    """Raised by submit after shutdown."""


class PoolBusy(RuntimeError):
    """Raised by try_submit when no worker is free."""


class TaskTimeout(TimeoutError):
    """Raised by Task.result/exception when the task is not done in time."""


class Task:
    """A handle on submitted work: `done()`, `result(timeout)`, `exception(timeout)`."""

    def __init__(self, fn: Callable[..., Any], args: tuple) -> None:
        self._fn = fn
        self._args = args
        self._done = threading.Event()
        self._result: Any = None
        self._exception: Optional[BaseException] = None

    def _run(self) -> None:
        """Run the task and keep its outcome; the worker marks it done (see `_work`)."""
        try:
            self._result = self._fn(*self._args)
        except BaseException as exc:
            self._exception = exc
            log.exception("task %r failed", getattr(self._fn, "__qualname__", self._fn))

    def done(self) -> bool:
        """True once the task has returned or raised."""
        return self._done.is_set()

    def exception(self, timeout: Optional[float] = None) -> Optional[BaseException]:
        """Wait up to `timeout` seconds and return what the task raised, or None."""
        if not self._done.wait(timeout):
            raise TaskTimeout(f"task not done within {timeout} s")
        return self._exception

    def result(self, timeout: Optional[float] = None) -> Any:
        """Wait up to `timeout` seconds and return the task's value, or raise its error."""
        exc = self.exception(timeout)
        if exc is not None:
            raise exc
        return self._result


class ThreadPool:
    """At most `max_workers` threads running submitted tasks, first come first served.

    A worker idle for `idle_timeout` seconds ends (None: workers stay until `shutdown`).
    """

    def __init__(
        self, max_workers: int, name: str = "", idle_timeout: Optional[float] = None
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.max_workers = max_workers
        self.name = name or f"pool{next(_pool_numbers)}"
        self.idle_timeout = idle_timeout
        self._queue: queue.SimpleQueue[Optional[Task]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: List[threading.Thread] = []  # the workers alive
        self._worker_numbers = itertools.count(1)
        self._busy = 0  # tasks queued or running
        self._closed = False

    @property
    def busy(self) -> int:
        """Workers running a task, plus tasks waiting for one."""
        return self._busy

    @property
    def idle(self) -> int:
        """Workers that could start a task at once (started or not yet started)."""
        return max(0, self.max_workers - self._busy)

    @property
    def threads(self) -> int:
        """Worker threads alive: started on demand, not yet ended by idling or shutdown."""
        return len(self._threads)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Task:
        """Queue `fn(*args)`; it runs as soon as a worker is free."""
        return self._submit(fn, args, refuse_when_busy=False)

    def try_submit(self, fn: Callable[..., Any], *args: Any) -> Task:
        """Run `fn(*args)` on a free worker, or raise PoolBusy at once if none is free."""
        return self._submit(fn, args, refuse_when_busy=True)

    def _submit(self, fn: Callable[..., Any], args: tuple, refuse_when_busy: bool) -> Task:
        task = Task(fn, args)
        with self._lock:
            if self._closed:
                raise PoolShutDown(f"pool {self.name} is shut down")
            if refuse_when_busy and self._busy >= self.max_workers:
                raise PoolBusy(f"all {self.max_workers} workers of {self.name} are busy")
            self._busy += 1
            if len(self._threads) < min(self._busy, self.max_workers):
                self._start_worker()
            self._queue.put(task)
        return task

    def _start_worker(self) -> None:
        thread = threading.Thread(
            target=self._work, name=f"{self.name}-worker-{next(self._worker_numbers)}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        while True:
            try:
                task = self._queue.get(timeout=self.idle_timeout)
            except queue.Empty:
                if self._end_idle_worker():
                    return
                continue
            if task is None:  # the wake-up that tells a worker to stop
                return
            try:
                task._run()
            finally:
                with self._lock:
                    self._busy -= 1
                # Only now: whoever a finished task wakes may count on this worker being free.
                task._done.set()

    def _end_idle_worker(self) -> bool:
        """Count this idle worker out and return True, unless the tasks need it.

        A task queued just now counts in `busy` and may be waiting for this very worker:
        there must stay at least one worker per queued or running task.
        """
        with self._lock:
            if len(self._threads) <= self._busy:
                return False
            self._threads.remove(threading.current_thread())
            return True

    def shutdown(self, wait: bool = True, timeout: Optional[float] = None) -> bool:
        """Refuse new tasks, let queued ones finish, stop the workers.

        With `wait`, block until every worker has ended or `timeout` seconds have passed;
        return True if all have ended.
        """
        with self._lock:
            if not self._closed:
                self._closed = True
                for _ in self._threads:
                    self._queue.put(None)
            threads = list(self._threads)
        if not wait:
            return all(not t.is_alive() for t in threads)
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in threads:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
        return all(not t.is_alive() for t in threads)

    def __enter__(self) -> ThreadPool:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.shutdown(wait=True)
