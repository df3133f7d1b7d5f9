from pathlib import PurePosixPath

from django import template

register = template.Library()


@register.filter
def get_item(mapping, key):
    """``mapping[key]`` in a template (the work panel's form of each action)."""
    return mapping.get(key)


@register.filter
def basename(path: str) -> str:
    return PurePosixPath(path).name
