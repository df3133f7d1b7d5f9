"""The one error a caller has to expect from Level 2 product generation."""


class ProductInputError(ValueError):
    """An input problem a user can fix; the message names the file, key or counts."""
