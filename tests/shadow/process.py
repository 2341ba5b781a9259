"""Kept for the tests that import it: the gateway's process starter is in `harness.services`."""

from harness.processes import stop
from harness.services import GATEWAY_COMMAND, start_process

__all__ = ["GATEWAY_COMMAND", "start_process", "stop"]
