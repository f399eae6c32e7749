"""Execution of :mod:`forgeline.tune`: scheduling fold fits over threads or processes.

Work is cut into *units* of one ``(prefix group, fold)``: the unit fits the shared prefix
once and then every candidate of the group on that fold. The serial loop and the process
backend run whole units, group after group. The thread backend splits units into pieces of
one candidate (see :func:`thread_pieces`) that share the prefix through the cache, so the
workers stay busy to the end. Results land in a ``(candidate, fold)`` table, so the outcome
never depends on ``n_jobs``, the backend or completion order.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import sys
import threading

import numpy as np

from ._tune_cv import FoldScore, PrefixCache, fit_score_fold, freeze
from ._tune_logistic import applicable as lockstep_applicable


class Progress:
    """tqdm bar over trials (fold fits count as fractions of a trial); no-op when off."""

    def __init__(self, enabled, total: int, n_folds: int, desc: str):
        if enabled is None:
            enabled = bool(getattr(sys.stderr, "isatty", lambda: False)())
        self.bar = None
        self.n_folds = max(n_folds, 1)
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # pragma: no cover - tqdm is a test dependency
                return
            self.bar = tqdm(total=total, desc=desc, unit="trial", leave=False,
                            bar_format="{l_bar}{bar}| {n:.1f}/{total} [{elapsed}<{remaining}]")

    def fold_done(self):
        if self.bar is not None:
            self.bar.update(1.0 / self.n_folds)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def resolve_jobs(n_jobs) -> int:
    """``None`` = every core this process may use (forgeline's convention), negative =
    sklearn's ``cpu_count + 1 + n_jobs``."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS / Windows
        cores = os.cpu_count() or 1
    if n_jobs is None or n_jobs == 0:
        return cores
    if n_jobs < 0:
        return max(1, cores + 1 + n_jobs)
    return int(n_jobs)


def inner_limits(inner_threads, user_api=None):
    """Pin BLAS / OpenMP inside the fold fits to ``inner_threads`` (``None``: leave them).

    A model whose result depends on its own thread count (HistGradientBoosting sums its
    gradients in parallel, BLAS splits its reductions) then gives the same scores whatever
    ``n_jobs`` is. BLAS pools are process-wide; OpenMP's thread count is per calling thread,
    so each worker thread sets its own (see ``_pin_worker``).
    """
    if inner_threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=int(inner_threads), user_api=user_api)


def _pin_worker(inner_threads):
    if inner_threads is not None:
        inner_limits(inner_threads, "openmp")  # dies with the worker thread: no restore


def _run_unit(task, jobs, train, valid, fold, *, X, y, cache, extra, stop, sink=None,
              inner_threads=None, after=None, lead=None):
    """One unit: candidates ``jobs`` (``[(index, params, seeds)]``) on fold ``fold``.

    With threads, ``sink`` receives each fold score as soon as it exists, so an interrupt
    in the middle of a unit keeps the fits already done. A thread *piece* (part of a unit)
    first waits for ``after``, the event its fold's lead piece sets once its first fit is
    done; the lead piece passes that event as ``lead``.
    """
    if after is not None:
        # the lead fits the shared prefix and binned data; waiting for it keeps the cache
        # hits where the serial order puts them, whichever thread is quicker
        while not after.wait(0.05):
            if stop is not None and stop.is_set():
                return []
    if cache is None:  # process backend: a unit-local cache still shares the prefix fit
        with inner_limits(inner_threads):  # a worker process runs one unit at a time
            return _run_unit(task, jobs, train, valid, fold, X=X, y=y,
                             cache=PrefixCache(1 << 62), extra=extra, stop=stop, sink=sink)
    if len(jobs) > 1 and lockstep_applicable(task):
        try:
            out = []
            for at in range(0, len(jobs), LOCKSTEP_MAX):  # bounded threads per group
                if stop is not None and stop.is_set():
                    break
                out += _run_lockstep(task, jobs[at:at + LOCKSTEP_MAX], train, valid, fold,
                                     X=X, y=y, cache=cache, extra=extra, stop=stop, sink=sink)
            return out
        finally:
            if lead is not None:
                lead.set()
    out = []
    chains: dict = {}
    if task.warm_path is not None:
        jobs = warm_order(jobs, task.warm_path, task.warm_descending)
    for ci, params, seeds in jobs:
        if stop is not None and stop.is_set():
            break
        warm = None
        if task.warm_path is not None:
            warm = chains.setdefault(chain_key(params, task.warm_path), [None])
        try:
            fs = fit_score_fold(task, params, seeds, X, y, train, valid, fold, cache, extra,
                                warm=warm)
        finally:
            if lead is not None:
                lead.set()
                lead = None
        if sink is not None:
            sink[(ci, fold)] = fs
        out.append((ci, fold, fs))
    return out


LOCKSTEP_MAX = 32  # fits per lockstep group (one thread each; 32 lanes = one pass over X)


def _run_lockstep(task, jobs, train, valid, fold, *, X, y, cache, extra, stop, sink):
    """A unit's LogisticRegression fits side by side, one thread each, sharing one native
    pass over the fold matrix per lbfgs evaluation (see :mod:`._tune_logistic`). The fits
    and scores are the ones the serial loop gives; results come back in job order."""
    from ._tune_logistic import Group, _Aborted
    group = Group(len(jobs))
    out: list = [None] * len(jobs)
    errors: list = [None] * len(jobs)

    def member(k, ci, params, seeds, seat):
        try:
            if stop is not None and stop.is_set():
                return
            out[k] = (ci, fold, fit_score_fold(task, params, seeds, X, y, train, valid, fold,
                                               cache, extra, lockstep=seat))
        except _Aborted:
            pass
        except BaseException as exc:  # re-raised by the unit, first in job order
            errors[k] = exc
        finally:
            seat.close()

    threads = [threading.Thread(target=member, args=(k, ci, params, seeds, group.member()),
                                name=f"forgeline-lockstep-{fold}-{k}", daemon=True)
               for k, (ci, params, seeds) in enumerate(jobs)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.1)  # wakes for Ctrl-C in the main thread
    except BaseException:
        group.abort()
        for t in threads:
            t.join()
        raise
    done = [o for o in out if o is not None]
    if sink is not None:  # kept even when a fit below raises (Ctrl-C keeps finished fits)
        for ci, f, fs in done:
            sink[(ci, f)] = fs
    for exc in errors:
        if exc is not None:
            raise exc
    return done


def chain_key(params: dict, path: str):
    """Candidates with equal values of every parameter but the path one share a chain."""
    return freeze({k: v for k, v in params.items() if k != path})


def thread_pieces(task, cands, groups, n_folds: int) -> list:
    """The thread pool's work list: ``(jobs, fold, after, lead)`` pieces of one candidate
    (or one warm-start chain, which never splits) on one fold.

    Group after group, and within a group round-robin over the folds: the workers then fit
    different folds' prefixes side by side, and with pieces this small both stay busy to
    the end (a whole ``(group, fold)`` unit per worker leaves one idle when the unit count
    is not a multiple of ``n_jobs``). The first piece of each fold is its lead; the others
    wait for the lead's first fit (see :func:`_run_unit`), so they reuse its prefix.
    """
    out = []
    for g in groups:
        jobs = [cands[i] for i in g]
        if task.warm_path is not None:
            chains: dict = {}
            for job in warm_order(jobs, task.warm_path, task.warm_descending):
                chains.setdefault(chain_key(job[1], task.warm_path), []).append(job)
            parts = list(chains.values())
        elif lockstep_applicable(task):
            parts = [jobs]  # the unit's fits share their passes over the fold matrix
        else:
            parts = [[job] for job in jobs]
        events = [threading.Event() for _ in range(n_folds)]
        for k, part in enumerate(parts):
            for f in range(n_folds):
                out.append((part, f, events[f] if k else None, None if k else events[f]))
    return out


def warm_order(jobs, path: str, descending: bool):
    """The unit's candidates, chain after chain (in order of first appearance), each chain
    along the path parameter: ascending, or descending when asked. Python's sort is
    stable, so ties keep the candidate order and the schedule depends on nothing else."""
    first: dict = {}
    for pos, (_, params, _) in enumerate(jobs):
        first.setdefault(chain_key(params, path), pos)

    def key(job):
        v = job[1][path]
        return (first[chain_key(job[1], path)], -v if descending else v)

    return sorted(jobs, key=key)


class _Live(dict):
    """A sink that hands every fold score to ``collect`` the moment it is stored."""

    def __init__(self, collect):
        super().__init__()
        self._collect = collect

    def __setitem__(self, key, fs):
        super().__setitem__(key, fs)
        self._collect([(key[0], key[1], fs)])


def run_candidates(task, cands, groups, X, y, folds, *, n_jobs, backend, cache, extra,
                   progress: Progress, inner_threads=1):
    """Fit and score ``cands`` (``[(index, params, seeds)]``) on every fold.

    Returns ``(results, interrupted)`` where ``results[(index, fold)]`` is a FoldScore.
    ``inner_threads`` pins BLAS / OpenMP in the fits (see :func:`inner_limits`).
    """
    units = [(g, f) for g in groups for f in range(len(folds))]
    results: dict = {}
    interrupted = False

    def _collect(batch):
        for ci, f, fs in batch:
            results[(ci, f)] = fs
            progress.fold_done()

    def _args(g, f):
        jobs = [cands[i] for i in g]
        train, valid = folds[f]
        return jobs, train, valid, f

    pieces = thread_pieces(task, cands, groups, len(folds)) if backend == "threads" else units
    n_jobs = min(resolve_jobs(n_jobs), max(len(pieces), 1))
    pin = inner_limits(inner_threads) if backend == "threads" else contextlib.nullcontext()
    try:
        with pin:
            if n_jobs == 1 or len(pieces) == 1:
                live = _Live(_collect)  # each fit is collected as it ends (Ctrl-C keeps it)
                for g, f in units:
                    _run_unit(task, *_args(g, f), X=X, y=y, cache=cache, extra=extra,
                              stop=None, sink=live)
            elif backend == "threads":
                stop = threading.Event()
                sink: dict = {}
                with cf.ThreadPoolExecutor(max_workers=n_jobs, initializer=_pin_worker,
                                           initargs=(inner_threads,)) as ex:
                    futs = []
                    for jobs, f, after, lead in pieces:
                        train, valid = folds[f]
                        futs.append(ex.submit(_run_unit, task, jobs, train, valid, f, X=X, y=y,
                                              cache=cache, extra=extra, stop=stop,
                                              sink=sink, after=after, lead=lead))
                    try:
                        for fut in futs:
                            while True:
                                try:
                                    _collect(fut.result(timeout=0.25))
                                    break
                                except cf.TimeoutError:
                                    continue
                    except BaseException:
                        stop.set()
                        for fu in futs:
                            fu.cancel()
                        raise
                    finally:
                        ex.shutdown(wait=True)  # running units stop after their current fit
                        results.update(sink)
            else:
                from joblib import Parallel, delayed
                gen = Parallel(n_jobs=n_jobs, return_as="generator")(
                    delayed(_run_unit)(task, *_args(g, f), X=X, y=y, cache=None, extra=extra,
                                       stop=None, inner_threads=inner_threads)
                    for g, f in units)
                for batch in gen:
                    _collect(batch)
    except KeyboardInterrupt:
        interrupted = True
    return results, interrupted


def fold_table(cands, results, n_folds):
    """Per-candidate arrays: scores (NaN where not run), fit/score time, and cache hits as
    ``(n, 2)``: prefix hits, model (binned data) hits."""
    n = len(cands)
    scores = np.full((n, n_folds), np.nan)
    fit_t = np.zeros(n)
    score_t = np.zeros(n)
    hits = np.zeros((n, 2), dtype=np.int64)
    for row, (ci, _, _) in enumerate(cands):
        for f in range(n_folds):
            fs: FoldScore | None = results.get((ci, f))
            if fs is None:
                continue
            scores[row, f] = fs.score
            fit_t[row] += fs.fit_time
            score_t[row] += fs.score_time
            hits[row, 0] += int(fs.hit)
            hits[row, 1] += int(fs.model_hit)
    return scores, fit_t, score_t, hits
