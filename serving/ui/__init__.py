"""The success teams' page, mounted by the Bento service at /ui (see serving/ui/app.py)."""
