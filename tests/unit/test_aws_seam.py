"""One AWS seam: only dr/aws/ imports botocore or makes a client (`grep -rn "botocore\\|\\.client(" dr
| grep -v "^dr/aws/"` finds nothing). Everything above it speaks the typed adapters' domain types."""

from __future__ import annotations

import re
from pathlib import Path


DR = Path(__file__).resolve().parents[2] / "dr"
RULE = re.compile(r"botocore|\.client\(")



def offenders() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(DR.rglob("*.py")):
        rel = path.relative_to(DR.parent).as_posix()
        if rel.startswith("dr/aws/"):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if RULE.search(line):
                found.setdefault(rel, []).append(f"{number}: {line.strip()}")
    return found


def test_only_dr_aws_touches_botocore_or_clients():
    assert offenders() == {}


def test_the_rule_sees_what_it_should():
    assert RULE.search('session.client("rds", region)') and RULE.search("from botocore.exceptions import X")
    assert not RULE.search("session.rds(region).snapshot(kind, snapshot_id)")
