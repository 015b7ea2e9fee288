"""JSON-lines logging on stdout; the gateway parses each line and re-emits it through pino."""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback

# pino's numeric levels, so the gateway keeps each line's level without a table of names.
LEVELS = {"debug": 20, "info": 30, "warn": 40, "error": 50, "fatal": 60}


class JsonLogger:
    """Writes one JSON object per line; every line carries the fields bound at construction."""

    def __init__(self, level: str = "info", **bound) -> None:
        self._min = LEVELS.get(level, 30)
        self._bound = bound
        self._lock = threading.Lock()

    def log(self, level: str, msg: str, exc_info: bool = False, **fields) -> None:
        """Writes msg with fields; exc_info adds the current exception's traceback as `err`."""
        if LEVELS[level] < self._min:
            return
        line = {"level": LEVELS[level], "time": int(time.time() * 1000), "msg": msg}
        line.update(self._bound)
        line.update(fields)
        if exc_info:
            line["err"] = traceback.format_exc()
        text = json.dumps(line, default=str)
        with self._lock:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()

    def debug(self, msg: str, **fields) -> None:
        self.log("debug", msg, **fields)

    def info(self, msg: str, **fields) -> None:
        self.log("info", msg, **fields)

    def warn(self, msg: str, **fields) -> None:
        self.log("warn", msg, **fields)

    def error(self, msg: str, exc_info: bool = False, **fields) -> None:
        self.log("error", msg, exc_info=exc_info, **fields)
