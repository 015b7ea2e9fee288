"""Prints transformers' text-classification pipeline scores for the inputs on stdin, as JSON.

    python reference_classify.py MODEL_DIR

The inputs are a JSON list of texts and [text, text_pair] pairs. The answer holds, per input,
{label: score} for every label twice: under "scores" with the pipeline's default activation,
under "logits" with none. The end-to-end suites compare the server's classifiers against this:
the reference library, in process, on the same weights the runner loads.
"""

import json
import sys

from transformers import pipeline

pipe = pipeline("text-classification", model=sys.argv[1], top_k=None, device="cpu")
inputs = [x if isinstance(x, str) else {"text": x[0], "text_pair": x[1]} for x in json.load(sys.stdin)]


def table(**options):
    return [{r["label"]: r["score"] for r in row} for row in pipe(inputs, truncation=True, **options)]


print(json.dumps({"scores": table(), "logits": table(function_to_apply="none")}))
