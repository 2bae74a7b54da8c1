"""`dip fetch`: mirror copy, real HTTP download against a loopback server, and every refusal path.

Most tests use small synthetic PNGs (they run anywhere); the two that use the real images read the local
mirror ($DIP_DATA_MIRROR, else ../shared/data) and copy it into pytest's tmp dirs only.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from dip.data import fetch
from dip.data.manifest import expected_files, load_manifest
from dip.errors import DipError

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "config" / "datasets.yaml"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def real_mirror() -> Path:
    """The local mirror of the real images, or skip."""
    mirror = Path(os.environ.get(fetch.MIRROR_ENV) or ROOT.parent / "shared" / "data")
    manifest = load_manifest(MANIFEST)
    if not all((mirror / rel).is_file() for rel in expected_files(manifest)):
        pytest.skip(f"no complete data mirror at {mirror} (set {fetch.MIRROR_ENV} to run this test)")
    return mirror


def write_manifest(path: Path, datasets: dict) -> Path:
    path.write_text(yaml.safe_dump({"version": 1, "datasets": datasets}, sort_keys=False))
    return path


@pytest.fixture
def synthetic(tmp_path: Path) -> tuple[Path, dict]:
    """A mirror with two small PNGs (L and RGB) and their manifest entries (urls filled in by tests)."""
    mirror = tmp_path / "mirror"
    (mirror / "toy").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (6, 8), dtype=np.uint8), "L").save(mirror / "toy" / "gray.png")
    Image.fromarray(rng.integers(0, 256, (5, 7, 3), dtype=np.uint8), "RGB").save(mirror / "toy" / "color.png")
    files = {}
    for name in ("gray", "color"):
        p = mirror / "toy" / f"{name}.png"
        with Image.open(p) as im:
            files[name] = {"url": f"https://example.invalid/{name}.png", "fallback_url": None, "sha256": sha(p),
                           "size": list(im.size), "mode": im.mode, "bytes": p.stat().st_size}
    return mirror, files


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the mirror; /redirect-away/* answers 302 to a plain-http remote host, /redirect-local/* to itself."""

    def do_GET(self) -> None:
        for prefix, base in (("/redirect-away/", "http://example.com/"),
                             ("/redirect-local/", f"http://127.0.0.1:{self.server.server_port}/")):
            if self.path.startswith(prefix):
                self.send_response(302)
                self.send_header("Location", base + self.path[len(prefix):])
                self.end_headers()
                return
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def serve():
    """serve(directory) -> base URL of a loopback HTTP server for that directory."""
    servers = []

    def start(directory: Path) -> str:
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(directory)))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_port}"

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def leftovers(dest: Path) -> list[Path]:
    return [p for p in dest.rglob("*") if p.is_file()] if dest.exists() else []


# ----------------------------------------------------------------------------------------- the real data

def test_real_manifest_lists_both_datasets():
    m = load_manifest(MANIFEST)
    assert len(m["table1"]) == 11 and set(m["fig7"]) == {"kate", "kate_mask", "barbara"}
    assert m["fig7"]["barbara"]["sha256"] == m["table1"]["barbara"]["sha256"]
    assert m["fig7"]["kate"]["mode"] == "RGB" and m["table1"]["house"]["size"] == [256, 256]
    assert all(e["url"].startswith("https://raw.githubusercontent.com/") for d in m.values() for e in d.values())
    assert expected_files(m, ["fig7"]) == ["fig7/kate.png", "fig7/kate_mask.png", "fig7/barbara.png"]


def test_a_fetch_from_mirror_is_byte_identical(tmp_path, capsys):
    mirror = real_mirror()
    dest = tmp_path / "raw"
    assert fetch.main(["--manifest", str(MANIFEST), "--dest", str(dest), "--mirror", str(mirror)]) == 0
    rels = expected_files(load_manifest(MANIFEST))
    assert len(rels) == 23  # 11 + 3 images, 9 files of the authors' code
    for rel in rels:
        assert (dest / rel).read_bytes() == (mirror / rel).read_bytes(), rel
    assert "23 fetched" in capsys.readouterr().out
    # a second run keeps the verified files and fetches nothing
    assert fetch.main(["--manifest", str(MANIFEST), "--dest", str(dest), "--mirror", str(mirror)]) == 0
    assert "0 fetched, 23 already present" in capsys.readouterr().out
    assert sorted(str(p.relative_to(dest)) for p in leftovers(dest)) == sorted(rels)


def test_b_real_download_code_against_loopback_server(tmp_path, serve):
    mirror = real_mirror()
    served = tmp_path / "served"
    shutil.copytree(mirror / "fig7", served / "fig7")
    base = serve(served)
    real = yaml.safe_load(MANIFEST.read_text())["datasets"]["fig7"]
    for name, e in real["files"].items():
        e["url"], e["fallback_url"] = f"{base}/fig7/{name}.png", None
    manifest = write_manifest(tmp_path / "m.yaml", {"fig7": real})
    dest = tmp_path / "raw"
    assert fetch.main(["--manifest", str(manifest), "--dest", str(dest), "--mirror", ""]) == 0
    for name in real["files"]:
        assert (dest / "fig7" / f"{name}.png").read_bytes() == (mirror / "fig7" / f"{name}.png").read_bytes()
    assert not [p for p in leftovers(dest) if p.name.endswith(".part")]


# ----------------------------------------------------------------------------------------- refusals

def test_c_flipped_byte_in_mirror_is_refused(tmp_path, synthetic, capsys):
    mirror, files = synthetic
    manifest = write_manifest(tmp_path / "m.yaml", {"toy": {"files": files}})
    bad = mirror / "toy" / "gray.png"
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    dest = tmp_path / "raw"
    from dip.cli import main as dip_main

    rc = dip_main(["fetch", "--manifest", str(manifest), "--dest", str(dest), "--mirror", str(mirror)])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith(f"dip: error: {bad}: sha256 mismatch")
    assert files["gray"]["sha256"] in err and sha(bad) in err
    assert not (dest / "toy" / "gray.png").exists()
    assert not [p for p in leftovers(dest) if p.name.startswith(".gray")], "temporary file left behind"


def test_d_fallback_used_when_url_404s(tmp_path, synthetic, serve):
    mirror, files = synthetic
    base = serve(mirror)
    for name, e in files.items():
        e["url"], e["fallback_url"] = f"{base}/nowhere/{name}.png", f"{base}/toy/{name}.png"
    dest = tmp_path / "raw"
    done = fetch.fetch({"toy": files}, dest)
    assert done == {f"toy/{n}.png": f"{base}/toy/{n}.png" for n in files}
    for name in files:
        assert sha(dest / "toy" / f"{name}.png") == files[name]["sha256"]


def test_e_redirect_to_plain_http_remote_is_refused(tmp_path, synthetic, serve):
    mirror, files = synthetic
    base = serve(mirror)
    files["gray"]["url"] = f"{base}/redirect-away/toy/gray.png"
    files["color"]["url"] = f"{base}/redirect-local/toy/color.png"  # loopback redirects are followed
    dest = tmp_path / "raw"
    fetch.fetch({"toy": {"color": files["color"]}}, dest)
    assert sha(dest / "toy" / "color.png") == files["color"]["sha256"]
    with pytest.raises(DipError, match="refused redirect to a non-HTTPS location http://example.com/toy/gray.png"):
        fetch.fetch({"toy": {"gray": files["gray"]}}, dest)
    assert not (dest / "toy" / "gray.png").exists()


def test_f_offline_without_mirror_gives_one_message(tmp_path, synthetic):
    _, files = synthetic
    port = closed_port()
    for name, e in files.items():
        e["url"], e["fallback_url"] = f"http://127.0.0.1:{port}/a/{name}.png", f"http://localhost:{port}/b/{name}.png"
    manifest = write_manifest(tmp_path / "m.yaml", {"toy": {"files": files}})
    dest = tmp_path / "raw"
    env = {k: v for k, v in os.environ.items() if k != fetch.MIRROR_ENV}
    proc = subprocess.run([sys.executable, "-m", "dip", "fetch", "--manifest", str(manifest), "--dest", str(dest)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dip: error: ")
    assert "toy/gray.png" in lines[0] and "toy/color.png" in lines[0]
    assert fetch.MIRROR_ENV in lines[0] and "data_mirror" in lines[0] and "<mirror>/<dataset>/<name>.png" in lines[0]
    assert leftovers(dest) == []


def test_g_verify_only_detects_a_changed_file(tmp_path, synthetic):
    mirror, files = synthetic
    manifest = write_manifest(tmp_path / "m.yaml", {"toy": {"files": files}})
    dest = tmp_path / "raw"
    args = ["--manifest", str(manifest), "--dest", str(dest)]
    assert fetch.main(args + ["--mirror", str(mirror)]) == 0
    assert fetch.main(args + ["--verify-only"]) == 0
    changed = dest / "toy" / "color.png"
    with Image.open(changed) as im:
        im.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(changed)  # still a valid PNG of the right size
    with pytest.raises(DipError) as exc:
        fetch.main(args + ["--verify-only"])
    assert exc.value.subject == str(changed)
    assert f"expected {files['color']['sha256']}, got {sha(changed)}" in exc.value.problem
    # a normal fetch repairs it from the mirror
    assert fetch.main(args + ["--mirror", str(mirror)]) == 0
    assert sha(changed) == files["color"]["sha256"]


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d["toy"]["files"].update({"../evil": d["toy"]["files"].pop("gray")}), "'../evil'"),
    (lambda d: d.update({"a/b": d.pop("toy")}), "'a/b'"),
    (lambda d: d["toy"]["files"]["gray"].update(url="http://example.com/gray.png"), "https://"),
    (lambda d: d["toy"]["files"]["gray"].update(sha256="abc"), "sha256"),
    (lambda d: d["toy"]["files"]["gray"].update(size=[8]), "size"),
])
def test_h_bad_manifest_is_refused(tmp_path, synthetic, mutate, needle):
    _, files = synthetic
    datasets = {"toy": {"files": files}}
    mutate(datasets)
    manifest = write_manifest(tmp_path / "m.yaml", datasets)
    with pytest.raises(DipError) as exc:
        fetch.main(["--manifest", str(manifest), "--dest", str(tmp_path / "raw"), "--mirror", str(tmp_path)])
    assert exc.value.subject == str(manifest) and needle in exc.value.problem
    assert not (tmp_path / "raw").exists()


@pytest.mark.parametrize("key, value, message", [
    ("mode", "RGB", "decoded 8x6 L, manifest says 8x6 RGB"),
    ("size", [6, 8], "decoded 8x6 L, manifest says 6x8 L"),  # width and height swapped
    ("size", [8, 7], "decoded 8x6 L, manifest says 8x7 L"),
])
def test_wrong_size_or_mode_is_refused_even_with_matching_hash(tmp_path, synthetic, key, value, message):
    mirror, files = synthetic
    files["gray"][key] = value
    with pytest.raises(DipError, match=re.escape(message)):
        fetch.fetch({"toy": {"gray": files["gray"]}}, tmp_path / "raw", mirror=mirror)
    assert leftovers(tmp_path / "raw") == []


@pytest.mark.parametrize("cap", ["entry bytes", "MAX_BYTES"])
def test_a_download_larger_than_expected_is_cut_off_and_refused(tmp_path, synthetic, serve, monkeypatch, cap):
    # The served file is the right one (its hash matches): only the size cap can refuse it.
    mirror, files = synthetic
    e = files["gray"]
    size = e["bytes"]
    e["url"] = f"{serve(mirror)}/toy/gray.png"
    if cap == "entry bytes":
        e["bytes"] = size - 1
    else:
        e["bytes"] = None
        monkeypatch.setattr(fetch, "MAX_BYTES", size - 1)
    dest = tmp_path / "raw"
    with pytest.raises(DipError, match=f"refused: larger than the expected {size - 1} bytes") as exc:
        fetch.fetch({"toy": {"gray": e}}, dest)
    assert exc.value.subject == e["url"]
    assert leftovers(dest) == []
    e["bytes"] = size  # exactly the expected size passes
    monkeypatch.setattr(fetch, "MAX_BYTES", size)
    fetch.fetch({"toy": {"gray": e}}, dest)
    assert sha(dest / "toy" / "gray.png") == e["sha256"]
