"""What every command exits with, and the one error for input a command cannot use."""

from __future__ import annotations

from cds_service.errors import CdsServiceError

EXIT_OK = 0
EXIT_BAD_INPUT = 2  # the input or an argument cannot be used; a message says why on stderr


class InputError(CdsServiceError):
    """Input or an argument a command cannot use; the message is for the person at the terminal."""
