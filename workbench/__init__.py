"""The Qt workbench. It talks to the engine only through its public API, the store and its command line."""
