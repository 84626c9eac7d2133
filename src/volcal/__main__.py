from volcal.cli import run

run()
