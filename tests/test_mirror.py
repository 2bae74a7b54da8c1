"""The data mirror is only ever read: `dip fetch` from it leaves every file as it was, and never tries to write.

The mirror is mounted read-only for the test (a read-only bind mount as root, who ignores chmod; otherwise
chmod a-w), so an attempted write fails the fetch instead of going unnoticed; and the mirror is snapshotted
(paths, sizes, mtimes, sha256) before and compared after.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from test_fetch import MANIFEST, real_mirror

from dip.cli import main as dip_main
from dip.data.manifest import expected_files, load_manifest


@contextlib.contextmanager
def read_only_view(src: Path, at: Path):
    """``src`` seen read-only at ``at`` (bind mount as root, else a chmod a-w copy at ``at``)."""
    if os.geteuid() == 0:
        at.mkdir()
        if subprocess.run(["mount", "--bind", str(src), str(at)], capture_output=True).returncode != 0:
            pytest.skip("cannot bind-mount here")
        try:
            r = subprocess.run(["mount", "-o", "remount,bind,ro", str(at)], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
            yield at
        finally:
            subprocess.run(["umount", str(at)], capture_output=True)
        return
    shutil.copytree(src, at)
    paths = [at, *at.rglob("*")]
    for p in paths:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        yield at
    finally:
        for p in paths:
            p.chmod(0o755 if p.is_dir() else 0o644)


def snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """{relative path: (size, mtime_ns, sha256)} of every file and folder under ``root``."""
    out = {}
    for p in sorted([root, *root.rglob("*")]):
        st = p.stat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns, digest)
    return out


def test_fetch_from_the_mirror_only_reads_it(tmp_path, capsys):
    src = tmp_path / "copy"  # a copy: the shared mirror itself is never put at risk by this test
    shutil.copytree(real_mirror(), src)
    with read_only_view(src, tmp_path / "mirror") as mirror:
        with pytest.raises(OSError):
            (mirror / "probe").write_bytes(b"")  # the view really is read-only
        before = snapshot(mirror)
        dest = tmp_path / "raw"
        args = ["fetch", "--manifest", str(MANIFEST), "--dest", str(dest), "--mirror", str(mirror)]
        assert dip_main(args) == 0, capsys.readouterr().err
        rels = expected_files(load_manifest(MANIFEST))
        (dest / rels[0]).write_bytes(b"damaged")  # a stale file: re-fetched from the mirror
        assert dip_main(args) == 0, capsys.readouterr().err
        assert "1 fetched, 22 already present" in capsys.readouterr().out
        assert snapshot(mirror) == before
    assert snapshot(src) == before
    for rel in rels:
        assert (dest / rel).read_bytes() == (src / rel).read_bytes(), rel
