"""Finished batches of an embedding job kept on disk, so a killed job resumes where it stopped."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np

from hearflow.core.io import atomic_path

log = logging.getLogger("hearflow.embed.job")  # the job's log: a resume is part of the job's story


def shard_dir(out_dir: Path) -> Path:
    """Where finished batches of an unfinished job wait (beside the output, removed on success)."""
    return out_dir.parent / f".{out_dir.name}.shards"


class ShardStore:
    """Finished batches of one embedding job, so a killed job resumes where it stopped.

    Each batch is one `.npz` written atomically; `manifest.json` holds the job's settings,
    and shards written under other settings are discarded rather than reused.
    """

    def __init__(self, root: Path, settings: dict):
        import json

        self.root = root
        self.reused = self.computed = 0
        manifest = json.dumps(settings, sort_keys=True, default=str)
        mpath = root / "manifest.json"
        if root.is_dir() and (not mpath.is_file() or mpath.read_text() != manifest):
            log.info("%s: shards from other settings, discarded", root)
            shutil.rmtree(root)
        if not root.is_dir():
            root.mkdir(parents=True)
            with atomic_path(mpath) as tmp:
                tmp.write_text(manifest)

    def _path(self, split: str, index: int) -> Path:
        return self.root / f"{split}-{index:06d}.npz"

    def load(self, split: str, index: int, batch: list[str]) -> dict | None:
        path = self._path(split, index)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                if list(data["names"]) != list(batch):
                    return None
                out = {k: data[k] for k in data.files if k != "names"}
        except (OSError, ValueError, KeyError) as err:  # a damaged shard is recomputed
            log.warning("%s: unreadable shard (%s), recomputed", path, err)
            return None
        self.reused += 1
        return out

    def save(self, split: str, index: int, batch: list[str], result: dict) -> None:
        with atomic_path(self._path(split, index)) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, names=np.array(batch), **result)
        self.computed += 1

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
