"""Load YAML that other people wrote, within bounds.

A spec is untrusted input (a pull request adding a teaching example), and YAML can say a lot in
a few bytes: an anchor referenced nine times, each of whose items references the previous anchor
nine times, is a 620-byte document that expands to nine to the ninth power nodes the moment
anything walks it (hashing it for the fit cache did, and grew past 6 GB). ``yaml.safe_load``
refuses to build Python objects from tags but not to expand aliases, so this loader adds three
limits, each checked before the document is turned into Python objects:

* the file's size (:data:`MAX_BYTES`);
* the number of aliases (``*name``) in the document (:data:`MAX_ALIASES`);
* the number of nodes the document has once every alias is expanded (:data:`MAX_NODES`), which
  is what actually bounds memory; a recursive alias (a node that contains itself) is refused.

Every problem is a :class:`YamlLimitError` or :class:`YamlSyntaxError` whose message names the
file and, for limits, the limit; callers turn it into their own error type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode

MAX_BYTES = 1 << 20  # 1 MiB; the largest course spec is 5 kB
MAX_ALIASES = 100  # the course specs use none
MAX_NODES = 200_000  # after expanding aliases; the largest course spec has about 600


class YamlError(ValueError):
    """YAML that cannot be used; ``str()`` names the file."""


class YamlLimitError(YamlError):
    """The document is larger than a limit allows (size, aliases or expanded nodes)."""


class YamlSyntaxError(YamlError):
    """The text is not YAML this loader can read."""


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that counts aliases while composing."""

    def __init__(self, stream: str, name: str):
        super().__init__(stream)
        self.source_name = name
        self.aliases = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise YamlLimitError(
                    f"{self.source_name}: more than {MAX_ALIASES} YAML aliases (*name); a spec "
                    "needs none: write the values out")
        return super().compose_node(parent, index)


def expanded_size(root: Node, limit: int) -> int:
    """Nodes in the document with every alias expanded; stops counting above ``limit``.

    Shared nodes (the targets of aliases) are counted once per reference, as any consumer that
    walks the loaded object would visit them. Raises :class:`RecursionError` for a node that
    contains itself.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    # Iterative post-order walk: (node, children visited?)
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            total = 1 + sum(sizes[id(c)] for c in _children(node))
            sizes[key] = min(total, limit + 1)
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise RecursionError("a YAML node contains itself (a recursive alias)")
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                raise RecursionError("a YAML node contains itself (a recursive alias)")
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def load_text(text: str, name: str) -> Any:
    """Parse one YAML document from ``text`` (``name`` is used in messages), within bounds."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise YamlLimitError(f"{name}: larger than the {MAX_BYTES // 1024} KiB limit for a spec "
                             "file")
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text, name)
        root = loader.get_single_node()
        if root is None:
            return None
        size = expanded_size(root, MAX_NODES)
        if size > MAX_NODES:
            raise YamlLimitError(
                f"{name}: the document expands to more than {MAX_NODES:,} YAML nodes once its "
                f"aliases are expanded (limit {MAX_NODES:,}); write the values out")
        return loader.construct_document(root)
    except YamlError:
        raise
    except yaml.YAMLError as e:
        raise YamlSyntaxError(f"{name}: not valid YAML: {e}") from None
    except RecursionError:
        raise YamlLimitError(f"{name}: the YAML is nested too deeply or refers to itself (a "
                             "recursive alias)") from None
    except (ValueError, TypeError, OverflowError) as e:  # e.g. a timestamp 2021-02-30
        raise YamlSyntaxError(f"{name}: a YAML value cannot be read: {e}") from None
    finally:
        if loader is not None:
            loader.dispose()


def load_file(path: str | Path) -> Any:
    """Read and parse a YAML file within bounds; the size is checked before reading it all."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise YamlLimitError(f"{p}: {size:,} bytes is larger than the "
                                 f"{MAX_BYTES // 1024} KiB limit for a spec file")
        with p.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as e:
        raise YamlSyntaxError(f"{p}: cannot read: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise YamlSyntaxError(f"{p}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    return load_text(text, str(p))
