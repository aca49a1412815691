"""The topology views: the static call graph declared in configuration and
the dynamic one drawn from sampled and dyed spans, and where they differ."""
