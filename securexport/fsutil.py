"""Careful file writing: 0600 files in 0700 directories, ``.partial`` then fsync then rename."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from securexport.errors import FileError

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700 if missing; refuse a symlink."""
    try:
        path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        if path.is_symlink():
            raise FileError(f"{path} is a symbolic link; refusing to use it")
        os.chmod(path, PRIVATE_DIR)
    except OSError as exc:
        raise FileError(f"cannot create directory {path}: {exc.strerror}") from exc
    return path


def check_not_world_readable(path: Path) -> None:
    """Refuse a secret file that group or others can read or write (as age and OpenSSH do)."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise FileError(
            f"{path} is accessible by other users (mode {stat.S_IMODE(mode):o})",
            hint=f"chmod 600 {path}",
        )


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def os_error_message(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return "no space left on the device (or the file size limit was reached)"
    return exc.strerror or str(exc)


def atomic_write(
    path: Path, data: bytes, *, mode: int = PRIVATE_FILE, overwrite: bool = True
) -> None:
    """Write ``data`` to ``path`` via ``path.partial``, fsync, then rename into place."""
    partial = path.with_name(path.name + ".partial")
    try:
        if not overwrite and path.exists():
            raise FileError(f"{path} exists already")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(partial, mode)
        os.replace(partial, path)
        fsync_dir(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise FileError(f"cannot write {path}: {os_error_message(exc)}") from exc


@contextlib.contextmanager
def partial_output(path: Path) -> Iterator[Path]:
    """Yield ``path.partial`` (created 0600, exclusively); rename to ``path`` on success.

    On any failure or interrupt the partial file is removed, so nothing that looks valid is
    left behind.  The destination must not exist: a bundle is never overwritten.
    """
    partial = path.with_name(path.name + ".partial")
    if path.exists() or path.is_symlink():
        raise FileError(f"{path} exists already", hint="choose a new output name")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE)
    except FileExistsError as exc:
        raise FileError(
            f"{partial} exists: another run is writing it, or an earlier run was killed",
            hint=f"if no export is running, remove {partial}",
        ) from exc
    except OSError as exc:
        raise FileError(f"cannot create {partial}: {os_error_message(exc)}") from exc
    os.close(fd)
    try:
        yield partial
        with open(partial, "rb+") as fh:
            os.fsync(fh.fileno())
        if path.exists():
            raise FileError(f"{path} appeared while writing; leaving it alone")
        os.rename(partial, path)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
