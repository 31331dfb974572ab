"""How the sandbox is built: what it mounts back after its private /tmp, and the disk quota's
watchdog. Pure logic and a folder on disk, in milliseconds."""

from pathlib import Path

from grader.sandbox.bubblewrap import _mount_back, _under_private_mounts
from grader.sandbox.disk import ScratchQuota


def test_what_the_private_mounts_hide_is_mounted_back_with_enterable_folders_above():
    venv = Path("/tmp/pytest-of-root/clone/.venv")
    package = Path("/tmp/pytest-of-root/clone/grader")
    solutions, elsewhere = Path("/tmp/pytest-of-root/clone/solutions"), Path("/srv/private")
    assert _under_private_mounts(venv) and not _under_private_mounts(Path("/usr/lib/python3"))
    assert _mount_back([venv, package], [solutions, elsewhere]) == [
        *("--perms", "0755", "--dir", "/tmp/pytest-of-root"),
        *("--perms", "0755", "--dir", "/tmp/pytest-of-root/clone"),
        *("--ro-bind", str(venv), str(venv)),
        *("--ro-bind", str(package), str(package)),  # its folders are made once
        *("--tmpfs", str(solutions)),  # hidden folders look empty, after the mounts back
        *("--tmpfs", str(elsewhere)),
    ]


def test_the_watchdog_counts_what_the_folder_holds_against_the_quota(tmp_path):
    quota = ScratchQuota.create(tmp_path, 64, mount=False)
    assert quota.image is None and quota.mechanism.startswith("a watchdog")
    (tmp_path / "small.bin").write_bytes(bytes(2**20))
    assert quota.within() and not quota.full()
    nested = tmp_path / "deep" / "er"
    nested.mkdir(parents=True)
    (nested / "big.bin").write_bytes(bytes(64 * 2**20))
    (tmp_path / "link").symlink_to("/usr")  # a link is not followed, nor counted as its target
    quota._measured = (0.0, 0)  # the watchdog measures at most once a second: now
    assert not quota.within() and quota.full()
    assert 64 < quota.used_mb() < 70
