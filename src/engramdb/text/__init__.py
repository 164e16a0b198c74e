"""Text utilities every layer reads with: expressions of time. A leaf: it imports nothing of
engramdb."""
