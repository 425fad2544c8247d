"""The label store on a throwaway PostgreSQL server (initdb / pg_ctl of Debian's postgresql package): the same round trip
as on SQLite. As root the server runs as the 'postgres' user, in a folder that user can enter."""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from Step_7.store import LabelStore
from tests.test_label_store import round_trip

pytestmark = pytest.mark.e2e
def postgres_bin() -> Path:
    """The folder of initdb / pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<version>/bin (newest)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return versions[-1] if versions else Path("/usr/lib/postgresql/bin")


PG_BIN = postgres_bin()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_folder(tmp_path: Path, request) -> tuple[Path, list[str]]:
    """A folder for the cluster and the command prefix that runs PostgreSQL's tools as a non-root user."""
    if os.getuid() != 0:
        return tmp_path, []
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no 'postgres' user: PostgreSQL refuses to run as root")
    if shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as the 'postgres' user")
    root = Path(tempfile.mkdtemp(prefix="labelstore-pg-"))  # tmp_path's parents are closed to other users
    request.addfinalizer(lambda: shutil.rmtree(root, ignore_errors=True))
    os.chown(root, user.pw_uid, user.pw_gid)
    return root, ["runuser", "-u", "postgres", "--"]


@pytest.fixture
def postgres_url(tmp_path, request) -> str:
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
        pytest.skip(f"initdb / pg_ctl not found in {PG_BIN}: `make postgres` installs Debian's postgresql")
    import psycopg

    root, prefix = server_folder(tmp_path, request)
    data, sockets, log = root / "data", root / "sockets", root / "server.log"
    subprocess.run([*prefix, "mkdir", str(sockets)], check=True)
    subprocess.run([*prefix, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                    "--no-sync"], check=True, capture_output=True)
    port = free_port()
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    started = subprocess.run([*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options,
                              "-w", "-t", "20", "start"], capture_output=True, text=True)
    request.addfinalizer(lambda: subprocess.run([*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate",
                                                 "-w", "stop"], capture_output=True))
    assert started.returncode == 0, started.stdout + started.stderr + (log.read_text() if log.exists() else "")
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute("CREATE DATABASE labels")
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/labels"


def test_round_trip_on_postgresql(postgres_url):
    store = LabelStore(postgres_url)
    try:
        assert store.engine.dialect.name == "postgresql"
        round_trip(store)
    finally:
        store.close()
    again = LabelStore(postgres_url)  # committed data survives a new engine
    try:
        assert again.counts() == {"unreviewed": 2, "escalated": 0, "resolved": 2} and len(again.events()) == 6
    finally:
        again.close()
