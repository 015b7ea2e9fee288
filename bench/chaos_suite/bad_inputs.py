"""Scenario 7, a corpus of bad requests across every route: always a 4xx envelope, never a 500.

Each case is one malformed request: wrong types, missing or empty fields, nulls, huge numbers,
bad token ids, over-long texts, broken JSON and encodings, forbidden keys, wrong methods. The
answer must be a 4xx with OpenAI's error envelope (and the specific status or code the API
promises, where it promises one); afterwards the server must still be healthy and serving.

A few near-misses are there to pin the other side of the rule: a null field means the field is
absent, and a request without `model` goes to the default model, so those must answer 200.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import select
import socket
import time
import zlib
from dataclasses import dataclass

import httpx

from .config import HOST, MODEL
from .results import Context, Row, check
from .server import Server, envelope_problem, error_of

M = MODEL
JSON = {"content-type": "application/json"}
LONG_WORDS = " ".join(f"word{i}" for i in range(450))  # > 256 tokens, < MAX_TEXT_CHARS
OVER_CHARS = "a " * 10_001  # > MAX_TEXT_CHARS (20000)
ANY_4XX = frozenset(range(400, 500))


@dataclass
class Case:
    """One bad request and what its answer must be."""

    name: str
    method: str
    path: str
    body: bytes | None
    headers: dict[str, str]
    statuses: frozenset[int] = ANY_4XX
    code: str | None = None
    raw: bool = False  # sent over a raw socket (the server may answer before reading it all)


def j(name: str, path: str, obj: object, statuses: frozenset[int] | int = ANY_4XX, code: str | None = None) -> Case:
    """A POST with obj as JSON (non-ASCII escaped, so lone surrogates travel as \\udXXX)."""
    st = frozenset([statuses]) if isinstance(statuses, int) else statuses
    return Case(name, "POST", path, json.dumps(obj, ensure_ascii=True).encode(), JSON, st, code)


def b(name: str, path: str, raw: bytes, headers: dict[str, str] | None = None,
      statuses: frozenset[int] | int = ANY_4XX, code: str | None = None, method: str = "POST") -> Case:
    """A request with a raw body and headers (JSON content type unless told otherwise)."""
    st = frozenset([statuses]) if isinstance(statuses, int) else statuses
    return Case(name, method, path, raw, JSON if headers is None else headers, st, code)


def cases() -> list[Case]:
    """Every bad request, grouped by route."""
    E, ok = "/v1/embeddings", {"model": M, "input": "fine"}
    out = [
        # /v1/embeddings: fields
        j("emb: missing input", E, {"model": M}), j("emb: model number", E, {"model": 5, "input": "a"}),
        j("emb: model empty", E, {"model": "", "input": "a"}),
        j("emb: unknown model", E, {"model": "no-such-model", "input": "a"}, 404),
        j("emb: input null", E, {"model": M, "input": None}), j("emb: input empty string", E, {"model": M, "input": ""}),
        j("emb: input empty list", E, {"model": M, "input": []}), j("emb: input [\"\"]", E, {"model": M, "input": [""]}),
        j("emb: input [null]", E, {"model": M, "input": [None]}), j("emb: input object", E, {"model": M, "input": {}}),
        j("emb: input true", E, {"model": M, "input": True}), j("emb: input bare number", E, {"model": M, "input": 5}),
        j("emb: token id float", E, {"model": M, "input": [1.5]}), j("emb: token id negative", E, {"model": M, "input": [-1]}),
        j("emb: empty token list", E, {"model": M, "input": [[]]}), j("emb: nested strings", E, {"model": M, "input": [["a"]]}),
        j("emb: mixed str and int", E, {"model": M, "input": ["a", 1]}),
        j("emb: mixed ids and str", E, {"model": M, "input": [[1, 2], "a"]}),
        j("emb: encoding hex", E, {**ok, "encoding_format": "hex"}),
        j("emb: dimensions -1", E, {**ok, "dimensions": -1}), j("emb: dimensions 0", E, {**ok, "dimensions": 0}),
        j("emb: dimensions 100 unsupported", E, {**ok, "dimensions": 100}, 400),
        j("emb: dimensions 1e300", E, {**ok, "dimensions": 1e300}), j("emb: dimensions string", E, {**ok, "dimensions": "384"}),
        j("emb: dimensions 384.5", E, {**ok, "dimensions": 384.5}), j("emb: dimensions 2^64", E, {**ok, "dimensions": 2**64}),
        j("emb: input_type passage", E, {**ok, "input_type": "passage"}), j("emb: prompt_name empty", E, {**ok, "prompt_name": ""}),
        j("emb: prompt_name unknown", E, {**ok, "prompt_name": "nope"}, 400),
        j("emb: truncation_direction up", E, {**ok, "truncation_direction": "up"}),
        j("emb: normalize string", E, {**ok, "normalize": "yes"}),
        j("emb: truncate string", E, {**ok, "truncate": "no"}), j("emb: tokenizer gpt2", E, {**ok, "tokenizer": "gpt2"}),
        j("emb: user number", E, {**ok, "user": 5}),
        j("emb: embedding_type sparse (not this model)", E, {**ok, "embedding_type": "sparse"}, 400),
        j("emb: embedding_type colbert (not this model)", E, {**ok, "embedding_type": "colbert"}, 400),
        j("emb: embedding_type unknown", E, {**ok, "embedding_type": "xyz"}),
        j("emb: 2049 inputs", E, {"model": M, "input": ["a"] * 2049}, 400),
        j("emb: text over MAX_TEXT_CHARS", E, {"model": M, "input": OVER_CHARS}, 400),
        j("emb: over-long with truncate false", E, {"model": M, "input": ["ok", LONG_WORDS], "truncate": False}, 400, "input_too_long"),
        j("emb: model-vocab id out of range", E, {"model": M, "input": [[101, 999_999, 102]], "tokenizer": "model"}, 400),
        j("emb: cl100k id out of range", E, {"model": M, "input": [[99_999_999]]}, 400),
        j("emb: cl100k gap id among real ones", E, {"model": M, "input": [[15339, 100_256]]}, 400, "invalid_token_ids"),
        j("emb: cl100k id of a lone UTF-8 byte", E, {"model": M, "input": [[9468]]}, 400, "empty_input"),
        j("emb: only a NUL character", E, {"model": M, "input": ["fine", "\u0000"]}, 400, "empty_input"),
        j("emb: only whitespace", E, {"model": M, "input": " \t\n"}, 400, "empty_input"),
        j("emb: token id 2^53+1", E, {"model": M, "input": [2**53 + 1], "tokenizer": "model"}),
        b("emb: token id 1e400", E, b'{"model":"all-minilm-l6-v2","input":[1e400]}'),
        # /v1/embeddings: bodies, encodings, content types
        b("emb: truncated JSON", E, b'{"model": "all-minilm-l6-v2", "input": '),
        b("emb: trailing garbage", E, b'{"model":"all-minilm-l6-v2","input":"a"} xyz'),
        b("emb: top-level array", E, b"[]"), b("emb: top-level string", E, b'"hello"'), b("emb: top-level null", E, b"null"),
        b("emb: empty body", E, b""),
        b("emb: text/plain", E, json.dumps(ok).encode(), {"content-type": "text/plain"}, 415, "unsupported_media_type"),
        b("emb: form content type", E, b"model=all-minilm-l6-v2&input=a", {"content-type": "application/x-www-form-urlencoded"},
          415, "unsupported_media_type"),
        b("emb: no content type", E, json.dumps(ok).encode(), {}),
        b("emb: invalid UTF-8", E, b'{"model":"all-minilm-l6-v2","input":["a","b\xff\xfec"]}', statuses=400, code="invalid_utf8"),
        j("emb: lone surrogate", E, {"model": M, "input": ["a", "x\ud800y"]}, 400, "invalid_unicode"),
        j("emb: lone low surrogate string", E, {"model": M, "input": "\udc00"}, 400, "invalid_unicode"),
        j("emb: __proto__ key", E, {"__proto__": {"admin": True}, **ok}, 400, "forbidden_json_key"),
        j("emb: nested __proto__ key", E, {**ok, "user": "u", "extra": {"__proto__": {"x": 1}}}, 400, "forbidden_json_key"),
        b("emb: gzip garbage", E, b"definitely not gzip", {**JSON, "content-encoding": "gzip"}, 400),
        b("emb: deflate garbage", E, b"definitely not deflate", {**JSON, "content-encoding": "deflate"}, 400),
        b("emb: gzip of broken JSON", E, gzip.compress(b'{"model": '), {**JSON, "content-encoding": "gzip"}, 400),
        b("emb: deflate of __proto__", E, zlib.compress(b'{"__proto__":{},"model":"all-minilm-l6-v2","input":"a"}'),
          {**JSON, "content-encoding": "deflate"}, 400, "forbidden_json_key"),
        b("emb: br garbage", E, json.dumps(ok).encode(), {**JSON, "content-encoding": "br"}, 400, "invalid_content_encoding"),
        b("emb: compress encoding", E, json.dumps(ok).encode(), {**JSON, "content-encoding": "compress"}, 415),
        b("emb: made-up encoding", E, json.dumps(ok).encode(), {**JSON, "content-encoding": "x-chaos"}, 415),
        b("emb: gzip bomb (100 MB of spaces)", E, gzip.compress(b" " * 100_000_000, 9), {**JSON, "content-encoding": "gzip"},
          frozenset({400, 413})),
        b("emb: 100k-deep nesting", E, b'{"model":"all-minilm-l6-v2","input":' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        # other GET routes and unknown paths
        b("POST /health", "/health", b"{}", statuses=frozenset({404, 405})),
        b("POST /v1/models", "/v1/models", b"{}", statuses=frozenset({404, 405})),
        b("DELETE /v1/models", "/v1/models", None, {}, frozenset({404, 405}), method="DELETE"),
        b("POST /info", "/info", b"{}", statuses=frozenset({404, 405})),
        b("PUT /metrics", "/metrics", b"{}", statuses=frozenset({404, 405}), method="PUT"),
        b("POST /openapi.json", "/openapi.json", b"{}", statuses=frozenset({404, 405})),
        b("GET /v1/embeddings", E, None, {}, frozenset({404, 405}), method="GET"),
        b("GET unknown route", "/v1/nope", None, {}, 404, method="GET"),
        b("GET path traversal", "/v1/models/..%2f..%2f..%2fetc%2fpasswd", None, {}, 404, method="GET"),
    ]
    R = "/v1/rerank"
    doc = {"model": M, "query": "q", "documents": ["d"]}
    out += [
        j("rerank: no documents", R, {"model": M, "query": "q"}), j("rerank: documents empty", R, {**doc, "documents": []}),
        j("rerank: empty document", R, {**doc, "documents": [""]}), j("rerank: document number", R, {**doc, "documents": [5]}),
        j("rerank: document empty text obj", R, {**doc, "documents": [{"text": ""}]}),
        j("rerank: documents string", R, {**doc, "documents": "abc"}), j("rerank: query missing", R, {"model": M, "documents": ["d"]}),
        j("rerank: query empty", R, {**doc, "query": ""}), j("rerank: top_n negative", R, {**doc, "top_n": -1}),
        j("rerank: top_n 0", R, {**doc, "top_n": 0}), j("rerank: top_n 1.5", R, {**doc, "top_n": 1.5}),
        j("rerank: top_n string", R, {**doc, "top_n": "3"}), j("rerank: top_n 1e20", R, {**doc, "top_n": 1e20}),
        j("rerank: max_tokens_per_doc -5", R, {**doc, "max_tokens_per_doc": -5}),
        j("rerank: activation relu", R, {**doc, "activation": "relu"}), j("rerank: raw_scores string", R, {**doc, "raw_scores": "yes"}),
        j("rerank: return_documents 1", R, {**doc, "return_documents": 1}),
        j("rerank: unknown model", R, {**doc, "model": "no-such-model"}, 404),
        j("rerank: embedding model cannot rerank", R, doc, 400),
        j("v2/rerank: embedding model cannot rerank", "/v2/rerank", doc, 400),
        j("rerank: no model and no reranker served", R, {"query": "q", "documents": ["d"]}),
        j("TEI rerank: texts empty", "/rerank", {"query": "q", "texts": []}),
        j("TEI rerank: empty text", "/rerank", {"query": "q", "texts": [""]}),
        j("TEI rerank: query missing", "/rerank", {"texts": ["a"]}),
        j("reranking: lone surrogate query", "/reranking", {**doc, "query": "q\ud800"}, 400, "invalid_unicode"),
        b("v1/reranking: invalid UTF-8", "/v1/reranking", b'{"query":"q\xc3","documents":["d"]}', statuses=400, code="invalid_utf8"),
        j("rerank: lone surrogate in documents[2]", R, {**doc, "documents": ["a", "b", "c\udfffd"]}, 400, "invalid_unicode"),
    ]
    out += [
        j("embed: inputs missing", "/embed", {}), j("embed: inputs empty list", "/embed", {"inputs": []}),
        j("embed: inputs empty string", "/embed", {"inputs": ""}), j("embed: inputs [null]", "/embed", {"inputs": [None]}),
        j("embed: normalize string", "/embed", {"inputs": "a", "normalize": "x"}),
        j("embed: dimensions -1", "/embed", {"inputs": "a", "dimensions": -1}),
        j("embed: truncation_direction middle", "/embed", {"inputs": "a", "truncation_direction": "middle"}),
        j("embed: prompt_name number", "/embed", {"inputs": "a", "prompt_name": 5}),
        j("embed: 2049 inputs", "/embed", {"inputs": ["a"] * 2049}, 400),
        j("embed: lone surrogate", "/embed", {"inputs": ["ok", "\ud800"]}, 400, "invalid_unicode"),
        b("embed: invalid UTF-8", "/embed", b'{"inputs":["ok","\xff"]}', statuses=400, code="invalid_utf8"),
        j("embed: over-long with truncate false", "/embed", {"inputs": [LONG_WORDS], "truncate": False}, 400, "input_too_long"),
        j("embed_sparse: not this model", "/embed_sparse", {"inputs": "a"}, 400),
        j("embed_sparse: inputs empty", "/embed_sparse", {"inputs": []}),
        j("embedding: content missing", "/embedding", {}), j("embedding: content empty", "/embedding", {"content": ""}),
        j("embedding: content empty list", "/embedding", {"content": []}),
        j("embedding: embd_normalize string", "/embedding", {"content": "a", "embd_normalize": "two"}),
        j("embedding: embd_normalize -2", "/embedding", {"content": "a", "embd_normalize": -2}),
        j("embedding: embd_normalize 1.5", "/embedding", {"content": "a", "embd_normalize": 1.5}),
        b("embedding: embd_normalize 1e400", "/embedding", b'{"content":"a","embd_normalize":1e400}'),
        j("embedding: negative token id", "/embedding", {"content": [[-1]]}),
        j("embedding: model-vocab id out of range", "/embedding", {"content": [[99_999_999]], "tokenizer": "model"}, 400),
        j("embedding: tokenizer unknown", "/embedding", {"content": "a", "tokenizer": "x"}),
        j("embeddings (llama): content object", "/embeddings", {"content": {}}),
        j("embeddings (llama): lone surrogate", "/embeddings", {"content": ["a", "b", "\ud800"]}, 400, "invalid_unicode"),
        j("tokenize: no content or inputs", "/tokenize", {}), j("tokenize: content number", "/tokenize", {"content": 5}),
        j("tokenize: inputs empty", "/tokenize", {"inputs": []}), j("tokenize: inputs [5]", "/tokenize", {"inputs": [5]}),
        j("tokenize: add_special string", "/tokenize", {"content": "a", "add_special": "yes"}),
        j("tokenize: with_pieces 1", "/tokenize", {"content": "a", "with_pieces": 1}),
        j("tokenize: lone surrogate", "/tokenize", {"content": "x\ud800"}, 400, "invalid_unicode"),
        b("tokenize: invalid UTF-8", "/tokenize", b'{"inputs":["\xfe"]}', statuses=400, code="invalid_utf8"),
        j("tokenize: unknown model", "/tokenize", {"content": "a", "model": "no-such-model"}, 404),
        j("detokenize: tokens missing", "/detokenize", {}), j("detokenize: tokens string", "/detokenize", {"tokens": "abc"}),
        j("detokenize: negative id", "/detokenize", {"tokens": [-1]}), j("detokenize: float id", "/detokenize", {"tokens": [1.5]}),
        j("detokenize: id out of range", "/detokenize", {"tokens": [99_999_999]}, 400),
        j("detokenize: nested", "/detokenize", {"tokens": [[1, 2]]}),
        j("decode: ids missing", "/decode", {}), j("decode: negative id", "/decode", {"ids": [[-1]]}),
        j("decode: string ids", "/decode", {"ids": [["a"]]}), j("decode: id out of range", "/decode", {"ids": [999_999]}, 400),
        j("decode: skip_special_tokens string", "/decode", {"ids": [101], "skip_special_tokens": "no"}),
    ]
    out += [  # null means absent, and no model means the default one: these are accepted
        j("emb: missing model (default)", E, {"input": "a"}, 200), j("emb: model null (default)", E, {"model": None, "input": "a"}, 200),
        j("emb: encoding null (absent)", E, {**ok, "encoding_format": None}, 200),
        j("emb: dimensions null (absent)", E, {**ok, "dimensions": None}, 200),
        j("emb: normalize null (absent)", E, {**ok, "normalize": None}, 200),
        j("embedding: embd_normalize null (absent)", "/embedding", {"content": "a", "embd_normalize": None}, 200),
    ]
    big = json.dumps({"model": M, "input": "x" * (17 * 1024 * 1024)}).encode()
    out.append(Case("emb: body over MAX_REQUEST_BYTES (17 MiB)", "POST", E, big, JSON, frozenset({413}), raw=True))
    return out


def raw_exchange(port: int, case: Case, timeout: float) -> httpx.Response:
    """Sends the request over a plain socket while reading, so an early answer (413) is seen."""
    head = (f"{case.method} {case.path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in case.headers.items())
            + f"Content-Length: {len(case.body or b'')}\r\n\r\n").encode()
    data, sent, buf = head + (case.body or b""), 0, b""
    deadline = time.monotonic() + timeout
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.setblocking(False)
        while time.monotonic() < deadline:
            readable, writable, _ = select.select([s], [s] if sent < len(data) else [], [], 0.2)
            if readable:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    break
                buf += chunk
            if writable:
                try:
                    sent += s.send(data[sent:sent + 65536])
                except (BrokenPipeError, ConnectionResetError):
                    sent = len(data)
    head_part, _, body = buf.partition(b"\r\n\r\n")
    lines = head_part.decode(errors="replace").split("\r\n")
    if not lines or len(lines[0].split()) < 2:
        raise httpx.RemoteProtocolError(f"no HTTP answer ({len(buf)} bytes)")
    headers = [tuple(h.split(":", 1)) for h in lines[1:] if ":" in h]
    return httpx.Response(int(lines[0].split()[1]), headers=[(k.strip(), v.strip()) for k, v in headers], content=body)


async def send(server: Server, client: httpx.AsyncClient, case: Case) -> str | None:
    """Sends one case; None if its answer is right, else what was wrong."""
    try:
        if case.raw:
            res = await asyncio.to_thread(raw_exchange, server.port, case, 60)
        else:
            res = await client.request(case.method, case.path, content=case.body, headers=case.headers)
    except httpx.TimeoutException:
        return f"{case.name}: no answer within 60 s"
    except httpx.HTTPError as exc:
        return f"{case.name}: {type(exc).__name__}: {exc}"
    if res.status_code not in case.statuses:
        want = "4xx" if case.statuses == ANY_4XX else "/".join(map(str, sorted(case.statuses)))
        return f"{case.name}: status {res.status_code}, want {want}: {res.text[:140]}"
    if res.status_code < 400:
        return None
    bad = envelope_problem(res)
    if bad:
        return f"{case.name}: {res.status_code} without the error envelope: {bad}"
    if case.code and error_of(res).get("code") != case.code:
        return f"{case.name}: code {error_of(res).get('code')!r}, want {case.code!r}: {error_of(res).get('message', '')[:120]}"
    return None


async def send_all(server: Server, all_cases: list[Case]) -> list[str]:
    """Four at a time, each with a 60 s limit; returns the failures."""
    gate = asyncio.Semaphore(4)
    async with server.async_client(8, timeout=60) as client:
        async def guarded(case: Case) -> str | None:
            async with gate:
                return await send(server, client, case)
        results = await asyncio.gather(*(guarded(c) for c in all_cases))
    return [r for r in results if r]


def run(ctx: Context) -> list[Row]:
    """All cases on one default server, then a health check and a normal request."""
    name = "bad_inputs"
    all_cases = cases()
    routes = sorted({c.path for c in all_cases})
    with Server(ctx, "bad-inputs", {}) as server:
        ctx.say(f"{name}: {len(all_cases)} bad requests over {len(routes)} paths")
        failures = asyncio.run(send_all(server, all_cases))
        alive_after = server.running()
        status = server.settled_health()
        normal = server.embed(["a normal request after the bad ones"], timeout=30).status_code if alive_after else None
        server_faults = [r for r in server.lines("request_failed")]
    for line in failures:
        ctx.say(f"{name}: FAIL {line}")
    return [
        check(name, "bad requests sent", len(all_cases), ">= 80", len(all_cases) >= 80),
        check(name, "answers not the one promised (4xx envelope, or 200 for a null field)", len(failures), "0", not failures),
        check(name, "request_failed (server fault) log lines", len(server_faults), "0", not server_faults),
        check(name, "gateway alive, /health, normal request", f"{'alive' if alive_after else 'DEAD'}, {status}, {normal}",
              "alive, 200, 200", alive_after and status == 200 and normal == 200),
    ]
