"""The rules of ``shared_storage`` (SharedStorageOptions), checked before any resource exists.

Pure (no aws_cdk): the plan step calls :func:`validate`; mlcdk.constructs.shared_storage builds the file system.
Facts and sources: mlcdk/presets/data/fsx.json.
"""

from __future__ import annotations

import posixpath
import re

from mlcdk.constructs.limits import mount_point_problem
from mlcdk.constructs.options import SharedStorageOptions
from mlcdk.constructs.validation import check, concrete
from mlcdk.errors import shown
from mlcdk.presets import fsx as facts
from mlcdk.presets.identifiers import s3_uri_problem

_PATH = re.compile(r"^/[A-Za-z0-9._/-]*$")
_ID = re.compile(r"^[A-Za-z0-9._:/-]+$")

Rows = list[tuple[bool, str]]


def validate(options: SharedStorageOptions, *, cluster_vpc_id: str | None, creates_vpc: bool,
             parameter: str = "shared_storage") -> None:
    """Every rule of ``shared_storage``, before any resource exists: a ConfigurationError naming the value."""
    links = _links(options)
    check(_type_rows(options, links, parameter))
    check(_option_rows(options, links, parameter) + _path_rows(options, parameter))
    _check_overlaps(links, parameter)
    uris = [d.s3_uri.rstrip("/") for d in options.data_repositories]
    check([(len(set(uris)) != len(uris),
            f"{parameter}.data_repositories: an S3 URI is linked twice ({', '.join(uris)})")])
    if options.existing_file_system is not None:
        check(_existing_rows(options, cluster_vpc_id, creates_vpc, parameter))


def _links(options: SharedStorageOptions) -> list[str]:
    """The file-system paths of every data repository association: the checkpoint link, then the data links."""
    links = [options.checkpoint_path] if options.checkpoint_path is not None else []
    return links + [d.path for d in options.data_repositories]


def _type_rows(options: SharedStorageOptions, links: list[str], p: str) -> Rows:
    kind = facts.deployment_type(options.deployment_type)
    known = ", ".join(facts.BUILT_DEPLOYMENT_TYPES)
    return [
        (kind is None, f"{p}.deployment_type ({options.deployment_type!r}) must be one of {known}"),
        (kind is not None and not kind.data_repository_associations and bool(links),
         f"{p}.deployment_type ({options.deployment_type!r}) cannot have data repository associations (FSx links "
         f"SCRATCH_1 to no S3 bucket), and {len(links)} are asked for ({', '.join(map(repr, links))}); use SCRATCH_2"),
        (kind is not None and not kind.built, f"{p}.deployment_type ({options.deployment_type!r}) is a previous FSx "
         f"generation that mlcdk does not build; use one of {known}"),
    ]


def _option_rows(options: SharedStorageOptions, links: list[str], p: str) -> Rows:
    """Capacity, throughput, mount point, compression, the alarm and the number of links (types were checked by
    mlcdk.params). A file system you bring was sized by its own type's rules: its capacity needs only be a size."""
    existing = options.existing_file_system
    capacity_problem = facts.capacity_problem(options.deployment_type if existing is None else "",
                                              options.storage_capacity_gib)
    if capacity_problem is None and options.storage_capacity_gib <= 0:
        capacity_problem = "must be a positive number of GiB"
    throughput = options.throughput_mbps_per_tib
    tiers = facts.deployment_type(options.deployment_type).throughput_mbps_per_tib
    percent = options.free_capacity_alarm_percent
    limit = facts.facts().max_data_repository_associations
    mount_problem = mount_point_problem(options.mount_point)
    compression = facts.facts().data_compression_types
    return [
        (capacity_problem is not None, f"{p}.storage_capacity_gib ({options.storage_capacity_gib!r}) {capacity_problem}"),
        (throughput is not None and not tiers, f"{p}.throughput_mbps_per_tib ({throughput!r}): "
         f"{options.deployment_type} has a fixed throughput and takes none (leave it None)"),
        (throughput is not None and bool(tiers) and throughput not in tiers,
         f"{p}.throughput_mbps_per_tib ({throughput!r}) must be one of {', '.join(map(str, tiers))} for "
         f"{options.deployment_type}"),
        (mount_problem is not None, f"{p}.mount_point ({options.mount_point!r}) {mount_problem}"),
        (options.data_compression not in compression,
         f"{p}.data_compression ({options.data_compression!r}) must be one of "
         f"{', '.join(compression)} (FSx's DataCompressionType)"),
        (not 0 < percent < 100, f"{p}.free_capacity_alarm_percent ({percent!r}) must be a number above 0 and below 100"),
        (len(links) > limit, f"{p}: {len(links)} data repository associations (the checkpoint link and "
         f"{len(options.data_repositories)} data_repositories) is more than FSx allows ({limit})"),
    ]


def _path_rows(options: SharedStorageOptions, p: str) -> Rows:
    """Each link's file-system path and S3 URI."""
    data = options.data_repositories
    named = ([("checkpoint_path", options.checkpoint_path)] if options.checkpoint_path is not None else []) + [
        (f"data_repositories[{i}].path", d.path) for i, d in enumerate(data)]
    rows = [(not _PATH.match(path) or path == "/",
             f"{p}.{name} ({path!r}) must be an absolute file-system path other than / (letters, digits, . _ - /)")
            for name, path in named]
    for i, link in enumerate(data):
        uri_problem = s3_uri_problem(link.s3_uri) if concrete(link.s3_uri) else None
        rows.append((uri_problem is not None, f"{p}.data_repositories[{i}].s3_uri ({shown(link.s3_uri)}) {uri_problem}"))
    return rows


def _check_overlaps(links: list[str], p: str) -> None:
    normal = [posixpath.normpath(path).rstrip("/") + "/" for path in links]
    for i, a in enumerate(normal):
        for b in normal[i + 1:]:
            check([(a.startswith(b) or b.startswith(a), f"{p}: the association paths {a.rstrip('/')!r} and "
                    f"{b.rstrip('/')!r} overlap; each link needs its own directory, neither inside the other")])


def _existing_rows(options: SharedStorageOptions, cluster_vpc_id: str | None, creates_vpc: bool, p: str) -> Rows:
    """A file system you bring: its identifiers, and a VPC its Lustre clients can reach it from."""
    existing = options.existing_file_system
    values = {field: getattr(existing, field) for field in ("file_system_id", "dns_name", "mount_name",
                                                             "security_group_id")}
    rows = [(concrete(value) and not _ID.match(value),  # tokens: checked at deploy
             f"{p}.existing_file_system.{field} ({value!r}) must be a non-empty identifier")
            for field, value in values.items()]
    theirs = existing.vpc_id
    return rows + [
        (creates_vpc, f"{p}.existing_file_system ({existing.file_system_id}): the cluster would create a new VPC, "
         "which cannot reach it; pass vpc= (the file system's VPC)"),
        (theirs is not None and concrete(theirs) and cluster_vpc_id is not None and concrete(cluster_vpc_id)
         and theirs != cluster_vpc_id, f"{p}.existing_file_system.vpc_id ({theirs}) is not the cluster's VPC "
         f"({cluster_vpc_id}); Lustre clients reach a file system only inside its VPC: use that VPC"),
    ]
