"""Bad-input suite, what an artifact holds (issue 24): manifest values every reader relies on (bounds, steps,
dim expressions, ranks), a truncated or unreadable model, a read-only folder, and calibrate leaving a user's
file alone. Each case asserts the exit code, one line and no traceback, and that neither the artifact nor a
sibling folder of the user's changed.
"""

import contextlib
import errno
import hashlib
import json
import os

import pytest

from deploykit import runtime
from deploykit.errors import DeployKitError

from .checks import assert_one_line_error, cli, tree
from .untrusted import se  # noqa: F401 (the fixture)


def _edit_manifest(folder, edit):
    manifest = json.loads((folder / "manifest.json").read_text())
    edit(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _replace_recorded(folder, name, data: bytes):
    """``name`` replaced by ``data`` with the manifest's hash updated to match (so only the content is wrong)."""
    (folder / name).write_bytes(data)
    _edit_manifest(folder, lambda m: m["files"].__setitem__(name, hashlib.sha256(data).hexdigest()))


def _dim(symbol, **values):
    return lambda m: m["dims"][symbol].update(values)


def _input_dims(*dims):
    return lambda m: m["inputs"][0].__setitem__("dims", list(dims))


MANIFEST_VALUES = {
    "batch_max_huge": (_dim("B", max=10**30), "dims.B needs 1 <= min <= opt <= max <= 2147483647"),
    "min_above_max": (_dim("H", min=64, max=8), "dims.H needs 1 <= min <= opt <= max"),
    "min_zero": (_dim("W", min=0), "dims.W needs 1 <= min"),
    "opt_a_string": (_dim("B", opt="x"), "dims.B.opt must be an integer, got 'x'"),
    "opt_outside": (_dim("B", opt=99), "dims.B needs 1 <= min <= opt <= max"),
    "multiple_of_zero": (_dim("H", multiple_of=0), "dims.H.multiple_of must be a positive integer, got 0"),
    "multiple_of_a_string": (_dim("H", multiple_of="2"), "dims.H.multiple_of must be a positive integer, got '2'"),
    "static_value_huge": (lambda m: m["dims"].__setitem__("B", {"value": 10**30}), "dims.B.value must be in [1, "),
    "divide_by_zero": (_input_dims("B", 64, "H/0", "W"), "'H/0' divides by zero"),
    "undeclared_symbol": (_input_dims("B", 64, "Q", "W"), "uses Q, which dims does not declare"),
    "outputs_empty": (lambda m: m.__setitem__("outputs", []), "'outputs' is empty"),
    "inputs_empty": (lambda m: m.__setitem__("inputs", []), "'inputs' is empty"),
}


def _serve_load(folder):
    """What `deploykit serve` does first (in this process: a server that did start would never return)."""
    try:
        runtime.load(folder, "ort-cpu").close()
    except DeployKitError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("case", sorted(MANIFEST_VALUES))
@pytest.mark.parametrize("command", ["verify", "package", "serve"])
def test_a_manifest_value_no_reader_can_use_is_one_line(case, command, se, tmp_path):
    edit, expected = MANIFEST_VALUES[case]
    _edit_manifest(se, edit)
    before = tree(tmp_path)
    if command == "serve":
        message = _serve_load(se)
        assert message is not None and "\n" not in message and expected in message, message
    else:
        args = ["verify", "se"] if command == "verify" else ["package", "se", "--triton", tmp_path / "repo"]
        assert_one_line_error(cli(*args, "--out", se.parent), expected)
    assert tree(tmp_path) == before


@pytest.mark.slow
@pytest.mark.timeout(120)  # a server that did start would never return
def test_serve_refuses_a_manifest_with_a_zero_step_before_it_listens(se, tmp_path):
    _edit_manifest(se, _dim("H", multiple_of=0))
    before = tree(tmp_path)
    assert_one_line_error(cli("serve", se, "--port", "0", "--no-grpc"), "multiple_of must be a positive integer")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("command", ["package", "serve"])
def test_a_rank_that_disagrees_with_the_onnx_is_one_line(command, se, tmp_path):
    _edit_manifest(se, lambda m: (m["inputs"][0].__setitem__("dims", ["B", 64, "H"]),
                                  m["outputs"][0].__setitem__("dims", ["B", 64, "H"])))
    before = tree(tmp_path)
    expected = "'x' has rank 4, the manifest says 3"
    if command == "serve":
        message = _serve_load(se)
        assert message is not None and expected in message and "\n" not in message, message
    else:
        assert_one_line_error(cli("package", "se", "--triton", tmp_path / "repo", "--out", se.parent), expected)
    assert tree(tmp_path) == before and not (tmp_path / "repo").exists()


# -- the files themselves ---------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["calibrate", "package", "verify", "serve"])
def test_a_truncated_model_with_its_hash_updated_is_one_line(command, se, tmp_path):
    _replace_recorded(se, "model.onnx", (se / "model.onnx").read_bytes()[:300])
    before = tree(tmp_path)
    if command == "serve":
        message = _serve_load(se)
        assert message is not None and "\n" not in message and "model" in message, message
    else:
        args = {"calibrate": ["calibrate", "se", "--synthetic", "2", "--no-fp16"], "verify": ["verify", "se"],
                "package": ["package", "se", "--triton", tmp_path / "repo"]}[command]
        result = cli(*args, "--out", se.parent)
        assert_one_line_error(result, "model", code=result.exit_code if command == "verify" else 2)
        assert result.exit_code in (1, 2)
    assert tree(tmp_path) == before


@contextlib.contextmanager
def _unreadable(path):
    """``open(path)`` fails with EACCES, as for a file mode 000 (the tests may run as root, whom modes do not stop)."""
    import builtins
    import io

    real = builtins.open
    target = os.path.realpath(path)

    def refusing(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.path.realpath(os.fspath(file)) == target:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(file))
        return real(file, *args, **kwargs)

    def refusing_fd(file, *args, **kwargs):  # files.open_regular opens with os.open (no blocking on a FIFO)
        if isinstance(file, (str, os.PathLike)) and os.path.realpath(os.fspath(file)) == target:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(file))
        return real_fd(file, *args, **kwargs)

    real_fd = os.open
    builtins.open = io.open = refusing
    os.open = refusing_fd
    try:
        yield
    finally:
        builtins.open = io.open = real
        os.open = real_fd


@pytest.mark.parametrize("name", ["model.onnx", "weights.pt"])
def test_an_unreadable_file_is_one_line_in_verify(name, se, tmp_path):
    before = tree(tmp_path)
    with _unreadable(se / name):
        result = cli("verify", "se", "--out", se.parent)
    assert_one_line_error(result, f"cannot read {se / name}: Permission denied")
    assert tree(tmp_path) == before


def test_an_unreadable_model_is_one_line_in_serve(se, tmp_path):
    before = tree(tmp_path)
    with _unreadable(se / "model.onnx"):
        message = _serve_load(se)
    assert message is not None and "Permission denied" in message and "\n" not in message, message
    assert tree(tmp_path) == before


@contextlib.contextmanager
def _read_only(folder):
    """Every file or folder created under ``folder`` fails with EROFS, as on a read-only mount."""
    real_open, real_mkdir = os.open, os.mkdir
    root = os.path.realpath(folder)

    def inside(path):
        resolved = os.path.realpath(os.fspath(path))
        return resolved == root or resolved.startswith(root + os.sep)

    def refusing_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    def refusing_mkdir(path, *args, **kwargs):
        if inside(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
        return real_mkdir(path, *args, **kwargs)

    os.open, os.mkdir = refusing_open, refusing_mkdir
    try:
        yield
    finally:
        os.open, os.mkdir = real_open, real_mkdir


def test_calibrate_on_a_read_only_folder_is_one_line(se, tmp_path):
    before = tree(tmp_path)
    with _read_only(se):
        result = cli("calibrate", "se", "--synthetic", "2", "--no-fp16", "--target", "trt", "--out", se.parent)
    assert_one_line_error(result, "Read-only file system")
    assert tree(tmp_path) == before


@pytest.mark.slow
def test_calibrate_on_a_folder_it_may_not_write_is_one_line(se, tmp_path, monkeypatch):
    real = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if os.fspath(path) == str(se) else real(path, mode, **kw))
    before = tree(tmp_path)
    assert_one_line_error(cli("calibrate", "se", "--synthetic", "2", "--no-fp16", "--out", se.parent), "is not writable")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("target", ["trt", pytest.param("ort", marks=pytest.mark.slow)])
def test_calibrate_leaves_a_users_model_inferred_onnx_alone(target, se, tmp_path):
    """onnxruntime's tools write <model>-inferred.onnx next to the model they read: never in the artifact."""
    (se / "model-inferred.onnx").write_bytes(b"the user's own file\n")
    outside, files = tree(tmp_path / "user"), set(os.listdir(se))
    result = cli("calibrate", "se", "--synthetic", "2", "--no-fp16", "--target", target, "--out", se.parent)
    assert result.exit_code == 0, result.output
    assert (se / "model-inferred.onnx").read_bytes() == b"the user's own file\n"
    expected = {"calibration.json", "calibration.cache", "model.int8.onnx" if target == "trt" else "model.int8.ort.onnx"}
    assert set(os.listdir(se)) == files | expected  # nothing else: no augmented or inferred models left behind
    assert tree(tmp_path / "user") == outside
