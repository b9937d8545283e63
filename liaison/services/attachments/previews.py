"""A first-page preview of a PDF, rendered on the server with PDFium (pypdfium2 ships it in its
own wheel), so officers see a manifest or a bill of lading before downloading it.

PDFium parses hostile bytes, so the rules of ``images`` hold here too: the upload renders
within the process's one decoding slot, only files up to ``thumbnail_source_max_bytes`` are
opened, the page is rendered at a scale that keeps it within ``PREVIEW_PIXELS`` on its longer
side and ``thumbnail_max_pixels`` in all, and the preview carries nothing of the file but the
first page's pixels (a PNG made from the bitmap). A PDF that will not open (damaged,
encrypted, empty) is accepted without a preview. The upload seals and stores the result like a
thumbnail.
"""

from __future__ import annotations

import io
import logging

from liaison.services.attachments.images import thumbnail_max_pixels

logger = logging.getLogger(__name__)

# The preview's longer side: large enough to read a document's heading, small to send.
PREVIEW_PIXELS = 800
POINTS_PER_INCH = 72


def pdf_first_page(data: bytes) -> tuple[bytes, int, int] | None:
    """PNG bytes of the first page and its size, or ``None`` when there is no preview to make."""
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(data)
    except Exception:  # pypdfium2 raises PdfiumError, or others on garbage
        return None
    try:
        if len(document) == 0:
            return None
        page = document[0]
        try:
            width, height = page.get_size()
            if width <= 0 or height <= 0:
                return None
            scale = min(PREVIEW_PIXELS / max(width, height), 4.0)
            pixels = width * scale * height * scale
            if pixels > thumbnail_max_pixels():
                scale *= (thumbnail_max_pixels() / pixels) ** 0.5
            bitmap = page.render(scale=scale, may_draw_forms=False)
            try:
                image = bitmap.to_pil().convert("RGB")
            finally:
                bitmap.close()
        finally:
            page.close()
    except Exception:
        logger.info("a PDF's first page could not be rendered; no preview")
        return None
    finally:
        document.close()
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue(), image.width, image.height
