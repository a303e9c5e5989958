"""`dr schedule`: the scheduler daemon (daemon.py), what a job runs (runners.py), its pure slot
logic (jobs.py), the slot-lock protocol (slots.py), the spool that keeps records while the state
store is unreachable (spool.py), what to alert on (rpo.py) and how (alerts.py), /healthz and
/metrics (http.py, metrics.py), and its clocks (clocks.py)."""
