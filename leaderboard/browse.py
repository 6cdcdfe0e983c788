"""`harness browse`: the leaderboard database served by datasette, with datasette-dashboards charts.

The harness writes the metadata itself: table and column descriptions, canned queries (the
leaderboard, a comparison of chosen runs, mean and sample std over seeds per config, the config
diff of two runs) and one dashboard whose filters (method, backbone, task set, status) drive
charts of scores, loss curves, throughput, wall time per phase and score against model size. The
charts' JavaScript (vega, vega-lite, vega-embed, leaflet) is served from the installed wheels, so
the page makes no request beyond the server. Datasette opens the file read-only; the database is
in WAL mode, so runs keep recording while it is browsed. Needs the ``browse`` extra.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

from leaderboard.efficiency import EVALUATE, HEADERS, efficiency, efficiency_cells, run_costs
from leaderboard.errors import LeaderboardError

TITLE = "harness leaderboard"
DASHBOARD = "runs"
TEMPLATES = (
    Path(__file__).parent / "templates"
)  # the home page: latest runs (with their evaluation cost) and canned queries
HOME_RUNS = 20
HIDDEN = ("sqlite_sequence", "alembic_version")  # SQLite's and Alembic's bookkeeping

COLUMNS: dict[str, dict[str, str]] = {
    "runs": {
        "id": "run number, as the CLI shows it (#7)",
        "uuid": "the run's identity across files; names its output folder",
        "status": "running, finished, failed or interrupted (only finished rows are compared)",
        "error": "why the run failed or was interrupted",
        "method": "registered method name",
        "backbone": "backbone alias, hub id or folder",
        "task_spec": "what --tasks asked for",
        "task_names": "resolved task names (JSON list)",
        "config": "fully resolved config (JSON)",
        "config_hash": "SHA-256 of the resolved config without the seed: seeds of one config share it",
        "seed": "the run's seed",
        "git_sha": "commit of the harness that ran",
        "git_dirty": "whether that checkout had uncommitted changes",
        "versions": "Python package versions (JSON)",
        "hardware": "devices, threads, memory (JSON)",
        "started_at": "unix seconds",
        "heartbeat_at": "unix seconds; refreshed while the run lives",
        "ended_at": "unix seconds",
        "output_dir": "folder of the run's checkpoints",
        "n_parameters": "parameters of the model that encodes (adapters included)",
        "trainable_parameters": "parameters trained (0 for untrained methods)",
        "embed_dim": "embedding size",
    },
    "scores": {
        "task": "mteb task name",
        "dim": "the vectors' first N dims the score is for (harness run --dims); 0: whole vectors, which every canned query reads",
        "task_version": "which data the score was computed on: mteb's dataset revision (a task file: 12 hex digits of its sha256); empty: unknown",
        "task_type": "mteb's type of the task (STS, Retrieval, Reranking, PairClassification, ...): compare and leaderboard show a mean per type; empty: unknown",
        "main_metric": "the task's main metric, e.g. cosine_spearman",
        "main_score": "mteb's main score, 0-1 (the CLI shows x100)",
        "details": "every number mteb gave (JSON: split -> subset -> metric -> value)",
    },
    "timings": {
        "phase": "data, load, train:<stage> or evaluate:<task>",
        "seconds": "wall seconds of the phase",
        "items": "texts or examples",
        "tokens": "tokens processed",
        "peak_memory_bytes": "peak memory: CUDA tensor memory, else the process's peak RSS",
        "details": "JSON: tokens_per_s, mfu, model_flops, peak_flops_per_s, batch sizes, engine, threads",
    },
    "metrics": {
        "stage": "training stage",
        "step": "optimiser step",
        "loss": "the step's loss (global batch)",
        "lr": "learning rate at the step",
        "seconds": "wall seconds since the stage began",
    },
    "diagnostics": {
        "stage": "training stage that measured it",
        "name": "e.g. heldout_loss_own / _shuffled / _empty (AutoRegEmbed IC)",
        "value": "the measured number",
    },
    "dev_scores": {
        "stage": "training stage",
        "step": "optimiser step the dev tasks were evaluated at",
        "task": "dev task (--dev-tasks)",
        "main_metric": "mteb's main metric of the task",
        "score": "its main score, 0-1 (never a test score)",
        "seconds": "wall seconds of the task's evaluation",
    },
}

TABLES = {
    "runs": "One row per harness run: what was asked, where it ran, how it ended.",
    "scores": "One row per (run, task, dim): mteb's main score and its details.",
    "timings": "One row per phase of a run: time, tokens, memory, throughput and MFU.",
    "metrics": "One row per optimiser step of a training stage (loss curves).",
    "diagnostics": "Numbers a training stage measured on held-out data when it ended.",
    "dev_scores": "One row per (run, stage, step, dev task): scores followed during training.",
}

# a task as shown: its name and its version (as leaderboard.queries.version_label: 8 characters
# of the revision, then ":subsets" and a quick check's "+firstN" whole), so that scores computed
# on different data (two files with one stem, the first N items) never share a row, column or mean
_CUT = "COALESCE(NULLIF(instr(s.task_version, ':'), 0), NULLIF(instr(s.task_version, '+'), 0), length(s.task_version) + 1)"
TASK = f"s.task || '@' || COALESCE(substr(substr(s.task_version, 1, {_CUT} - 1), 1, 8) || substr(s.task_version, {_CUT}), '?')"
QUERIES: dict[str, dict[str, str]] = {
    "leaderboard": {
        "title": "Leaderboard",
        "description": "Finished runs ranked by their mean main score (x100) over the tasks they ran "
        "(quick checks, run with --limit, left out); filter by task set with task_spec (empty: all).",
        "sql": """SELECT r.id AS run, r.method, r.backbone, r.task_spec, COUNT(s.id) AS tasks,
       ROUND(100 * AVG(s.main_score), 2) AS mean_x100, r.config_hash
FROM runs r JOIN scores s ON s.run_id = r.id AND s.dim = 0
WHERE r.status = 'finished' AND (:task_spec = '' OR r.task_spec = :task_spec)
  AND json_extract(r.config, '$.limit') IS NULL
GROUP BY r.id ORDER BY mean_x100 DESC""",
    },
    "compare_runs": {
        "title": "Compare runs",
        "description": "Main scores (x100) of chosen runs, one row per task and run; runs as a comma-separated list, e.g. 3,7,9.",
        "sql": f"""SELECT {TASK} AS task, r.id AS run, r.method, r.backbone, s.main_metric, ROUND(100 * s.main_score, 2) AS score_x100
FROM runs r JOIN scores s ON s.run_id = r.id AND s.dim = 0
WHERE ',' || REPLACE(:runs, ' ', '') || ',' LIKE '%,' || r.id || ',%'
ORDER BY 1, r.id""",
    },
    "seeds_per_config": {
        "title": "Mean and std over seeds, per config",
        "description": "Finished runs grouped by config hash (the resolved config without the seed): "
        "per task, the number of seeds, the mean and the sample standard deviation of the main score (x100).",
        "sql": f"""SELECT r.config_hash, r.method, r.backbone, {TASK} AS task, COUNT(*) AS seeds,
       ROUND(100 * AVG(s.main_score), 2) AS mean_x100,
       CASE WHEN COUNT(*) > 1 THEN ROUND(100 * sqrt(MAX(0, (SUM(s.main_score * s.main_score)
            - COUNT(*) * AVG(s.main_score) * AVG(s.main_score)) / (COUNT(*) - 1))), 2) END AS std_x100,
       GROUP_CONCAT(r.seed) AS seed_list
FROM runs r JOIN scores s ON s.run_id = r.id AND s.dim = 0
WHERE r.status = 'finished'
GROUP BY r.config_hash, s.task, s.task_version ORDER BY r.method, r.config_hash, 4""",
    },
    "config_diff": {
        "title": "Config diff of two runs",
        "description": "The resolved-config keys whose values differ between run a and run b.",
        "sql": """WITH a AS (SELECT REPLACE(t.fullkey, '"', '') AS key, t.value FROM runs, json_tree(runs.config) AS t
           WHERE runs.id = :a AND t.type NOT IN ('object', 'array')),
     b AS (SELECT REPLACE(t.fullkey, '"', '') AS key, t.value FROM runs, json_tree(runs.config) AS t
           WHERE runs.id = :b AND t.type NOT IN ('object', 'array'))
SELECT a.key, a.value AS run_a, b.value AS run_b FROM a LEFT JOIN b ON a.key = b.key WHERE a.value IS NOT b.value
UNION ALL
SELECT b.key, NULL, b.value FROM b LEFT JOIN a ON a.key = b.key WHERE a.key IS NULL
ORDER BY 1""",
    },
}

# dashboard filters; every chart's query applies them with [[ ... ]] blocks
FILTERED = """[[ AND r.method = :method ]] [[ AND r.backbone = :backbone ]]
  [[ AND r.task_spec = :task_spec ]] [[ AND r.status = :status ]]"""


def _filters(db: str) -> dict[str, Any]:
    def select(name: str, column: str) -> dict[str, Any]:
        return {
            "name": name,
            "type": "select",
            "db": db,
            "query": f"SELECT DISTINCT {column} FROM runs ORDER BY {column}",
        }

    return {
        "method": select("Method", "method"),
        "backbone": select("Backbone", "backbone"),
        "task_spec": select("Task set", "task_spec"),
        "status": {**select("Status", "status"), "default": "finished"},
    }


def _charts(db: str) -> dict[str, Any]:
    def chart(title: str, query: str, display: dict[str, Any]) -> dict[str, Any]:
        return {"title": title, "db": db, "query": query, "library": "vega-lite", "display": display}

    label = "'#' || r.id || ' ' || r.method || ' / ' || r.backbone"
    return {
        "scores": chart(
            "Main score (x100) by task, per run (method / backbone)",
            f"SELECT {label} AS run, {TASK} AS task, ROUND(100 * s.main_score, 2) AS score FROM runs r JOIN scores s ON s.run_id = r.id AND s.dim = 0 WHERE TRUE {FILTERED} ORDER BY r.id",
            {
                "mark": {"type": "bar", "tooltip": True},
                "encoding": {
                    "x": {"field": "task", "type": "nominal"},
                    "xOffset": {"field": "run"},
                    "y": {"field": "score", "type": "quantitative"},
                    "color": {"field": "run", "type": "nominal"},
                },
            },
        ),
        "losses": chart(
            "Training loss per run and stage",
            f"SELECT '#' || r.id || ' ' || m.stage AS series, m.step, m.loss FROM metrics m JOIN runs r ON r.id = m.run_id WHERE TRUE {FILTERED} ORDER BY r.id, m.stage, m.step",
            {
                "mark": {"type": "line", "tooltip": True},
                "encoding": {
                    "x": {"field": "step", "type": "quantitative"},
                    "y": {"field": "loss", "type": "quantitative"},
                    "color": {"field": "series", "type": "nominal"},
                },
            },
        ),
        "throughput": chart(
            "Training throughput (tokens/s) per stage; MFU in the tooltip",
            "SELECT '#' || r.id AS run, t.phase, ROUND(json_extract(t.details, '$.tokens_per_s'), 1) AS tokens_per_s, "
            "ROUND(100 * json_extract(t.details, '$.mfu'), 1) AS mfu_percent FROM timings t JOIN runs r ON r.id = t.run_id "
            f"WHERE t.phase LIKE 'train:%' {FILTERED} ORDER BY r.id",
            {
                "mark": {"type": "bar", "tooltip": True},
                "encoding": {
                    "x": {"field": "run", "type": "nominal"},
                    "xOffset": {"field": "phase"},
                    "y": {"field": "tokens_per_s", "type": "quantitative"},
                    "color": {"field": "phase", "type": "nominal"},
                    "tooltip": [
                        {"field": "run"},
                        {"field": "phase"},
                        {"field": "tokens_per_s"},
                        {"field": "mfu_percent", "title": "MFU %"},
                    ],
                },
            },
        ),
        "wall_time": chart(
            "Wall time per phase (seconds)",
            f"SELECT '#' || r.id AS run, t.phase, ROUND(t.seconds, 2) AS seconds FROM timings t JOIN runs r ON r.id = t.run_id WHERE TRUE {FILTERED} ORDER BY r.id",
            {
                "mark": {"type": "bar", "tooltip": True},
                "encoding": {
                    "x": {"field": "run", "type": "nominal"},
                    "y": {"field": "seconds", "type": "quantitative", "stack": True},
                    "color": {"field": "phase", "type": "nominal"},
                },
            },
        ),
        "size": chart(
            "Mean score (x100) against model size",
            "SELECT '#' || r.id AS run, r.method, r.n_parameters, r.trainable_parameters, ROUND(100 * AVG(s.main_score), 2) AS mean_score "
            f"FROM runs r JOIN scores s ON s.run_id = r.id AND s.dim = 0 WHERE r.n_parameters IS NOT NULL {FILTERED} GROUP BY r.id",
            {
                "mark": {"type": "point", "filled": True, "size": 80, "tooltip": True},
                "encoding": {
                    "x": {"field": "n_parameters", "type": "quantitative", "scale": {"type": "log"}},
                    "y": {"field": "mean_score", "type": "quantitative"},
                    "color": {"field": "method", "type": "nominal"},
                },
            },
        ),
    }


def require() -> None:
    """Refuse early, with the install line, when the browse extra is missing."""

    missing = [name for name in ("datasette", "datasette_dashboards") if importlib.util.find_spec(name) is None]
    if missing:
        raise LeaderboardError(f"harness browse needs {' and '.join(missing)}: pip install 'harness[browse]'.")


def metadata(db_path: Path) -> dict[str, Any]:
    """Datasette metadata for ``db_path`` (datasette names the database after the file's stem)."""
    db = Path(db_path).stem
    tables: dict[str, Any] = {name: {"description": text, "columns": COLUMNS[name]} for name, text in TABLES.items()}
    tables.update({name: {"hidden": True} for name in HIDDEN})
    return {
        "title": TITLE,
        "description": "Every harness run: resolved config, scores, timings, losses. The latest runs and the canned queries below; charts on the dashboard.",
        "databases": {db: {"tables": tables, "queries": QUERIES}},
        "plugins": {
            "datasette-dashboards": {
                DASHBOARD: {
                    "title": "harness runs",
                    "description": "Scores, loss curves, throughput, wall time and model size of the runs the filters select.",
                    "filters": _filters(db),
                    "layout": [["scores", "losses"], ["throughput", "wall_time"], ["size", "size"]],
                    "charts": _charts(db),
                }
            }
        },
    }


class _SqrtPlugin:
    """SQLite builds without math functions lack sqrt, which the seeds query needs."""

    @staticmethod
    def prepare_connection(conn: Any) -> None:
        try:
            conn.execute("SELECT sqrt(1)")
        except Exception:
            conn.create_function("sqrt", 1, lambda x: None if x is None else math.sqrt(x))


HOME_COLUMNS = ("run", "status", "method", "backbone", "task_spec", "mean_x100", *HEADERS, "started")
HOME_SQL = f"""SELECT r.id, r.status, r.method, r.backbone, r.task_spec, ROUND(100 * AVG(s.main_score), 2),
       datetime(r.started_at, 'unixepoch') || ' UTC'
FROM runs r LEFT JOIN scores s ON s.run_id = r.id AND s.dim = 0 GROUP BY r.id ORDER BY r.id DESC LIMIT {HOME_RUNS}"""
# what leaderboard.efficiency reads for the runs listed ({ids}), as RunReads.evaluation_costs reads it
COST_SQL = (
    """SELECT r.id, r.n_parameters, r.embed_dim, t.phase, t.seconds, t.items, t.tokens, t.peak_memory_bytes, t.details
FROM runs r LEFT JOIN timings t ON t.run_id = r.id AND t.phase LIKE '"""
    + EVALUATE
    + """%'
WHERE r.id IN ({ids}) ORDER BY r.id, t.id"""
)
SCORED_SQL = "SELECT run_id, task FROM scores WHERE run_id IN ({ids}) AND dim = 0 ORDER BY id"


def home_rows(runs: list[tuple], costs: list[tuple], scored: list[tuple]) -> list[tuple]:
    """The latest runs (``HOME_SQL``) with, after their mean, what evaluating the tasks they
    scored cost (``COST_SQL`` and ``SCORED_SQL`` rows; details as JSON text)."""
    by_run = run_costs((*row[:-1], json.loads(row[-1]) if row[-1] else None) for row in costs)
    tasks: dict[int, list[str]] = {}
    for run_id, task in scored:
        tasks.setdefault(run_id, []).append(task)
    cut = HOME_COLUMNS.index("mean_x100") + 1
    return [
        (*row[:cut], *efficiency_cells(efficiency(by_run[row[0]], tasks.get(row[0], []))), *row[cut:]) for row in runs
    ]


class _HomePlugin:
    """What the home page template (templates/index.html) shows: the latest runs, the queries."""

    @staticmethod
    def extra_template_vars(view_name: str, datasette: Any) -> Any:
        if view_name != "index":
            return {}

        async def home() -> dict[str, Any]:
            (name,) = [n for n in datasette.databases if not n.startswith("_")]
            database = datasette.get_database(name)
            latest = [tuple(row) for row in (await database.execute(HOME_SQL)).rows]
            ids = ", ".join(str(int(row[0])) for row in latest)
            costs, scored = [
                [tuple(row) for row in (await database.execute(sql.format(ids=ids))).rows]
                for sql in (COST_SQL, SCORED_SQL)
            ]
            runs = home_rows(latest, costs, scored)
            total = (await database.execute("SELECT COUNT(*) FROM runs")).rows[0][0]
            queries = [{"name": key, **value} for key, value in QUERIES.items()]
            return {
                "harness_home": {
                    "db": name,
                    "columns": HOME_COLUMNS,
                    "runs": runs,
                    "shown": len(runs),
                    "total": total,
                    "queries": queries,
                    "dashboard": DASHBOARD,
                }
            }

        return home


def app(db_path: Path) -> Any:
    """A Datasette instance over ``db_path`` with the harness metadata (read-only connections)."""
    from datasette import hookimpl
    from datasette.app import Datasette
    from datasette.plugins import pm

    if not pm.is_registered(_SqrtPlugin):
        hookimpl(_SqrtPlugin.prepare_connection)
        pm.register(_SqrtPlugin, name="harness-sqrt")
    if not pm.is_registered(_HomePlugin):
        hookimpl(_HomePlugin.extra_template_vars)
        pm.register(_HomePlugin, name="harness-home")
    return Datasette(
        [str(db_path)], metadata=metadata(db_path), settings={"default_page_size": 50}, template_dir=str(TEMPLATES)
    )


def serve(db_path: Path, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(app(db_path).app(), host=host, port=port, log_level="warning")
