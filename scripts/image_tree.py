#!/usr/bin/env python3
"""Checks an image's runtime stage (the CPU image's, by default) without a Docker daemon.

There is no Docker daemon on the machines that build and test this project, so the image itself
cannot be built here. This script does the next best thing, from the Dockerfile itself so that
the check cannot drift from the image:

1. It reads the runtime stage (the last one, or --stage) of the Dockerfile: its ARGs, ENV lines,
   WORKDIR, COPY instructions, ENTRYPOINT/CMD and HEALTHCHECK.
2. It assembles the same file tree as those COPY lines in a temporary folder. What the builder
   stage makes comes from this checkout instead: .venv and node_modules are the repository's
   own (setup.sh made them), mounted or symlinked in; the generated gRPC code and every other
   path are copied, and the models folder gets only the models the image bakes (MODELS).
3. It makes that tree read-only (chmod -R a-w). Where it may (as root, here and in CI), it then
   runs everything in a mount namespace of its own, where the tree, .venv and node_modules are
   read-only bind mounts and the tmpfs stand-in is mounted noexec, as `docker run --read-only
   --tmpfs /tmp` gives; elsewhere, as root, it drops the capabilities that let root ignore file
   modes (setpriv).
4. It starts the image's ENTRYPOINT with the image's ENV, in the tree, with the tmpfs mount point
   (/tmp) standing for a separate temporary folder and the image's WORKDIR for the tree. HOST is
   127.0.0.1 and PORT a free port, so nothing listens beyond loopback.
5. It waits for /health, runs the image's HEALTHCHECK command, sends one embeddings request,
   sends SIGTERM and expects a clean exit with no runner left behind, and finally checks that
   nothing in the tree was created or changed.

    .venv/bin/python scripts/image_tree.py                       # the CPU image, Dockerfile
    .venv/bin/python scripts/image_tree.py --env PRECISION=int8  # int8, converted beforehand
    .venv/bin/python scripts/image_tree.py --dockerfile Dockerfile.cuda --env MODEL_DEVICE=cpu
    # closer to the builder's output: runtime dependencies only, as the image installs them
    .venv/bin/python scripts/image_tree.py --venv /tmp/runtime-venv --node-modules /tmp/prod/node_modules

Every wait is bounded. Exit status 0 when every check passed; the last line is a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent
# What the builder stage makes with the project's own setup steps; the checkout's copies stand in.
BUILDER_PRODUCTS_LINKED = (".venv", "node_modules")
# The PATH of the official python base images, so the server sees no tool this machine adds.
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Capabilities that let root write regardless of file modes; dropped so that a-w really binds.
DAC_CAPS = "-dac_override,-dac_read_search,-fowner"


class CheckFailed(Exception):
    """A check did not pass; the message says which and why."""


# --- Reading the Dockerfile -------------------------------------------------------------------

@dataclass
class Instruction:
    line: int
    keyword: str
    rest: str


@dataclass
class Stage:
    name: str
    workdir: str = "/"
    args: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    copies: list[tuple[str | None, list[str], str]] = field(default_factory=list)  # (from, sources, dest)
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    healthcheck: tuple[dict[str, str], list[str]] | None = None
    user: str | None = None


def instructions(text: str) -> list[Instruction]:
    """Joins continued lines and drops comments, as Docker's parser does (comment and empty lines
    inside a continued instruction are skipped, not ended on)."""
    out: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not parts:
            start = number
        if stripped.endswith("\\"):
            parts.append(stripped[:-1].strip())
            continue
        parts.append(stripped)
        joined = " ".join(p for p in parts if p)
        keyword, _, rest = joined.partition(" ")
        out.append(Instruction(start, keyword.upper(), rest.strip()))
        parts = []
    if parts:
        raise CheckFailed(f"Dockerfile ends inside a continued instruction (line {start})")
    return out


_VAR = re.compile(r"\$\{(\w+)(?::([-+])([^}]*))?\}|\$(\w+)")


def expand(value: str, known: dict[str, str]) -> str:
    """Docker's ${VAR}, ${VAR:-default}, ${VAR:+alt} and $VAR, from the ARGs and ENVs so far."""
    def one(m: re.Match) -> str:
        name = m.group(1) or m.group(4)
        current = known.get(name, "")
        if m.group(2) == "-":
            return current or m.group(3)
        if m.group(2) == "+":
            return m.group(3) if current else ""
        return current
    return _VAR.sub(one, value)


def _exec_form(rest: str, where: int) -> list[str]:
    try:
        value = json.loads(rest)
    except ValueError:
        raise CheckFailed(f"line {where}: not in exec (JSON) form: {rest[:60]}") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CheckFailed(f"line {where}: exec form must be a JSON list of strings")
    return value


def _flags(tokens: list[str]) -> tuple[dict[str, str], list[str]]:
    flags: dict[str, str] = {}
    while tokens and tokens[0].startswith("--"):
        key, _, value = tokens.pop(0)[2:].partition("=")
        flags[key] = value
    return flags, tokens


def parse(text: str, build_args: dict[str, str]) -> list[Stage]:
    """Every stage, with the values this script needs; build_args act as --build-arg."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for ins in instructions(text):
        if ins.keyword == "FROM":
            tokens = ins.rest.split()
            name = tokens[2] if len(tokens) >= 3 and tokens[1].lower() == "as" else str(len(stages))
            stages.append(Stage(name))
            continue
        if ins.keyword == "ARG":
            key, has_default, default = ins.rest.partition("=")
            key = key.strip()
            if not stages:
                global_args[key] = build_args.get(key, default.strip().strip('"') if has_default else "")
            else:
                stage = stages[-1]
                value = default.strip().strip('"') if has_default else global_args.get(key, "")
                stage.args[key] = build_args.get(key, expand(value, {**stage.args, **stage.env}))
            continue
        if not stages:
            raise CheckFailed(f"line {ins.line}: {ins.keyword} before the first FROM")
        stage = stages[-1]
        known = {**stage.args, **stage.env}
        if ins.keyword == "WORKDIR":
            stage.workdir = str(PurePosixPath(stage.workdir) / expand(ins.rest, known))
        elif ins.keyword == "ENV":
            tokens = shlex.split(ins.rest)
            if tokens and "=" not in tokens[0]:  # the old `ENV KEY value` form
                tokens = [f"{tokens[0]}={' '.join(tokens[1:])}"]
            for token in tokens:
                key, _, value = token.partition("=")
                stage.env[key] = expand(value, {**stage.args, **stage.env})
        elif ins.keyword in ("COPY", "ADD"):
            if ins.keyword == "ADD":
                raise CheckFailed(f"line {ins.line}: ADD is not modelled here; use COPY")
            flags, tokens = _flags(shlex.split(ins.rest))
            if tokens and tokens[0].startswith("["):
                tokens = _exec_form(" ".join(tokens), ins.line)
            paths = [expand(t, known) for t in tokens]
            if len(paths) < 2:
                raise CheckFailed(f"line {ins.line}: COPY needs a source and a destination")
            dest = str(PurePosixPath(stage.workdir) / paths[-1]) + ("/" if paths[-1].endswith("/") else "")
            stage.copies.append((flags.get("from"), paths[:-1], dest))
        elif ins.keyword == "ENTRYPOINT":
            stage.entrypoint = _exec_form(ins.rest, ins.line)
        elif ins.keyword == "CMD":
            stage.cmd = _exec_form(ins.rest, ins.line)
        elif ins.keyword == "HEALTHCHECK":
            flags, _ = _flags(ins.rest.split())
            _, _, command = ins.rest.partition("CMD")
            if ins.rest.strip().upper() == "NONE":
                stage.healthcheck = None
            else:
                stage.healthcheck = (flags, _exec_form(command.strip(), ins.line))
        elif ins.keyword == "USER":
            stage.user = expand(ins.rest, known)
    return stages


# --- Assembling the tree ----------------------------------------------------------------------

def _inside(path: str, base: str) -> str | None:
    """path relative to base, or None when it lies outside."""
    rel = os.path.relpath(path, base)
    return None if rel == ".." or rel.startswith("../") else ("" if rel == "." else rel)


def assemble(stages: list[Stage], runtime: Stage, tree: Path, repo: Path, binds: list[tuple[Path, Path]] | None,
             models_from: Path | None = None, products: dict[str, Path] | None = None) -> list[str]:
    """Copies what the runtime stage's COPY lines copy into tree (the image's WORKDIR); returns
    one line per COPY saying what stood in for it. The builder's .venv and node_modules become
    mount points added to binds, or symlinks when binds is None. models_from stands in for the
    builder's models folder, and products for its .venv or node_modules (default: the checkout's)."""
    by_name = {s.name: s for s in stages}
    models_dir = _inside(runtime.env.get("MODELS_DIR", f"{runtime.workdir}/models"), runtime.workdir)
    models = [m.strip() for m in runtime.env.get("MODELS", "").split(",") if m.strip() and "=" not in m]
    done: list[str] = []
    for source_stage, sources, dest in runtime.copies:
        dest_rel = _inside(dest.rstrip("/"), runtime.workdir)
        if dest_rel is None:
            raise CheckFailed(f"COPY to {dest}: only paths under WORKDIR {runtime.workdir} are modelled")
        for source in sources:
            if source_stage is not None:
                if source_stage not in by_name:
                    raise CheckFailed(f"COPY --from={source_stage}: only stages of this Dockerfile are modelled")
                rel = _inside(str(PurePosixPath("/") / source), by_name[source_stage].workdir)
                if rel is None:
                    raise CheckFailed(f"COPY --from={source_stage} {source}: outside that stage's WORKDIR")
            else:
                rel = os.path.normpath(source)
            origin = repo / rel
            target = tree / dest_rel
            if len(sources) > 1 or dest.endswith("/"):
                target = target / PurePosixPath(rel).name
            target.parent.mkdir(parents=True, exist_ok=True)
            if rel in BUILDER_PRODUCTS_LINKED:
                origin = (products or {}).get(rel, origin)
                if not origin.is_dir():
                    raise CheckFailed(f"{origin} is missing: run scripts/setup.sh")
                if binds is None:
                    target.symlink_to(origin.resolve(), target_is_directory=True)
                    done.append(f"{rel}: symlinked to {origin}")
                else:
                    target.mkdir()
                    binds.append((origin.resolve(), target))
                    done.append(f"{rel}: {origin}, bind-mounted read-only")
            elif rel == models_dir and source_stage is not None:
                # The builder's models folder holds exactly the models named by MODELS.
                target.mkdir(exist_ok=True)
                origin = models_from or origin
                for name in models:
                    if not (origin / name).is_dir():
                        raise CheckFailed(f"{origin / name} is missing: run "
                                          f".venv/bin/python scripts/download_models.py {name}")
                    shutil.copytree(origin / name, target / name, symlinks=True)
                done.append(f"{rel}: {', '.join(models) or 'no models'} copied")
            elif origin.is_dir():
                shutil.copytree(origin, target, symlinks=True, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                done.append(f"{rel}: copied")
            elif origin.is_file():
                shutil.copy2(origin, target)
                done.append(f"{rel}: copied")
            else:
                raise CheckFailed(f"COPY source {rel} is not in the checkout (run scripts/setup.sh?)")
    return done


def set_writable(tree: Path, writable: bool) -> None:
    """chmod -R a-w (or u+w back), never through a symlink."""
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in [*dirnames, *filenames, ""]:
            path = os.path.join(dirpath, name) if name else dirpath
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                continue
            mode = stat.S_IMODE(st.st_mode)
            os.chmod(path, (mode | stat.S_IWUSR) if writable else (mode & ~0o222))


def snapshot(tree: Path) -> dict[str, tuple]:
    """Every entry under tree (symlinks not followed), with what a write would change."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            out[os.path.relpath(path, tree)] = (stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns, st.st_mode)
    return out


def differences(before: dict, after: dict) -> list[str]:
    changed = [f"created {p}" for p in after.keys() - before.keys()]
    changed += [f"removed {p}" for p in before.keys() - after.keys()]
    changed += [f"changed {p}" for p in before.keys() & after.keys() if before[p] != after[p]]
    return sorted(changed)


# --- Running it -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def map_path(value: str, image_root: str, tree: Path, tmpfs: str, tmp_dir: Path) -> str:
    """An image path (or a colon-separated list of them) as the path standing in for it here."""
    def one(part: str) -> str:
        for base, here in ((image_root, tree), (tmpfs, tmp_dir)):
            rel = _inside(part, base) if part.startswith("/") else None
            if rel is not None:
                return str(here / rel) if rel else str(here)
        return part
    return ":".join(one(p) for p in value.split(":"))


def seconds(value: str, default: float) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", value or "")
    if not m:
        return default
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def http(method: str, url: str, body: dict | None = None, timeout: float = 10) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


# Run by `unshare --mount` (a private mount namespace, gone with its last process): makes the
# tree and the bound folders read-only and the tmpfs stand-in noexec, then execs the command, so
# the command keeps the PID that the caller signals.
MOUNT_SCRIPT = r"""
set -e
tree=$1 tmp=$2 n=$3
shift 3
mount --bind "$tree" "$tree" && mount -o remount,bind,ro "$tree"
while [ "$n" -gt 0 ]; do
  mount --bind "$1" "$2" && mount -o remount,bind,ro "$2"
  shift 2
  n=$((n - 1))
done
mount --bind "$tmp" "$tmp" && mount -o remount,bind,nosuid,nodev,noexec "$tmp"
exec "$@"
"""


def isolation() -> str:
    """How this machine lets the check make the tree read-only for the server: 'mounts' (a mount
    namespace of its own, root only), 'setpriv' (root without the capabilities that ignore file
    modes), or 'modes' (a user other than root, whom chmod binds anyway)."""
    if os.geteuid() != 0:
        return "modes"
    try:
        if shutil.which("unshare") and subprocess.run(
                ["unshare", "--mount", "--", "sh", "-c", 'mount --bind "$0" "$0"', tempfile.gettempdir()],
                capture_output=True, timeout=10).returncode == 0:
            return "mounts"
        if shutil.which("setpriv") and subprocess.run(
                ["setpriv", f"--bounding-set={DAC_CAPS}", f"--inh-caps={DAC_CAPS}", "--", "true"],
                capture_output=True, timeout=10).returncode == 0:
            return "setpriv"
    except (OSError, subprocess.TimeoutExpired):
        pass
    raise CheckFailed("running as root, but neither unshare --mount nor setpriv works here, so a "
                      "read-only tree cannot be enforced; run as another user")


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def check(dockerfile: Path, stage_name: str | None, build_args: dict[str, str], overrides: dict[str, str],
          tmpfs: str, start_timeout: float, keep: bool, say=print, models_from: Path | None = None,
          products: dict[str, Path] | None = None) -> dict:
    """Runs every check above on the stage; returns a summary, or raises CheckFailed."""
    stages = parse(dockerfile.read_text(), build_args)
    if not stages:
        raise CheckFailed(f"{dockerfile} has no stage")
    runtime = next((s for s in stages if s.name == stage_name), None) if stage_name else stages[-1]
    if runtime is None:
        raise CheckFailed(f"{dockerfile} has no stage {stage_name}")
    entry = (runtime.entrypoint or []) + (runtime.cmd or [])
    if not entry:
        raise CheckFailed(f"stage {runtime.name} has no ENTRYPOINT or CMD in exec form")
    summary: dict = {"dockerfile": str(dockerfile), "stage": runtime.name, "user": runtime.user}

    work = Path(tempfile.mkdtemp(prefix="edge-embed-image-"))
    tree, tmp_dir, log = work / "tree", work / "tmpfs", work / "server.log"
    tree.mkdir()
    tmp_dir.mkdir()
    tmp_dir.chmod(0o1777)
    proc: subprocess.Popen | None = None
    try:
        started = time.monotonic()
        how = isolation()
        summary["isolation"] = how
        binds: list[tuple[Path, Path]] | None = [] if how == "mounts" else None
        for line in assemble(stages, runtime, tree, ROOT, binds, models_from, products):
            say(f"tree: {line}")
        set_writable(tree, False)
        before = snapshot(tree)
        summary["tree_entries"] = len(before)
        summary["assemble_s"] = round(time.monotonic() - started, 2)

        def here(value: str) -> str:
            return map_path(value, runtime.workdir, tree, tmpfs, tmp_dir)

        def in_image(argv: list[str]) -> list[str]:
            """argv as it runs in the stand-in for the container."""
            if how == "mounts":
                pairs = [str(p) for pair in binds for p in pair]
                return ["unshare", "--mount", "--", "sh", "-c", MOUNT_SCRIPT, "sh", str(tree), str(tmp_dir),
                        str(len(binds)), *pairs, *argv]
            if how == "setpriv":
                return ["setpriv", f"--bounding-set={DAC_CAPS}", f"--inh-caps={DAC_CAPS}", "--", *argv]
            return argv

        port = free_port()
        env = {"PATH": BASE_PATH, "LANG": "C.UTF-8"}
        env |= {key: here(value) for key, value in runtime.env.items()}
        env |= {key: here(value) for key, value in overrides.items()}
        env |= {"HOST": "127.0.0.1", "PORT": str(port)}
        argv = in_image([here(a) for a in entry])
        cwd = tree

        # The stand-in must run this tree's runner, not the checkout's (which the dev venv also
        # knows, as an editable install): the gateway puts the tree first on PYTHONPATH.
        python = env.get("RUNNER_PYTHON")
        if python:
            found = subprocess.run(in_image([python, "-c", "import runner; print(runner.__file__)"]), cwd=tmp_dir,
                                   env={**env, "PYTHONPATH": str(tree)}, capture_output=True, text=True, timeout=30)
            if not found.stdout.strip().startswith(str(tree)):
                raise CheckFailed(f"the runner package resolves outside the tree: {found.stdout or found.stderr}")

        say(f"run ({how}): {' '.join(shlex.quote(a) for a in argv[-len(entry):])} (port {port})")
        with open(log, "wb") as out:
            # A session of its own, so that the runners can be found (and ended) by its group id.
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"

        t0 = time.monotonic()
        while True:
            if proc.poll() is not None:
                raise CheckFailed(f"the server exited with {proc.returncode} before /health was 200:\n{log_tail(log)}")
            try:
                status, _ = http("GET", f"{base}/health", timeout=2)
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() - t0 > start_timeout:
                raise CheckFailed(f"/health not 200 within {start_timeout:.0f} s:\n{log_tail(log)}")
            time.sleep(0.25)
        summary["ready_s"] = round(time.monotonic() - t0, 2)
        say(f"ready: /health 200 after {summary['ready_s']} s")

        if runtime.healthcheck:
            options, command = runtime.healthcheck
            limit = seconds(options.get("timeout", ""), 30)
            result = subprocess.run(in_image([here(a) for a in command]), cwd=cwd, env=env, capture_output=True,
                                    timeout=limit + 5)
            if result.returncode != 0:
                raise CheckFailed(f"HEALTHCHECK exited {result.returncode}: {result.stderr.decode()[-500:]}")
            summary["healthcheck"] = "ok"
            say("healthcheck: exit 0")

        model = next((m.strip().partition("=")[0] for m in env.get("MODELS", "").split(",") if m.strip()), None)
        status, body = http("POST", f"{base}/v1/embeddings", {"model": model, "input": ["hello", "world"]}, timeout=60)
        if status != 200:
            raise CheckFailed(f"POST /v1/embeddings answered {status}: {body[:300]!r}")
        data = json.loads(body)["data"]
        vectors = [d["embedding"] for d in data]
        if len(vectors) != 2 or len(vectors[0]) == 0 or len(vectors[0]) != len(vectors[1]) or \
                not all(math.isfinite(x) for v in vectors for x in v):
            raise CheckFailed(f"unexpected embeddings: {str(data)[:300]}")
        summary["embedding_dims"] = len(vectors[0])
        say(f"embeddings: 2 vectors of {len(vectors[0])} dimensions from {model}")

        t1 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=float(env.get("SHUTDOWN_TIMEOUT_S", "30")) + 15)
        except subprocess.TimeoutExpired:
            raise CheckFailed(f"no exit within the shutdown timeout after SIGTERM:\n{log_tail(log)}") from None
        summary["exit_code"] = code
        summary["shutdown_s"] = round(time.monotonic() - t1, 2)
        if code != 0:
            raise CheckFailed(f"exit code {code} after SIGTERM:\n{log_tail(log)}")
        say(f"SIGTERM: exit 0 after {summary['shutdown_s']} s")
        try:
            os.killpg(proc.pid, 0)
            raise CheckFailed("processes of the server's group outlived it (runners left behind)")
        except ProcessLookupError:
            pass

        problems = differences(before, snapshot(tree))
        if problems:
            raise CheckFailed("written inside the read-only tree:\n  " + "\n  ".join(problems[:20]))
        leftovers = sorted(p.name for p in tmp_dir.glob("edge-embed-*"))
        if leftovers:
            raise CheckFailed(f"socket folder(s) left in the tmpfs: {leftovers}")
        summary["written_to_tmpfs"] = sorted(str(p.relative_to(tmp_dir)) for p in tmp_dir.rglob("*"))[:50]
        say(f"read-only: nothing written in the tree; tmpfs holds {summary['written_to_tmpfs'] or 'nothing'}")
        summary["ok"] = True
        return summary
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # our own session's leftovers, if any
            except ProcessLookupError:
                pass
        set_writable(tree, True)
        if keep:
            say(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dockerfile", type=Path, default=ROOT / "Dockerfile")
    p.add_argument("--stage", help="the stage to check (default: the last)")
    p.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE", help="as docker build's")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="as docker run -e")
    p.add_argument("--tmpfs", default="/tmp", help="the image path mounted as tmpfs (default /tmp)")
    p.add_argument("--start-timeout", type=float, default=120, help="seconds to wait for /health")
    p.add_argument("--models-from", type=Path, help="a models folder standing in for the builder's "
                                                    "(default: the checkout's models/)")
    p.add_argument("--venv", type=Path, help="a venv standing in for the builder's .venv, e.g. one with "
                                             "the runtime dependencies only (default: the checkout's)")
    p.add_argument("--node-modules", type=Path, help="likewise for node_modules, e.g. an npm ci --omit=dev")
    p.add_argument("--keep", action="store_true", help="keep the tree, the tmpfs folder and the log")
    args = p.parse_args(argv)
    pairs = lambda items: dict(item.partition("=")[::2] for item in items)  # noqa: E731
    try:
        summary = check(args.dockerfile, args.stage, pairs(args.build_arg), pairs(args.env), args.tmpfs,
                        args.start_timeout, args.keep, models_from=args.models_from,
                        products={k: v for k, v in ((".venv", args.venv), ("node_modules", args.node_modules)) if v})
    except (CheckFailed, subprocess.TimeoutExpired, OSError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        print(json.dumps({"ok": False, "error": str(exc)[:2000]}))
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
