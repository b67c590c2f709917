"""Every option that several commands take is one definition (cli/common.py): same type, default and metavar."""

from collections import defaultdict

import click
import pytest

from deploykit.cli import main

# the same flag name meaning different things in two commands: each keeps its own definition
DIFFERENT_MEANINGS = {
    "--batch": "bench: the batch sizes to time (N,N,...); calibrate: samples per calibration batch",
    "--max-batch": "serve: the largest batch the batcher forms; package: Triton's max_batch_size (0: no batching)",
    "--fp16": "build-trt: build the FP16 engine; calibrate: also write model.fp16.onnx (--fp16/--no-fp16)",
    "--backend": "one definition, but each command takes its column of the backend table (test_backend_table.py)",
}


def _params():
    ctx = click.Context(main)
    by_flag = defaultdict(dict)
    for name in main.list_commands(ctx):
        for param in main.get_command(ctx, name).params:
            for flag in param.opts:
                by_flag[flag][name] = param
    return {flag: commands for flag, commands in by_flag.items() if len(commands) > 1}


def _shape(param):
    return (type(param).__name__, param.name, repr(param.type.to_info_dict()), param.default, param.metavar, param.multiple,
            getattr(param, "is_flag", None), getattr(param, "show_default", None), param.nargs)


def test_shared_options_are_defined_once():
    shared = _params()
    assert {"--all", "--threads", "--seed", "--out", "--recipes", "--json", "--force", "--module", "--shape",
            "--precision", "--trt-version", "--checkpoint", "--recipe", "--trust-code"} <= set(shared)
    for flag, commands in shared.items():
        if flag in DIFFERENT_MEANINGS:
            continue
        shapes = {name: _shape(param) for name, param in commands.items()}
        assert len(set(shapes.values())) == 1, (flag, shapes)


@pytest.mark.parametrize("flag", sorted(DIFFERENT_MEANINGS))
def test_the_exceptions_are_still_shared_names(flag):
    assert flag in _params()  # else drop it from DIFFERENT_MEANINGS
