"""Errors a user can cause and fix. The CLI prints their message without a traceback."""


class UserError(Exception):
    """A problem with the user's input (a folder, a file, a setting); the message says what to fix."""


class DatasetError(UserError):
    """A dataset folder or image that cannot be used as it is."""


class ConfigError(UserError):
    """A configuration value that is not valid; ``fields`` holds (dotted field, what is wrong with it) for each
    value at fault where they are known, so that a form can say each beside its field."""

    def __init__(self, message: str, fields: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.fields = list(fields or [])


class UnknownNameError(ConfigError):
    """A name (family, dataset, metric...) that no registry holds."""

    def __init__(self, kind: str, name: str, known: list[str]):
        self.kind, self.name, self.known = kind, name, sorted(known)
        super().__init__(f"unknown {kind} {name!r}; choose one of: {', '.join(self.known)}")


class TrainingDiverged(UserError):
    """A loss that became nan or inf: the step's weights are unusable; the checkpoint before it is kept."""


class RunBusyError(UserError):
    """A run that another process is running."""
