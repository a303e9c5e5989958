"""MongoDB replica-set health across regions (`dr mongo status`).

probe.py talks to the members (I/O) → evaluate.py turns what it saw into a report (pure; votes.py
does the voting arithmetic, findings.py the findings) → model.py is the report (data only; text
is dr/render/mongo.py). service.py checks one set or several, watch.py is the --watch loop,
metrics.py the Prometheus figures. Simulated sets for demos and tests: dr/sandbox/mongo.py.

Nothing is imported here: `import dr.mongo` stays cheap; import the module you need.
"""
