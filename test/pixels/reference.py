#!/usr/bin/python3
"""Reference pixel arrays for test/pixels/*.test.ts.

Run with Debian's /usr/bin/python3 (python3-pydicom 2.3, python3-numpy, python3-pil).
stdin:  JSON list of jobs, stdout: JSON list of results (same order).

job = {
  "file": "path/to/file.dcm",
  "ref":  "pydicom"            # pydicom pixel_array (numpy / RLE / Pillow handlers)
        | "dcmdjpeg" | "dcmdjpls" | "dcmdrle",   # DCMTK decompresses to native, then pydicom
  "npy":  "optional .npy written by the TS code: np.load it and compare with the reference",
  "png":  {"path": "...", "frame": 0, "offset": 0},  # optional: Pillow decodes it, compare
  "rescale": true   # optional: also hash apply_modality_lut(arr) as little-endian float32
}
result = {"ok": true, "dtype": "int16", "shape": [frames, rows, cols(, samples)],
          "sha256": "<sha256 of the C-order little-endian bytes>", "npy_equal": bool,
          "npsave_sha256": "<sha256 of np.save(reference)>", "rescale_sha256": "...",
          "png_equal": bool, "png_mode": "I;16"}  or  {"ok": false, "error": "..."}

The reference shape always has the frames dimension (pydicom drops it for one frame).
DCMTK decompression uses --conv-never so colour data stays in the file's colour space,
matching pydicom 2.3 (which returns YCbCr for YBR_* JPEG, see pillow_handler.py).
"""
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import pydicom

DCMTK = {
    "dcmdjpeg": ["dcmdjpeg", "--conv-never"],
    "dcmdjpls": ["dcmdjpls"],
    "dcmdrle": ["dcmdrle"],
}


def reference_array(path, ref, tmpdir):
    """(canonical little-endian array, dataset) for one job."""
    if ref in DCMTK:
        out = os.path.join(tmpdir, "native.dcm")
        subprocess.run(DCMTK[ref] + [path, out], check=True, capture_output=True)
        path = out
    elif ref != "pydicom":
        raise ValueError(f"unknown reference {ref}")
    ds = pydicom.dcmread(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arr = ds.pixel_array
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    spp = int(ds.SamplesPerPixel)
    canonical = (frames, int(ds.Rows), int(ds.Columns)) + ((spp,) if spp > 1 else ())
    if arr.shape != canonical:
        if frames == 1 and (1,) + arr.shape == canonical:
            arr = arr.reshape(canonical)
        else:
            raise ValueError(f"unexpected pydicom shape {arr.shape} for {canonical}")
    # Little-endian, C order: the layout of PixelArray.data.
    return np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"))), ds


def run(job, tmpdir):
    arr, ds = reference_array(job["file"], job.get("ref", "pydicom"), tmpdir)
    saved = io.BytesIO()
    np.save(saved, arr, allow_pickle=False)
    res = {
        "ok": True,
        "dtype": arr.dtype.name,
        "shape": list(arr.shape),
        "sha256": hashlib.sha256(arr.tobytes()).hexdigest(),
        "npsave_sha256": hashlib.sha256(saved.getvalue()).hexdigest(),
    }
    if job.get("rescale"):
        from pydicom.pixel_data_handlers.util import apply_modality_lut

        lut = apply_modality_lut(arr, ds).astype("<f4")
        res["rescale_sha256"] = hashlib.sha256(np.ascontiguousarray(lut).tobytes()).hexdigest()
    if job.get("npy"):
        loaded = np.load(job["npy"], allow_pickle=False)
        res["npy_equal"] = bool(
            loaded.dtype == arr.dtype and loaded.shape == arr.shape and np.array_equal(loaded, arr)
        )
    if job.get("png"):
        from PIL import Image

        p = job["png"]
        with Image.open(p["path"]) as im:
            im.load()
            res["png_mode"] = im.mode
            got = np.array(im).astype(np.int64)
        want = arr[p["frame"]].astype(np.int64) + int(p.get("offset", 0))
        res["png_equal"] = bool(got.shape == want.shape and np.array_equal(got, want))
    return res


def main():
    jobs = json.load(sys.stdin)
    out = []
    with tempfile.TemporaryDirectory() as tmpdir:
        for job in jobs:
            try:
                out.append(run(job, tmpdir))
            except Exception as e:  # report per job; the TS test decides
                out.append({"ok": False, "error": f"{type(e).__name__}: {e}"})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
