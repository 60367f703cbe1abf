"""Training-step cost of this checkout against an older one, measured in one sitting.

Run: python tests/perf/step_ratio.py --baseline CHECKOUT [--rounds 3] [--steps 300] [--scene motion_0]
         [--method full]
CHECKOUT is a worktree of the commit to compare with (`git worktree add /tmp/old 84c8113`). Each
round runs tests/perf/profile_step.py once on the baseline and once on this checkout, in
alternating order (one thread, CPU time of steps 10..steps-1 of the `cpu` profile, each checkout
with its own profile definition and its own build of the compiled kernels). Prints every round's
mean CPU ms per step, the minimum over rounds of each (the figure: other processes on a shared
machine only ever add time) and the ratio of the minima, with the machine's load average.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[2]


def step_ms(code: Path, args: argparse.Namespace, data_root: Path) -> float:
    """Mean CPU ms per step of one profile_step.py run on the bench package of `code`."""
    env = dict(os.environ)
    if code != ROOT:  # its own build: the extension cache is keyed by name, not by checkout
        env["TORCH_EXTENSIONS_DIR"] = str(Path(args.baseline_extensions).resolve())
    cmd = [sys.executable, str(HERE.with_name("profile_step.py")), "--code", str(code),
           "--steps", str(args.steps), "--scene", args.scene, "--method", args.method,
           "--data-root", str(data_root)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    found = re.search(r"^total step \(cpu\)\s+([0-9.]+)", out.stdout, re.M)
    if out.returncode != 0 or found is None:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SystemExit(f"step_ratio: profile of {code} failed: {tail[0]}")
    return float(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="checkout of the commit to compare with")
    parser.add_argument("--baseline-extensions", default="/tmp/bench_step_ratio_extensions",
                        help="TORCH_EXTENSIONS_DIR for the baseline's compiled kernels")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--scene", default="motion_0")
    parser.add_argument("--method", default="full")
    parser.add_argument("--data-root", default=str(ROOT / "datasets" / "data" / "synthetic"))
    args = parser.parse_args()
    baseline = Path(args.baseline).resolve()
    if not (baseline / "bench" / "__init__.py").is_file():
        raise SystemExit(f"step_ratio: --baseline {baseline}: expected a checkout with a bench/ package")
    data_root = Path(args.data_root).resolve()
    times: dict[str, list[float]] = {"baseline": [], "this": []}
    print(f"{args.method} on synthetic/{args.scene}, cpu profile, 1 thread, steps 10..{args.steps - 1}; "
          f"load average before: {os.getloadavg()[0]:.2f}")
    for r in range(args.rounds):
        order = [("baseline", baseline), ("this", ROOT)]
        for name, code in order if r % 2 == 0 else order[::-1]:
            times[name].append(step_ms(code, args, data_root))
        print(f"round {r + 1}: baseline {times['baseline'][-1]:.2f} ms/step, "
              f"this {times['this'][-1]:.2f} ms/step")
    old, new = min(times["baseline"]), min(times["this"])
    print(f"minimum over {args.rounds} rounds: baseline ({baseline.name}) {old:.2f} ms/step, "
          f"this checkout {new:.2f} ms/step: {old / new:.2f}x; load average after: "
          f"{os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
