"""What one kind of data file may hold: the bounds that mlcdk.presets.datafile (and its YAML reader) enforce.

Its own module so that the JSON and the YAML halves of the one loader share the limits without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Digits of an integer in any data file: far above any count or size, far below int()'s 4,300-digit limit.
MAX_INTEGER_DIGITS = 30


@dataclass(frozen=True)
class Limits:
    """What one kind of file may hold."""

    max_bytes: int
    max_depth: int = 32
    max_aliases: int = 100
    max_values: int = 100_000


#: A user's preset file: a team's presets take a few KiB; 256 KiB is ample and parses in well under a second.
PRESET_FILE = Limits(max_bytes=256 * 1024)
#: mlcdk's data files and a refreshed catalog: the bundled snapshot's largest file is about 230 KB; a full
#: refresh of every EC2 type stays far below 64 MiB.
DATA_FILE = Limits(max_bytes=64 * 1024 * 1024, max_values=10_000_000)
