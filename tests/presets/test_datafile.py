"""The one data-file reader (mlcdk.presets.datafile) and the preset-file loader on top of it: a bounded size
before parsing, a BOM accepted, no repeated or non-string keys, bounded depth and aliases, finite numbers, bounded
error messages; and errors in mlcdk's own data files that name the file and the fix."""
from __future__ import annotations

import json
import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlcdk import ConfigurationError
from mlcdk.presets import catalog, datafile, workloads

ENTRY = {"description": "d", "task": "inference", "instance_type": "g6.xlarge", "purchase_option": "spot",
         "min_capacity": 1, "max_capacity": 2, "source": "https://example.com", "reason": "r"}
YAML_ENTRY = "\n".join(f"    {k}: {json.dumps(v)}" for k, v in ENTRY.items())


def write(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def refused(path) -> str:
    with pytest.raises(ConfigurationError) as error:
        workloads.load_presets(path)
    return str(error.value)


# --------------------------------------------------------------------------------------------
# What the loader accepts
# --------------------------------------------------------------------------------------------


def test_a_utf8_bom_is_accepted_in_json_and_yaml(tmp_path):
    as_json = write(tmp_path, "p.json", b"\xef\xbb\xbf" + json.dumps({"presets": {"team": ENTRY}}).encode())
    as_yaml = write(tmp_path, "p.yaml", b"\xef\xbb\xbf" + f"presets:\n  team:\n{YAML_ENTRY}\n".encode())
    assert workloads.load_presets(as_json)["team"].instance_type == "g6.xlarge"
    assert workloads.load_presets(as_yaml)["team"].max_capacity == 2


def test_yaml_anchors_and_merge_keys_within_the_limits_are_accepted(tmp_path):
    text = f"base: &base\n{YAML_ENTRY.replace('    ', '  ')}\npresets:\n  a:\n    <<: *base\n  b:\n    <<: *base\n    max_capacity: 3\n"
    presets = workloads.load_presets(write(tmp_path, "p.yaml", text))
    assert (presets["a"].max_capacity, presets["b"].max_capacity) == (2, 3)


# --------------------------------------------------------------------------------------------
# What it refuses, with one line naming the file and a bounded value
# --------------------------------------------------------------------------------------------

REFUSED = [
    ("json-duplicate-name", "p.json", '{"presets": {"team": %s, "team": %s}}' % (json.dumps(ENTRY), json.dumps(ENTRY)),
     "the key 'team' appears twice in one mapping (the last would silently win)"),
    ("json-duplicate-field", "p.json", '{"presets": {"team": {"task": "inference", "task": "training"}}}',
     "the key 'task' appears twice"),
    ("yaml-duplicate-name", "p.yaml", f"presets:\n  team:\n{YAML_ENTRY}\n  team:\n{YAML_ENTRY}\n",
     "the key 'team' appears twice in one mapping (line 11"),
    ("yaml-int-name", "p.yaml", f"presets:\n  1:\n{YAML_ENTRY}\n", "the key '1' at line 2 is read as an integer, not a name"),
    ("yaml-null-name", "p.yaml", f"presets:\n  null:\n{YAML_ENTRY}\n", "the key 'null' at line 2 is read as null"),
    ("yaml-tilde-name", "p.yaml", f"presets:\n  ~:\n{YAML_ENTRY}\n", "is read as null"),
    ("yaml-bool-name", "p.yaml", f"presets:\n  yes:\n{YAML_ENTRY}\n", "the key 'yes' at line 2 is read as a boolean"),
    ("yaml-date-name", "p.yaml", f"presets:\n  2024-01-01:\n{YAML_ENTRY}\n", "is read as a date"),
    ("json-nan", "p.json", '{"presets": {"team": {"min_capacity": NaN}}}', "NaN is not a number that mlcdk takes"),
    ("json-huge-float", "p.json", '{"presets": {"team": {"min_capacity": 1e400}}}', "the number '1e400' is not finite"),
    ("yaml-inf", "p.yaml", "presets:\n  team:\n    min_capacity: .inf\n", "the number '.inf' at line 3 is not finite"),
    ("json-5000-digits", "p.json", '{"presets": {"team": {"min_capacity": %s}}}' % ("9" * 5000),
     "has more than 30 digits"),
    ("yaml-5000-digits", "p.yaml", "presets:\n  team:\n    min_capacity: %s\n" % ("9" * 5000), "has more than 30 digits"),
    ("json-deep", "p.json", '{"presets": ' + "[" * 40 + "]" * 40 + "}", "is nested more than 32 levels deep"),
    ("json-very-deep", "p.json", "[" * 100_000, "is nested more than 32 levels deep"),
    ("yaml-deep", "p.yaml", "presets: " + "[" * 40 + "]" * 40 + "\n", "is nested more than 32 levels deep"),
    ("yaml-billion-laughs", "p.yaml",
     "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join(
         [f"*{chr(97 + i)}"] * 10) + "]\n" for i in range(9)), "expands to more than 100,000 values through its aliases"),
    ("yaml-many-aliases", "p.yaml", "a: &a x\nb: [" + ",".join(["*a"] * 150) + "]\n", "has more than 100 aliases"),
    ("yaml-recursive-alias", "p.yaml", "presets: &p\n  team: *p\n", "contains an alias of itself"),
    ("yaml-two-documents", "p.yaml", "presets: {}\n---\npresets: {}\n", "not valid YAML: expected a single document"),
    ("json-truncated", "p.json", '{"presets": {"team": {"desc', "not valid JSON: Unterminated string"),
    ("name-with-space", "p.json", json.dumps({"presets": {"my team": ENTRY}}), "the name 'my team' must be 1 to 64"),
    ("name-empty", "p.json", json.dumps({"presets": {"": ENTRY}}), "the name '' must be 1 to 64"),
    ("name-long", "p.json", json.dumps({"presets": {"n" * 100_000: ENTRY}}), "... (100,000 characters) must be 1 to 64"),
    ("unknown-field-long", "p.json", json.dumps({"presets": {"team": {**ENTRY, "f" * 100_000: 1}}}),
     "unknown field 'ffff"),
    ("value-huge-count", "p.json", json.dumps({"presets": {"team": {**ENTRY, "max_capacity": 10**12}}}),
     "field 'max_capacity' is 1000000000000; it must be a whole number from 1 to 1000"),
    ("value-alarm-above-100", "p.json", json.dumps({"presets": {"team": {**ENTRY, "alarms": {
        "high_memory_percent": 500}}}}), "field 'high_memory_percent' is 500; it must be a number above 0 and at most 100"),
    ("not-utf8", "p.json", b'{"presets": {"\xff": 1}}', "not UTF-8 text"),
    ("utf16", "p.json", "\ufeff{}".encode("utf-16"), "not UTF-8 text"),
]


@pytest.mark.parametrize(("name", "content", "says"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_preset_file_refused_with_one_bounded_line(tmp_path, name, content, says):
    path = write(tmp_path, name, content)
    message = refused(path)
    assert message.startswith(f"{path}: ")
    assert says in message, message
    assert "\n" not in message and len(message) < 600, "one line, with a bounded part of any value"


def test_dev_zero_and_directories_and_fifos_are_refused_before_reading(tmp_path):
    assert refused("/dev/zero") == "/dev/zero: is not a regular file"
    assert refused(tmp_path) == f"{tmp_path}: is not a regular file"
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)  # opening it would wait for a writer forever
    assert refused(fifo) == f"{fifo}: is not a regular file"


def test_a_file_over_the_size_limit_is_refused_before_parsing(tmp_path):
    path = write(tmp_path, "p.json", " " * (256 * 1024) + "{}")
    assert refused(path) == f"{path}: is larger than 262,144 bytes, the most this kind of file may hold"


def test_the_billion_laughs_are_refused_from_the_nodes_written_in_well_under_a_second(tmp_path):
    text = "a: &a [" + ",".join(["x"] * 10) + "]\n" + "".join(
        f"l{i}: &l{i} [" + ",".join([f"*{'a' if i == 0 else f'l{i - 1}'}"] * 10) + "]\n" for i in range(9))
    path = write(tmp_path, "p.yaml", text)
    start = time.perf_counter()
    with pytest.raises(ConfigurationError, match="expands to more than 100,000 values"):
        datafile.read_document(path, datafile.Limits(max_bytes=10_000, max_aliases=1000))
    assert time.perf_counter() - start < 1


# --------------------------------------------------------------------------------------------
# mlcdk's own data files: the error names the file and the fix
# --------------------------------------------------------------------------------------------


def snapshot(tmp_path, name: str, change) -> str:
    for file in datafile.SNAPSHOT_FILES:
        (tmp_path / file).write_text((datafile.DATA_DIR / file).read_text())
    change(tmp_path / name)
    with pytest.raises(ConfigurationError) as error:
        catalog.load_catalog(tmp_path)
    return str(error.value)


def test_a_truncated_catalog_file_names_the_file_and_mlcdk_catalog_refresh(tmp_path):
    def truncate(path):
        path.write_text(path.read_text()[:5000])

    message = snapshot(tmp_path, "instance_types.json", truncate)
    assert message.startswith(f"{tmp_path / 'instance_types.json'}: not valid JSON: ")
    assert message.endswith("; rebuild the catalog snapshot with `mlcdk catalog refresh` (and point MLCDK_CATALOG "
                            "at its output), or unset MLCDK_CATALOG to use the bundled one")


def test_a_negative_efa_count_names_the_type_the_field_and_the_fix(tmp_path):
    def negative(path):
        document = json.loads(path.read_text())
        document["instance_types"]["p5.48xlarge"]["maximum_efa_interfaces"] = -32
        path.write_text(json.dumps(document))

    message = snapshot(tmp_path, "instance_types.json", negative)
    assert ("instance_types['p5.48xlarge']: field 'maximum_efa_interfaces' is -32; it must be at least 0; rebuild "
            "the catalog snapshot with `mlcdk catalog refresh`") in message


def test_a_damaged_bundled_file_says_to_reinstall():
    assert datafile.fix_for(datafile.DATA_DIR / "fsx.json") == (
        "the file bundled with mlcdk is damaged: reinstall mlcdk (pip install --force-reinstall mlcdk)")
    assert datafile.fix_for(datafile.DATA_DIR / "instance_types.json").startswith("rebuild the catalog snapshot")
    assert datafile.fix_for("/home/me/presets.yaml") == ""


def test_wrong_shape_in_a_bundled_file_names_the_file(tmp_path):
    path = datafile.DATA_DIR / "capacity.json"
    with pytest.raises(ConfigurationError, match=r"capacity.json: unexpected content \(KeyError: \"'nope'\"\); the file "
                                                  "bundled with mlcdk is damaged"):
        with datafile.reading(path):
            datafile.read_document(path)["nope"]


# --------------------------------------------------------------------------------------------
# Properties: any preset file is read or refused with a ConfigurationError, quickly
# --------------------------------------------------------------------------------------------

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20))
DOCUMENTS = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=20)
YAMLISH = st.text(alphabet=st.sampled_from(list("presets:team &*[]{},-!?|>'\"#\n 0123456789.~yesnull\ufeff")),
                  max_size=300)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(document=DOCUMENTS, suffix=st.sampled_from([".json", ".yaml"]))
def test_any_document_is_read_or_refused_with_a_configuration_error(tmp_path, document, suffix):
    import yaml

    path = tmp_path / f"p{suffix}"
    text = json.dumps({"presets": document}) if suffix == ".json" else yaml.safe_dump({"presets": document})
    path.write_text(text)
    try:
        presets = workloads.load_presets(path)
    except ConfigurationError as error:
        assert "\n" not in str(error)
        return
    assert all(isinstance(name, str) for name in presets)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(text=YAMLISH)
def test_any_yaml_text_is_read_or_refused_with_a_configuration_error(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    start = time.perf_counter()
    try:
        workloads.load_presets(path)
    except ConfigurationError as error:
        assert "\n" not in str(error)
    assert time.perf_counter() - start < 1
