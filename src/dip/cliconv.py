"""The one convention of every `dip` command line (issue 20): shared by dip.cli and the delegated commands.

- every command that writes names what it writes with ``-o/--output`` (:func:`output_option`);
- old spellings (``--out``, ``--presets``, ``--dest``, ``--image``...) keep working as hidden aliases
  (:func:`hidden_alias`): they are not in the help, and they store into the same place as the new spelling;
- every help shows the defaults (:class:`Formatter`);
- sizes are written WxH everywhere (:func:`parse_size`);
- errors are one line: usage, then ``dip: error: <problem> (see dip <command> --help)``, exit 2 (:class:`Parser`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dip.errors import EXIT_USAGE


class Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's defaults formatter, without the noise: no "(default: None)" or "(default: False)" for options
    whose absence is the default, and no second default where the help already states one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        d = action.default
        if "%(default)" in text or "(default" in text or d is None or d is False or d == [] or d == argparse.SUPPRESS:
            return text
        if not action.option_strings and action.nargs not in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return text
        return f"{text} (default: %(default)s)".lstrip()


class Parser(argparse.ArgumentParser):
    """An ArgumentParser with the project's formatter, its one-line errors, and options that are required but
    also answer to a hidden alias (:func:`require_later`: argparse's own ``required`` would not see the alias)."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("formatter_class", Formatter)
        super().__init__(*args, **kwargs)
        self.required_later: list[tuple[str, str]] = []  # (dest, how the help names it)
        self.positional_aliases: list[tuple[str, str]] = []  # (dest of a positional, its old option spelling)

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        given = sys.argv[1:] if args is None else list(args)
        aliased = {a.dest for a in self._actions if a.help == argparse.SUPPRESS
                   and any(g == o or g.startswith(o + "=") for g in given for o in a.option_strings)}
        later = [a for a in self._actions if a.dest in aliased and a.required]
        for a in later:  # given by an old spelling: argparse's own check would not see it; checked below instead
            a.required = False
        try:
            namespace, extras = super().parse_known_args(args, namespace)
        finally:
            for a in later:
                a.required = True
        for dest, old in self.positional_aliases:
            value = namespace.__dict__.pop(f"{dest}__alias", None)
            if value is not None and getattr(namespace, dest, None) is not None:
                self.error(f"{dest.upper()} given twice (as an argument and as {old})")
            if value is not None:
                setattr(namespace, dest, value)
        missing = [name for dest, name in self.required_later if getattr(namespace, dest, None) is None]
        if missing:
            self.error(f"the following arguments are required: {', '.join(missing)}")
        return namespace, extras

    def error(self, message: str):  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"dip: error: {message} (see {self.prog} --help)\n")


def _parser_of(target: argparse.ArgumentParser | argparse._ArgumentGroup) -> Parser:
    """The parser an argument group belongs to (groups share their parser's option table)."""
    parser = getattr(target, "_dip_parser", target)
    if not isinstance(parser, Parser):
        raise TypeError(f"{parser!r} is not a dip.cliconv.Parser")
    return parser


def group(parser: Parser, title: str, description: str | None = None) -> argparse._ArgumentGroup:
    """``parser.add_argument_group`` that remembers its parser (for :func:`require_later`)."""
    g = parser.add_argument_group(title, description)
    g._dip_parser = parser  # type: ignore[attr-defined]
    return g


def require_later(target: Parser | argparse._ArgumentGroup, dest: str, name: str) -> None:
    """Make ``dest`` required, checked after parsing, so that a hidden alias of the option counts too (the
    option shows as required in the usage)."""
    parser = _parser_of(target)
    parser.required_later.append((dest, name))
    for a in parser._actions:
        if a.dest == dest and a.help != argparse.SUPPRESS and a.option_strings:
            a.required = True


def hidden_alias(target: Parser | argparse._ArgumentGroup, old: str, dest: str, **kw: Any) -> None:
    """An old spelling ``old`` of an option: it stores into ``dest`` like the new one and is not in the help."""
    target.add_argument(old, dest=dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kw)


def positional_alias(target: Parser | argparse._ArgumentGroup, old: str, dest: str, **kw: Any) -> None:
    """An old option spelling ``old`` of the optional positional ``dest`` (e.g. ``--image`` of ``dip fit IMAGE``).
    It cannot share the positional's dest (argparse resets an absent optional positional to its default after
    the options), so it stores aside and :meth:`Parser.parse_known_args` moves it over."""
    target.add_argument(old, dest=f"{dest}__alias", default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kw)
    _parser_of(target).positional_aliases.append((dest, old))


def output_option(target: Parser | argparse._ArgumentGroup, help: str, required: bool = True,
                  old: tuple[str, ...] = ("--out",), **kw: Any) -> None:
    """``-o/--output`` (a Path), with its old spellings ``old`` as hidden aliases."""
    target.add_argument("-o", "--output", type=Path, help=help, **kw)
    for spelling in old:
        hidden_alias(target, spelling, "output", type=Path)
    if required:
        require_later(target, "output", "-o/--output")


def parse_size(text: str, flag: str) -> tuple[int, int]:
    """``WxH`` (width first, as every size dip prints) -> (height, width)."""
    from dip.errors import DipError

    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise DipError(flag, f"expected WxH (width x height) such as 640x480, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise DipError(flag, f"expected a positive WxH, got {text!r}")
    return h, w


def parse_corner(text: str) -> tuple[int, int]:
    """``TOP,LEFT`` (``--crop-at``) -> (top, left); an argparse type."""
    try:
        top, left = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected TOP,LEFT such as 192,200, got {text!r}") from None
    return top, left
