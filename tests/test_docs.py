"""The project's files stand alone: none points at a path of the machine it was developed on."""

import re
import subprocess

from conftest import ROOT

# Paths that exist only where this project was developed (notes, tool documentation, checkouts).
MACHINE_PATHS = re.compile(r"/work/(?:shared|\.library|helpers|main|wt\d+)\b")


def test_no_tracked_file_points_at_the_development_machine():
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    found = []
    for name in filter(None, files.decode().split("\0")):
        path = ROOT / name
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # binary files, submodules
        found += [f"{name}:{n}" for n, line in enumerate(text.splitlines(), 1) if MACHINE_PATHS.search(line)]
    assert found == [], "files that point outside the repository: " + ", ".join(found)
