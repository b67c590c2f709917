"""User code that misbehaves during export/verify (issue 24): a forward that never returns or reads stdin,
sys.exit/os._exit in the user's code, a forward that starts a non-daemon thread, changes directory or its own
weights; an export.log replaced by a FIFO; bench whose only backend did not run.

Each case asserts the exit code, one line, no traceback, and that no file outside the artifact folder changed.
Most run in this process (click's runner: the time limit's SIGALRM works in the main thread); the cases that
are about the process itself (stdin left open, a lingering thread, os._exit) spawn `deploykit`.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .checks import assert_one_line_error, cli, tree

DEPLOYKIT = str(Path(sys.executable).parent / "deploykit")

USER_CODE = '''
import os, sys, threading, time
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, behaviour="fine"):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.behaviour = behaviour
        self.register_buffer("calls", torch.zeros(1))

    def forward(self, x):
        getattr(self, "_" + self.behaviour)()
        return self.conv(x)

    def _fine(self):
        pass

    def _loops(self):
        while True:
            pass

    def _sleeps(self):
        time.sleep(3600)

    def _waits_for_an_event(self):
        threading.Event().wait()

    def _reads_stdin(self):
        input("weights? ")

    def _reads_fd0(self):
        os.read(0, 1)

    def _exits_0(self):
        sys.exit(0)

    def _exits_3(self):
        sys.exit(3)

    def _exits_text(self):
        sys.exit("giving up")

    def _raises_system_exit(self):
        raise SystemExit(7)

    def _os_exit_0(self):
        os._exit(0)

    def _os_exit_5(self):
        os._exit(5)

    def _changes_dir(self):
        os.chdir(os.environ["DK_ELSEWHERE"])

    def _starts_a_thread(self):
        threading.Thread(target=time.sleep, args=(3600,)).start()  # not a daemon

    def _counts_calls(self):
        self.calls += 1  # a buffer the forward updates: the exported graph would not match weights.pt

    def _hangs_when_asked(self):
        while os.environ.get("DK_HANG"):
            pass


def make(behaviour="fine"):
    return Block(behaviour)


def exits_in_factory():
    sys.exit(4)


def os_exits_in_factory():
    os._exit(0)
'''

DIMS = ["--input", "x=B,4,H,W", "--dim", "B=1:1:2", "--dim", "H=8:16:32", "--dim", "W=8:16:32"]


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "misbehave.py").write_text(USER_CODE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("misbehave", None)
    return tmp_path


def _outside(project: Path) -> dict:
    """Every file of the project but the artifact folder and caches: what must not change."""
    return {k: v for k, v in tree(project).items() if not k.startswith(("out/", "__pycache__/"))}


def _export(behaviour: str, *extra):
    return cli("export", "--module", "misbehave:make", "--args", f'{{"behaviour": "{behaviour}"}}', *DIMS,
               "--name", "block", "--out", "out", *extra)


# behaviour: (extra flags, exit code, text of the one line)
FORWARD_CASES = {
    "loops": (["--forward-timeout", "1"], 3, "did not return within 1 s (deploykit's --forward-timeout)"),
    "sleeps": (["--forward-timeout", "1"], 3, "did not return within 1 s"),
    "waits_for_an_event": (["--forward-timeout", "1"], 3, "did not return within 1 s"),
    "reads_stdin": ([], 2, "raised EOFError"),
    "exits_0": ([], 2, "called sys.exit(0)"),
    "exits_3": ([], 2, "called sys.exit(3)"),
    "exits_text": ([], 2, "called sys.exit('giving up')"),
    "raises_system_exit": ([], 2, "called sys.exit(7)"),
    "os_exit_0": ([], 2, "called os._exit(0)"),
    "os_exit_5": ([], 2, "called os._exit(5)"),
    "counts_calls": ([], 2, "forward changed its own parameters or buffers"),
}


@pytest.mark.parametrize("behaviour", list(FORWARD_CASES))
def test_a_misbehaving_forward_is_one_line(project, behaviour):
    extra, code, text = FORWARD_CASES[behaviour]
    before = _outside(project)
    line = assert_one_line_error(_export(behaviour, *extra), text, code)
    assert "deploykit bug" not in line
    assert not (project / "out" / "block").exists()  # not even an empty artifact folder
    assert _outside(project) == before


@pytest.mark.parametrize("factory, text", [("exits_in_factory", "called sys.exit(4)"),
                                           ("os_exits_in_factory", "called os._exit(0)")])
def test_exits_in_the_factory_are_one_line(project, factory, text):
    before = _outside(project)
    result = cli("export", "--module", f"misbehave:{factory}", *DIMS, "--out", "out")
    assert_one_line_error(result, text, 2)
    assert not list((project / "out").glob("*/model.onnx"))
    assert _outside(project) == before


def test_a_forward_that_changes_directory_does_not_move_a_relative_out(project, tmp_path_factory, monkeypatch):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    monkeypatch.setenv("DK_ELSEWHERE", str(elsewhere))
    result = _export("changes_dir")
    assert result.exit_code == 0, result.output
    assert (project / "out" / "block" / "model.onnx").is_file()
    assert tree(elsewhere) == {}
    assert Path.cwd() == project


def test_verify_stops_a_forward_that_hangs_at_the_time_limit(project, monkeypatch):
    assert _export("hangs_when_asked").exit_code == 0
    artifact = tree(project / "out" / "block")
    monkeypatch.setenv("DK_HANG", "1")
    result = cli("verify", "block", "--out", "out", "--seed", "1", "--forward-timeout", "1", "--module", "misbehave:make")
    assert_one_line_error(result, "did not return within 1 s", 3)
    assert tree(project / "out" / "block") == artifact


@pytest.mark.parametrize("command", ["export", "verify"])
def test_the_forward_timeout_is_documented(command):
    result = cli(command, "--help")
    assert result.exit_code == 0
    assert "--forward-timeout" in result.output and "600" in result.output


@pytest.mark.parametrize("value", ["-1", "soon"])
def test_a_bad_forward_timeout_is_one_line(project, value):
    assert_one_line_error(_export("fine", "--forward-timeout", value), "--forward-timeout")


@pytest.mark.parametrize("where", ["artifact", "refusal"])
def test_an_export_log_that_is_a_fifo_does_not_hang_export(project, where):
    if where == "artifact":  # the artifact's own export.log, replaced after a good export
        assert _export("fine").exit_code == 0
        fifo, behaviour, text, code = project / "out" / "block" / "export.log", "fine", "not a regular file", 2
    else:  # the log a refused export leaves beside the artifact
        (project / "out").mkdir()
        fifo, behaviour, text, code = project / "out" / "block.export.log", "exits_0", "called sys.exit(0)", 2
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    # a blocking open of the FIFO would wait for a writer for ever: a bounded subprocess, not this process
    done = subprocess.run([DEPLOYKIT, "export", "--module", "misbehave:make", "--args",
                           f'{{"behaviour": "{behaviour}"}}', *DIMS, "--name", "block", "--out", "out"],
                          cwd=project, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == code, done.stderr
    assert len(lines) == 1 and text in lines[0] and "Traceback" not in done.stderr, done.stderr
    assert fifo.is_fifo()


def _spawn(project, behaviour, *extra, stdin=subprocess.DEVNULL, timeout=240):
    return subprocess.run([DEPLOYKIT, "export", "--module", "misbehave:make", "--args",
                           f'{{"behaviour": "{behaviour}"}}', *DIMS, "--name", "block", "--out", "out", *extra],
                          cwd=project, capture_output=True, text=True, timeout=timeout, stdin=stdin)


@pytest.mark.slow
def test_a_forward_that_starts_a_thread_does_not_keep_deploykit_alive(project):
    done = _spawn(project, "starts_a_thread", timeout=180)  # the thread sleeps an hour
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert (project / "out" / "block" / "model.onnx").is_file()


@pytest.mark.slow
def test_os_exit_in_a_forward_does_not_end_deploykit_with_exit_0(project):
    done = _spawn(project, "os_exit_0")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "called os._exit(0)" in lines[0], done.stderr
    assert not (project / "out" / "block" / "model.onnx").exists()


@pytest.mark.slow
@pytest.mark.parametrize("behaviour", ["reads_stdin", "reads_fd0"])
def test_a_forward_reading_an_open_stdin_does_not_hang(project, behaviour):
    """stdin is a pipe nobody writes to (a CI runner's): input() gets end-of-file, a raw read the time limit."""
    process = subprocess.Popen([DEPLOYKIT, "export", "--module", "misbehave:make", "--args",
                                f'{{"behaviour": "{behaviour}"}}', *DIMS, "--name", "block", "--out", "out",
                                "--forward-timeout", "2"], cwd=project, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        process.wait(timeout=240)  # not communicate(): that would close stdin, and a read would see its end
        stderr = process.stderr.read()
    finally:
        process.kill()
        for stream in (process.stdin, process.stdout, process.stderr):
            stream.close()
    lines = stderr.strip().splitlines()
    want = (2, "raised EOFError") if behaviour == "reads_stdin" else (3, "did not return within 2 s")
    assert process.returncode == want[0] and len(lines) == 1 and want[1] in lines[0], stderr


@pytest.mark.slow
def test_a_forward_that_loops_in_a_process_ends_with_exit_3(project):
    done = _spawn(project, "loops", "--forward-timeout", "1")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 3 and len(lines) == 1 and "did not return within 1 s" in lines[0], done.stderr


def test_bench_whose_only_backend_did_not_run_exits_non_zero(project):
    assert _export("fine").exit_code == 0
    artifact = tree(project / "out" / "block")
    result = cli("bench", "block", "--out", "out", "--backends", "trt", "--no-write", "--iters", "2",
                 "--warmup", "1", "--rounds", "1")
    assert_one_line_error(result, "no backend ran: trt", 2)
    assert tree(project / "out" / "block") == artifact
