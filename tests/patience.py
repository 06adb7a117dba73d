"""How long a test waits for real work (a tiny pipeline run in a child process, a measurement in a background
thread) before it calls it a hang. A guard, never a speed limit: CI machines are shared, and a loaded 2-core
machine ran the same waits several times slower than an idle one. Waits for work that takes milliseconds (a
read of a small store, a coalescing timer) keep their short timeouts."""

REAL_WORK_S = 600
REAL_WORK_MS = REAL_WORK_S * 1000
