"""Calibration data kept (issue 24): images of every mode Pillow opens keep their real range or are refused in
one line; .npy/.npz whose headers lie, members that are not arrays and decompression bombs are one line each.

Value cases read through ``open_data`` (the one entry point calibrate uses); refusals go through the CLI and
assert exit 2, one line, no traceback, and that the artifact folder is byte-for-byte what it was.
"""

import struct
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

from deploykit.calibration.data import open_data
from deploykit.recipe import load_recipe

from ..artifact_cache import artifact_copy
from .checks import assert_one_line_error, cli, tree

RGB_MODULE = '''
from torch import nn


def make():
    return nn.Conv2d(3, 4, 3, padding=1)
'''


@pytest.fixture(scope="module")
def rgb(tmp_path_factory):
    """A 3-channel module exported from flags (x=B,3,H,W at 16x16): images fit its default [calibration]."""
    import os
    import sys

    folder = tmp_path_factory.mktemp("rgb")
    (folder / "rgbnet.py").write_text(RGB_MODULE)
    here = os.getcwd()
    os.chdir(folder)
    sys.path.insert(0, str(folder))
    try:
        result = cli("export", "--module", "rgbnet:make", "--input", "x=B,3,H,W", "--dim", "B=1:1:2",
                     "--dim", "H=16", "--dim", "W=16", "--name", "rgbnet", "--out", str(folder / "out"))
    finally:
        os.chdir(here)
        sys.path.remove(str(folder))
    assert result.exit_code == 0, result.output
    return folder / "out" / "rgbnet"


def _values(rgb, image_path):
    """The calibration batch read from one image file (scale 1/255, mean 0, std 1: the 0..1 range)."""
    data = open_data(load_recipe(rgb / "recipe.toml"), image_path)
    return next(iter(data))["x"]


# 8-bit modes: a mid-grey (or white, for bilevel) image keeps its value through the conversion
EIGHT_BIT = {
    "1": ("png", lambda: Image.new("1", (16, 16), 1), 1.0),
    "L": ("png", lambda: Image.new("L", (16, 16), 128), 128 / 255),
    "LA": ("png", lambda: Image.new("LA", (16, 16), (128, 255)), 128 / 255),
    "P": ("png", lambda: Image.new("L", (16, 16), 128).convert("P"), 128 / 255),
    "PA": ("tiff", lambda: Image.new("PA", (16, 16)).convert("L").point(lambda v: 128).convert("PA"), 128 / 255),
    "RGB": ("png", lambda: Image.new("RGB", (16, 16), (128, 128, 128)), 128 / 255),
    "RGBA": ("png", lambda: Image.new("RGBA", (16, 16), (128, 128, 128, 255)), 128 / 255),
    "CMYK": ("tiff", lambda: Image.new("CMYK", (16, 16), (0, 0, 0, 127)), 128 / 255),
    "YCbCr": ("jpg", lambda: Image.new("RGB", (16, 16), (128, 128, 128)), 128 / 255),
}


@pytest.mark.parametrize("mode", list(EIGHT_BIT))
def test_eight_bit_modes_keep_their_value(rgb, tmp_path, mode):
    suffix, make, want = EIGHT_BIT[mode]
    path = tmp_path / f"img.{suffix}"
    make().save(path)
    np.testing.assert_allclose(_values(rgb, path), want, atol=2 / 255)


@pytest.mark.parametrize("value", [0, 257, 32768, 65535])
def test_a_16_bit_png_keeps_its_range(rgb, tmp_path, value):
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((16, 16), value, np.uint16)).save(path)
    assert Image.open(path).mode == "I;16"
    np.testing.assert_allclose(_values(rgb, path), value / 65535, atol=1e-5)  # it was 1.0 (all 255) for any value


def test_a_16_bit_gradient_keeps_every_level(rgb, tmp_path):
    path = tmp_path / "ramp.png"
    ramp = np.tile(np.linspace(0, 65535, 16).astype(np.uint16), (16, 1))
    Image.fromarray(ramp).save(path)
    x = _values(rgb, path)
    np.testing.assert_allclose(x[0, 0, 0], ramp[0] / 65535, atol=1e-4)  # resized 16 -> 16: the pixels as they are
    assert np.array_equal(x[0, 0], x[0, 2])  # grey to RGB: the same plane three times


def test_a_big_endian_16_bit_tiff_keeps_its_range(rgb, tmp_path):
    path = tmp_path / "be.tiff"
    Image.frombytes("I;16B", (16, 16), np.full((16, 16), 1000, ">u2").tobytes()).save(path)
    np.testing.assert_allclose(_values(rgb, path), 1000 / 65535, atol=1e-5)


def _calibrate(artifact, data):
    return cli("calibrate", artifact.name, "--data", data, "--out", artifact.parent, "--no-fp16", "--target", "ort")


def _png_header_only(path, width, height):
    """A PNG that declares ``width`` x ``height`` (no pixel data needed: Pillow checks the size on open)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) +
                     chunk(b"IEND", b""))
    return path


# name: (write the file into the given folder, text of the one line)
IMAGE_REFUSALS = {
    "a float TIFF": (lambda d: Image.fromarray(np.full((16, 16), 0.5, np.float32), "F").save(d / "f.tiff"),
                     "a 32-bit float image (Pillow mode F) has no range to scale from"),
    "an int32 TIFF": (lambda d: Image.fromarray(np.full((16, 16), 1000, np.int32), "I").save(d / "i.tiff"),
                      "a 32-bit integer image (Pillow mode I) has no range to scale from"),
    "a LAB TIFF": (lambda d: Image.new("LAB", (16, 16)).save(d / "lab.tiff"), "a LAB image"),
    "a 20000x20000 PNG": (lambda d: _png_header_only(d / "bomb.png", 20000, 20000), "decompression bomb"),
    "a 12000x12000 PNG": (lambda d: _png_header_only(d / "big.png", 12000, 12000), "decompression bomb"),
    "a truncated PNG": (lambda d: (d / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00"), "cannot read image"),
}


@pytest.mark.parametrize("case", list(IMAGE_REFUSALS))
def test_images_without_a_real_range_are_refused_in_one_line(rgb, tmp_path, case):
    _refused(rgb, tmp_path / "images", *IMAGE_REFUSALS[case])


def _refused(artifact, data, write, text):
    """calibrate on the file ``write`` puts in ``data``: one line, and neither the artifact nor the data changed."""
    data.mkdir()
    write(data)
    before, inputs = tree(artifact), tree(data)
    assert_one_line_error(_calibrate(artifact, data), text)
    assert tree(artifact) == before and tree(data) == inputs


@pytest.fixture
def cbam(tmp_path_factory, tmp_path):
    return artifact_copy(tmp_path_factory, "cbam", tmp_path / "out")


def _npy_declaring(path, shape, data=b""):
    """An .npy whose header declares ``shape`` of float32, followed by ``data``."""
    header = {"descr": "<f4", "fortran_order": False, "shape": tuple(shape)}
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(data)
    return path


def _npz(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _npy_bytes(shape, data=b""):
    import io

    handle = io.BytesIO()
    np.lib.format.write_array_header_1_0(handle, {"descr": "<f4", "fortran_order": False, "shape": tuple(shape)})
    return handle.getvalue() + data


GIB_224 = (224 * 2 ** 28, 1, 1, 1)  # 224 GiB of float32, declared by a header of 128 bytes

ARRAY_REFUSALS = {
    "an .npy declaring 224 GiB": (lambda d: _npy_declaring(d / "huge.npy", GIB_224),
                                  "its header declares shape [60129542144, 1, 1, 1] of float32"),
    "a truncated .npy": (lambda d: _npy_declaring(d / "cut.npy", (2, 64, 8, 8), bytes(100)),
                         "the file holds 100 bytes of data"),
    "an .npy that is not one": (lambda d: (d / "text.npy").write_text("x = 1\n"), "not a readable .npy array"),
    "an .npz member that is not .npy": (lambda d: _npz(d / "notes.npz", {"x.npy": _npy_bytes((1, 64, 8, 8), bytes(
        16384)), "notes.txt": b"hello"}), "member 'notes.txt' is not an .npy array"),
    "an .npz member declaring 224 GiB": (lambda d: _npz(d / "huge.npz", {"x.npy": _npy_bytes(GIB_224)}),
                                         "member 'x.npy': its header declares"),
    "an .npz that is not a zip": (lambda d: (d / "fake.npz").write_bytes(b"PK\x03\x04 not really"),
                                  "cannot read arrays"),
}


@pytest.mark.parametrize("case", list(ARRAY_REFUSALS))
def test_arrays_whose_headers_lie_are_one_line(cbam, tmp_path, case):
    _refused(cbam, tmp_path / "arrays", *ARRAY_REFUSALS[case])


def test_a_good_npy_beside_the_checks_still_loads(cbam, tmp_path):
    """The header check reads what numpy reads: a well-formed file passes it unchanged."""
    np.save(tmp_path / "good.npy", np.full((2, 64, 16, 16), 0.25, np.float32))
    data = open_data(load_recipe(cbam / "recipe.toml"), tmp_path / "good.npy")
    assert [b["x"].shape for b in data] == [(2, 64, 16, 16)] and float(next(iter(data))["x"].mean()) == 0.25
