"""Hostile weights files for the importer's tests: a pickle that names a class and one that
names a function (in a torch.save-shaped zip), a truncated archive, and a tensor whose
storage is shorter than its shape.

    python3 hostile_weights.py OUT_DIR GOOD.pth
"""
import collections
import io
import os
import pickle
import sys
import zipfile

import torch


def zip_with(path, pkl, extra=None):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        for name, data in (extra or {}).items():
            z.writestr(name, data)


def main():
    out, good = sys.argv[1], sys.argv[2]
    zip_with(f"{out}/names-a-class.pth", pickle.dumps({"w": collections.Counter()}, protocol=2))
    zip_with(f"{out}/names-a-function.pth", pickle.dumps({"w": os.system}, protocol=2))
    looped = {}
    looped["self"] = looped
    zip_with(f"{out}/loop.pth", pickle.dumps(looped, protocol=2))
    data = open(good, "rb").read()
    open(f"{out}/truncated.pth", "wb").write(data[: len(data) // 2])
    buf = io.BytesIO()
    torch.save({"w": torch.arange(100, dtype=torch.float32)}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    with zipfile.ZipFile(f"{out}/short-storage.pth", "w", zipfile.ZIP_STORED) as z:
        for info in src.infolist():
            body = src.read(info.filename)
            z.writestr(info.filename, body[:40] if info.filename.endswith("/data/0") else body)


if __name__ == "__main__":
    main()
