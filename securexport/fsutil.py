"""Careful file writing: 0600 files in 0700 directories, ``.partial`` then fsync then rename."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
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
    """fsync a directory after a rename; EINVAL (a filesystem that cannot) is not an error."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise FileError(f"cannot sync {path}: {os_error_message(exc)}") from exc
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise FileError(f"cannot sync {path}: {os_error_message(exc)}") from exc
    finally:
        os.close(fd)


def fsync_file(fd: int, path: Path) -> None:
    """fsync ``fd``; an I/O error (EIO, a full disk on write-back) is a FileError, exit 7."""
    try:
        os.fsync(fd)
    except OSError as exc:
        raise FileError(f"cannot write {path}: {os_error_message(exc)}") from exc


def os_error_message(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return "no space left on the device (or the file size limit was reached)"
    return exc.strerror or str(exc)


def read_limited(path: Path, limit: int, what: str) -> bytes:
    """The bytes of ``path``, refused (FileError) when missing, a directory or over ``limit``."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise FileError(f"{what} {path} is larger than the limit ({limit} bytes)")
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise FileError(f"{what} {path} does not exist") from exc
    except IsADirectoryError as exc:
        raise FileError(f"{what} {path} is a directory") from exc
    except OSError as exc:
        raise FileError(f"cannot read {what} {path}: {exc.strerror}") from exc


def signature_path(path: Path) -> Path:
    """Where a file's detached signature lives: ``FILE.sig`` beside it."""
    return path.with_name(path.name + ".sig")


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


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def clear_stale_partial(partial: Path, notice: Callable[[str], None] | None) -> None:
    """Remove ``partial`` if it is a leftover of a killed run; refuse if a run still holds it.

    A run holds an exclusive ``flock`` on its partial file for as long as it writes it, and
    the lock dies with the process, so an unlocked partial is one nobody is writing.  Only a
    0600 regular file of ours is removed: a symlink or anything else is refused, not touched.
    """
    try:
        info = os.lstat(partial)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise FileError(f"cannot check {partial}: {os_error_message(exc)}") from exc
    ours = (
        stat.S_ISREG(info.st_mode)
        and info.st_uid == os.getuid()
        and stat.S_IMODE(info.st_mode) == PRIVATE_FILE
    )
    if not ours:
        raise FileError(
            f"{partial} exists and is not a partial file of securexport",
            hint=f"move {partial} away and run again",
        )
    try:
        fd = os.open(partial, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise FileError(f"cannot check {partial}: {os_error_message(exc)}") from exc
    try:
        if not _try_lock(fd):
            raise FileError(
                f"{partial} is being written by another run",
                hint="wait for it to finish, or choose another output name",
            )
        if os.fstat(fd).st_ino != os.lstat(partial).st_ino:  # replaced meanwhile
            raise FileError(f"{partial} changed while it was checked; run again")
        os.unlink(partial)
    except OSError as exc:
        raise FileError(f"cannot remove {partial}: {os_error_message(exc)}") from exc
    finally:
        os.close(fd)
    if notice is not None:
        notice(f"removed {partial}, left by an interrupted run (it held only encrypted data)")


def create_locked_partial(partial: Path) -> int:
    """Create ``partial`` 0600 and exclusively, already locked; return its read-write fd.

    The file is made under a temporary name, locked, then hard-linked to ``partial`` (which
    fails if the name exists), so no other run can ever see it unlocked and take it for a
    leftover.  The lock is held until the fd is closed.
    """
    parent = partial.parent if str(partial.parent) else Path(os.curdir)
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{partial.name}.")
    except OSError as exc:
        raise FileError(f"cannot create {partial}: {os_error_message(exc)}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.link(tmp, partial, follow_symlinks=False)
    except FileExistsError as exc:
        os.close(fd)
        raise FileError(
            f"{partial} is being written by another run",
            hint="wait for it to finish, or choose another output name",
        ) from exc
    except OSError as exc:
        os.close(fd)
        raise FileError(f"cannot create {partial}: {os_error_message(exc)}") from exc
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return fd


@contextlib.contextmanager
def scratch_partial(path: Path, notice: Callable[[str], None] | None) -> Iterator[int]:
    """A locked 0600 ``.partial`` file for a run's own intermediate data; yields a read-write
    fd (the caller may close it: the lock is held on a duplicate).  The file is removed when
    the block ends, whatever happens; a killed run's leftover is removed first."""
    clear_stale_partial(path, notice)
    fd = create_locked_partial(path)
    lock_fd = os.dup(fd)
    try:
        yield fd
    finally:
        remove_if_same(path, lock_fd)
        os.close(lock_fd)


def remove_if_same(path: Path, fd: int) -> None:
    """Unlink ``path`` if it still names the file open as ``fd`` (never another run's file)."""
    with contextlib.suppress(OSError):
        if os.lstat(path).st_ino == os.fstat(fd).st_ino:
            os.unlink(path)


@contextlib.contextmanager
def partial_output(
    path: Path, *, notice: Callable[[str], None] | None = None, replace: bool = False
) -> Iterator[Path]:
    """Yield ``path.partial`` (0600, exclusive, locked); fsync and rename to ``path`` on success.

    On any failure or interrupt the partial file is removed, so nothing that looks valid is
    left behind; a partial left by a killed run is removed first (:func:`clear_stale_partial`).
    Unless ``replace``, the destination must not exist: a bundle is never overwritten.
    """
    partial = path.with_name(path.name + ".partial")
    if not replace and (path.exists() or path.is_symlink()):
        raise FileError(f"{path} exists already", hint="choose a new output name")
    clear_stale_partial(partial, notice)
    fd = create_locked_partial(partial)
    renamed = False
    try:
        yield partial
        fsync_file(fd, partial)
        if not replace and (path.exists() or path.is_symlink()):
            raise FileError(f"{path} appeared while writing; leaving it alone")
        if os.lstat(partial).st_ino != os.fstat(fd).st_ino:
            raise FileError(f"{partial} was replaced while it was written; nothing was written")
        try:
            os.rename(partial, path)
        except OSError as exc:
            raise FileError(f"cannot rename {partial}: {os_error_message(exc)}") from exc
        renamed = True
        fsync_dir(path.parent if str(path.parent) else Path(os.curdir))
    except BaseException:
        # A bundle whose rename could not be made durable is not left to look valid.
        remove_if_same(path if renamed else partial, fd)
        raise
    finally:
        os.close(fd)


PARTIAL_DIR_MARKER = ".securexport-partial"


def claim_partial_dir(partial: Path, notice: Callable[[str], None] | None) -> int:
    """Create the directory ``partial`` (0700), locked and marked as ours; return its fd.

    A leftover of a killed run (unlocked, with our marker inside) is removed first: it may
    hold decrypted data, which must not stay on disk.  A directory without the marker (planted,
    or made by something else) or a symlink is refused and left alone.  Remove the marker with
    :func:`release_partial_dir` before renaming the directory into place.
    """
    try:
        os.mkdir(partial, PRIVATE_DIR)
    except FileExistsError:
        _clear_stale_dir(partial, notice)
        try:
            os.mkdir(partial, PRIVATE_DIR)
        except OSError as exc:
            raise FileError(f"cannot create {partial}: {os_error_message(exc)}") from exc
    except OSError as exc:
        raise FileError(f"cannot create {partial}: {os_error_message(exc)}") from exc
    fd = os.open(partial, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    if not _try_lock(fd):
        os.close(fd)
        raise FileError(f"{partial} is being used by another run", hint="wait for it to finish")
    try:
        os.chmod(partial, PRIVATE_DIR)
        os.close(
            os.open(
                partial / PARTIAL_DIR_MARKER,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                PRIVATE_FILE,
            )
        )
    except OSError as exc:
        os.close(fd)
        raise FileError(f"cannot create {partial}: {os_error_message(exc)}") from exc
    return fd


def release_partial_dir(partial: Path) -> None:
    try:
        os.unlink(partial / PARTIAL_DIR_MARKER)
    except OSError as exc:
        raise FileError(f"cannot write {partial}: {os_error_message(exc)}") from exc


def _clear_stale_dir(partial: Path, notice: Callable[[str], None] | None) -> None:
    refuse = FileError(
        f"{partial} exists: another run is using it, or it is not securexport's",
        hint=f"if no run is using it, remove {partial}",
    )
    try:
        fd = os.open(partial, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:  # a symlink (ELOOP), a file (ENOTDIR), unreadable
        raise refuse from exc
    try:
        if not _try_lock(fd) or not os.path.lexists(partial / PARTIAL_DIR_MARKER):
            raise refuse
        if os.fstat(fd).st_ino != os.lstat(partial).st_ino:
            raise refuse
        shutil.rmtree(partial)
    except OSError as exc:
        raise FileError(f"cannot remove {partial}: {os_error_message(exc)}") from exc
    finally:
        os.close(fd)
    if notice is not None:
        notice(f"removed {partial}, left by an interrupted run")
