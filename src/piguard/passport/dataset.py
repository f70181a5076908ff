"""The delivered files: their names in a passport, their digests, record counts and Merkle trees."""

from __future__ import annotations

import base64
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from piguard.passport import merkle, records

LAYER_MAX_NODES = 4096


class DatasetError(ValueError):
    """A data argument that cannot be used (missing, unreadable, a name given twice)."""


def collect(paths: list[str]) -> list[tuple[str, str]]:
    """(name, path) of every file: a file argument is named by its base name, a directory's files by their
    path inside it (so a buyer may keep the delivery in a directory of any name). Hidden files and symbolic
    links to directories are skipped."""
    out: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for arg in paths:
        p = Path(arg)
        if p.is_file():
            found = [(p.name, str(p))]
        elif p.is_dir():
            found = []
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(
                    d for d in dirs if not d.startswith(".") and not os.path.islink(os.path.join(root, d))
                )
                for f in sorted(files):
                    full = os.path.join(root, f)
                    if f.startswith(".") or not os.path.isfile(full):
                        continue
                    rel = os.path.relpath(full, p).replace(os.sep, "/")
                    found.append((rel, full))
            if not found:
                raise DatasetError(f"{arg}: the directory holds no files")
        elif p.exists():
            raise DatasetError(f"{arg}: not a regular file or directory")
        else:
            raise DatasetError(f"{arg}: no such file or directory")
        for name, full in found:
            if name in seen:
                raise DatasetError(f"{full}: another data file has the same name {name!r} ({seen[name]})")
            seen[name] = full
            out.append((name, full))
    if not out:
        raise DatasetError("no data files given")
    return out


@dataclass
class HashedFile:
    hashes: records.FileHashes
    root: bytes
    layer_level: int
    layer: bytes

    @property
    def name(self) -> str:
        return self.hashes.name

    def entry(self) -> dict[str, object]:
        h = self.hashes
        return {
            "name": h.name,
            "format": h.format,
            "bytes": h.size,
            "records": h.records,
            "merkleRoot": self.root.hex(),
            "layer": {
                "level": self.layer_level,
                "nodes": merkle.count(self.layer),
                "hashes": base64.b64encode(self.layer).decode("ascii"),
            },
        }


def hash_files(files: list[tuple[str, str]], *, layer_max_nodes: int = LAYER_MAX_NODES,
               threads: int = 2) -> list[HashedFile]:  # fmt: skip
    """Digest, leaves, the layer and the root of each file (the digest and the leaves on two threads,
    then each tree level split over two threads)."""
    out = []
    with ThreadPoolExecutor(max_workers=max(2, threads)) as pool:
        for name, path in files:
            h = records.hash_file(path, name, pool)
            level, lay = merkle.layer(h.leaves, layer_max_nodes, pool)
            out.append(HashedFile(h, merkle.root_of(lay, pool), level, lay))
    return out
