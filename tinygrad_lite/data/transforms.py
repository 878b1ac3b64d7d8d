"""Transforms of images and labels: scaling to floats, one-hot labels, random shifts and rotations."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["to_float", "one_hot", "augment", "shift_rotate"]

RNG = np.random.Generator | int | None


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 images ``(n, ...)`` → float32 ``(n, prod(...))`` scaled to ``[0, 1]``."""
    images = np.asarray(images)
    return (images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0))


def one_hot(y: np.ndarray, num_classes: int, dtype=np.float32) -> np.ndarray:
    """Integer labels ``(n,)`` → one-hot rows ``(n, num_classes)``."""
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"one_hot expects 1-D integer labels, got {y.dtype} {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must be in 0..{num_classes - 1}, found {y.min()}..{y.max()}")
    return np.eye(num_classes, dtype=dtype)[y]


_AUGMENT_CHUNK = 1024  # images per vectorised step: ~40 MiB of temporaries for 28x28


def augment(images: np.ndarray, rng: RNG = None, max_shift: int = 2, max_rotation: float = 10.0, *,
            fill: float = 0.0) -> np.ndarray:
    """Randomly shift (whole pixels, up to ``max_shift``) and rotate (up to ``max_rotation``°) each image.

    ``images`` is ``(n, H, W)`` or flat ``(n, H*W)`` with square images; the result has the
    same shape and dtype (see ``shift_rotate``). Shifts are uniform integers in
    ``[-max_shift, max_shift]``, angles uniform in ``[-max_rotation, max_rotation]``.
    """
    if not all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
               and 0 <= v < math.inf for v in (max_shift, max_rotation)):  # NaN fails the comparison
        raise ValueError(f"max_shift and max_rotation must be finite numbers >= 0, got {max_shift!r}, "
                         f"{max_rotation!r}")
    gen = np.random.default_rng(rng)
    n = len(images)
    shifts = gen.integers(-int(max_shift), int(max_shift) + 1, size=(n, 2))
    angles = gen.uniform(-max_rotation, max_rotation, size=n)
    return shift_rotate(images, shifts, angles, fill=fill)


def shift_rotate(images: np.ndarray, shifts: np.ndarray, angles: np.ndarray, *, fill: float = 0.0) -> np.ndarray:
    """Move each image by ``shifts[i] = (dy, dx)`` pixels and turn it by ``angles[i]`` degrees.

    Output pixel ``p`` is the bilinear sample of the input at ``R(-θ)(p - c - s) + c`` (``c``
    the image centre): content moves down ``dy`` and right ``dx``, and turns about the centre
    by ``θ`` (positive is counter-clockwise on screen); pixels from outside read ``fill``.
    Zero shift and angle give the input back exactly. ``images`` is ``(n, H, W)`` or flat
    ``(n, H*W)`` (square); same shape and dtype out, integer images rounded back.
    Vectorised over the batch (gathers with fancy indexing, in chunks to bound memory).
    """
    images = np.asarray(images)
    if images.ndim == 2:
        side = math.isqrt(images.shape[1])
        if side * side != images.shape[1]:
            raise ValueError(f"flat images need a square number of pixels, got {images.shape[1]}")
        hw = (side, side)
    elif images.ndim == 3:
        hw = images.shape[1:]
    else:
        raise ValueError(f"expected (n, H, W) or (n, H*W) images, got shape {images.shape}")
    if images.dtype.kind not in "iuf":
        raise ValueError(f"expected integer or float images, got {images.dtype}")
    n = len(images)
    shifts = np.asarray(shifts, dtype=np.float64)
    angles = np.deg2rad(np.asarray(angles, dtype=np.float64))
    if shifts.shape != (n, 2) or angles.shape != (n,):
        raise ValueError(f"need shifts ({n}, 2) and angles ({n},), got {shifts.shape} and {angles.shape}")
    for name, a in (("shifts", shifts), ("angles", angles)):
        if not np.isfinite(a).all():
            i = int(np.flatnonzero(~np.isfinite(a.reshape(n, -1)).all(axis=1))[0])
            raise ValueError(f"{name} must be finite; image {i} has {name} {a[i].tolist()}")
    src = images.reshape(n, *hw)
    out = np.empty(src.shape, dtype=np.float64 if src.dtype.kind in "iu" else src.dtype)
    for s in range(0, n, _AUGMENT_CHUNK):
        sl = slice(s, s + _AUGMENT_CHUNK)
        out[sl] = _warp(src[sl], shifts[sl], angles[sl], fill)
    if n:
        lo, hi = min(float(src.min()), fill), max(float(src.max()), fill)
        np.clip(out, lo, hi, out=out)  # bilinear weights sum to 1 only up to rounding
    if images.dtype.kind in "iu":
        out = np.rint(out).astype(images.dtype)
    return out.reshape(images.shape)


def _warp(img: np.ndarray, shifts: np.ndarray, angles: np.ndarray, fill: float) -> np.ndarray:
    """Bilinear inverse-map warp of a batch ``(m, H, W)``, angles in radians; see ``shift_rotate``."""
    m, h, w = img.shape
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    cos, sin = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    dy = rows[None] - cy - shifts[:, 0, None, None]
    dx = cols[None] - cx - shifts[:, 1, None, None]
    sr = cos * dy + sin * dx + cy  # R(-θ) applied to (dy, dx)
    sc = -sin * dy + cos * dx + cx
    r0, c0 = np.floor(sr), np.floor(sc)
    wr, wc = sr - r0, sc - c0
    # pad by one pixel of `fill`, and clamp indices into the padded frame: anything outside reads fill
    padded = np.full((m, h + 2, w + 2), fill, dtype=np.float64)
    padded[:, 1:-1, 1:-1] = img
    flat = padded.reshape(-1)
    base = (np.arange(m) * (h + 2) * (w + 2))[:, None, None]
    r0i = np.clip(r0, -1, h).astype(np.intp) + 1
    r1i = np.clip(r0 + 1, -1, h).astype(np.intp) + 1
    c0i = np.clip(c0, -1, w).astype(np.intp) + 1
    c1i = np.clip(c0 + 1, -1, w).astype(np.intp) + 1
    top = flat[base + r0i * (w + 2) + c0i] * (1 - wc) + flat[base + r0i * (w + 2) + c1i] * wc
    bottom = flat[base + r1i * (w + 2) + c0i] * (1 - wc) + flat[base + r1i * (w + 2) + c1i] * wc
    return top * (1 - wr) + bottom * wr
