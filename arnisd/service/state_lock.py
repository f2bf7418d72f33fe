"""Exclusive locks on files that the operating system drops when their holder's process ends,
however it ends (a killed holder leaves no stale lock to clean up): ``flock`` on POSIX,
``msvcrt.locking`` on Windows. The lock file holds the holder's pid; on Windows a locked byte
cannot be read by others, so the lock sits on a byte far past the pid, which stays readable.

Two uses: one coordinator per ``state_dir`` (``state_dir/coordinator.lock``), and one update of
a world at a time (``.WORLD.arnisd-update.lock`` beside the world, outside it)::

    lock = StateDirLock.acquire(state_dir)    # raises StateDirInUse naming the holder's pid
    ...
    lock.release()
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from arnisd.errors import UserError

LOCK_NAME = "coordinator.lock"
_WINDOWS_LOCK_OFFSET = 1 << 20       # past anything the file holds
_PID_WAIT_S = 0.5                    # a holder that has just locked writes its pid right after


class LockHeld(UserError):
    """Another live process holds the lock."""


class StateDirInUse(LockHeld):
    """Another live process holds the lock on this ``state_dir``."""


class FileLock:
    """A held lock on one file; ``release()`` (or the process's end) frees it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, path: Path, in_use, error=LockHeld, label: str | None = None):
        """Lock ``path`` (its folder created if missing) for this process, or raise ``error``
        with ``in_use(who)`` (who: the holder's pid, as words); a folder that cannot be used
        raises ``UserError`` naming ``label`` (default: the folder)."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UserError(f"{label or path.parent}: {exc.strerror or exc}") from None
        try:
            locked = _try_lock(fd)
        except OSError as exc:
            os.close(fd)
            raise UserError(f"cannot lock {path}: {exc.strerror or exc}") from None
        if not locked:
            holder = _holder_pid(fd)
            os.close(fd)
            raise error(in_use(f"pid {holder}" if holder
                               else "a process whose pid it has not written yet"))
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        return cls(path, fd)

    def release(self) -> None:
        """Clear the pid and unlock (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
            _unlock(fd)
        except OSError:
            pass          # the lock goes with the descriptor all the same
        finally:
            os.close(fd)

    def __del__(self) -> None:
        self.release()


class StateDirLock(FileLock):
    """A held lock on one coordinator's ``state_dir``."""

    @classmethod
    def acquire(cls, state_dir: Path | str) -> "StateDirLock":
        """Lock ``state_dir`` (created if missing) for this process, or raise ``StateDirInUse``
        naming the holder's pid; an unusable folder raises ``UserError``."""
        state_dir = Path(state_dir)
        return super().acquire(
            state_dir / LOCK_NAME,
            lambda who: (f"state_dir {state_dir} is in use by another coordinator ({who}); "
                         "stop it, or give this one its own state_dir"),
            StateDirInUse, label=f"state_dir {state_dir}")


def lock_world_for_update(world_dir: Path | str) -> FileLock:
    """Hold the world for one update, or raise ``LockHeld`` naming the process updating it."""
    world = Path(world_dir).resolve()
    return FileLock.acquire(world.parent / f".{world.name}.arnisd-update.lock",
                            lambda who: f"{world_dir} is being updated by another process "
                                        f"({who}); wait for it to end")


def _holder_pid(fd: int) -> int | None:
    deadline = time.monotonic() + _PID_WAIT_S
    while True:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
        if text.isdigit():
            return int(text)
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)


if os.name == "nt":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False      # held by another process (EACCES/EDEADLOCK)
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
