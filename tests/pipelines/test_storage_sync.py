"""`storage.sync_folder`: one `syncfs` where the C library has it, else an fsync of every file and folder."""

from __future__ import annotations

import os

from pipelines.datasets import storage


def _tree(root):
    (root / "day=1").mkdir(parents=True)
    for rel in ("a.parquet", "day=1/b.parquet", "_gdpr_sweep_manifest.json"):
        (root / rel).write_bytes(b"x")


def test_syncfs_is_used_on_linux(tmp_path, monkeypatch):
    _tree(tmp_path)
    assert storage._syncfs is not None  # glibc has had syncfs since 2.14
    fsynced = []
    monkeypatch.setattr(os, "fsync", lambda fd: fsynced.append(fd))
    storage.sync_folder(tmp_path)
    assert fsynced == []  # one syncfs did it


def test_without_syncfs_every_file_and_folder_is_fsynced(tmp_path, monkeypatch):
    _tree(tmp_path)
    monkeypatch.setattr(storage, "_syncfs", None)
    fsynced = []
    real = os.fsync

    def record(fd):
        fsynced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    storage.sync_folder(tmp_path)
    expected = {str(tmp_path / rel) for rel in ("a.parquet", "day=1/b.parquet", "_gdpr_sweep_manifest.json",
                                                 "day=1")} | {str(tmp_path)}
    assert set(fsynced) == expected
