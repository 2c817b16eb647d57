"""Pytest fixtures for the offline engine; enable with
``pytest_plugins = ["components.testing.fixtures"]`` in a ``conftest.py``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from components.testing.engine import PROJECT_ROOT, StackFile, parse_stack_file, render
from components.testing.queries import Recording

RenderFn = Callable[..., Recording]


@pytest.fixture
def offline_stack() -> Iterator[RenderFn]:
    """Render a stack offline: ``offline_stack("prod")`` or
    ``offline_stack("dev", config_text=yaml_text, project_dir=path)``.

    Each call runs in its own isolated Pulumi runtime context (one mock monitor per render).
    """

    def _render(
        stack: str,
        *,
        config_text: str | None = None,
        stack_file: StackFile | None = None,
        project_dir: Path = PROJECT_ROOT,
        **kwargs: Any,
    ) -> Recording:
        if config_text is not None:
            stack_file = parse_stack_file(config_text)
        return render(stack, project_dir=project_dir, stack_file=stack_file, **kwargs)

    yield _render
