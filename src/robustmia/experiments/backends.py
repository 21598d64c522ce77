"""Where a study's independent tasks run: on this machine (``local``) or on a Ray cluster (``ray``).

A task is a plain top-level function and its plain arguments (configs, paths, settings);
it reads and writes only the study folder, so on a cluster ``--out`` must be storage that
every node sees. Tasks are idempotent: a finished piece of work is found in the folder and
skipped, an interrupted one resumes from its last checkpoint. That is what makes Ray's
retry of a task whose worker died safe, and a re-run of a study cheap.

Floating-point sums depend on the number of threads. Each task runs with ``threads`` torch
threads (default 1), so the same spec run with the same ``--threads`` gives bit-identical runs,
and identical tables, on either backend and whatever the number of workers or cores (a CPU of
another model may pick other float kernels and round differently). On a CPU the local backend runs
``workers`` tasks at a time (default: one per ``threads`` cores) in worker processes: small
networks gain more from a second task than from a second thread. On a GPU it runs one task at
a time in this process.
"""

from __future__ import annotations

import contextlib
import os
import queue
import warnings
from typing import Any, Callable, Iterator, Optional, Sequence

from robustmia.errors import UserError
from robustmia.progress import Progress, emit

Task = tuple[Callable[..., Any], tuple[Any, ...]]
MAX_RETRIES = 3


@contextlib.contextmanager
def torch_threads(threads: Optional[int]) -> Iterator[None]:
    import torch

    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_task(fn: Callable[..., Any], args: tuple[Any, ...], threads: Optional[int], progress: Optional[Progress] = None) -> Any:
    with torch_threads(threads):
        return fn(*args, progress=progress)


def _pooled_task(fn: Callable[..., Any], args: tuple[Any, ...], threads: Optional[int]) -> tuple[Any, list]:
    """A task in a worker process: its result, and the warnings it raised, for this process to raise again."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_task(fn, args, threads)
    return result, [(str(w.message), w.category) for w in caught]


class LocalBackend:
    """Tasks on this machine: with ``workers=1`` one after another in this process, with the progress
    bar; otherwise ``workers`` at a time, each in a worker process (started once, on first use)."""

    name = "local"

    def __init__(self, threads: Optional[int] = None, progress: Optional[Progress] = None, workers: int = 1):
        self.threads, self.progress, self.workers = threads, progress, workers
        self._pool: Any = None

    def run(self, tasks: Sequence[Task], done: Optional[Callable[[int], None]] = None) -> list[Any]:
        """Each task's result, in order; ``done(i)`` is called as task i finishes (in the order they finish)."""
        if self.workers == 1 or len(tasks) <= 1:
            results = []
            for i, (fn, args) in enumerate(tasks):
                results.append(run_task(fn, args, self.threads, self.progress))
                if done is not None:
                    done(i)
            return results
        return self._run_pooled(tasks, done)

    def _run_pooled(self, tasks: Sequence[Task], done: Optional[Callable[[int], None]]) -> list[Any]:
        from concurrent.futures.process import BrokenProcessPool

        finished: queue.Queue = queue.Queue()
        pool = self._executor()
        futures = [pool.submit(_pooled_task, fn, args, self.threads) for fn, args in tasks]
        for i, future in enumerate(futures):
            future.add_done_callback(lambda _, i=i: finished.put(i))
        emit(self.progress, "start", task=f"{len(tasks)} tasks, {self.workers} at a time", total=len(tasks))
        try:
            for _ in tasks:
                i = finished.get()
                _, caught = futures[i].result()  # raises a failed task's error at once
                for message, category in caught:
                    warnings.warn(message, category, stacklevel=2)
                if done is not None:
                    done(i)
                emit(self.progress, "advance", steps=1)
        except BrokenProcessPool:
            self.close()
            raise UserError("a worker process of the study died (out of memory?); continue the study with --resume, "
                            "with fewer --workers") from None
        except BaseException:
            self.close()  # the other tasks stop too: nothing runs on behind a failed study
            raise
        emit(self.progress, "end")
        return [future.result()[0] for future in futures]

    def _executor(self) -> Any:
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn: a fresh interpreter per worker (forking a process that has run torch's thread pools can hang)
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=die_with_parent)
        return self._pool

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for process in list(getattr(pool, "_processes", {}).values()):  # a running task is stopped, not waited for
            process.kill()
        pool.shutdown(wait=True, cancel_futures=True)


def die_with_parent() -> None:
    """A worker process ends when the study's process does (killed, not only interrupted): without this, a worker of a
    killed study would train on unseen, holding its run folder's lock against the --resume that follows. (Linux; its
    checkpoints are atomic, so a worker killed in the middle of one leaves the last complete one.)"""
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took hold
        os._exit(1)


class RayBackend:
    """Tasks spread over a Ray cluster: the one at ``address`` (``ray start --head`` prints it),
    or, without one, a local cluster of ``workers`` CPUs started for this study."""

    name = "ray"

    def __init__(self, address: Optional[str] = None, workers: Optional[int] = None, threads: Optional[int] = None,
                 gpus_per_task: float = 0):
        try:
            import ray
        except ImportError:
            raise UserError("the ray backend needs Ray: pip install 'robustmia[ray]'") from None
        self.ray = ray
        self.threads = threads or 1
        self.gpus = gpus_per_task
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if address and address != "auto":
            _check_reachable(address)
        try:
            if address:
                ray.init(address=address, **kwargs)
            else:
                ray.init(num_cpus=workers, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as e:
            detail = " ".join(str(e).split())[:200]
            raise UserError(f"cannot reach a Ray cluster at {address or 'a new local cluster'} ({detail}); "
                            "start one with `ray start --head` and pass the address it prints") from None
        self._remote = ray.remote(max_retries=MAX_RETRIES, retry_exceptions=False)(run_task)

    def run(self, tasks: Sequence[Task], done: Optional[Callable[[int], None]] = None) -> list[Any]:
        """Each task's result, in order; ``done(i)`` is called as task i finishes (in the order they finish)."""
        # a task's worker process is titled ray::<function> (train_target, evaluate_target, prepare_references)
        refs = [self._remote.options(name=fn.__name__, num_cpus=self.threads, num_gpus=self.gpus).remote(fn, args, self.threads)
                for fn, args in tasks]
        try:
            pending = list(refs)
            while pending:
                finished, pending = self.ray.wait(pending, num_returns=1)
                self.ray.get(finished)  # raises a failed task's error at once
                if done is not None:
                    done(refs.index(finished[0]))
            return self.ray.get(refs)
        except self.ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, UserError):  # a user's mistake found inside a task: its one line
                raise UserError(cause.args[0] if cause.args else str(cause)) from None
            raise

    def close(self) -> None:
        self.ray.shutdown()


def _check_reachable(address: str) -> None:
    """Fail in seconds, not after Ray's minutes of reconnecting, when nothing listens at ``address``."""
    import socket

    host, _, port = address.split("://")[-1].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5):
            return
    except (OSError, ValueError):
        raise UserError(f"cannot reach a Ray cluster at {address}; start one with `ray start --head` "
                        "and pass the address it prints (host:port)") from None


BACKENDS = ("local", "ray")


def make_backend(name: str, *, address: Optional[str] = None, workers: Optional[int] = None, threads: Optional[int] = None,
                 device: str = "auto", progress: Optional[Progress] = None):
    if name == "local":
        if address:
            raise UserError("--address is an option of --backend ray")
        from robustmia.models.inference import resolve_device

        gpu = resolve_device(device).type == "cuda"
        if not gpu:  # on a GPU the CPU's thread count leaves the numbers alone: torch's default
            threads = threads or 1
        if workers is None:
            workers = 1 if gpu else max(1, cpu_count() // threads)
        return LocalBackend(threads, progress, workers)
    if name == "ray":
        return RayBackend(address, workers, threads, gpus_per_task=1 if device.startswith("cuda") else 0)
    raise UserError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")


def cpu_count() -> int:
    """The cores this process may use (its affinity, where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1

