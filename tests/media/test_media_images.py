"""Photo intake against hostile and awkward files, all generated here (no binary fixtures)."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import ExifTags, Image, ImageFile
from PIL.JpegImagePlugin import JpegImageFile
from PIL.TiffImagePlugin import IFDRational

from kernel.errors import DomainError, ErrorCode
from media.images import DEFAULT_MAX_PIXELS, inspect_image, make_derivatives, process_photo

SHANGHAI_GPS: dict[int, object] = {
    ExifTags.GPS.GPSLatitudeRef: "N",
    ExifTags.GPS.GPSLatitude: (IFDRational(31, 1), IFDRational(13, 1), IFDRational(4944, 100)),
    ExifTags.GPS.GPSLongitudeRef: "E",
    ExifTags.GPS.GPSLongitude: (IFDRational(121, 1), IFDRational(28, 1), IFDRational(2532, 100)),
}


def exif_bytes(
    *,
    gps: dict[int, object] | None = None,
    orientation: int | None = None,
    taken: dict[int, str] | None = None,
) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "RiverCam"
    exif[ExifTags.Base.Model] = "RC-1\x00"
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    if gps is not None:
        exif[ExifTags.IFD.GPSInfo] = gps
    if taken is not None:
        exif[ExifTags.IFD.Exif] = taken
    return exif.tobytes()


def save(path: Path, image: Image.Image, fmt: str = "JPEG", **params: object) -> Path:
    image.save(path, fmt, **params)
    return path


def refusal(path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ErrorCode:
    with pytest.raises(DomainError) as caught:
        process_photo(path, max_pixels=max_pixels)
    return caught.value.code


def rgb(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    pixel = image.getpixel(xy)
    assert isinstance(pixel, tuple), pixel
    return pixel


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims any size: a decompression bomb costs nothing to make."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content", [b"", b"\xff", b"Hello, this is not a photo.\n", b"%PDF-1.7\n%\xe2\xe3\n"]
)
def test_non_images_are_unsupported_whatever_their_name(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    assert refusal(path) is ErrorCode.UNSUPPORTED_FORMAT


def test_a_gif_is_unsupported_even_though_pillow_could_decode_it(tmp_path: Path) -> None:
    path = save(tmp_path / "photo.jpg", Image.new("P", (8, 8)), "GIF")
    assert refusal(path) is ErrorCode.UNSUPPORTED_FORMAT


@pytest.mark.parametrize(
    ("width", "height"),
    [(20000, 20000), (10000, 10000), (8000, 7000)],
    ids=["pillow-bomb-error", "pillow-bomb-warning", "own-limit"],
)
def test_a_png_header_claiming_too_many_pixels_is_refused_before_decoding(
    tmp_path: Path, width: int, height: int
) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header(width, height))
    assert path.stat().st_size < 100
    with pytest.raises(DomainError) as caught:
        inspect_image(path)
    assert caught.value.code is ErrorCode.TOO_MANY_PIXELS


def test_pillows_bomb_warning_is_a_refusal_without_this_suites_warning_filters(tmp_path: Path) -> None:
    """pytest escalates every warning; a plain interpreter shows media.images does it by itself."""
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header(10000, 10000))  # 100 MP: Pillow warns, it does not raise
    script = (
        "import sys\n"
        "from kernel.errors import DomainError\n"
        "from media.images import inspect_image\n"
        "try:\n"
        "    inspect_image(sys.argv[1], max_pixels=10**9)\n"
        "except DomainError as error:\n"
        "    print(error.code)\n"
    )
    repo = Path(__file__).resolve().parents[2]
    run = subprocess.run([sys.executable, "-c", script, path], cwd=repo, capture_output=True, text=True)
    assert (run.returncode, run.stdout.strip()) == (0, "TOO_MANY_PIXELS"), run.stderr


def test_the_pixel_limit_is_a_parameter(tmp_path: Path) -> None:
    path = save(tmp_path / "photo.jpg", Image.new("RGB", (200, 100)))
    assert process_photo(path, max_pixels=20_000).info.width == 200
    assert refusal(path, max_pixels=19_999) is ErrorCode.TOO_MANY_PIXELS


def test_a_truncated_jpeg_is_corrupt(tmp_path: Path) -> None:
    whole = save(tmp_path / "whole.jpg", Image.effect_noise((640, 480), 50).convert("RGB"), quality=90)
    path = tmp_path / "cut.jpg"
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert inspect_image(path).width == 640  # the header alone looks fine ...
    assert refusal(path) is ErrorCode.CORRUPT  # ... only the full decode finds the missing half


def test_intake_refuses_to_run_if_someone_turned_on_truncated_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    path = save(tmp_path / "photo.jpg", Image.new("RGB", (16, 16)))
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        process_photo(path)


def test_an_animated_png_is_refused(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 16), color) for color in ("red", "blue")]
    path = save(tmp_path / "anim.png", frames[0], "PNG", save_all=True, append_images=frames[1:])
    assert refusal(path) is ErrorCode.UNSUPPORTED_FORMAT


# --- accepted files ------------------------------------------------------------------------------


def test_heic_with_exif_gps_is_accepted_and_its_gps_extracted(tmp_path: Path) -> None:
    image = Image.new("RGB", (64, 48), "green")
    path = save(tmp_path / "IMG_0001.HEIC", image, "HEIF", exif=exif_bytes(gps=SHANGHAI_GPS), quality=50)

    photo = process_photo(path)

    assert (photo.info.format, photo.info.content_type, photo.info.extension) == (
        "HEIF",
        "image/heic",
        "heic",
    )
    assert (photo.metadata.latitude, photo.metadata.longitude) == (31.2304, 121.4737)
    assert photo.derivatives["display"].data[:3] == b"\xff\xd8\xff"


def test_a_jpeg_with_a_zip_appended_is_accepted_and_the_zip_is_gone(tmp_path: Path) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as payload:
        payload.writestr("shell.php", "<?php system($_GET['c']); ?>")
    path = save(tmp_path / "polyglot.jpg", Image.new("RGB", (120, 90), "navy"))
    path.write_bytes(path.read_bytes() + archive.getvalue())
    assert zipfile.is_zipfile(path)

    for derivative in make_derivatives(path).values():
        assert b"PK\x03\x04" not in derivative.data
        assert b"shell.php" not in derivative.data
        assert derivative.data.endswith(b"\xff\xd9")


def test_orientation_6_gives_an_upright_derivative(tmp_path: Path) -> None:
    stored = Image.new("RGB", (400, 200), "blue")
    stored.paste("red", (0, 0, 200, 200))  # stored left half is the top once displayed
    path = save(tmp_path / "sideways.jpg", stored, exif=exif_bytes(orientation=6))

    for derivative in make_derivatives(path, {"display": 300, "thumb": 60}).values():
        upright = Image.open(io.BytesIO(derivative.data))
        assert upright.size == (derivative.width, derivative.height)
        assert upright.width * 2 == upright.height
        top, bottom = (
            rgb(upright, (upright.width // 2, 2)),
            rgb(upright, (upright.width // 2, upright.height - 3)),
        )
        assert top[0] > 200 > top[2], top
        assert bottom[2] > 200 > bottom[0], bottom
    assert process_photo(path).upright_size == (200, 400)


def test_derivatives_carry_no_metadata_at_all(tmp_path: Path) -> None:
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>secret-xmp</rdf:RDF></x:xmpmeta>'
    path = save(
        tmp_path / "evidence.jpg",
        Image.new("RGB", (800, 600), "olive"),
        exif=exif_bytes(gps=SHANGHAI_GPS, taken={ExifTags.Base.DateTimeOriginal: "2026:05:01 09:30:00"}),
        xmp=xmp,
        comment=b"reporter phone 13800000000",
        icc_profile=b"\x00" * 128,
    )
    assert process_photo(path).metadata.latitude is not None  # the input really does carry GPS

    for derivative in make_derivatives(path).values():
        output = Image.open(io.BytesIO(derivative.data))
        assert not output.getexif()
        assert not {"exif", "xmp", "comment", "icc_profile"} & output.info.keys()
        for needle in (b"Exif", b"RiverCam", b"secret-xmp", b"13800000000", b"\x88\x25"):
            assert needle not in derivative.data


def test_a_jpeg_is_dct_scaled_for_the_aspect_fitted_size_not_a_square(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = []
    real_draft = JpegImageFile.draft

    def spy(image: JpegImageFile, mode: str | None, size: tuple[int, int] | None) -> object:
        requests.append((mode, size))
        return real_draft(image, mode, size)

    monkeypatch.setattr(JpegImageFile, "draft", spy)
    path = save(tmp_path / "big.jpg", Image.new("RGB", (4000, 3000), "teal"))

    assert make_derivatives(path)["display"].width == 1600
    assert requests == [("RGB", (1600, 1200))]  # (1600, 1600) would decode at full size


def test_derivatives_keep_the_aspect_ratio_and_are_never_upscaled(tmp_path: Path) -> None:
    big = save(tmp_path / "big.jpg", Image.new("RGB", (3400, 2000), "teal"))
    small = save(tmp_path / "small.jpg", Image.new("RGB", (100, 80), "teal"))

    big_sizes = {name: (d.width, d.height) for name, d in make_derivatives(big).items()}
    small_sizes = {name: (d.width, d.height) for name, d in make_derivatives(small).items()}

    assert big_sizes == {"display": (1600, 941), "thumb": (320, 188)}
    assert small_sizes == {"display": (100, 80), "thumb": (100, 80)}


def _rgba_transparent() -> Image.Image:
    return Image.new("RGBA", (32, 32), (0, 0, 0, 0))


def _palette_with_transparency() -> Image.Image:
    image = Image.new("P", (32, 32), 0)
    image.putpalette([0, 0, 0] * 256)
    image.info["transparency"] = 0
    return image


@pytest.mark.parametrize(
    ("make", "fmt", "expected"),
    [
        (_rgba_transparent, "PNG", (255, 255, 255)),  # transparency flattens onto white, not black
        (_palette_with_transparency, "PNG", (255, 255, 255)),
        (lambda: Image.new("I;16", (32, 32), 32768), "PNG", (128, 128, 128)),  # scaled, not clipped to 255
        (lambda: Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG", (255, 0, 0)),
        (lambda: Image.new("LA", (32, 32), (90, 255)), "WEBP", (90, 90, 90)),
    ],
    ids=["rgba", "palette", "16-bit-grey", "cmyk-jpeg", "grey-alpha-webp"],
)
def test_every_pixel_mode_becomes_rgb_with_the_right_colour(
    tmp_path: Path, make: Callable[[], Image.Image], fmt: str, expected: tuple[int, int, int]
) -> None:
    params = {"lossless": True} if fmt == "WEBP" else {}
    path = save(tmp_path / f"odd.{fmt.lower()}", make(), fmt, **params)

    output = Image.open(io.BytesIO(make_derivatives(path)["thumb"].data))

    assert output.mode == "RGB"
    assert all(abs(got - want) <= 3 for got, want in zip(rgb(output, (16, 16)), expected, strict=True))


# --- evidence metadata ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lat_ref", "lon_ref", "expected"),
    [
        ("N", "E", (31.2304, 121.4737)),
        ("S", "W", (-31.2304, -121.4737)),
        (b"N\x00", "E", (31.2304, 121.4737)),
    ],
)
def test_gps_converts_exactly_to_signed_decimal_degrees(
    tmp_path: Path, lat_ref: str | bytes, lon_ref: str, expected: tuple[float, float]
) -> None:
    gps: dict[int, object] = {
        **SHANGHAI_GPS,
        ExifTags.GPS.GPSLatitudeRef: lat_ref,
        ExifTags.GPS.GPSLongitudeRef: lon_ref,
    }
    path = save(tmp_path / "gps.jpg", Image.new("RGB", (16, 16)), exif=exif_bytes(gps=gps))

    metadata = process_photo(path).metadata

    assert (metadata.latitude, metadata.longitude) == expected


@pytest.mark.parametrize(
    "gps",
    [
        {**SHANGHAI_GPS, ExifTags.GPS.GPSLatitudeRef: ""},  # no hemisphere: sign unknown
        {
            **SHANGHAI_GPS,
            ExifTags.GPS.GPSLatitude: (IFDRational(31, 0), IFDRational(0, 1), IFDRational(0, 1)),
        },
        {
            **SHANGHAI_GPS,
            ExifTags.GPS.GPSLatitude: (IFDRational(95, 1), IFDRational(0, 1), IFDRational(0, 1)),
        },
        {1: "N", 2: (0, 0, 0), 3: "E", 4: (0, 0, 0)},  # "no fix" placeholder
    ],
    ids=["no-ref", "zero-denominator", "out-of-range", "null-island"],
)
def test_unusable_gps_is_dropped_but_the_rest_kept(tmp_path: Path, gps: dict[int, object]) -> None:
    path = save(tmp_path / "gps.jpg", Image.new("RGB", (16, 16)), exif=exif_bytes(gps=gps))

    photo = process_photo(path)

    assert (photo.metadata.latitude, photo.metadata.longitude) == (None, None)
    assert (photo.metadata.camera_make, photo.metadata.camera_model) == ("RiverCam", "RC-1")


def _tiff(*entries: tuple[int, int, int, int]) -> bytes:
    """A big-endian EXIF block with one IFD of (tag, type, count, value-or-offset) entries."""
    ifd = struct.pack(">H", len(entries)) + b"".join(struct.pack(">HHII", *entry) for entry in entries)
    return b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08" + ifd + b"\x00\x00\x00\x00"


GARBAGE_EXIF = {
    "offset-past-end": b"Exif\x00\x00MM\x00\x2a\xff\xff\xff\xf0" + b"\xff" * 64,
    "gps-ifd-loops-to-itself": _tiff((ExifTags.IFD.GPSInfo, 4, 1, 8)),
    "huge-count": _tiff((ExifTags.Base.Make, 2, 0xFFFFFFF0, 8), (ExifTags.IFD.GPSInfo, 4, 1, 0x7FFFFFFF)),
}


# Production leaves Pillow's "corrupt EXIF" UserWarnings as warnings; this suite escalates them.
@pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")
@pytest.mark.parametrize("exif", GARBAGE_EXIF.values(), ids=GARBAGE_EXIF.keys())
def test_garbage_exif_is_ignored_and_the_photo_accepted(tmp_path: Path, exif: bytes) -> None:
    path = save(tmp_path / "broken-exif.jpg", Image.new("RGB", (64, 64), "red"), exif=exif)

    photo = process_photo(path)

    assert (photo.metadata.latitude, photo.metadata.captured_at) == (None, None)
    assert photo.derivatives["display"].width == 64


@pytest.mark.filterwarnings("error::UserWarning")
def test_garbage_exif_is_a_clean_refusal_when_warnings_are_errors(tmp_path: Path) -> None:
    exif = GARBAGE_EXIF["offset-past-end"]
    path = save(tmp_path / "broken-exif.jpg", Image.new("RGB", (64, 64), "red"), exif=exif)

    assert refusal(path) is ErrorCode.CORRUPT


def test_capture_time_is_aware_with_an_offset_and_naive_without(tmp_path: Path) -> None:
    taken: dict[int, str] = {ExifTags.Base.DateTimeOriginal: "2026:05:01 09:30:00"}
    naive = save(tmp_path / "naive.jpg", Image.new("RGB", (8, 8)), exif=exif_bytes(taken=taken))
    aware = save(
        tmp_path / "aware.jpg",
        Image.new("RGB", (8, 8)),
        exif=exif_bytes(taken={**taken, ExifTags.Base.OffsetTimeOriginal: "+08:00"}),
    )

    naive_meta, aware_meta = process_photo(naive).metadata, process_photo(aware).metadata

    assert naive_meta.captured_at == datetime(2026, 5, 1, 9, 30)
    assert not naive_meta.captured_at_has_offset
    assert aware_meta.captured_at == datetime(2026, 5, 1, 9, 30, tzinfo=timezone(timedelta(hours=8)))
    assert aware_meta.captured_at_has_offset
