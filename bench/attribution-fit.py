#!/usr/bin/env python3
"""bench/attribution-fit.py: fits the constants of assess's ATT&CK scoring
(crates/assess/src/attack.rs: ALPHA, SOFTWARE_WEIGHT, RHO, TAU, REPORTING_PRIOR) on a split that
holds no ATT&CK campaign, so that bench/attribution stays a test set.

Split: the groups' own `uses` relationships, leave-one-report-out. Every
(group, cited report) pair whose report no campaign cites and which backs at least
5 of the group's items is a query (those items); the report is removed from every
profile (relationships cited only by it are dropped, as the bench's leakage control
does for a campaign's sources). Criterion: mean log posterior of the right group
among all groups, over techniques-only and techniques-with-software queries.
Python 3 standard library only; mirrors attack.rs's formulas.

  python3 bench/attribution-fit.py "$(bash .ci/fetch-attack.sh)"

ATT&CK data (c) The MITRE Corporation, ATT&CK Terms of Use:
https://attack.mitre.org/resources/terms-of-use/
"""
import collections
import json
import math
import re
import sys

d = sys.argv[1]


def load(f, k):
    return json.load(open(f"{d}/{f}"))[k]


def live(x):
    return not x.get("revoked") and not x.get("deprecated")


def cites(s):
    return frozenset(m.strip() for m in re.findall(r"\(Citation: ([^)]*)\)", s or ""))


actors = load("groups-campaigns-lookup-v18.1.json", "groups_campaigns")
groups = sorted((a for a in actors if live(a) and a["stix_type"] == "intrusion-set"),
                key=lambda a: a["external_id"])
gi = {g["stix_id"]: i for i, g in enumerate(groups)}
uses, campaign_cites = [], set()
for r in load("relationships-lookup-v18.1.json", "relationships"):
    if not live(r):
        continue
    s, t, c = r["source_ref"], r["target_ref"], cites(r.get("description"))
    if s.startswith("campaign--"):
        campaign_cites |= c
    if (r["relationship_type"] == "uses" and s in gi
            and t.split("--")[0] in ("attack-pattern", "malware", "tool")):
        uses.append((gi[s], t, c))
n_patterns = sum(live(x) for x in load("attack-patterns-lookup-v18.1.json", "attack_patterns"))
n_software = sum(live(x) for x in load("software-lookup-v18.1.json", "software"))


def wanted(t, soft):
    return t.startswith("attack-pattern--") or soft


def profiles(soft, leaked):
    prof = [set() for _ in groups]
    src = [set() for _ in groups]
    for g, t, c in uses:
        if wanted(t, soft) and not (c and c <= leaked):
            prof[g].add(t)
            src[g] |= c - leaked
    users = collections.Counter(t for p in prof for t in p)
    return prof, users, [len(x) for x in src]


def queries(soft):
    by = collections.defaultdict(set)
    for g, t, c in uses:
        if wanted(t, soft):
            for r in c:
                if r not in campaign_cites:
                    by[(g, r)].add(t)
    return [(g, r, q) for (g, r), q in sorted(by.items()) if len(q) >= 5]


def scores(alpha, prof, users, vocabulary, q):
    """Per group: the summed log ratios of the query's techniques and of its
    software, apart (software is weighted by OMEGA)."""
    denom = sum(users.values()) + vocabulary
    out = []
    for p in prof:
        s = [0.0, 0.0]
        for t in q:
            b = (users.get(t, 0) + 1) / denom
            x = math.log(((t in p) + alpha * b) / ((len(p) + alpha) * b))
            s[not t.startswith("attack-pattern--")] += x
        out.append(s)
    return out


ALPHAS = (3000, 10000, 30000)
rows = {a: [] for a in ALPHAS}
# The plain-overlap baseline's top-3 on the same split, per item kind.
overlap_top3 = {False: [0, 0], True: [0, 0]}
# Where each query's true group stands by profile size (1 = largest), per item kind:
# bench/attribution prints the same for the campaigns.
size_ranks = {False: [], True: []}
for soft in (False, True):
    vocabulary = n_patterns + (n_software if soft else 0)
    for g, r, q in queries(soft):
        prof, users, src = profiles(soft, {r})
        for a in ALPHAS:
            rows[a].append((g, scores(a, prof, users, vocabulary, q), src))
        ov = [len(q & p) for p in prof]
        overlap_top3[soft][0] += g in sorted(range(len(ov)), key=lambda i: (-ov[i], i))[:3]
        overlap_top3[soft][1] += 1
        size_ranks[soft].append(1 + sum(len(p) > len(prof[g]) for p in prof))

best = None
for a, res in rows.items():
    for omega in (1.0, 2.0, 3.0, 4.0):
        for gamma in (0.0, 0.5, 1.0):
            for rho in (0.1, 0.2, 0.3, 0.5, 1.0):
                for tau in (4, 6, 8, 12, 16, 24):
                    ll = top3 = 0
                    for g, s, src in res:
                        lr = []
                        for (st, ss), n in zip(s, src):
                            x = tau * (st + omega * ss)
                            lr.append(gamma * math.log(n + 1)
                                      + (x if rho == 1.0
                                         else math.log(rho * math.exp(min(x, 600)) + 1 - rho)))
                        m = max(lr)
                        ll += lr[g] - m - math.log(sum(math.exp(x - m) for x in lr))
                        top3 += g in sorted(range(len(lr)), key=lambda i: (-lr[i], i))[:3]
                    row = (ll / len(res), a, omega, gamma, rho, tau, top3 / len(res))
                    if best is None or row[0] > best[0]:
                        best = row
    print(f"alpha up to {a}: best mean log posterior {best[0]:.4f} (alpha {best[1]}, "
          f"omega {best[2]}, gamma {best[3]}, rho {best[4]}, tau {best[5]}; "
          f"top-3 {100 * best[6]:.1f} %)", flush=True)
print(f"queries: {len(rows[ALPHAS[0]])}; chosen: ALPHA = {best[1]}, SOFTWARE_WEIGHT = {best[2]}, "
      f"REPORTING_PRIOR = {best[3]}, RHO = {best[4]}, TAU = {best[5]}")

# Top-3 on the split at the chosen constants, per item kind, next to plain overlap: the
# split is where the model is chosen, so this is its in-sample figure, not a test.
_, a, omega, gamma, rho, tau, _ = best
n_tech = overlap_top3[False][1]
for soft, part in ((False, rows[a][:n_tech]), (True, rows[a][n_tech:])):
    top3 = 0
    for g, s, src in part:
        lr = []
        for (st, ss), n in zip(s, src):
            x = tau * (st + omega * ss)
            lr.append(gamma * math.log(n + 1)
                      + (x if rho == 1.0 else math.log(rho * math.exp(min(x, 600)) + 1 - rho)))
        top3 += g in sorted(range(len(lr)), key=lambda i: (-lr[i], i))[:3]
    hit, n = overlap_top3[soft]
    print(f"split top-3, {'techniques and software' if soft else 'techniques only'} "
          f"({n} queries): model {100 * top3 / n:.1f} %, plain overlap {100 * hit / n:.1f} % "
          f"(ratio {top3 / max(hit, 1):.2f})")
    ranks = sorted(size_ranks[soft])
    print(f"  true groups: median profile-size rank {ranks[len(ranks) // 2]} of {len(groups)}, "
          f"{sum(r <= 20 for r in ranks)} of {len(ranks)} among the 20 largest profiles")

# Calibration on the split at the chosen constants: the leading group's posterior
# (among groups only; the split has no unattributed queries), per ICD 203 band.
BANDS = [("almost no chance", 0.01, 0.05), ("very unlikely", 0.05, 0.20),
         ("unlikely", 0.20, 0.45), ("roughly even chance", 0.45, 0.55),
         ("likely", 0.55, 0.80), ("very likely", 0.80, 0.95),
         ("almost certain", 0.95, 0.99)]
_, a, omega, gamma, rho, tau, _ = best
tally = [[0, 0.0, 0] for _ in BANDS]
for g, s, src in rows[a]:
    lr = []
    for (st, ss), n in zip(s, src):
        x = tau * (st + omega * ss)
        lr.append(gamma * math.log(n + 1)
                  + (x if rho == 1.0 else math.log(rho * math.exp(min(x, 600)) + 1 - rho)))
    m = max(lr)
    z = sum(math.exp(x - m) for x in lr)
    lead = max(range(len(lr)), key=lambda i: (lr[i], -i))
    p = min(max(math.exp(lr[lead] - m) / z, 0.01), 0.99)
    k = next(i for i, (_, lo, hi) in enumerate(BANDS) if p <= hi or i == len(BANDS) - 1)
    tally[k][0] += 1
    tally[k][1] += p
    tally[k][2] += lead == g
print("calibration on the split (leading group, among groups):")
for (w, lo, hi), (n, sp, right) in zip(BANDS, tally):
    if n:
        share = right / n
        print(f"  {w:<20} {100 * lo:3.0f}-{100 * hi:<3.0f}%  n={n:<4} mean stated "
              f"{100 * sp / n:5.1f} %  right {100 * share:5.1f} %  "
              f"{'inside' if lo - 1e-9 <= share <= hi + 1e-9 else 'OUTSIDE'} the band")
