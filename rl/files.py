"""Writing files so that a reader never sees half of one: the one atomic-write helper.

`atomic_write` writes to a temp file in the target's directory, fsyncs it, then renames it over
the target; on any failure the temp file is removed and the target is left as it was. It writes
only onto regular files or new paths: a device, a FIFO, a directory (or, unless asked to follow
it, a symlink) at the target raises `NotARegularFile` before anything is written, so a report path
pointing at /dev/full or a named pipe never replaces it.

Temp files carry the writer's PID (`.<name>.<pid>.<random>.tmp`), so `remove_stale_temp_files`
can clear those a killed process left behind without touching a live writer's.
"""

import os
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".tmp"
STALE_AFTER_S = 3600.0  # a temp file this old is stale even if its PID is alive again (containers reuse PIDs)


class NotARegularFile(OSError):
    """The target exists and is not a regular file (device, FIFO, directory, socket, symlink)."""


def check_writable_target(path: str | os.PathLike, follow_symlinks: bool = False) -> Path:
    """The path a write would replace (the link's target when following symlinks); raises
    NotARegularFile when something other than a regular file is there."""
    path = Path(path)
    if follow_symlinks:
        path = Path(os.path.realpath(path))
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return path
    if stat.S_ISLNK(mode):
        raise NotARegularFile(f"{path} is a symbolic link; refusing to replace it")
    if not stat.S_ISREG(mode):
        raise NotARegularFile(f"{path} is {_kind(mode)}, not a regular file; refusing to replace it")
    return path


@contextmanager
def atomic_file(path: str | os.PathLike, mode: int | None = None, follow_symlinks: bool = False) -> Iterator[BinaryIO]:
    """A binary file object whose content replaces `path` when the block ends without an error:
    temp file in the same directory, fsync, rename. An exception in the block (or a failed write)
    removes the temp file and leaves `path` as it was.

    `mode` sets the permission bits of a new file (default: the umask's); an existing file keeps
    its own. Raises OSError (NotARegularFile for a target that is not a regular file).
    """
    target = check_writable_target(path, follow_symlinks)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=TEMP_SUFFIX, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)


def atomic_write(path: str | os.PathLike, data: bytes, mode: int | None = None, follow_symlinks: bool = False) -> Path:
    """Replace `path` with `data` through `atomic_file`; returns the path written."""
    with atomic_file(path, mode, follow_symlinks) as f:
        f.write(data)
    return check_writable_target(path, follow_symlinks)


def remove_stale_temp_files(directory: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Delete temp files that killed writers left in `directory`; returns what was removed."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    pattern = "**/.*" + TEMP_SUFFIX if recursive else ".*" + TEMP_SUFFIX
    removed = []
    now = time.time()
    for candidate in directory.glob(pattern):
        try:
            info = candidate.lstat()
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode):
            continue
        pid = _writer_pid(candidate.name)
        if pid is None:
            continue
        if pid != os.getpid() and _alive(pid) and now - info.st_mtime < STALE_AFTER_S:
            continue
        try:
            candidate.unlink()
            removed.append(candidate)
        except OSError:
            pass
    return removed


def _writer_pid(name: str) -> int | None:
    parts = name.removesuffix(TEMP_SUFFIX).split(".")
    # ".<name>.<pid>.<random>": the PID is the part before the random one
    if len(parts) < 4 or not parts[-2].isdigit():
        return None
    return int(parts[-2])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; not every filesystem lets a directory be opened for it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    for check, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if check(mode):
            return name
    return "a special file"
