"""sql/ is the one copy of the SQL in git; the wheel gets it at build time, as worker/migrations/.

Built as `pip install .` and the Docker image build it (from the checkout), and as an install
from PyPI would (from the sdist), without network: the build backend, hatchling, comes from the
test extras. The wheel is then installed into a folder of its own, and `migrate` there must list
the packaged files, not the checkout's.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from worker.db.migrate import CHECKOUT_SQL, SQL_DIR, migrations

ROOT = Path(__file__).resolve().parents[1]
SQL = ROOT / "sql"


def sql_files() -> dict[str, bytes]:
    return {p.relative_to(SQL).as_posix(): p.read_bytes() for p in SQL.rglob("*.sql")}


def pip(*args: str | Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "-q", *map(str, args)],
        check=True,
        env={**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )


def build_wheel(source: Path, out: Path) -> Path:
    assert importlib.util.find_spec("hatchling"), (
        "hatchling, the build backend, is missing: pip install -e '.[test]'"
    )
    pip("wheel", "--no-deps", "--no-build-isolation", "-w", out, source)
    [wheel] = out.glob("*.whl")
    return wheel


def build_sdist(out: Path) -> Path:
    code = "import sys, hatchling.build as b; print(b.build_sdist(sys.argv[1]))"
    subprocess.run([sys.executable, "-c", code, out], cwd=ROOT, check=True, capture_output=True)
    [sdist] = out.glob("*.tar.gz")
    return sdist


def packaged(wheel: Path) -> dict[str, bytes]:
    prefix = "worker/migrations/"
    with zipfile.ZipFile(wheel) as archive:
        return {
            name.removeprefix(prefix): archive.read(name)
            for name in archive.namelist()
            if name.startswith(prefix)
        }


def test_a_checkout_reads_sql_itself():
    """No second copy in the package folder of a checkout: migrate reads sql/."""
    assert SQL_DIR == CHECKOUT_SQL == SQL
    assert not (ROOT / "worker" / "migrations").exists()
    assert {m.name for m in migrations()} <= set(sql_files())


@pytest.mark.slow  # two wheels, an sdist and an install: 2 to 5 s
def test_the_wheel_carries_sql_and_migrates_from_it(tmp_path: Path):
    wheel = build_wheel(ROOT, tmp_path / "from-checkout")
    assert packaged(wheel) == sql_files()

    sdist = build_sdist(tmp_path / "sdist")
    with tarfile.open(sdist) as archive:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # 3.11.4 and later
        archive.extractall(tmp_path / "sdist", **safe)
    [unpacked] = (tmp_path / "sdist").glob("video_worker-*/")
    in_sdist = {
        p.relative_to(unpacked / "sql").as_posix(): p.read_bytes()
        for p in (unpacked / "sql").rglob("*.sql")
    }
    assert in_sdist == sql_files()
    assert packaged(build_wheel(unpacked, tmp_path / "from-sdist")) == sql_files()

    site = tmp_path / "site"
    pip("install", "--no-deps", "--target", site, wheel)
    code = (
        "import json, worker.db.migrate as m; "
        "print(json.dumps([m.__file__, str(m.SQL_DIR), [x.name for x in m.migrations()]]))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,  # not the checkout, whose worker/ would be found first
        env={**os.environ, "PYTHONPATH": str(site)},
        check=True,
        capture_output=True,
        text=True,
    )
    module, sql_dir, names = json.loads(run.stdout)
    assert Path(module).is_relative_to(site), module
    assert Path(sql_dir) == site / "worker" / "migrations"
    assert names == [m.name for m in migrations()]

    # an installation that lost its SQL says where it looked
    shutil.rmtree(site / "worker" / "migrations")
    run = subprocess.run(
        [sys.executable, "-c", "import worker.db.migrate as m; m.migrations()"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
    )
    assert "MigrationsMissing: the SQL migrations are missing" in run.stderr, run.stderr
    assert f"neither {site / 'worker' / 'migrations'} (an installed wheel)" in run.stderr
