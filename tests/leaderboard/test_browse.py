"""harness browse: datasette over a database built here, through datasette's own test client."""

from __future__ import annotations

import asyncio
import re
import statistics

import pytest

pytest.importorskip("datasette")
pytest.importorskip("datasette_dashboards")

from leaderboard import browse  # noqa: E402
from leaderboard.store import open_store  # noqa: E402

# (method, backbone, seed, lr, scores by task, losses)
RUNS = [
    ("infonce", "tiny", 0, 1e-4, {"STSB": 0.70, "SICK": 0.60}, [2.0, 1.5, 1.2]),
    ("infonce", "tiny", 1, 1e-4, {"STSB": 0.74, "SICK": 0.58}, [2.1, 1.4]),
    ("autoregembed", "tiny", 0, 2e-4, {"STSB": 0.40, "SICK": 0.50}, [9.0, 7.0]),
]


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "board.db"
    store = open_store(path)
    for method, backbone, seed, lr, scores, losses in RUNS:
        config = {"method": method, "seed": seed, "method_args": {"lr": lr, "pooling": "mean"}}
        run = store.start_run(
            method=method,
            backbone=backbone,
            task_spec="dev",
            task_names=list(scores),
            config=config,
            config_hash=f"{method}-{lr}",
            seed=seed,
            environment={},
        )
        for task, score in scores.items():
            store.record_score(
                run, task=task, main_metric="cosine_spearman", main_score=score, details={}, task_version="r1"
            )
        store.record_timing(
            run,
            phase="train:main",
            seconds=10.0,
            items=8,
            tokens=800,
            peak_memory_bytes=2**30,
            details={"tokens_per_s": 80.0, "mfu": 0.4},
        )
        store.record_metrics(
            run, "main", [{"step": i + 1, "loss": v, "lr": lr, "seconds": i} for i, v in enumerate(losses)]
        )
        store.record_model(run, n_parameters=1000 * (run + 1), trainable_parameters=10, embed_dim=32)
        store.finish_run(run)
    store.close()
    return path


def _get(ds, path: str):
    return asyncio.run(ds.client.get(path, follow_redirects=True))


def _rows(ds, path: str) -> list[dict]:
    response = _get(ds, path)
    assert response.status_code == 200, response.text[:500]
    return response.json()


def test_pages_answer(db):
    ds = browse.app(db)
    for path in (
        "/",
        "/board",
        "/board/runs",
        "/board/scores",
        "/board/metrics",
        "/-/dashboards",
        "/-/dashboards/runs",
        "/-/dashboards/runs?method=infonce&status=finished",
    ):
        assert _get(ds, path).status_code == 200, path
    page = _get(ds, "/board/runs").text
    assert "parameters of the model that encodes" in page  # the harness's column descriptions


def test_canned_queries_return_the_right_rows(db):
    ds = browse.app(db)
    board = _rows(ds, "/board/leaderboard.json?_shape=array&task_spec=")
    means = sorted(
        ((i + 1, round(100 * statistics.mean(r[4].values()), 2)) for i, r in enumerate(RUNS)), key=lambda x: -x[1]
    )
    assert [(row["run"], row["mean_x100"]) for row in board] == means

    compared = _rows(ds, "/board/compare_runs.json?_shape=array&runs=1,%203")
    assert [(r["task"], r["run"], r["score_x100"]) for r in compared] == [
        ("SICK@r1", 1, 60.0),
        ("SICK@r1", 3, 50.0),
        ("STSB@r1", 1, 70.0),
        ("STSB@r1", 3, 40.0),
    ]

    seeds = {(r["config_hash"], r["task"]): r for r in _rows(ds, "/board/seeds_per_config.json?_shape=array")}
    stsb = seeds[("infonce-0.0001", "STSB@r1")]
    assert stsb["seeds"] == 2 and stsb["mean_x100"] == pytest.approx(72.0)
    assert stsb["std_x100"] == pytest.approx(round(100 * statistics.stdev([0.70, 0.74]), 2))
    assert seeds[("autoregembed-0.0002", "SICK@r1")]["std_x100"] is None  # one seed: no spread

    diff = _rows(ds, "/board/config_diff.json?_shape=array&a=1&b=3")
    assert {r["key"]: (r["run_a"], r["run_b"]) for r in diff} == {
        "$.method": ("infonce", "autoregembed"),
        "$.method_args.lr": (0.0001, 0.0002),
    }


def test_every_dashboard_chart_query_runs_with_and_without_filters(db):
    meta = browse.metadata(db)
    dashboard = meta["plugins"]["datasette-dashboards"][browse.DASHBOARD]
    ds = browse.app(db)
    for name, chart in dashboard["charts"].items():
        for method in ("", "infonce"):
            sql = chart["query"]
            sql = re.sub(r"\[\[ AND r\.method = :method \]\]", "AND r.method = 'infonce'" if method else "", sql)
            sql = re.sub(r"\[\[[^\]]*\]\]", "", sql)
            response = _get(ds, "/board.json?_shape=array&sql=" + _quote(sql))
            assert response.status_code == 200, (name, response.text[:300])
            rows = response.json()
            assert rows, name
            if method and "method" in rows[0]:
                assert {r["method"] for r in rows} == {"infonce"}


def _quote(sql: str) -> str:
    from urllib.parse import quote

    return quote(sql)


def test_the_page_requests_nothing_beyond_the_server(db):
    ds = browse.app(db)
    html = _get(ds, "/-/dashboards/runs").text
    # what a browser fetches by itself: scripts, stylesheets, images, frames (not <a> links)
    urls = re.findall(r"""<(?:script|link|img|iframe)\b[^>]*?(?:src|href)=["']([^"']+)["']""", html)
    assert any(u.endswith("vega-lite.min.js") for u in urls)
    outside = [u for u in urls if re.match(r"(https?:)?//", u)]
    assert outside == []
    for url in urls:
        if url.endswith(".js"):
            assert _get(ds, url).status_code == 200, url  # served from the installed wheels


def test_runs_keep_recording_while_browsed(db):
    ds = browse.app(db)
    assert len(_rows(ds, "/board/runs.json?_shape=array")) == 3
    store = open_store(db)
    run = store.start_run(
        method="x", backbone="y", task_spec="dev", task_names=[], config={}, config_hash="h", seed=0, environment={}
    )
    store.finish_run(run)
    store.close()
    assert len(_rows(ds, "/board/runs.json?_shape=array")) == 4


def _browser() -> str | None:
    import shutil

    return next(
        (found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))), None
    )


@pytest.mark.skipif(_browser() is None, reason="no chromium here (CI installs Debian's chromium)")
def test_a_real_browser_draws_the_filtered_dashboard_from_this_machine_only(db, tmp_path):
    """`harness browse` as a user starts it; headless chromium opens the dashboard with a filter
    applied (method=infonce), runs its JavaScript, and logs every request it makes."""
    import json
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    from tests.training.test_distributed import _free_port

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "harness", "browse", "--db", str(db), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/", timeout=2)
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    pytest.fail(
                        f"harness browse did not answer: {server.stdout.read() if server.poll() is not None else ''}"
                    )
                time.sleep(0.3)
        netlog = tmp_path / "net.json"
        done = subprocess.run(
            [
                _browser(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-sync",
                "--disable-background-networking",
                "--disable-component-update",
                f"--log-net-log={netlog}",
                "--virtual-time-budget=15000",
                "--dump-dom",
                f"{base}/-/dashboards/{browse.DASHBOARD}?method=infonce&status=finished",
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    dom = done.stdout
    assert dom.count('class="marks"') == 5, done.stderr[-2000:]  # every chart drawn by vega
    assert "#1 infonce / tiny" in dom and "#2 infonce / tiny" in dom
    assert "#3 autoregembed / tiny" not in dom  # the filter applied
    log = json.loads(netlog.read_text())
    kinds = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    page = []  # requests made for the page: its network isolation key is the page's site
    for event in log["events"]:
        params = event.get("params", {})
        if kinds.get(event["type"]) == "URL_REQUEST_START_JOB" and "127.0.0.1" in str(
            params.get("network_isolation_key")
        ):
            page.append(params["url"])
    assert sum("/board.json?sql=" in url for url in page) == 5  # one data request per chart
    assert [url for url in page if not url.startswith(f"http://127.0.0.1:{port}/")] == []


def test_browse_without_a_database_is_a_clear_error(tmp_path):
    from typer.testing import CliRunner

    from harness.cli import app

    result = CliRunner().invoke(app, ["browse", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 2 and "none.db" in result.output and not (tmp_path / "none.db").exists()


def test_the_home_page_shows_the_latest_runs_and_the_canned_queries(db):
    page = _get(browse.app(db), "/").text
    assert "Latest runs" in page and 'href="/board/runs/3"' in page and "3 of 3 runs" in page
    for name, query in browse.QUERIES.items():
        assert f'href="/board/{name}"' in page and query["title"] in page
    mean_of_run_1 = round(100 * statistics.fmean(RUNS[0][4].values()), 2)
    assert f"<td>{mean_of_run_1}</td>" in page
    assert "sqlite_sequence" not in page and "alembic_version" not in page  # bookkeeping, hidden


def test_the_home_page_shows_what_evaluating_each_runs_tasks_cost(tmp_path):
    from leaderboard.efficiency import HEADERS, efficiency_cells
    from tests.leaderboard.test_efficiency import IDS, build_board, expected

    page = _get(browse.app(build_board(tmp_path / "h.db")), "/").text
    header = re.findall(r'<th scope="col">([^<]*)</th>', page)
    assert header == list(browse.HOME_COLUMNS) and header[6:14] == list(HEADERS)
    rows = {
        int(run): re.findall(r"<td>([^<]*)</td>", cells)
        for run, cells in re.findall(r'/h/runs/(\d+)">#\d+</a></td>(.*?)</tr>', page, re.S)
    }
    for method, run_id in IDS.items():  # over the tasks each run scored: A, B and C
        assert rows[run_id][5:13] == efficiency_cells(expected(method, ("A", "B", "C"))), method
    assert rows[IDS["fast"]][5:13] == ["9.00", "45.6", "411", "10.9%", "0.0%", "900", "576", "134.5M"]
    assert rows[IDS["resumed"]][5:13] == ["-", "-", "-", "-", "-", "-", "32", "22.7K"]  # C's timing is missing


def test_the_home_page_of_an_empty_leaderboard(tmp_path):
    open_store(tmp_path / "h.db").close()
    page = _get(browse.app(tmp_path / "h.db"), "/").text
    assert "0 of 0 runs" in page
