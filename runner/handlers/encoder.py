"""Shared machinery for transformer encoders: tokenise, bucket by length, pad, compute."""

from __future__ import annotations

import copy
import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Self

import numpy as np
import torch

from .. import call_deadline, compute_threads, tracing
from ..device import out_of_memory, release_memory, synchronize
from ..device_profile import IDLE_S, UNMEASURED_OVERHEAD_TOKENS, DeviceProfile
from ..errors import (EMPTY_INPUT, INVALID_TOKEN_IDS, NOTHING_READ, ConfigError, InputFailure, InvalidInput,
                      OutOfDeviceMemory, UnsupportedOption, too_long)
from ..host_staging import HostStaging
from .base import (DetokenizeOutput, EmbedOptions, Handler, Inputs, LoadContext, MultiVectorOutput, Token,
                   TokenizeOutput)
from .length_buckets import length_buckets, padded_width

#: Text whose tokens fill the passes timed for the device profile: real ids, not one repeated id.
_PROFILE_TEXT = ("Measuring what one forward pass costs on this device, with ordinary words of several "
                 "lengths, numbers like 2048 and 3.14, and punctuation; ") * 64


@dataclass(frozen=True)
class Tokenized:
    """Unpadded token ids of a batch, one list per input; a failed input's list is empty."""

    ids: list[list[int]]
    type_ids: list[list[int]] | None
    failures: tuple[InputFailure, ...] = ()

    @property
    def lengths(self) -> list[int]:
        """Tokens per input, 0 for a failed one: what usage reports."""
        return [len(row) for row in self.ids]

    @property
    def computed_rows(self) -> list[int]:
        """Indices of the inputs that go through the model."""
        return rows_left(len(self.ids), self.failures)

    def with_failures(self, failures: list[InputFailure]) -> "Tokenized":
        """This batch with failures added; their ids are dropped, so they count no tokens."""
        failed = {f.index for f in failures}

        def keep(rows: list[list[int]]) -> list[list[int]]:
            return [[] if i in failed else row for i, row in enumerate(rows)]

        return Tokenized(keep(self.ids), None if self.type_ids is None else keep(self.type_ids),
                         self.failures + tuple(failures))


def rows_left(count: int, failures: Iterable[InputFailure]) -> list[int]:
    """Indices of a call's inputs that did not fail, in order: the only ones worth computing."""
    failed = {f.index for f in failures}
    return [i for i in range(count) if i not in failed]


class EncoderHandler(Handler):
    """Base for handlers built on a Hugging Face tokenizer and a transformer encoder.

    Sorting first means one long text pads only its own bucket instead of the whole batch, and
    the token budget keeps a batch of long texts from allocating one huge activation tensor.
    Subclasses turn one padded bucket into per-row results with `_run`.
    """

    def __init__(self, ctx: LoadContext, tokenizer, max_tokens: int) -> None:
        self._ctx = ctx
        self._tokenizer = tokenizer
        self._max_tokens = max_tokens
        # Fast tokenizers hold a Rust-side borrow while encoding, so concurrent calls on one
        # instance fail; each worker thread gets its own copy instead.
        self._local = threading.local()
        self._empty_ids: dict[str, list[int]] = {}  # prompt prefix -> what it tokenises to alone
        # Every forward pass runs on this one thread, unless the runner serves calls in turn on
        # one thread of its own (compute_threads.on_this_thread). Two at once would only split
        # the same cores (or GPU) between them, and torch's CPU kernels keep one OpenMP thread
        # team per calling thread (see compute_threads). Tokenising and padding stay on the
        # callers' threads, so with two workers the next batch is prepared while the current
        # one computes.
        self._compute = ThreadPoolExecutor(max_workers=1, thread_name_prefix="compute")
        self._staging = HostStaging(ctx.device)
        # Until the runner measures its device (apply_profile).
        self._overhead_tokens = UNMEASURED_OVERHEAD_TOKENS
        self._width_multiple = 1
        self._single_thread_tokens = 0
        self._threads_alone = compute_threads.alone()
        self._last_pass = 0.0  # time.monotonic() when the compute thread last finished a pass

    #: Set by handlers whose forward passes call `self._model(**features)` and read one tensor of
    #: the answer (`encoder_output`): the folder of that model's weights. Another backend's model
    #: that answers the same call can then replace the PyTorch one (see runner/precision.py).
    encoder_dir: Path | None = None
    #: The field of the model's answer that the forward passes read.
    encoder_output: str = "last_hidden_state"

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    @property
    def device(self) -> torch.device:
        return self._ctx.device

    def encoder(self) -> tuple[Any, Path]:
        """The encoder another backend may replace, and the folder its weights came from."""
        if self.encoder_dir is None:
            raise ConfigError(f"{self._ctx.entry.name}: precision int8 is not available for its handler; use fp32")
        return self._model, self.encoder_dir

    def with_encoder(self, encoder: Any) -> Self:
        """A handler built on another backend's encoder (runner/backends/), which answers calls as
        `encoder()` does; the tokenizer, heads and settings are this one's. Neither handler changes
        afterwards: precision.py gates the two against each other and serves one."""
        built = copy.copy(self)
        built._model = encoder
        return built

    @property
    def dtype(self) -> torch.dtype:
        return self._ctx.dtype

    def release_compute_team(self) -> None:
        self._compute.submit(compute_threads.release_team).result()

    def apply_profile(self, profile: DeviceProfile) -> None:
        """Cuts and pads every later call as the measured cost of a pass says is cheapest."""
        self._overhead_tokens = profile.overhead_tokens
        self._width_multiple = profile.width_multiple
        self._single_thread_tokens = profile.single_thread_tokens

    def time_pass(self, rows: int, width: int, threads: int = 0) -> float:
        """Seconds one forward pass of the model takes on rows rows of width real tokens, timed on
        the compute thread (whose thread team serves every pass) and synchronised with the device,
        on threads CPU threads (0: the runner's own count)."""
        ids = self._profile_ids(width)
        batch = Tokenized([ids] * rows, [[0] * width] * rows if self._uses_types() else None)
        [features] = self._staging.to_device([self._pad(list(range(rows)), batch, 0, "right")])

        def timed() -> float:
            compute_threads.apply(threads or self._threads_alone)
            with torch.inference_mode():
                synchronize(self.device)
                started = time.perf_counter()
                self._model(**features)
                synchronize(self.device)
                return time.perf_counter() - started

        return self._compute.submit(timed).result()

    def _profile_ids(self, width: int) -> list[int]:
        """width token ids of real text, the first of them the tokenizer's own start token."""
        ids = getattr(self, "_profile_tokens", None)
        if ids is None:
            ids = self._profile_tokens = self.encode_texts([_PROFILE_TEXT], truncate=True).ids[0]
        return (ids * (width // len(ids) + 1))[:width]

    def _uses_types(self) -> bool:
        return "token_type_ids" in self._tokenizer.model_input_names

    @property
    def vocab_size(self) -> int:
        return len(self._tokenizer)

    def tokenizer(self):
        """This thread's tokenizer."""
        tok = getattr(self._local, "tokenizer", None)
        if tok is None:
            tok = self._local.tokenizer = copy.deepcopy(self._tokenizer)
        return tok

    def tokenize(self, texts: list[str], add_special_tokens: bool) -> TokenizeOutput:
        tok = self.tokenizer()
        enc = tok(texts, add_special_tokens=add_special_tokens, return_offsets_mapping=True,
                  return_special_tokens_mask=True)
        result = []
        for text, ids, spans, specials in zip(texts, enc["input_ids"], enc["offset_mapping"],
                                              enc["special_tokens_mask"]):
            pieces = tok.convert_ids_to_tokens(ids)
            at = _utf8_offsets(text)
            result.append([
                Token(i, piece, True, 0, 0) if special else Token(i, text[a:b], False, at[a], at[b])
                for i, piece, (a, b), special in zip(ids, pieces, spans, specials)
            ])
        return TokenizeOutput(result)

    def detokenize(self, sequences: list[list[int]], skip_special_tokens: bool) -> DetokenizeOutput:
        failures = [f for i, seq in enumerate(sequences) if (f := self._vocabulary_failure(i, seq))]
        rows = rows_left(len(sequences), failures)
        decoded = self.tokenizer().batch_decode([sequences[i] for i in rows], skip_special_tokens=skip_special_tokens)
        texts = [""] * len(sequences)
        for i, text in zip(rows, decoded):
            texts[i] = text
        return DetokenizeOutput(texts, tuple(failures))

    def _vocabulary_failure(self, index: int, seq: list[int]) -> InputFailure | None:
        """The refusal of a sequence holding an id the model has no embedding for, if it does."""
        size = self.vocab_size
        bad = next((t for t in seq if t >= size), None)
        if bad is None:
            return None
        return InputFailure(index, f"has token id {bad}, outside this model's vocabulary of {size}",
                            INVALID_TOKEN_IDS)

    def prepare(self, inputs: Inputs, opts: EmbedOptions, prefix: str = "") -> Tokenized:
        """Token ids for a batch of texts (with an optional prompt prefix) or of ready-made ids."""
        if not inputs:
            raise InvalidInput("inputs must not be empty")
        if opts.prompt_name and opts.prompt_name not in self.prompt_names:
            known = ", ".join(self.prompt_names) or "none"
            raise UnsupportedOption("prompt_name", "unsupported_prompt_name",
                                    f"unknown prompt_name '{opts.prompt_name}'; this model's prompts: {known}")
        if isinstance(inputs[0], list):
            return self._from_ids(inputs, opts)
        return self.encode_texts(inputs, opts.truncate, opts.truncate_side, prefix)

    def _from_ids(self, sequences: list[list[int]], opts: EmbedOptions) -> Tokenized:
        """Ids of the model's own vocabulary, used as given apart from truncation."""
        failures = [f for i, seq in enumerate(sequences) if (f := self._ids_failure(i, seq, opts.truncate))]
        limit = self._max_tokens
        cut = [list(seq[-limit:] if opts.truncate_side == "left" else seq[:limit]) for seq in sequences]
        return Tokenized(cut, [[0] * len(s) for s in cut] if self._uses_types() else None).with_failures(failures)

    def _ids_failure(self, index: int, seq: list[int], truncate: bool) -> InputFailure | None:
        """Why a sequence of token ids cannot be embedded, if it cannot."""
        if not seq:
            return InputFailure(index, "has no tokens", EMPTY_INPUT)
        if len(seq) > self._max_tokens and not truncate:
            return too_long(index, len(seq), self._max_tokens)
        return self._vocabulary_failure(index, seq)

    def encode_texts(self, texts: list[str], truncate: bool, side: str = "right", prefix: str = "") -> Tokenized:
        """Token ids of prefix + each text, cut at max_tokens; without truncate, longer texts fail instead.

        A text that adds nothing to the prefix's own tokens fails as empty: the tokenizer drops
        control characters, U+FFFD and (for most vocabularies) whitespace, and the vector of such
        a text would be the vector of no text at all, which the API refuses for "".
        """
        tok = self.tokenizer()
        tok.truncation_side = side  # this thread's own copy
        full = [prefix + t for t in texts] if prefix else texts
        with tracing.span("tokenize", **{"edge_embed.inputs": len(texts)}):
            enc = tok(full, truncation=True, max_length=self._max_tokens, padding=False,
                      return_attention_mask=False)
        batch = Tokenized(enc["input_ids"], enc.get("token_type_ids"))
        empty = self._tokens_of_nothing(tok, prefix)
        failures = [InputFailure(i, NOTHING_READ, EMPTY_INPUT)
                    for i, ids in enumerate(batch.ids) if ids == empty]
        if not truncate:
            failures += self._overlong_texts(tok, full, batch.lengths)
        return batch.with_failures(failures) if failures else batch

    def _tokens_of_nothing(self, tok, prefix: str) -> list[int]:
        """The ids the prefix alone tokenises to, special tokens included; memoised per prefix."""
        ids = self._empty_ids.get(prefix)
        if ids is None:
            ids = self._empty_ids[prefix] = tok(prefix, truncation=True, max_length=self._max_tokens)["input_ids"]
        return ids

    def _overlong_texts(self, tok, texts: list[str], lengths: list[int]) -> list[InputFailure]:
        """Refusals for the texts truncation cut; only those that reached the limit can have been."""
        failures = []
        for i, n in enumerate(lengths):
            if n == self._max_tokens:
                full = len(tok(texts[i])["input_ids"])
                if full > self._max_tokens:
                    failures.append(too_long(i, full, self._max_tokens))
        return failures

    def _run(self, batch: Tokenized, forward: Callable[[dict[str, torch.Tensor]], torch.Tensor | list[Any]],
             placeholder: Any) -> list[Any]:
        """Runs forward on each length bucket on the compute thread; results in input order.

        Only the inputs that did not fail are computed, so they get exactly the buckets they
        would get alone; each failed input's result is placeholder. With no input left, the
        compute thread is not even asked.

        forward answers a bucket with a tensor of one row per input, left on the device: the
        call's rows then come back in one copy, once every pass is queued, rather than one
        synchronising copy per bucket. Or it answers with a list of per-row values it copied
        itself, where rows differ in shape.
        """
        out: list[Any] = [placeholder] * len(batch.ids)
        rows = batch.computed_rows
        if not rows:
            return out
        lengths = [batch.lengths[i] for i in rows]
        buckets = [[rows[k] for k in bucket] for bucket in length_buckets(
            lengths, self._ctx.max_batch_tokens, self._overhead_tokens, self._width_multiple, self._max_tokens)]
        tok = self.tokenizer()
        padded = self._staging.to_device([self._pad(bucket, batch, tok.pad_token_id, tok.padding_side)
                                          for bucket in buckets])
        threads = compute_threads.requested()
        deadline = call_deadline.current()

        def compute() -> list[tuple[list[int], Callable[[], Any]]]:
            with torch.inference_mode():
                parts = []
                for bucket, features in zip(buckets, padded):
                    call_deadline.check(deadline)
                    # After idling, a short pass runs alone rather than wait for sleeping threads
                    # to wake, where the device profile measured that faster.
                    idle = time.monotonic() - self._last_pass >= IDLE_S
                    alone = idle and features["input_ids"].numel() <= self._single_thread_tokens
                    compute_threads.apply(1 if alone else threads or self._threads_alone)
                    parts += self._forward_fitting(forward, bucket, features)
                    self._last_pass = time.monotonic()
                if parts and isinstance(parts[0][1], torch.Tensor):
                    order = [row for bucket, _ in parts for row in bucket]
                    return [(order, self._staging.from_device(torch.cat([values.float() for _, values in parts])))]
            return [(bucket, lambda values=values: values) for bucket, values in parts]

        attributes = {"edge_embed.rows": len(rows), "edge_embed.buckets": len(buckets),
                      "edge_embed.tokens": sum(lengths)} if tracing.enabled() else {}
        with tracing.span("forward", **attributes):
            # The copy back is waited for here, off the compute thread, which meanwhile starts the
            # next call's passes.
            for bucket, fetch in compute_threads.run_passes(self._compute, compute):
                for row, value in zip(bucket, fetch()):
                    out[row] = value
        return out

    def _forward_fitting(self, forward: Callable, bucket: list[int], features: dict[str, torch.Tensor]) -> list:
        """forward on one bucket; where the device runs out of memory, on each half of it in turn.

        Other calls' memory comes and goes, so a bucket that fitted before may not fit now. Only
        a single input that does not fit alone fails the call, as the device being out of
        capacity rather than a fault of the input.
        """
        try:
            return [(bucket, forward(features))]
        except Exception as exc:
            if not out_of_memory(exc):
                raise
        release_memory(self.device)
        if len(bucket) == 1:
            raise OutOfDeviceMemory(f"one input of {int(features['attention_mask'].sum())} tokens does not fit "
                                    f"in the free memory of {self.device}")
        half = len(bucket) // 2
        return (self._forward_fitting(forward, bucket[:half], {k: v[:half] for k, v in features.items()})
                + self._forward_fitting(forward, bucket[half:], {k: v[half:] for k, v in features.items()}))

    def _token_states(self, model, batch: Tokenized) -> MultiVectorOutput:
        """Every non-padding token's last hidden state from model, the bare encoder."""
        def forward(features):
            states = model(**features).last_hidden_state.float().cpu().numpy()
            keep = features["attention_mask"].bool().cpu().numpy()
            return [states[r][keep[r]] for r in range(states.shape[0])]

        width = model.config.hidden_size
        return MultiVectorOutput(self._run(batch, forward, np.empty((0, width), np.float32)),
                                 batch.lengths, batch.failures)

    def _pad(self, rows: list[int], batch: Tokenized, pad_id: int, side: str) -> dict[str, np.ndarray]:
        """Pads one bucket on the tokenizer's own side, to a width the device profile rounds up
        (never past the model's limit); position ids depend on that side."""
        lengths = np.array([len(batch.ids[i]) for i in rows])
        width = padded_width(int(lengths.max()), self._width_multiple, self._max_tokens)
        # Positions holding tokens, row by row; a boolean assignment fills them in row-major
        # order, which is each row's own order on either side.
        mask = np.arange(width) < lengths[:, None]
        if side == "left":
            mask = mask[:, ::-1]
        count = int(lengths.sum())
        input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
        input_ids[mask] = np.fromiter(itertools.chain.from_iterable(batch.ids[i] for i in rows), np.int64, count)
        features = {"input_ids": input_ids, "attention_mask": mask.astype(np.int64)}
        if batch.type_ids is not None:
            types = np.zeros((len(rows), width), dtype=np.int64)
            types[mask] = np.fromiter(itertools.chain.from_iterable(batch.type_ids[i] for i in rows), np.int64, count)
            features["token_type_ids"] = types
        return features


def _utf8_offsets(text: str) -> list[int]:
    """UTF-8 byte offset of each character position of text, and of its end."""
    offsets = [0] * (len(text) + 1)
    for i, ch in enumerate(text):
        offsets[i + 1] = offsets[i] + len(ch.encode("utf-8", "surrogatepass"))
    return offsets


def matryoshka(vectors: np.ndarray, dimensions: int | None, full: int, allowed: tuple[int, ...],
               normalize: bool = True) -> np.ndarray:
    """Cuts vectors to a Matryoshka size and (unless asked not to) normalises them again."""
    if dimensions is None or dimensions == full:
        return vectors
    if dimensions not in allowed:
        sizes = ", ".join(str(d) for d in sorted(set(allowed) | {full}, reverse=True))
        raise UnsupportedOption("dimensions", "unsupported_dimensions",
                                f"dimensions={dimensions} is not supported by this model; supported: {sizes}")
    cut = vectors[:, :dimensions]
    if not normalize:
        return cut
    return cut / np.maximum(np.linalg.norm(cut, axis=1, keepdims=True), 1e-12)
