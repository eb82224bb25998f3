"""python -m utils.course sync: rewrite every chapter's badge, set-up cell and slide metadata."""
import sys

from . import ROOT, sync_notebook

if sys.argv[1:] != ["sync"]:
    sys.exit("usage: python -m utils.course sync")
for nb_path in sorted((ROOT / "chapters").glob("*.ipynb")):
    print(("updated " if sync_notebook(nb_path) else "ok      ") + nb_path.name)
