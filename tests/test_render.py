"""Unit tests of lcworker.render: flattening, formats, table, sections, stats."""

from __future__ import annotations

import csv
import io
import json

import pytest
from rich.cells import cell_len

from lcworker.errors import UsageError
from lcworker.render import (
    TABLE_SAMPLE_ROWS,
    StatsTracker,
    flatten_row,
    format_stats_line,
    render_results,
)
from lcworker.render.stats import format_bytes
from lcworker.render.table import display_text, fit_cell
from lcworker.render.timeline import MINUTE_MS, Histogram, choose_step, render_timeline
from tests.test_render_data import make_results, make_row, page_stats


def render(results, fmt, **options):
    out, err = io.StringIO(), io.StringIO()
    options.setdefault("width", 100)
    summary = render_results(results, out, fmt=fmt, err=err, **options)
    return out.getvalue(), err.getvalue(), summary


def events_of(results):
    return [row["data"] for r in results if r["type"] == "events" for row in r["rows"]]


# --- flattening ------------------------------------------------------------


def test_flatten_time_from_mtd():
    row = make_row(1, ts_ms=1709294400123)
    assert flatten_row(row)["time"] == "2024-03-01T12:00:00.123Z"


def test_flatten_time_from_event_time():
    row = make_row(1, ts_ms=1709294400123)
    del row["mtd"]
    assert flatten_row(row)["time"] == "2024-03-01T12:00:00.123Z"


def test_flatten_nested_values_compact():
    flat = flatten_row(make_row(0))
    assert (
        flat["event.PARENT"] == '{"FILE_PATH":"C:\\\\Windows\\\\explorer.exe",'
        '"PROCESS_ID":4}'
    )
    assert flat["routing.hostname"] == "web-01.corp.example"
    assert flat["event.PROCESS_ID"] == "1000"
    assert flat["stream"] == "event"


def test_flatten_row_without_data():
    flat = flatten_row({"mtd": {"ts": 0}, "detect": {"cat": "x"}})
    assert flat["detect.cat"] == "x"


# --- cells -----------------------------------------------------------------


def test_display_text_escapes_controls():
    assert display_text("a\x1b[31mb\nc") == "a\\x1b[31mb\\nc"


def test_fit_cell_wide_characters():
    cell = fit_cell("日本語テキスト", 6)
    assert cell_len(cell) == 6
    assert cell.endswith("…")


# --- table -------------------------------------------------------------------


def test_table_fits_width():
    out, _, _ = render(make_results(30), "table", width=100)
    widest = max(cell_len(line) for line in out.splitlines())
    assert widest <= 100


def test_table_names_hidden_columns():
    out, _, _ = render(make_results(30), "table", width=100)
    assert "more columns: event.COMMAND_LINE" in out


def test_table_truncates_later_long_cell():
    results = make_results(TABLE_SAMPLE_ROWS)
    late = make_row(999)
    late["data"]["routing"]["hostname"] = "h" * 300
    results.append({"type": "events", "rows": [late]})
    out, _, _ = render(results, "table", width=100)
    late_line = next(line for line in out.splitlines() if "hhhh" in line)
    assert "h…" in late_line
    assert "h" * 300 not in late_line


def test_table_wide_keeps_long_cell():
    results = make_results(TABLE_SAMPLE_ROWS)
    late = make_row(999)
    late["data"]["routing"]["hostname"] = "h" * 300
    results.append({"type": "events", "rows": [late]})
    out, _, _ = render(results, "table", width=100, wide=True)
    assert "h" * 300 in out
    assert "event.COMMAND_LINE" in out.splitlines()[0]


def test_table_columns_pick_and_order():
    columns = ["routing.event_type", "time"]
    out, _, _ = render(make_results(3), "table", columns=columns)
    header = out.splitlines()[0].split()
    assert header == columns


def test_table_unknown_column_raises():
    with pytest.raises(UsageError) as caught:
        render(make_results(3), "table", columns=["time", "event.NOPE"])
    message = str(caught.value)
    assert "'event.NOPE'" in message
    assert "routing.hostname" in message


def test_table_sections_after_events():
    out, _, _ = render(make_results(30), "table")
    assert out.index("facets: 3 rows") > out.index("2024-03-01T")
    assert "timeline: 1 row" in out
    assert "laptop-ünïcode-03" in out.split("facets: 3 rows")[1]


def test_table_stats_line_on_out():
    out, err, _ = render(make_results(30), "table")
    assert out.rstrip().splitlines()[-1].startswith("stats: 30 events matched")
    assert err == ""


def test_table_no_events():
    out, _, _ = render([{"type": "events", "rows": []}], "table")
    assert out.startswith("no events\n")


# --- json formats ----------------------------------------------------------


def test_jsonl_lines_are_events():
    results = make_results(30)
    out, _, _ = render(results, "jsonl")
    assert [json.loads(line) for line in out.splitlines()] == events_of(results)


def test_jsonl_sections_and_stats_on_err():
    out, err, _ = render(make_results(30), "jsonl")
    assert "facets" not in out
    assert "facets: 3 rows" in err
    assert err.rstrip().splitlines()[-1].startswith("stats: 30 events matched")


def test_json_is_one_array():
    results = make_results(30)
    out, _, _ = render(results, "json")
    assert json.loads(out) == events_of(results)


def test_json_empty_array():
    out, _, _ = render([{"type": "facets", "rows": [{"a": 1}]}], "json")
    assert json.loads(out) == []


def test_expand_indented_objects():
    results = make_results(5)
    out, _, _ = render(results, "expand")
    decoder = json.JSONDecoder()
    objects, position = [], 0
    while position < len(out.rstrip()):
        value, position = decoder.raw_decode(out, position)
        objects.append(value)
        position += 1
    assert objects == events_of(results)
    assert '\n  "routing": {' in out


def test_raw_results_unchanged():
    results = make_results(30)
    out, err, summary = render(results, "raw")
    assert [json.loads(line) for line in out.splitlines()] == results
    assert summary.events == 30
    assert "stats: 30 events matched" in err


def test_columns_rejected_for_jsonl():
    with pytest.raises(UsageError):
        render(make_results(3), "jsonl", columns=["time"])


# --- csv -----------------------------------------------------------------------


def test_csv_header_and_rows():
    out, _, _ = render(make_results(30), "csv")
    records = list(csv.DictReader(io.StringIO(out)))
    assert len(records) == 30
    assert records[0]["routing.hostname"] == "web-01.corp.example"
    assert records[1]["event.DOMAIN_NAME"] == "host1.example.org"
    assert records[1]["event.FILE_PATH"] == ""


def test_csv_columns_pick_and_order():
    out, _, _ = render(make_results(3), "csv", columns=["event.PROCESS_ID", "time"])
    assert out.splitlines()[0] == "event.PROCESS_ID,time"


def test_csv_late_column_reported():
    from lcworker.render import CSV_SAMPLE_ROWS

    results = make_results(CSV_SAMPLE_ROWS, per_page=500)
    late = make_row(5)
    late["data"]["event"]["LATE_FIELD"] = "v"
    results.append({"type": "events", "rows": [late]})
    out, err, _ = render(results, "csv")
    assert "LATE_FIELD" not in out
    assert "event.LATE_FIELD" in err


# --- stats ---------------------------------------------------------------------


def test_stats_uses_last_cumulative():
    tracker = StatsTracker()
    for result in make_results(30):
        tracker.add(result)
    assert tracker.total()["eventsMatched"] == 30


def test_stats_sums_pages_without_cumulative():
    tracker = StatsTracker()
    tracker.add({"type": "events", "rows": [], "stats": page_stats(4)})
    tracker.add({"type": "events", "rows": [], "stats": page_stats(6)})
    total = tracker.total()
    assert total["eventsScanned"] == 100
    assert total["estimatedPrice"] == {"amount": 0.004, "currency": "USD"}


def test_stats_line_fields():
    line = format_stats_line(page_stats(40_000))
    assert line == (
        "stats: 40,000 events matched, 400,000 scanned, 1 GB scanned, "
        "server time 1.2 s, cost 0.002 USD"
    )


def test_stats_line_without_stats():
    assert format_stats_line({}) == "stats: none reported by the server"


@pytest.mark.parametrize(
    ("size", "text"),
    [(999, "999 B"), (1500, "1.5 KB"), (2_340_000, "2.34 MB"), (512e9, "512 GB")],
)
def test_format_bytes_units(size, text):
    assert format_bytes(size) == text


def test_known_stats_replace_results():
    _, err, _ = render(make_results(30), "jsonl", known_stats=page_stats(99))
    assert "stats: 99 events matched" in err


# --- limit and streaming -------------------------------------------------------


def test_limit_stops_reading():
    consumed = []

    def results():
        for result in make_results(30):
            consumed.append(result)
            yield result

    out, err, summary = render(results(), "jsonl", limit=12)
    assert len(out.splitlines()) == 12
    assert summary.stopped_early
    assert len(consumed) == 3
    assert "(pages read so far)" in err


def test_raw_limit_counts_results():
    out, _, _ = render(make_results(30), "raw", limit=2)
    assert len(out.splitlines()) == 2


@pytest.mark.parametrize("fmt", ["jsonl", "json", "expand", "raw"])
def test_output_streams_before_end(fmt):
    """Events of page 1 are written before page 2 is read."""
    out = io.StringIO()
    seen_at_page_two = []

    def results():
        pages = make_results(20)
        yield pages[0]
        seen_at_page_two.append(out.getvalue())
        yield from pages[1:]

    render_results(results(), out, fmt=fmt, err=io.StringIO(), width=100)
    assert "web-01.corp.example" in seen_at_page_two[0]


def test_table_streams_later_pages():
    out = io.StringIO()
    seen = []

    def results():
        pages = make_results(TABLE_SAMPLE_ROWS * 3, per_page=TABLE_SAMPLE_ROWS)
        yield pages[0]
        yield pages[1]
        yield pages[2]
        seen.append(out.getvalue().count("\n"))
        yield from pages[3:]

    render_results(results(), out, fmt="table", err=io.StringIO(), width=100)
    assert seen[0] >= TABLE_SAMPLE_ROWS


# --- timeline --------------------------------------------------------------


@pytest.mark.parametrize(
    ("range_ms", "step_minutes"),
    [(30 * MINUTE_MS, 1), (2 * 3600_000, 5), (86_400_000, 30), (90 * 86_400_000, 1440)],
)
def test_timeline_step_from_range(range_ms, step_minutes):
    assert choose_step(range_ms) == step_minutes * MINUTE_MS


def test_timeline_coarsens_without_range():
    histogram = Histogram()
    for minute in range(0, 600, 3):
        histogram.add(minute * MINUTE_MS)
    assert histogram.step == 15 * MINUTE_MS
    assert histogram.total == 200
    assert histogram.counts[0] == 5


def test_timeline_counts_undated():
    histogram = Histogram(0, 3600_000)
    histogram.add(None)
    histogram.add(10)
    out = io.StringIO()
    render_timeline(histogram, out, width=100)
    assert "undated events not drawn: 1" in out.getvalue()


def test_timeline_bars_fit_width():
    histogram = Histogram(0, 3600_000)
    for second in range(3600):
        histogram.add(second * 1000 * (second % 2))
    out = io.StringIO()
    render_timeline(histogram, out, width=100)
    assert max(cell_len(line) for line in out.getvalue().splitlines()[1:]) <= 100
