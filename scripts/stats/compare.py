#!/usr/bin/env python3
"""Numerically compare two fixture directories: same files, same structure, numbers equal to
relative 1e-12 (absolute 1e-300 near zero), everything else equal. Exit 1 on any difference."""

import json
import math
import os
import sys


def walk(a, b, path, errors):
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None or isinstance(a, str):
        if a != b:
            errors.append(f"{path}: {a!r} != {b!r}")
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if not math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-300):
            errors.append(f"{path}: {a!r} != {b!r}")
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            errors.append(f"{path}: length {len(a)} != {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            walk(x, y, f"{path}[{i}]", errors)
    elif isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            errors.append(f"{path}: keys {sorted(set(a) ^ set(b))} differ")
        for k in a.keys() & b.keys():
            walk(a[k], b[k], f"{path}.{k}", errors)
    else:
        errors.append(f"{path}: {type(a).__name__} != {type(b).__name__}")


def main():
    committed, fresh = sys.argv[1], sys.argv[2]
    names_c = sorted(n for n in os.listdir(committed) if n.endswith(".json"))
    names_f = sorted(n for n in os.listdir(fresh) if n.endswith(".json"))
    errors = []
    if names_c != names_f:
        errors.append(f"fixture files differ: committed {names_c}, regenerated {names_f}")
    for name in set(names_c) & set(names_f):
        with open(os.path.join(committed, name)) as fa, open(os.path.join(fresh, name)) as fb:
            walk(json.load(fa), json.load(fb), name, errors)
    if errors:
        print(f"{len(errors)} difference(s) between committed and regenerated fixtures:")
        for e in errors[:50]:
            print("  " + e)
        print("regenerate with scripts/stats/check.sh --update if the change is intended")
        sys.exit(1)
    print(f"fixtures match: {len(names_c)} files")


if __name__ == "__main__":
    main()
