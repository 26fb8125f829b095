#!/usr/bin/env python3
"""Compares exflow's JSON reports of two builds over a directory of captures.

    scripts/compare-reports.py [--sharding] OLD_EXFLOW NEW_EXFLOW [DIR] [-- extra analyze args]

Runs `analyze --format json --flows` with both binaries on every capture under DIR (default:
tests/data/corpus) and checks that every value the old report has is in the new one, unchanged:
the new report may only add fields (the schema's rule: additions only). Prints one line per file
and the added keys, and exits 1 on any difference. Used for refactors that must not change what
exflow reports (and with `--threads` for sharding).

--sharding compares one thread with `--threads N` (give N after `--`): OLD runs with
`--threads 1`, and what README ("Threads") documents as differing is left out of both reports:
`flow_table.peak` and `signalling.reassembly.peak_bytes` (sums of the workers' peaks) and the
order of the `problems` lists (the order flows ended in each worker).
"""
import json
import os
import subprocess
import sys


def captures(root):
    for d, _, files in os.walk(root):
        for f in sorted(files):
            if f.endswith((".md", ".tsv", ".sh", ".txt")):
                continue
            yield os.path.join(d, f)


def report(exe, path, extra, sharding=False):
    out = subprocess.run([exe, "analyze", "--format", "json", "--flows", *extra, path],
                         capture_output=True)
    if not out.stdout:
        return None
    r = json.loads(out.stdout)
    if sharding:
        r.get("flow_table", {}).pop("peak", None)
        r.get("signalling", {}).get("reassembly", {}).pop("peak_bytes", None)
        lists = [r.get("problems")] + [d.get("problems") for d in r.get("diagnostics", {}).values()
                                       if isinstance(d, dict)]
        for p in lists:
            if isinstance(p, list):
                p.sort(key=lambda x: json.dumps(x, sort_keys=True))
    # Flows still open at the end were listed in hash order before they were sorted: compare
    # flow lists as sets, in one order.
    key = lambda f: (f["first_ts"], f["proto"], f["client"], f["server"], f["last_ts"])
    for k in ("flows", "failures"):
        if isinstance(r.get(k), list):
            r[k].sort(key=key)
    return r


def diff(old, new, where, added, problems):
    if isinstance(old, dict):
        if not isinstance(new, dict):
            problems.append(f"{where}: was an object")
            return
        for k, v in old.items():
            if k not in new:
                problems.append(f"{where}.{k}: missing")
            else:
                diff(v, new[k], f"{where}.{k}", added, problems)
        for k in new.keys() - old.keys():
            added.add(f"{strip(where)}.{k}")
    elif isinstance(old, list):
        if not isinstance(new, list) or len(old) != len(new):
            problems.append(f"{where}: list length {len(old)} -> "
                            f"{len(new) if isinstance(new, list) else type(new).__name__}")
            return
        for i, (a, b) in enumerate(zip(old, new)):
            diff(a, b, f"{where}[{i}]", added, problems)
    elif old != new and not (where.endswith("generator")):
        problems.append(f"{where}: {old!r} -> {new!r}")


def strip(where):
    import re
    return re.sub(r"\[\d+\]", "[]", where)


def main():
    args = sys.argv[1:]
    sharding = "--sharding" in args[:args.index("--")] if "--" in args else "--sharding" in args
    if sharding:
        args.remove("--sharding")
    extra = []
    if "--" in args:
        i = args.index("--")
        args, extra = args[:i], args[i + 1:]
    old_exe, new_exe = args[0], args[1]
    root = args[2] if len(args) > 2 else "tests/data/corpus"
    failed = 0
    added = set()
    n = 0
    for path in captures(root):
        n += 1
        old_args = ["--threads", "1"] if sharding else []
        old, new = (report(old_exe, path, old_args, sharding),
                    report(new_exe, path, extra, sharding))
        problems = []
        if (old is None) != (new is None):
            problems.append("one build gave no report")
        elif old is not None:
            diff(old, new, "", added, problems)
        if problems:
            failed += 1
            print(f"DIFF {path}")
            for p in problems[:10]:
                print(f"     {p}")
            if len(problems) > 10:
                print(f"     ... {len(problems) - 10} more")
    for a in sorted(added):
        print(f"added {a}")
    print(f"{n - failed} same, {failed} different (of {n} captures)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
