"""Empirical epsilon on the city (gnnrisk.privacy.city.audit): one-run canary audits per unit and mechanism, and
the same mechanisms with their noise switched off (broken), on the default city (5000 people), fixed seeds.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/city_privacy_audit.py [--people 5000] [--canaries 2000]
        [--seeds 0 1 2] [--out experiments/city_privacy_audit.md]

Prints a markdown table (mechanism, unit, mode, claimed epsilon, one release's epsilon, exact epsilon of what the
canaries test, eps_lower per seed, the canary ceiling, how many seeds exceed the claim, canaries, the share of the
sensitivity the attack statistic uses, wall s) and writes it, with the command and the wall time, between the
markers of the write-up (`--out`; the table only, the text around it is kept).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch

from gnnrisk.data.city import generate_city
from gnnrisk.privacy.city.audit import (
    broken,
    incident_canary_audit,
    person_canary_audit,
    relation_canary_audit,
)
from gnnrisk.privacy.city.mechanisms import build_city_mechanism

EPSILONS = (1.0, 4.0, 16.0)
RELATIONS = ("knows", "lives_at", "frequents")
BEGIN, END = "<!-- table:begin -->", "<!-- table:end -->"


def audits(people: int, canaries: int):
    """(mechanism config, audit function, canaries, mode) of every row, in table order."""
    for name in ("edgerand", "lapgraph"):
        for rel in RELATIONS:
            for eps in EPSILONS:
                yield {"name": name, "epsilon": eps, "delta": 0.0, "max_edges": 10**8, "relation": rel}, \
                    relation_canary_audit, min(canaries, people // 2 - 10 if rel == "knows" else people), "release"
    for unit, fn in (("edge:knows", relation_canary_audit), ("incident", incident_canary_audit),
                     ("person", person_canary_audit)):
        for mode in ("release", "run"):
            for eps in EPSILONS:
                yield {"name": "hetero_gap", "unit": unit, "epsilon": eps}, fn, \
                    min(canaries, people // 2 - 10 if unit == "edge:knows" else people), mode


def fmt(x: float) -> str:
    return f"{x:.2f}"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--canaries", type=int, default=2000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--city-seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".md"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    data = generate_city({"num_people": args.people}, seed=args.city_seed)
    header = ("| mechanism | unit | mode | claimed eps | one release eps | exact eps | eps_lower (seeds "
              + ", ".join(map(str, args.seeds)) + ") | ceiling | above claim | canaries | signal share | wall s |")
    rows = [header, "|" + "---|" * 12]
    for cfg, fn, count, mode in audits(args.people, args.canaries):
        mech = build_city_mechanism(cfg)
        for m in (mech, broken(mech)):
            kwargs = {"mode": mode} if cfg["name"] == "hetero_gap" else {}
            results = [fn(data, m, count, seed, **kwargs) for seed in args.seeds]
            r = results[0]
            lows = [x["eps_lower"] for x in results]
            above = sum(x["eps_lower"] > x["claimed_epsilon"] for x in results)
            row = (f"| {r['mechanism']} | {r['unit']} | {mode} | {fmt(r['claimed_epsilon'])} | "
                   f"{fmt(r.get('epsilon_release', r['claimed_epsilon']))} | {fmt(r['epsilon_exact'])} | "
                   f"{' / '.join(map(fmt, lows))} | {fmt(r['eps_ceiling'])} | {above}/{len(results)} | "
                   f"{r['canaries']} | {fmt(r.get('signal_share', 1.0))} | {sum(x['seconds'] for x in results):.1f} |")
            rows.append(row)
            print(row, flush=True)
    wall = time.perf_counter() - start
    command = "OMP_NUM_THREADS=1 .venv/bin/python experiments/city_privacy_audit.py " + shlex.join(argv or sys.argv[1:])
    block = "\n".join([BEGIN, f"Command: `{command.strip()}`; wall time {wall:.0f} s (CPU, 1 thread).", "",
                       *rows, END])
    print(f"\nwall {wall:.0f} s")
    if args.out.exists():
        text = args.out.read_text()
        if BEGIN in text and END in text:
            text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END):]
        else:
            text = text.rstrip() + "\n\n" + block + "\n"
        args.out.write_text(text)
    else:
        args.out.write_text(block + "\n")
    return block


if __name__ == "__main__":
    main()
