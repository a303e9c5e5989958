"""`dr schedule`: the scheduler daemon (daemon.py), its pure slot logic (jobs.py), the lock and
spool it keeps in the state store (spool.py), alerts (alerts.py), /healthz and /metrics (http.py)."""
