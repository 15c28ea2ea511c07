#!/usr/bin/env python3
"""report.py -- combine bench_cpu's and peers.py's JSON lines into one table
with ratios, and check the targets.

    python3 bench/report.py [--markdown] FILE.jsonl [FILE.jsonl ...]

Files may come from several runs of bench_cpu and peers.py (records are told
apart by their "record" field): on a shared machine each rate is the best
over the runs, and the limits (so the rooflines) are the best measured.

Ratios: gmle fit vs its roofline, vs numpy X^T X (same D, all rows, no
classes), vs QDA.fit (full) or GaussianNB.fit (diag); gmle score (LOGPOST)
vs QDA.predict_log_proba (full) or GaussianNB.predict_log_proba (diag).
Exit status 0 whatever the targets; 1 if an input is missing or unreadable.
Standard library only.
"""
import json
import sys

# The targets (CPU, D=40, C=10, full covariance).
TARGET_SHAPE = (40, 10, "full")
TARGETS = [
    ("fit >= 50% of roofline", "fit_frac", 0.5),
    ("fit >= 3x numpy X^T X", "fit_vs_xtx", 3.0),
    ("fit >= 50x QDA.fit", "fit_vs_peer", 50.0),
    ("score logpost >= 20x QDA.predict_log_proba", "score_vs_peer", 20.0),
]


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def fmt(v, digits=3):
    if v is None:
        return "n/a"
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.{digits}g}"


def fmt_pct(v):
    if v is None:
        return "n/a"
    return f"{100 * v:.0f}%" if v >= 0.095 else f"{100 * v:.2g}%"


def fmt_ratio(v):
    return "n/a" if v is None else (f"{v:.0f}x" if v >= 100 else
                                    f"{v:.3g}x")


def best(a, b, key):
    """The record with the larger a[key] (None counts as missing)."""
    if a is None or a.get(key) is None:
        return b
    if b is None or b.get(key) is None:
        return a
    return a if a[key] >= b[key] else b


def merge(records):
    """Best limits, best rate per shape and per peer over all runs."""
    limits = {}
    for r in records:
        if r.get("record") != "limits":
            continue
        if not limits:
            limits = dict(r)
            continue
        for k in ("bandwidth_gbs", "f32_gflops", "f64_gflops"):
            limits[k] = max(limits.get(k) or 0, r.get(k) or 0)
        limits["quick"] = limits.get("quick") or r.get("quick")
    by_shape = {}
    for r in records:
        if r.get("record") != "shape":
            continue
        k = (r["D"], r["C"], r["cov"])
        if k not in by_shape:
            by_shape[k] = dict(r)
            continue
        m = by_shape[k]
        for rate in ("fit_mrows_s", "score_mrows_s"):
            if (r.get(rate) or 0) > (m.get(rate) or 0):
                m[rate] = r[rate]
        for bound in ("fit_roofline_bw_mrows_s",
                      "fit_roofline_flops_mrows_s",
                      "score_roofline_bw_mrows_s",
                      "score_roofline_flops_mrows_s"):
            m[bound] = max(m.get(bound) or 0, r.get(bound) or 0)
        for chk in ("accuracy", "score_check"):  # any FAIL wins
            if r.get(chk) == "FAIL" or m.get(chk) in (None, "SKIP"):
                m[chk] = r.get(chk)
        m["runs"] = m.get("runs", 1) + 1
    for m in by_shape.values():
        for kind in ("fit", "score"):
            b = m.get(f"{kind}_roofline_bw_mrows_s")
            f = m.get(f"{kind}_roofline_flops_mrows_s")
            if b and f:
                m[f"{kind}_roofline_mrows_s"] = min(b, f)
    peer = {}
    for r in records:
        if r.get("record") == "peer":
            key = (r["peer"], r["D"]) if r["peer"] == "numpy_xtx" else \
                (r["peer"], r["D"], r["C"], r["cov"])
            peer[key] = best(peer.get(key), r, "mrows_s")
    shapes = sorted(by_shape.values(),
                    key=lambda r: (r["D"], r["C"], r["cov"] != "full"))
    return limits, shapes, peer


def main(argv):
    markdown = "--markdown" in argv
    files = [a for a in argv[1:] if a != "--markdown"]
    if not files:
        print(__doc__, file=sys.stderr)
        return 1
    records = []
    try:
        for f in files:
            records += load(f)
    except (OSError, ValueError) as e:
        print(f"report.py: {e}", file=sys.stderr)
        return 1
    limits, shapes, peer = merge(records)
    n_runs = sum(1 for r in records if r.get("record") == "limits")

    rows = []
    for s in shapes:
        d, c, cov = s["D"], s["C"], s["cov"]
        pf, ps = ("qda_fit", "qda_logproba") if cov == "full" else \
            ("gnb_fit", "gnb_logproba")
        xtx = peer.get(("numpy_xtx", d), {}).get("mrows_s")
        pfit = peer.get((pf, d, c, cov), {}).get("mrows_s")
        pscore = peer.get((ps, d, c, cov), {}).get("mrows_s")
        fit, score = s.get("fit_mrows_s"), s.get("score_mrows_s")

        def ratio(a, b):
            return a / b if a is not None and b else None

        rows.append({
            "shape": (d, c, cov), "fit": fit,
            "fit_roof": s.get("fit_roofline_mrows_s"),
            "fit_bound": "bw" if s.get("fit_roofline_bw_mrows_s", 0) <=
            s.get("fit_roofline_flops_mrows_s", 0) else "flops",
            "fit_frac": ratio(fit, s.get("fit_roofline_mrows_s")),
            "xtx": xtx, "fit_vs_xtx": ratio(fit, xtx),
            "peer_fit": pfit, "fit_vs_peer": ratio(fit, pfit),
            "score": score, "score_roof": s.get("score_roofline_mrows_s"),
            "score_frac": ratio(score, s.get("score_roofline_mrows_s")),
            "peer_score": pscore, "score_vs_peer": ratio(score, pscore),
            "peer_name": "QDA" if cov == "full" else "GNB",
            "acc": s.get("accuracy", "?") + "/" + s.get("score_check", "?"),
        })

    head = ["D", "C", "cov", "fit", "roof", "%roof", "np XtX", "fit/XtX",
            "peer", "peer fit", "fit/peer", "score", "%roof", "peer score",
            "score/peer", "acc/score"]
    table = []
    for r in rows:
        d, c, cov = r["shape"]
        table.append([
            str(d), str(c), cov, fmt(r["fit"]),
            fmt(r["fit_roof"]) + ("" if r["fit_bound"] == "flops" else "*"),
            fmt_pct(r["fit_frac"]),
            fmt(r["xtx"]), fmt_ratio(r["fit_vs_xtx"]), r["peer_name"],
            fmt(r["peer_fit"]), fmt_ratio(r["fit_vs_peer"]), fmt(r["score"]),
            fmt_pct(r["score_frac"]),
            fmt(r["peer_score"]), fmt_ratio(r["score_vs_peer"]), r["acc"]])

    if limits:
        print(f"machine limits ({limits.get('threads')} threads, "
              f"{limits.get('isa')}): stream read "
              f"{limits.get('bandwidth_gbs'):.1f} GB/s, FMA peak f32 "
              f"{limits.get('f32_gflops'):.0f} GFLOP/s, f64 "
              f"{limits.get('f64_gflops'):.0f} GFLOP/s"
              + ("  [QUICK RUN]" if limits.get("quick") else ""))
        st, en = limits.get("start"), limits.get("end")
        if n_runs > 1:
            print(f"(best of {n_runs} runs: rates and limits)")
        elif st and en:
            print(f"(best of a measurement at the start: "
                  f"{st['bandwidth_gbs']:.1f} GB/s, {st['f32_gflops']:.0f} "
                  f"GFLOP/s f32, and at the end: {en['bandwidth_gbs']:.1f} "
                  f"GB/s, {en['f32_gflops']:.0f} GFLOP/s f32)")
        print()
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join("---" for _ in head) + "|")
        for t in table:
            print("| " + " | ".join(t) + " |")
    else:
        w = [max(len(h), *(len(t[i]) for t in table)) if table else len(h)
             for i, h in enumerate(head)]
        print("  ".join(h.rjust(w[i]) for i, h in enumerate(head)))
        for t in table:
            print("  ".join(v.rjust(w[i]) for i, v in enumerate(t)))
    print()
    print("Rates in Mrows/s. roof = min(stream-read bound, f32 FMA-peak bound)"
          " (* = bandwidth-bound). peer = scikit-learn "
          "QuadraticDiscriminantAnalysis (full) or GaussianNB (diag); "
          "score = LOGPOST vs predict_log_proba.")
    print()

    target = next((r for r in rows if r["shape"] == TARGET_SHAPE), None)
    print("Targets (CPU, D=40, C=10, full):")
    met_all = True
    for name, key, want in TARGETS:
        v = target[key] if target else None
        if v is None:
            verdict = "NOT MEASURED"
            met_all = False
        elif v >= want:
            verdict = "MET"
        else:
            verdict = f"MISSED (by {want / v:.2f}x)"
            met_all = False
        shown = "n/a" if v is None else (
            fmt_pct(v) if key == "fit_frac" else f"{v:.3g}x")
        print(f"  {'- ' if markdown else ''}{name}: {shown} -> {verdict}")
    print(f"  {'- ' if markdown else ''}all targets met: "
          f"{'yes' if met_all else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
