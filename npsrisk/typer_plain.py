"""Typer apps whose help reads plainly: flags show no ``<bool>`` type, arguments read ``DATA``."""

from __future__ import annotations

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption


class _Flag(TyperOption):
    """A flag takes no value: its help shows no ``<bool>`` type."""

    def display_type_rich(self, ctx) -> str | None:
        return None


class _Argument(TyperArgument):
    """An argument reads ``DATA`` / ``[DATA]`` in the usage line, not ``{data}``."""

    @property
    def display_name_raw(self) -> str:
        return self.metavar or self.name.upper()

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        return name if self.required else f"[{name}]"


def _plain_help(params: list) -> list:
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.is_bool_flag:
            param.__class__ = _Flag
        elif isinstance(param, TyperArgument):
            param.__class__ = _Argument
    return params


class _Command(TyperCommand):
    def get_params(self, ctx) -> list:
        return _plain_help(super().get_params(ctx))


class _Group(TyperGroup):
    command_class = _Command

    def get_params(self, ctx) -> list:
        return _plain_help(super().get_params(ctx))


class PlainTyper(typer.Typer):
    """Typer whose groups and commands print plain help (see ``_plain_help``)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(cls=_Group, **kwargs)

    def command(self, *args, **kwargs):
        kwargs.setdefault("cls", _Command)
        return super().command(*args, **kwargs)
