"""Where datapruner keeps its caches, and atomic file helpers."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from pathlib import Path


def cache_dir() -> Path:
    """`$DATAPRUNER_CACHE`, else `$XDG_CACHE_HOME/datapruner`, else `~/.cache/datapruner`."""
    env = os.environ.get("DATAPRUNER_CACHE")
    if env:
        path = Path(env).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "datapruner"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def file_lock(path: Path):
    """An exclusive advisory lock held for the duration of the block (works across processes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def atomic_path(final: Path):
    """Yield a temporary sibling path; rename it onto `final` only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink()


def umask_mode(kind: str = "dir") -> int:
    """The permissions a new folder (``kind="dir"``) or file (``"file"``) gets under the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if kind == "dir" else 0o666) & ~mask


def make_temp_dir(final: Path, tag: str = "tmp") -> Path:
    """A new empty folder `.<name>.<tag>-<pid>-<random>` beside `final`, with the usual permissions.

    Unlike `tempfile.mkdtemp` (mode 0700), the folder gets the umask's mode (e.g. 0755), so what is
    renamed into place looks like any other output folder.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.{tag}-{os.getpid()}-", dir=final.parent))
    os.chmod(tmp, umask_mode("dir"))
    return tmp


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    return False


def replace_dir(new: Path, final: Path) -> None:
    """Put folder `new` at `final`, replacing what is there, so `final` is always old or new, never a mix.

    Where the OS can swap two folders atomically (Linux), `final` goes from the old folder to the
    new one in one step; elsewhere the old folder is renamed aside first (a crash between the two
    renames leaves no `final`, never a half-written one). The old folder is then deleted.
    """
    new, final = Path(new), Path(final)
    if not final.exists():
        os.replace(new, final)
        return
    if _exchange(new, final):
        shutil.rmtree(new)  # `new` now holds the old folder
        return
    aside = make_temp_dir(final, "old")
    os.rmdir(aside)
    os.replace(final, aside)
    os.replace(new, final)
    shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(final: Path):
    """Yield a temporary directory beside `final`; it replaces `final` (see `replace_dir`) on success."""
    final = Path(final)
    tmp = make_temp_dir(final)
    try:
        yield tmp
        replace_dir(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
