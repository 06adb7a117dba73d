"""What the window stands on: the Qt binding and platform checks, its own settings, resources and garbage collection."""
