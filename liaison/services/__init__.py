"""Domain services: the one place for rules and writes. Synchronous, keyword-only, typed."""
