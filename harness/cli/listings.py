"""What can be run: `harness methods`, `harness backbones`, `harness tasks`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from harness.cli.app import JsonOption, PluginsOption, app, console, print_json
from harness.cli.failures import user_errors


@app.command()
def methods(
    name: Annotated[Optional[str], typer.Argument(help="A method: show its options.", show_default=False)] = None,
    plugins: PluginsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Registered methods (built-in and plug-ins), one line each; `harness methods NAME` lists
    one method's options with their defaults and accepted values.

    Examples:

    ```
    harness methods
    harness methods infonce        # its options
    ```
    """
    with user_errors():
        import dataclasses

        from harness.registry import get_method, import_plugins, method_names
        from harness.runs.plan import method_options

        import_plugins(plugins or [])
        rows = []
        for method in [name] if name is not None else method_names():
            cls = get_method(method)
            config = method_options(cls, {}, method)  # the default preset applied
            defaults = dataclasses.asdict(config)
            options = [
                {"name": n, "default": defaults[n], "help": h, "accepts": a} for n, _, h, a in cls.Config.describe()
            ]
            declared = cls(config).baseline()
            twin = {"method": declared[0], "method_args": declared[1]} if declared else None
            rows.append(
                {
                    "name": method,
                    "summary": cls.summary,
                    "presets": sorted(cls.presets),
                    "baseline": twin,
                    "options": options,
                }
            )
    if as_json:
        print_json(rows)
        return
    if name is None:
        listing(
            rows,
            False,
            "Methods (`harness methods NAME` for one method's options)",
            {
                "Method": lambda r: r["name"],
                "Summary": lambda r: r["summary"] + _presets(r),
                "Baseline": lambda r: r["baseline"]["method"] if r["baseline"] else "-",
            },
        )
        return
    (row,) = rows
    console.print(f"[bold]{row['name']}[/]: {escape(row['summary'] + _presets(row))}", highlight=False)
    if row["baseline"]:
        console.print(
            f"Baseline: {row['baseline']['method']} {escape(repr(row['baseline']['method_args']))}.", highlight=False
        )
    listing(
        row["options"],
        False,
        "Options (--set method_args.NAME=VALUE)",
        {
            "Option": lambda o: o["name"],
            "Default": lambda o: repr(o["default"]),
            "What it does (values it accepts)": lambda o: o["help"] + (f" ({o['accepts']})" if o["accepts"] else ""),
        },
        widths={"Default": 18},
    )


def _presets(row: dict[str, Any]) -> str:
    return f" Presets: {', '.join(row['presets'])}." if row["presets"] else ""


@app.command()
def backbones(as_json: JsonOption = False) -> None:
    """Backbone aliases: where each comes from, its architecture family and whether the tests
    cover that family, its facts (checked against its config where one can be read offline), and
    whether it is available here.

    Examples:

    ```
    harness backbones
    harness backbones --json
    ```
    """
    from harness.model.aliases import TESTED_FAMILIES, facts_check
    from harness.model.backbones import ALIASES, availability, offline_config

    rows = []
    for spec in ALIASES.values():
        ok, how = availability(spec)
        assert spec.facts is not None  # every alias has its facts
        rows.append(
            {
                "alias": spec.name,
                "source": spec.source,
                "kind": spec.kind,
                "family": spec.facts.family,
                "family_tested": spec.facts.family in TESTED_FAMILIES,
                "facts": spec.facts.describe(),
                "facts_check": facts_check(spec.facts, offline_config(spec)),
                "available": ok,
                "how": how,
                "note": spec.note,
            }
        )
    listing(
        rows,
        as_json,
        "Backbones (any hub id or local folder works too)",
        {
            "Alias": lambda r: r["alias"],
            "Source": lambda r: r["source"],
            "Family": lambda r: r["family"] + ("" if r["family_tested"] else " [red](untested)[/]"),
            "Facts": lambda r: (
                r["facts"]
                + (
                    " [yellow](unchecked)[/]"
                    if r["facts_check"] == "unchecked"
                    else f" [red]({escape(r['facts_check'])})[/]"
                    if r["facts_check"] != "checked"
                    else " [green](checked)[/]"
                )
            ),
            "Here": lambda r: "[green]yes[/]" if r["available"] else "[red]no[/]",
            "Note": lambda r: r["note"],
        },
    )
    if as_json:
        return
    console.print(
        f"Family: transformers' model_type; the test matrix runs every method on a tiny model of each of "
        f"{', '.join(TESTED_FAMILIES)}. Facts are from the published configs, checked against a config only "
        "where one can be read offline (hub cache, local copy).",
        highlight=False,
    )
    reasons: dict[str, list[str]] = {}
    for row in rows:  # why each is (un)available, said once for the aliases that share it
        reasons.setdefault(f"{'yes' if row['available'] else 'no'}: {row['how']}", []).append(row["alias"])
    for reason, aliases in reasons.items():
        console.print(f"{', '.join(aliases)}: {escape(reason)}", highlight=False)


@app.command("tasks")
def tasks_command(
    type_: Annotated[
        Optional[str],
        typer.Option("--type", help="Only mteb tasks of this type, e.g. Retrieval, STS, Classification."),
    ] = None,
    search: Annotated[
        Optional[str],
        typer.Option("--search", help="Only mteb tasks whose name, type or a language (eng) contains this."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """What --tasks takes: presets, task files, and mteb's tasks with their type and languages.

    Examples:

    ```
    harness tasks
    harness tasks --type Retrieval --search sci
    ```
    """
    with user_errors():
        from harness.evaluation.mteb_catalog import catalog, matching
        from harness.evaluation.tasks import LOCAL_KINDS, PRESETS

        chosen = matching(type_, search)
    presets = [
        {
            "kind": "preset",
            "name": name,
            "description": text,
            "tasks": [s.name + (f" ({','.join(s.subsets)})" if s.subsets else "") for s in specs],
        }
        for name, (text, specs) in PRESETS.items()
    ]
    files = [{"kind": "file", "name": name, "description": text} for name, text in LOCAL_KINDS.items()]
    found = [{"kind": "mteb", "name": t.name, "type": t.type, "languages": list(t.languages)} for t in chosen]
    if as_json:
        print_json([*presets, *files, *found] if type_ is None and search is None else found)
        return
    if type_ is None and search is None:
        listing(
            presets,
            False,
            "Presets",
            {
                "Preset": lambda r: r["name"],
                "Tasks": lambda r: ", ".join(r["tasks"]),
                "About": lambda r: r["description"],
            },
        )
        listing(
            files,
            False,
            "Task files (--tasks PATH)",
            {"Kind": lambda r: r["name"], "Format": lambda r: r["description"]},
        )
        counts = {kind: sum(t.type == kind for t in chosen) for kind in catalog().types}
        console.print(
            f"mteb has {len(chosen)} text tasks (names work with --tasks; most read their data from the hub): "
            + ", ".join(f"{kind} {n}" for kind, n in counts.items())
            + ". List them with --type TYPE or --search WORD.",
            highlight=False,
        )
        return

    def languages(row: dict) -> str:
        shown = row["languages"][:4]
        return ", ".join(shown) + (f" +{len(row['languages']) - 4}" if len(row["languages"]) > 4 else "")

    listing(
        found,
        False,
        f"mteb tasks ({len(found)})",
        {"Task": lambda r: r["name"], "Type": lambda r: r["type"], "Languages": languages},
    )


def listing(
    rows: list[dict[str, Any]],
    as_json: bool,
    title: str,
    columns: dict[str, Callable[[dict], str]],
    widths: dict[str, int] | None = None,
) -> None:
    """Print ``rows`` as JSON or as a rich table with one column per ``columns`` entry (``widths``:
    the widest some may grow before they fold)."""
    if as_json:
        print_json(rows)
        return
    from leaderboard.render import listing_table

    console.print(
        listing_table(title, list(columns), [[cell(row) for cell in columns.values()] for row in rows], widths or {})
    )
