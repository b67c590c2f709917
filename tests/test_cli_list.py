import json

import pytest
from click.testing import CliRunner

from deploykit import __version__
from deploykit.cli import main
from deploykit.errors import DeployKitError

from .conftest import RECIPES


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


def test_list_recipes_keeps_a_broken_recipe_with_its_error(tmp_path):
    from deploykit.recipe import list_recipes

    good = (RECIPES / "se.toml").read_text()
    (tmp_path / "se.toml").write_text(good)
    (tmp_path / "bad_dims.toml").write_text(good.replace("min = 8\nopt = 32", "min = 40\nopt = 32", 1))
    (tmp_path / "no_module.toml").write_text(good.replace('module = "se"', 'module = "no_such_block"'))
    listing = list_recipes(tmp_path)
    rows = {r["name"]: r for r in listing.rows}
    assert [r["name"] for r in listing.rows] == ["bad_dims", "no_module", "se"]
    assert rows["se"]["parameters"] == 2 * 64 * 4 and "error" not in rows["se"]  # two bias-free Linear, 64 <-> 4
    assert "bad_dims.toml" in rows["bad_dims"]["error"] and "dims.H" in rows["bad_dims"]["error"]
    assert "no_such_block" in rows["no_module"]["error"]
    assert [r["name"] for r in listing.failed] == ["bad_dims", "no_module"] and listing.exit_code == 1
    with pytest.raises(DeployKitError, match="does not exist"):
        list_recipes(tmp_path / "nothing")

    # the command prints the same rows and exits 1
    result = CliRunner().invoke(main, ["list", "--recipes", str(tmp_path), "--json"])
    assert result.exit_code == 1 and json.loads(result.output) == listing.rows
