import sys

from vaegui.cli import entry

if __name__ == "__main__":  # the training process is spawned: importing must not start the app
    sys.exit(entry())
