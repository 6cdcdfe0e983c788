"""Each trained run's output folder, owned by exactly one run.

Run ids restart at 1 in every database, so a folder named by the id alone would be found again by
run #1 of another database (or of a recreated one) and its checkpoints resumed as if they were its
own. A folder is therefore named by the run's id *and* its uuid, created empty by a fresh run
(never reused), and holds ``harness-run.json`` saying which run of which database owns it. Only
``harness run --resume`` reads an existing folder, and only when that identity matches the row.
No torch here: ``harness delete`` uses this module too.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.paths import replace_text

IDENTITY_FILE = "harness-run.json"


def folder_name(run_id: int, uuid: str) -> str:
    return f"run-{run_id}-{uuid[:8]}"


def claim(root: Path, run_id: int, uuid: str, database: str) -> Path:
    """Create a new, empty output folder for a fresh run and write its identity into it."""
    folder = (root / folder_name(run_id, uuid)).resolve()
    try:
        folder.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        raise HarnessError(f"--output-dir: {folder} already exists; a fresh run never reuses a folder.") from None
    except OSError as exc:
        raise HarnessError(f"--output-dir {root}: cannot create {folder}: {exc.strerror or exc}.") from None
    identity = {"run_uuid": uuid, "run_id": run_id, "database": database, "created_at": time.time()}
    replace_text(folder / IDENTITY_FILE, json.dumps(identity, indent=2))
    return folder


def identity(folder: Path) -> dict[str, Any] | None:
    """The identity a folder records, or None when it has none (or an unreadable one)."""
    try:
        found = json.loads((folder / IDENTITY_FILE).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def own_folder(record: dict[str, Any], output_root: Path | None, *, purpose: str) -> Path | None:
    """The recorded run's own folder, checked; None when the run never got to make one.

    A folder moved together with its parent is found under ``--output-dir`` by its name. A folder
    without this run's identity is refused: reading it would ``purpose`` (resume, evaluate) from
    another run's weights.
    """
    recorded = record.get("output_dir")
    if not recorded:
        return None
    folder = Path(recorded)
    if not folder.is_dir() and output_root is not None and (output_root / folder.name).is_dir():
        folder = (output_root / folder.name).resolve()
    run = f"run {record['run_id']}"
    if not folder.is_dir():
        raise HarnessError(
            f"{run}'s output folder {folder} is gone, so there is no checkpoint to {purpose} from; "
            "pass --output-dir with the folder that now holds it, or start a new run."
        )
    owner = identity(folder)
    if owner is None or owner.get("run_uuid") != record["uuid"]:
        whose = "no run identity" if owner is None else f"run {owner.get('run_id')} of {owner.get('database')}"
        raise HarnessError(
            f"{folder} belongs to {whose}, not to {run} (uuid {record['uuid']}); refusing to "
            f"{purpose} from another run's checkpoints."
        )
    return folder


def size_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def remove(folder: Path, uuid: str) -> bool:
    """Delete ``folder`` if it is this run's own (its identity says ``uuid``); True if deleted."""
    owner = identity(folder) if folder.is_dir() else None
    if owner is None or owner.get("run_uuid") != uuid:
        return False
    shutil.rmtree(folder)
    return True


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
