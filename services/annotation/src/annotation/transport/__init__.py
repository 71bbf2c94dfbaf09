"""Transport layer: the REST API and HTML pages (``rest/``); thin, logic lives in ``domain/``."""
