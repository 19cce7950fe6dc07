#!/usr/bin/env python3
"""The call chains that lead to one function in a V8 .cpuprofile, by self time.

usage: cpuprofile-callers.py PROFILE FUNCTION [DEPTH]
"""
import json, sys, collections
p = json.load(open(sys.argv[1])); target = sys.argv[2]; depth = int(sys.argv[3]) if len(sys.argv) > 3 else 6
nodes = {n['id']: n for n in p['nodes']}
parent = {}
for n in p['nodes']:
    for c in n.get('children', []): parent[c] = n['id']
dt = collections.Counter()
intervals = p['timeDeltas']
for s, d in zip(p['samples'], intervals): dt[s] += d
agg = collections.Counter()
for nid, us in dt.items():
    n = nodes[nid]
    if n['callFrame']['functionName'] != target: continue
    chain = []; cur = parent.get(nid)
    while cur is not None and len(chain) < depth:
        cf = nodes[cur]['callFrame']; chain.append(f"{cf['functionName'] or '(anon)'}:{cf['url'].split('/')[-1]}:{cf['lineNumber']+1}")
        cur = parent.get(cur)
    agg[' <- '.join(chain)] += us
for k, v in agg.most_common(12): print(f"{v/1000:8.1f} ms  {k}")
