"""What a fork bomb or a thread storm in one sandboxed kernel costs, and what the sandbox's
process limit costs an honest kernel.

For each hostile cell (a fork loop, a thread loop) it starts two sandboxed kernels, as two
grading workers would: the hostile one and an honest one running a fixed torch workload.
It reports how long the hostile cell ran until the sandbox stopped it (the watchdog kills
the kernel's PID namespace once it reaches ``max_processes``; ``--no-watchdog`` leaves only
RLIMIT_NPROC, so the hostile cell spins until the cell timeout) and how long the honest
workload took beside it, against the same workload alone with and without the watchdog.

    .venv/bin/python benchmarks/bench_limits.py [--repeat 3] [--repeat-hostile 1] [--no-watchdog] [--timeout 30]

Run it as root or as an unprivileged user: the limits are the same.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grader.kernel import Kernel  # noqa: E402
from grader.sandbox import Sandbox  # noqa: E402

HONEST = ("import torch, time\ntorch.manual_seed(0)\nt = time.perf_counter()\nx = torch.randn(400, 400)\n"
          "for _ in range(300):\n    x = (x @ x).tanh()\nprint(time.perf_counter() - t)\n")
HOSTILE = {
    "fork bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
    "thread storm": ("import threading\nev = threading.Event()\nwhile True:\n    try:\n"
                     "        threading.Thread(target=ev.wait, daemon=True).start()\n"
                     "    except RuntimeError:\n        pass\n"),
    # 64 KiB stacks: the address-space limit no longer stops it first, the process limit does
    "thread storm, small stacks": ("import threading\nthreading.stack_size(64 * 1024)\nev = threading.Event()\n"
                                   "while True:\n    try:\n        threading.Thread(target=ev.wait, daemon=True).start()\n"
                                   "    except RuntimeError:\n        pass\n"),
}


def kernel(watchdog: bool) -> Kernel:
    scratch = tempfile.mkdtemp(prefix="bench-limits-")
    os.chmod(scratch, 0o755)
    k = Kernel(Sandbox(), Path(scratch))
    k.start()
    if not watchdog and k.watchdog is not None:
        k.watchdog.stop()
    k.execute("import torch", timeout=60)
    return k


def honest_time(k: Kernel) -> float:
    out = k.execute(HONEST, timeout=300)
    text = "".join(o.get("text", "") for o in out.outputs if o.get("output_type") == "stream")
    return float(text.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--repeat-hostile", type=int, default=1)
    ap.add_argument("--no-watchdog", action="store_true")
    ap.add_argument("--timeout", type=float, default=30.0, help="the hostile cell's timeout (s)")
    args = ap.parse_args()
    watch = not args.no_watchdog
    print(f"uid {os.geteuid()}, load {os.getloadavg()[0]:.2f}, watchdog {'on' if watch else 'off'}")
    for label, w in (("honest alone, watchdog on", True), ("honest alone, watchdog off", False)):
        k = kernel(w)
        began = time.monotonic()
        try:
            times = [honest_time(k) for _ in range(args.repeat)]
            cpu = k.watchdog.cpu if (w and k.watchdog) else 0.0
        finally:
            k.kill()
        print(f"{label:30s} median {statistics.median(times):6.2f} s  {[round(t, 2) for t in times]}"
              + (f"; watchdog CPU {cpu:.3f} s in {time.monotonic() - began:.1f} s" if w else ""))
    for name, code in HOSTILE.items():
        for _ in range(args.repeat_hostile):
            honest, bad = kernel(True), kernel(watch)
            try:
                import threading

                beside: list[float] = []
                start = time.monotonic()
                msg = bad.begin(code)
                runner = threading.Thread(target=lambda: beside.append(honest_time(honest)))
                runner.start()
                out = bad.wait(msg, args.timeout, collect=False)
                stopped = time.monotonic() - start
                if bad.watchdog and bad.watchdog.fired_at:
                    stopped = bad.watchdog.fired_at - start
                runner.join()
                peak = bad.watchdog.peak if bad.watchdog else "?"
                how = "killed by the watchdog" if bad.death_reason else f"cell ended: {out.status}"
                print(f"{name:26s} stopped after {stopped:6.2f} s ({how}, peak {peak} tasks); "
                      f"honest beside it {beside[0]:6.2f} s; load {os.getloadavg()[0]:.1f}")
            finally:
                bad.kill()
                honest.kill()


if __name__ == "__main__":
    main()
