"""One `bandersnatch mirror` run: planning, the run (mirror), one project's sync (package),
the root index, guards against operator mistakes, adoption of an 8.x mirror.
"""
