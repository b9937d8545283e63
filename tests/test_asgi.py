"""The served application as the server loads it."""

from __future__ import annotations

import gc
import importlib


def test_loading_the_application_moves_what_it_loaded_out_of_the_collectors_sight() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    importlib.reload(importlib.import_module("config.asgi"))
    assert gc.get_freeze_count() > 10_000  # Django, the app and the libraries
