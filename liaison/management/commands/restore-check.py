from liaison.management.commands.restore_check import Command  # noqa: F401
