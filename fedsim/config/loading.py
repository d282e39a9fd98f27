"""Load and validate experiment YAML; turn every problem into one line naming the key or file.

Nothing here writes to disk: validation happens before a run folder exists.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from fedsim.config.schema import ExperimentConfig
from fedsim.errors import FedsimError

__all__ = ["load_config", "validate_config", "apply_overrides", "dump_config", "config_sha256", "parse_yaml", "read_yaml"]


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may be overridden by explicit keys
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.setdefault(key, key_node.start_mark.line)
        except TypeError:  # an unhashable key: SafeLoader reports it
            break
        if first != key_node.start_mark.line:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first given on line {first + 1})", key_node.start_mark
            )
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text strictly (no duplicate keys); errors name ``source``, line and column."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FedsimError(f"{source}{where}: YAML syntax error: {problem}") from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Parse a YAML config mapping, with file and line in every error; an empty file is refused."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FedsimError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FedsimError(f"{path}: is a folder, not a config file") from None
    except PermissionError:
        raise FedsimError(f"{path}: permission denied") from None
    except UnicodeDecodeError:
        raise FedsimError(f"{path}: not a text file (a config is UTF-8 YAML)") from None
    except OSError as exc:
        raise FedsimError(f"{path}: cannot read ({exc.strerror or exc.__class__.__name__})") from None
    raw = parse_yaml(text, str(path))
    if raw is None or raw == {}:
        # Running every default (a 20-round, 100-client MNIST experiment) is never what an empty file meant.
        raise FedsimError(f"{path}: empty config (give at least one section, e.g. algorithm: {{kind: fedavg}}; "
                          "configs/quickstart.yaml is a complete example)")
    if not isinstance(raw, dict):
        raise FedsimError(f"{path}: expected a mapping of sections (seed, data, model, algorithm, ...), got {type(raw).__name__}")
    return raw


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str], dropped: list[str] | None = None) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (value parsed as YAML) to a copy of ``raw``.

    Overriding a ``kind`` switches the section: its keys that the new kind does not accept are
    dropped, unless the same overrides set them (then validation names them). The dropped keys
    are appended to ``dropped`` as dotted paths.
    """
    out = copy.deepcopy(raw)
    explicit: set[tuple[str, ...]] = set()
    switches: list[tuple[tuple[str, ...], Any]] = []
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part.strip() for part in key.split(".")):
            raise FedsimError(f"--set {item}: expected section.key=value, e.g. algorithm.lr=0.1")
        parts = tuple(part.strip() for part in key.split("."))
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value
        if parts[-1] == "kind" and len(parts) > 1:
            switches.append((parts[:-1], _model_at(out, parts[:-1], node.get("kind"))))
        node[parts[-1]] = parsed
        explicit.add(parts)
    for section, before in switches:
        node = _get(out, section)
        after = _model_at(out, section, node.get("kind") if isinstance(node, dict) else None)
        if before is None or after is None or after is before or not isinstance(node, dict):
            continue  # not a kind-chosen section, an unknown kind (validation names it), or no switch
        for name in [k for k in node if k not in after.model_fields and (*section, k) not in explicit]:
            del node[name]
            if dropped is not None:
                dropped.append(".".join((*section, str(name))))
    return out


def validate_config(raw: Mapping[str, Any], source: str = "config") -> ExperimentConfig:
    """Validate a raw mapping; a problem becomes a one-line :class:`FedsimError`."""
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise FedsimError(f"{source}: {format_validation_error(exc)}") from None


def load_config(path: str | Path, overrides: Iterable[str] = (), dropped: list[str] | None = None) -> ExperimentConfig:
    """Read, override and validate a config file; keys a ``kind`` override dropped go to ``dropped``."""
    return validate_config(apply_overrides(read_yaml(path), overrides, dropped), str(path))


def dump_config(cfg: ExperimentConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def config_sha256(cfg: ExperimentConfig) -> str:
    """SHA-256 of the resolved config in canonical form (sorted keys), independent of YAML layout."""
    return hashlib.sha256(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------- kind switching


def _get(raw: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        raw = raw.get(part) if isinstance(raw, dict) else None
    return raw


def _members(tp: Any) -> list[type[BaseModel]]:
    """The models a (possibly optional, annotated, tagged-union) annotation can hold."""
    tp = _strip(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(tp) for m in _members(arg)]
    return [tp] if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def _kinds(model: type[BaseModel]) -> tuple[Any, ...]:
    field = model.model_fields.get("kind")
    if field is None:
        return ()
    return typing.get_args(_strip(field.annotation)) or (field.default,)


def _model_at(raw: dict[str, Any], section: tuple[str, ...], kind: Any) -> type[BaseModel] | None:
    """The model that ``section`` of ``raw`` validates as when its ``kind`` is ``kind`` (``None``: the default).

    The models on the way are chosen by the ``kind`` already in ``raw`` (or the field's default);
    ``None`` if the path leads to no model or ``kind`` is not one of its kinds.
    """
    model: type[BaseModel] | None = ExperimentConfig
    node: Any = raw
    for depth, part in enumerate(section):
        field = model.model_fields.get(part) if model is not None else None
        if field is None:
            return None
        node = node.get(part) if isinstance(node, dict) else None
        members = _members(field.annotation)
        want = kind if depth == len(section) - 1 else (node.get("kind") if isinstance(node, dict) else None)
        if want is None:
            default = field.get_default(call_default_factory=True)
            model = type(default) if isinstance(default, BaseModel) else (members[0] if len(members) == 1 else None)
        else:
            model = next((m for m in members if want in _kinds(m)), None)
    return model


# --------------------------------------------------------------------------- error formatting


def format_validation_error(exc: ValidationError) -> str:
    """The first error of ``exc`` as ``key.path: what is wrong (allowed: ...)``."""
    err = exc.errors(include_url=False)[0]
    loc, kind, ctx = err["loc"], err["type"], err.get("ctx") or {}
    model, path = _walk(ExperimentConfig, loc)
    dotted = ".".join(str(p) for p in path) or "config"
    if kind == "fedsim":
        return err["msg"]
    if kind == "extra_forbidden":
        parent = _walk(ExperimentConfig, loc[:-1])[0]
        allowed = list(parent.model_fields) if parent else []
        near = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        return f"{dotted}: unknown key{hint} (allowed: {', '.join(allowed)})"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tags = str(ctx.get("expected_tags", "")).replace("'", "")
        got = ctx.get("tag", "")
        return f"{dotted}.kind: unknown kind '{got}' (allowed: {tags})" if got else f"{dotted}.kind: missing (allowed: {tags})"
    if kind == "missing":
        return f"{dotted}: required key is missing"
    if kind == "literal_error":
        return f"{dotted}: {err['input']!r} is not allowed (allowed: {ctx.get('expected', '')})"
    if kind == "model_type" or kind == "dict_type":
        return f"{dotted}: expected a mapping of keys, got {err['input']!r}"
    return f"{dotted}: {err['msg'].removeprefix('Value error, ')} (got {err['input']!r})"


def _walk(model: Any, loc: tuple[Any, ...]) -> tuple[type[BaseModel] | None, list[Any]]:
    """Follow ``loc`` through the schema; return the model reached and the path without union tags."""
    path: list[Any] = []
    tp: Any = model
    for part in loc:
        tp = _strip(tp)
        member = _union_member(tp, part)
        if member is not None:  # ``part`` is a discriminator tag, not a key
            tp = member
            continue
        if isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
            tp = tp.model_fields[part].annotation
        elif typing.get_origin(tp) in (list, tuple) and isinstance(part, int):
            tp = (typing.get_args(tp) or (Any,))[0]
        else:
            tp = None
        path.append(part)
    tp = _strip(tp)
    return (tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None), path


def _strip(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _union_member(tp: Any, tag: Any) -> type[BaseModel] | None:
    """The member of a tagged union (or the lone model a one-member union collapses to) whose ``kind`` is ``tag``."""
    members = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    for member in members:
        member = _strip(member)
        if typing.get_origin(member) in (typing.Union, types.UnionType):  # an optional tagged union
            found = _union_member(member, tag)
            if found is not None:
                return found
            continue
        if isinstance(member, type) and issubclass(member, BaseModel) and "kind" in member.model_fields:
            if member.model_fields["kind"].default == tag and tag not in member.model_fields:
                return member
    return None

