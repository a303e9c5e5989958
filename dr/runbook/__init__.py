"""Runbooks: YAML DAGs of typed steps, run with a journal so they can resume (drill, failover).

    from dr.runbook import EngineContext, load_runbook, plan_batches, run_runbook

    runbook = load_runbook("runbooks/drill.yaml", config)      # ConfigError lists every problem
    batches = plan_batches(runbook)                            # pure: list[list[Step]]
    result = run_runbook(runbook, EngineContext(config=config, session=session, store=store,
                                                drill=True))   # RunResult; result.exit_code
    result = run_runbook(runbook, ectx, resume=result.run_id)  # continue an unfinished run

Modules: model (Runbook, Step, results, statuses and allowed transitions as data), loader (YAML
-> validated Runbook, with yamlnodes for line numbers), refs and scope (${...}), params (parameter
checks), dag (batches, cycles, critical path), engine (run_runbook, EngineContext), executor
(the DAG executor), runner (the one wrapper every step runs in), journal (RunJournal, fenced, with
the ledger of what the run created), lease (one holder per stack, renewed, taken over race-free),
interrupts (Ctrl-C), phases (hooks, teardown), results (RunResult, the two RTOs, run record).
The format is documented in runbooks/FORMAT.md; step types live in steps/ (the registry).
"""

from dr.runbook.dag import critical_path, plan_batches
from dr.runbook.engine import EngineContext, run_runbook
from dr.runbook.loader import load_runbook, parse_runbook
from dr.runbook.lease import RunLocked
from dr.runbook.model import Runbook, RunResult, Step, StepResult, TeardownResult

__all__ = [
    "EngineContext", "RunLocked", "RunResult", "Runbook", "Step", "StepResult", "TeardownResult",
    "critical_path", "load_runbook", "parse_runbook", "plan_batches", "run_runbook",
]
