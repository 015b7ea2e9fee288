"""Entry point: `python -m runner --model NAME ...`. The gateway's supervisor starts it."""

from __future__ import annotations

import os

# Before transformers is imported: weights come from models/ only, and its progress bars would
# land on stderr, which the supervisor shows to users as the runner's error output.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import gc  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from . import compute_threads
from .catalog import entry_from_gateway, load_catalog
from .detect import local_entry
from .device import release_memory, resolve_device
from .device_profile import profile_handler, warm_shapes
from .errors import ConfigError
from .fidelity import Thresholds
from .loader import load_handler
from .logs import JsonLogger
from .precision import apply_precision
from .server import EXIT_DEVICE_BROKEN, ServeOptions, remove_socket, serve

#: The environment variable through which the gateway hands a runner its secret.
SECRET_ENV = "EDGE_EMBED_RUNNER_SECRET"


def _parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m runner", description=__doc__)
    p.add_argument("--model", required=True, help="catalog name of the model to serve")
    p.add_argument("--config", default="configs/model_config.yaml", help="model catalog path, read when --entry is not given")
    p.add_argument("--entry", help="the model's catalog entry as JSON, as the gateway validated it; the catalog is then not read")
    p.add_argument("--models-dir", default="models", help="folder holding <name>/ weight folders")
    p.add_argument("--model-path", help="serve the model in this folder, which need not be in the catalog; "
                                        "the handler is chosen from the folder's own files")
    p.add_argument("--device", default="auto", help="auto, cpu, mps, cuda or cuda:N")
    p.add_argument("--socket", required=True, help="gRPC address, e.g. unix:///tmp/r.sock")
    p.add_argument("--workers", type=int, default=0,
                   help="calls computed at once; 0: what the device profile measured as best")
    p.add_argument("--threads", type=int, default=0,
                   help="compute threads (PyTorch and OpenVINO); 0: PyTorch's default, one per core")
    p.add_argument("--max-batch-tokens", type=int, default=16384,
                   help="padded tokens allowed in one forward pass")
    p.add_argument("--warmup", choices=("on", "off"), default="on")
    p.add_argument("--warmup-batch-size", type=int, default=8)
    p.add_argument("--warmup-steps", type=int, default=2)
    p.add_argument("--precision", default="", help="fp32, fp16, bf16, int8 or auto; empty: the catalog entry's")
    p.add_argument("--fidelity-min-mean-cosine", type=float, default=Thresholds.mean_cosine)
    p.add_argument("--fidelity-min-worst-cosine", type=float, default=Thresholds.worst_cosine)
    p.add_argument("--fidelity-min-top10-overlap", type=float, default=Thresholds.top10_overlap)
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warn", "error"))
    p.add_argument("--exit-with-stdin", action="store_true",
                   help="exit when stdin closes: the supervisor holds it open, so the runner "
                        "cannot outlive a gateway that was killed without a chance to stop it")
    return p.parse_args(argv)


def take_secret() -> str:
    """The secret every call must carry, taken out of the environment so no child inherits it."""
    secret = os.environ.pop(SECRET_ENV, "")
    if not secret:
        raise ConfigError(f"{SECRET_ENV} is not set: a runner serves only the gateway that started it")
    return secret


def _exit_when_stdin_closes(socket: str) -> None:
    def watch() -> None:
        # os.read on the raw descriptor: a thread blocked inside sys.stdin's buffered reader
        # would make interpreter shutdown abort with a fatal error.
        while os.read(0, 4096):
            pass
        # os._exit skips every cleanup, serve()'s included, so the socket file goes first.
        remove_socket(socket)
        os._exit(0)

    threading.Thread(target=watch, name="lifeline", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    logger = JsonLogger(args.log_level, model=args.model)
    if args.exit_with_stdin:
        _exit_when_stdin_closes(args.socket)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        secret = take_secret()
        folder = Path(args.model_path).resolve() if args.model_path else None
        if folder:
            entry = local_entry(args.model, folder)
        elif args.entry:
            entry = entry_from_gateway(args.entry)
        else:
            catalog = load_catalog(Path(args.config))
            if args.model not in catalog:
                raise ConfigError(f"model '{args.model}' is not in the catalog {args.config}; "
                                  f"known: {', '.join(sorted(catalog))}")
            entry = catalog[args.model]
        device = resolve_device(args.device)
        handler = load_handler(entry, Path(args.models_dir), device, args.max_batch_tokens, folder)
        limits = Thresholds(args.fidelity_min_mean_cosine, args.fidelity_min_worst_cosine,
                            args.fidelity_min_top10_overlap)
        handler = apply_precision(handler, args.model, args.precision or entry.precision, limits,
                                  compute_threads.alone(), lambda step: logger.info("precision_step", step=step))
        report = handler.precision
        # The fp32 handler, if another was chosen, is gone now: its device memory goes back too.
        gc.collect()
        release_memory(device)
        # Loading ran on this thread; passes run on others (see compute_threads).
        compute_threads.release_team()
        # Measured on what will serve: the precision's own encoder.
        profile = profile_handler(handler, device, args.max_batch_tokens)
    except ConfigError as exc:
        # stderr, not the JSON log: the supervisor shows it verbatim when startup fails.
        print(f"runner: {exc}", file=sys.stderr)
        return 2
    logger.info("device_profile", **profile.fields())
    if args.warmup == "on" and hasattr(handler, "time_pass"):
        shapes = warm_shapes(handler.time_pass, profile, handler.max_tokens, args.max_batch_tokens)
        if shapes:
            logger.info("shapes_warmed", passes=shapes)
    opts = ServeOptions(
        socket=args.socket,
        workers=args.workers if args.workers > 0 else profile.concurrency,
        warmup=args.warmup == "on",
        warmup_batch_size=max(1, args.warmup_batch_size),
        warmup_steps=max(0, args.warmup_steps),
    )
    logger.info("precision", precision=report.precision, detail=report.detail, converted=report.converted,
                fidelity=report.fidelity.__dict__ if report.fidelity else None, candidates=report.candidates)
    status = serve(args.model, str(device), handler, opts, secret, logger, profile)
    if status == EXIT_DEVICE_BROKEN:
        # Now, without joining the compute thread, which a broken device may hold for good.
        sys.stdout.flush()
        os._exit(status)
    return status



if __name__ == "__main__":
    sys.exit(main())
