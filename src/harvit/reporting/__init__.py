"""What people read: plots (:mod:`.plots`, :mod:`.encoded`), report.md (:mod:`.report`) and the profiler
(:mod:`.profiler`)."""
