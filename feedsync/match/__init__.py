"""Match: decide which stored papers belong to which topic, and show why (``preview``)."""
