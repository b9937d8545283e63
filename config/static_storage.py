"""Static files in production: compressed, with hashed names, and the chat client's ES module
imports rewritten to the hashed names too, so a browser never mixes modules of two releases."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):
    support_js_module_import_aggregation = True
