#!/usr/bin/env python3
"""CPU per thread name of a running process over a window (issue 19): utime+stime from
/proc/PID/task/*/stat.

    python3 scripts/thread_cpu.py PID [SECONDS]
"""
import os, sys, time
pid=int(sys.argv[1]); dur=float(sys.argv[2]) if len(sys.argv) > 2 else 15
def snap():
    d={}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            s=open(f"/proc/{pid}/task/{t}/stat").read()
            comm=s[s.index("(")+1:s.rindex(")")]; f=s.rsplit(")",1)[1].split()
            d[t]=(comm,int(f[11])+int(f[12]))
        except FileNotFoundError: pass
    return d
a=snap(); t0=time.time(); time.sleep(dur); b=snap(); el=time.time()-t0
tck=os.sysconf("SC_CLK_TCK"); tot=0; by={}
for t,(c,v) in b.items():
    dv=v-a.get(t,(c,0))[1]; by[c]=by.get(c,0)+dv; tot+=dv
for c,v in sorted(by.items(),key=lambda x:-x[1]): print(f"{c:20s} {100*v/tck/el:5.2f} % of a core")
print(f"{'total':20s} {100*tot/tck/el:5.2f} %")
