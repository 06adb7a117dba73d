"""Work off the GUI thread: the thread pool, the store reader, and the processes the window starts."""
