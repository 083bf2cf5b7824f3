"""`python -m augflow ...` runs the command line."""

from augflow.cli.main import app

if __name__ == "__main__":   # spawned worker processes re-import this module; they must not rerun the CLI
    app(prog_name="augflow")
