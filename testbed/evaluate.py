#!/usr/bin/env python3
"""testbed/evaluate.py LABELS CANDIDATES.jsonl [--alpha A] [--json] [--require-all]

Judges `relaytrace trace --candidates FILE` output against a testbed run's ground truth
(scenario/labels.json): every candidate link is looked up by the 5-tuples of its inbound
and outbound connections in the labels and classed as

  true-attack  a labelled attack hop pair (in -> out at a relay of the attack chain)
  true-legit   a labelled true relay that is not the attack (the admin's jump host)
  false        anything else (hard negatives: same relay, same time, same /24 ...)

and prints, per class, how many links have a false-match probability <= alpha, the
labelled true links that got no candidate at all, and the calibration check the issue
asks for: among links reported with probability <= alpha, the share that is false.

--require-all makes the exit status 1 unless every labelled attack link is found at
<= alpha and no false link is (what CI asserts). Python 3 standard library only.
"""
import argparse
import json
import sys


def key(c):
    return (c["orig_h"], int(c["orig_p"]), c["resp_h"], int(c["resp_p"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("labels")
    ap.add_argument("candidates")
    ap.add_argument("--alpha", type=float, default=0.01)
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    ap.add_argument("--require-all", action="store_true")
    a = ap.parse_args()

    lab = json.load(open(a.labels))
    conns = {c["id"]: c for c in lab["connections"]}
    truth = {}
    for l in lab["links"]:
        pair = (key(conns[l["in"]]), key(conns[l["out"]]))
        truth[pair] = "true-attack" if l["kind"] == "attack" else "true-legit"

    rows = [json.loads(x) for x in open(a.candidates) if x.strip()]
    seen = {}
    counts = {}
    for r in rows:
        pair = (key(r["inbound"]), key(r["outbound"]))
        cls = truth.get(pair, "false")
        p = r["false_match_probability"]
        seen[pair] = min(p, seen.get(pair, 1.0))
        c = counts.setdefault(cls, {"candidates": 0, "within_alpha": 0})
        c["candidates"] += 1
        if p <= a.alpha:
            c["within_alpha"] += 1
    missing = [
        {"in": list(k[0]), "out": list(k[1]), "class": v}
        for k, v in sorted(truth.items())
        if k not in seen
    ]
    reported = sum(c["within_alpha"] for c in counts.values())
    false_reported = counts.get("false", {}).get("within_alpha", 0)
    attack_total = sum(1 for v in truth.values() if v == "true-attack")
    attack_found = sum(
        1 for k, v in truth.items() if v == "true-attack" and seen.get(k, 1.0) <= a.alpha
    )
    summary = {
        "alpha": a.alpha,
        "classes": counts,
        "attack_links": attack_total,
        "attack_links_found": attack_found,
        "missing_candidates": missing,
        "reported": reported,
        "false_reported": false_reported,
        "false_share_of_reported": (false_reported / reported) if reported else 0.0,
    }
    if a.json:
        print(json.dumps(summary, indent=1, sort_keys=True))
    else:
        print(f"evaluate: alpha {a.alpha}")
        for cls in ("true-attack", "true-legit", "false"):
            c = counts.get(cls, {"candidates": 0, "within_alpha": 0})
            print(f"  {cls:12s} candidates {c['candidates']:4d}   within alpha {c['within_alpha']:4d}")
        print(f"  attack links found {attack_found}/{attack_total}")
        for m in missing:
            print(f"  no candidate for {m['class']} {m['in']} -> {m['out']}")
        print(
            f"  reported {reported}, of which false {false_reported}"
            f" (share {summary['false_share_of_reported']:.3f}, must be <= alpha on average)"
        )
    if a.require_all and (attack_found < attack_total or false_reported > 0):
        print("evaluate: FAILED (an attack link missing or a false link reported)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
