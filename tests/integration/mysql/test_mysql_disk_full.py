"""A full destination disk: a MySQL backup to a small tmpfs (20 MB) that fills during the data,
and one that fills between the data and the manifest. Either way the run fails with a clear
message (what, where, how much space, how to fix), exit 1, the partial files are gone (their
space is given back), and nothing that could pass for a backup remains."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path

import pytest

from dr.cli import main
from tests.support.mariadb import mariadb, mariadb_server, sakila  # noqa: F401

pytestmark = pytest.mark.integration


@pytest.fixture
def tmpfs(tmp_path):
    """A 20 MB tmpfs (needs root, or CAP_SYS_ADMIN); skipped with the reason otherwise."""
    where = tmp_path / "small-disk"
    where.mkdir()
    try:
        out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(where)],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot mount a tmpfs to fill: {exc}")
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {out.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


def fill(disk: Path, leave: int = 0, name: str = "filler") -> Path:
    """Write a file on `disk` until at most `leave` bytes are free (0: completely full)."""
    path = disk / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        block = 1 << 20
        while block:
            free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
            if free <= leave:
                break
            size = min(block, free - leave) if leave else block
            try:
                os.write(fd, b"\0" * size)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                block //= 2
    finally:
        os.close(fd)
    return path


def free_bytes(disk: Path) -> int:
    st = os.statvfs(disk)
    return st.f_bavail * st.f_frsize


@pytest.fixture
def setup(tmp_path, tmpfs, mariadb, sakila):  # noqa: F811
    key = tmp_path / "office.key"
    assert main(["keygen", str(key)]) == 0
    path = tmp_path / "dr.yaml"
    path.write_text(
        "version: 1\nregions: {primary: us-east-1, dr: us-west-2}\n"
        "objectives: {rpo: 1h, rto: 30m}\nkms: {dr_key: alias/dr-backups}\n"
        f"state: {{path: '{tmp_path / 'state'}'}}\n"
        f"mysql:\n  - {{name: lamp, host: 127.0.0.1, port: {mariadb.port}, user: root, "
        f"tls: 'off', databases: [{sakila}], destination: 'file://{tmpfs}/backups', "
        f"schedule: every 1h, retention: {{last: 3}}, key_file: '{key}'}}\n")
    return {"config": str(path), "disk": tmpfs, "state": tmp_path / "state"}


def leftovers(disk: Path) -> list[str]:
    return sorted(str(p.relative_to(disk)) for p in disk.rglob("*")
                  if p.is_file() and p.name != "filler")


def run_records(state: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((state / "runs").glob("*.json"))]


def test_disk_full_during_the_data(setup, capsys):
    disk = setup["disk"]
    fill(disk, leave=256 * 1024)  # Sakila's backup is ~1 MB: the data cannot fit
    before = free_bytes(disk)
    capsys.readouterr()
    code = main(["--config", setup["config"], "backup", "run", "--only", "mysql"])
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == 1, text
    assert "internal error" not in text
    assert "no space left" in text.lower() and str(disk / "backups") in text
    assert "fix:" in text  # says how to fix it
    assert "bytes" in text  # how much was written / needed
    assert leftovers(disk) == [], "a partial file was left on the full disk"
    assert free_bytes(disk) == before, "the partial file's space was not given back"
    records = run_records(setup["state"])
    assert [r["status"] for r in records if r["kind"] == "backup"] == ["failed"]
    capsys.readouterr()
    assert main(["--config", setup["config"], "backup", "list", "--name", "lamp"]) == 0
    assert "lamp-" not in capsys.readouterr().out


def test_disk_full_between_data_and_manifest(setup, capsys, monkeypatch):
    from dr.backup import destination as dest_mod

    disk = setup["disk"]
    original = dest_mod.Destination.put_json

    def fill_then_put(self, name, document):  # another process fills the disk right then
        if name.endswith(".manifest.json"):
            fill(disk, leave=0)
        return original(self, name, document)

    monkeypatch.setattr(dest_mod.Destination, "put_json", fill_then_put)
    capsys.readouterr()
    code = main(["--config", setup["config"], "backup", "run", "--only", "mysql"])
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == 1, text
    assert "internal error" not in text
    assert "no space left" in text.lower() and "manifest" in text
    assert "fix:" in text
    assert leftovers(disk) == [], "the data or a partial manifest was left behind"
    records = run_records(setup["state"])
    assert [r["status"] for r in records if r["kind"] == "backup"] == ["failed"]
    (disk / "filler").unlink()
    monkeypatch.setattr(dest_mod.Destination, "put_json", original)
    # with the space back, the same slot backs up normally
    assert main(["--config", setup["config"], "backup", "run", "--only", "mysql"]) == 0
    assert len(leftovers(disk)) == 2


def test_the_message_says_how_much_the_next_backup_needs(setup):
    from datetime import datetime, timedelta, timezone

    from dr.backup.service import run_backup
    from dr.clock import FixedClock
    from dr.config import load_config
    from dr.context import make_context

    clock = FixedClock(datetime(2030, 1, 1, 10, 5, tzinfo=timezone.utc))
    ctx = make_context(load_config(setup["config"]), clock=clock)
    first = run_backup(ctx, only="mysql").record
    assert first.status == "completed"
    size = first.results[0].summary["stored_bytes"]
    fill(setup["disk"], leave=128 * 1024)
    clock.set(clock.now() + timedelta(hours=1))  # the next slot
    second = run_backup(ctx, only="mysql").record
    assert second.status == "failed"
    error = second.results[0].error
    assert f"about {size:,} bytes are needed (the size of the newest backup)" in error, error
    assert sorted(p.name for p in (setup["disk"] / "backups" / "lamp").iterdir()) == [
        "lamp-20300101-1000.dump.zst.drenc", "lamp-20300101-1000.manifest.json"]
