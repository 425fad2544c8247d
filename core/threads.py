"""CPU thread pools sized to the stages that run on this machine at the same time.

PyTorch's OpenMP workers spin while they wait, so two stages that each use every core (two `dvc exp run`s,
`dvc queue start -j 2`) slow each other down many times over. Every stage registers itself (`claim`, done by
`core.cli.run_cli`) in a folder shared by this user's runs on the machine, and its thread pools get
cores // (registered stages still alive) threads. Long loops call `refresh`, so a stage gives cores back or
takes them again as other stages start and end. A stage alone uses every core.

Environment: PIPELINE_THREADS=<n> fixes the count (no sharing); PIPELINE_JOBS_DIR moves the shared folder
(an absolute path; default <tmp>/meme-pipeline-jobs-<uid>).
"""
from __future__ import annotations

import atexit
import os
import sys
import tempfile
import time
from pathlib import Path

from core.errors import PipelineError

REFRESH_SECONDS = 1.0  # `refresh` looks at the shared folder at most this often
_state = {"claimed": None, "checked": 0.0, "threads": None}


def jobs_dir() -> Path:
    default = Path(tempfile.gettempdir()) / f"meme-pipeline-jobs-{os.getuid()}"
    return Path(os.environ.get("PIPELINE_JOBS_DIR", default))


def cores() -> int:
    """The CPUs this process may use: its affinity mask (taskset, a container's cpuset), lowered to the cgroup's
    CPU quota where one is set (`docker --cpus`, a Kubernetes CPU limit): a pool sized to every visible core
    of a large host would be throttled to the quota and its threads would wait on each other."""
    try:
        visible = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        visible = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    return max(1, min(visible, quota)) if quota else visible


def cgroup_cpu_quota(root: str = "/sys/fs/cgroup", self_cgroup: str = "/proc/self/cgroup") -> int | None:
    """CPUs the cgroup's quota allows, rounded up; None when there is no quota or no cgroup file to read.
    cgroup v2: the tightest `cpu.max` from this process's own group (named in /proc/self/cgroup: a nested group
    such as a systemd unit's, seen without a cgroup namespace) up to the root; v1: `cpu.cfs_quota_us` over
    `cpu.cfs_period_us`."""
    quotas = []  # one per cpu.max found: a number of CPUs, or None for no limit
    for group in v2_groups(self_cgroup):
        try:
            fields = Path(root, group, "cpu.max").read_text().split()
        except OSError:
            continue
        quotas.append(_quota(fields[0] if fields else "max", fields[1] if len(fields) > 1 else "100000"))
    if quotas:
        return min((q for q in quotas if q), default=None)
    try:
        quota = (Path(root) / "cpu" / "cpu.cfs_quota_us").read_text().strip()
        period = (Path(root) / "cpu" / "cpu.cfs_period_us").read_text().strip()
    except OSError:
        return None
    return _quota(quota, period)


def v2_groups(self_cgroup: str = "/proc/self/cgroup") -> list[str]:
    """This process's cgroup-v2 group and each group above it, as paths under the cgroup mount ('' = the root)."""
    try:
        lines = Path(self_cgroup).read_text().splitlines()
    except OSError:
        lines = []
    own = next((line[3:] for line in lines if line.startswith("0::")), "/")
    parts = [part for part in own.strip().split("/") if part and part not in (".", "..")]
    return ["/".join(parts[:depth]) for depth in range(len(parts), -1, -1)]


def _quota(quota: str, period: str) -> int | None:
    import math

    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:  # "max": no limit
        return None
    if quota_us <= 0 or period_us <= 0:  # -1 in cgroup v1: no limit
        return None
    return math.ceil(quota_us / period_us)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process with that pid: alive, not ours to judge
        return True
    return True


def live_jobs() -> int:
    """Registered stages whose process is still running (files of ended ones are removed)."""
    folder, count = jobs_dir(), 0
    if not folder.is_dir():
        return 0
    for entry in folder.iterdir():
        if not entry.name.isdigit():
            continue
        if _alive(int(entry.name)):
            count += 1
        else:
            entry.unlink(missing_ok=True)
    return count


def share() -> int:
    """Threads for this process: PIPELINE_THREADS if set, else cores // live stages (at least 1)."""
    fixed = os.environ.get("PIPELINE_THREADS")
    if fixed:
        if not fixed.isdigit() or int(fixed) < 1:
            raise PipelineError(f"PIPELINE_THREADS must be a whole number >= 1, got {fixed!r}")
        return int(fixed)
    return max(1, cores() // max(1, live_jobs()))


def claim() -> int:
    """Register this process as a running stage and size its pools; returns the thread count."""
    if _state["claimed"] is None:
        mine = jobs_dir() / str(os.getpid())
        try:
            mine.parent.mkdir(parents=True, exist_ok=True)
            mine.write_text(" ".join(sys.argv[:3]))  # what runs, for a person looking at the folder
        except OSError as err:  # e.g. a read-only temp folder: run with every core rather than fail
            print(f"note: cannot register in {mine.parent} ({err.strerror}); threads are not shared with "
                  "other stages", file=sys.stderr)
            return _apply(share())
        _state["claimed"] = mine
        atexit.register(release)
    return _apply(share())


def release() -> None:
    """Unregister (at exit): the other stages take the cores back at their next `refresh`."""
    mine = _state["claimed"]
    if mine is not None:
        mine.unlink(missing_ok=True)
        _state["claimed"] = None


def refresh() -> int:
    """Re-size the pools of a registered stage to the stages alive now (cheap: looks at most once a second).
    In a process that did not `claim` (a library user, a test) it changes nothing."""
    now = time.monotonic()
    if _state["claimed"] is None:
        return _state["threads"] or 0
    if now - _state["checked"] < REFRESH_SECONDS:
        return _state["threads"]
    _state["checked"] = now
    return _apply(share())


def current() -> int:
    """Threads for a pool made now (an exported runtime's): the registered share, or torch's own count."""
    if _state["claimed"] is not None:
        return refresh()
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else cores()


def _apply(threads: int) -> int:
    _state["threads"] = threads
    torch = sys.modules.get("torch")  # sized once torch is loaded; stages that never load it only count
    if torch is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads
