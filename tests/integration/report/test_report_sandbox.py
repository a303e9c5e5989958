"""`dr report` on real run records from the sandbox, and the HTML report in headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.support.report_history import drill_record, history
from dr.state.local import LocalStore
from dr.state.records import RunStore

pytestmark = pytest.mark.integration

BOOT = """\
import sys, dr.cli as c
from dr.cli import report, schedule
c.COMMANDS = tuple(c.COMMANDS) + tuple(m for m in (report, schedule) if m not in c.COMMANDS)
sys.exit(c.main(sys.argv[1:]))
"""
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)


def dr(*args, cwd, check=True):
    env = dict(os.environ, DR_SPOOL_DIR=str(Path(cwd) / "spool"))
    proc = subprocess.run([sys.executable, "-c", BOOT, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=180)
    if check and proc.returncode not in (0, 3):
        raise AssertionError(f"dr {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def history_world(seeded, tmp_path):
    """The sandbox after one scheduled pass (real copies), plus 30 days of earlier history and
    two drills, in the same local state directory."""
    out = dr("--config", str(seeded.config_path), "schedule", "--once", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    now = datetime.now(timezone.utc)
    earlier = now - timedelta(hours=2)
    records = history([("app-db", "rds-instance"), ("aurora", "rds-cluster"), ("assets", "s3")],
                      earlier, 30, outage=("aurora", timedelta(days=9), timedelta(hours=5)), drills=0)
    records += [drill_record(now - timedelta(days=days), rto_objective=timedelta(minutes=30),
                             rpo_objective=timedelta(hours=1)) for days in (20, 3)]
    runs = seeded.state_dir / "runs"
    for record in records:  # plain writes: RunStore's fsync per record is slow for 2,000 of them
        (runs / f"{record.run_id}.json").write_text(json.dumps(record.to_dict()))
    assert RunStore(LocalStore(seeded.state_dir)).load(records[0].run_id)
    return seeded


def test_report_on_scheduled_runs(history_world, tmp_path):
    out = dr("--output", "json", "--config", str(history_world.config_path), "report", cwd=tmp_path)
    doc = json.loads(out.stdout)
    names = {r["name"]: r for r in doc["resources"]}
    assert set(names) == {"app-db", "aurora", "assets"}
    for r in names.values():
        assert r["status"] == "ok" and r["rpo_seconds"] < 600, r
        assert r["newest_copy"]["region"] == "us-west-2"
    assert names["aurora"]["worst_rpo_seconds"] > 5 * 3600  # the outage nine days ago
    assert out.returncode == 0 and doc["breach"] is False
    assert doc["drills"][0]["met"] is True
    text = dr("--config", str(history_world.config_path), "report", cwd=tmp_path).stdout
    assert "Status: within objectives" in text and "aurora: within objective now, but the RPO reached" in text


def test_a_malformed_record_is_named_and_the_report_still_renders(history_world, tmp_path):
    name = f"backup-{datetime.now(timezone.utc) - timedelta(days=1):%Y%m%dT%H%M%SZ}-0bad"
    (history_world.state_dir / "runs" / f"{name}.json").write_text(f'{{"run_id": "{name}", "results": 7}}')
    out = dr("--config", str(history_world.config_path), "report", "--format", "html",
             "--out", str(tmp_path / "r.html"), cwd=tmp_path)
    assert out.returncode == 0 and f"skipped malformed run record runs/{name}.json" in out.stderr
    assert f"{name}.json" in (tmp_path / "r.html").read_text()


def test_over_objective_exits_3(history_world, tmp_path):
    later = (datetime.now(timezone.utc) + timedelta(hours=3)).isoformat()
    out = dr("--config", str(history_world.config_path), "report", "--now", later, cwd=tmp_path)
    assert out.returncode == 3 and "OVER OBJECTIVE (3 findings)" in out.stdout


# --- the HTML report in a real browser ------------------------------------------------------------


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """A tiny PNG decoder (8-bit RGB/RGBA, no interlace): width, height, rows of raw pixels."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, [bytes(r[i:i + 3]) for r in rows[::8] for i in range(0, stride, bpp * 8)]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")
def test_html_report_in_headless_chromium(history_world, tmp_path):
    page = tmp_path / "dr-report.html"
    dr("--config", str(history_world.config_path), "report", "--format", "html", "--out", str(page),
       cwd=tmp_path)
    shot = tmp_path / "report.png"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-extensions", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", f"--screenshot={shot}",
         "--window-size=1200,1600", "--enable-logging=stderr", "--v=0", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines()
               if "CONSOLE" in line or "Failed to load resource" in line or "Refused to" in line
               or "Uncaught" in line]
    assert console == [], console
    width, height, sample = png_pixels(shot)
    assert (width, height) == (1200, 1600)
    colors = set(sample)
    assert len(colors) > 20, f"the screenshot looks blank: {len(colors)} colours"
    white = sum(1 for p in sample if p == b"\xff\xff\xff") / len(sample)
    assert white < 0.97, f"{white:.0%} white"
    keep = os.environ.get("DR_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
