"""Reliability of the `dip` command: bad input, full or read-only disks, half-written files, downloads, configs.

The contract (docs/reliability.md): every problem a person can act on ends with ONE stderr line
``dip: error: <culprit>: <problem>`` and exit code 2, and leaves no partial output (neither the --out dir nor
its ``*.tmp-*`` / ``*.ckpt`` siblings). Most tests call ``dip.cli.main`` in-process (torch is imported once);
the ones about tracebacks run the real command in a subprocess. Pipeline-level tests: test_pipeline_kill.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import re
import struct
import subprocess
import threading
import zlib
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import yaml
from PIL import Image
from test_fetch import serve, synthetic, write_manifest  # noqa: F401  (fixtures)

from conftest import MIRROR, ROOT, TINY, dead_pid, dip, make_image, make_mask
from dip.cli import main
from dip.data import fetch

MANIFEST = ROOT / "config" / "datasets.yaml"


def run(capsys, *args) -> tuple[int, list[str]]:
    """dip.cli.main in-process: (exit code, stderr lines)."""
    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().err.strip().splitlines()


def fit_args(tmp: Path, out: Path, **over) -> list[str]:
    """`dip fit` on the synthetic 32x32 image and mask, tiny network, 3 iterations; ``over`` replaces flags."""
    flags = {"--image": tmp / "img.png", "--mask": tmp / "mask.png", "--preset": "table1", "--out": out,
             "--iterations": "3", "--threads": "1", **{f"--{k.replace('_', '-')}": v for k, v in over.items()}}
    args = ["fit"]
    for k, v in flags.items():
        if v is not None:
            args += [k, str(v)]
    return args + TINY


def assert_nothing_written(out: Path) -> None:
    assert not out.exists(), f"{out} exists"
    left = [p for p in out.parent.glob(out.name + ".*")]  # out.tmp-<pid>, out.ckpt
    assert not left, f"partial outputs left: {left}"


def assert_one_line_error(rc: int, err: list[str], culprit: str, code: int = 2) -> None:
    assert rc == code, (rc, err)
    assert err and err[-1].startswith("dip: error: "), err
    assert culprit in err[-1], (culprit, err[-1])
    assert not any("Traceback" in line for line in err), err


# --------------------------------------------------------------------------------------------- bad input

def _bad_inputs(tmp: Path) -> None:
    make_image(tmp / "img.png")
    make_mask(tmp / "mask.png")
    png = (tmp / "img.png").read_bytes()
    (tmp / "truncated.png").write_bytes(png[: len(png) // 2])
    (tmp / "header_only.png").write_bytes(png[:40])
    (tmp / "zero.png").write_bytes(b"")
    (tmp / "text.png").write_text("this is a text file with a .png name\n")
    make_mask(tmp / "mask_40.png", (40, 40))
    Image.fromarray(np.full((32, 32), 128, np.uint8)).save(tmp / "mask_gray.png")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp / "mask_empty.png")
    make_image(tmp / "gt_40.png", (40, 40))
    (tmp / "afile").write_text("a file where a directory should be\n")
    (tmp / "evil_presets.yaml").write_text('table1: !!python/object/apply:os.system ["touch PWNED"]\n')
    bomb = bytearray(png)  # a PNG whose header claims 30000x30000 pixels (a decompression bomb)
    bomb[16:24] = struct.pack(">II", 30000, 30000)
    bomb[29:33] = struct.pack(">I", zlib.crc32(bytes(bomb[12:29])))
    (tmp / "bomb.png").write_bytes(bytes(bomb))


BAD_INPUT = [  # (id, flags replaced, culprit named in the message)
    ("truncated png", {"image": "truncated.png"}, "truncated.png: unreadable or truncated image"),
    ("png header only", {"image": "header_only.png"}, "header_only.png: "),
    ("zero-byte file", {"image": "zero.png"}, "zero.png: empty file"),
    ("text file named .png", {"image": "text.png"}, "text.png: not an image file"),
    ("missing image", {"image": "nothere.png"}, "nothere.png: no such file"),
    ("mask of another size", {"mask": "mask_40.png"}, "mask_40.png: mask is 40x40 but the image is 32x32"),
    ("non-binary mask", {"mask": "mask_gray.png"}, "mask_gray.png: mask is not binary"),
    ("mask without a known pixel", {"mask": "mask_empty.png"}, "mask_empty.png: mask has no known pixel"),
    ("ground truth of another size", {"gt": "gt_40.png"}, "gt_40.png: ground truth is 40x40x1"),
    ("unknown preset", {"preset": "tabel1"}, "--preset: unknown preset 'tabel1'"),
    ("zero iterations", {"iterations": "0"}, "--iterations: must be a positive integer, got 0"),
    ("negative iterations", {"iterations": "-5"}, "--iterations: must be a positive integer, got -5"),
    ("learning rate 0", {"lr": "0"}, "--lr: must be a positive finite number, got 0.0"),
    ("learning rate NaN", {"lr": "nan"}, "--lr: must be a positive finite number, got nan"),
    ("learning rate inf", {"lr": "inf"}, "--lr: must be a positive finite number, got inf"),
    ("crop larger than the image", {"crop": "64"}, "--crop: 64 is larger than the image"),
    ("negative checkpoint interval", {"checkpoint_every": "-1"}, "--checkpoint-every: must be >= 0"),
    ("presets file with a python tag", {"presets": "evil_presets.yaml"}, "evil_presets.yaml: not a plain YAML"),
    ("a file in the way of --out", {"out": "afile/sub/out"}, "afile/sub: a file is in the way"),
    ("decompression bomb", {"image": "bomb.png"}, "bomb.png: too large to decode safely (Image size (900000000"),
    ("decompression bomb as mask", {"mask": "bomb.png"}, "bomb.png: too large to decode safely"),
]


@pytest.mark.parametrize("over, culprit", [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input_gets_one_line_exit_2_and_no_output(tmp_path, capsys, monkeypatch, over, culprit):
    monkeypatch.chdir(tmp_path)  # relative names, as a person types them
    _bad_inputs(tmp_path)
    over = {k: (tmp_path / v if k in ("image", "mask", "gt", "presets") else v) for k, v in over.items()}
    out = Path(over.pop("out", "out"))
    rc, err = run(capsys, *fit_args(tmp_path, out, **over))
    assert_one_line_error(rc, err, culprit)
    assert_nothing_written(tmp_path / out)
    assert not (tmp_path / "PWNED").exists()


def test_argument_errors_use_the_same_one_line_format(tmp_path, capsys):
    make_image(tmp_path / "img.png")
    out = tmp_path / "out"
    for bad, culprit in ((["--iterations", "many"], "argument --iterations: invalid int value: 'many'"),
                         (["--set", 'lr=!!python/object/apply:os.system ["touch PWNED"]'], "argument --set: lr: not a plain YAML")):
        with pytest.raises(SystemExit) as exc:
            main(["fit", "--image", str(tmp_path / "img.png"), "--preset", "table1", "--out", str(out), *bad])
        assert_one_line_error(exc.value.code, capsys.readouterr().err.strip().splitlines(), culprit)
    assert_nothing_written(out)
    assert not Path("PWNED").exists() and not (tmp_path / "PWNED").exists()


def test_real_process_prints_one_line_without_traceback(tmp_path):
    """A file in the way of the output used to end in a FileExistsError traceback."""
    make_image(tmp_path / "img.png")
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "out"
    r = dip("fit", "--image", tmp_path / "img.png", "--preset", "table1", "--out", out, "--iterations", "2", *TINY)
    err = r.stderr.strip().splitlines()
    assert_one_line_error(r.returncode, err, f"{tmp_path / 'afile'}: a file is in the way")
    assert len(err) == 1


def test_a_bug_is_one_line_too_and_DIP_DEBUG_shows_the_traceback(tmp_path, capsys, monkeypatch):
    import dip.engine.engines

    make_image(tmp_path / "img.png")

    def boom(*a, **k):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(dip.engine.engines, "run_fit", boom)
    args = ["fit", "--image", tmp_path / "img.png", "--preset", "table1", "--out", tmp_path / "out"]
    rc, err = run(capsys, *args)
    assert_one_line_error(rc, err, "internal error ZeroDivisionError: boom", code=1)
    assert "DIP_DEBUG=1" in err[-1]
    monkeypatch.setenv("DIP_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main([str(a) for a in args])


def test_ctrl_c_before_the_loop_is_one_line_exit_130(tmp_path, capsys, monkeypatch):
    import dip.engine.engines

    make_image(tmp_path / "img.png")

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(dip.engine.fit, "load_inputs", interrupted)
    out = tmp_path / "out"
    rc, err = run(capsys, "fit", "--image", tmp_path / "img.png", "--preset", "table1", "--out", out)
    assert_one_line_error(rc, err, "interrupted", code=130)
    assert_nothing_written(out)


# --------------------------------------------------------------------------------------------- unwritable / full disks

@contextlib.contextmanager
def tmpfs(path: Path, options: str):
    """A small tmpfs at ``path`` (root only); skip when it cannot be mounted."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()})")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


@contextlib.contextmanager
def read_only_dir(path: Path):
    """A directory this process cannot write: a read-only tmpfs as root (root ignores chmod), else chmod 555."""
    if os.geteuid() == 0:
        with tmpfs(path, "ro,size=64k,mode=755"):
            yield path
        return
    path.mkdir()
    path.chmod(0o555)
    try:
        yield path
    finally:
        path.chmod(0o755)


def fill(fs: Path) -> None:
    """Fill a file system until it refuses one more block."""
    with open(fs / "filler", "wb", buffering=0) as f:
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 4096)
    assert (fs / "filler").stat().st_size > 0


@pytest.mark.parametrize("nested", [False, True], ids=["out in it", "out below it"])
def test_unwritable_output_directory_is_refused_before_fitting(tmp_path, capsys, nested):
    make_image(tmp_path / "img.png")
    make_mask(tmp_path / "mask.png")
    with read_only_dir(tmp_path / "ro") as ro:
        out = ro / "sub" / "out" if nested else ro / "out"
        rc, err = run(capsys, *fit_args(tmp_path, out, iterations="100000"))  # it must fail before the loop
        assert_one_line_error(rc, err, str(ro))
        assert any(w in err[-1] for w in ("not writable", "read-only file system", "permission denied")), err[-1]
        assert not list(ro.iterdir()), "nothing may be created in a read-only directory"


def test_disk_full_while_checkpointing_is_one_line_and_leaves_nothing(tmp_path):
    make_image(tmp_path / "img.png")
    make_mask(tmp_path / "mask.png")
    with tmpfs(tmp_path / "small", "size=64k") as fs:  # a checkpoint of even the tiny net is larger
        out = fs / "out"
        r = dip(*fit_args(tmp_path, out, iterations="30", checkpoint_every="5"))  # the real process
        err = r.stderr.strip().splitlines()
        assert_one_line_error(r.returncode, err, f"{out}.ckpt/checkpoint.pt: cannot write the checkpoint")
        assert "no space left on device" in err[-1]
        assert_nothing_written(out)
        assert not list(fs.iterdir())


def test_disk_full_while_writing_results_is_one_line_and_leaves_nothing(tmp_path, capsys):
    make_image(tmp_path / "img.png")
    make_mask(tmp_path / "mask.png")
    with tmpfs(tmp_path / "small", "size=64k") as fs:
        fill(fs)
        out = fs / "out"
        rc, err = run(capsys, *fit_args(tmp_path, out))
        assert_one_line_error(rc, err, f"{out}: cannot write the results (No space left on device)")
        assert_nothing_written(out)
        rc, err = run(capsys, "mask", "--bernoulli", "0.5", "--seed", "0", "--like", tmp_path / "img.png",
                      "-o", fs / "mask.png")
        assert_one_line_error(rc, err, f"{fs / 'mask.png'}: no space left on device")
        assert sorted(p.name for p in fs.iterdir()) == ["filler"], "a temporary file was left"


def test_disk_full_while_fetching_names_the_destination_not_the_mirror(tmp_path, capsys):
    if not (MIRROR / "table1" / "house.png").is_file():
        pytest.skip(f"no data mirror at {MIRROR}")
    with tmpfs(tmp_path / "small", "size=64k") as fs:
        fill(fs)
        rc, err = run(capsys, "fetch", "--manifest", MANIFEST, "--dest", fs / "raw", "--mirror", MIRROR,
                      "--dataset", "table1")
        assert_one_line_error(rc, err, f"{fs / 'raw' / 'table1'}: cannot write the destination folder (No space")
        assert not [p for p in fs.rglob("*") if p.is_file() and p.name != "filler"]


# --------------------------------------------------------------------------------------------- half-written files

def test_temporary_file_of_a_killed_writer_is_removed_by_the_next_writer(tmp_path, capsys):
    make_image(tmp_path / "img.png")
    target = tmp_path / "m.png"
    stale = tmp_path / f".m.png.{dead_pid()}.k1ll3d.tmp"  # what SIGKILL during write_png leaves
    live = tmp_path / f".m.png.{os.getppid()}.busy.tmp"  # another live writer's: not ours to delete
    other = tmp_path / f".n.png.{dead_pid()}.k1ll3d.tmp"  # another file's: left for its own writer
    for p in (stale, live, other):
        p.write_bytes(b"\x89PNG half")
    rc, _ = run(capsys, "mask", "--bernoulli", "0.5", "--seed", "0", "--like", tmp_path / "img.png", "-o", target)
    assert rc == 0
    with Image.open(target) as im:
        im.load()
    assert not stale.exists() and live.exists() and other.exists()


def test_partial_download_of_a_killed_fetch_is_removed_by_the_next_fetch(tmp_path, synthetic):
    mirror, files = synthetic
    dest = tmp_path / "raw"
    (dest / "toy").mkdir(parents=True)
    stale = dest / "toy" / f".gray.png.{dead_pid()}.abc.part"
    stale.write_bytes(b"half a download")
    fetch.fetch({"toy": files}, dest, mirror=mirror)
    assert not stale.exists()
    assert sorted(p.name for p in (dest / "toy").iterdir()) == ["color.png", "gray.png"]


# --------------------------------------------------------------------------------------------- downloads

def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_with_a_flipped_byte_is_refused(tmp_path, synthetic, serve, capsys):
    mirror, files = synthetic
    served = mirror / "toy" / "gray.png"
    data = bytearray(served.read_bytes())
    data[len(data) // 2] ^= 0x01
    served.write_bytes(bytes(data))
    base = serve(mirror)
    files["gray"]["url"] = url = f"{base}/toy/gray.png"
    manifest = write_manifest(tmp_path / "m.yaml", {"toy": {"files": {"gray": files["gray"]}}})
    dest = tmp_path / "raw"
    rc, err = run(capsys, "fetch", "--manifest", manifest, "--dest", dest, "--mirror", "")
    assert_one_line_error(rc, err, f"{url}: sha256 mismatch: expected {files['gray']['sha256']}, got {_sha(data)}")
    assert not dest.exists() or not [p for p in dest.rglob("*") if p.is_file()]


def test_download_is_checked_in_a_temporary_file_and_moved_into_place(tmp_path, synthetic, serve, monkeypatch):
    mirror, files = synthetic
    base = serve(mirror)
    for name, e in files.items():
        e["url"] = f"{base}/toy/{name}.png"
    dest = tmp_path / "raw"
    seen = []
    real_check = fetch._check

    def spy(path, entry, label):
        target = dest / "toy" / f"{label.rsplit('/', 1)[1]}"
        assert not target.exists(), "the target exists before its hash was checked"
        assert path.parent == target.parent and path.name.endswith(".part") and path.stat().st_size > 0
        seen.append(path.name)
        return real_check(path, entry, label)

    monkeypatch.setattr(fetch, "_check", spy)
    fetch.fetch({"toy": files}, dest)
    assert len(seen) == 2
    for name in files:
        assert _sha((dest / "toy" / f"{name}.png").read_bytes()) == files[name]["sha256"]
    assert sorted(p.name for p in (dest / "toy").iterdir()) == ["color.png", "gray.png"]


class _Redirect(http.server.BaseHTTPRequestHandler):
    """GET /to/<url> answers 302 Location: <url>."""

    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", self.path[len("/to/"):])
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("location, message", [
    ("ftp://example.com/gray.png", "refused redirect to a non-HTTPS location ftp://example.com/gray.png"),
    ("file:///etc/hostname", "Redirection to url 'file:///etc/hostname' is not allowed"),
])
def test_redirect_to_another_scheme_is_refused(tmp_path, synthetic, location, message):
    _, files = synthetic
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirect)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        files["gray"]["url"] = f"http://127.0.0.1:{srv.server_port}/to/{location}"
        dest = tmp_path / "raw"
        with pytest.raises(fetch.DipError, match=re.escape(message)):
            fetch.fetch({"toy": {"gray": files["gray"]}}, dest)
        assert not dest.exists() or not [p for p in dest.rglob("*") if p.is_file()]
    finally:
        srv.shutdown()
        srv.server_close()


# --------------------------------------------------------------------------------------------- configuration

def test_yaml_is_loaded_safely_everywhere():
    unsafe = re.compile(r"yaml\.(load|load_all|full_load|full_load_all|unsafe_load|unsafe_load_all)\s*\(|Loader\s*=")
    files = [ROOT / "Snakefile", *ROOT.glob("workflow/**/*.smk"), *ROOT.glob("src/**/*.py"),
             *ROOT.glob("tools/*"),
             *ROOT.glob("tests/**/*.py"), *ROOT.glob(".ci/*"),
             *ROOT.glob("benchmarks/**/*.py"), *ROOT.glob("benchmarks/**/*.sh")]
    hits = [f"{f.relative_to(ROOT)}:{n}" for f in files if f.is_file() and f.name != Path(__file__).name
            for n, line in enumerate(f.read_text(errors="replace").splitlines(), 1) if unsafe.search(line)]
    assert hits == [], f"unsafe YAML loading: {hits}"
    assert len(files) > 20 and any(f.parent.name == "benchmarks" for f in files)


def test_snakemake_profiles_are_plain_yaml():
    # Snakemake reads profiles through YTE too: a `__use_yte__` key there would run code.
    profiles = list(ROOT.glob("workflow/profiles/*/config.yaml"))
    assert profiles
    for p in profiles:
        data = yaml.safe_load(p.read_text())
        assert isinstance(data, dict) and "__use_yte__" not in data, p


@pytest.mark.parametrize("text, message", [
    ('__use_yte__: true\nprofile: ?__import__("os").system("touch PWNED")\n', "__use_yte__"),
    ("data_mirror: !!python/name:os.system\n", "not plain YAML data"),  # FullLoader would build the function
    ('x: !!python/object/apply:os.system ["touch PWNED"]\n', "not plain YAML data"),
])
def test_config_that_is_code_is_refused(tmp_path, monkeypatch, text, message):
    from dip.data.safeconfig import check_config_is_data

    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ValueError, match=f"^c.yaml: {re.escape(message)}"):
        check_config_is_data("c.yaml")
    check_config_is_data(ROOT / "config" / "config.yaml")  # the real one is data
    assert not (tmp_path / "PWNED").exists()


def _schema_errors(edit) -> list[str]:
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    edit(cfg)
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(cfg)]


def _rename_profile(c: dict, name: str) -> None:
    c["profiles"][name] = c["profiles"].pop("ci")
    c["profile"] = name


ESCAPES = [
    ("task name", lambda c: c["tasks"].update({"../x": c["tasks"].pop("fig7_text")})),
    ("profile name", lambda c: _rename_profile(c, "../../x")),
    ("profile with a slash", lambda c: _rename_profile(c, "a/b")),
    ("dataset", lambda c: c["tasks"]["table1"].update(dataset="../x")),
    ("image", lambda c: c["tasks"]["table1"]["images"].append("../../etc/passwd")),
    ("mask", lambda c: c["tasks"]["fig7_text"].update(mask="../kate_mask")),
    ("manifest up", lambda c: c.update(manifest="config/../../x.yaml")),
    ("manifest absolute", lambda c: c.update(manifest="/etc/x.yaml")),
    ("baseline up", lambda c: c["regression"].update(baseline="../x.csv")),
    ("baseline inner up", lambda c: c["regression"].update(baseline="tests/../../x.csv")),
    ("baseline absolute", lambda c: c["regression"].update(baseline="/tmp/x.csv")),
    ("data_mirror command", lambda c: c.update(data_mirror="$(touch PWNED)")),
    ("data_mirror separator", lambda c: c.update(data_mirror="m; rm -rf data")),
]


@pytest.mark.parametrize("edit", [e for _, e in ESCAPES], ids=[n for n, _ in ESCAPES])
def test_schema_refuses_paths_that_escape_and_shell_syntax(edit):
    assert _schema_errors(lambda c: None) == []
    errors = _schema_errors(edit)
    assert errors and any("does not match" in m or "should not be valid" in m for m in errors), errors


@pytest.mark.parametrize("mirror", ["../shared/data", "/work/shared/data", "mirror"])
def test_data_mirror_may_be_outside_the_project_because_it_is_only_read(mirror):
    # dip fetch opens mirror files for reading only (src/dip/data/fetch.py, _install); it writes under --dest.
    assert _schema_errors(lambda c: c.update(data_mirror=mirror)) == []
