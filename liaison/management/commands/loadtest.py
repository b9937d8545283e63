"""``manage.py loadtest``: the room WebSocket under load, beside bare Channels.

The load test lives in ``bench/loadtest.py`` (``python -m bench loadtest`` runs the same); see
its docstring and ``--help``. It needs the development requirements (the ``websockets`` client)
and refuses to run in production.
"""

from bench.loadtest import Command

__all__ = ["Command"]
