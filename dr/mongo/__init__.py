"""Monitoring: MongoDB replica-set health across regions.

    check_replica_set(resource, primary_region, timeout=None) -> MongoReport   # probe + evaluate
    report.worst, report.to_dict(), report.render_text()
    simulated_report() / demo_members()                                      # for `dr demo`

mongo.py evaluates (pure; votes.py does the voting arithmetic, findings.py the findings),
probe.py talks to the members, report.py is the result, service.py ties probe and evaluation,
metrics.py is the Prometheus exposition, watch.py the --watch loop, simulate.py fake sets
(documents, and mockupdb servers on the wire).
Names are imported lazily so `import dr.monitor` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for readers and type checkers; at run time names load on first use
    from dr.monitor.report import Finding, MongoReport
    from dr.monitor.service import SetResult, check_replica_set, check_sets, simulated_report
    from dr.monitor.simulate import demo_members

__all__ = ["Finding", "MongoReport", "SetResult", "check_replica_set", "check_sets", "demo_members",
           "simulated_report"]

_WHERE = {"Finding": "dr.monitor.report", "MongoReport": "dr.monitor.report",
          "SetResult": "dr.monitor.service", "check_replica_set": "dr.monitor.service",
          "check_sets": "dr.monitor.service", "simulated_report": "dr.monitor.service",
          "demo_members": "dr.monitor.simulate"}


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'dr.monitor' has no attribute {name!r}")
