#!/usr/bin/env python3
"""Benchmark one doorbell call per video size (not a test): the real release binaries and
headless Chromium on loopback.

    cargo build --release -p doorbell && python3 scripts/bench_call.py [--seconds 30] [--sizes 320x240,640x480]
        [--agent-args "--audio-in echo-room --audio-out echo-room"] [--runs N] [--browser firefox]

For each size it reports:
  - ring -> notified: from the `trigger` event to the `notified` event (agent clock);
  - link open -> first decoded frame: page load to the first frame (browser.js, page clock),
    as run (with the scripted tap's own delay in it) and without the time the page waited for
    the tap (page ready + Answer tap -> first frame), and Answer tap -> first frame, with the
    page's marks for each step in between (web/app.js `marks`);
  - glass-to-glass: the capture time the test pattern stamps into each frame vs. the page's
    clock when the frame is shown (same machine, same clock), median/p95;
  - agent CPU (% of one core) over the measured window, from /proc/PID/stat, and the agent's
    peak RSS (VmHWM) at the end of the call.
Prints a Markdown table row per size.
"""

import argparse
import json
import os
import queue
import shlex
import subprocess
import sys
import tempfile
import threading
import time

from benchproc import cpu_seconds, free_port, status_kib, wait_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("DOORBELL_BIN", os.path.join(ROOT, "target", "release", "doorbell"))


def run_size(size, seconds, agent_args=(), browser_name="chromium"):
    data = tempfile.mkdtemp(prefix="doorbell-bench-")
    port = free_port()
    token = "bench-token-0123456789abcdef"
    env = dict(os.environ, DOORBELL_TOKEN=token, RUST_LOG="warn")
    server = subprocess.Popen([BIN, "server", "--listen", f"127.0.0.1:{port}", "--data-dir", data],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    agent = subprocess.Popen(
        [BIN, "agent", "--server", f"https://127.0.0.1:{port}", "--ca-cert",
         os.path.join(data, "cert.pem"), "--trigger", "stdin", "--events", "json",
         "--ice-host", "127.0.0.1", "--video-size", size, "--fps", "30", *agent_args],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    events = queue.Queue()

    def read():
        for line in agent.stdout:
            events.put(json.loads(line))
    threading.Thread(target=read, daemon=True).start()

    def wait(name, within=60):
        end = time.time() + within
        while time.time() < end:
            try:
                e = events.get(timeout=max(0.01, end - time.time()))
            except queue.Empty:
                break
            if e["event"] == name:
                return e
        raise SystemExit(f"no {name} event")

    try:
        wait("connected")
        agent.stdin.write("\n")
        agent.stdin.flush()
        trigger = wait("trigger")
        notified = wait("notified")
        browser = subprocess.Popen(
            ["node", os.path.join(ROOT, "tests", "e2e", "browser.js"), notified["url"], "--answer",
             "--measure-seconds", str(seconds), "--hangup", "--timeout-ms", "60000",
             "--browser", browser_name],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        wait("media_connected")
        cpu0, t0 = cpu_seconds(agent.pid), time.time()
        end = wait("call_end", within=seconds + 90)
        cpu1, t1 = cpu_seconds(agent.pid), time.time()
        hwm = status_kib(agent.pid, "VmHWM")
        out, _ = browser.communicate(timeout=60)
        result = json.loads([l for l in out.splitlines() if '"result"' in l][-1])
        lat = result.get("latency_ms") or {}
        marks = result.get("marks") or {}
        answer = marks.get("answer")
        steps = {k: round(v - answer) for k, v in marks.items()} if answer is not None else {}
        return {
            "size": size,
            "ring_to_notified_ms": (notified["ts"] - trigger["ts"]) * 1000,
            "load_to_first_frame_ms": result.get("load_to_first_frame_ms"),
            "answer_to_first_frame_ms": result.get("answer_to_first_frame_ms"),
            "page_ready_ms": marks.get("ringing"),
            "open_to_frame_without_tap_ms": (marks.get("ringing") or 0) + (result.get("answer_to_first_frame_ms") or 0),
            "steps_after_tap_ms": steps,
            "fps": result.get("fps"),
            "g2g_median_ms": lat.get("median"),
            "g2g_p95_ms": lat.get("p95"),
            "agent_cpu_pct": 100 * (cpu1 - cpu0) / (t1 - t0),
            "agent_peak_rss_mib": hwm / 1024 if hwm else None,
            "video_frames_sent": end.get("video_frames_sent"),
        }
    finally:
        agent.kill()
        server.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--sizes", default="320x240,640x480")
    ap.add_argument("--agent-args", default="", help="more flags for the agent, e.g. the audio processing")
    ap.add_argument("--runs", type=int, default=1, help="calls per size")
    ap.add_argument("--browser", default="chromium", choices=["chromium", "firefox"])
    args = ap.parse_args()
    agent_args = shlex.split(args.agent_args)
    if not os.path.exists(BIN):
        raise SystemExit("build first: cargo build --release -p doorbell")
    print("| size | ring → notified | link open → first frame, as run / without the wait for the tap | Answer → first frame | fps | glass-to-glass median / p95 | agent CPU | agent peak RSS |")
    print("|---|---|---|---|---|---|---|---|")
    for size in [s for s in args.sizes.split(",") for _ in range(args.runs)]:
        r = run_size(size, args.seconds, agent_args, args.browser)
        print(f"| {r['size']} | {r['ring_to_notified_ms']:.1f} ms | {r['load_to_first_frame_ms']:.0f} / {r['open_to_frame_without_tap_ms']:.0f} ms | "
              f"{r['answer_to_first_frame_ms']:.0f} ms | {r['fps']:.1f} | {r['g2g_median_ms']} / {r['g2g_p95_ms']} ms | "
              f"{r['agent_cpu_pct']:.1f} % | {r['agent_peak_rss_mib']:.1f} MiB |", flush=True)
        print(json.dumps(r), file=sys.stderr)


if __name__ == "__main__":
    main()
