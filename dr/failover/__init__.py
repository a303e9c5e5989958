"""Failover: drill, restore to the DR region and failback (service.py), and readiness, the one
definition of "can the DR region take over now" (readiness.py)."""
