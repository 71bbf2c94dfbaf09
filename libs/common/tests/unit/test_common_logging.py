import json
import logging

from fashionrec_common.logging import JsonFormatter, configure_logging


def test_json_formatter_keeps_extra_fields_and_exceptions():
    formatter = JsonFormatter("gateway")
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "hello %s", ("you",), None)
        import sys

        record.exc_info = sys.exc_info()
    record.request_id = "r-1"
    line = json.loads(formatter.format(record))
    assert line["service"] == "gateway"
    assert line["msg"] == "hello you"
    assert line["level"] == "ERROR"
    assert line["request_id"] == "r-1"
    assert "ValueError: boom" in line["exc"]


def test_configure_logging_replaces_root_handlers(capsys):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("svc", "WARNING")
        logging.getLogger("t").warning("careful", extra={"index_id": "shoes/infogan"})
        logging.getLogger("t").info("hidden")
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1
        assert json.loads(err[0])["index_id"] == "shoes/infogan"
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
