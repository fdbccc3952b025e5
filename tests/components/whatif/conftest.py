"""The page tests launch chromium the way the report screenshots do."""

from tests.reports.conftest import browser  # noqa: F401
