"""`qwen-tts-studio project render|list`: a manuscript to a mastered audiobook, from the shell.

``project render book.epub --voice "Ryan (calm)" --out book.m4b`` makes a project of the
manuscript (kept in the data dir, so the Projects tab opens it afterwards), renders it as a
job of the take runner with the take QA, and exports it (core/projects/service.py). Ctrl-C
stops the render; every finished block is kept, and rendering the project again in the
Projects tab finishes the rest.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import InvalidInput, StudioError
from core.settings import Settings

if TYPE_CHECKING:
    from core.projects.service import ProjectService

OUT_FORMATS = {".m4b": "m4b", ".zip": "zip"}  # --out's suffix -> what export makes


def add_parser(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    project = sub.add_parser("project", parents=[parent], help="make an audiobook from a manuscript (Projects)")
    psub = project.add_subparsers(dest="project_command", metavar="ACTION", required=True)
    psub.add_parser("list", parents=[parent], help="the projects in the data dir")
    render = psub.add_parser("render", parents=[parent], help="a manuscript (.epub, .md, .txt) to an M4B or zip")
    render.add_argument("source", type=Path, help="the manuscript: .epub, .md/.markdown or .txt")
    render.add_argument("--voice", default="Ryan", help='the narrator: "Ryan (calm)" or "voice: My Voice"')
    render.add_argument("--out", type=Path, required=True, help="the audiobook to write: book.m4b, or book.zip")
    render.add_argument("--preset", default="acx", help="mastering: acx (default), podcast, broadcast or none")
    render.add_argument("--title", default="", help="default: the manuscript's own title")
    render.add_argument("--author", default="", help="default: the manuscript's own author")
    render.add_argument("--language", default="auto", help="Auto, English, Chinese, ... (default auto)")
    render.add_argument("--casting", default="", help='dialogue voices, e.g. "Maya = Vivian; Tom = Aiden"')
    render.add_argument("--qa-tries", type=int, help="re-takes of a block that fails the check (default 2)")
    render.add_argument("--max-new-tokens", type=int, help="cap on codec frames per chunk (12.5 per second)")


def run_project(args: argparse.Namespace, settings: Settings) -> int:
    if args.project_command == "list":
        return _list(settings)
    return _render(args, settings)


def _service(settings: Settings) -> ProjectService:
    # The engine's imports (torch) wait until a command runs: `--help` stays instant.
    from core.context import build_context
    from core.projects.service import ProjectService
    from core.takes.jobs import JobRegistry
    from core.takes.service import TakeService

    context = build_context(settings)
    takes = TakeService.for_app(context)
    return ProjectService(context, JobRegistry(takes), takes)


def _list(settings: Settings) -> int:
    rows = _service(settings).list()
    if not rows:
        print("No projects yet: qwen-tts-studio project render book.epub --voice Ryan --out book.m4b")
    for row in rows:
        print(
            f"{row['id']}  {row['title']}" + (f" ({row['author']})" if row["author"] else "") + f": "
            f"{row['chapters']} chapters, {row['blocks']} blocks, {row['rendered']} rendered, "
            f"{row['checked']} checked, {row['flagged']} flagged"
        )
    return 0


def _render(args: argparse.Namespace, settings: Settings) -> int:
    fmt = OUT_FORMATS.get(args.out.suffix.lower())
    if fmt is None:
        raise InvalidInput(f"--out must end in {' or '.join(OUT_FORMATS)} (got '{args.out.name}').")
    if not args.source.is_file():
        raise InvalidInput(f"There is no manuscript file {args.source}.")
    service = _service(settings)
    service.max_new_tokens = args.max_new_tokens
    project = service.create(
        args.title,
        author=args.author,
        narrator=args.voice,
        language=args.language,
        manuscript=args.source,
        manuscript_name=args.source.name,
    )
    try:
        settings_change: dict[str, object] = {"preset": args.preset}
        if args.casting:
            settings_change["casting"] = args.casting.replace(";", "\n")
        if args.qa_tries is not None:
            settings_change["qa_tries"] = args.qa_tries
        project = service.update(project.id, **settings_change)
    except StudioError:
        service.delete(project.id)  # a bad flag leaves no project behind
        raise
    blocks = sum(len(c.blocks) for c in project.chapters)
    print(
        f"project {project.id}: '{project.title}', {len(project.chapters)} chapters, {blocks} blocks", file=sys.stderr
    )
    job = service.render(project.id, client="cli", tab="cli")
    seen = 0
    try:
        finished = False
        while not finished:
            finished = job.wait(0.5)
            said, seen = job.said_since(seen)
            # One line per block, however fast it went; the current one with its time and time left.
            for i, message in enumerate(said):
                now = i == len(said) - 1 and not finished
                print(job.progress_text() if now else message, file=sys.stderr)
    except KeyboardInterrupt:
        service.jobs.stop(job.id)
        job.wait(60)
        print(
            f"stopped; the finished blocks are kept in project {project.id} (render it again to finish)",
            file=sys.stderr,
        )
        raise
    if job.state.value != "done":
        raise job.error or StudioError("The render did not finish.")
    report = service.qa_report(project.id)
    if report["flagged"]:
        print(f"take QA: {report['flagged']} of {report['blocks']} blocks flagged", file=sys.stderr)
    if report["demo"]:
        print("take QA ran on the demo ASR: its words are noise, so its verdicts are too", file=sys.stderr)
    result = service.export(project.id, formats=(fmt,))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(result.files[fmt], args.out)
    for title, compliance in result.compliance:
        print(f"{title}: {compliance.summary}", file=sys.stderr)  # which rules failed, with values
    print(f"wrote {args.out} ({len(project.chapters)} chapters, {blocks} blocks; project {project.id})")
    return 0
