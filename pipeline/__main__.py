"""`python -m pipeline` runs the `lead-scoring` command line."""

from pipeline.cli.main import run

if __name__ == "__main__":
    run()
