"""Typer's parameter coercion for the CLI's plain types, without importing pydantic.

Typer (0.2x) converts every parameter value through a pydantic ``TypeAdapter``; the
first conversion imports pydantic and builds one adapter per parameter, about 0.1 s of
every command's start-up (pydantic is not otherwise needed by a command). volcal's
parameters are all plain ``str``, ``int``, ``float``, ``bool``, ``pathlib.Path`` or lists
of those, without ranges, parsers or path checks beyond Typer's defaults. For those,
:func:`install` gives each parameter a converter that does what the adapter does for
ordinary command-line text - ``str`` as is, an integer or decimal literal to ``int`` /
``float``, a path through Typer's own path checks, a flag's ``True`` / ``False`` as is,
a missing value as Typer does - and hands every other value (``nan``, ``1_000``, a
malformed number, a flag given as text) to Typer's own adapter, so errors and edge cases
are Typer's exactly. Parameters of any other kind keep Typer's converter. On a Typer
without this machinery (older or newer internals) :func:`install` does nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_LEAVES = (str, int, float, bool, Path)

# (the flag names of typer's ParameterInfo that change a conversion, their defaults)
_DEFAULT_INFO = {
    "parser": None,
    "click_type": None,
    "min": None,
    "max": None,
    "clamp": False,
    "path_type": None,
    "exists": False,
    "resolve_path": False,
    "allow_dash": False,
}


def _plain_leaf(annotation: Any, parameter_info: Any) -> type | None:
    """The leaf type (str/int/float/bool/Path) of a parameter this module converts, else None."""
    for name, default in _DEFAULT_INFO.items():
        if getattr(parameter_info, name, default) != default:
            return None
    origin = getattr(annotation, "__origin__", None)
    if origin is list:
        args: tuple[Any, ...] = tuple(getattr(annotation, "__args__", ()))
        annotation = args[0] if len(args) == 1 else None
    return annotation if annotation in _LEAVES else None


def _runtime_param_class() -> Any:
    """A subclass of Typer's ``RuntimeParam`` converting the plain types, or None."""
    try:
        from typer._coercion import RuntimeParam, build_runtime_param
        from typer._param_types import coerce_cli_path
    except ImportError:  # pragma: no cover - depends on the Typer version
        return None

    @dataclass(frozen=True)
    class PlainRuntimeParam(RuntimeParam):  # type: ignore[misc, valid-type]
        leaf: type = str
        descriptor: Any = None
        _typer: list[Any] = field(default_factory=list, compare=False, repr=False)

        def _fallback(self, value: Any, param: Any, ctx: Any) -> Any:
            if not self._typer:  # Typer's own converter, built on first need
                self._typer.append(build_runtime_param(self.descriptor))
            return self._typer[0]._coerce_value(value, param=param, ctx=ctx)

        def _leaf(self, value: Any, param: Any, ctx: Any) -> Any:
            leaf = self.leaf
            if leaf is bool and isinstance(value, bool):
                return value
            if not isinstance(value, str) or leaf is bool:
                return self._fallback(value, param, ctx)
            if leaf is str:
                return value
            if leaf is Path:
                return coerce_cli_path(
                    Path(value), self.parameter_info, path_type=Path, param=param, ctx=ctx
                )
            if leaf is int and _INT.fullmatch(value):
                return int(value)
            if leaf is float and _FLOAT.fullmatch(value):
                return float(value)
            return self._fallback(value, param, ctx)

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if isinstance(value, (list, tuple)):
                if not self.descriptor.is_list:
                    return self._fallback(value, param, ctx)
                return [self._leaf(v, param, ctx) for v in value]
            if self.descriptor.is_list:
                return [self._leaf(value, param, ctx)]
            return self._leaf(value, param, ctx)

    return PlainRuntimeParam


def _help_option(cmd: Any, root: Any) -> list[Any]:
    """The ``--help`` option of ``cmd``: Typer makes it on first use and caches it on the
    command; made here with the names its context gets (its own settings, else the root's,
    which every context of the app inherits), it is the option Typer would make."""
    try:
        from typer._click import Context
    except ImportError:  # pragma: no cover - depends on the Typer version
        return []
    names = (
        cmd.context_settings.get("help_option_names")
        or root.context_settings.get("help_option_names")
        or ["--help"]
    )
    try:
        opt = cmd.get_help_option(Context(cmd, help_option_names=list(names)))
    except (AttributeError, TypeError):  # pragma: no cover - depends on the Typer version
        return []
    return [] if opt is None else [opt]


def _commands_run(command: Any, argv: list[str] | None) -> list[Any]:
    """``command`` and the (sub)commands ``argv`` names, in order; every command of the
    tree when ``argv`` is None. (volcal's groups take no option with a value, so the
    words before a command name that do not start with ``-`` are command names.)"""
    if argv is None:
        out, stack = [], [command]
        while stack:
            cmd = stack.pop()
            out.append(cmd)
            stack.extend(getattr(cmd, "commands", {}).values())
        return out
    out = [command]
    words = iter(argv)
    while hasattr(out[-1], "commands"):
        name = next((w for w in words if not w.startswith("-")), None)
        sub = out[-1].commands.get(name) if name is not None else None
        if sub is None:
            break
        out.append(sub)
    return out


def install(command: Any, argv: list[str] | None = None) -> int:
    """Give the plain parameters of ``command`` (a Click group or command from
    ``typer.main.get_command``) and of the subcommands ``argv`` runs (all of them when
    ``argv`` is None) the pydantic-free converter; returns how many parameters got it."""
    cls = _runtime_param_class()
    if cls is None:
        return 0
    n = 0
    for cmd in _commands_run(command, argv):
        for param in [*cmd.params, *_help_option(cmd, command)]:
            desc = getattr(param, "type_descriptor", None)
            if desc is None or getattr(param, "_runtime_param", 0) is not None:
                continue
            leaf = _plain_leaf(desc.annotation, desc.parameter_info)
            if leaf is None:
                continue
            param._runtime_param = cls(
                parameter_info=desc.parameter_info,
                annotation=desc.annotation,
                leaf=leaf,
                descriptor=desc,
            )
            n += 1
    return n


__all__ = ["install"]
