import json

from click.testing import CliRunner

from deploykit import __version__
from deploykit.cli import main


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_list_json_has_every_recipe_with_static_reasons():
    result = CliRunner().invoke(main, ["list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert {"cbam", "msaf", "msaf_dsnet", "composite"} <= set(rows)
    assert rows["danet"]["static_axes"]["H"]["reason"]
    assert rows["temporal_conv"]["static_axes"]["T"]["value"] == 24
    assert rows["cbam"]["dynamic_axes"]["H"][:3] == [8, 32, 64]
    assert rows["composite"]["parameters"] < 5_000_000


def test_list_table_names_every_recipe():
    result = CliRunner().invoke(main, ["list"], terminal_width=200)
    assert result.exit_code == 0
    for name in ("se", "coordatt", "temporal_conv", "composite"):
        assert name in result.output


def test_unknown_recipe_is_one_line_and_exit_2():
    result = CliRunner().invoke(main, ["export", "cbmа"])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error: unknown recipe")
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
