"""What people read: plots (:mod:`.plots`), report.md (:mod:`.report`) and the profiler (:mod:`.profiler`)."""
