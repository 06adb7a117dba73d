"""The main window's views of a run: monitor, Pareto front, compare, summary, and the runs table."""
