"""The offline engine: run the real program under Pulumi's mock monitor and query it.

Quick start (see README "Testing your own stacks")::

    from components.testing import render

    rec = render("prod")                       # Pulumi.prod.yaml, this project's __main__.py
    rec.has_resource("aws:ecs/service:Service", {"deploymentController": {"type": "ECS"}})
    assert rec.count("aws:lb/targetGroup:TargetGroup") == 2

``cached_render("prod")`` (or ``render("prod", cache=True)``) memoises renders per process and
returns a deep copy each time: test modules that render the same stack files share one render.

In pytest, the ``offline_stack`` fixture (``pytest_plugins = ["components.testing.fixtures"]``)
gives the same ``render`` with per-test isolation.
"""

from components.testing.engine import (
    SECRET,
    StackFile,
    StackFileError,
    cached_render,
    load_stack_file,
    parse_stack_file,
    program_from_file,
    render,
    run_program,
)
from components.testing.queries import Match, RecordedResource, Recording, matches

__all__ = [
    "SECRET",
    "Match",
    "RecordedResource",
    "Recording",
    "StackFile",
    "StackFileError",
    "cached_render",
    "load_stack_file",
    "matches",
    "parse_stack_file",
    "program_from_file",
    "render",
    "run_program",
]
