"""The backup manifest beside the encrypted dump is authenticated: an HMAC under a key of its
own, wrapped by the backup's key provider for that backup id. Whatever can be edited in the
destination (`created`, row counts, the id, the file name) is caught; "the newest" is chosen
among manifests that authenticate only."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from dr.backup import mysql
from dr.backup.destination import Destination
from dr.crypto import IntegrityError, LocalKeyProvider
from dr.crypto.keys import generate_key_file


@dataclass
class Resource:
    name: str = "lamp"


@pytest.fixture
def world(tmp_path):
    generate_key_file(tmp_path / "k1")
    generate_key_file(tmp_path / "k2")
    dest = Destination(f"file://{tmp_path}/backups")
    dest.check()
    return dest, LocalKeyProvider(tmp_path / "k1"), LocalKeyProvider(tmp_path / "k2")


def sidecar(dest, provider, bid: str, created: str, rows: int = 3) -> str:
    doc = {"format": mysql.FORMAT, "id": bid, "name": "lamp", "created": created,
           "data": f"lamp/{bid}{mysql.DATA_SUFFIX}", "stored_bytes": 10,
           "dump": {"rows": rows, "databases": {"app": {"tables": {"t": {"rows": rows}}}}}}
    mysql.seal_manifest(doc, provider, "lamp")
    name = f"lamp/{bid}{mysql.MANIFEST_SUFFIX}"
    dest.put_json(name, doc)
    return name


def edit(dest, name, change) -> None:
    doc = dest.get_json(name)
    change(doc)
    dest.put_json(name, doc)


def check(dest, provider, name):
    return mysql.authenticate_manifest(dest, Resource(), name, dest.get_json(name), provider)


def test_an_untouched_manifest_authenticates(world):
    dest, k1, _ = world
    name = sidecar(dest, k1, "lamp-20260301-1000", "2026-03-01T10:00:01+00:00")
    b = check(dest, k1, name)
    assert b.id == "lamp-20260301-1000" and b.created.hour == 10
    assert dest.get_json(name)["auth"]["key_id"] == k1.key_id


@pytest.mark.parametrize("change", [
    lambda d: d.update(created="2027-01-01T00:00:00+00:00"),
    lambda d: d["dump"]["databases"]["app"]["tables"]["t"].update(rows=4),
    lambda d: d.update(extra="x"),
    lambda d: d.pop("stored_bytes"),
    lambda d: d["auth"].update(mac=d["auth"]["mac"][:-1] + ("0" if d["auth"]["mac"][-1] != "0"
                                                            else "1")),
], ids=["created", "rows", "added-field", "removed-field", "mac"])
def test_any_edit_fails_authentication(world, change):
    dest, k1, _ = world
    name = sidecar(dest, k1, "lamp-20260301-1000", "2026-03-01T10:00:01+00:00")
    edit(dest, name, change)
    with pytest.raises(IntegrityError, match="fails authentication: it was changed after"):
        check(dest, k1, name)


def test_a_manifest_cannot_pose_as_another_backup(world):
    dest, k1, _ = world
    old = sidecar(dest, k1, "lamp-20260301-1000", "2026-03-01T10:00:01+00:00")
    copy = f"lamp/lamp-20260302-1000{mysql.MANIFEST_SUFFIX}"
    dest.put_json(copy, dest.get_json(old))  # the old one, under a newer name
    with pytest.raises(IntegrityError, match="not the backup its name says"):
        check(dest, k1, copy)

    def renamed(d):  # ... or with its id changed too: the MAC key is bound to the id
        d.update(id="lamp-20260302-1000", data=f"lamp/lamp-20260302-1000{mysql.DATA_SUFFIX}")
    edit(dest, copy, renamed)
    with pytest.raises(IntegrityError, match="does not unwrap"):
        check(dest, k1, copy)


def test_a_wrapped_key_from_another_key_file_or_a_broken_block(world):
    dest, k1, k2 = world
    name = sidecar(dest, k2, "lamp-20260301-1000", "2026-03-01T10:00:01+00:00")
    with pytest.raises(IntegrityError, match="encrypted with local key"):
        check(dest, k1, name)
    edit(dest, name, lambda d: d["auth"].update(wrapped_key="%%%"))
    with pytest.raises(IntegrityError, match="authentication block is malformed"):
        check(dest, k2, name)


def test_the_newest_is_chosen_among_authentic_manifests_only(world):
    dest, k1, _ = world
    sidecar(dest, k1, "lamp-20260301-1000", "2026-03-01T10:00:01+00:00")
    sidecar(dest, k1, "lamp-20260301-1100", "2026-03-01T11:00:01+00:00")
    old = sidecar(dest, k1, "lamp-20260301-0900", "2026-03-01T09:00:01+00:00")
    edit(dest, old, lambda d: d.update(created="2026-03-09T00:00:00+00:00"))
    (dest.root / "lamp" / f"junk{mysql.MANIFEST_SUFFIX}").write_text("{not json")
    # unauthenticated listing believes the edit: that is why restores do not use it
    assert mysql.list_backups(dest, Resource())[0].id == "lamp-20260301-0900"
    backups, problems = mysql.authenticated_backups(dest, Resource(), k1)
    assert [b.id for b in backups] == ["lamp-20260301-1100", "lamp-20260301-1000"]
    assert len(problems) == 2
    assert any("lamp-20260301-0900.manifest.json fails authentication" in p for p in problems)
    assert any("junk.manifest.json is not a dr MySQL backup manifest" in p for p in problems)


def test_the_mac_covers_canonical_json_whatever_the_file_layout(world):
    dest, k1, _ = world
    name = sidecar(dest, k1, "lamp-20260301-1000", "2026-03-01T10:00:01+00:00")
    path = dest.root / name
    path.write_text(json.dumps(json.loads(path.read_text()), indent=None))  # re-serialized
    assert check(dest, k1, name).id == "lamp-20260301-1000"
