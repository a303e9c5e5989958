"""What the scheduler alerts on, as conditions for dr.scheduler.alerts.AlertBook (which sends one
message when a condition opens and one when it clears):

* `rpo_condition`: a resource's newest copy in the DR region is older than objectives.rpo (plus
  a grace), or there is none long after the scheduler started;
* `job_condition`: a job failed, or succeeds again;
* `store_condition`: the state store has been unreachable for STORE_ALERT_AFTER, or is back.

Pure: the daemon gathers the figures (its metrics, the run records) and publishes the result.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from dr.clock import iso
from dr.config import format_duration
from dr.scheduler import jobs as J
from dr.scheduler.alerts import Condition

STORE_ALERT_AFTER = timedelta(minutes=10)


def rpo_condition(job: J.Job, rpo: timedelta | None, now: datetime, *, started_at: datetime, running: bool,
                  objective: timedelta, grace: timedelta, dr_region: str, owner: str) -> tuple[Condition, bool]:
    """The RPO condition of a job that makes copies, and whether its RPO is over the objective
    (the breach gauge). A running job gets up to twice the objective before it alerts."""
    name = job.name
    if rpo is None:
        failing = now - started_at > objective + grace and not running
    else:
        failing = rpo > objective + grace and not (running and rpo <= 2 * objective)
    point = now - rpo if rpo is not None else None
    if failing:
        subject = (f"[dr] RPO breach: {name} has no copy in {dr_region}" if rpo is None else
                   f"[dr] RPO breach: {name}'s newest copy in {dr_region} is "
                   f"{format_duration(minutes(rpo))} old")
        message = (f"{subject[5:]} (objective {format_duration(objective)}).\n"
                   f"Schedule: {job.schedule}. Check `dr runs list` and the job's alerts; "
                   "`dr report` shows the history.\nYou will get one more message when it is "
                   f"back within the objective.\n(from dr schedule on {owner})")
    else:
        subject = f"[dr] RPO back within objective: {name}"
        message = (f"{name}: newest copy in {dr_region} is "
                   f"{format_duration(minutes(rpo)) if rpo is not None else 'unknown'} old "
                   f"(objective {format_duration(objective)}).")
    incident = J.format_slot(point) if point is not None else "no-copy"
    return Condition(f"rpo-{name}", failing, incident, subject, message), rpo is None or rpo > objective


def job_condition(job: J.Job, slot: datetime, *, status: str, run_id: str | None, error: str | None,
                  owner: str) -> Condition:
    """A finished run (completed or failed) of `job`: failing while its runs fail."""
    slot_text = J.format_slot(slot)
    failed = status == "failed"
    if not job.makes_copies:
        subject = (f"[dr] verification of {job.target}'s backup failed" if failed
                   else f"[dr] verification of {job.target}'s backups succeeds again")
        message = (f"dr schedule ({owner}): job {job.name}, slot {slot_text}: "
                   + (f"failed:\n{error or 'no error message'}\n" if failed
                      else f"completed (run {run_id}).\n")
                   + (f"Details: dr runs show {run_id}; `dr backup list --name {job.target}` "
                      "shows which backups are verified.\n" if run_id else "")
                   + ("You will get one more message when a verification succeeds again."
                      if failed else ""))
        return Condition(f"job-{job.name}", failed, slot_text, subject, message)
    if failed:
        subject = f"[dr] backup of {job.name} failed"
        message = (f"dr schedule ({owner}): job {job.name}, slot {slot_text}, failed:\n"
                   f"{error or 'no error message'}\n"
                   + (f"Details: dr runs show {run_id}\n" if run_id else "")
                   + "You will get one more message when it succeeds again.")
    else:
        subject = f"[dr] backup of {job.name} succeeds again"
        message = f"job {job.name}, slot {slot_text}: completed (run {run_id})."
    return Condition(f"job-{job.name}", failed, slot_text, subject, message)


def store_condition(store, now: datetime, *, was_open: bool, owner: str) -> Condition | None:
    """The state store's condition; None when it is up and no alert is open (nothing to say)."""
    down_since = getattr(store, "down_since", None)
    failing = getattr(store, "up", True) is False and down_since is not None and \
        now - down_since >= STORE_ALERT_AFTER
    if not failing and not was_open:
        return None
    where = store.description
    if failing:
        subject = "[dr] state store unreachable"
        message = (f"dr schedule ({owner}) cannot reach {where} since {iso(down_since)}: "
                   f"{getattr(store, 'last_error', '')}\nBackups go on; their records wait in "
                   "the local spool and are written when the store answers again.")
    else:
        subject, message = "[dr] state store reachable again", f"{where} answers again; spooled records flushed."
    incident = J.format_slot(down_since) if down_since else "down"
    return Condition("state-store", failing, incident, subject, message)


def minutes(td: timedelta) -> timedelta:
    """Round to whole minutes for messages (an RPO of 2h5m13s reads as 2h5m)."""
    return timedelta(minutes=int(td.total_seconds() // 60)) if td >= timedelta(minutes=1) else td
