"""The fixture of the untrusted-artifact cases (issue 24): an artifact next to a folder of the user's."""

import pytest

from ..artifact_cache import artifact_copy


@pytest.fixture
def se(tmp_path_factory, tmp_path):
    """A private copy of the shared ``se`` export (``tmp_path/out/se``) beside ``tmp_path/user``, which holds a file
    of the user's: the cases snapshot both and assert neither changed."""
    folder = artifact_copy(tmp_path_factory, "se", tmp_path / "out")
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "notes.txt").write_text("mine\n")
    return folder
