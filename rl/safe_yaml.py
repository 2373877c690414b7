"""YAML for untrusted files: safe tags only, bounded size, depth and alias expansion, no duplicate keys.

`yaml.safe_load` already refuses Python tags, but it happily builds a "billion laughs" document
(a few hundred bytes of nested aliases that expand to 10^9 nodes) and lets a later key silently
override an earlier one. Errors name the source and, where YAML knows it, the line and column.
"""

import yaml

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32  # nesting of mappings and sequences, aliases expanded
MAX_ALIASES = 100  # alias references (*name) in one document
MAX_NODES = 100_000  # nodes in the document once every alias is expanded


class YamlError(ValueError):
    """A file that is not acceptable YAML; str() is one line: "<source>[:line:col]: <problem>"."""


class _LimitError(yaml.MarkedYAMLError):
    def __init__(self, problem: str, mark):
        super().__init__(problem=problem, problem_mark=mark)


class _LimitedSafeLoader(yaml.SafeLoader):
    """SafeLoader that counts while composing, so a hostile file fails before it is expanded."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _LimitError(f"more than {MAX_ALIASES} aliases", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _LimitError(f"nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:  # an unhashable key: the base class reports it
                    continue
                if duplicate:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _check_expansion(root: yaml.Node) -> None:
    """Bound the expanded size and depth of the node graph (aliases share nodes) and refuse cycles."""
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded node count, expanded depth)
    on_path: set[int] = set()

    def measure(node: yaml.Node) -> tuple[int, int]:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in on_path:
            raise _LimitError("recursive alias (a node contains itself)", node.start_mark)
        if isinstance(node, yaml.ScalarNode):
            return 1, 0
        on_path.add(key)
        children = node.value if isinstance(node, yaml.SequenceNode) else [n for kv in node.value for n in kv]
        count, depth = 1, 0
        for child in children:
            child_count, child_depth = measure(child)
            count += child_count
            depth = max(depth, child_depth + 1)
            if count > MAX_NODES:
                raise _LimitError(f"expands to more than {MAX_NODES} nodes (too many aliases)", node.start_mark)
            if depth > MAX_DEPTH:
                raise _LimitError(f"nested more than {MAX_DEPTH} levels deep once aliases expand", node.start_mark)
        on_path.discard(key)
        sizes[key] = (count, depth)
        return count, depth

    measure(root)


def _describe(err: yaml.YAMLError, source: str, text: str = "") -> str:
    if isinstance(err, yaml.reader.ReaderError):  # a control character such as NUL, refused before parsing
        line = text.count("\n", 0, err.position) + 1
        column = err.position - (text.rfind("\n", 0, err.position) + 1) + 1
        return f"{source}:{line}:{column}: character #x{err.character:04x} is not allowed in YAML (a control character)"
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        problem = err.problem or err.context or "invalid YAML"
        if err.context and err.problem and err.problem_mark:
            problem = f"{err.context}, {err.problem}"
        if problem.startswith("could not determine a constructor for the tag"):
            problem = f"unsupported tag {problem.rsplit(' ', 1)[-1]} (only plain YAML is allowed)"
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        return f"{where}: {problem}"
    return f"{source}: {str(err).splitlines()[0]}"


def load_yaml(data: bytes, source: str):
    """Parse one YAML document from `data` (UTF-8) with the limits above; None for an empty document."""
    if len(data) > MAX_BYTES:
        raise YamlError(f"{source}: file is larger than {MAX_BYTES // 1024} KiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise YamlError(f"{source}: not UTF-8 text (byte {err.start})") from None
    loader = None
    try:
        loader = _LimitedSafeLoader(text)  # checks every character first: a NUL raises here
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        raise YamlError(_describe(err, source, text)) from None
    finally:
        if loader is not None:
            loader.dispose()
