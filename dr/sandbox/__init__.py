"""The embedded two-region AWS (a moto server on 127.0.0.1) and the demo world in it."""
