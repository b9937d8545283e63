"""Date and time formats per interface language, found through ``FORMAT_MODULE_PATH``.

Templates name a format (``date:"DATETIME_FORMAT"``) instead of spelling one, so a Chinese page
reads 2026年11月30日 16:34 and an English one 30 Nov 2026 16:34: a 24-hour clock in both, and
never an English pattern filled with Chinese month names.
"""
