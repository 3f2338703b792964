"""CPU jobs shared by this process and forked workers, results back through pipes.

    results = run_jobs(fit, jobs, cost=[...], workers=2, pack=to_arrays, unpack=from_arrays)

Every job runs in one thread, here or in a fork, so kernels and rounding are the same
either way and the results do not depend on the worker count. With `workers` > 1 (where
fork exists) this process and min(workers, jobs) - 1 forked ones take the jobs one at a
time, largest `cost` first, from a shared counter, unless the jobs' total cost is under
FORK_MIN_FLOPS (then a fork costs more than it saves). The forks share what this process
has loaded copy-on-write (nothing is pickled on the way in) and send `pack`ed results
back; this process drains the pipes from a thread while it trains, since a result is
larger than a pipe's buffer and a worker blocked in send() would take no further job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import torch

# Below this much training arithmetic (`cost`, in flops) the jobs run here one after the
# other: a fork and its first copy-on-write page faults cost some 30 ms here, and 5 GFLOP
# of small layers is about 0.15 s of one core (on the demo, vowels' 2 GFLOP grid is faster
# in one process, tones' 10 and mixtures' 7 are faster forked).
FORK_MIN_FLOPS = 5e9


def can_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def run_jobs(
    fit: Callable[..., Any],
    jobs: list[tuple],
    *,
    cost: list[float],
    workers: int,
    pack: Callable[[Any], Any],
    unpack: Callable[[Any], Any],
) -> list:
    """[fit(*job) for job in jobs], each job single-threaded, shared with up to
    `workers` - 1 forks; a fork's result comes back as unpack(pack(result)). A failing
    worker fails the call with its traceback."""
    order = sorted(range(len(jobs)), key=lambda k: -cost[k])
    forks = min(workers, len(jobs)) - 1 if sum(cost) >= FORK_MIN_FLOPS else 0
    import multiprocessing

    context = multiprocessing.get_context("fork") if forks > 0 else None
    taken = context.Value("i", 0) if context else None
    children, receivers = [], []
    packed: dict[int, Any] = {}
    errors: list[str] = []
    threads = torch.get_num_threads()
    collector = None
    try:
        for _ in range(forks):
            receive, send = context.Pipe(duplex=False)
            child = context.Process(target=_work_forked, args=(fit, pack, jobs, order, taken, send), daemon=True)
            child.start()
            send.close()
            children.append(child)
            receivers.append(receive)
        if receivers:
            # Drain the pipes while this process trains: a run is larger than a pipe's
            # buffer, and a worker blocked in send() would take no further job.
            collector = threading.Thread(target=_collect, args=(receivers, packed, errors), daemon=True)
            collector.start()
        torch.set_num_threads(1)
        results: dict[int, Any] = {}
        for k in _take(order, taken):
            if errors:
                break
            results[k] = fit(*jobs[k])
        if collector is not None and not errors:
            collector.join()
        if errors:
            raise RuntimeError(f"a probe worker failed:\n{errors[0]}")
        for child in children:
            child.join()
            if child.exitcode != 0:
                raise RuntimeError(f"a probe worker exited with code {child.exitcode}")
        for k, message in packed.items():
            results[k] = unpack(message)
    finally:
        torch.set_num_threads(threads)
        for child in children:
            if child.is_alive():
                child.terminate()
            child.join()
        if collector is not None:
            collector.join()
    return [results[k] for k in range(len(jobs))]


def _take(order: list[int], taken) -> Any:
    """Job indices from `order`, one at a time, shared through the counter `taken` (None:
    this process alone)."""
    if taken is None:
        yield from order
        return
    while True:
        with taken.get_lock():
            index = taken.value
            taken.value += 1
        if index >= len(order):
            return
        yield order[index]


def _collect(receivers: list, packed: dict, errors: list) -> None:
    """Messages of forked workers until every pipe is closed: results into `packed` by job
    index, tracebacks into `errors` (a thread of `run_jobs`)."""
    from multiprocessing.connection import wait

    pending = list(receivers)
    while pending:
        for receive in wait(pending):
            try:
                message = receive.recv()
            except EOFError:
                pending.remove(receive)
                continue
            if message[0] == "error":
                errors.append(message[1])
            else:
                packed[message[0]] = message[1]


def _work_forked(
    fit: Callable[..., Any], pack: Callable[[Any], Any], jobs: list, order: list[int], taken, send
) -> None:
    """A forked worker of `run_jobs`: jobs until none is left, results sent packed."""
    # One thread: GNU OpenMP (torch's CPU backend) deadlocks in a forked child that opens a
    # parallel region after its parent has used one.
    torch.set_num_threads(1)
    try:
        for k in _take(order, taken):
            send.send((k, pack(fit(*jobs[k]))))
    except BaseException:
        import traceback

        send.send(("error", traceback.format_exc()))
        raise
    finally:
        send.close()
