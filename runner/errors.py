"""The runner's side of the project's error taxonomy.

Each error names the gRPC status it travels as; the gateway maps gRPC statuses back onto the
same taxonomy once (gateway/src/runners/grpc-errors.ts). Nothing else in the runner chooses a
status code.
"""

from __future__ import annotations

import grpc


class RunnerError(Exception):
    """Base class; unexpected exceptions are reported as INTERNAL without their text."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL


class InvalidInput(RunnerError):
    """The request itself is wrong (empty batch, unsupported option)."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class ConfigError(RunnerError):
    """The catalog, the weights on disk or the device cannot serve the model; fatal at start."""

    code = grpc.StatusCode.FAILED_PRECONDITION
