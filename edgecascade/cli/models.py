"""`edgecascade models`: list, pull, verify and locate the local GGUF models."""

from __future__ import annotations

import argparse
import json
import os

from rich.table import Table

from .console import err, out


def cmd_models(args: argparse.Namespace) -> int:
    from .. import models
    from ..errors import ConfigError, ModelError

    if args.action == "list":
        folder = models.manifests_dir()
        if os.environ.get("EDGECASCADE_MANIFESTS") and not folder.is_dir():  # a typo had listed "no models", exit 0
            raise ConfigError(f"$EDGECASCADE_MANIFESTS names {folder}, which is not a folder: set it to the folder "
                              "holding your model manifests (*.toml), or unset it for the shipped ones")
        manifests = models.list_manifests()
        if args.json:
            print(json.dumps([
                {"name": m.name, "size": m.size, "sha256": m.sha256, "license": m.license,
                 "context_length": m.context_length, "pulled": models.is_pulled(m.name),
                 "path": str(models.model_path(m.name))}
                for m in manifests
            ]))
            return 0
        table = Table()
        table.add_column("name", no_wrap=True)
        table.add_column("size", justify="right", no_wrap=True)
        for col in ("license", "context", "pulled", "description"):
            table.add_column(col)
        for m in manifests:
            about = m.description.partition(": ")[2] or m.description  # what follows "Name (quant, size): "
            table.add_row(m.name, f"{m.size / 1e6:.0f} MB", m.license, str(m.context_length),
                          "yes" if models.is_pulled(m.name) else "no", about.strip())
        out.print(table)
        out.print(f"cache: {models.cache_dir() / 'models'} (set EDGECASCADE_CACHE to move it)",
                  style="dim", markup=False)
        there = [m.name for m in manifests if not models.is_pulled(m.name) and models.model_path(m.name).is_file()]
        if there:  # a copied or touched file loses its marker: re-hashing it is enough, no download
            out.print(f"{', '.join(there)}: the file is there but not verified (copied, moved or changed "
                      f"since): `edgecascade models verify {' '.join(there)}` checks it without a download",
                      style="yellow", markup=False)
        return 0
    if args.action == "pull":
        for name in args.name:  # every name known before anything is fetched
            models.get_manifest(name)
        for name in args.name:
            path = models.pull(name, force=args.force)
            err.print(f"{name}: verified (size and sha256 match) at {path}")
    elif args.action == "verify":
        for name in args.name:
            if models.looks_like_path(name):  # there is no manifest to check a file of your own against
                raise ConfigError(f"models verify takes registry model names (`edgecascade models list`), and {name} "
                                  "is a path: a .gguf file of your own has no manifest to check it against; check it "
                                  "loads with `edgecascade run --config` a config naming it")
            models.get_manifest(name)  # every name known before any file is hashed
        failed: list[str] = []
        for name in args.name:  # each checked, as the help says: one that fails does not hide the others'
            try:
                path = models.verify(name)
            except ModelError as e:
                if len(args.name) == 1:
                    raise
                err.print(f"{name}: FAILED: {e}", markup=False)
                failed.append(name)
                continue
            err.print(f"{name}: OK, size and sha256 match the manifest ({path})")
        if failed:
            raise ModelError(f"{len(failed)} of {len(args.name)} models failed verification: {', '.join(failed)} "
                             "(each said why above)")
    elif args.action == "path":
        for name in args.name:
            print(models.resolve(name).path)
    return 0
