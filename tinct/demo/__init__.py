"""``tinct demo``: a six-service shop traced by tinct, with load and faults.

Modules: ``cli`` (the subcommand), ``runner`` (start, watch, stop),
``processes`` (children by PID), ``service`` (one service process),
``apps`` (the services' routes), ``stores`` (SQLite and Redis),
``load`` (simulated users), ``faults`` (the schedule), ``topology``
(the declared topology and collector targets).
"""

from tinct.demo.cli import add_demo_command

__all__ = ["add_demo_command"]
