"""Who may do what: the groups of ops' migrations 0003 and 0010, and staff."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

VIEWERS = "viewers"
INVERTERS = "inverters"
PUBLISHERS = "publishers"
ROLE_GROUPS = frozenset({VIEWERS, INVERTERS, PUBLISHERS})


def _group_names(user: AbstractBaseUser | AnonymousUser) -> frozenset[str]:
    # Kept on the user object: a page asks for each button, the database once.
    names = getattr(user, "_level2_group_names", None)
    if names is None:
        names = (
            frozenset(user.groups.values_list("name", flat=True)) if user.is_authenticated else frozenset()
        )
        user._level2_group_names = names
    return names


def has_role(user: AbstractBaseUser | AnonymousUser, role: str) -> bool:
    if not (user.is_authenticated and user.is_active):
        return False
    return user.is_superuser or role in _group_names(user)


def is_inverter(user: AbstractBaseUser | AnonymousUser) -> bool:
    return has_role(user, INVERTERS)


def is_publisher(user: AbstractBaseUser | AnonymousUser) -> bool:
    return has_role(user, PUBLISHERS)


def is_staff(user: AbstractBaseUser | AnonymousUser) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff)


def has_any_role(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether the user may read at all: a role's group, staff or superuser."""
    if not (user.is_authenticated and user.is_active):
        return False
    return user.is_superuser or user.is_staff or bool(ROLE_GROUPS & _group_names(user))
