from engine.registry import Registry

FAMILIES: Registry = Registry("model family")
