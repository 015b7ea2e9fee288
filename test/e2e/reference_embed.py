"""Prints sentence-transformers' own vectors for the texts on stdin (a JSON list), as JSON.

    python reference_embed.py MODEL_DIR [PROMPT_NAME]

The end-to-end suites compare the server against this: the reference library, in process,
on the same weights the runner loads.
"""

import json
import sys

from sentence_transformers import SentenceTransformer

model = SentenceTransformer(sys.argv[1], device="cpu", local_files_only=True)
texts = json.load(sys.stdin)
prompt = sys.argv[2] if len(sys.argv) > 2 else None
print(json.dumps(model.encode(texts, batch_size=32, prompt_name=prompt).tolist()))
