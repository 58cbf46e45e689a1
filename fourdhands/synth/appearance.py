"""How a synthetic sequence looks: skin, light, background, object colours, and the
camera's imperfections (motion blur, sensor noise, JPEG compression).

Every sampler takes a ``numpy.random.Generator``; image operations are pure functions of
their inputs (and a generator where they draw noise).
"""

from __future__ import annotations

import importlib.util
import io
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.signal import fftconvolve

from ..render.renderer import Light

# Skin reflectances (linear-ish sRGB in [0, 1]) from very light to very dark, roughly
# the Fitzpatrick range; a tone is drawn along this ramp.
_SKIN_RAMP = np.array([
    [0.98, 0.85, 0.76], [0.95, 0.77, 0.65], [0.89, 0.68, 0.54], [0.80, 0.57, 0.43],
    [0.66, 0.45, 0.32], [0.50, 0.33, 0.23], [0.36, 0.23, 0.16], [0.25, 0.16, 0.11],
])
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def skin_tone(rng: np.random.Generator) -> np.ndarray:
    """An RGB skin colour `(3,)` in [0, 1]: a point on the light-to-dark ramp, with a
    little redness / yellowness jitter."""
    x = rng.uniform(0, len(_SKIN_RAMP) - 1)
    i = min(int(x), len(_SKIN_RAMP) - 2)
    tone = _SKIN_RAMP[i] + (x - i) * (_SKIN_RAMP[i + 1] - _SKIN_RAMP[i])
    return np.clip(tone * (1.0 + rng.normal(0.0, 0.04, 3)), 0.0, 1.0)


def hand_colors(rng: np.random.Generator) -> np.ndarray:
    """`(2, 3)` skin colours of the right and left hand: one person's (nearly the same
    tone, 80 %) or two people's."""
    first = skin_tone(rng)
    second = skin_tone(rng) if rng.uniform() < 0.2 else np.clip(first * (1 + rng.normal(0, 0.02, 3)), 0, 1)
    return np.stack([first, second])


def _towards_camera_side(rng: np.random.Generator, spread: float) -> tuple[float, float, float]:
    """A unit direction from the scene towards a light on the camera's side (-z),
    up to ``spread`` times as far off-axis as along it."""
    d = np.r_[rng.uniform(-spread, spread, 2), -1.0]
    return tuple(float(x) for x in d / np.linalg.norm(d))


def sample_lighting(rng: np.random.Generator) -> Light:
    """A key light from somewhere on the camera's side (within ~60 degrees of the
    optical axis), a fill from elsewhere, dim to bright, with some ambient and shine."""
    return Light(direction=_towards_camera_side(rng, 1.2), fill_direction=_towards_camera_side(rng, 3.0),
                 ambient=float(rng.uniform(0.15, 0.45)), key=float(rng.uniform(0.4, 0.85)),
                 fill=float(rng.uniform(0.0, 0.35)), specular=float(rng.uniform(0.0, 0.3)),
                 shininess=float(rng.uniform(8.0, 40.0)))


def random_color(rng: np.random.Generator) -> np.ndarray:
    """A colour `(3,)` in [0, 1] of random hue, saturation and brightness."""
    hsv = np.array([[[rng.uniform(), rng.uniform(0.05, 0.9), rng.uniform(0.15, 0.95)]]])
    return np.asarray(Image.fromarray((hsv * 255).astype(np.uint8), "HSV").convert("RGB"), float)[0, 0] / 255


# ---------------------------------------------------------------- backgrounds

def value_noise(rng: np.random.Generator, size: tuple[int, int], cells: float, octaves: int = 4) -> np.ndarray:
    """Fractal value noise `(H, W)` in [0, 1]: random lattices, bicubically upsampled,
    each octave twice as fine and half as strong. ``size`` is ``(W, H)``; ``cells``
    lattice cells across the first octave's longer side."""
    w, h = size
    out = np.zeros((h, w))
    amplitude, total = 1.0, 0.0
    for octave in range(octaves):
        n = max(2, int(round(cells * 2 ** octave)))
        grid = rng.uniform(0.0, 1.0, (max(2, round(n * h / max(w, h))) + 1, max(2, round(n * w / max(w, h))) + 1))
        layer = Image.fromarray(grid.astype(np.float32), "F").resize((w, h), Image.BICUBIC)
        out += amplitude * np.asarray(layer, float)
        total += amplitude
        amplitude *= 0.5
    out /= total
    lo, hi = out.min(), out.max()
    return (out - lo) / max(hi - lo, 1e-9)


def _palette(rng: np.random.Generator, field: np.ndarray, count: int) -> np.ndarray:
    """Map a field `(H, W)` in [0, 1] through a ramp of ``count`` random colours: `(H, W, 3)`."""
    colors = np.stack([random_color(rng) for _ in range(count)])
    x = field * (count - 1)
    i = np.minimum(x.astype(np.int64), count - 2)
    f = (x - i)[..., None]
    return colors[i] * (1 - f) + colors[i + 1] * f


def _coords(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    w, h = size
    return np.meshgrid((np.arange(w) + 0.5) / max(w, h), (np.arange(h) + 0.5) / max(w, h))


def _gradient(rng, size):
    x, y = _coords(size)
    if rng.uniform() < 0.5:
        a = rng.uniform(0, 2 * np.pi)
        field = x * np.cos(a) + y * np.sin(a)
    else:
        cx, cy = rng.uniform(0, 1, 2)
        field = np.hypot(x - cx, y - cy)
    return _palette(rng, (field - field.min()) / max(np.ptp(field), 1e-9), int(rng.integers(2, 4)))


def _stripes(rng, size):
    x, y = _coords(size)
    a = rng.uniform(0, np.pi)
    phase = (x * np.cos(a) + y * np.sin(a)) * rng.uniform(3, 25)
    wave = np.sin(2 * np.pi * phase)
    field = (wave > 0).astype(float) if rng.uniform() < 0.5 else 0.5 + 0.5 * wave
    return _palette(rng, field, 2)


def _checker(rng, size):
    x, y = _coords(size)
    a = rng.uniform(0, np.pi / 2)
    n = rng.uniform(3, 16)
    u, v = x * np.cos(a) + y * np.sin(a), -x * np.sin(a) + y * np.cos(a)
    return _palette(rng, ((np.floor(u * n) + np.floor(v * n)) % 2).astype(float), 2)


def _noise(rng, size):
    return _palette(rng, value_noise(rng, size, rng.uniform(2, 12)), int(rng.integers(2, 5)))


_PATTERNS = (_gradient, _stripes, _checker, _noise)


def procedural_background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A textured background `(H, W, 3)` uint8 for an image of ``size = (W, H)``: a
    gradient, stripes, a checkerboard or value noise, often with a second pattern or
    fine noise laid over it."""
    image = _PATTERNS[rng.integers(len(_PATTERNS))](rng, size)
    if rng.uniform() < 0.5:
        other = _PATTERNS[rng.integers(len(_PATTERNS))](rng, size)
        mix = value_noise(rng, size, rng.uniform(1, 4))[..., None] * rng.uniform(0.2, 0.8)
        image = image * (1 - mix) + other * mix
    if rng.uniform() < 0.5:  # fine texture (fabric, wood grain, paper)
        image *= 1 + rng.uniform(0.05, 0.25) * (value_noise(rng, size, rng.uniform(20, 60), 2)[..., None] - 0.5)
    return np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)


#: Photographs bundled in the scikit-image wheel (``skimage/data``) that may serve as
#: backgrounds: each is public domain or CC0 by its docstring in ``skimage.data`` (astronaut:
#: NASA, public domain; chelsea, coffee: CC0 by the photographers; rocket: SpaceX, public
#: domain; brick, grass, gravel: CC0Textures; coins: no known copyright restrictions).
#: Left out: ``camera`` (a man's hands on a camera would be unlabelled hands), the stereo
#: motorcycle (research licence), and the microscopy / astronomy / text images.
SCIKIT_IMAGE_PHOTOS = ("astronaut.png", "brick.png", "chelsea.png", "coffee.png", "coins.png",
                       "grass.png", "gravel.png", "rocket.jpg")
BUNDLED = "scikit-image"  # the name that selects them where a backgrounds folder is asked for


def scikit_image_photos() -> list[Path]:
    """The paths of :data:`SCIKIT_IMAGE_PHOTOS` inside the installed scikit-image (found
    without importing it). Raises LookupError when scikit-image is not installed."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise LookupError("scikit-image is not installed (pip install scikit-image)")
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    missing = [n for n in SCIKIT_IMAGE_PHOTOS if not (data / n).is_file()]
    if missing:
        raise LookupError(f"this scikit-image has no {missing[0]} in {data}")
    return [data / n for n in SCIKIT_IMAGE_PHOTOS]


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name (the order seeds rely on)."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def photo_background(rng: np.random.Generator, path: Path, size: tuple[int, int]) -> np.ndarray:
    """A random crop of a user image (30-100 % of its shorter side, any place, mirrored
    half the time), resized to ``size = (W, H)``: `(H, W, 3)` uint8."""
    w, h = size
    with Image.open(path) as im:
        im = im.convert("RGB")
        scale = rng.uniform(0.3, 1.0) * min(im.width / w, im.height / h)
        cw, ch = max(1.0, w * scale), max(1.0, h * scale)
        x0, y0 = rng.uniform(0, im.width - cw), rng.uniform(0, im.height - ch)
        crop = im.resize((w, h), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
    out = np.asarray(crop)
    return out[:, ::-1].copy() if rng.uniform() < 0.5 else out


def sample_background(rng: np.random.Generator, size: tuple[int, int], photos: list[Path] | None = None) -> np.ndarray:
    """A user photo (when given, 70 % of the time) or a procedural texture: `(H, W, 3)` uint8."""
    if photos and rng.uniform() < 0.7:
        return photo_background(rng, photos[rng.integers(len(photos))], size)
    return procedural_background(rng, size)


# ---------------------------------------------------------------- camera effects

def line_kernel(shift: np.ndarray) -> np.ndarray:
    """A normalised motion-blur kernel `(k, k)` along the pixel vector ``shift (2,)``
    (dx, dy): a line of that length centred on the kernel, anti-aliased by
    supersampling."""
    length = float(np.hypot(*shift))
    half = int(np.ceil(length / 2)) + 1
    k = np.zeros((2 * half + 1, 2 * half + 1))
    steps = max(int(np.ceil(length * 4)), 1)
    for s in np.linspace(-0.5, 0.5, steps):
        x, y = half + s * shift[0], half + s * shift[1]
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        k[y0, x0] += (1 - fx) * (1 - fy)
        k[y0, x0 + 1] += fx * (1 - fy)
        k[y0 + 1, x0] += (1 - fx) * fy
        k[y0 + 1, x0 + 1] += fx * fy
    return k / k.sum()


def motion_blur(image: np.ndarray, mask: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Smear the pixels under ``mask`` (a moving object) along ``shift`` (pixels moved
    while the shutter was open), over the rest of the image: `(H, W, 3)` uint8.

    Layer compositing: the object's colour times its mask and the mask itself are both
    blurred; the blurred object covers the frame by its blurred mask. Only the box
    around the mask (plus the kernel) is touched.
    """
    if not mask.any() or np.hypot(*shift) < 0.5:
        return image
    kernel = line_kernel(shift)
    pad = kernel.shape[0]
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    r0, r1 = max(rows[0] - pad, 0), min(rows[-1] + pad + 1, mask.shape[0])
    c0, c1 = max(cols[0] - pad, 0), min(cols[-1] + pad + 1, mask.shape[1])
    region = image[r0:r1, c0:c1].astype(float)
    alpha = mask[r0:r1, c0:c1].astype(float)
    # FFT convolution: long smears of big objects cost no more than short ones
    blurred_alpha = np.clip(fftconvolve(alpha, kernel, mode="same"), 0.0, 1.0)[..., None]
    blurred = fftconvolve(region * alpha[..., None], kernel[..., None], mode="same", axes=(0, 1))
    out = image.copy()
    out[r0:r1, c0:c1] = np.clip(blurred + (1 - blurred_alpha) * region + 0.5, 0, 255).astype(np.uint8)
    return out


_TRIANGULAR_STD = np.sqrt(2 * (256**2 - 1) / 12)  # of the sum of two uniform random bytes


def sensor_noise(rng: np.random.Generator, image: np.ndarray, read: float, shot: float) -> np.ndarray:
    """Add sensor noise: read noise of standard deviation ``read`` (8-bit levels) plus
    shot noise whose variance grows with brightness (``shot`` levels at full white):
    `(H, W, 3)` uint8.

    Made for speed, it is a frame's largest cost after rendering: the noise is
    triangular (the sum of two uniform random bytes, straight from the bit generator)
    rather than Gaussian, and is scaled in 8.8 fixed point by a per-level table.
    """
    level = np.arange(256)
    scale = np.round(np.sqrt(read * read + shot * shot * level / 255.0) / _TRIANGULAR_STD * 256)
    # the product of a (-255..255) draw and the scale must fit the integer type
    dtype = np.int16 if scale.max() * 255 < np.iinfo(np.int16).max else np.int32
    raw = rng.bit_generator.random_raw(-(-2 * image.size // 8)).view(np.uint8)[:2 * image.size]
    raw = raw.reshape(2, *image.shape)
    noise = raw[0].astype(dtype)
    noise += raw[1]
    noise -= 255
    noise *= scale.astype(dtype)[image]
    noise += 128  # round the 8.8 fixed point
    noise >>= 8
    noise += image
    return np.clip(noise, 0, 255, out=noise).astype(np.uint8)


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of an `(H, W, 3)` uint8 image (baseline, 4:2:0)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality))
    return buffer.getvalue()


def decode_jpeg(data: bytes) -> np.ndarray:
    """`(H, W, 3)` uint8 from JPEG (or any PIL-readable) bytes."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


@dataclass
class Look:
    """The appearance of one sequence.

    Attributes:
        skin: `(2, 3)` RGB in [0, 1], right and left hand.
        lighting: the light (:class:`fourdhands.render.renderer.Light`).
        background: `(H, W, 3)` uint8.
        blur_chance: per frame, the chance of motion blur.
        exposure: share of the frame interval the shutter stays open (blur length).
        read_noise, shot_noise: sensor noise levels (8-bit units).
        jpeg_quality: 1-95.
    """

    skin: np.ndarray
    lighting: Light
    background: np.ndarray
    blur_chance: float
    exposure: float
    read_noise: float
    shot_noise: float
    jpeg_quality: int

    def meta(self) -> dict:
        """A JSON-ready description (without the background pixels)."""
        return {
            "skin_rgb": np.round(self.skin, 4).tolist(),
            "lighting": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self.lighting).items()},
            "blur_chance": round(self.blur_chance, 4),
            "exposure": round(self.exposure, 4),
            "read_noise": round(self.read_noise, 4),
            "shot_noise": round(self.shot_noise, 4),
            "jpeg_quality": self.jpeg_quality,
        }


def sample_look(rng: np.random.Generator, size: tuple[int, int], photos: list[Path] | None = None) -> Look:
    """Draw a sequence's appearance for images of ``size = (W, H)``."""
    return Look(
        skin=hand_colors(rng),
        lighting=sample_lighting(rng),
        background=sample_background(rng, size, photos),
        blur_chance=float(rng.choice([0.0, 0.3, 1.0], p=[0.4, 0.3, 0.3])),
        exposure=float(rng.uniform(0.2, 1.0)),
        read_noise=float(rng.uniform(0.0, 4.0)),
        shot_noise=float(rng.uniform(0.0, 6.0)),
        jpeg_quality=int(rng.integers(55, 96)),
    )
