"""Names of things outside dr that dr only passes along: what MySQL/MariaDB accept as a
database name. Dependency-free, so dr.config can check names without loading the engine."""

from __future__ import annotations

MYSQL_NAME_MAX = 64


def mysql_database_name_problem(name: object) -> str | None:
    """Why `name` cannot be a MySQL/MariaDB database name, or None if it can.

    Any Unicode text is fine (dr quotes every identifier: `café`, `my db`, `a.b`, `it's`),
    except what the server refuses: empty, more than 64 characters, a trailing space, the NUL
    character, characters outside the Basic Multilingual Plane (emoji: identifiers are
    utf8mb3), and the `#mysql50#` prefix (the server's marker for pre-5.1 file names)."""
    if not isinstance(name, str):
        return "it is not a string (write it in quotes)"
    if not name:
        return "it is empty"
    if len(name) > MYSQL_NAME_MAX:
        return f"it has {len(name)} characters, more than {MYSQL_NAME_MAX}"
    if name.endswith(" "):
        return "it ends with a space"
    if "\x00" in name:
        return "it contains the NUL character"
    wide = next((c for c in name if ord(c) > 0xFFFF), None)
    if wide is not None:
        return (f"it contains {wide!r} (U+{ord(wide):X}), a character outside the Basic "
                "Multilingual Plane, which MySQL identifiers cannot hold")
    if name.startswith("#mysql50#"):
        return "it starts with #mysql50#, which the server reserves"
    return None
