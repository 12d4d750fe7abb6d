"""Running: what one run is (:mod:`.spec`), the one orchestrator that runs it (:mod:`.runner`),
its evaluation (:mod:`.evaluation`), the proxy reward model it optimizes (:mod:`.reward_fit`),
sweeps of many (:mod:`.sweep`) and what makes a result reproducible (:mod:`.manifest`)."""
