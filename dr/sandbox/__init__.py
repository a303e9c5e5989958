"""Simulations to try dr without production: the embedded two-region AWS (a moto server on
127.0.0.1) and the demo world in it (server.py, fidelity/, world.py), a throwaway MariaDB
(mariadb.py), and simulated MongoDB replica sets (mongo.py). Only `dr demo`, `dr sandbox` and
tests import this package."""
