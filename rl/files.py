"""Writing files so that a reader never sees half of one: the one atomic-write helper.

`atomic_write` writes to a temp file in the target's directory, fsyncs it, then renames it over
the target; on any failure the temp file is removed and the target is left as it was. It writes
only onto regular files or new paths: a device, a FIFO, a directory (or, unless asked to follow
it, a symlink) at the target raises `NotARegularFile` before anything is written, so a report path
pointing at /dev/full or a named pipe never replaces it.

Temp files are named `.<name>.cluster-rl.<random>.tmp`, and their writer holds an exclusive
`flock` on them from creation until the rename. `remove_stale_temp_files` removes only files of
that name whose lock it can take: their writer is gone, whatever its PID namespace or host (a PID in
the name proved nothing: two containers sharing a home are both PID 1). Anything else, another
tool's file or a live writer's, is left alone.
"""

import errno
import fcntl
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".tmp"
TEMP_TAG = "cluster-rl"
_OUR_TEMP_NAME = re.compile(r"^\..+\." + TEMP_TAG + r"\.[A-Za-z0-9_]+" + re.escape(TEMP_SUFFIX) + "$")
# A temp file younger than this is never removed: its writer may be between creating and locking it.
LOCK_GRACE_S = 60.0


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
        raise NotARegularFile(f"{path} is {file_kind(mode)}, not a regular file; refusing to replace it")
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
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{TEMP_TAG}.", suffix=TEMP_SUFFIX, dir=target.parent)
    f = os.fdopen(fd, "wb")
    try:
        _try_lock(fd)  # held until the file is renamed: the mark of a live writer
        yield f
        f.flush()
        os.fsync(fd)
        if mode is not None:
            os.fchmod(fd, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        try:
            f.close()
        except OSError:
            pass  # the error that got us here is the one to report
        raise
    f.close()
    _fsync_directory(target.parent)


def atomic_write(path: str | os.PathLike, data: bytes, mode: int | None = None, follow_symlinks: bool = False) -> Path:
    """Replace `path` with `data` through `atomic_file`; returns the path written."""
    with atomic_file(path, mode, follow_symlinks) as f:
        f.write(data)
    return check_writable_target(path, follow_symlinks)


def remove_stale_temp_files(directory: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Delete the temp files of `atomic_file` writers that are gone (killed mid-write) in
    `directory`; returns what was removed. A file counts as ours by its name, and its writer as
    gone only when its lock can be taken (and it is older than LOCK_GRACE_S)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    pattern = "**/.*" + TEMP_SUFFIX if recursive else ".*" + TEMP_SUFFIX
    removed = []
    now = time.time()
    for candidate in directory.glob(pattern):
        if not _OUR_TEMP_NAME.fullmatch(candidate.name):
            continue
        try:
            fd = os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or now - info.st_mtime < LOCK_GRACE_S:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a live writer holds it, or locks do not work here: nothing is proven
            if os.stat(candidate, follow_symlinks=False).st_ino != info.st_ino:
                continue  # renamed over or replaced since it was opened
            candidate.unlink()
            removed.append(candidate)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def _try_lock(fd: int) -> None:
    """An exclusive lock on a temp file just created (so nobody else can hold it). Where the
    filesystem has no locks, the file is written unlocked and never counts as a dead writer's."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise


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


def file_kind(mode: int) -> str:
    """What a non-regular file is, for messages: "a directory", "a named pipe (FIFO)", ..."""
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
