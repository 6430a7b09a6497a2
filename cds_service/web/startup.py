"""Start-up warnings, logged once per server rather than once per gunicorn worker.

Under gunicorn the master logs them (the config file's `on_starting` hook) and marks them
logged; the workers it forks inherit the mark, so their `create_app` stays quiet. An app built
any other way (tests, `flask run`, a WSGI server without our config file) logs them itself.
"""

from __future__ import annotations

import logging

from cds_service.settings import AuthMode, Settings

logger = logging.getLogger(__name__)
_logged_by_master = False


def log_startup_notes(settings: Settings) -> None:
    """Log what an operator must know about this configuration (auth off, the playground)."""
    if settings.auth is AuthMode.OFF:
        logger.warning(
            "authentication is OFF (%s=off): anyone who can reach this server can call it; "
            "use this for local development only",
            Settings.variable("auth"),
        )
    if settings.playground:
        logger.info(
            "the playground is served at /playground (%s=off hides it)",
            Settings.variable("playground"),
        )


def log_startup_notes_in_master(settings: Settings) -> None:
    """Log the notes once, in the gunicorn master, before any worker is forked."""
    global _logged_by_master
    log_startup_notes(settings)
    _logged_by_master = True


def log_startup_notes_once(settings: Settings) -> None:
    """Log the notes unless the master process already has (called by `create_app`)."""
    if not _logged_by_master:
        log_startup_notes(settings)
