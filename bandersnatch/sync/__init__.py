"""One `bandersnatch mirror` run: planning, the run (mirror), one project's sync (package),
the root index, the JSON API copy, guards against operator mistakes, adoption of an 8.x mirror.
May import every package below it (upstream down to formats); only the run (mirror) may import
the composition root (runtime), which builds the other parts.
"""
