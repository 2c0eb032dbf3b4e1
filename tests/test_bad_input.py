"""The bad-input corpus: one table row per invalid flag, text, time, path,
setting or file, each run through the real CLI in a subprocess.

Every row must end with the exit code it names: 2 for usage errors, 1 for
other failures. Stderr must be exactly one line, without a traceback, and
contain the row's fragments (the value at fault and the next step). Every
file under the test's folder must keep its bytes and mode.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lcworker.checkpoint import Checkpoint
from lcworker.models import COMPLETED
from tests.support.badinput import (
    describe_changes,
    free_port,
    html_server,
    read_only_folder,
    redis_with_password,
    run_lcq,
    snapshot,
)
from tests.support.serve import start_serve
from tests.support.workers import REPO
from tests.test_checkpoint_support import END, START, make_meta, page

#: Data file of the checkpoint that ``with_checkpoint`` rows start from.
CHECKPOINT_NAME = "search.jsonl"
SEARCH_ID = "20240101-badinput"
REDIS_PASSWORD = "secret"
SERVE_API_KEY = "right"

Setup = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    """One bad input: the argv, what to set up first, and what must come out.

    Values in ``args``, ``env`` and ``fragments`` may contain placeholders:
    ``{tmp}`` is the test's folder and ``{cp}`` the checkpoint path.
    ``{closed}`` is a loopback port nothing listens on, ``{html}`` a web
    server that returns only HTML, and ``{auth_redis}`` the port of a Redis
    that requires a password. ``{serve}`` is a real ``lcq serve`` that
    accepts only the API key "right".
    """

    id: str
    args: tuple[str | bytes, ...]
    code: int
    fragments: tuple[str, ...]
    setup: Setup | None = None
    env: dict[str, str] = field(default_factory=dict)
    unset: tuple[str, ...] = ()
    stdin: bytes | None = None
    read_only: bool = False


# --- setups -----------------------------------------------------------------


def make_checkpoint(path: Path, *, events: int = 0) -> Checkpoint:
    """Create a queued one-slice checkpoint, with one page if ``events`` > 0."""
    meta = make_meta(search_id=SEARCH_ID)
    meta.data_path = str(path)
    checkpoint = Checkpoint.create(path, meta)
    if events:
        results = page(1, rows=events)
        meta = checkpoint.load_meta()
        progress = meta.slices[0]
        progress.offset = checkpoint.append_page(0, 0, results)
        progress.page = progress.results = 1
        progress.events = events
        progress.next_token = results[0]["nextToken"]
        checkpoint.commit(meta)
    return checkpoint


def with_checkpoint(tmp: Path) -> None:
    make_checkpoint(tmp / CHECKPOINT_NAME)


def with_events(tmp: Path) -> None:
    make_checkpoint(tmp / CHECKPOINT_NAME, events=5)


def meta_path(tmp: Path) -> Path:
    return tmp / f"{CHECKPOINT_NAME}.lcq" / "meta.json"


def with_meta_bytes(raw: bytes) -> Setup:
    """Set up a checkpoint, then replace its metadata file with ``raw``."""

    def setup(tmp: Path) -> None:
        with_checkpoint(tmp)
        meta_path(tmp).write_bytes(raw)

    return setup


def with_meta_edit(edit: Callable[[dict], None]) -> Setup:
    """Set up a checkpoint, then rewrite its metadata record through ``edit``."""

    def setup(tmp: Path) -> None:
        with_checkpoint(tmp)
        record = json.loads(meta_path(tmp).read_text())
        edit(record)
        meta_path(tmp).write_text(json.dumps(record))

    return setup


def with_truncated_meta(tmp: Path) -> None:
    with_checkpoint(tmp)
    raw = meta_path(tmp).read_bytes()
    meta_path(tmp).write_bytes(raw[: len(raw) // 2])


def with_meta_symlink(tmp: Path) -> None:
    with_checkpoint(tmp)
    real = tmp / "elsewhere.json"
    real.write_bytes(meta_path(tmp).read_bytes())
    meta_path(tmp).unlink()
    meta_path(tmp).symlink_to(real)


def with_corrupt_line(tmp: Path) -> None:
    # A completed search, so lcq show prints no note about a running one.
    checkpoint = make_checkpoint(tmp / CHECKPOINT_NAME, events=5)
    meta = checkpoint.load_meta()
    meta.state = meta.slices[0].state = COMPLETED
    meta.slices[0].next_token = None
    checkpoint.commit(meta)
    data = tmp / CHECKPOINT_NAME
    size = data.stat().st_size
    data.write_bytes(b"{not json" + b" " * (size - 10) + b"\n")


def with_folder(tmp: Path) -> None:
    (tmp / "folder").mkdir()


def with_dangling_symlink(tmp: Path) -> None:
    (tmp / "link.jsonl").symlink_to(tmp / "target.jsonl")


def with_symlink_to_checkpoint(tmp: Path) -> None:
    with_checkpoint(tmp)
    (tmp / "link.jsonl").symlink_to(tmp / CHECKPOINT_NAME)


def with_plain_file(tmp: Path) -> None:
    (tmp / "plain.txt").write_text("not a folder\n")


def with_query_file(raw: bytes) -> Setup:
    def setup(tmp: Path) -> None:
        (tmp / "query.lcql").write_bytes(raw)

    return setup


def set_field(name: str, value) -> Callable[[dict], None]:
    def edit(record: dict) -> None:
        record[name] = value

    return edit


def set_slice_field(name: str, value) -> Callable[[dict], None]:
    def edit(record: dict) -> None:
        record["slices"][0][name] = value

    return edit


# --- the table ----------------------------------------------------------------

#: Two MiB of query text, twice the limit.
HUGE_QUERY = b"* | NEW_PROCESS | event/COMMAND_LINE contains 'x' " * 44_000
SUBMIT = ("submit", "--start", str(START), "--end", str(END))
SUBMIT_NV = (*SUBMIT, "--checkpoint", "{tmp}/out.jsonl", "--no-validate")
QUERY = ("--query", "* | * | *")


def submit_nv(*args: str | bytes) -> tuple[str | bytes, ...]:
    """Argv of a submit that skips validation and writes {tmp}/out.jsonl."""
    return (*SUBMIT_NV, *args)


CASES = [
    # LCQL text
    Case(
        "query-empty", submit_nv("--query", ""), 2, ("invalid --query", "'* | * | *'")
    ),
    Case("query-blank", submit_nv("--query", "   "), 2, ("--query: empty",)),
    Case(
        "query-non-utf8",
        submit_nv("--query", b"* | * | event/X == '\xff\xfe'"),
        2,
        ("not valid UTF-8", "re-type the query"),
    ),
    Case(
        "query-file-2mib",
        submit_nv("--query-file", "{tmp}/query.lcql"),
        2,
        ("'{tmp}/query.lcql'", "1048576 bytes", "shorten the query"),
        setup=with_query_file(HUGE_QUERY),
    ),
    Case(
        "query-stdin-2mib",
        submit_nv("--query-file", "-"),
        2,
        ("--query-file '-'", "shorten the query"),
        stdin=HUGE_QUERY,
    ),
    Case(
        "query-file-non-utf8",
        submit_nv("--query-file", "{tmp}/query.lcql"),
        2,
        ("byte 6 is not UTF-8", "save the query as UTF-8"),
        setup=with_query_file(b"* | * \xc3\x28 | *"),
    ),
    Case(
        "query-file-missing",
        submit_nv("--query-file", "{tmp}/absent.lcql"),
        2,
        ("'{tmp}/absent.lcql'", "No such file", "readable file"),
    ),
    Case(
        "query-file-folder",
        submit_nv("--query-file", "{tmp}"),
        2,
        ("--query-file '{tmp}'", "readable file"),
    ),
    Case(
        "query-and-query-file",
        submit_nv(*QUERY, "--query-file", "-"),
        2,
        ("not both", "drop one"),
    ),
    Case("query-missing", submit_nv(), 2, ("missing --query", "--query-file")),
    Case(
        "query-rejected-by-api",
        (
            *SUBMIT,
            "--query",
            "* | * | event/X ==",
            "--checkpoint",
            "{tmp}/out.jsonl",
        ),
        2,
        ("'* | * | event/X =='", "--no-validate"),
        env={"LCQ_API_URL": "{serve}", "LC_API_KEY": SERVE_API_KEY},
    ),
    # times
    Case(
        "start-after-end",
        ("submit", *QUERY, "--start", str(END), "--end", str(START), "--no-validate"),
        2,
        (f"--start {END} is not before --end {START}", "earlier than the end"),
    ),
    Case(
        "start-equals-end",
        ("submit", *QUERY, "--start", str(START), "--end", str(START), "--no-validate"),
        2,
        ("is not before --end", "earlier than the end"),
    ),
    Case(
        "start-milliseconds",
        ("submit", *QUERY, "--start", f"{START}000", "--no-validate"),
        2,
        (f"--start '{START}000'", "not milliseconds"),
    ),
    Case(
        "end-milliseconds",
        ("submit", *QUERY, "--start", str(START), "--end", f"{END}000"),
        2,
        (f"--end '{END}000'", "drop the last three digits"),
    ),
    Case(
        "start-in-future",
        ("submit", *QUERY, "--start", "+2d", "--end", "+3d", "--no-validate"),
        2,
        ("--start '+2d'", "in the future", "in the past"),
    ),
    Case(
        "start-far-future",
        ("submit", *QUERY, "--start", "2999-01-01", "--no-validate"),
        2,
        ("'2999-01-01'", "1970 to 2200", "such as 2024-05-01"),
    ),
    Case(
        "start-not-a-time",
        ("submit", *QUERY, "--start", "yesterday", "--no-validate"),
        2,
        ("--start 'yesterday'", "examples: 1700000000"),
    ),
    Case(
        "start-empty",
        ("submit", *QUERY, "--start", "", "--no-validate"),
        2,
        ("--start ''", "empty", "ISO 8601"),
    ),
    Case(
        "start-non-utf8",
        ("submit", *QUERY, "--start", b"17000\xff", "--no-validate"),
        2,
        ("--start '17000\\udcff'", "examples:"),
    ),
    # flags
    Case(
        "stream-unknown",
        submit_nv(*QUERY, "--stream", "bogus"),
        2,
        ("'bogus' is not one of", "lcq submit --help"),
    ),
    Case("limit-zero", submit_nv(*QUERY, "--limit", "0"), 2, ("--limit 0", "positive")),
    Case(
        "limit-negative",
        submit_nv(*QUERY, "--limit", "-5"),
        2,
        ("--limit -5", "positive"),
    ),
    Case(
        "limit-not-a-number",
        submit_nv(*QUERY, "--limit", "ten"),
        2,
        ("'ten' is not a valid integer", "--help"),
    ),
    Case(
        "parallel-zero",
        submit_nv(*QUERY, "--parallel", "0"),
        2,
        ("--parallel 0", "1 to 64"),
    ),
    Case(
        "parallel-65",
        submit_nv(*QUERY, "--parallel", "65"),
        2,
        ("--parallel 65", "1 to 64"),
    ),
    Case(
        "parallel-range-too-short",
        (
            "submit",
            *QUERY,
            "--start",
            str(START),
            "--end",
            str(START + 10),
            "--parallel",
            "64",
            "--no-validate",
        ),
        2,
        ("--parallel 64", "range of 10 s", "fewer slices"),
    ),
    Case(
        "resume-limit-zero",
        ("resume", "{cp}", "--limit", "0"),
        2,
        ("--limit 0", "positive"),
        setup=with_checkpoint,
    ),
    Case(
        "resume-limit-below-events",
        ("resume", "{cp}", "--limit", "2"),
        2,
        ("--limit 2", "already contains 5 events", "at least that many"),
        setup=with_events,
    ),
    Case(
        "resume-query-flag",
        ("resume", "{cp}", "--query", "x"),
        2,
        ("--query cannot be used with resume", "lcq submit"),
        setup=with_checkpoint,
    ),
    Case(
        "cancel-id-and-checkpoint",
        ("cancel", SEARCH_ID, "--checkpoint", "{cp}"),
        2,
        ("not both", "drop one"),
        setup=with_checkpoint,
    ),
    Case(
        "show-limit-zero",
        ("show", "{cp}", "--limit", "0"),
        2,
        ("'--limit': 0", "lcq show --help"),
        setup=with_checkpoint,
    ),
    Case(
        "show-empty-column",
        ("show", "{cp}", "--columns", "time,,event.X"),
        2,
        ("'time,,event.X'", "separated by commas"),
        setup=with_checkpoint,
    ),
    # paths
    Case(
        "checkpoint-is-folder",
        (*SUBMIT, *QUERY, "--no-validate", "--checkpoint", "{tmp}/folder"),
        2,
        ("{tmp}/folder: it is a folder", "path of a regular file"),
        setup=with_folder,
    ),
    Case(
        "checkpoint-is-symlink",
        (*SUBMIT, *QUERY, "--no-validate", "--checkpoint", "{tmp}/link.jsonl"),
        2,
        ("{tmp}/link.jsonl: it is a symlink", "path of a regular file"),
        setup=with_dangling_symlink,
    ),
    Case(
        "checkpoint-folder-missing",
        (*SUBMIT, *QUERY, "--no-validate", "--checkpoint", "{tmp}/no/such/x.jsonl"),
        1,
        ("{tmp}/no/such: the folder does not exist", "mkdir -p -- {tmp}/no/such"),
    ),
    Case(
        "checkpoint-folder-is-file",
        (*SUBMIT, *QUERY, "--no-validate", "--checkpoint", "{tmp}/plain.txt/x.jsonl"),
        1,
        ("{tmp}/plain.txt: it is a file", "inside a folder"),
        setup=with_plain_file,
    ),
    Case(
        "checkpoint-folder-read-only",
        (*SUBMIT, *QUERY, "--no-validate", "--checkpoint", "{tmp}/ro/x.jsonl"),
        1,
        ("{tmp}/ro: the folder is not writable", "a folder you can write to"),
        read_only=True,
    ),
    Case(
        "checkpoint-empty",
        (*SUBMIT, *QUERY, "--no-validate", "--checkpoint", ""),
        2,
        ("--checkpoint '': empty", "leave out --checkpoint"),
    ),
    Case(
        "checkpoint-non-utf8",
        (*SUBMIT, *QUERY, "--no-validate", "--checkpoint", b"{tmp}/\xff.jsonl"),
        2,
        ("\\udcff.jsonl': not valid UTF-8", "UTF-8 text"),
    ),
    Case(
        "checkpoint-exists",
        (*SUBMIT, *QUERY, "--no-validate", "--checkpoint", "{cp}"),
        2,
        (f"contains search {SEARCH_ID}", "lcq resume {cp}", "--force"),
        setup=with_checkpoint,
    ),
    Case(
        "checkpoint-device",
        (*SUBMIT, *QUERY, "--no-validate", "--checkpoint", "/dev/null"),
        2,
        ("/dev/null: it is not a regular file", "path of a regular file"),
    ),
    Case(
        "show-symlink",
        ("show", "{tmp}/link.jsonl"),
        2,
        ("{tmp}/link.jsonl: it is a symlink", "regular file"),
        setup=with_symlink_to_checkpoint,
    ),
    Case(
        "show-sidecar-folder",
        ("show", "{cp}.lcq"),
        2,
        ("{cp}.lcq: it is a folder", "regular file"),
        setup=with_checkpoint,
    ),
    Case(
        "show-missing-path",
        ("show", "{tmp}/absent.jsonl"),
        2,
        ("no checkpoint at {tmp}/absent.jsonl", "check the path"),
    ),
    Case(
        "status-missing-path",
        ("status", "{tmp}/absent.jsonl"),
        2,
        ("no checkpoint at {tmp}/absent.jsonl", "lcq status"),
    ),
    Case(
        "resume-missing-path",
        ("resume", "{tmp}/absent.jsonl"),
        2,
        ("no checkpoint at {tmp}/absent.jsonl", "check the path"),
    ),
    Case(
        "cancel-missing-path",
        ("cancel", "--checkpoint", "{tmp}/absent.jsonl"),
        2,
        ("no checkpoint at {tmp}/absent.jsonl", "check the path"),
    ),
    Case(
        "show-unknown-id",
        ("show", "20990101-nosuch00"),
        2,
        ("'20990101-nosuch00'", "lcq status"),
    ),
    Case(
        "status-unknown-id",
        ("status", "20990101-nosuch00"),
        2,
        ("'20990101-nosuch00'", "lcq status"),
    ),
    Case(
        "resume-unknown-id",
        ("resume", "20990101-nosuch00"),
        2,
        ("'20990101-nosuch00'", "give the checkpoint path"),
    ),
    Case(
        "cancel-unknown-id",
        ("cancel", "20990101-nosuch00"),
        2,
        ("'20990101-nosuch00'", "give the checkpoint path"),
    ),
    Case("status-empty-id", ("status", ""), 2, ("path '': it is empty", "lcq status")),
    Case(
        "show-non-utf8-id",
        ("show", b"2024\xff"),
        2,
        ("'2024\\udcff'", "lcq status"),
    ),
    Case(
        "cancel-non-utf8-id",
        ("cancel", b"2024\xff"),
        2,
        ("'2024\\udcff'", "lcq status"),
    ),
    # metadata and data files
    Case(
        "meta-empty-show",
        ("show", "{cp}"),
        1,
        ("{cp}.lcq/meta.json: it is empty", "--force"),
        setup=with_meta_bytes(b""),
    ),
    Case(
        "meta-empty-submit",
        (*SUBMIT, *QUERY, "--no-validate", "--checkpoint", "{cp}"),
        2,
        ("{cp} already exists and its metadata is unreadable", "--force"),
        setup=with_meta_bytes(b""),
    ),
    Case(
        "meta-truncated-resume",
        ("resume", "{cp}"),
        1,
        ("{cp}.lcq/meta.json: invalid JSON", "restore the file from a backup"),
        setup=with_truncated_meta,
    ),
    Case(
        "meta-relative-data-path",
        ("status", "{cp}"),
        1,
        ("data_path: 'search.jsonl' is not an absolute path", "--force"),
        setup=with_meta_edit(set_field("data_path", CHECKPOINT_NAME)),
    ),
    Case(
        "meta-foreign-data-path",
        ("cancel", "{cp}"),
        1,
        ("data_path '/etc/passwd' is not '{cp}'", "move the checkpoint back"),
        setup=with_meta_edit(set_field("data_path", "/etc/passwd")),
    ),
    Case(
        "meta-absurd-offset",
        ("resume", "{cp}"),
        1,
        ("slices[0].offset: 99999999999999999999", "restore the file"),
        setup=with_meta_edit(set_slice_field("offset", 99999999999999999999)),
    ),
    Case(
        "meta-offset-past-data",
        ("show", "{cp}"),
        1,
        ("{cp} holds 0 bytes but 5000 bytes were committed", "restore the file"),
        setup=with_meta_edit(set_slice_field("offset", 5000)),
    ),
    Case(
        "meta-negative-page",
        ("status", "{cp}"),
        1,
        ("slices[0].page: -3 is outside", "--force"),
        setup=with_meta_edit(set_slice_field("page", -3)),
    ),
    Case(
        "meta-wrong-version",
        ("status", "{cp}"),
        1,
        ("unknown version 99, expected 1", "--force"),
        setup=with_meta_edit(set_field("version", 99)),
    ),
    Case(
        "meta-infinite-time",
        ("status", "{cp}"),
        1,
        ("created: inf is not a valid time", "--force"),
        setup=with_meta_edit(set_field("created", float("inf"))),
    ),
    Case(
        "meta-not-object",
        ("show", "{cp}"),
        1,
        ("top level: expected a JSON object", "--force"),
        setup=with_meta_bytes(b"[1, 2]"),
    ),
    Case(
        "meta-deep-nesting",
        ("status", "{cp}"),
        1,
        ("{cp}.lcq/meta.json: invalid JSON", "--force"),
        setup=with_meta_bytes(b"[" * 100_000),
    ),
    Case(
        "meta-non-utf8",
        ("resume", "{cp}"),
        1,
        ("{cp}.lcq/meta.json: invalid JSON", "--force"),
        setup=with_meta_bytes(b'{"query": "\xff\xfe"}'),
    ),
    Case(
        "meta-symlink",
        ("show", "{cp}"),
        2,
        ("{cp}.lcq/meta.json: it is a symlink", "--force"),
        setup=with_meta_symlink,
    ),
    Case(
        "data-corrupt-line",
        ("show", "--output", "jsonl", "{cp}"),
        1,
        ("corrupt line 1 in {cp}", "restore it from a backup"),
        setup=with_corrupt_line,
    ),
    # Redis
    Case(
        "redis-unreachable-submit",
        submit_nv(*QUERY),
        1,
        ("cannot reach Redis at redis://127.0.0.1:{closed}/9", "start Redis"),
        env={"LCQ_REDIS_URL": "redis://127.0.0.1:{closed}/9"},
    ),
    Case(
        "redis-unreachable-resume",
        ("resume", "{cp}"),
        1,
        ("redis://127.0.0.1:{closed}/9", "LCQ_REDIS_URL"),
        setup=with_checkpoint,
        env={"LCQ_REDIS_URL": "redis://127.0.0.1:{closed}/9"},
    ),
    Case(
        "redis-unreachable-cancel",
        ("cancel", "{cp}"),
        1,
        ("redis://127.0.0.1:{closed}/9", "LCQ_REDIS_URL"),
        setup=with_checkpoint,
        env={"LCQ_REDIS_URL": "redis://127.0.0.1:{closed}/9"},
    ),
    Case(
        "redis-url-no-scheme",
        submit_nv(*QUERY),
        2,
        ("invalid Redis URL '127.0.0.1:6379'", "redis://HOST:PORT/DB"),
        env={"LCQ_REDIS_URL": "127.0.0.1:6379"},
    ),
    Case(
        "redis-url-bad-port",
        ("status", "--redis-url", "redis://127.0.0.1:port/9"),
        2,
        ("'redis://127.0.0.1:port/9'", "redis://HOST:PORT/DB"),
    ),
    Case(
        "redis-url-bad-database",
        submit_nv(*QUERY),
        2,
        ("the database 'nine' is not a whole number", "redis://HOST:PORT/DB"),
        env={"LCQ_REDIS_URL": "redis://127.0.0.1:6379/nine"},
    ),
    Case(
        "redis-wrong-password",
        submit_nv(*QUERY),
        1,
        ("redis://:***@127.0.0.1:{auth_redis}/9", "check the password"),
        env={"LCQ_REDIS_URL": "redis://:wrong@127.0.0.1:{auth_redis}/9"},
    ),
    Case(
        "redis-missing-password",
        ("resume", "{cp}"),
        1,
        ("redis://127.0.0.1:{auth_redis}/9 rejected", "check the password"),
        setup=with_checkpoint,
        env={"LCQ_REDIS_URL": "redis://127.0.0.1:{auth_redis}/9"},
    ),
    # the search API and credentials
    Case(
        "api-unreachable",
        (*SUBMIT, *QUERY, "--checkpoint", "{tmp}/out.jsonl"),
        1,
        ("connection refused", "host=127.0.0.1:{closed}", "is running"),
        env={"LCQ_API_URL": "http://127.0.0.1:{closed}"},
    ),
    Case(
        "api-html-page",
        (*SUBMIT, *QUERY, "--checkpoint", "{tmp}/out.jsonl"),
        1,
        (
            "lookup returned a body that is not JSON: <!DOCTYPE html> <html>",
            "check that LCQ_API_URL",
        ),
        env={"LCQ_API_URL": "{html}"},
    ),
    Case(
        "api-jwt-html-page",
        ("validate", *QUERY),
        1,
        ("JWT request returned a body that is not JSON", "check that LCQ_API_URL"),
        env={"LCQ_API_URL": "{html}/jwthtml"},
    ),
    Case(
        "api-html-500",
        ("validate", *QUERY),
        1,
        ("lookup failed with HTTP 500: <!DOCTYPE html> <html>", "try again later"),
        env={"LCQ_API_URL": "{html}/status500"},
    ),
    Case(
        "api-html-401",
        ("validate", *QUERY),
        1,
        ("rejected the API key (status=401", "check LC_API_KEY"),
        env={"LCQ_API_URL": "{html}/jwt401"},
    ),
    Case(
        "api-url-invalid",
        ("validate", *QUERY),
        2,
        ("invalid API URL '127.0.0.1:8765/jwt'", "check LCQ_API_URL"),
        env={"LCQ_API_URL": "127.0.0.1:8765"},
    ),
    Case(
        "api-key-wrong-submit",
        (*SUBMIT, *QUERY, "--checkpoint", "{tmp}/out.jsonl"),
        1,
        ("rejected the API key", "check LC_API_KEY and LC_OID"),
        env={"LCQ_API_URL": "{serve}", "LC_API_KEY": "wrong"},
    ),
    Case(
        "api-key-wrong-validate",
        ("validate", *QUERY),
        1,
        ("rejected the API key", "check LC_API_KEY"),
        env={"LCQ_API_URL": "{serve}", "LC_API_KEY": "wrong"},
    ),
    Case(
        "oid-missing",
        submit_nv(*QUERY),
        2,
        ("LC_OID is not set", "set LC_OID"),
        unset=("LC_OID",),
    ),
    Case(
        "api-key-missing",
        ("validate", *QUERY),
        2,
        ("LC_API_KEY is not set", "set LC_API_KEY"),
        unset=("LC_API_KEY",),
    ),
    # settings from the environment
    Case(
        "read-timeout-not-a-number",
        submit_nv(*QUERY),
        2,
        ("LCQ_READ_TIMEOUT='abc'", "number of seconds"),
        env={"LCQ_READ_TIMEOUT": "abc"},
    ),
    Case(
        "read-timeout-negative",
        ("validate", *QUERY),
        2,
        ("LCQ_READ_TIMEOUT='-1'", "at least 0.01"),
        env={"LCQ_READ_TIMEOUT": "-1"},
    ),
    Case(
        "poll-retries-not-whole",
        submit_nv(*QUERY),
        2,
        ("LCQ_POLL_RETRIES='2.5'", "whole number"),
        env={"LCQ_POLL_RETRIES": "2.5"},
    ),
    Case(
        "job-timeout-zero",
        submit_nv(*QUERY),
        2,
        ("LCQ_JOB_TIMEOUT='0'", "larger value"),
        env={"LCQ_JOB_TIMEOUT": "0"},
    ),
    Case(
        "retry-intervals-negative",
        submit_nv(*QUERY),
        2,
        ("LCQ_JOB_RETRY_INTERVALS='10,-1'", "like 10,60,300"),
        env={"LCQ_JOB_RETRY_INTERVALS": "10,-1"},
    ),
    Case(
        "lock-ttl-not-a-number",
        ("resume", "{cp}"),
        2,
        ("LCQ_LOCK_TTL='soon'", "number of seconds"),
        setup=with_checkpoint,
        env={"LCQ_LOCK_TTL": "soon"},
    ),
]


# --- fixtures and the test ------------------------------------------------------


@pytest.fixture(scope="module")
def servers():
    """Start the web servers and the password Redis that rows point at, once."""
    serve_args = ("--generate", "200", "--seed", "7", "--require-auth")
    with (
        start_serve(*serve_args, "--api-key", SERVE_API_KEY) as serve,
        html_server() as html_url,
        redis_with_password(REDIS_PASSWORD) as port,
    ):
        yield {"html": html_url, "serve": serve.url, "auth_redis": str(port)}


def fill(template: str | bytes, values: dict[str, str]) -> str | bytes:
    """Replace the ``{name}`` placeholders of a row's text."""
    for name, value in values.items():
        if isinstance(template, bytes):
            template = template.replace(f"{{{name}}}".encode(), os.fsencode(value))
        else:
            template = template.replace(f"{{{name}}}", value)
    return template


def base_env(tmp: Path, redis_url: str, queue_name: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("LCQ_", "LC_"))
    }
    env.update(
        LCQ_HOME=str(tmp / "lcq-home"),
        LCQ_REDIS_URL=redis_url,
        LCQ_QUEUE=queue_name,
        LC_OID="test-org",
        LC_API_KEY="test-key",
        LCQ_API_URL=f"http://127.0.0.1:{free_port()}",
        LCQ_POLL_RETRIES="0",
        LCQ_BACKOFF_BASE="0",
        LCQ_CONNECT_TIMEOUT="2",
        LCQ_READ_TIMEOUT="5",
        PYTHONPATH=str(REPO),
    )
    return env


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_one_error_line(
    case, tmp_path, redis_url, queue_name, lcq_home, servers
):
    if case.read_only:
        with read_only_folder(tmp_path / "ro") as problem:
            if problem is not None:
                pytest.skip(f"cannot build a folder root cannot write to: {problem}")
            check_case(case, tmp_path, redis_url, queue_name, servers)
        return
    check_case(case, tmp_path, redis_url, queue_name, servers)


def check_case(case, tmp_path, redis_url, queue_name, servers) -> None:
    values = {
        "cp": str(tmp_path / CHECKPOINT_NAME),
        "tmp": str(tmp_path),
        "closed": str(free_port()),
        **servers,
    }
    env = base_env(tmp_path, redis_url, queue_name)
    env.update({name: fill(value, values) for name, value in case.env.items()})
    for name in case.unset:
        env.pop(name, None)
    if case.setup is not None:
        case.setup(tmp_path)
    before = snapshot(tmp_path)

    result = run_lcq([fill(arg, values) for arg in case.args], env, stdin=case.stdin)

    stderr = result.stderr.decode("utf-8", "replace")
    lines = stderr.splitlines()
    assert "Traceback" not in stderr
    assert result.returncode == case.code, stderr
    assert len(lines) == 1, stderr
    for fragment in case.fragments:
        assert fill(fragment, values) in lines[0]
    assert describe_changes(before, snapshot(tmp_path)) == []


def test_corpus_has_forty_cases():
    assert len(CASES) >= 40


def test_corpus_ids_unique():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
