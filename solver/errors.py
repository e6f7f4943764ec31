"""One error family for everything a user can get wrong; the CLI turns it into messages and exit codes."""

from __future__ import annotations

EXIT_OK = 0
EXIT_INVALID_INPUT = 1
EXIT_INFEASIBLE = 2
EXIT_VIOLATIONS = 3


class ParaplanError(Exception):
    """Root of paraplan's user-facing errors."""

    exit_code = EXIT_INVALID_INPUT


class InputError(ParaplanError):
    """A condition, card or plan file that cannot be read or is invalid.

    The message always names the file, the key path and the reason.
    """

    def __init__(self, source: str, key: str, reason: str) -> None:
        self.source = source
        self.key = key
        self.reason = reason
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {reason}")


class InfeasibleError(ParaplanError):
    """No plan satisfies the hard constraints; `binding` names the constraint families."""

    exit_code = EXIT_INFEASIBLE

    def __init__(self, message: str, binding: list[str]) -> None:
        self.binding = binding
        super().__init__(message)


class VerificationError(ParaplanError):
    """The independent verifier rejected a plan the solver produced: a bug, never a plan."""

    exit_code = 4
