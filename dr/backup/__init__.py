"""Backups: taking, copying and expiring recovery points."""
