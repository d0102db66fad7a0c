"""`mlcdk images list|refresh`: the default container images (AWS Deep Learning Containers) and where they come from."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from mlcdk.cli._common import err, fail, out, print_json
from mlcdk.errors import ConfigurationError

app = typer.Typer(help="Default container images: AWS Deep Learning Containers, and the types they drive.",
                  no_args_is_help=True)


def default_directory() -> Path:
    """Where `mlcdk images refresh` writes by default: beside the refreshed catalog, never the installed package."""
    from mlcdk.fetch.refresh import user_data_dir

    return user_data_dir().parent / "images"


def _families(image) -> list[str]:
    """The catalog families whose every type ``image`` drives and is the default image for."""
    from mlcdk.presets import catalog, images

    drives = {}
    for spec in catalog.default_catalog():
        try:
            chosen = images.default_image([spec], image.role)
        except ConfigurationError:
            chosen = None
        drives.setdefault(spec.family, []).append(chosen == image)
    return sorted(family for family, flags in drives.items() if all(flags))


@app.command("list")
def images_list(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """The default images, in order of preference, with what they were built with and the families they drive."""
    from mlcdk.presets import images

    try:
        book = images.book()
    except ConfigurationError as exc:
        fail(str(exc))
    today = dt.date.today().isoformat()
    rows = [{"name": i.name, "role": i.role, "kind": i.kind, "uri": i.uri, "built_with": i.describe,
             "released": i.released, "end_of_patch": i.end_of_patch,
             "in_patch_support": None if i.end_of_patch is None else i.end_of_patch >= today,
             "families": _families(i), "source": i.source} for i in book.images]
    if as_json:
        print_json({"file": str(book.path), "lists": book.lists, "images": rows})
        return
    table = Table(title=f"{len(rows)} default images ({book.path.name}; lists read "
                        + ", ".join(f"{name} {entry['committed']}" for name, entry in book.lists.items()) + ")")
    for column in ("name", "role", "image", "built with", "released", "end of patch", "drives"):
        table.add_column(column, overflow="fold")
    for row in rows:
        end = row["end_of_patch"] or "-"
        if row["in_patch_support"] is False:
            end += " (ended)"
        table.add_row(row["name"], row["role"], row["uri"], row["built_with"], row["released"] or "-", end,
                      ", ".join(row["families"]) or "-")
    out.print(table, highlight=False)


@app.command("refresh")
def images_refresh(
    offline: bool = typer.Option(False, "--offline", help="Rebuild from saved lists (--lists) without the network."),
    lists: Optional[Path] = typer.Option(
        None, help="Saved lists to read (--offline) or to write. Default: offline, the bundled copies; "
                   "online, <output's folder>/lists."),
    output: Optional[Path] = typer.Option(
        None, help="The containers.json to write. Default: ~/.local/share/mlcdk/images/containers.json "
                   "($XDG_DATA_HOME); use it with MLCDK_IMAGES=<file>."),
) -> None:
    """Fetch the DLC lists from GitHub (or read saved copies) and pick the newest image for every choice."""
    from mlcdk.fetch import image_fetch, image_lists
    from mlcdk.fetch.refresh import canonical_json

    output = output if output is not None else default_directory() / "containers.json"
    try:
        if offline:
            copies = image_lists.load_copies(lists if lists is not None else image_lists.LISTS_DIR)
        else:
            copies = image_fetch.fetch_lists()
            folder = lists if lists is not None else output.parent / "lists"
            folder.mkdir(parents=True, exist_ok=True)
            for name, copy in copies.items():
                (folder / f"{name}.json").write_text(canonical_json(copy))
        document = image_lists.build(image_lists.load_choices(), copies)
    except ConfigurationError as exc:
        fail(str(exc))
    except OSError as exc:  # urllib's errors are OSErrors too
        fail(f"cannot fetch the DLC lists: {exc}", code=1)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(canonical_json(document))
    for image in document["images"]:
        out.print(f"{image['name']}: {image['uri']}", highlight=False)
    if output.resolve() != image_lists.CONTAINERS.resolve():
        err.print(f"wrote {output}; use it with MLCDK_IMAGES={output}", highlight=False, markup=False)
