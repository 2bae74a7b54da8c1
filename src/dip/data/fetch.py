"""`dip fetch`: put the inputs in place, sha256-verified, from a local mirror or over HTTPS.

The manifest (``config/datasets.yaml``) lists, per dataset and file name, the pinned ``url``, an optional
``fallback_url`` and the ``sha256``; an image also its decoded ``size`` ([width, height]) and Pillow ``mode``,
another file (the authors' code, for the reference engine) its ``path`` and ``bytes``. An image lands at
``<dest>/<dataset>/<name>.png``, another file at ``<dest>/<dataset>/<path>``, only after it passed every check:
it is written to a temporary file in the destination folder and moved into place with :func:`os.replace`, so a
failed fetch never leaves a file behind.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import http.client
import os
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from PIL import Image

from dip.cliconv import Parser, output_option
from dip.data.atomic import new_temp
from dip.data.images import sha256_file
from dip.data.manifest import load_manifest, manifest_files
from dip.errors import DipError

MIRROR_ENV = "DIP_DATA_MIRROR"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
TIMEOUT_S = 30.0
MAX_BYTES = 64 << 20  # a download larger than this (or than the entry's `bytes`) is cut off and refused
LAYOUT = ("<mirror>/<dataset>/<name>.png, or <mirror>/<dataset>/<path> for a file with a path "
          "(e.g. <mirror>/table1/barbara.png, <mirror>/authors_code/models/skip.py)")
_DEST_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}  # writing data/raw failed: not the source's fault


class Refused(Exception):
    """A source answered with something we must not accept (bad hash, image, scheme or redirect)."""

    def __init__(self, subject: str | os.PathLike, problem: str):
        self.subject, self.problem = str(subject), problem
        super().__init__(f"{self.subject}: {problem}")


# --------------------------------------------------------------------------------------------- manifest

def url_allowed(url: str) -> bool:
    """HTTPS anywhere; plain HTTP only to a loopback host (local test servers). Checks redirects at run time."""
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK)


# --------------------------------------------------------------------------------------------- checks

def _check(path: Path, entry: dict[str, Any], label: str) -> None:
    """Raise :class:`Refused` (naming ``label``) unless the file at ``path`` matches ``entry``."""
    actual = sha256_file(path)
    if actual != entry["sha256"]:
        raise Refused(label, f"sha256 mismatch: expected {entry['sha256']}, got {actual}")
    if "size" not in entry:  # not an image: the hash is the whole check
        return
    try:
        with Image.open(path) as img:
            img.load()
            size, mode = list(img.size), img.mode
    except Exception as e:  # the hash matched, so this only trips on a wrong manifest entry
        raise Refused(label, f"cannot decode the image ({e})") from None
    if size != list(entry["size"]) or mode != entry["mode"]:
        raise Refused(label, f"decoded {size[0]}x{size[1]} {mode}, manifest says "
                      f"{entry['size'][0]}x{entry['size'][1]} {entry['mode']}")


def verify_file(path: str | os.PathLike, entry: dict[str, Any]) -> None:
    """Check one fetched file against its manifest entry (sha256; an image's size and mode too); raise
    :class:`DipError`."""
    path = Path(path)
    if not path.is_file():
        raise DipError(path, "missing (run `dip fetch`)")
    try:
        _check(path, entry, str(path))
    except Refused as e:
        raise DipError(path, f"{e.problem} (changed or corrupted after fetching? delete it and run `dip fetch`)") from None


# --------------------------------------------------------------------------------------------- sources

class _SafeRedirect(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to HTTPS (or loopback HTTP) locations."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if not url_allowed(newurl):
            raise Refused(req.full_url, f"refused redirect to a non-HTTPS location {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _download(url: str, out: Any, entry: dict[str, Any], label: str) -> None:
    """Stream ``url`` into the open binary file ``out`` with a tqdm bar (only on a terminal)."""
    from tqdm import tqdm

    if not url_allowed(url):
        raise Refused(url, "refused: not an https:// URL")
    handlers: list[Any] = [_SafeRedirect()]
    if urlsplit(url).hostname in LOOPBACK:
        handlers.append(urllib.request.ProxyHandler({}))  # never send loopback requests through a proxy
    opener = urllib.request.build_opener(*handlers)
    limit = entry["bytes"] or MAX_BYTES
    req = urllib.request.Request(url, headers={"User-Agent": "dip-repro-fetch"})
    with opener.open(req, timeout=TIMEOUT_S) as resp:
        total = int(resp.headers.get("Content-Length") or 0) or entry["bytes"]
        with tqdm(total=total, unit="B", unit_scale=True, desc=label, leave=False,
                  disable=not sys.stderr.isatty()) as bar:
            done = 0
            while block := resp.read(1 << 16):
                done += len(block)
                if done > limit:
                    raise Refused(url, f"refused: larger than the expected {limit} bytes")
                out.write(block)
                bar.update(len(block))


def _install(target: Path, entry: dict[str, Any], sources: list[tuple[str, str]]) -> str:
    """Try each (kind, location) in turn; move the first verified copy to ``target``. Return the source used.

    Raises :class:`Refused` if a source gave wrong content (and none gave the right one), ``OSError`` with
    the last reason if none could be reached.
    """
    refused: Refused | None = None
    last: Exception | None = None
    for kind, where in sources:
        try:
            tmp = new_temp(target, ".part")  # also removes the .part files of a fetch that was killed
        except OSError as e:
            raise DipError(target.parent, f"cannot write the destination folder ({e.strerror or e})") from None
        try:
            with open(tmp, "wb") as out:
                if kind == "mirror":
                    with open(where, "rb") as src:
                        shutil.copyfileobj(src, out)
                else:
                    _download(where, out, entry, target.name)
                out.flush()
                os.fsync(out.fileno())
            _check(tmp, entry, where)  # the temporary copy is checked; the target appears only if it passed
            os.replace(tmp, target)
            return where
        except Refused as e:
            refused = refused or e
        except OSError as e:
            if e.errno in _DEST_ERRNOS:  # our side, not the source: another source would not help
                raise DipError(target.parent, f"cannot write the destination folder ({e.strerror})") from None
            last = e
        except (http.client.HTTPException, ValueError) as e:  # unreachable, 404, timeout, no such file
            last = e
        finally:
            tmp.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        target.parent.rmdir()  # only if we left it empty
    if refused is not None:
        raise refused
    raise OSError(_reason(last))


def _reason(e: Exception | None) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return str(e.reason)
    if isinstance(e, FileNotFoundError):
        return f"no such file {e.filename}"
    return str(e) if e else "no source"


# --------------------------------------------------------------------------------------------- command

def fetch(manifest: dict[str, dict[str, dict[str, Any]]], dest: Path, datasets: list[str] | None = None,
          mirror: Path | None = None) -> dict[str, str]:
    """Fetch every missing or wrong file of ``datasets``; return ``{relative path: source}`` ("present" if kept)."""
    if mirror is not None and not mirror.is_dir():
        raise DipError(mirror, f"data mirror is not a directory (expected layout {LAYOUT})")
    done: dict[str, str] = {}
    missing: dict[str, str] = {}
    for rel, entry in manifest_files(manifest, datasets).items():
        target = dest / rel
        try:
            verify_file(target, entry)
            done[rel] = "present"
            continue
        except DipError as e:
            if target.exists():  # stale: re-fetched; the old file is replaced only by a verified copy
                print(f"dip fetch: replacing {e}", file=sys.stderr)
        if mirror is not None:
            sources = [("mirror", str(mirror / rel))]
        else:
            sources = [("url", u) for u in (entry["url"], entry["fallback_url"]) if u]
        try:
            done[rel] = _install(target, entry, sources)
        except Refused as e:
            raise DipError(e.subject, f"{e.problem} (nothing written for {target})") from None
        except OSError as e:
            missing[rel] = str(e)
    if missing:
        raise DipError(dest, _missing_message(missing, mirror))
    return done


def _missing_message(missing: dict[str, str], mirror: Path | None) -> str:
    files = ", ".join(missing)
    reasons = "; ".join(dict.fromkeys(missing.values()))
    how = (f"Provide a local mirror: set {MIRROR_ENV}=<mirror> (or the config key data_mirror, or --mirror) "
           f"with the layout {LAYOUT}, then run `dip fetch` again")
    if mirror is not None:
        return f"{len(missing)} file(s) missing from the data mirror {mirror}: {files}. The mirror must be laid out as {LAYOUT}"
    return f"{len(missing)} file(s) could not be downloaded ({reasons}): {files}. {how}"


def verify_only(manifest: dict[str, dict[str, dict[str, Any]]], dest: Path, datasets: list[str] | None = None) -> int:
    """Check the files already in ``dest``; raise one :class:`DipError` naming every bad file. Return the count."""
    problems: list[DipError] = []
    files = manifest_files(manifest, datasets)
    for rel, entry in files.items():
        try:
            verify_file(dest / rel, entry)
        except DipError as e:
            problems.append(e)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise DipError(dest, f"{len(problems)} files fail verification: " + "; ".join(map(str, problems)))
    return len(files)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="dip fetch", description="Fetch the inputs listed in the manifest (images "
                                "into OUTPUT/<dataset>/<name>.png, other files into OUTPUT/<dataset>/<path>), from a "
                                "local mirror or over HTTPS, sha256-verified.")
    p.add_argument("--manifest", type=Path, default=Path("config/datasets.yaml"),
                   help="the datasets, their files and hashes")
    output_option(p, "the data folder", required=False, old=("--dest",), default=Path("data/raw"))
    p.add_argument("--dataset", action="append", metavar="NAME", help="repeatable (default: every dataset)")
    p.add_argument("--mirror", default=os.environ.get(MIRROR_ENV, ""), metavar="DIR",
                   help=f"local mirror laid out as {LAYOUT} (default: ${MIRROR_ENV}; empty: download)")
    p.add_argument("--verify-only", action="store_true",
                   help="only check the files already in OUTPUT against the manifest; fetch nothing")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of `dip fetch`; raises :class:`DipError` (the `dip` CLI prints it and exits 2)."""
    args = build_parser().parse_args(argv)
    manifest = load_manifest(args.manifest)
    if args.verify_only:
        n = verify_only(manifest, args.output, args.dataset)
        print(f"{args.output}: {n} file(s) verified")
        return 0
    mirror = Path(args.mirror) if args.mirror else None
    done = fetch(manifest, args.output, args.dataset, mirror)
    new = {rel: src for rel, src in done.items() if src != "present"}
    for rel, src in new.items():
        print(f"{args.output / rel}: fetched from {src}")
    print(f"{args.output}: {len(done)} file(s) verified ({len(new)} fetched, {len(done) - len(new)} already present)")
    return 0
