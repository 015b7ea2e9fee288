"""The runner's side of the project's error taxonomy.

Each error names the gRPC status it travels as; the gateway maps gRPC statuses back onto the
same taxonomy once (gateway/src/runners/grpc-errors.ts). Nothing else in the runner chooses a
status code.

A call fails as a whole only for what all its inputs share. One input that cannot be processed
is an InputFailure instead: reported in the reply next to the other inputs' results, since a
batch mixes the inputs of several client requests.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

#: InputFailure codes, stable for machines: the gateway passes them on to clients.
INPUT_TOO_LONG = "input_too_long"
INVALID_TOKEN_IDS = "invalid_token_ids"
EMPTY_INPUT = "empty_input"

#: Why a text fails as EMPTY_INPUT although it is not "": tokenizers drop control characters,
#: U+FFFD and (most of them) whitespace, and a text of nothing else would be embedded as no text.
NOTHING_READ = "has nothing this model reads once control characters and whitespace are dropped"


class RunnerError(Exception):
    """Base class; unexpected exceptions are reported as INTERNAL without their text."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL


class InvalidInput(RunnerError):
    """The request as a whole is wrong (empty batch, unsupported option, a shared query)."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class UnsupportedOption(InvalidInput):
    """A call option the model does not offer (a Matryoshka size, a prompt name). The runner owns
    these rules, since it knows the model; the gateway passes `param` and `error_code` on to the
    client as they are."""

    def __init__(self, param: str, error_code: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.error_code = error_code


class CallExpired(RunnerError):
    """The call's deadline passed while it computed: the gateway has answered its requests already."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class ConfigError(RunnerError):
    """The catalog, the weights on disk or the device cannot serve the model; fatal at start."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Unauthenticated(RunnerError):
    """A call without the secret of the gateway that started this runner."""

    code = grpc.StatusCode.UNAUTHENTICATED


@dataclass(frozen=True)
class InputFailure:
    """One input of a call that cannot be processed; the call's other inputs are unaffected."""

    #: Position of the input in the call's inputs.
    index: int
    #: What is wrong, naming no index: the gateway renumbers inputs into each client's request.
    message: str
    #: One of the codes above.
    code: str


def too_long(index: int, tokens: int, limit: int) -> InputFailure:
    """The refusal for an input over the model's limit when truncation is not allowed."""
    return InputFailure(index, f"has {tokens} tokens, more than this model's {limit}; "
                               "shorten it or allow truncation", INPUT_TOO_LONG)


class OutOfDeviceMemory(RunnerError):
    """Even one input alone does not fit in the device's free memory: the runner is out of
    capacity for now, which says nothing against the input."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
