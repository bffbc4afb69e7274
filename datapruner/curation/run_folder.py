"""A curation run's output folder, written all or nothing, and its work folder.

A run never writes into its output folder directly. `RunFolder.open` (before any data is read)
checks that the folder is new, empty, or an earlier datapruner run that may be replaced
(``output.overwrite`` / ``--overwrite``), takes the run's lock and removes what killed runs left
beside it (`.<name>.tmp-*` folders). `RunFolder.stage` yields a temporary sibling folder; once
everything is written there (the manifest last) it replaces the output folder in one rename
(`datapruner.paths.replace_dir`). A run killed at any point therefore leaves the previous complete
run (or nothing), and the next run cleans the leftovers.

The work folder `.<name>.work/` (a sibling of the output) keeps what a rerun may reuse: finished
steps (`datapruner.curation.step_store`), k-means centroids and assignment shards. Delete it to
reclaim the space; a later run recomputes.

`kill_point(name)` is a test-only hook: when the environment variable ``DATAPRUNER_TEST_KILL_AT``
equals `name`, the process kills itself with SIGKILL there (the reliability tests kill real runs
at chosen points with it). Points: ``step:<scorer>`` (after a scorer's columns are saved),
``write:scores`` (after scores.parquet is staged), ``write:pruned``, ``commit`` (before the rename).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import shutil
import signal
from pathlib import Path
from typing import Iterator

from datapruner.errors import OutputFolderError
from datapruner.io.writers import check_output_location
from datapruner.paths import make_temp_dir, replace_dir

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MANIFEST_MARK = "datapruner_manifest"
KILL_ENV = "DATAPRUNER_TEST_KILL_AT"
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def kill_point(name: str) -> None:
    """SIGKILL this process here when ``$DATAPRUNER_TEST_KILL_AT == name`` (a test-only hook)."""
    if os.environ.get(KILL_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def work_dir_of(out_dir: str | Path) -> Path:
    """The work folder of the run writing `out_dir`: `.<name>.work` beside it."""
    out = Path(out_dir).absolute()
    return out.parent / f".{out.name}.work"


def read_manifest(folder: Path) -> dict | None:
    """The manifest of the datapruner run in `folder`, or None when `folder` holds no run."""
    path = Path(folder) / MANIFEST
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and MANIFEST_MARK in data else None


def files_under(folder: Path) -> list[str]:
    """Every file below `folder`, as sorted relative POSIX paths."""
    folder = Path(folder)
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc` is an out-of-space error (pyarrow's included, which carry no errno)."""
    return isinstance(exc, OSError) and (exc.errno in DISK_FULL or "No space left" in str(exc) or "Disk quota" in str(exc))


class RunFolder:
    """The output folder of one run: checked and locked by `open`, written through `stage`.

    Parameters
    ----------
    out_dir : the output folder (``output.dir``).
    overwrite : replace an earlier run in `out_dir` (``output.overwrite``, ``--overwrite``).
    input_path : the run's input (an output folder over the input is refused).
    """

    def __init__(self, out_dir: str | Path, *, overwrite: bool = False, input_path: str | Path | None = None):
        self.out_dir = Path(out_dir).absolute()
        self.overwrite = bool(overwrite)
        self.input_path = input_path
        self.work_dir = work_dir_of(self.out_dir)
        self.replaced: list[str] = []
        self._lock = None

    # ---- before any work ---------------------------------------------------------------------
    def open(self) -> "RunFolder":
        """Check the folder can be written, take the run's lock, and remove leftovers of killed runs.

        Raises
        ------
        OutputFolderError : the folder holds files that are not a datapruner run, holds an earlier
            run and `overwrite` is off, or another run holds the lock.
        InputDataError : the folder is the input's location.
        """
        if self.input_path is not None:
            check_output_location(self.out_dir, self.input_path)
        self.check_replaceable()
        self._take_lock()
        self.sweep_leftovers()
        return self

    def check_replaceable(self) -> None:
        """Refuse a folder that is not empty and is not an earlier run, or an earlier run without `overwrite`."""
        out = self.out_dir
        if out.exists() and not out.is_dir():
            raise OutputFolderError(f"output {str(out)!r} is a file, not a folder; choose a folder with output.dir (--out)")
        if not out.exists() or not any(out.iterdir()):
            return
        present = files_under(out)
        manifest = read_manifest(out)
        if manifest is None:
            shown = ", ".join(present[:5]) + (f" and {len(present) - 5} more" if len(present) > 5 else "")
            raise OutputFolderError(
                f"output folder {str(out)!r} is not empty and holds no datapruner run (no {MANIFEST}): it holds {shown}. "
                f"datapruner writes only into a new or empty folder, or replaces an earlier run; "
                f"choose another folder with output.dir (--out)"
            )
        ours = set(manifest.get("files") or []) | {MANIFEST}
        foreign = [f for f in present if f not in ours] if manifest.get("files") else [
            f for f in present if not _written_by_datapruner(f)
        ]
        if not self.overwrite:
            extra = f"; it also holds files datapruner did not write, which would be deleted: {foreign[:5]}" if foreign else ""
            raise OutputFolderError(
                f"output folder {str(out)!r} holds an earlier datapruner run ({MANIFEST}, {len(present)} files){extra}. "
                f"Pass --overwrite (output.overwrite: true) to replace it whole, or choose another folder with output.dir (--out)"
            )
        self.replaced = present
        if foreign:
            log.warning("--overwrite: replacing the earlier run in %s, including files datapruner did not write: %s",
                        out, ", ".join(foreign))
        else:
            log.info("--overwrite: replacing the earlier run in %s (%d files)", out, len(present))

    def _take_lock(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.work_dir / "run.lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise OutputFolderError(
                f"another datapruner run is writing {str(self.out_dir)!r} (its lock {self.work_dir / 'run.lock'} is held); "
                f"wait for it to finish or choose another folder with output.dir (--out)"
            ) from None
        self._lock = handle

    def sweep_leftovers(self) -> list[str]:
        """Delete `.<name>.tmp-*` / `.<name>.old-*` siblings (left by killed runs; the lock makes them stale)."""
        removed = []
        for pattern in (f".{self.out_dir.name}.tmp-*", f".{self.out_dir.name}.old-*"):
            for path in self.out_dir.parent.glob(pattern):
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
                removed.append(path.name)
        if removed:
            log.info("removed leftovers of killed runs beside %s: %s", self.out_dir, removed)
        return removed

    def close(self) -> None:
        """Release the run's lock."""
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def __enter__(self) -> "RunFolder":
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()
        if exc is not None and is_disk_full(exc):  # e.g. the work folder, beside the output, filled the disk
            raise self.disk_full(exc) from None

    def disk_full(self, exc: BaseException) -> OutputFolderError:
        """The error of a full disk under the output folder: what, where, and that nothing was published."""
        return OutputFolderError(
            f"the disk holding {str(self.out_dir.parent)!r} is full ({exc}); the run was not published and "
            f"the output folder is as before. Free space there or choose another folder with output.dir (--out)"
        )

    # ---- writing ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def stage(self) -> Iterator[Path]:
        """Yield a temporary sibling folder; on success it replaces the output folder in one rename.

        On any error the temporary folder is deleted and the output folder is left as it was. A full
        disk becomes an `OutputFolderError` naming the folder and the fix.
        """
        staging = make_temp_dir(self.out_dir, "tmp")
        try:
            yield staging
            kill_point("commit")
            replace_dir(staging, self.out_dir)
        except OSError as exc:
            if is_disk_full(exc):
                raise self.disk_full(exc) from None
            raise
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)


def _written_by_datapruner(relpath: str) -> bool:
    """Files an earlier run (whose manifest lists no files) wrote: pruned shards, the audit, the report."""
    first = relpath.split("/", 1)[0]
    if first == "pruned":
        name = relpath.rsplit("/", 1)[-1]
        return name.startswith("part-") and name.endswith(".parquet")
    return relpath in ("scores.parquet", MANIFEST) or first == "report"
