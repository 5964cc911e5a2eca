"""File identities: what a run read is what it publishes or deletes (§5, docs/reliability.md).

A file's identity is `(dev, ino, size, mtime_ns, ctime_ns)`, taken with `fstat` on the descriptor
its bytes were read from (or `stat` on the path a reader opened). Two equal identities of one path
mean the same bytes: a replacement by rename (`mv`, most writers) brings another inode; any write in
place (`cp` over it, an in-place Parquet rewrite) sets the ctime to the current time, and no process
can set a ctime back (`utime` sets mtime and atime only). The limit: a file system whose clock ticks
coarsely (ext4: a few ms) cannot tell apart two writes in one tick with our `fstat` between them;
both the writer and the reader would have to hit that tick.

Raw snapshot files are taken in by copying them (`copy_exact`: a reflink where the file system
can, else an in-kernel copy) into a folder the tool owns, checking the identity before and after
the copy on the one descriptor. The run matches and publishes only that copy, and deletes the raw
file only while it still has the identity it had when copied (`delete_if_unchanged`).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any

from pipelines.core.errors import ChangedWhileRead
from pipelines.core.model import FileChange
from pipelines.datasets.storage import DIR_MODE, FILE_MODE

IDENTITY_KEYS = ("dev", "ino", "size", "mtime_ns", "ctime_ns")
IDENTITIES_NAME = "_gdpr_sweep_identities.json"
"""Per version: each file's identity as of the end of the run that published it (after the last link
the run made or removed, which change a file's ctime)."""
_FICLONE = 0x40049409  # linux/fs.h: share the source's blocks copy-on-write (btrfs, xfs, bcachefs)

Identity = dict[str, int]


__all__ = ["ChangedWhileRead", "FileChange", "copy_exact", "delete_if_unchanged", "same_file", "stat_identity"]


def of_stat(st: os.stat_result) -> Identity:
    return {"dev": st.st_dev, "ino": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "ctime_ns": st.st_ctime_ns}


def stat_identity(path: Path) -> Identity | None:
    """The identity of the file at `path` now, or None when nothing is there."""
    try:
        return of_stat(os.stat(path))
    except FileNotFoundError:
        return None


def same_file(a: Identity | None, b: Identity | None, ctime: bool = True) -> bool:
    """Equal identities (without the ctime when `ctime` is false: for a check right after our own
    rename, which sets it)."""
    if a is None or b is None:
        return False
    keys = IDENTITY_KEYS if ctime else IDENTITY_KEYS[:4]
    return all(a.get(k) == b.get(k) for k in keys)


def copy_exact(src: Path, dst: Path) -> Identity:
    """Copy `src` to `dst` (through a dot-named temporary, mode FILE_MODE, not synced: the caller
    syncs its folder) and return `src`'s identity, the same before and after the copy on the one
    descriptor read from; ChangedWhileRead if it changed meanwhile. FileNotFoundError if it vanished."""
    dst.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    tmp = dst.with_name(f".{dst.name}.tmp")
    with open(src, "rb") as fin:
        before = of_stat(os.fstat(fin.fileno()))
        try:
            with open(tmp, "wb") as fout:
                os.fchmod(fout.fileno(), FILE_MODE)
                _copy_fd(fin.fileno(), fout.fileno(), before["size"])
            after = of_stat(os.fstat(fin.fileno()))
            if not same_file(before, after) or os.path.getsize(tmp) != before["size"]:
                raise ChangedWhileRead(f"{src}: changed while it was read")
            os.replace(tmp, dst)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return before


def _copy_fd(fin: int, fout: int, size: int) -> None:
    """A reflink where the file system shares blocks, else `copy_file_range` (in the kernel), else a
    plain read/write loop."""
    try:
        fcntl.ioctl(fout, _FICLONE, fin)
        return
    except OSError:
        pass
    copied = 0
    try:
        while True:
            n = os.copy_file_range(fin, fout, 1 << 30)
            if n == 0:
                break
            copied += n
        return
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP) or copied:
            raise
    os.lseek(fin, 0, os.SEEK_SET)
    with os.fdopen(os.dup(fin), "rb") as r, os.fdopen(os.dup(fout), "wb") as w:
        shutil.copyfileobj(r, w, 1 << 20)


def delete_if_unchanged(path: Path, identity: Identity) -> str:
    """Delete the raw file at `path` only if it still is the file the run read (`identity`).

    Returns `deleted`, `missing` (someone else removed it) or `changed` (kept where it was). The file
    is first renamed to a hidden name beside it, so a file that replaces it after the check is never
    the one deleted; the rename sets the ctime, so the check after it compares the rest."""
    if not same_file(stat_identity(path), identity):
        return "missing" if not path.exists() else "changed"
    hidden = path.with_name(f".{path.name}.gdpr-sweep-delete")
    try:
        os.rename(path, hidden)
    except FileNotFoundError:
        return "missing"
    if same_file(stat_identity(hidden), identity, ctime=False):
        os.unlink(hidden)
        return "deleted"
    try:  # changed between the check and the rename: put it back, unless a newer file took the name
        os.link(hidden, path)
    except FileExistsError:
        os.link(hidden, path.with_name(f"{path.stem}.kept-by-gdpr-sweep{path.suffix}"))
    os.unlink(hidden)
    return "changed"


def record_identities(version: Path, relpaths: list[str]) -> None:
    """Write the identities of a published version's files (`IDENTITIES_NAME` in the version)."""
    found = {rel: stat_identity(version / rel) for rel in relpaths}
    tmp = version.parent / f".{version.name}.identities.tmp"
    tmp.write_text(json.dumps({"version": version.name, "files": found}, sort_keys=True))
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, version / IDENTITIES_NAME)


def read_identities(version: Path | None) -> dict[str, Any]:
    """The identities recorded for `version`'s files, or {} (missing or unreadable: every file is
    then hashed, which is slower but as exact)."""
    if version is None:
        return {}
    try:
        doc = json.loads((version / IDENTITIES_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return dict(doc.get("files", {})) if doc.get("version") == version.name else {}
