"""YAML a person wrote (meeting.yaml, a form, an edits file), read strictly: ``read_yaml`` refuses what
would let a file say one thing and mean another, each refusal a ConfigError naming the file and line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError

# A meeting.yaml with hundreds of statements is some 100 kB; a form a few kB.
MAX_YAML_BYTES = 4 * 1024 * 1024
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Refused(Exception):
    """A YAML construct a file a person writes may not use; carries where it is."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


# The tags a person may write to say what a plain value is ("phone: !!str 12345678"); any other (a
# Python object, !!binary, !!set, a tag of its own) is refused, never turned into something else.
_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp")
)


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader without the constructs that let a file say one thing and mean another:
    tags other than the plain ones, aliases (``*name``, which also make the small files that expand
    to gigabytes) and merge keys (``<<``, whose keys are silently overridden). Duplicate keys are
    found by ``_duplicate_keys`` on the composed nodes, where their lines are known."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()
        mark = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(
                "", f"line {mark.line + 1}: an alias (*name) is not allowed; write the value out in full"
            )
        tag = getattr(event, "tag", None)
        if tag not in (None, "!") and tag not in _PLAIN_TAGS:
            raise _Refused(
                "",
                f"not valid YAML at line {mark.line + 1}, column {mark.column + 1}: the tag {tag} is not "
                "allowed; write the value as plain text",
            )
        return super().compose_node(parent, index)


def _key_text(key: object) -> str:
    return key if isinstance(key, str) else repr(key)


def _duplicate_keys(loader: _StrictLoader, root: yaml.Node) -> None:
    """Refuse a key given twice in one mapping, at any depth: YAML would keep the last one silently
    (a later ``consent: {committee: true}`` undoing an earlier ``false``). Names the key and both lines."""
    todo: list[tuple[yaml.Node, str]] = [(root, "")]
    while todo:
        node, where = todo.pop()
        if isinstance(node, yaml.SequenceNode):
            todo += [(item, f"{where}[{i}]") for i, item in enumerate(node.value)]
        elif isinstance(node, yaml.MappingNode):
            seen: dict[object, yaml.Node] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    line = key_node.start_mark.line + 1
                    raise _Refused(where, f"line {line}: a merge key (<<) is not allowed; write the keys out")
                if not isinstance(key_node, yaml.ScalarNode):
                    continue  # a list or mapping as a key: the models refuse it by name
                key = loader.construct_object(key_node)
                field = f"{where}.{_key_text(key)}" if where else _key_text(key)
                first = seen.setdefault(key, key_node)
                if first is not key_node:
                    a, b = first.start_mark, key_node.start_mark
                    places = (
                        f"at line {a.line + 1} and at line {b.line + 1}"
                        if a.line != b.line
                        else f"at line {a.line + 1}, columns {a.column + 1} and {b.column + 1}"
                    )
                    raise _Refused(
                        field,
                        f"given twice, {places}; a field may appear only once (YAML would silently "
                        "keep the last one)",
                    )
                todo.append((value_node, field))


def read_yaml(path: Path) -> Any:
    """A YAML file a person wrote (meeting.yaml, a form, an edits file), read strictly: a regular file
    of UTF-8 text (a byte-order mark allowed), at most MAX_YAML_BYTES, one document, no object tags,
    aliases, merge keys or duplicate keys. Every refusal is a ConfigError naming the file."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError(path, "", "file not found") from None
    except OSError as error:
        raise ConfigError(path, "", f"cannot be read ({error.strerror})") from None
    import stat

    # A FIFO or a device would block the read (or never end); only a plain file is read.
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(path, "", "is not a regular file")
    if info.st_size > MAX_YAML_BYTES:
        raise ConfigError(path, "", f"is {info.st_size} bytes; at most {MAX_YAML_BYTES} are read")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ConfigError(path, "", f"cannot be read ({error.strerror})") from None
    try:
        text = raw[: MAX_YAML_BYTES + 1].decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ConfigError(path, "", f"not UTF-8 text (line {line}); save it as UTF-8") from None
    loader: _StrictLoader | None = None
    try:
        # The reader already refuses characters YAML does not allow in a file (raw control characters).
        loader = _StrictLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _duplicate_keys(loader, node)
        return loader.construct_document(node)
    except _Refused as refused:
        raise ConfigError(path, refused.field, refused.problem) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        if isinstance(error, yaml.reader.ReaderError):
            where = f" at line {text[: error.position].count(chr(10)) + 1}"
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(path, "", f"not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(path, "", "nested too deeply to be a meeting.yaml, form or edits file") from None
    finally:
        if loader is not None:
            loader.dispose()
