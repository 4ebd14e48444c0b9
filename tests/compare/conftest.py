"""The compare tests share the small models of models.py; with --import-mode=importlib nothing puts this folder on
sys.path, so it is put there once, here."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
