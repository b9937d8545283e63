"""Images: dimensions from the header, metadata-free thumbnails, decompression bombs refused.

Pillow is the one part of the attachment path that parses hostile bytes beyond a signature,
so everything it does sits here, behind two rules: no image is decoded before its declared
size is checked against ``LIAISON_IMAGE_MAX_PIXELS``, and no thumbnail carries anything of the
original but its pixels (no EXIF, GPS, ICC profile, XMP or comments). Works on plaintext in
memory only; storing and sealing the result is the upload's business.
"""

from __future__ import annotations

import io
import warnings

from django.conf import settings
from django.utils.translation import gettext as _

from liaison.errors import Invalid, LiaisonError
from liaison.services.attachments.policy import JPEG, PNG

THUMBNAIL_PIXELS = 320


def image_max_pixels() -> int:
    return int(settings.LIAISON_IMAGE_MAX_PIXELS)


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


def make_thumbnail(data: bytes) -> tuple[bytes, int, int]:
    """A small JPEG (PNG when transparent) of an image, with no metadata at all, and the
    image's displayed width and height. ``Invalid`` for a damaged or over-sized image."""
    from PIL import Image, ImageOps

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > image_max_pixels():
                    raise _bomb(width, height)
                if image.getexif().get(0x0112) in {5, 6, 7, 8}:  # rotated a quarter turn
                    width, height = height, width
                image.draft("RGB", (THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))  # JPEG: decode small
                upright = ImageOps.exif_transpose(image)
                upright.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
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
