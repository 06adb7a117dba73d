"""The window's state without Qt: the session (store, settings, selection, runs watched) and the new-run form."""
