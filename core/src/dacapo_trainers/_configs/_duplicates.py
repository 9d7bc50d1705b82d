"""Keys given twice in a config file, and datasets with one name: both refused with a path.

YAML and JSON readers keep the last of two equal keys without a word, so a run file giving
``learning_rate`` twice trains with whichever comes last. JSON objects with a duplicate are
marked (:class:`DuplicatedKeys`) and refused once their path is known; YAML mappings are
checked on the composed nodes, before anything is built, with the lines of both keys.
"""

from __future__ import annotations

from typing import Any

from .._errors import ConfigError, ConfigIssue
from ._run_config import RunConfig


def _issue(path: str, message: str) -> ConfigError:
    return ConfigError([ConfigIssue(path, message)])


class DuplicatedKeys(dict[str, Any]):
    """A JSON object in which ``duplicates`` appeared more than once (refused once its path
    is known, by ``check_plain_data``)."""

    duplicates: list[str]


def json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    duplicates = []
    for key, value in pairs:
        if key in result:
            duplicates.append(key)
        result[key] = value
    if not duplicates:
        return result
    marked = DuplicatedKeys(result)
    marked.duplicates = duplicates
    return marked


def refuse_duplicate_yaml_keys(root: Any) -> None:
    """Refuse a YAML mapping that gives a key twice (PyYAML would keep the last silently).

    Keys brought in by a merge (``<<: *defaults``) may be overridden: that is what merges
    are for. Nodes shared through aliases are checked once.

    :raises ConfigError: at the key's path, with the lines of both.
    """
    import yaml

    seen: set[int] = set()
    stack = [(root, "$")]
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend((item, f"{path}[{index}]") for index, item in enumerate(node.value))
        elif isinstance(node, yaml.MappingNode):
            lines: dict[str, int] = {}
            for key, value in node.value:
                if key.tag == "tag:yaml.org,2002:merge" or not isinstance(key, yaml.ScalarNode):
                    stack.append((value, path))
                    continue
                line = key.start_mark.line + 1
                if key.value in lines:
                    raise _issue(
                        f"{path}.{key.value}",
                        f"the key {key.value!r} is given twice in this mapping (lines "
                        f"{lines[key.value]} and {line}); YAML would silently keep the last "
                        "one. Remove one of them",
                    )
                lines[key.value] = line
                stack.append((value, f"{path}.{key.value}"))


def duplicate_dataset_names(run: RunConfig) -> list[ConfigIssue]:
    """A dataset named like an earlier one of the same list (training or validation).

    Datasets are told apart by name in messages, stats and snapshots; two with one name
    would be confused.
    """
    if run.datasets is not None:
        lists = [("$.datasets", list(run.datasets))]
    else:
        split = "$.datasplit_config"
        lists = [
            (f"{split}.train_configs", run.train_configs),
            (f"{split}.validate_configs", run.validate_configs),
        ]
    issues = []
    for prefix, configs in lists:
        first: dict[str, int] = {}
        for index, config in enumerate(configs):
            name = getattr(config, "name", None)
            if not isinstance(name, str):
                continue
            if name in first:
                issues.append(
                    ConfigIssue(
                        f"{prefix}[{index}].name",
                        f"{name!r} is also the name of {prefix}[{first[name]}]; datasets are "
                        "told apart by name (in messages, stats and snapshots): give each "
                        "its own",
                    )
                )
            else:
                first[name] = index
    return issues
