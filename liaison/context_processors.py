from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def liaison(request: HttpRequest) -> dict[str, Any]:
    return {"LIAISON_DEVELOPMENT": not settings.PRODUCTION}
