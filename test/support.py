"""Constants shared by the Python test suites (importable because pytest puts test/ on the path)."""

from pathlib import Path

#: Repository root.
ROOT = Path(__file__).resolve().parent.parent
#: The embedded default model every end-to-end suite serves.
MODEL = "all-minilm-l6-v2"
