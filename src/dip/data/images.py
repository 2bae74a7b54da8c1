"""Reading and writing images and masks with validation, and sha256 of files.

Every reader raises :class:`dip.errors.DipError` naming the file and the problem, so the CLI can print
one line and exit 2 before anything is written. Writers are atomic (:mod:`dip.data.atomic`).

PIL's decompression-bomb guard stays on for every file the pipeline reads (downloaded data); it is lifted only
for the files a person names to ``dip inpaint`` (``named=True``): their photo may be large, and dip inpaint
checks the memory its fit needs itself, before decoding (:func:`picture_size`).
"""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import png
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from dip.data.atomic import AtomicPath
from dip.errors import DipError


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextmanager
def bomb_limit_lifted() -> Iterator[None]:
    """PIL's decompression-bomb guard off, for the files a person named (module docstring)."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _open(path: str | os.PathLike, named: bool = False, load: bool = True) -> Image.Image:
    """The opened (and, with ``load``, decoded) image; ``named``: a file the person named (module docstring)."""
    p = Path(path)
    if not p.exists():
        raise DipError(p, "no such file")
    if p.is_dir():
        raise DipError(p, "is a directory, not an image")
    if p.stat().st_size == 0:
        raise DipError(p, "empty file (0 bytes)")
    try:
        with bomb_limit_lifted() if named else nullcontext():
            img = Image.open(p)
            img.deep16 = (img.format == "PNG" and img.mode in ("RGB", "RGBA") and bool(img.tile)
                          and str(img.tile[0][3]).endswith(";16B"))  # 16-bit colour (see _pixels)
            if load:
                img.load()  # decodes everything: truncated files fail here, not later
    except UnidentifiedImageError:
        raise DipError(p, "not an image file (cannot identify the format)") from None
    except Image.DecompressionBombError as e:  # a header claiming a huge size: refused before decoding
        raise DipError(p, f"too large to decode safely ({e})") from None
    except PermissionError:
        raise DipError(p, "permission denied") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise DipError(p, f"unreadable or truncated image ({e})") from None
    return img


def picture_size(path: str | os.PathLike, named: bool = True) -> tuple[int, int, int]:
    """(height, width, channels) of an image as :func:`read_picture` would read it (upright), from its header
    only: nothing is decoded, so a photo too large for the memory is measured in milliseconds."""
    img = _open(path, named, load=False)
    w, h = img.size
    if img.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8):  # turned by 90 degrees
        w, h = h, w
    return h, w, 1 if img.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N") else 3


def _pixels(path: str | os.PathLike, named: bool = False) -> tuple[np.ndarray, int, Image.Image]:
    """The file's values as stored, (H, W, C) integers with C = 1 or 3 (+1 with alpha), upright (EXIF
    orientation applied), and the value of white: 1 (1-bit), 255 (8-bit) or 65535 (16-bit)."""
    opened = img = _open(path, named)
    if img.deep16:  # PIL keeps only the high bytes of 16-bit colour PNGs: pypng reads all 16 bits
        _, _, rows, _ = png.Reader(filename=str(path)).asDirect()
        a = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(img.height, img.width, -1)
        return _upright(img, a), 65535, img
    mode = img.mode
    if mode in ("P", "PA"):
        img = img.convert("RGBA")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGB")
    elif mode not in ("1", "L", "LA", "RGB", "RGBA", "I", "I;16", "I;16B", "I;16L", "I;16N"):
        raise DipError(path, f"unsupported image mode {mode} (need 8- or 16-bit grayscale or RGB)")
    a = np.asarray(img)
    if a.ndim == 2:
        a = a[..., None]
    if mode == "I" and (a.min() < 0 or a.max() > 65535):  # "I": 16-bit PNGs in older Pillows, 32-bit TIFFs
        raise DipError(path, f"unsupported image mode {mode} (32-bit values; need 8 or 16 bits)")
    deep = mode.startswith("I")
    a = a.astype(np.uint16 if deep else np.uint8)  # native byte order; 1-bit: 0/1
    return _upright(opened, a), 1 if mode == "1" else 65535 if deep else 255, opened


def _upright(img: Image.Image, a: np.ndarray) -> np.ndarray:
    """``a`` turned as :func:`PIL.ImageOps.exif_transpose` turns ``img`` (camera JPEGs store the orientation in
    EXIF): the same transpose for every kind of data, found by transposing an image of pixel indices."""
    if img.getexif().get(ExifTags.Base.Orientation, 1) == 1:
        return a
    h, w = a.shape[:2]
    index = Image.fromarray(np.arange(h * w, dtype=np.int32).reshape(h, w))
    index.info = dict(img.info)
    moved = np.asarray(ImageOps.exif_transpose(index))
    return a.reshape(h * w, -1)[moved.ravel()].reshape(*moved.shape, a.shape[2])


@dataclass
class Picture:
    """An image as float32 (C, H, W) in [0, 1] (C = 1 or 3) and the bit depth of its file (8 or 16)."""

    pixels: np.ndarray
    bits: int


def read_picture(path: str | os.PathLike, named: bool = False) -> Picture:
    """An opaque 8- or 16-bit grayscale or RGB image (any PIL format; 16-bit PNGs included), upright."""
    a, white, img = _pixels(path, named)
    if a.shape[2] in (2, 4):
        if a[..., -1].min() < white:
            raise DipError(path, f"has transparency (mode {img.mode}); give an opaque image")
        a = a[..., :-1]
    f = a.astype(np.float32) / float(white)  # 8-bit: the same numbers as ever (x / 255 in float32)
    return Picture(np.ascontiguousarray(f.transpose(2, 0, 1)), 16 if white == 65535 else 8)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An 8- or 16-bit grayscale or RGB image as float32 in [0, 1], shaped (C, H, W) with C = 1 or 3."""
    return read_picture(path).pixels


def read_mask(path: str | os.PathLike, shape: tuple[int, int], threshold: float | None = None,
              threshold_flag: str | None = None) -> np.ndarray:
    """A mask as bool (H, W), True = known, checked against the image size.

    White (255, 65535, or 1 in a 0/1 mask) = known, black (0) = missing, in any mode whose colour channels
    agree; an alpha channel that is not fully opaque is the mask itself (transparent = missing) and the colours
    are ignored. A mask with intermediate values (lossy: JPEG, soft edges) is refused unless ``threshold`` is
    given (0-255 scale: values >= threshold are known); ``threshold_flag`` is the option the refusal names
    (None: the caller has none).
    """
    a, white, img = _pixels(path)
    if a.shape[:2] != tuple(shape):
        raise DipError(path, f"mask is {a.shape[1]}x{a.shape[0]} but the image is {shape[1]}x{shape[0]}")
    alpha = a.shape[2] in (2, 4) and a[..., -1].min() < white
    values = a[..., -1:] if alpha else a[..., :3] if a.shape[2] >= 3 else a[..., :1]
    cut = None if threshold is None else threshold * (257 if white == 65535 else 1)
    if values.shape[2] == 3:
        check_channels_agree(path, values if cut is None else values >= cut, values)
    v = values[..., 0]
    found = set(np.unique(v).tolist())
    if found <= {0, white} or found <= {0, 1}:
        known = v > 0
    elif cut is not None:
        known = v >= cut
    else:
        bad = sorted(found - {0, 1, white})[:5]
        lossy = " (JPEG is lossy)" if img.format == "JPEG" else ""
        way = f"; {threshold_flag} T counts values >= T as known" if threshold_flag else ""
        raise DipError(path, f"mask is not binary (values other than 0/{white} or 0/1, e.g. {bad}){lossy}{way}")
    if not known.any():
        raise DipError(path, "mask has no known pixel (all zero)")
    return known


def to_uint8(a: np.ndarray) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W) or (H, W, 3) uint8, rounded."""
    u = np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)
    return u[0] if u.shape[0] == 1 else u.transpose(1, 2, 0)


def to_uint16(a: np.ndarray) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W) or (H, W, 3) uint16, rounded."""
    u = np.clip(np.rint(a * 65535.0), 0, 65535).astype(np.uint16)
    return u[0] if u.shape[0] == 1 else u.transpose(1, 2, 0)


def write_png(path: str | os.PathLike, a: np.ndarray, bits: int = 8) -> None:
    """Write a (C, H, W) float image or an (H, W[, 3]) uint8 image as PNG, atomically; ``bits=16`` writes a
    float image in 16 bits (grayscale through PIL, colour through pypng: PIL has no 16-bit colour mode)."""
    if bits == 16 and a.dtype != np.uint8:
        u = to_uint16(a)
        with AtomicPath(path) as tmp:
            if u.ndim == 2:
                Image.fromarray(u).save(tmp, format="PNG")
            else:
                png.from_array(u.reshape(u.shape[0], -1), "RGB;16").save(str(tmp))
        return
    u = a if a.dtype == np.uint8 else to_uint8(a)
    with AtomicPath(path) as tmp:
        Image.fromarray(u).save(tmp, format="PNG")


def as_chw(u8: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 3) uint8 -> (C, H, W) float64 in [0, 1]: an 8-bit file's values, as every PSNR of
    metrics.json is measured."""
    a = u8.astype(np.float64) / 255.0
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def check_channels_agree(path: object, sides: np.ndarray, values: np.ndarray) -> None:
    """A mask's colour channels must say the same (a red stroke would be a guess): one line naming the first
    pixel where ``sides`` (H, W, 3) disagree, with its ``values``."""
    differ = (sides != sides[..., :1]).any(axis=2)
    if differ.any():
        y, x = np.argwhere(differ)[0]
        raise DipError(path, f"mask's colour channels disagree at pixel x={x}, y={y} (values "
                             f"{tuple(values[y, x].tolist())}); paint it in black and white")
