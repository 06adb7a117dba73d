"""Static files of the workbench (icons, preset descriptions), shipped as package data."""
