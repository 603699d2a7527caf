"""Tests for lanchat.threadpool: results and errors, refusing when busy, shutdown, idling.

Every test synchronises with Events and Barriers, and every blocking wait has a timeout.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List

import pytest

from lanchat.threadpool import PoolBusy, PoolShutDown, TaskTimeout, ThreadPool

WAIT = 10.0  # seconds: long enough never to be hit by a healthy test


@pytest.fixture
def pool(no_thread_leak: None) -> Iterator[ThreadPool]:
    """A pool of 4 workers that is shut down (and its threads checked) afterwards."""
    with ThreadPool(4, name="testpool") as pool:
        yield pool
    assert pool.shutdown(wait=True, timeout=WAIT)


def blocker(
    started: threading.Event, release: threading.Event, value: object = None
) -> Callable[[], object]:
    """A task that says it has started, then waits to be released."""

    def task() -> object:
        started.set()
        assert release.wait(WAIT), "never released"
        return value

    return task


def block_all(pool: ThreadPool) -> List[threading.Event]:
    """Occupy every worker of the pool; return one release Event per worker."""
    releases = []
    for _ in range(pool.max_workers):
        started, release = threading.Event(), threading.Event()
        pool.submit(blocker(started, release))
        assert started.wait(WAIT)
        releases.append(release)
    return releases


# ---------------------------------------------------------------------------
# Results, errors, timeouts


def test_submit_returns_the_result(pool: ThreadPool) -> None:
    """A task's return value comes back through result()."""
    task = pool.submit(pow, 2, 10)
    assert task.result(timeout=WAIT) == 1024
    assert task.done()
    assert task.exception(timeout=0) is None


def test_result_times_out_while_the_task_runs(pool: ThreadPool) -> None:
    """result() and exception() raise TaskTimeout (a TimeoutError) when not done in time."""
    started, release = threading.Event(), threading.Event()
    task = pool.submit(blocker(started, release, "late"))
    assert started.wait(WAIT)
    assert not task.done()
    with pytest.raises(TaskTimeout):
        task.result(timeout=0.05)
    with pytest.raises(TimeoutError):
        task.exception(timeout=0)
    release.set()
    assert task.result(timeout=WAIT) == "late"
    assert task.done()


def test_result_reraises_the_tasks_exception(pool: ThreadPool) -> None:
    """A task that raises: exception() returns the error and result() raises it."""
    boom = ValueError("boom")

    def fail() -> None:
        raise boom

    task = pool.submit(fail)
    assert task.exception(timeout=WAIT) is boom
    with pytest.raises(ValueError) as info:
        task.result(timeout=WAIT)
    assert info.value is boom
    assert task.done()


def test_raising_task_is_logged_and_its_worker_lives_on(caplog: pytest.LogCaptureFixture) -> None:
    """The failure is logged with its traceback; the same worker runs the next task."""
    caplog.set_level(logging.ERROR, logger="lanchat.threadpool")

    def fail() -> None:
        raise RuntimeError("task went wrong")

    with ThreadPool(1, name="solo") as pool:
        first = pool.submit(fail)
        assert isinstance(first.exception(timeout=WAIT), RuntimeError)
        worker = pool.submit(threading.current_thread).result(timeout=WAIT)
        assert worker.is_alive()
        assert pool.threads == 1
    records = [r for r in caplog.records if r.name == "lanchat.threadpool"]
    assert len(records) == 1
    assert records[0].levelno == logging.ERROR
    assert "fail" in records[0].getMessage()
    assert records[0].exc_info is not None and records[0].exc_info[0] is RuntimeError


def test_a_task_raising_system_exit_does_not_end_its_worker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Even SystemExit from a task is kept in its Task and the worker goes on."""
    caplog.set_level(logging.CRITICAL)  # the traceback is expected; keep the output quiet
    with ThreadPool(1, name="solo") as pool:
        task = pool.submit(sys.exit, 3)
        assert isinstance(task.exception(timeout=WAIT), SystemExit)
        assert pool.submit(str, 5).result(timeout=WAIT) == "5"


def test_tasks_run_first_come_first_served(no_thread_leak: None) -> None:
    """With one worker, queued tasks run in the order they were submitted."""
    order: List[int] = []
    with ThreadPool(1, name="fifo") as solo:
        started, release = threading.Event(), threading.Event()
        solo.submit(blocker(started, release))
        assert started.wait(WAIT)
        tasks = [solo.submit(order.append, i) for i in range(20)]
        release.set()
        for task in tasks:
            task.result(timeout=WAIT)
    assert order == list(range(20))


# ---------------------------------------------------------------------------
# Busy and idle, submit and try_submit


def test_busy_and_idle_counts(pool: ThreadPool) -> None:
    """busy counts running and queued tasks; idle is what could start at once."""
    assert (pool.busy, pool.idle, pool.threads) == (0, 4, 0)
    releases = block_all(pool)
    assert (pool.busy, pool.idle, pool.threads) == (4, 0, 4)
    queued = pool.submit(str, "queued")
    assert (pool.busy, pool.idle) == (5, 0)
    releases[0].set()
    assert queued.result(timeout=WAIT) == "queued"  # ran on the worker that was freed
    assert (pool.busy, pool.idle, pool.threads) == (3, 1, 4)
    for release in releases[1:]:
        release.set()
    # Every blocker is done once a barrier of all four workers can be passed.
    barrier = threading.Barrier(4, timeout=WAIT)
    for task in [pool.submit(barrier.wait) for _ in range(4)]:
        task.result(timeout=WAIT)
    assert (pool.busy, pool.idle, pool.threads) == (0, 4, 4)


def test_try_submit_refuses_at_once_when_every_worker_is_busy(pool: ThreadPool) -> None:
    """No free worker: PoolBusy straight away, and nothing is queued."""
    releases = block_all(pool)
    began = time.monotonic()
    with pytest.raises(PoolBusy):
        pool.try_submit(str, "refused")
    assert time.monotonic() - began < 1.0  # refused, not waited for
    assert pool.busy == 4
    for release in releases:
        release.set()


def test_try_submit_accepts_again_when_a_worker_frees(pool: ThreadPool) -> None:
    """Once one task is done, try_submit gets a worker again."""
    releases = []
    tasks = []
    for _ in range(pool.max_workers):
        started, release = threading.Event(), threading.Event()
        tasks.append(pool.submit(blocker(started, release)))
        assert started.wait(WAIT)
        releases.append(release)
    with pytest.raises(PoolBusy):
        pool.try_submit(str, 1)
    releases[0].set()
    tasks[0].result(timeout=WAIT)
    assert pool.try_submit(str, 2).result(timeout=WAIT) == "2"
    for release in releases[1:]:
        release.set()


def test_a_task_is_done_only_once_its_worker_is_free() -> None:
    """Whoever sees a task done may count on its worker: busy is already down.

    The race (done first, worker freed a moment later) is rare, so the test runs many
    tasks with a tiny thread switch interval to give it every chance to show.
    """
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPool(1, name="race") as pool:
            for _ in range(2000):
                pool.submit(int).result(timeout=WAIT)
                assert pool.busy == 0
                pool.try_submit(int).result(timeout=WAIT)
    finally:
        sys.setswitchinterval(interval)


def test_submit_queues_when_every_worker_is_busy(pool: ThreadPool) -> None:
    """submit never refuses: the task waits for a worker."""
    releases = block_all(pool)
    queued = pool.submit(str, "later")
    assert not queued.done()
    releases[2].set()
    assert queued.result(timeout=WAIT) == "later"
    for release in releases:
        release.set()


def test_workers_start_on_demand_up_to_max_workers(no_thread_leak: None) -> None:
    """A pool starts a thread only when a task needs one, never more than max_workers."""
    with ThreadPool(8, name="lazy") as pool:
        assert pool.threads == 0
        pool.submit(int).result(timeout=WAIT)
        assert pool.threads == 1
        barrier = threading.Barrier(3, timeout=WAIT)
        tasks = [pool.submit(barrier.wait) for _ in range(3)]  # need 3 at once
        for task in tasks:
            task.result(timeout=WAIT)
        assert pool.threads == 3
        releases = block_all(pool)
        pool.submit(int)
        assert pool.threads == 8
        for release in releases:
            release.set()


@pytest.mark.parametrize("workers", [0, -1])
def test_max_workers_must_be_positive(workers: int) -> None:
    """A pool without workers is a programming error."""
    with pytest.raises(ValueError):
        ThreadPool(workers)


# ---------------------------------------------------------------------------
# Shutdown


def test_submit_after_shutdown_raises_pool_shut_down(no_thread_leak: None) -> None:
    """Both submit and try_submit refuse once the pool is shut down."""
    pool = ThreadPool(2, name="closed")
    pool.submit(int).result(timeout=WAIT)
    assert pool.shutdown(wait=True, timeout=WAIT)
    with pytest.raises(PoolShutDown):
        pool.submit(int)
    with pytest.raises(PoolShutDown):
        pool.try_submit(int)


def test_shutdown_of_an_unused_pool() -> None:
    """A pool that never ran a task shuts down at once, twice if asked."""
    pool = ThreadPool(3)
    assert pool.shutdown(wait=True, timeout=WAIT)
    assert pool.shutdown(wait=False)


def test_shutdown_lets_queued_tasks_finish(no_thread_leak: None) -> None:
    """Tasks submitted before shutdown still run; the workers then end."""
    pool = ThreadPool(1, name="drain")
    started, release = threading.Event(), threading.Event()
    pool.submit(blocker(started, release))
    assert started.wait(WAIT)
    queued = [pool.submit(str, i) for i in range(5)]
    assert pool.shutdown(wait=False) is False  # the worker is still busy
    release.set()
    assert pool.shutdown(wait=True, timeout=WAIT)
    assert [task.result(timeout=0) for task in queued] == ["0", "1", "2", "3", "4"]


def test_shutdown_timeout_returns_false_while_a_task_runs(no_thread_leak: None) -> None:
    """shutdown(wait=True, timeout) gives up after the timeout and says so."""
    pool = ThreadPool(2, name="slow")
    started, release = threading.Event(), threading.Event()
    pool.submit(blocker(started, release))
    assert started.wait(WAIT)
    began = time.monotonic()
    assert pool.shutdown(wait=True, timeout=0.1) is False
    assert time.monotonic() - began < WAIT / 2
    release.set()
    assert pool.shutdown(wait=True, timeout=WAIT) is True


def test_shutdown_leaves_no_thread_behind(no_thread_leak: None) -> None:
    """After shutdown(wait=True) every worker has ended (the fixture checks too)."""
    pool = ThreadPool(16, name="many")
    releases = block_all(pool)
    for release in releases:
        release.set()
    assert pool.shutdown(wait=True, timeout=WAIT)
    assert not [t for t in threading.enumerate() if t.name.startswith("many-")]


def test_context_manager_shuts_down(no_thread_leak: None) -> None:
    """Leaving the with block waits for the tasks and stops the workers."""
    results: List[int] = []
    with ThreadPool(3, name="ctx") as pool:
        for i in range(10):
            pool.submit(results.append, i)
    assert sorted(results) == list(range(10))
    with pytest.raises(PoolShutDown):
        pool.submit(int)


def test_context_manager_shuts_down_on_error(no_thread_leak: None) -> None:
    """An exception in the with block still stops the workers, and propagates."""
    with pytest.raises(KeyError):
        with ThreadPool(2, name="ctxerr") as pool:
            pool.submit(int).result(timeout=WAIT)
            raise KeyError("out")
    with pytest.raises(PoolShutDown):
        pool.submit(int)


# ---------------------------------------------------------------------------
# Names and idling


def test_thread_names_contain_the_pool_name(pool: ThreadPool) -> None:
    """Every worker's name says which pool it belongs to."""
    barrier = threading.Barrier(pool.max_workers, timeout=WAIT)

    def name_when_all_run() -> str:
        barrier.wait()
        return threading.current_thread().name

    tasks = [pool.submit(name_when_all_run) for _ in range(pool.max_workers)]
    names = {task.result(timeout=WAIT) for task in tasks}
    assert len(names) == pool.max_workers
    assert all("testpool" in name for name in names)


def test_pools_without_a_name_get_distinct_names(no_thread_leak: None) -> None:
    """Two unnamed pools do not share a name."""
    with ThreadPool(1) as first, ThreadPool(1) as second:
        assert first.name != second.name
        name = first.submit(lambda: threading.current_thread().name).result(timeout=WAIT)
        assert first.name in name


def _context_switches(thread_ids: List[int]) -> int:
    """Voluntary and involuntary context switches of these threads so far (Linux /proc)."""
    total = 0
    for tid in thread_ids:
        status = Path(f"/proc/self/task/{tid}/status").read_text()
        for line in status.splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


def test_an_idle_pool_uses_no_cpu(no_thread_leak: None) -> None:
    """Fifty idle workers neither spin nor wake up: no CPU time, no context switches."""
    with ThreadPool(50, name="idle") as pool:
        ids: Dict[str, int] = {}
        barrier = threading.Barrier(50, timeout=WAIT)

        def start() -> None:
            ids[threading.current_thread().name] = threading.get_native_id()
            barrier.wait()

        for task in [pool.submit(start) for _ in range(50)]:
            task.result(timeout=WAIT)
        assert pool.threads == 50 and pool.busy == 0
        on_proc = os.path.isdir(f"/proc/self/task/{threading.get_native_id()}")
        switches = _context_switches(list(ids.values())) if on_proc else 0
        cpu = time.process_time()
        # A deliberate measurement window, not a wait for something to happen.
        threading.Event().wait(0.3)
        used = time.process_time() - cpu
        assert used < 0.05, f"an idle pool used {used:.3f} s of CPU in 0.3 s"
        if on_proc:
            woke = _context_switches(list(ids.values())) - switches
            assert woke <= 5, f"idle workers were switched in {woke} times"


# ---------------------------------------------------------------------------
# Idle workers end (idle_timeout)


def wait_for(condition: Callable[[], bool]) -> None:
    """Poll until `condition()` holds; fail after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


def test_idle_workers_end_and_new_ones_start_on_demand(no_thread_leak: None) -> None:
    """With idle_timeout, workers left without work end; the next task starts a new one."""
    with ThreadPool(4, name="idler", idle_timeout=0.05) as pool:
        for release in block_all(pool):
            release.set()
        wait_for(lambda: pool.threads == 0)
        wait_for(lambda: not [t for t in threading.enumerate() if t.name.startswith("idler-")])
        assert (pool.busy, pool.idle) == (0, 4)
        name = pool.submit(lambda: threading.current_thread().name).result(timeout=WAIT)
        assert name == "idler-worker-5", "a new thread, under a name not used before"


def test_without_idle_timeout_workers_stay(pool: ThreadPool) -> None:
    """The default: a worker that has run a task waits for the next one for good."""
    first = pool.submit(threading.current_thread).result(timeout=WAIT)
    assert pool.idle_timeout is None
    assert pool.submit(threading.current_thread).result(timeout=WAIT) is first
    assert pool.threads == 1


def test_a_task_never_waits_for_a_worker_that_is_ending(no_thread_leak: None) -> None:
    """A task submitted just as the only worker's idle timeout runs out still runs.

    That worker may be the one the task counts on, so it must stay for it. Many rounds,
    each submitting around the moment the worker times out, with a tiny thread switch
    interval, give the race every chance to show (a lost task times out its result).
    """
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPool(1, name="edge", idle_timeout=0.002) as pool:
            for n in range(600):
                # A deliberate offset around the idle timeout, not a wait for an event.
                threading.Event().wait(0.0005 * (n % 7))
                assert pool.try_submit(int, n).result(timeout=WAIT) == n
    finally:
        sys.setswitchinterval(interval)
