"""Files written safely: atomic writes, the clean-up of what a killed run left, a lock on a folder.

- :func:`atomic_write`: a temporary file beside the target (``.<name>.<random>.part``),
  then a rename; readers see the old file or the whole new one, never half of it.
  The writer holds an advisory lock on its temporary file until it is renamed, so
  :func:`clean_partials` can tell a live writer's file from one a killed run left.
- :class:`FolderLock`: one run at a time on an output folder (``batch``, ``watch``).
  The operating system releases the lock when the process ends, even on ``kill -9``.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Self

from .errors import OutputError, os_error_advice

if sys.platform == "win32":  # pragma: no cover  (byte-range locks: the OS drops them with the process too)
    import msvcrt

    # Far past any content, so that the locked byte never hides the lock file's text from readers.
    _WIN_LOCK_OFFSET = 1 << 30

    def _lock(fd: int, *, wait: bool) -> bool:
        """An exclusive lock on ``fd``; False when another holder has it (``wait=False``)."""
        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        try:
            while True:
                try:
                    msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
                    return True
                except OSError:
                    if not wait:
                        return False
                    import time

                    time.sleep(0.05)
        finally:
            os.lseek(fd, 0, os.SEEK_SET)

else:
    import fcntl

    def _lock(fd: int, *, wait: bool) -> bool:
        """An exclusive advisory lock on ``fd``; False when another holder has it (``wait=False``)."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        return True

__all__ = ["LOCK_NAME", "FolderLock", "atomic_write", "clean_partials", "is_partial"]

LOCK_NAME = ".alphacut.lock"
# What atomic_write names its temporary files: ".<name>.<random>.part".
_PARTIAL = re.compile(r"^\.(?P<target>.+)\.[A-Za-z0-9_]+\.part$")


def atomic_write(path: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.

    Without ``overwrite`` an existing file is never replaced, even one that appears
    between the check and the write (the final step is a hard link, which fails if
    the name exists). Every failure, creating the folder included, is an
    :class:`~alphacut.errors.OutputError` that says what to do.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder {path.parent}: {os_error_advice(exc)}") from None
    if not overwrite and path.exists():
        raise OutputError(f"{path} exists: pass --overwrite to replace it, or choose another output")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {os_error_advice(exc)}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            _lock(f.fileno(), wait=True)  # held until the rename: clean_partials leaves it alone
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~_UMASK)
            if overwrite:
                os.replace(tmp, path)
            else:
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    raise OutputError(f"{path} exists: pass --overwrite to replace it") from None
                except OSError:  # file systems without hard links
                    if path.exists():
                        raise OutputError(f"{path} exists: pass --overwrite to replace it") from None
                    os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {os_error_advice(exc)}") from None
    finally:
        tmp.unlink(missing_ok=True)


def is_partial(name: str) -> bool:
    """Whether ``name`` is one of :func:`atomic_write`'s temporary files."""
    return _PARTIAL.match(name) is not None


def clean_partials(folder: Path, *, recursive: bool = True, target: Callable[[str], bool] | None = None) -> int:
    """Remove the temporary files a killed run left in ``folder``; how many there were.

    A temporary file a live writer still holds (another process writing into the
    same folder) is left alone. ``target`` narrows the clean-up to the temporary files
    of outputs whose name it accepts.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    walk = os.walk(folder) if recursive else [(str(folder), [], [p.name for p in folder.iterdir()])]
    removed = 0
    for root, _dirs, files in walk:
        for name in files:
            match = _PARTIAL.match(name)
            if match is None or (target is not None and not target(match["target"])):
                continue
            if _remove_if_abandoned(Path(root, name)):
                removed += 1
    return removed


def _remove_if_abandoned(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False  # gone already, or not ours to open
    try:
        if not _lock(fd, wait=False):
            return False  # a live writer holds it
        path.unlink(missing_ok=True)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


class FolderLock:
    """One alphacut run at a time on ``folder``: :meth:`acquire` refuses at once when another holds it.

    The lock is ``folder/.alphacut.lock``, held with ``flock`` (a byte-range lock on
    Windows) for the life of the process (the file stays; the lock is what counts, and the OS drops it when the
    process ends, even after ``kill -9``). The file says which process holds it.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> Self:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(f"cannot use the output folder {self.folder}: {os_error_advice(exc)}") from None
        try:
            if not _lock(fd, wait=False):
                holder = os.read(fd, 64).decode("ascii", "replace").strip()
                who = f" (process {holder})" if holder.isdigit() else ""
                raise OutputError(
                    f"another alphacut run{who} is working in {self.folder}: wait for it to finish, or choose"
                    " another output folder (two runs on one folder would redo each other's work)"
                )
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as exc:
            os.close(fd)
            raise OutputError(f"cannot lock the output folder {self.folder}: {os_error_advice(exc)}") from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once: os.umask is process-wide and not thread-safe to probe
