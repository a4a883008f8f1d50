"""Layer 0: what every layer uses. Atomic writes (:mod:`.atomic`), the one error type (:mod:`.errors`),
the logger and progress bars (:mod:`.logging`), runtime set-up: device, seeds, autocast (:mod:`.runtime`)."""
