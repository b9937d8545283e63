"""Images: dimensions from the header, metadata-free thumbnails, decompression bombs refused.

Pillow is the one part of the attachment path that parses hostile bytes beyond a signature,
so everything it does sits here, behind these rules: no image is decoded before its declared
size is checked against ``LIAISON_IMAGE_MAX_PIXELS``; an image is decoded for a thumbnail only
when the decode (JPEG at reduced scale) stays within ``LIAISON_THUMBNAIL_MAX_PIXELS``, and only
one at a time per process (``decode_slot``), so memory is bounded by one decode however many
images arrive together; and no thumbnail carries anything of the original but its pixels (no
EXIF, GPS, ICC profile, XMP or comments). An image too large to decode is accepted without a
preview. Works on plaintext in memory only; storing and sealing the result is the upload's
business.
"""

from __future__ import annotations

import contextlib
import io
import threading
import warnings
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from liaison.errors import Invalid, LiaisonError
from liaison.services.attachments.policy import JPEG, PNG

THUMBNAIL_PIXELS = 320
# Images decoded at once per process, and how long an upload waits for its turn before it is
# accepted without a preview.
DECODES_AT_ONCE = 1
DECODE_WAIT_SECONDS = 30.0
ORIENTATION = 0x0112
QUARTER_TURNS = {5, 6, 7, 8}

_decodes = threading.BoundedSemaphore(DECODES_AT_ONCE)
_holder = threading.local()


def image_max_pixels() -> int:
    return int(settings.LIAISON_IMAGE_MAX_PIXELS)


def thumbnail_max_pixels() -> int:
    """Images that would decode to more pixels than this get no thumbnail."""
    return int(settings.LIAISON_THUMBNAIL_MAX_PIXELS)


@contextlib.contextmanager
def decode_slot() -> Iterator[bool]:
    """Hold this process's image decoding slot for the block; yields whether it was had within
    ``DECODE_WAIT_SECONDS`` (if not, make no thumbnail). Re-entrant within a thread, so the
    upload can hold it across reading the plaintext and decoding it."""
    if getattr(_holder, "depth", 0):
        _holder.depth += 1
        try:
            yield True
        finally:
            _holder.depth -= 1
        return
    if not _decodes.acquire(timeout=DECODE_WAIT_SECONDS):
        yield False
        return
    _holder.depth = 1
    try:
        yield True
    finally:
        _holder.depth = 0
        _decodes.release()


def thumbnail_source_max_bytes() -> int:
    """Images larger than this are accepted without a preview rather than decoded whole."""
    return int(settings.LIAISON_THUMBNAIL_SOURCE_MAX_BYTES)


def _bomb(width: int, height: int) -> Invalid:
    return Invalid(
        _(
            "This image declares %(width)s × %(height)s pixels, more than the "
            "%(image_max_pixels)s allowed: it is refused (a decompression bomb, or simply "
            "too large to handle)."
        )
        % {"width": width, "height": height, "image_max_pixels": format(image_max_pixels(), ",")},
        field="file",
    )


def _bomb_refused() -> Invalid:
    return Invalid(_("This image declares more pixels than allowed: it is refused."), field="file")


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from an image's header, without decoding its pixels; ``None`` when the
    header is not within ``data``. Over-sized declarations raise ``Invalid``."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _bomb_refused() from None
        except Exception:
            return None
    if width * height > image_max_pixels():
        raise _bomb(width, height)
    return width, height


def _quarter_turned(exif: Any) -> bool:
    return exif.get(ORIENTATION) in QUARTER_TURNS


def _header_quarter_turned(image: Any) -> bool:
    """The EXIF orientation read without decoding: from what the header parse found (JPEG and
    WebP carry it up front; a PNG's may follow the pixels, and then it is not known)."""
    from PIL import Image

    raw = image.info.get("exif")
    if not raw:
        return False
    exif = Image.Exif()
    with contextlib.suppress(Exception):
        exif.load(raw)
    return _quarter_turned(exif)


def make_thumbnail(data: bytes) -> tuple[bytes | None, int, int]:
    """A small JPEG (PNG when transparent) of an image, with no metadata at all, and the
    image's displayed width and height. The thumbnail is ``None`` when decoding would exceed
    ``LIAISON_THUMBNAIL_MAX_PIXELS`` or the decoding slot stayed busy: the image is then not
    decoded at all. ``Invalid`` for a damaged or over-sized image."""
    from PIL import Image, ImageOps

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > image_max_pixels():
                    raise _bomb(width, height)
                image.draft("RGB", (THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))  # JPEG: decode small
                if image.width * image.height > thumbnail_max_pixels():
                    turned = _header_quarter_turned(image)
                    return None, *((height, width) if turned else (width, height))
                with decode_slot() as free:
                    if not free:
                        turned = _header_quarter_turned(image)
                        return None, *((height, width) if turned else (width, height))
                    # The one full decode (at draft scale), then a reduction to the preview.
                    image.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
                    image.load()
                if _quarter_turned(image.getexif()):  # now known for every format
                    width, height = height, width
                upright = ImageOps.exif_transpose(image)
                transparent = upright.mode in {"RGBA", "LA", "PA"} or (
                    upright.mode == "P" and "transparency" in upright.info
                )
                mode = "RGBA" if transparent else "RGB"
                converted = upright.convert(mode)
                # A fresh image from raw pixels carries no EXIF, GPS, ICC, XMP or comments.
                clean = Image.frombytes(mode, converted.size, converted.tobytes())
        except LiaisonError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _bomb_refused() from None
        except Exception:
            raise Invalid(
                _("This image could not be read: it is damaged or not really an image."),
                field="file",
            ) from None
    out = io.BytesIO()
    if transparent:
        clean.save(out, "PNG", optimize=True)
    else:
        clean.save(out, "JPEG", quality=82, optimize=True)
    return out.getvalue(), width, height


def thumbnail_type(data: bytes) -> str:
    """The type of a thumbnail made here: PNG when it kept transparency, JPEG otherwise."""
    return PNG if data.startswith(b"\x89PNG") else JPEG
