"""The backend table's capability columns, and every command's backend choices derived from them."""

import pytest

from deploykit.backends import AUTO_ORDER, BACKENDS, CAPABILITIES, choices, names, parse_targets


def test_the_columns_say_what_each_backend_can_do():
    assert names("verify") == ("ort-cpu", "ort-cuda", "ort-trt", "ref", "trt")  # torch is the reference itself
    assert names("serve") == ("ort-cpu", "ort-cuda", "ort-trt", "trt")
    assert names("bench") == ("torch", "ort-cpu", "ort-cuda", "ort-trt", "ref", "trt")
    assert names("package") == ("ort-cpu", "ort-cuda", "ort-trt", "trt")
    assert names("auto") == AUTO_ORDER == ("trt", "ort-cuda", "ort-cpu")
    assert {n: BACKENDS[n].triton_instance_kind for n in names("package")} == {
        "ort-cpu": "KIND_CPU", "ort-cuda": "KIND_GPU", "ort-trt": "KIND_GPU", "trt": None}
    assert {n for n, b in BACKENDS.items() if b.int8_rules == "tensorrt"} == {"ort-trt", "ref", "trt"}
    with pytest.raises(ValueError, match="unknown capability"):
        names("fly")


def test_auto_is_a_choice_only_where_a_command_picks():
    assert choices("serve") == ("auto", *names("serve"))
    assert choices("package") == ("auto", *names("package"))
    assert choices("verify") == names("verify")
    assert set(CAPABILITIES) == {"verify", "serve", "bench", "package", "auto"}


def _backend_choices(command, option="backend"):
    return tuple(next(p for p in command.params if p.name == option).type.choices)


def test_every_command_takes_its_column():
    from deploykit import runtime
    from deploykit.cli import package_cmd, serve_cmd, verify_cmd
    from deploykit.package import triton
    from deploykit.verify import BACKENDS as VERIFY_BACKENDS

    assert _backend_choices(verify_cmd.command) == VERIFY_BACKENDS == names("verify")
    assert _backend_choices(serve_cmd.command) == runtime.BACKENDS == choices("serve")
    assert _backend_choices(package_cmd.command) == triton.BACKENDS == choices("package")
    with pytest.raises(Exception, match="choose from torch, ort-cpu, ort-cuda, ort-trt, ref, trt"):
        parse_targets("openvino", ())


def test_bench_help_names_the_bench_column():
    # bench_cmd does not import the table (it loads torch); its help text must still name every row it takes
    from deploykit.cli import bench_cmd

    text = next(p for p in bench_cmd.command.params if p.name == "backends_text").help
    listed = text.split(":", 1)[1].split("[default")[0]
    assert tuple(n.strip() for n in listed.split(",")) == names("bench")
