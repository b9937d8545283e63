"""Liaison: secure liaison messaging for joint customs operations."""
