"""Runbooks: YAML DAGs of typed steps, run with a journal so they can resume (drill, failover)."""
