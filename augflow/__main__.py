"""`python -m augflow ...` runs the command line."""

from augflow.cli.main import app

app(prog_name="augflow")
