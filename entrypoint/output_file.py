"""Files a command writes on request (`diagnose --report`, `evaluate --plot`): local or s3://.

Local files go through the atomic-write helper, and only onto regular files or new paths: a
device, a FIFO, a directory or a symlink at the path is refused with exit 2 before anything is
written (as root, replacing /dev/full with a report would break the machine).
"""

from pathlib import Path

from entrypoint.errors import CliError, ExitCode


def check_output_path(target: str, flag: str) -> None:
    """Refuse a bad destination up front, before the work that produces the file."""
    from entrypoint import storage
    from rl.files import NotARegularFile, check_writable_target

    try:
        storage.check_location(target, flag)
    except storage.StorageError as err:
        raise CliError(str(err), ExitCode.USAGE) from None
    if storage.is_s3_uri(target):
        return
    try:
        check_writable_target(Path(target).expanduser())
    except NotARegularFile as err:
        raise CliError(f"{flag}: {err}", ExitCode.USAGE) from None


def write_output(target: str, data: bytes, flag: str, content_type: str = "application/json") -> str:
    """Write `data` to a local path or an s3:// URI; returns where it went."""
    from entrypoint import storage
    from rl.files import NotARegularFile, atomic_write

    check_output_path(target, flag)
    if storage.is_s3_uri(target):
        try:
            return storage.upload_report(data, target, content_type)
        except storage.StorageError as err:
            raise CliError(str(err), ExitCode.STORAGE) from None
    path = Path(target).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(atomic_write(path, data))
    except NotARegularFile as err:
        raise CliError(f"{flag}: {err}", ExitCode.USAGE) from None
    except OSError as err:
        raise CliError(f"{flag}: cannot write {path}: {err.strerror or err}", ExitCode.STORAGE) from None
