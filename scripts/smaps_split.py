#!/usr/bin/env python3
"""A running process's RSS split by kind from /proc/PID/smaps (issue 19): its executable's
mappings, shared libraries, [heap], thread stacks (2 MiB mappings after a guard page) and
other anonymous memory.

    python3 scripts/smaps_split.py PID
"""
import sys,re,os
pid=sys.argv[1]; exe=os.readlink(f"/proc/{pid}/exe")
# thread stacks: the anon mapping right above a guard page (---p) of a thread
rows=[];cur=None
for line in open(f"/proc/{pid}/smaps"):
    m=re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$",line)
    if m:
        cur=dict(a=int(m.group(1),16),b=int(m.group(2),16),perm=m.group(3),name=m.group(4),rss=0);rows.append(cur)
    elif line.startswith("Rss:"): cur["rss"]=int(line.split()[1])
cats={}
def add(c,v): cats[c]=cats.get(c,0)+v
for i,r in enumerate(rows):
    n=r["name"]; sz=(r["b"]-r["a"])//1024
    if n==exe: add("code+data: doorbell binary",r["rss"])
    elif n.startswith("/"): add("code+data: shared libraries",r["rss"])
    elif n=="[heap]": add("heap: main malloc arena ([heap])",r["rss"])
    elif n=="[stack]": add("stacks: main thread",r["rss"])
    elif n=="" and i>0 and rows[i-1]["perm"]=="---p" and rows[i-1]["b"]==r["a"] and sz in (2044,2048,8188,8192,2040):
        add("stacks: other threads (2 MiB mappings after a guard page)",r["rss"])
    elif n=="": add(f"other anonymous mappings",r["rss"])
    else: add(f"other {n}",r["rss"])
tot=sum(cats.values())
for c,v in sorted(cats.items(),key=lambda x:-x[1]): print(f"| {c} | {v/1024:.1f} MiB | {100*v/tot:.0f} % |")
print(f"| total (Rss) | {tot/1024:.1f} MiB | |")
