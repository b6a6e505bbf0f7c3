"""Measurement only (bench/kugelpos.py --variants info-logging): Kugelpos' services at INFO.

Kugelpos' logging.conf sets the root logger to DEBUG and its production Compose file's
LOG_LEVEL=INFO never takes effect (no setting reads it). To measure what that DEBUG logging
costs, this hook, put on PYTHONPATH of the services of a comparison deployment only, lets
`logging.config.fileConfig` run as written and then raises the root and request loggers to
INFO. The runner never uses it: drills read the DEBUG lines.
"""

import logging
import logging.config

_file_config = logging.config.fileConfig


def _file_config_then_info(*args, **kwargs):
    _file_config(*args, **kwargs)
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("requestLogger").setLevel(logging.INFO)


logging.config.fileConfig = _file_config_then_info
