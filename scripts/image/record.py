"""Rewrites the venv's dist-info RECORD files to list the files the image ships: `record.py SITE_PACKAGES`.

pip writes each distribution's RECORD (every installed file with its sha256 and size) when it installs
it; the Dockerfiles then change the venv: slim.sh and the test-suite cuts delete files, strip rewrites
shared objects, and compileall adds the bytecode a run reads. Afterwards a RECORD names files that are
gone and hashes that no longer match. This keeps each entry whose file remains, with its hash and size
as shipped, adds the .pyc compiled from the distribution's sources, and writes the rows sorted, as pip
does (the RECORD itself without a hash). Run last in the builder stages, so that what
`importlib.metadata` and SBOM scanners read is what the image holds, and two builds write the same
bytes.
"""

import base64
import csv
import hashlib
import importlib.util
import io
import os
import sys
from pathlib import Path


def file_hash(path: Path) -> str:
    """A RECORD hash: sha256, urlsafe base64 without padding."""
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def rewrite(site: Path, record: Path) -> tuple[int, int]:
    """Rewrites one RECORD in place; returns (entries dropped, .pyc added)."""
    own_name = record.relative_to(site).as_posix()
    names = [row[0] for row in csv.reader(io.StringIO(record.read_text(encoding="utf-8"))) if row]
    rows = {own_name: (own_name, "", "")}
    dropped = 0
    for name in names:
        if name == own_name:
            continue
        path = Path(os.path.normpath(site / name))
        if name.endswith(".pyc") or not path.is_file():
            dropped += not name.endswith(".pyc")  # pip's .pyc entries are re-added below if present
            continue
        rows[name] = (name, file_hash(path), str(path.stat().st_size))
    added = 0
    for name in [n for n in rows if n.endswith(".py")]:
        pyc = Path(importlib.util.cache_from_source(os.path.normpath(site / name)))
        if pyc.is_file():
            pyc_name = os.path.relpath(pyc, site).replace(os.sep, "/")
            rows[pyc_name] = (pyc_name, file_hash(pyc), str(pyc.stat().st_size))
            added += 1
    out = io.StringIO()
    csv.writer(out).writerows(sorted(rows.values()))
    staging = record.with_name("RECORD.tmp")
    staging.write_text(out.getvalue(), encoding="utf-8", newline="")
    staging.replace(record)
    return dropped, added


def main() -> None:
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        sys.exit("usage: record.py SITE_PACKAGES")
    site = Path(sys.argv[1])
    records = sorted(site.glob("*.dist-info/RECORD"))
    dropped = added = 0
    for record in records:
        d, a = rewrite(site, record)
        dropped, added = dropped + d, added + a
    print(
        f"record.py: {len(records)} RECORD files rewritten; {dropped} entries of removed files dropped, {added} .pyc added"
    )


if __name__ == "__main__":
    main()
