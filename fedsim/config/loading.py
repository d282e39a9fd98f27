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

__all__ = ["load_config", "validate_config", "apply_overrides", "dump_config", "config_sha256", "read_yaml"]


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Parse a YAML mapping, with file and line in every error."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FedsimError(f"{path}: no such file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise FedsimError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FedsimError(f"{path}{where}: YAML syntax error: {problem}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise FedsimError(f"{path}: expected a mapping of sections (seed, data, model, algorithm, ...), got {type(raw).__name__}")
    return raw


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (value parsed as YAML) to a copy of ``raw``."""
    out = copy.deepcopy(raw)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise FedsimError(f"--set {item}: expected section.key=value, e.g. algorithm.lr=0.1")
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        try:
            node[parts[-1]] = yaml.safe_load(value)
        except yaml.YAMLError:
            node[parts[-1]] = value
    return out


def validate_config(raw: Mapping[str, Any], source: str = "config") -> ExperimentConfig:
    """Validate a raw mapping; a problem becomes a one-line :class:`FedsimError`."""
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise FedsimError(f"{source}: {format_validation_error(exc)}") from None


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> ExperimentConfig:
    return validate_config(apply_overrides(read_yaml(path), overrides), str(path))


def dump_config(cfg: ExperimentConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def config_sha256(cfg: ExperimentConfig) -> str:
    """SHA-256 of the resolved config in canonical form (sorted keys), independent of YAML layout."""
    return hashlib.sha256(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


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

