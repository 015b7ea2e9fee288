#!/usr/bin/env python3
"""Vector agreement of every client we serve with sentence-transformers, on the default model.

    .venv/bin/python bench/client_agreement.py

Starts a server with the embedded default model (all-MiniLM-L6-v2), then embeds the same texts
through each client as its users call it: the openai SDKs (with and without /v1 in the base URL),
LangChain (which sends cl100k_base token ids), huggingface_hub's InferenceClient (TEI's root
route), the cohere SDK (v1 and v2), and llama.cpp's and TEI's request shapes, with text and with
the model's own token ids from /tokenize. Each is compared with sentence-transformers'
encode() in this process; the table gives each client's lowest cosine, and how far it is from 1.
This is a measurement for docs/ and issue notes; the end-to-end tests hold the floors.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

from bench_embeddings import MODEL, ROOT, corpus, load_reference, start_server
from machine import cpu_description

NODE = str(ROOT / "node_modules/.bin/node")


def post(url: str, path: str, body: dict):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as res:
        return json.load(res)


def openai_python(url: str, texts: list[str], base: str) -> list[list[float]]:
    from openai import OpenAI

    return [d.embedding for d in OpenAI(api_key="unused", base_url=url + base).embeddings.create(model=MODEL, input=texts).data]


def openai_node(url: str, texts: list[str]) -> list[list[float]]:
    script = ("import OpenAI from 'openai';"
              "const [url, model, texts] = JSON.parse(process.argv[1]);"
              "const res = await new OpenAI({ apiKey: 'unused', baseURL: url }).embeddings.create({ model, input: texts });"
              "process.stdout.write(JSON.stringify(res.data.map((d) => d.embedding)));")
    out = subprocess.run([NODE, "--input-type=module", "-e", script, json.dumps([url + "/v1", MODEL, texts])],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def langchain(url: str, texts: list[str]) -> list[list[float]]:
    # LangChain tokenises with tiktoken and sends cl100k_base ids; the ranks come from js-tiktoken.
    ranks = subprocess.run([NODE, "test/e2e_py/write_tiktoken_ranks.mjs"], cwd=ROOT, capture_output=True, check=True).stdout
    cache = Path(tempfile.mkdtemp(prefix="tiktoken-"))
    source = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
    (cache / hashlib.sha1(source.encode()).hexdigest()).write_bytes(ranks)  # tiktoken's cache file name
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    from langchain_openai import OpenAIEmbeddings

    return OpenAIEmbeddings(model=MODEL, base_url=url + "/v1", api_key="unused").embed_documents(texts)


def hf_inference_client(url: str, texts: list[str]) -> list[list[float]]:
    from huggingface_hub import InferenceClient, constants

    constants.HF_HUB_OFFLINE = False  # this client talks to 127.0.0.1 only
    return np.asarray(InferenceClient(model=url).feature_extraction(texts)).tolist()


def cohere_embed(url: str, texts: list[str], version: int) -> list[list[float]]:
    import cohere

    if version == 1:
        return cohere.Client(api_key="unused", base_url=url).embed(model=MODEL, texts=texts, input_type="search_document").embeddings
    res = cohere.ClientV2(api_key="unused", base_url=url).embed(model=MODEL, texts=texts, input_type="search_document",
                                                                  embedding_types=["float"])
    return res.embeddings.float_


def model_ids(url: str, texts: list[str]) -> list[list[int]]:
    return [[t["id"] for t in tokens] for tokens in post(url, "/tokenize", {"inputs": texts})]


CLIENTS = {
    "openai-python, base URL .../v1": lambda url, t: openai_python(url, t, "/v1"),
    "openai-python, base URL without /v1": lambda url, t: openai_python(url, t, ""),
    "openai-node (v1)": openai_node,
    "LangChain OpenAIEmbeddings (cl100k ids)": langchain,
    "huggingface_hub InferenceClient (POST /)": hf_inference_client,
    "cohere Client.embed (v1)": lambda url, t: cohere_embed(url, t, 1),
    "cohere ClientV2.embed (v2)": lambda url, t: cohere_embed(url, t, 2),
    "llama.cpp POST /embedding, text": lambda url, t: [r["embedding"][0] for r in post(url, "/embedding", {"content": t})],
    "llama.cpp POST /embedding, model ids": lambda url, t: [r["embedding"][0] for r in post(url, "/embedding", {"content": model_ids(url, t)})],
    "TEI POST /embed, text": lambda url, t: post(url, "/embed", {"inputs": t}),
    "TEI POST /embed, model ids": lambda url, t: post(url, "/embed", {"inputs": model_ids(url, t)}),
}


def main() -> int:
    texts = corpus(16, 16, seed=7)
    reference = load_reference()
    want = reference.encode(texts)
    cpu, flags = cpu_description()
    print(f"CPU: {cpu}\nflags: {flags}\nmodel: {MODEL}, {len(texts)} texts\n")
    proc, url = start_server({"EMBEDDING_CACHE_SIZE": "0"})
    failed = 0
    try:
        print("| Client | min cosine | largest 1 - cosine |\n| --- | --- | --- |")
        for name, embed in CLIENTS.items():
            try:
                got = np.asarray(embed(url, texts), dtype=np.float64)
            except Exception as exc:  # a client that cannot run is reported, not hidden
                print(f"| {name} | failed: {type(exc).__name__}: {str(exc)[:80]} | |")
                failed += 1
                continue
            cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
            print(f"| {name} | {cos.min():.7f} | {1 - cos.min():.1e} |")
    finally:
        proc.terminate()
        proc.wait(30)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
