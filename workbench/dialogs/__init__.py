"""The dialogs: new run, export, settings, about, getting started."""
