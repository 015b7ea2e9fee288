"""The runner's JSON log lines, and holding a call's routine lines until its result has gone."""

from __future__ import annotations

import json

from runner import logs
from runner._proto import runner_pb2
from runner.call_stream import CallStream
from runner.logs import JsonLogger


def lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_held_lines_wait_for_the_block_and_warnings_do_not(capsys):
    logger = JsonLogger("info", model="m")
    with logs.held():
        logger.info("batch_done", inputs=1)
        logger.debug("hidden")  # below the level: never written, held or not
        logger.warn("call_expired")
        assert [x["msg"] for x in lines(capsys)] == ["call_expired"]
    written = lines(capsys)
    assert [x["msg"] for x in written] == ["batch_done"]
    assert written[0]["model"] == "m" and written[0]["inputs"] == 1
    logger.info("after")
    assert [x["msg"] for x in lines(capsys)] == ["after"]


def test_held_lines_are_written_when_the_block_fails(capsys):
    logger = JsonLogger("info")
    try:
        with logs.held():
            logger.info("batch_done")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert [x["msg"] for x in lines(capsys)] == ["batch_done"]


def test_a_calls_line_follows_its_result_on_the_stream(capsys):
    logger = JsonLogger("info")

    def answer(call: runner_pb2.Call) -> runner_pb2.CallResult:
        logger.info("batch_done", id=call.id)
        return runner_pb2.CallResult(id=call.id)

    results = CallStream(answer, None).serve(iter([runner_pb2.Call(id=1), runner_pb2.Call(id=2)]))
    assert next(results).id == 1
    assert lines(capsys) == []  # the result is out, being sent; its line waits
    assert next(results).id == 2
    assert [x["id"] for x in lines(capsys)] == [1]
    results.close()  # the gateway ended the stream: the last call's line is still written
    assert [x["id"] for x in lines(capsys)] == [2]
