"""Stages on one machine share its cores (core.threads): each live registered stage counts, ended ones do not."""
import os
import subprocess
import sys

import pytest

from core import threads
from core.errors import PipelineError


@pytest.fixture
def jobs(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPELINE_JOBS_DIR", str(tmp_path / "jobs"))
    monkeypatch.delenv("PIPELINE_THREADS", raising=False)
    monkeypatch.setattr(threads, "cores", lambda: 8)
    return tmp_path / "jobs"


def test_live_stages_share_the_cores_and_ended_ones_are_forgotten(jobs):
    jobs.mkdir()
    assert threads.share() == 8  # alone: every core
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (jobs / str(sleeper.pid)).write_text("another stage")
        (jobs / str(os.getpid())).write_text("this stage")
        assert threads.live_jobs() == 2 and threads.share() == 4
        ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        (jobs / ended.stdout.strip()).write_text("a stage that crashed without unregistering")
        assert threads.share() == 4 and not (jobs / ended.stdout.strip()).exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert threads.share() == 8


def test_fixed_thread_count(jobs, monkeypatch):
    monkeypatch.setenv("PIPELINE_THREADS", "3")
    assert threads.share() == 3
    monkeypatch.setenv("PIPELINE_THREADS", "many")
    with pytest.raises(PipelineError, match="PIPELINE_THREADS"):
        threads.share()


def test_a_stage_sizes_torch_beside_another(jobs, tmp_path):
    """Two registered processes: the second sizes torch to half the cores it may use; after it ends its file is gone."""
    script = ("import torch; from core import threads; from core.cli import run_cli\n"
              "run_cli(lambda: print(torch.get_num_threads()))")
    env = {**os.environ, "PIPELINE_JOBS_DIR": str(jobs), "PYTHONPATH": os.getcwd()}
    env.pop("PIPELINE_THREADS", None)
    alone = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (jobs / str(sleeper.pid)).write_text("another stage")
        beside = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    finally:
        sleeper.kill()
        sleeper.wait()
    cores = len(os.sched_getaffinity(0))
    assert int(alone.stdout) == cores and int(beside.stdout) == max(1, cores // 2)
    assert sorted(p.name for p in jobs.iterdir()) == [str(sleeper.pid)]  # each stage removed its own file


def test_an_unwritable_jobs_folder_only_costs_the_sharing(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("PIPELINE_JOBS_DIR", str(blocker / "jobs"))
    monkeypatch.delenv("PIPELINE_THREADS", raising=False)
    monkeypatch.setattr(threads, "_state", {"claimed": None, "checked": 0.0, "threads": None})
    assert threads.claim() == threads.cores()
    assert "not shared" in capsys.readouterr().err and threads._state["claimed"] is None


@pytest.mark.parametrize("files, expected", [
    ({"cpu.max": "250000 100000\n"}, 3),                                      # cgroup v2, 2.5 CPUs
    ({"cpu.max": "max 100000\n"}, None),                                      # v2 without a limit
    ({"cpu/cpu.cfs_quota_us": "400000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 4),  # cgroup v1
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),   # v1 without a limit
    ({}, None),                                                               # no cgroup files
])
def test_cgroup_cpu_quota(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert threads.cgroup_cpu_quota(str(tmp_path), str(tmp_path / "no-proc-file")) == expected


def test_cgroup_v2_quota_of_a_nested_group_counts(tmp_path):
    """Without a cgroup namespace the limit sits on the process's own group (a systemd unit, say), not on the
    root; the tightest limit on the way up counts, and an empty or unreadable cpu.max means no limit."""
    (tmp_path / "proc").write_text("0::/system.slice/job.scope\n")
    unit = tmp_path / "system.slice" / "job.scope"
    unit.mkdir(parents=True)
    (unit / "cpu.max").write_text("150000 100000\n")
    (tmp_path / "system.slice" / "cpu.max").write_text("max 100000\n")
    assert threads.cgroup_cpu_quota(str(tmp_path), str(tmp_path / "proc")) == 2
    (tmp_path / "system.slice" / "cpu.max").write_text("100000 100000\n")
    assert threads.cgroup_cpu_quota(str(tmp_path), str(tmp_path / "proc")) == 1
    for name in ("cpu.max", "system.slice/cpu.max"):
        (tmp_path / name).write_text("")
    (unit / "cpu.max").write_text("")
    assert threads.cgroup_cpu_quota(str(tmp_path), str(tmp_path / "proc")) is None
    assert threads.v2_groups(str(tmp_path / "proc")) == ["system.slice/job.scope", "system.slice", ""]
    assert threads.v2_groups(str(tmp_path / "absent")) == [""]


def test_cores_are_capped_by_the_cgroup_quota(monkeypatch):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(64)))
    monkeypatch.setattr(threads, "cgroup_cpu_quota", lambda: 16)
    assert threads.cores() == 16
    monkeypatch.setattr(threads, "cgroup_cpu_quota", lambda: None)
    assert threads.cores() == 64
