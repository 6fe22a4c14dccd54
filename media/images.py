"""Photo intake: identify, bound, decode, read evidence metadata, render public derivatives.

Every uploaded file is hostile until decoded. Only four formats are ever tried (by content, never by
name or declared type), the pixel count is bounded from the header before any pixel is allocated, and
the whole image is decoded before it is accepted. The public derivatives are fresh JPEG encodes of
the decoded pixels: no EXIF, XMP, ICC, comment or trailing bytes of the upload survive.

All functions here are synchronous and CPU-bound (Pillow releases the GIL while decoding, resizing
and encoding): call them from a worker thread with a concurrency cap, never on the event loop.
"""

from __future__ import annotations

import io
import math
import re
import struct
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from os import PathLike
from typing import Any, BinaryIO, TypeVar

import pillow_heif
from PIL import ExifTags, Image, ImageFile

from kernel.errors import DomainError, ErrorCode

DEFAULT_MAX_PIXELS = 50_000_000  # a 48 MP phone photo (8064x6048) still fits
DEFAULT_SIZES: Mapping[str, int] = {"display": 1600, "thumb": 320}
JPEG_QUALITY = 82

# HEIF is registered under this name; libheif's security limits stay on (the default). Depth and
# auxiliary images are never used, so libheif is not asked to expose them.
pillow_heif.register_heif_opener(depth_images=False, aux_images=False)
# Pillow only warns between MAX_IMAGE_PIXELS and twice that; a bomb must always be a refusal.
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)

# Format -> (content type, file extension). MPO is how Pillow opens a JPEG that carries extra
# pictures (stereo pair, depth map); its first picture is an ordinary JPEG.
_FORMATS: Mapping[str, tuple[str, str]] = {
    "JPEG": ("image/jpeg", "jpg"),
    "MPO": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
    "HEIF": ("image/heic", "heic"),
}
_ALLOWED_DECODERS = ["JPEG", "PNG", "WEBP", "HEIF"]
# Formats whose extra frames are auxiliary pictures, not an animation: only the primary is decoded.
_PRIMARY_IMAGE_FORMATS = frozenset({"MPO", "HEIF"})

# What Pillow and its plugins raise for bytes they cannot parse or decode.
_PARSE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, struct.error)

# EXIF orientation -> the transpose that makes the stored pixels upright (as ImageOps.exif_transpose).
_UPRIGHT: Mapping[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_QUARTER_TURNS = frozenset({5, 6, 7, 8})  # orientations that swap width and height
# Bicubic is Pillow's thumbnail default; next to Lanczos it saves about a fifth of the pipeline and
# looks the same at these (>= 1.25x) reductions. reducing_gap=2 box-averages first for the thumbnail.
_RESAMPLE = Image.Resampling.BICUBIC
_SIXTEEN_BIT_GREY = frozenset({"I;16", "I;16L", "I;16B", "I"})
_UTC_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})")
_MAX_TEXT = 64

StrPath = str | PathLike[str]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What the header says about an accepted upload. Width and height are as stored (before EXIF
    orientation); HEIF is already upright because libheif applies its own transformations."""

    format: str
    content_type: str
    extension: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class EvidenceMetadata:
    """Restricted evidence read from EXIF. Easy to forge: a hint for reviewers, never proof.

    `captured_at` is timezone-aware when the camera recorded OffsetTimeOriginal; otherwise it is
    naive: the camera's wall-clock time in an unknown zone.
    """

    latitude: float | None = None
    longitude: float | None = None
    captured_at: datetime | None = None
    camera_make: str | None = None
    camera_model: str | None = None

    @property
    def captured_at_has_offset(self) -> bool:
        return self.captured_at is not None and self.captured_at.tzinfo is not None


@dataclass(frozen=True, slots=True)
class DerivativeBytes:
    """A public rendition: upright, metadata-free JPEG bytes."""

    width: int
    height: int
    data: bytes
    content_type: str = "image/jpeg"
    extension: str = "jpg"


@dataclass(frozen=True, slots=True)
class ProcessedPhoto:
    info: ImageInfo
    metadata: EvidenceMetadata
    derivatives: dict[str, DerivativeBytes]
    upright_size: tuple[int, int]  # (width, height) as shown: after the EXIF orientation


def inspect_image(path: StrPath, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Identify the upload from its header alone; cheap, decodes no pixels.

    Raises DomainError UNSUPPORTED_FORMAT (not one of JPEG/PNG/WebP/HEIF, or animated) or
    TOO_MANY_PIXELS. A truncated body is only found by `make_derivatives` / `process_photo`.
    """
    with open(path, "rb") as fp, _open(fp) as im:
        return _check(im, max_pixels)


def make_derivatives(
    path: StrPath, sizes: Mapping[str, int] = DEFAULT_SIZES, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> dict[str, DerivativeBytes]:
    """Render the named JPEG derivatives, each fitted inside a square of its size; never upscaled.

    Raises DomainError UNSUPPORTED_FORMAT, TOO_MANY_PIXELS or CORRUPT (the full decode failed).
    """
    return process_photo(path, max_pixels=max_pixels, sizes=sizes).derivatives


def process_photo(
    path: StrPath, *, max_pixels: int = DEFAULT_MAX_PIXELS, sizes: Mapping[str, int] = DEFAULT_SIZES
) -> ProcessedPhoto:
    """Everything intake needs from one uploaded file, in one pass and one thread hop.

    Raises DomainError UNSUPPORTED_FORMAT, TOO_MANY_PIXELS or CORRUPT. Unreadable metadata is not an
    error: the photo is accepted without it.
    """
    _check_sizes(sizes)
    with open(path, "rb") as fp, _open(fp) as im:
        info = _check(im, max_pixels)
        largest = _fitted((info.width, info.height), max(sizes.values()))
        pixels = _decode(im, largest)
        exif = _read_exif(im)
        orientation = _orientation(exif)
        derivatives = _render(pixels, orientation, sizes)
        upright = (info.height, info.width) if orientation in _QUARTER_TURNS else (info.width, info.height)
        return ProcessedPhoto(info, _evidence(exif), derivatives, upright)


# --- identification and bounds ------------------------------------------------------------------


def _open(fp: BinaryIO) -> Image.Image:
    try:
        return Image.open(fp, formats=_ALLOWED_DECODERS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_many_pixels() from exc
    except _PARSE_ERRORS as exc:
        raise DomainError(
            ErrorCode.UNSUPPORTED_FORMAT, "The file is not a JPEG, PNG, WebP or HEIC image."
        ) from exc
    except Warning as exc:
        # Pillow only warns about e.g. corrupt EXIF; a host running with warnings as errors gets a
        # clean refusal instead of an unexpected exception.
        raise DomainError(ErrorCode.CORRUPT, "The image metadata is corrupt.") from exc


def _check(im: Image.Image, max_pixels: int) -> ImageInfo:
    width, height = im.size
    if width * height > max_pixels:
        raise _too_many_pixels()
    if im.format not in _PRIMARY_IMAGE_FORMATS and getattr(im, "n_frames", 1) > 1:
        raise DomainError(ErrorCode.UNSUPPORTED_FORMAT, "Animated or multi-frame images are not accepted.")
    content_type, extension = _FORMATS[str(im.format)]
    return ImageInfo(str(im.format), content_type, extension, width, height)


def _too_many_pixels() -> DomainError:
    return DomainError(ErrorCode.TOO_MANY_PIXELS, "The image has too many pixels.")


def _check_sizes(sizes: Mapping[str, int]) -> None:
    if not sizes or any(size < 1 for size in sizes.values()):
        raise ValueError(f"derivative sizes must be positive: {dict(sizes)}")


# --- decoding and rendering ---------------------------------------------------------------------


def _fitted(size: tuple[int, int], longest: int) -> tuple[int, int]:
    """The size that fits inside longest x longest with the same aspect ratio; never larger."""
    width, height = size
    scale = min(1.0, longest / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _decode(im: Image.Image, target: tuple[int, int]) -> Image.Image:
    """Decode every pixel (a truncated or corrupt file fails here) and return RGB resized to
    `target`, still in stored orientation.

    For JPEG, libjpeg scales the DCT by 1/2, 1/4 or 1/8 while decoding: asked with the
    aspect-fitted size (not a square box, which would not reduce a 4:3 photo) it roughly halves
    the time and memory. Only JPEG is drafted: a HEIF "draft" would show its embedded thumbnail,
    which need not be the picture the evidence original holds.
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # Process-wide Pillow switch: with it on, a truncated upload would decode "successfully".
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must stay False for photo intake")
    box = None
    if im.format in ("JPEG", "MPO"):
        drafted = im.draft("RGB", target)
        box = drafted[1] if drafted else None
    try:
        im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_many_pixels() from exc
    except (*_PARSE_ERRORS, RuntimeError) as exc:
        raise DomainError(ErrorCode.CORRUPT, "The image is truncated or corrupt.") from exc
    rgb = _to_rgb(im)
    if rgb.size == target and box is None:
        return rgb.copy() if rgb is im else rgb
    return rgb.resize(target, _RESAMPLE, box=box)


def _to_rgb(im: Image.Image) -> Image.Image:
    """JPEG has no alpha, palette or 16-bit: flatten transparency onto white, scale 16-bit grey."""
    if im.mode in _SIXTEEN_BIT_GREY:
        # Pillow's I -> L conversion clips at 255 instead of scaling 0..65535 down.
        im = im.convert("I").point(lambda value: value / 256).convert("L")
    if im.has_transparency_data:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im if im.mode == "RGB" else im.convert("RGB")


def _render(pixels: Image.Image, orientation: int, sizes: Mapping[str, int]) -> dict[str, DerivativeBytes]:
    """Rotate the already-small image (cheap), then derive each smaller size from the previous one."""
    ordered = sorted(sizes.items(), key=lambda item: item[1], reverse=True)
    transpose = _UPRIGHT.get(orientation)
    current = pixels.transpose(transpose) if transpose is not None else pixels
    derivatives = {}
    for name, longest in ordered:
        target = _fitted(current.size, longest)
        if target != current.size:
            current = current.resize(target, _RESAMPLE, reducing_gap=2.0)
        derivatives[name] = _encode(current)
    return derivatives


def _encode(im: Image.Image) -> DerivativeBytes:
    # `im` is always a rendition this module created; dropping its info keeps Pillow from copying
    # anything (e.g. a JPEG comment) from the upload into the output.
    im.info.clear()
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=False)
    return DerivativeBytes(im.width, im.height, buffer.getvalue())


# --- evidence metadata (best effort: malformed EXIF means "no metadata", never a failure) ------


def _read_exif(im: Image.Image) -> Image.Exif:
    try:
        return im.getexif()
    # Pillow's EXIF parser can raise nearly anything on crafted offsets and counts.
    except Exception:
        return Image.Exif()


def _orientation(exif: Image.Exif) -> int:
    value = _field(lambda: exif.get(ExifTags.Base.Orientation))
    return value if isinstance(value, int) else 1


def _evidence(exif: Image.Exif) -> EvidenceMetadata:
    gps = _field(lambda: _gps(exif.get_ifd(ExifTags.IFD.GPSInfo)))
    return EvidenceMetadata(
        latitude=gps[0] if gps else None,
        longitude=gps[1] if gps else None,
        captured_at=_field(lambda: _captured_at(exif.get_ifd(ExifTags.IFD.Exif))),
        camera_make=_field(lambda: _text(exif.get(ExifTags.Base.Make))),
        camera_model=_field(lambda: _text(exif.get(ExifTags.Base.Model))),
    )


def _field(read: Callable[[], T]) -> T | None:
    """One metadata field; a malformed one is dropped without losing the others."""
    try:
        return read()
    except Exception:
        return None


def _gps(gps: Mapping[int, Any]) -> tuple[float, float] | None:
    latitude = _degrees(gps.get(ExifTags.GPS.GPSLatitude), gps.get(ExifTags.GPS.GPSLatitudeRef), "N", "S", 90)
    longitude = _degrees(
        gps.get(ExifTags.GPS.GPSLongitude), gps.get(ExifTags.GPS.GPSLongitudeRef), "E", "W", 180
    )
    if latitude is None or longitude is None:
        return None
    if latitude == 0 and longitude == 0:
        return None  # cameras write zeros when they have no fix
    return latitude, longitude


def _degrees(value: Any, ref: Any, positive: str, negative: str, limit: float) -> float | None:
    """Degrees, minutes, seconds (rationals) plus a hemisphere letter -> signed decimal degrees.

    Without a hemisphere the sign is unknown, and a mirrored position is worse than none.
    """
    hemisphere = (_text(ref) or "").upper()
    if hemisphere not in (positive, negative):
        return None
    parts = value if isinstance(value, tuple) else (value,)
    if not 1 <= len(parts) <= 3:
        return None
    numbers = [float(part) for part in parts]  # a zero denominator gives NaN
    if not all(math.isfinite(number) and number >= 0 for number in numbers):
        return None
    degrees = sum(number / 60**index for index, number in enumerate(numbers))
    if degrees > limit:
        return None
    return round(-degrees if hemisphere == negative else degrees, 7)  # 1e-7 degree is about 1 cm


def _captured_at(exif_ifd: Mapping[int, Any]) -> datetime | None:
    raw = _text(exif_ifd.get(ExifTags.Base.DateTimeOriginal))
    if raw is None:
        return None
    try:
        taken = datetime.strptime(raw, "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None  # includes the "0000:00:00 00:00:00" placeholder
    offset = _utc_offset(_text(exif_ifd.get(ExifTags.Base.OffsetTimeOriginal)))
    return taken if offset is None else taken.replace(tzinfo=offset)


def _utc_offset(raw: str | None) -> timezone | None:
    match = _UTC_OFFSET.fullmatch(raw or "")
    if match is None:
        return None
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if delta > timedelta(hours=14) or int(minutes) >= 60:
        return None
    return timezone(-delta if sign == "-" else delta)


def _text(value: Any) -> str | None:
    """An EXIF ASCII field as clean, bounded text: NULs, padding and control characters removed."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        return None
    cleaned = "".join(char for char in value if char.isprintable()).strip()
    return cleaned[:_MAX_TEXT] or None
