"""rtompc: the application — config files, closed-loop runtime, scenarios, reports, CLI."""

__version__ = "0.1.0"
