"""The documentation holds to what the code does and to what a reader can open.

- README.md stays short (at most 250 lines) and its one payload example is a job the worker
  accepts, the same as its `enqueue` line.
- docs/configuration.md lists exactly the variables `Settings.from_env` reads, each with the
  code's default and the code's bounds.
- docs/video-jobs.d.ts is what scripts/typescript_types.py writes, and its result type has the
  keys the pipeline writes.
- No page, test, script or module names something a reader outside the team cannot open: an
  internal tracker number, a run label, a path outside the repository, a local file that does
  not exist, or a heading that is not there.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.queue.procs import ROOT
from worker.cli.enqueue_args import payload_from_args
from worker.cli.parser import build_parser
from worker.payload import parse_payload
from worker.settings import Settings, SettingsError

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS, ROOT / "bench" / "README.md", ROOT / "CHANGELOG.md", ROOT / "SECURITY.md"]
CONFIGURATION = ROOT / "docs" / "configuration.md"


# --- the README -------------------------------------------------------------------------------


def test_the_readme_fits_in_250_lines():
    assert len(README.read_text().splitlines()) <= 250


def test_the_quick_start_is_the_demo_then_the_test_command():
    """.ci/run reads the test command from the second line of this block."""
    block = README.read_text().split("## Quick start\n", 1)[1].split("```\n", 2)[1]
    demo, tests = block.splitlines()
    assert demo.endswith("video-worker demo") and tests.endswith(".venv/bin/pytest")


def test_the_readme_example_is_one_job_in_sql_and_on_the_command_line(tmp_path, monkeypatch):
    text = README.read_text()
    sql = re.search(r"values \('(\{.*?\})',\s*'([^']+)'\)", text, re.DOTALL)
    line = re.search(r"```sh\nvideo-worker enqueue (.*?)\n```", text, re.DOTALL)
    assert sql and line
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["enqueue", *shlex.split(line[1].replace("\\\n", " "))])
    settings = Settings()
    expected = parse_payload(json.loads(sql[1]), settings)
    assert parse_payload(payload_from_args(args), settings) == expected
    assert args.idempotency_key == sql[2]


# --- the configuration page against Settings --------------------------------------------------


class Reading(dict[str, str]):
    """An environment that records every name the settings ask for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.append(key)
        return super().get(key, default)


def names_read() -> set[str]:
    env = Reading()
    Settings.from_env(env)
    return set(env.asked)


def documented() -> dict[str, list[str]]:
    """Each documented variable and its row's cells: meaning, default, accepted values."""
    rows = {}
    for line in CONFIGURATION.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        if line.startswith("| `") and len(cells) == 4:
            [name] = re.findall(r"^`([A-Z][A-Z0-9_]+)`$", cells[0])
            rows[name] = cells[1:]
    return rows


def bound(name: str, value: str) -> str | None:
    """The bound the code names when `value` is refused (e.g. "at least 2"), else None."""
    try:
        Settings.from_env({name: value})
    except SettingsError as exc:
        found = re.search(r"must be (at (?:least|most) -?\d+)", str(exc))
        return found[1] if found else None
    return None


def test_every_variable_the_worker_reads_is_documented_and_nothing_else():
    rows = documented()
    aliases = {  # read too, under another name: documented in their variable's row
        "NEXT_PUBLIC_SUPABASE_URL": "SUPABASE_URL",
        "SUPABASE_SERVICE_ROLE_KEY": "SUPABASE_SERVICE_KEY",
        "AWS_DEFAULT_REGION": "AWS_REGION",
    }
    for alias, name in aliases.items():
        assert f"`{alias}`" in rows[name][0], alias
    assert set(rows) == names_read() - set(aliases)


@pytest.mark.parametrize("name", sorted(documented()))
def test_each_documented_default_is_the_codes(name: str):
    """Setting a variable to its documented default changes nothing."""
    default = documented()[name][1]
    if default.startswith("unset"):
        assert Settings.from_env({name: ""}) == Settings.from_env({})
        return
    value = re.match(r"`([^`]+)`", default)
    assert value, f"{name}: the default must start with `VALUE` or 'unset'"
    assert Settings.from_env({name: value[1]}) == Settings.from_env({})


@pytest.mark.parametrize("name", sorted(documented()))
def test_each_documented_bound_is_the_codes(name: str):
    accepts = documented()[name][2]
    low, high = bound(name, "-99999999999999"), bound(name, "99999999999999999999")
    if (found := re.fullmatch(r"`(-?\d+)` to `(-?\d+)`", accepts)) is not None:
        assert (low, high) == (f"at least {found[1]}", f"at most {found[2]}")
    elif (found := re.fullmatch(r"at least `(-?\d+)`", accepts)) is not None:
        assert (low, high) == (f"at least {found[1]}", None)
    else:
        assert (low, high) == (None, None), f"{name}: the code has bounds, the page has {accepts!r}"
    if accepts == "`true` or `false`":
        for value in ("true", "false"):
            Settings.from_env({name: value})
        with pytest.raises(SettingsError, match="must be true or false"):
            Settings.from_env({name: "maybe"})
    elif re.fullmatch(r"`[a-z0-9]+`(, `[a-z0-9]+`)* or `[a-z0-9]+`", accepts):
        for value in re.findall(r"`([^`]+)`", accepts):
            Settings.from_env({name: value})  # each accepted value is accepted


# --- the TypeScript types ---------------------------------------------------------------------


def typescript_script():
    spec = importlib.util.spec_from_file_location("ts", ROOT / "scripts" / "typescript_types.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_typescript_types_are_generated_from_the_schema_and_the_sql():
    script = typescript_script()
    assert (ROOT / "docs" / "video-jobs.d.ts").read_text() == script.render(), (
        "docs/video-jobs.d.ts is out of date: run `python scripts/typescript_types.py`"
    )


def result_keys() -> set[str]:
    """The keys of the dict literal the pipeline returns as a job's result (the one that holds
    "storage_path"), wherever that function lives under worker/."""
    found: list[set[str]] = []
    for path in (ROOT / "worker").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Return) and isinstance(node.value, ast.Dict):
                keys = {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
                if "storage_path" in keys:
                    found.append(keys)
    assert len(found) == 1, found
    return found[0]


def test_the_result_type_has_the_keys_the_pipeline_writes():
    assert set(typescript_script().RESULT) == result_keys()


def test_the_typescript_types_compile_and_take_every_example_where_tsc_is_installed(tmp_path):
    """With a TypeScript compiler on PATH: the types compile, and every example payload of the
    composition page is a `Payload` to them. Without one (no Node.js needed), this skips."""
    tsc = shutil.which("tsc")
    if tsc is None:
        pytest.skip("no TypeScript compiler (tsc) on PATH")
    (tmp_path / "video-jobs.d.ts").write_text((ROOT / "docs" / "video-jobs.d.ts").read_text())
    examples = re.findall(
        r"```json\n(.*?)```", (ROOT / "docs" / "composition.md").read_text(), re.S
    )
    lines = ['import type { Payload } from "./video-jobs";']
    lines += [f"export const p{n}: Payload = {e.strip()};" for n, e in enumerate(examples)]
    (tmp_path / "examples.ts").write_text("\n".join(lines) + "\n")
    done = subprocess.run(
        [tsc, "--noEmit", "--strict", "video-jobs.d.ts", "examples.ts"],
        cwd=tmp_path,
        capture_output=True,
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()


# --- nothing a reader cannot open -------------------------------------------------------------

# Written so that this file does not match itself: "[ ]" and "[/]" match a space and a slash.
INTERNAL = re.compile(
    r"\b(?:issue|stop|round)[ ]#?\d+\b|\bthe[ ]review\b|\.\.[/]shared\b|\bshared[/]spec\b",
    re.IGNORECASE,
)


def prose_files() -> Iterator[Path]:
    yield from PAGES
    for folder in ("tests", "scripts", "worker", "bench", "sql"):
        for pattern in ("*.py", "*.sql"):
            yield from sorted((ROOT / folder).rglob(pattern))


@pytest.mark.parametrize("path", list(prose_files()), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_internal_reference(path: Path):
    found = [
        f"{n}: {line.strip()}"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if INTERNAL.search(line)
    ]
    assert found == []


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)
    return {github_anchor(h) for h in re.findall(r"(?m)^#{1,6} (.*)$", text)}


def links(path: Path) -> Iterator[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)
    yield from re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_local_link_opens(page: Path):
    broken = []
    for link in links(page):
        if re.match(r"[a-z]+:", link):
            continue  # https:, mailto:
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        if not path.exists():
            broken.append(link)
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(link)
    assert broken == []


REPO_PATH = re.compile(r"`((?:worker|docs|sql|tests|scripts|bench|deploy)/[\w./-]*)`")


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_repository_path_a_page_names_exists(page: Path):
    """The README and docs/ describe the repository as it is (CHANGELOG.md may name what was)."""
    missing = [
        name
        for name in REPO_PATH.findall(page.read_text())
        if not (ROOT / name).exists() and not any(c in name for c in "*…{")
    ]
    assert missing == []
