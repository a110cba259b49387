"""completion: the shell completion script, from click's own shell completion."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from securexport.cli.context import Context, pass_context

SHELLS = ("bash", "zsh", "fish")
# The command the script completes, and the variable click reads to answer a completion request
# (the script runs the command with it set): fixed, whatever name the CLI was started under.
PROG = "securexport"
COMPLETE_VAR = "_SECUREXPORT_COMPLETE"


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
@pass_context
def completion(ctx: Context, shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish).

    Commands, options, and choices such as --role complete on Tab.  Load it in your shell's
    start-up file:

    \b
    Example:
      eval "$(securexport completion bash)"       # in ~/.bashrc
      eval "$(securexport completion zsh)"        # in ~/.zshrc
      securexport completion fish > ~/.config/fish/completions/securexport.fish
    """
    root = click.get_current_context().find_root().command
    complete = get_completion_class(shell)
    assert complete is not None  # every name in SHELLS is one of click's
    script = complete(root, {}, PROG, COMPLETE_VAR).source()
    ctx.emit({"shell": shell, "script": script}, lambda: click.echo(script, nl=False))


def register(group: click.Group) -> None:
    group.add_command(completion)
