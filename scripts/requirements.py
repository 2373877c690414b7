#!/usr/bin/env python3
"""Requirement files for the image builds (standard library only; Python 3.8+ apart from tomllib).

    requirements.py from-pyproject PYPROJECT --variant cpu|cuda [--pin NAME==VERSION ...]
        Prints the runtime dependencies of PYPROJECT, one pin a line, plus the given extra pins (the
        build tools pufferlib-core needs). For the cpu variant the torch pin gets PyTorch's `+cpu`
        local version, so no resolver can swap in PyPI's CUDA build.

    requirements.py select REQUIREMENTS NAME...
        Prints the entries of a requirements file (hash-locked or not: an entry's `--hash`
        continuation lines come along) whose project is one of NAME. The Dockerfiles install these
        first: pufferlib-core is compiled against the torch already installed.

A hash-locked `requirements/<variant>.txt` can replace the generated file as it is: both commands
keep whatever `--hash=` options an entry has.
"""

import re
import sys

NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def from_pyproject(path, variant, extra_pins):
    import tomllib

    with open(path, "rb") as f:
        project = tomllib.load(f)["project"]
    lines = []
    for requirement in list(project.get("dependencies", [])) + list(extra_pins):
        match = NAME_RE.match(requirement)
        if not match or "==" not in requirement:
            raise SystemExit(f"requirements.py: not an exact pin: {requirement!r}")
        if variant == "cpu" and canonical(match.group(1)) == "torch" and "+" not in requirement:
            requirement += "+cpu"
        lines.append(requirement)
    return "\n".join(lines) + "\n"


def entries(text):
    """Yields each requirement entry of a requirements file as its lines (backslash continuations)."""
    entry = []
    for line in text.splitlines():
        entry.append(line)
        if not line.rstrip().endswith("\\"):
            yield entry
            entry = []
    if entry:
        yield entry


def select(path, names):
    wanted = {canonical(n) for n in names}
    found = set()
    out = []
    with open(path) as f:
        text = f.read()
    for entry in entries(text):
        first = entry[0].split("#", 1)[0]
        match = NAME_RE.match(first)
        if first.strip().startswith("-") or not match:
            continue
        name = canonical(match.group(1))
        if name in wanted:
            found.add(name)
            out.extend(entry)
    missing = wanted - found
    if missing:
        raise SystemExit(f"requirements.py: {path} has no entry for {', '.join(sorted(missing))}")
    return "\n".join(out) + "\n"


def main(argv):
    usage = (
        "usage: requirements.py from-pyproject PYPROJECT --variant cpu|cuda [--pin NAME==VERSION ...]\n"
        "       requirements.py select REQUIREMENTS NAME..."
    )
    if len(argv) >= 2 and argv[0] == "from-pyproject":
        path, rest = argv[1], argv[2:]
        variant, pins = None, []
        while rest:
            flag = rest.pop(0)
            if flag in ("--variant", "--pin") and rest:
                value = rest.pop(0)
                if flag == "--variant":
                    variant = value
                else:
                    pins.append(value)
            else:
                raise SystemExit(usage)
        if variant not in ("cpu", "cuda"):
            raise SystemExit(usage)
        sys.stdout.write(from_pyproject(path, variant, pins))
    elif len(argv) >= 3 and argv[0] == "select":
        sys.stdout.write(select(argv[1], argv[2:]))
    else:
        raise SystemExit(usage)


if __name__ == "__main__":
    main(sys.argv[1:])
