#!/usr/bin/env python3
"""Checks a flowrun --events file: every line is one JSON object that the RunEvent
schema beside this script accepts, and the lines tell a consistent story. Usage:
check.py EVENTS.jsonl; prints one line per problem and exits 1, or prints a summary
("runs=R instances=I failed=F cached=C outputs-hashed=H inputs-hashed=K") and exits 0.

The story: each flow run starts (START, or RUNNING when resumed) before any of its
instances and ends once (COMPLETE, FAIL or ABORT) after all of them; each instance
run has a START and then one COMPLETE or FAIL with the same runId, whose parent facet
names its flow run's runId and job. A flow run whose flowrun was killed stays open
until a resume reports it RUNNING again (its instances started then are forgotten)."""
import json
import os
import sys

import jsonschema

schema = json.load(open(os.path.join(os.path.dirname(__file__), "openlineage-runevent.schema.json")))
validator = jsonschema.Draft202012Validator(schema)
problems = []
flow_open = {}     # runId -> job name, while the flow run is open
flow_seen = set()  # every flow runId, for the count
inst_open = {}     # runId -> parent runId, between START and its end
counts = dict(runs=0, instances=0, failed=0, cached=0, outputs_hashed=0, inputs_hashed=0)
for n, line in enumerate(open(sys.argv[1]), 1):
    try:
        ev = json.loads(line)
    except ValueError as e:
        problems.append(f"line {n}: not JSON: {e}")
        continue
    for err in validator.iter_errors(ev):
        problems.append(f"line {n}: {'/'.join(map(str, err.absolute_path))}: {err.message[:200]}")
    rid = ev.get("run", {}).get("runId")
    facets = ev.get("run", {}).get("facets", {})
    kind = ev.get("eventType")
    if "parent" in facets:
        parent = facets["parent"]["run"]["runId"]
        if parent not in flow_open:
            problems.append(f"line {n}: instance of a flow run that is not open ({parent})")
        elif facets["parent"]["job"]["name"] != flow_open[parent]:
            problems.append(f"line {n}: parent job {facets['parent']['job']['name']} is not {flow_open[parent]}")
        if not ev["job"]["name"].startswith(facets["parent"]["job"]["name"] + "."):
            problems.append(f"line {n}: job {ev['job']['name']} is not below its flow's")
        if kind == "START":
            if rid in inst_open:
                problems.append(f"line {n}: instance {rid} started twice")
            inst_open[rid] = parent
        elif kind in ("COMPLETE", "FAIL"):
            if inst_open.pop(rid, None) != parent:
                problems.append(f"line {n}: {kind} of instance {rid} without its START")
            counts["instances"] += 1
            fi = facets["flow_instance"]
            if kind == "FAIL":
                counts["failed"] += 1
                if "error" not in fi or "errorMessage" not in facets:
                    problems.append(f"line {n}: FAIL without an error")
            if fi.get("cached"):
                counts["cached"] += 1
            if (kind == "FAIL") != (fi.get("state") == "failed"):
                problems.append(f"line {n}: {kind} with state {fi.get('state')}")
            counts["outputs_hashed"] += sum(1 for d in ev.get("outputs", []) if "flow_content" in d.get("facets", {}))
            counts["inputs_hashed"] += sum(1 for d in ev.get("inputs", []) if "flow_content" in d.get("facets", {}))
        else:
            problems.append(f"line {n}: instance event {kind}")
    else:
        if kind in ("START", "RUNNING"):
            if rid in flow_open and kind == "START":
                problems.append(f"line {n}: flow run {rid} started while open")
            if rid in flow_open:  # RUNNING: resumed after its flowrun was killed
                for i in [i for i, p in inst_open.items() if p == rid]:
                    del inst_open[i]
            if kind == "START" and rid in flow_seen:
                problems.append(f"line {n}: flow run {rid} STARTed again (a resume says RUNNING)")
            flow_open[rid] = ev["job"]["name"]
            flow_seen.add(rid)
            counts["runs"] = len(flow_seen)
        elif kind in ("COMPLETE", "FAIL", "ABORT"):
            if rid not in flow_open:
                problems.append(f"line {n}: end of flow run {rid} that is not open")
            left = [i for i, p in inst_open.items() if p == rid]
            if left:
                problems.append(f"line {n}: flow run ends with {len(left)} instances not ended")
            flow_open.pop(rid, None)
            if "state" not in facets.get("flow_run", {}):
                problems.append(f"line {n}: end of a flow run without its state")
            if kind == "FAIL" and "errorMessage" not in facets:
                problems.append(f"line {n}: a failed flow run without its errorMessage")
        else:
            problems.append(f"line {n}: flow run event {kind}")
if problems:
    print("\n".join(problems[:20]))
    sys.exit(1)
print(" ".join(f"{k.replace('_', '-')}={v}" for k, v in counts.items()))
